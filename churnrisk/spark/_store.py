"""The event store on Spark: the contract's tables read from any path Spark reads, typed like
:class:`~churnrisk.store.EventStore` (or an in-memory store handed over through Arrow)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from churnrisk.contract import TABLES, TableSpec
from churnrisk.errors import ChurnriskError, DataError, Problem
from churnrisk.spark._session import _active, _exists, _url
from churnrisk.store import EventStore, StoreConfig, read_config

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


class SparkEventStore:
    """Event tables keyed by contract name, as typed Spark DataFrames (see :func:`read_store`)."""

    def __init__(self, tables: Mapping[str, DataFrame], *, source: str | None = None) -> None:
        self.tables: dict[str, DataFrame] = dict(tables)
        self.source = source

    def __contains__(self, name: object) -> bool:
        return name in self.tables

    def __getitem__(self, name: str) -> DataFrame:
        try:
            return self.tables[name]
        except KeyError:
            raise ChurnriskError(
                f"the event store has no '{name}' table; it has {sorted(self.tables)}."
            ) from None

    def get(self, name: str) -> DataFrame | None:
        return self.tables.get(name)

    def __repr__(self) -> str:
        return f"SparkEventStore({', '.join(self.tables)}, source={self.source!r})"

    @classmethod
    def from_event_store(cls, store: EventStore, *, spark: SparkSession | None = None) -> SparkEventStore:
        """Hand an in-memory (Polars) store to Spark through Arrow; the row order is kept."""
        spark = _active(spark)
        tables = {name: _from_polars(spark, frame) for name, frame in store.tables.items()}
        return cls(tables, source=store.source)


def _from_polars(spark: SparkSession, frame: Any) -> DataFrame:
    import pyarrow as pa
    from pyspark.sql import types as T

    arrow = frame.to_arrow()
    fields = []
    for name, dtype in zip(arrow.column_names, arrow.schema.types, strict=True):
        fields.append(T.StructField(name, _spark_type(T, dtype), nullable=True))
    # Naive times must stay naive (timestamp_ntz): an explicit schema, whatever the session's default.
    cast = arrow.cast(pa.schema([f.with_type(_arrow_type(f.type)) for f in arrow.schema]))
    return spark.createDataFrame(cast, schema=T.StructType(fields))


def _arrow_type(dtype: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_dictionary(dtype):
        return pa.string()
    return dtype


def _spark_type(T: Any, dtype: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_timestamp(dtype):
        return T.TimestampNTZType() if dtype.tz is None else T.TimestampType()
    if pa.types.is_integer(dtype):
        return T.LongType()
    if pa.types.is_floating(dtype):
        return T.DoubleType()
    if pa.types.is_boolean(dtype):
        return T.BooleanType()
    if pa.types.is_date(dtype):
        return T.DateType()
    return T.StringType()


def read_store(
    path: str | os.PathLike[str],
    *,
    spark: SparkSession | None = None,
    config: str | os.PathLike[str] | StoreConfig | None = None,
    encoding: str | None = None,
) -> SparkEventStore:
    """Read the event-store tables under ``path`` with Spark and type them like :class:`EventStore`.

    Parameters
    ----------
    path : str or path
        A folder (local, ``hdfs://``, ``s3a://``, ...) holding ``<table>.parquet`` or ``<table>.csv``
        (each a file or a folder of part files), or ``<table>/`` folders of Parquet parts.
    spark : SparkSession, optional
        Default: the active session, else :func:`spark_session`.
    config : path or StoreConfig, optional
        The same TOML mapping as the default engine (file and column names). ``time_format`` is
        not supported here: times must be ISO 8601 text or typed Parquet timestamps.
    encoding : str, optional
        Of the CSV files (default UTF-8, or the config's).

    Returns
    -------
    SparkEventStore

    Raises
    ------
    DataError
        When a required column is missing or values cannot be read (counts per column). The
        other checks of :func:`churnrisk.validation.validate` (duplicates, negative amounts,
        unknown customers, ...) are not run on Spark: validate a sample with the default engine.
    """
    spark = _active(spark)
    config = config if isinstance(config, StoreConfig) else read_config(config)
    base = _url(path)
    raw: dict[str, DataFrame] = {}
    for name in TABLES:
        frame = _read_table(spark, base, name, config, encoding)
        if frame is not None:
            raw[name] = frame
    if "customers" not in raw:
        raise ChurnriskError(
            f"{base} has no customers table. Suggestion: put customers.parquet or customers.csv there."
        )
    problems: list[Problem] = []
    tables = {name: _typed(TABLES[name], frame, config.table(name), problems) for name, frame in raw.items()}
    if problems:
        raise DataError(problems)
    return SparkEventStore(_unify_ids(tables), source=base)


def _read_table(
    spark: SparkSession, base: str, name: str, config: StoreConfig, encoding: str | None
) -> DataFrame | None:
    table_config = config.table(name)
    if "time_format" in table_config:
        raise ChurnriskError(
            f"the config gives a time_format for table '{name}', which the Spark engine does not read. "
            "Suggestion: write the times as ISO 8601 (2024-03-01 14:05:00), or use the default engine."
        )
    names = (
        [str(table_config["file"])] if "file" in table_config else [f"{name}.parquet", f"{name}.csv", name]
    )
    found = [f"{base}/{n}" for n in names if _exists(spark, f"{base}/{n}")]
    if not found:
        if "file" in table_config:
            raise ChurnriskError(
                f"the config names {found or names[0]} for table '{name}', but it does not exist."
            )
        return None
    if len(found) > 1:
        raise ChurnriskError(f"{found[0]} and {found[1]} are both there: keep one, or name it in the config.")
    target = found[0]
    if target.lower().endswith(".csv"):
        table_encoding = encoding or table_config.get("encoding") or config.encoding
        frame = spark.read.options(header=True, inferSchema=False, encoding=table_encoding).csv(target)
    else:
        frame = spark.read.parquet(target)
    renames = {theirs: ours for ours, theirs in table_config.get("columns", {}).items()}
    return frame.withColumnsRenamed({c: renames[c] for c in frame.columns if c in renames})


def _typed(
    spec: TableSpec, frame: DataFrame, table_config: Mapping[str, Any], problems: list[Problem]
) -> DataFrame:
    from pyspark.sql import functions as F

    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        problems.append(
            Problem(
                spec.name,
                ", ".join(missing),
                f"missing required column(s); found columns {frame.columns}",
                suggestion="map your column names onto the contract in a --config TOML file",
            )
        )
        return frame
    dtypes = dict(frame.dtypes)
    parsed: dict[str, Column] = {}
    bad: dict[str, Column] = {}
    for name in frame.columns:
        column = spec.column(name)
        if column is None or column.kind == "id":
            continue
        value, invalid = _parse(column.kind, F.col(name), dtypes[name], column.allowed)
        parsed[name] = value
        if invalid is not None:
            bad[name] = F.count(F.when(invalid, 1))
    if bad:
        counts = frame.select([v.alias(k) for k, v in bad.items()]).first().asDict()  # type: ignore[union-attr]
        problems += [
            Problem(spec.name, name, "values that cannot be read", rows=n) for name, n in counts.items() if n
        ]
    return frame.withColumns(parsed)


def _parse(
    kind: str, col: Column, dtype: str, allowed: tuple[str, ...] | None
) -> tuple[Column, Column | None]:
    """The typed column and, for text input, which rows failed to parse."""
    from pyspark.sql import functions as F

    text = F.nullif(F.trim(col.cast("string")), F.lit(""))
    if kind == "time":
        if dtype == "timestamp":  # aware times: their UTC wall clock, as the default engine stores them
            return F.to_utc_timestamp(col, F.current_timezone()).cast("timestamp_ntz"), None
        if dtype in ("timestamp_ntz", "date"):
            return col.cast("timestamp_ntz"), None
        value = F.try_to_timestamp(text).cast("timestamp_ntz")
        return value, value.isNull() & text.isNotNull()
    if kind == "number":
        value = text.try_cast("double") if dtype == "string" else col.cast("double")
        return value, value.isNull() & text.isNotNull() if dtype == "string" else None
    if kind == "bool":
        if dtype == "boolean":
            return col, None
        lower = F.lower(text)
        value = F.when(lower.isin(*_TRUE), True).when(lower.isin(*_FALSE), False)
        return value, value.isNull() & text.isNotNull()
    if kind == "category":
        lower = F.lower(text)
        return lower, lower.isNotNull() & ~lower.isin(*(allowed or ()))
    return text if dtype == "string" else col.cast("string"), None


def _unify_ids(tables: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """``customer_id`` as long everywhere when every value is a whole number, else as text."""
    from pyspark.sql import functions as F

    ids = {name: frame.schema["customer_id"].dataType.typeName() for name, frame in tables.items()}
    whole = True
    for name, frame in tables.items():
        if ids[name] in ("long", "integer", "short", "byte"):
            continue
        value = F.col("customer_id")
        as_long = value.try_cast("long") if ids[name] == "string" else value.cast("long")
        canonical = as_long.cast("string") == (
            F.trim(value) if ids[name] == "string" else as_long.cast("string")
        )
        if ids[name] in ("double", "float"):
            canonical = value == as_long.cast("double")
        not_whole = frame.filter(value.isNotNull() & ~F.coalesce(canonical, F.lit(False))).limit(1).count()
        whole = whole and not not_whole
    target = "long" if whole else "string"
    return {
        name: frame.withColumn("customer_id", F.col("customer_id").cast(target))
        for name, frame in tables.items()
    }


def _spark_store(store: SparkEventStore | EventStore, spark: SparkSession | None) -> SparkEventStore:
    if isinstance(store, SparkEventStore):
        return store
    if isinstance(store, EventStore):
        return SparkEventStore.from_event_store(store, spark=spark)
    raise ChurnriskError(f"store must be a SparkEventStore or an EventStore, got {type(store).__name__}.")
