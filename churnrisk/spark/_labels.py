"""Labels on Spark: the steps of :func:`churnrisk.definition.label_steps`, executed by Spark.

The default engine executes the same steps with Polars (:mod:`churnrisk.labels`): which spells,
eligible at which instants, stayed at which instant, known from when, and the churn type are
decided by the declaration, so a change to the churn definition lands in both engines. What is
Spark's own here is the execution of each step: merging intervals (with the grace period) with
window functions, "active at" as a filter, the end of the data as one aggregation.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import reduce
from typing import TYPE_CHECKING, Any

from churnrisk.contract import TABLES
from churnrisk.definition import END_TIMES, ChurnDefinition, LabelSteps, SpellSource, label_steps
from churnrisk.errors import ChurnriskError
from churnrisk.features._build import to_cutoff
from churnrisk.features._spark import ROW, timestamp
from churnrisk.labels import label_definition
from churnrisk.spark._store import SparkEventStore, _spark_store
from churnrisk.spells import INVOLUNTARY_REASON
from churnrisk.store import EventStore

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ID = "customer_id"
# Stands in for "never" (an open spell) wherever a maximum over end times is taken.
_FOREVER = datetime(9999, 12, 31)
#: Spells already built, by source (as :data:`churnrisk.labels.SpellCache`).
SparkSpells = dict[SpellSource, "DataFrame"]


# ---------------------------------------------------------------------- spells
def merge_intervals(intervals: DataFrame, gap_days: float = 0.0) -> DataFrame:
    """Each customer's intervals ``[start, end)`` that overlap, touch or lie less than ``gap_days``
    apart, merged (as :func:`churnrisk.spells.merge_intervals`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    gap_us = timedelta(days=gap_days) // timedelta(microseconds=1)
    end = F.coalesce(F.col("end"), timestamp(_FOREVER))
    ordered = Window.partitionBy(ID).orderBy("start", "_end", ROW)
    # A new spell starts when the interval begins after everything before it ended (touching
    # merges) and the pause is at least the grace period.
    reach = F.max("_end").over(ordered.rowsBetween(Window.unboundedPreceding, -1))
    pause = F.timestamp_diff("MICROSECOND", reach, F.col("start"))
    new = reach.isNull() | ((pause > 0) & (pause >= gap_us))
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


def source_spells(store: SparkEventStore, source: SpellSource) -> DataFrame:
    """The spells of one declared source (as :func:`churnrisk.spells.source_spells`)."""
    from pyspark.sql import functions as F

    frame = store[source.table]
    if source.window is None:
        end = F.col("ended_at") if "ended_at" in frame.columns else F.lit(None).cast("timestamp_ntz")
        reason = F.col("end_reason") if "end_reason" in frame.columns else F.lit(None)
        intervals = frame.select(
            ID, F.col(source.time).alias("start"), end.alias("end"), reason.cast("string").alias("end_reason")
        )
        return merge_intervals(intervals, source.gap_days)
    intervals = frame.select(
        ID,
        F.col(source.time).alias("start"),
        (F.col(source.time) + F.make_dt_interval(days=F.lit(source.window))).alias("end"),
        F.lit("inactivity").alias("end_reason"),
    ).dropDuplicates([ID, "start"])
    return merge_intervals(intervals)


def _active(store: SparkEventStore, where: tuple[SpellSource, datetime], cache: SparkSpells) -> DataFrame:
    from pyspark.sql import functions as F

    source, instant = where
    if source not in cache:
        cache[source] = source_spells(store, source)
    t = timestamp(instant)
    inside = (F.col("start") <= t) & (F.col("end").isNull() | (F.col("end") > t))
    return cache[source].filter(inside).select(ID).distinct()


def data_end(store: SparkEventStore) -> datetime:
    """The last instant the store knows about, in one Spark job (as :func:`churnrisk.definition.data_end`)."""
    from pyspark.sql import functions as F

    times = [(name, TABLES[name].time) for name in store.tables if TABLES[name].time] + list(END_TIMES)
    ends = [
        store[name].select(F.max(column).alias("t"))
        for name, column in times
        if name in store and column in store[name].columns
    ]
    last = reduce(lambda a, b: a.unionByName(b), ends).select(F.max("t")).first()[0] if ends else None  # type: ignore[index]
    if last is None:
        raise ChurnriskError("the event store has no dated events: churn cannot be measured or labelled.")
    return last  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- labels
def label_frame(
    store: SparkEventStore,
    cutoff: datetime,
    churn: ChurnDefinition,
    *,
    last_event: datetime,
    spells: SparkSpells | None = None,
) -> DataFrame:
    """Eligible customers with ``churned`` (null when censored) and ``churn_type`` (as
    :func:`churnrisk.labels.label_frame`)."""
    from pyspark.sql import functions as F

    steps = label_steps(churn, cutoff, store)
    cache: SparkSpells = {} if spells is None else spells
    eligible = _active(store, steps.eligible[0], cache)
    for where in steps.eligible[1:]:
        eligible = eligible.join(_active(store, where, cache), on=ID, how="left_semi")
    still = _active(store, steps.outcome, cache)
    censored = steps.known_at > last_event
    frame = eligible.join(still.withColumn("_still", F.lit(True)), on=ID, how="left")
    churned = F.lit(None) if censored else F.col("_still").isNull()
    frame = frame.select(
        ID, churned.cast("tinyint").alias("churned"), F.lit(None).cast("string").alias("churn_type")
    )
    if steps.churn_type and not censored:
        frame = _with_churn_type(store, frame, cache[steps.outcome[0]], steps)
    return frame


def _with_churn_type(
    store: SparkEventStore, frame: DataFrame, spells: DataFrame, steps: LabelSteps
) -> DataFrame:
    """Voluntary or involuntary, judged at the end of the spell running at the horizon's start."""
    from pyspark.sql import functions as F

    ended = (
        spells.filter((F.col("end") > timestamp(steps.start)) & (F.col("end") <= timestamp(steps.end)))
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

    if subscriptions is None or not {"ended_at", "end_reason"} <= set(subscriptions.columns):
        return None
    reasons = subscriptions.filter(F.col("end_reason").cast("string").rlike(INVOLUNTARY_REASON)).select(
        ID, F.col("ended_at").alias("churned_at")
    )
    return ended.join(reasons, on=[ID, "churned_at"], how="left_semi").select(ID)


def labels_with_censored(
    store: SparkEventStore, cutoff: Any, options: dict[str, Any]
) -> tuple[DataFrame, ChurnDefinition]:
    """The labels of every eligible customer at ``cutoff`` (censored ones included, ``churned`` null)
    and the checked definition, from the keyword arguments of :func:`make_labels`."""
    churn = label_definition(store, *_label_arguments(options))
    return label_frame(store, to_cutoff(cutoff), churn, last_event=data_end(store)), churn


def _label_arguments(options: dict[str, Any]) -> tuple[Any, ...]:
    names = ("horizon", "lookback", "lead_time", "reactivation_gap_days")
    return (options.get("definition", ""), *(options.get(name) for name in names))


def make_labels(
    store: SparkEventStore | EventStore,
    cutoff: Any,
    *,
    definition: str | ChurnDefinition,
    horizon: int | None = None,
    lookback: int | None = None,
    lead_time: int | None = None,
    reactivation_gap_days: float | None = None,
    spark: SparkSession | None = None,
) -> DataFrame:
    """Churn labels at ``cutoff`` on Spark, as :func:`churnrisk.labels.make_labels` defines them.

    Returns a Spark DataFrame ``customer_id, churned (0/1), churn_type``, sorted by customer; it is
    empty when the outcome runs past the end of the data (censored: it is not known yet).
    Parameters as in :func:`churnrisk.labels.make_labels`.
    """
    from pyspark.sql import functions as F

    options = {
        "definition": definition,
        "horizon": horizon,
        "lookback": lookback,
        "lead_time": lead_time,
        "reactivation_gap_days": reactivation_gap_days,
    }
    frame, _ = labels_with_censored(_spark_store(store, spark), cutoff, options)
    return frame.filter(F.col("churned").isNotNull()).orderBy(ID)
