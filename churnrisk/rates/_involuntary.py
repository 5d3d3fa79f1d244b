"""Voluntary vs involuntary churn (seed), and the win-back list of involuntarily churned customers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import polars as pl

from churnrisk._deprecation import renamed
from churnrisk.definition import DEFAULT_INACTIVITY_DAYS, ChurnDefinition
from churnrisk.rates._customers import customer_counts, index_spells
from churnrisk.rates._periods import (
    _instant,
    data_span,
    finish,
    period_boundaries,
    rate_definition,
    ratio,
    store_spells,
    with_group,
)
from churnrisk.rates._revenue import mrr_steps
from churnrisk.spells import churn_type, shift_within

EVENT_COLUMNS = [
    "customer_id",
    "churned_at",
    "churn_type",
    "end_reason",
    "mrr_lost",
    "failed_payments",
    "last_failed_at",
    "last_failure_reason",
    "came_back",
]
SUMMARY_COLUMNS = [
    "period_start",
    "period_end",
    "customers_start",
    "churned",
    "churned_voluntary",
    "churned_involuntary",
    "involuntary_share",
    "voluntary_churn_rate",
    "involuntary_churn_rate",
    "mrr_churned_voluntary",
    "mrr_churned_involuntary",
]


@renamed(inactivity_days="lookback")
def churn_events(
    store: Any,
    *,
    start: Any = None,
    end: Any = None,
    definition: str | ChurnDefinition | None = None,
    window_days: float = 30,
    reactivation_gap_days: float = 0,
    lookback: int = DEFAULT_INACTIVITY_DAYS,
) -> pd.DataFrame:
    """Every churn (a spell end) in ``[start, end]``, typed voluntary or involuntary.

    The rule is :func:`churnrisk.spells.churn_type`. Columns: ``customer_id, churned_at, churn_type,
    end_reason``, ``mrr_lost`` (MRR just before the end, subscription data), ``failed_payments`` (failed
    attempts in the ``window_days`` before the churn), ``last_failed_at``, ``last_failure_reason`` and
    ``came_back`` (a later spell exists). Ends after the last event in the data are left out.
    """
    churn = rate_definition(store, definition, reactivation_gap_days, lookback)
    return _events(store, start, end, churn, window_days).to_pandas()


@renamed(inactivity_days="lookback")
def winback_list(store: Any, **options: Any) -> pd.DataFrame:
    """Involuntarily churned customers who have not come back, largest lost MRR first.

    Takes the options of :func:`churn_events`; the list is meant for a win-back sequence
    (e.g. "update your card").
    """
    events = pl.from_pandas(churn_events(store, **options))
    gone = events.filter((pl.col("churn_type") == "involuntary") & ~pl.col("came_back"))
    return gone.sort(["mrr_lost", "churned_at"], descending=[True, False], nulls_last=True).to_pandas()


@renamed(inactivity_days="lookback")
def churn_by_type(
    store: Any,
    *,
    period: str = "month",
    start: Any = None,
    end: Any = None,
    by: str | None = None,
    definition: str | ChurnDefinition | None = None,
    window_days: float = 30,
    reactivation_gap_days: float = 0,
    lookback: int = DEFAULT_INACTIVITY_DAYS,
) -> pd.DataFrame:
    """Voluntary and involuntary churn per period: counts, shares, rates over ``customers_start``, MRR.

    ``churned`` counts the customers whose spell ended in the period and did not resume in it (as
    ``churned_in_period`` in :func:`churn_rates`), split by the type of their churn.
    """
    churn = rate_definition(store, definition, reactivation_gap_days, lookback)
    first, last = data_span(store)
    bounds = period_boundaries(period, start, end, first=first, last=last)
    events = with_group(_events(store, bounds[0], bounds[-1], churn, window_days), store, by)
    spells = with_group(store_spells(store, churn), store, by)
    counted = _counted(events, index_spells(spells, bounds))
    starts = customer_counts(spells, bounds).select(
        "_group", "period", "period_start", "period_end", "customers_start"
    )
    return finish(_summary(counted, starts), by, SUMMARY_COLUMNS)


def _events(
    store: Any,
    start: Any,
    end: Any,
    churn: ChurnDefinition,
    window_days: float,
) -> pl.DataFrame:
    spells = store_spells(store, churn).sort("customer_id", "start")
    first, last = data_span(store)
    lo = _instant(start, "start") or first
    hi = _instant(end, "end") or last
    ended = spells.with_columns(came_back=shift_within(pl.col("start"), -1).is_not_null()).filter(
        pl.col("end").is_between(lo, min(hi, last))
    )
    churned = ended.select("customer_id", churned_at=pl.col("end"))
    typed = churn_type(store, churned, window_days=window_days)
    out = ended.select("customer_id", pl.col("end").alias("churned_at"), "end_reason", "came_back").join(
        typed, on=["customer_id", "churned_at"], how="left"
    )
    out = out.join(_payments(store, churned, window_days), on=["customer_id", "churned_at"], how="left")
    out = out.join(
        _mrr_lost(store, churned, churn),
        on=["customer_id", "churned_at"],
        how="left",
    )
    return (
        out.with_columns(pl.col("failed_payments").fill_null(0))
        .select(EVENT_COLUMNS)
        .sort("churned_at", "customer_id")
    )


def _payments(store: Any, churned: pl.DataFrame, window_days: float) -> pl.DataFrame:
    """Failed attempts in the window before each churn: how many, the last one and its reason."""
    payments = store.get("payments")
    empty = churned.with_columns(
        failed_payments=pl.lit(0, pl.UInt32),
        last_failed_at=pl.lit(None, pl.Datetime("us")),
        last_failure_reason=pl.lit(None, pl.String),
    )
    if payments is None or "status" not in payments.columns:
        return empty
    reason = (
        pl.col("failure_reason").cast(pl.String)
        if "failure_reason" in payments.columns
        else pl.lit(None, pl.String)
    )
    failed = payments.filter(pl.col("status") == "failed").select(
        "customer_id", "attempted_at", reason.alias("last_failure_reason")
    )
    window = timedelta(days=window_days)
    joined = churned.join(failed, on="customer_id").filter(
        pl.col("attempted_at").is_between(pl.col("churned_at") - window, pl.col("churned_at"))
    )
    return (
        joined.sort("attempted_at")
        .group_by("customer_id", "churned_at")
        .agg(
            failed_payments=pl.len(),
            last_failed_at=pl.col("attempted_at").last(),
            last_failure_reason=pl.col("last_failure_reason").last(),
        )
    )


def _mrr_lost(store: Any, churned: pl.DataFrame, churn: ChurnDefinition) -> pl.DataFrame:
    """MRR the customer paid just before the churn (subscription data; empty otherwise)."""
    if churn.kind != "subscription":
        return churned.with_columns(mrr_lost=pl.lit(None, pl.Float64))
    gap = churn.reactivation_gap_days
    steps = mrr_steps(store["subscriptions"], reactivation_gap_days=gap).with_columns(
        mrr_lost=shift_within(pl.col("mrr"))
    )
    return steps.select("customer_id", pl.col("t").alias("churned_at"), "mrr_lost").join(
        churned, on=["customer_id", "churned_at"], how="semi"
    )


def _counted(events: pl.DataFrame, spells: pl.DataFrame) -> pl.DataFrame:
    """Churn events that count as churned in their period: no later spell started in the same period."""
    ends = spells.filter(pl.col("end").is_not_null()).select(
        "customer_id",
        pl.col("end").alias("churned_at"),
        period=pl.col("p_end"),
        _stays=(pl.col("p_next_start") == pl.col("p_end")).fill_null(False),
    )
    return events.join(ends, on=["customer_id", "churned_at"]).filter(~pl.col("_stays"))


def _summary(counted: pl.DataFrame, starts: pl.DataFrame) -> pl.DataFrame:
    involuntary = pl.col("churn_type") == "involuntary"
    sums = counted.group_by("_group", "period").agg(
        churned=pl.len(),
        churned_involuntary=involuntary.sum(),
        mrr_churned_voluntary=pl.col("mrr_lost").filter(~involuntary).sum(),
        mrr_churned_involuntary=pl.col("mrr_lost").filter(involuntary).sum(),
    )
    table = starts.join(sums, on=["_group", "period"], how="left", nulls_equal=True).with_columns(
        pl.col("churned", "churned_involuntary").fill_null(0),
        pl.col("mrr_churned_voluntary", "mrr_churned_involuntary").fill_null(0.0),
    )
    return table.with_columns(
        churned_voluntary=pl.col("churned") - pl.col("churned_involuntary")
    ).with_columns(
        involuntary_share=ratio(pl.col("churned_involuntary"), pl.col("churned")),
        voluntary_churn_rate=ratio(pl.col("churned_voluntary"), pl.col("customers_start")),
        involuntary_churn_rate=ratio(pl.col("churned_involuntary"), pl.col("customers_start")),
    )
