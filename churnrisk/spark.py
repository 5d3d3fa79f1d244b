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
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnrisk.contract import TABLES, TableSpec
from churnrisk.errors import ChurnriskError, DataError, Problem
from churnrisk.features._build import check_windows, to_cutoff, to_pandas_features
from churnrisk.features._spark import ROW, spark_feature_frame
from churnrisk.features._spec import DEFAULT_WINDOWS
from churnrisk.store import EventStore, StoreConfig, read_config

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "SparkEventStore",
    "build_features",
    "read_store",
    "score",
    "spark_available",
    "spark_session",
    "to_pandas",
    "write_parquet",
]

INSTALL = 'pip install "churnrisk[spark]"'
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
    base = str(path).rstrip("/")
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


def to_pandas(frame: DataFrame, *, index: str | None = "customer_id") -> pd.DataFrame:
    """Collect a Spark result as the default engine returns it (through Arrow, text as categoricals)."""
    import polars as pl

    collected = pl.from_arrow(frame.toArrow())
    if index == "customer_id":
        return to_pandas_features(collected)  # type: ignore[arg-type]
    out = collected.to_pandas()  # type: ignore[union-attr]
    return out.set_index(index) if index else out


def write_parquet(frame: DataFrame, path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
    """Write a Spark DataFrame as a Parquet folder; refuses to replace ``path`` unless ``overwrite``."""
    target = str(path)
    if not overwrite and _exists(frame.sparkSession, target):
        raise ChurnriskError(
            f"{target} already exists. Suggestion: pass --overwrite to replace it, or choose another path."
        )
    frame.write.mode("overwrite" if overwrite else "errorifexists").parquet(target)
    return target


# ---------------------------------------------------------------------- scoring
#: Models loaded in this Python process, by content hash: a Spark Python worker loads each model once.
_MODELS: dict[str, Any] = {}


def score(
    features: DataFrame,
    model: str | os.PathLike[str],
    *,
    customer_col: str = "customer_id",
    trust_pickle: bool = False,
) -> DataFrame:
    """Churn probabilities for a Spark DataFrame of per-customer features, computed on the executors.

    The model files are read once on the driver (loaded there too, so that a refused or broken
    model fails before any task runs) and shipped to the executors as a broadcast variable; each
    Python worker loads the model once, through the same safe loader
    (:func:`churnrisk.modelfile.load_model`), and scores Arrow batches of rows (``mapInArrow``,
    the Arrow twin of ``mapInPandas``: batches reach pandas through PyArrow, not through PySpark's
    pandas conversion).

    Parameters
    ----------
    features : pyspark.sql.DataFrame
        One row per customer with ``customer_col`` and every feature the model was trained on
        (e.g. from :func:`build_features`).
    model : path
        A model saved by :func:`churnrisk.modelfile.save_model` (``NAME.skops`` beside ``NAME.json``).
    customer_col : str, default "customer_id"
    trust_pickle : bool, default False
        As in :func:`~churnrisk.modelfile.load_model`.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_col`` and ``churn_probability``, in the input's row order within partitions.
    """
    from pyspark.sql import types as T

    from churnrisk.modelfile import load_model

    loaded = load_model(model, trust_pickle=trust_pickle)
    missing = [c for c in [customer_col, *loaded.features] if c not in features.columns]
    if missing:
        raise ChurnriskError(
            f"the feature table lacks {len(missing)} column(s) the model needs: {', '.join(missing[:20])}. "
            "Suggestion: score features built with the same tables and windows as the training data."
        )
    files = _model_files(model)
    payload = features.sparkSession.sparkContext.broadcast(files)
    columns = [customer_col, *loaded.features]
    schema = T.StructType(
        [features.schema[customer_col], T.StructField("churn_probability", T.DoubleType(), nullable=True)]
    )

    def batches(stream: Iterator[Any]) -> Iterator[Any]:
        return _score_batches(stream, payload.value, customer_col, trust_pickle)

    with warnings.catch_warnings():
        # PySpark warns about pandas >= 3 for every Python UDF; batches here reach pandas through
        # PyArrow's own conversion, not PySpark's, which is what the warning is about.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
        return features.select(columns).mapInArrow(batches, schema)


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
    stream: Iterator[Any], files: Mapping[str, bytes], customer_col: str, trust_pickle: bool
) -> Iterator[Any]:
    import pyarrow as pa

    model = _worker_model(files, trust_pickle)
    for batch in stream:
        if batch.num_rows == 0:
            continue
        probability = model.predict_proba(batch.to_pandas())
        yield pa.RecordBatch.from_arrays(
            [batch.column(customer_col), pa.array(probability, type=pa.float64())],
            names=[customer_col, "churn_probability"],
        )
