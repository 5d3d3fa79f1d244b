"""Point-in-time features on Spark, from the same declarations (:mod:`churnrisk.features._spark`),
and collecting or writing any Spark result."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from churnrisk.errors import ChurnriskError
from churnrisk.features._build import check_windows, to_cutoff, to_pandas_features
from churnrisk.features._spark import spark_feature_frame, timestamp
from churnrisk.features._spec import DEFAULT_WINDOWS
from churnrisk.spark._session import _exists, _url
from churnrisk.spark._store import SparkEventStore, _spark_store
from churnrisk.store import EventStore

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

ID = "customer_id"


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
        from churnrisk.training._sets import _to_pandas

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


#: The BG/NBD columns the default engine adds for order data under the inactivity definition
#: (:func:`churnrisk.training.with_repeat_buying`), in its order.
REPEAT_BUYING = ("purchases_bgnbd_quiet", "purchases_bgnbd_alive")


def with_repeat_buying(
    features: DataFrame,
    store: SparkEventStore | EventStore,
    cutoff: Any,
    *,
    horizon: int,
    spark: SparkSession | None = None,
) -> DataFrame:
    """``features`` with the BG/NBD columns an order-data model was trained with, sorted by customer.

    ``purchases_bgnbd_quiet`` (no purchase within ``horizon`` days) and ``purchases_bgnbd_alive``,
    as :func:`churnrisk.training.with_repeat_buying` computes them: Spark counts each customer's
    purchase days up to the cutoff (one row per customer reaches the driver), the BG/NBD model is
    fitted there on the same summary (:func:`churnrisk.bgnbd.rfm_from_days`), and its scores are
    joined back. Customers without orders get missing values.
    """
    import polars as pl
    from pyspark.sql import functions as F

    from churnrisk.bgnbd import quiet_and_alive, rfm_from_days
    from churnrisk.definition import check_days
    from churnrisk.spark._store import _from_polars

    sstore, at = _spark_store(store, spark), to_cutoff(cutoff)
    if "orders" not in sstore:
        raise ChurnriskError(
            "the BG/NBD columns need an 'orders' table. Suggestion: leave them out for subscription data."
        )
    days = (
        sstore["orders"]
        .filter(F.col("ordered_at") <= timestamp(at))
        .select(ID, F.date_trunc("day", "ordered_at").cast("timestamp_ntz").alias("day"))
        .distinct()
        .groupBy(ID)
        .agg(F.count("*").alias("n"), F.min("day").alias("first"), F.max("day").alias("last"))
    )
    collected = pl.from_arrow(days.toArrow())
    assert isinstance(collected, pl.DataFrame)
    summary = rfm_from_days(collected, at)
    quiet, alive = quiet_and_alive(summary, horizon_days=check_days(horizon, "horizon"))
    values = dict(zip(REPEAT_BUYING, (quiet.to_numpy(), alive.to_numpy()), strict=True))
    scores = _from_polars(features.sparkSession, pl.DataFrame({ID: summary.index.to_numpy(), **values}))
    return features.join(scores, on=ID, how="left").orderBy(ID)
