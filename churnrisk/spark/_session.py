"""Starting Spark: the optional dependency, a local or cluster session, paths Spark reads."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from churnrisk.errors import ChurnriskError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INSTALL = 'pip install "churnrisk[spark]"'


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
