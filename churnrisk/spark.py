"""The Apache Spark engine (DESIGN §7): the same feature and label definitions, run by Spark.

For event logs that outgrow one machine. Install the extra: ``pip install "churnrisk[spark]"``
(PySpark; Spark needs Java 17 or later). The functions here take and return Spark DataFrames, so
nothing is collected to the driver until you ask for it:

* :func:`spark_session` — a session (local mode by default, small memory), or the existing one
  under ``spark-submit`` or in a notebook;
* :func:`read_store` — the event-store tables from any path Spark reads (a local folder,
  ``hdfs://``, ``s3a://``, ...), as ``<table>.parquet`` / ``<table>.csv`` files or folders, typed
  like :class:`~churnrisk.store.EventStore`; :meth:`SparkEventStore.from_event_store` hands an
  in-memory store to Spark;
* :func:`build_features` — the point-in-time features of :func:`churnrisk.features.build_features`,
  computed from the same declarations (:mod:`churnrisk.features._spark`);
* :func:`score` — a saved model applied to a Spark DataFrame of features with ``mapInPandas``, the
  model loaded once per Python worker through :func:`churnrisk.modelfile.load_model`;
* :func:`write_parquet` and :func:`to_pandas`.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnrisk.contract import TABLES, TableSpec
from churnrisk.errors import ChurnriskError, DataError, Problem
from churnrisk.features._build import check_windows, to_cutoff, to_pandas_features
from churnrisk.features._spark import ROW, spark_feature_frame, timestamp
from churnrisk.features._spec import DEFAULT_WINDOWS
from churnrisk.labels import check_label_options
from churnrisk.store import EventStore, StoreConfig, read_config

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "SparkEventStore",
    "build_features",
    "build_training_set",
    "make_labels",
    "read_store",
    "run",
    "score",
    "spark_available",
    "spark_session",
    "to_pandas",
    "write_parquet",
]

INSTALL = 'pip install "churnrisk[spark]"'
ID = "customer_id"
_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ChurnriskError(f"the Spark engine needs PySpark. Suggestion: {INSTALL}") from None


def spark_available() -> str | None:
    """``None`` when PySpark and Java are installed, otherwise the reason why not."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return f"PySpark is not installed ({INSTALL})"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        return "Java is not installed (Spark needs Java 17 or later)"
    return None


# ---------------------------------------------------------------------- session
def spark_session(
    *,
    master: str | None = "local[2]",
    app_name: str = "churnrisk",
    driver_memory: str = "2g",
    shuffle_partitions: int = 4,
    config: Mapping[str, str] | None = None,
) -> SparkSession:
    """A Spark session: a small local one by default, or the one a cluster job already has.

    Parameters
    ----------
    master : str or None, default "local[2]"
        ``None`` leaves the choice to ``spark-submit`` (or reuses a notebook's session).
    app_name, driver_memory, shuffle_partitions
        Used when a new session starts; local mode binds to the loopback address, with the UI off.
    config : mapping, optional
        More Spark settings, e.g. ``{"spark.executor.memory": "8g"}``.

    Returns
    -------
    pyspark.sql.SparkSession
        Its SQL session time zone is UTC (event times are naive; this keeps conversions exact).
    """
    _require_pyspark()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    settings = {
        "spark.driver.memory": driver_memory,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            settings |= {"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"}
    for key, value in (settings | dict(config or {})).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _active(spark: SparkSession | None) -> SparkSession:
    if spark is not None:
        return spark
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() or spark_session()


# ---------------------------------------------------------------------- the event store
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


def _url(path: str | os.PathLike[str]) -> str:
    """``path`` as text; a URL that went through ``pathlib.Path`` (``s3a:/bucket``) gets its ``//`` back."""
    text = str(path).rstrip("/")
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):/([^/].*)$", text)
    if match and match.group(1).lower() != "file":
        return f"{match.group(1)}://{match.group(2)}"
    return text


def _exists(spark: SparkSession, path: str) -> bool:
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
    return bool(hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(hadoop_path))  # type: ignore[union-attr]


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


# ---------------------------------------------------------------------- features
def _spark_store(store: SparkEventStore | EventStore, spark: SparkSession | None) -> SparkEventStore:
    if isinstance(store, SparkEventStore):
        return store
    if isinstance(store, EventStore):
        return SparkEventStore.from_event_store(store, spark=spark)
    raise ChurnriskError(f"store must be a SparkEventStore or an EventStore, got {type(store).__name__}.")


def build_features(
    store: SparkEventStore | EventStore,
    cutoff: Any,
    *,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    spark: SparkSession | None = None,
) -> DataFrame:
    """Point-in-time features of every customer known at ``cutoff``, computed by Spark.

    The same declarations, columns and values as :func:`churnrisk.features.build_features`
    (counts exactly, floats to rounding), but a lazy Spark DataFrame with a ``customer_id``
    column, sorted by it: write it with :func:`write_parquet`, or collect it with :func:`to_pandas`.

    Parameters
    ----------
    store : SparkEventStore or EventStore
        From :func:`read_store`; an in-memory store is handed to Spark first.
    cutoff : date, datetime or str
        Features see only events at or before this instant.
    windows : sequence of int, default (30, 90, 180, 365)
        Look-back windows in days; a window ``w`` covers ``(cutoff - w, cutoff]``.
    spark : SparkSession, optional
        Only used to hand over an in-memory store.
    """
    tables = _spark_store(store, spark).tables
    return spark_feature_frame(tables, to_cutoff(cutoff), check_windows(windows))


def to_pandas(frame: DataFrame, *, kind: str = "features") -> pd.DataFrame:
    """Collect a Spark result (through Arrow) in the shape the default engine returns it.

    ``kind`` is ``"features"`` (:func:`build_features`: indexed by customer, text as categoricals),
    ``"labels"`` (:func:`make_labels`) or ``"training"`` (:func:`build_training_set`).
    """
    import polars as pl

    collected = pl.from_arrow(frame.toArrow())
    assert isinstance(collected, pl.DataFrame)
    if kind == "features":
        return to_pandas_features(collected)
    if kind == "labels":
        out = collected.to_pandas().set_index(ID)
        return out.astype({"churned": "int64", "churn_type": "string"})
    if kind == "training":
        from churnrisk.training import _to_pandas

        return _to_pandas(collected.with_columns(pl.col("churned").cast(pl.Int8)), {}, ())
    raise ChurnriskError(f"The 'kind' parameter must be features, labels or training. Got {kind!r} instead.")


def write_parquet(frame: DataFrame, path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
    """Write a Spark DataFrame as a Parquet folder; refuses to replace ``path`` unless ``overwrite``."""
    target = _url(path)
    if not overwrite and _exists(frame.sparkSession, target):
        raise ChurnriskError(
            f"{target} already exists. Suggestion: pass --overwrite to replace it, or choose another path."
        )
    frame.write.mode("overwrite" if overwrite else "errorifexists").parquet(target)
    return target


# ---------------------------------------------------------------------- labels and training sets
# The churn definitions of churnrisk.spells / churnrisk.labels, step for step on Spark (interval
# merging with window functions); tests/test_spark.py checks both definitions against them.
_FOREVER = datetime(9999, 12, 31)


def _merge_intervals(intervals: DataFrame) -> DataFrame:
    """Each customer's intervals ``[start, end)`` that overlap or touch, merged (as ``merge_intervals``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    end = F.coalesce(F.col("end"), timestamp(_FOREVER))
    ordered = Window.partitionBy(ID).orderBy("start", "_end", ROW)
    # A new spell starts when the interval begins after everything before it ended (touching merges).
    reach = F.max("_end").over(ordered.rowsBetween(Window.unboundedPreceding, -1))
    new = reach.isNull() | (F.col("start") > reach)
    return (
        intervals.filter(F.col(ID).isNotNull() & F.col("start").isNotNull())
        .withColumns({"_end": end, ROW: F.monotonically_increasing_id()})
        .withColumn("_new", new.cast("int"))
        .withColumn("_spell", F.sum("_new").over(ordered.rowsBetween(Window.unboundedPreceding, 0)))
        .groupBy(ID, "_spell")
        .agg(
            F.min("start").alias("start"),
            F.max("_end").alias("end"),
            F.max_by("end_reason", F.struct("_end", "start", ROW)).alias("end_reason"),
        )
        .withColumn("end", F.when(F.col("end") < timestamp(_FOREVER), F.col("end")))
        .drop("_spell")
    )


def _subscription_spells(subscriptions: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    end = F.col("ended_at") if "ended_at" in subscriptions.columns else F.lit(None).cast("timestamp_ntz")
    reason = F.col("end_reason") if "end_reason" in subscriptions.columns else F.lit(None)
    return _merge_intervals(
        subscriptions.select(
            ID,
            F.col("started_at").alias("start"),
            end.alias("end"),
            reason.cast("string").alias("end_reason"),
        )
    )


def _order_spells(orders: DataFrame, days: int) -> DataFrame:
    from pyspark.sql import functions as F

    intervals = orders.select(
        ID,
        F.col("ordered_at").alias("start"),
        (F.col("ordered_at") + F.make_dt_interval(days=F.lit(days))).alias("end"),
        F.lit("inactivity").alias("end_reason"),
    ).dropDuplicates([ID, "start"])
    return _merge_intervals(intervals)


def _active_at(spells: DataFrame, t: datetime) -> DataFrame:
    from pyspark.sql import functions as F

    inside = (F.col("start") <= timestamp(t)) & (F.col("end").isNull() | (F.col("end") > timestamp(t)))
    return spells.filter(inside).select(ID).distinct()


def _purchases(store: SparkEventStore) -> DataFrame | None:
    from pyspark.sql import functions as F

    if "orders" in store:
        return store["orders"].select(ID, "ordered_at")
    if "activity" in store:
        return store["activity"].select(ID, F.col("occurred_at").alias("ordered_at"))
    return None


def data_end(store: SparkEventStore) -> datetime:
    """The last event time over every table (one Spark job): outcomes after it are unknown."""
    from pyspark.sql import functions as F

    ends = [
        frame.select(F.max(str(TABLES[name].time)).alias("t"))
        for name, frame in store.tables.items()
        if TABLES[name].time and TABLES[name].time in frame.columns
    ]
    last = reduce(lambda a, b: a.unionByName(b), ends).select(F.max("t")).first()[0] if ends else None  # type: ignore[index]
    if last is None:
        raise ChurnriskError("the event store has no dated events to label churn with.")
    return last  # type: ignore[no-any-return]


def _label_frame(
    store: SparkEventStore,
    cutoff: datetime,
    *,
    definition: str,
    horizon: int,
    lookback: int | None,
    lead_time: int,
    last_event: datetime,
) -> DataFrame:
    """Eligible customers with ``churned`` (null when censored) and ``churn_type`` (as ``label_frame``)."""
    from pyspark.sql import functions as F

    start = cutoff + timedelta(days=lead_time)
    end = start + timedelta(days=horizon)
    if definition == "subscription":
        spells = _subscription_spells(store["subscriptions"])
        eligible = _active_at(spells, cutoff).join(_active_at(spells, start), on=ID, how="left_semi")
        still = _active_at(spells, end)
    else:
        orders = _purchases(store)
        eligible = _active_at(_order_spells(orders, lookback or horizon), cutoff)  # type: ignore[arg-type]
        still = _active_at(_order_spells(orders, horizon), end)  # type: ignore[arg-type]
    censored = end > last_event
    frame = eligible.join(still.withColumn("_still", F.lit(True)), on=ID, how="left")
    churned = F.lit(None) if censored else F.col("_still").isNull()
    frame = frame.select(
        ID, churned.cast("tinyint").alias("churned"), F.lit(None).cast("string").alias("churn_type")
    )
    if definition == "subscription" and not censored:
        frame = _with_churn_type(store, frame, spells, start, end)
    return frame


def _with_churn_type(
    store: SparkEventStore, frame: DataFrame, spells: DataFrame, start: datetime, end: datetime
) -> DataFrame:
    """Voluntary or involuntary, judged at the end of the spell running at ``start`` (as ``churn_type``)."""
    from pyspark.sql import functions as F

    ended = (
        spells.filter((F.col("end") > timestamp(start)) & (F.col("end") <= timestamp(end)))
        .join(frame.filter(F.col("churned") == 1).select(ID), on=ID, how="left_semi")
        .groupBy(ID)
        .agg(F.max("end").alias("churned_at"))
    )
    involuntary = _unrecovered_failure(store.get("payments"), ended)
    by_reason = _payment_end_reason(store.get("subscriptions"), ended)
    flagged = [f for f in (involuntary, by_reason) if f is not None]
    kinds = ended.select(ID, F.lit("voluntary").alias("_kind"))
    if flagged:
        flagged_ids = reduce(lambda a, b: a.unionByName(b), flagged)
        kinds = ended.join(flagged_ids.distinct().withColumn("_inv", F.lit(True)), on=ID, how="left").select(
            ID, F.when(F.col("_inv"), F.lit("involuntary")).otherwise(F.lit("voluntary")).alias("_kind")
        )
    return frame.join(kinds, on=ID, how="left").select(ID, "churned", F.col("_kind").alias("churn_type"))


def _unrecovered_failure(
    payments: DataFrame | None, ended: DataFrame, window_days: int = 30
) -> DataFrame | None:
    """Customers whose last failed payment in the window before churning was never followed by a success."""
    from pyspark.sql import functions as F

    if payments is None or "status" not in payments.columns:
        return None
    attempts = payments.select(ID, "attempted_at", F.lower(F.col("status").cast("string")).alias("status"))
    joined = ended.join(attempts, on=ID).filter(F.col("attempted_at") <= F.col("churned_at"))
    window_start = F.col("churned_at") - F.make_dt_interval(days=F.lit(window_days))
    last_failure = (
        joined.filter((F.col("status") == "failed") & (F.col("attempted_at") >= window_start))
        .groupBy(ID)
        .agg(F.max("attempted_at").alias("_failed_at"))
    )
    recovered = (
        joined.join(last_failure, on=ID)
        .filter((F.col("status") == "succeeded") & (F.col("attempted_at") > F.col("_failed_at")))
        .select(ID)
    )
    return last_failure.select(ID).join(recovered, on=ID, how="left_anti")


def _payment_end_reason(subscriptions: DataFrame | None, ended: DataFrame) -> DataFrame | None:
    from pyspark.sql import functions as F

    from churnrisk.spells import INVOLUNTARY_REASON

    if subscriptions is None or not {"ended_at", "end_reason"} <= set(subscriptions.columns):
        return None
    reasons = subscriptions.filter(F.col("end_reason").cast("string").rlike(INVOLUNTARY_REASON)).select(
        ID, F.col("ended_at").alias("churned_at")
    )
    return ended.join(reasons, on=[ID, "churned_at"], how="left_semi").select(ID)


def make_labels(
    store: SparkEventStore | EventStore,
    cutoff: Any,
    *,
    definition: str,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    spark: SparkSession | None = None,
) -> DataFrame:
    """Churn labels at ``cutoff`` on Spark, as :func:`churnrisk.labels.make_labels` defines them.

    Returns a Spark DataFrame ``customer_id, churned (0/1), churn_type``, sorted by customer; it is
    empty when the horizon runs past the end of the data (censored: the outcome is not known yet).
    Parameters as in :func:`churnrisk.labels.make_labels`.
    """
    from pyspark.sql import functions as F

    sstore = _spark_store(store, spark)
    options = check_label_options(sstore, definition, horizon, lookback, lead_time)
    frame = _label_frame(sstore, to_cutoff(cutoff), last_event=data_end(sstore), **options)
    return frame.filter(F.col("churned").isNotNull()).orderBy(ID)


def build_training_set(
    store: SparkEventStore | EventStore,
    cutoffs: Iterable[Any],
    *,
    definition: str,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    spark: SparkSession | None = None,
) -> DataFrame:
    """Features and labels of every eligible customer at every cutoff, on Spark.

    The rows and columns of :func:`churnrisk.training.build_training_set` (``customer_id``,
    ``cutoff``, the features, ``churned`` — null for a censored cutoff — and ``churn_type``),
    sorted by cutoff and customer, as a Spark DataFrame.
    """
    sstore = _spark_store(store, spark)
    options = check_label_options(sstore, definition, horizon, lookback, lead_time)
    windows_ = check_windows(windows)
    values = sorted({to_cutoff(c) for c in cutoffs})
    if not values:
        raise ChurnriskError("no cutoffs given. Suggestion: make_cutoffs('2024-01-31', '2024-12-31').")
    last_event = data_end(sstore)
    frames = []
    for cutoff in values:
        labels = _label_frame(sstore, cutoff, last_event=last_event, **options)
        features = spark_feature_frame(sstore.tables, cutoff, windows_)
        names = [c for c in features.columns if c != ID]
        frames.append(
            labels.join(features, on=ID, how="left").select(
                ID, timestamp(cutoff).alias("cutoff"), *names, "churned", "churn_type"
            )
        )
    return reduce(lambda a, b: a.unionByName(b), frames).orderBy("cutoff", ID)


# ---------------------------------------------------------------------- one call per command
def run(
    kind: str,
    data: str | os.PathLike[str],
    cutoffs: Any,
    *,
    output: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    config: str | os.PathLike[str] | StoreConfig | None = None,
    encoding: str | None = None,
    spark: SparkSession | None = None,
    **options: Any,
) -> pd.DataFrame | None:
    """What ``churnrisk features|labels|training-set --engine spark`` does, in one call.

    Reads ``data`` with :func:`read_store`, computes ``kind`` (``"features"``, ``"labels"`` or
    ``"training"``; ``cutoffs`` is one cutoff, or several for ``"training"``) with ``options``
    passed on, then writes a Parquet folder to ``output`` (returns ``None``) or collects the result
    like the default engine returns it (labels with ``.attrs["censored"]``).
    """
    from pyspark.sql import functions as F

    if output is not None and not _url(output).lower().endswith(".parquet"):
        raise ChurnriskError(
            f"the Spark engine writes Parquet; got {output}. Suggestion: -o {Path(str(output)).stem}.parquet"
        )
    store = read_store(data, spark=spark, config=config, encoding=encoding)
    censored = 0
    if kind == "features":
        frame = build_features(store, cutoffs, **options)
    elif kind == "labels":
        checked = check_label_options(
            store,
            options.get("definition", ""),
            options.get("horizon"),
            options.get("lookback"),
            options.get("lead_time", 0),
        )
        frame = _label_frame(store, to_cutoff(cutoffs), last_event=data_end(store), **checked)
        censored = frame.filter(F.col("churned").isNull()).count()
        frame = frame.filter(F.col("churned").isNotNull()).orderBy(ID)
    elif kind == "training":
        frame = build_training_set(store, cutoffs, **options)
    else:
        raise ChurnriskError(
            f"The 'kind' parameter must be features, labels or training. Got {kind!r} instead."
        )
    if output is not None:
        write_parquet(frame, output, overwrite=overwrite)
        return None
    out = to_pandas(frame, kind=kind)
    if kind == "labels":
        out.attrs = {"censored": censored, "cutoff": to_cutoff(cutoffs)}
        out.attrs.update(checked)
    return out


# ---------------------------------------------------------------------- scoring
#: Models loaded in this Python process, by content hash: a Spark Python worker loads each model once.
_MODELS: dict[str, Any] = {}


def score(
    features: DataFrame,
    model: str | os.PathLike[str],
    *,
    customer_col: str = "customer_id",
    revenue_col: str | None = None,
    n_reasons: int = 3,
    trust_pickle: bool = False,
) -> DataFrame:
    """Churn scores for a Spark DataFrame of per-customer features, computed on the executors.

    The model files are read once on the driver (loaded there too, so that a refused or broken
    model fails before any task runs) and shipped to the executors as a broadcast variable; each
    Python worker loads the model once, through the same safe loader
    (:func:`churnrisk.modelfile.load_model`), and scores Arrow batches of rows (``mapInArrow``,
    the Arrow twin of ``mapInPandas``: batches reach pandas through PyArrow, not through PySpark's
    pandas conversion). Each batch goes through the in-process scorer
    (:func:`churnrisk.scoring.score_features`), so the columns and their meaning are the same.

    Parameters
    ----------
    features : pyspark.sql.DataFrame
        One row per customer with ``customer_col`` and every feature the model was trained on
        (e.g. from :func:`build_features`).
    model : path
        A model saved by :func:`churnrisk.modelfile.save_model` (``NAME.skops`` beside ``NAME.json``).
    customer_col : str, default "customer_id"
    revenue_col : str, optional
        A column of yearly revenue per customer; ``revenue_at_risk`` is NaN without it.
    n_reasons : int, default 3
        Reasons given per customer.
    trust_pickle : bool, default False
        As in :func:`~churnrisk.modelfile.load_model`.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_col``, ``churn_probability``, ``risk_tier`` (low/medium/high),
        ``revenue_at_risk`` and ``reasons``, as from :func:`churnrisk.scoring.score_features`
        (ordered by probability within each Arrow batch).
    """
    from pyspark.sql import types as T

    from churnrisk.modelfile import load_model

    loaded = load_model(model, trust_pickle=trust_pickle)
    needed = [customer_col, *loaded.features, *([revenue_col] if revenue_col else [])]
    missing = [c for c in needed if c not in features.columns]
    if missing:
        raise ChurnriskError(
            f"the feature table lacks {len(missing)} column(s) the model needs: {', '.join(missing[:20])}. "
            "Suggestion: score features built with the same tables and windows as the training data."
        )
    files = _model_files(model)
    payload = features.sparkSession.sparkContext.broadcast(files)
    schema = T.StructType(
        [
            features.schema[customer_col],
            T.StructField("churn_probability", T.DoubleType(), nullable=True),
            T.StructField("risk_tier", T.StringType(), nullable=True),
            T.StructField("revenue_at_risk", T.DoubleType(), nullable=True),
            T.StructField("reasons", T.StringType(), nullable=True),
        ]
    )

    def batches(stream: Iterator[Any]) -> Iterator[Any]:
        return _score_batches(
            stream,
            payload.value,
            trust_pickle,
            customer_col=customer_col,
            revenue_col=revenue_col,
            n_reasons=n_reasons,
        )

    with warnings.catch_warnings():
        # PySpark warns about pandas >= 3 for every Python UDF; batches here reach pandas through
        # PyArrow's own conversion, not PySpark's, which is what the warning is about.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
        # every feature column: reasons may quote columns the model does not use
        return features.mapInArrow(batches, schema)


def _model_files(model: str | os.PathLike[str]) -> dict[str, bytes]:
    """The model file and its metadata beside it, as bytes by file name."""
    path = Path(model)
    if path.suffix != ".skops" and not path.is_file():
        path = path.with_name(path.name + ".skops")
    files = {path.name: path.read_bytes()}
    meta = path.with_suffix(".json")
    if meta.is_file():
        files[meta.name] = meta.read_bytes()
    return files


def _worker_model(files: Mapping[str, bytes], trust_pickle: bool) -> Any:
    """Load the model once per Python process, from a private temporary copy of its files."""
    import hashlib
    import tempfile

    from churnrisk.modelfile import load_model

    key = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()
    if key not in _MODELS:
        with tempfile.TemporaryDirectory(prefix="churnrisk-model-") as folder:
            for name, content in files.items():
                Path(folder, name).write_bytes(content)
            model_name = next(n for n in files if not n.endswith(".json"))
            _MODELS[key] = load_model(Path(folder, model_name), trust_pickle=trust_pickle)
    return _MODELS[key]


def _score_batches(
    stream: Iterator[Any],
    files: Mapping[str, bytes],
    trust_pickle: bool,
    *,
    customer_col: str,
    revenue_col: str | None,
    n_reasons: int,
) -> Iterator[Any]:
    import pyarrow as pa

    from churnrisk.scoring import score_features

    model = _worker_model(files, trust_pickle)
    for batch in stream:
        if batch.num_rows == 0:
            continue
        frame = batch.to_pandas().set_index(customer_col)
        revenue = frame.pop(revenue_col).astype(float) if revenue_col else None
        scores = score_features(model, frame, revenue=revenue, n_reasons=n_reasons)
        id_type = batch.schema.field(customer_col).type
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(scores["customer_id"].to_numpy(), type=id_type),
                pa.array(scores["churn_probability"].to_numpy(), type=pa.float64()),
                pa.array(scores["risk_tier"].astype(str).to_numpy(), type=pa.string()),
                pa.array(scores["revenue_at_risk"].to_numpy(dtype=float), type=pa.float64()),
                pa.array(scores["reasons"].to_numpy(), type=pa.string()),
            ],
            names=[customer_col, "churn_probability", "risk_tier", "revenue_at_risk", "reasons"],
        )
