"""Customer counts per period and the customer churn rates built on them (DESIGN §2).

Every count is a sum over spells keyed by period index, so the whole history is done in a few
group-bys, whatever the number of periods.
"""

from __future__ import annotations

import polars as pl

from churnrisk.rates._periods import (
    FAR_FUTURE,
    days,
    group_agg,
    group_values,
    period_frame,
    period_index,
    ratio,
)
from churnrisk.spells import shift_within

COUNT_COLUMNS = [
    "customers_start",
    "customers_new",
    "customers_reactivated",
    "customers_lost",
    "churned_in_period",
    "customers_end",
]


def index_spells(spells: pl.DataFrame, bounds: pl.Series) -> pl.DataFrame:
    """Add the period of each spell's start and end, and of the customer's previous and next start.

    ``p_start``/``p_end``: index of the period ``(B_k, B_k+1]`` holding the start / end (end null when
    open). The spell is active at boundaries ``B_j`` for ``p_start < j <= p_end``. ``spells`` must be
    sorted by customer and start, as :func:`churnrisk.spells.merge_intervals` returns them.
    """
    return spells.with_columns(
        p_start=period_index(spells["start"], bounds),
        p_end=period_index(spells["end"], bounds),
    ).with_columns(
        first=shift_within(pl.col("customer_id")).is_null(),
        p_prev_start=shift_within(pl.col("p_start")),
        p_next_start=shift_within(pl.col("p_start"), -1),
    )


def customer_counts(spells: pl.DataFrame, bounds: pl.Series) -> pl.DataFrame:
    """Counts, customer-days and rates per ``(_group, period)``; ``spells`` carries ``_group``."""
    spells = index_spells(spells, bounds)
    periods = period_frame(bounds)
    grid = group_values(spells).join(periods, how="cross")
    flows = _flows(spells, periods)
    counts = grid.join(flows, on=["_group", "period"], how="left", nulls_equal=True).with_columns(
        pl.col(c).fill_null(0).cast(pl.Float64 if c.startswith("_days") else pl.Int64)
        for c in flows.columns
        if c not in ("_group", "period")
    )
    opening = _active_at_first_boundary(spells)
    counts = (
        counts.join(opening, on="_group", how="left", nulls_equal=True)
        .sort("_group", "period", nulls_last=True)
        .with_columns(
            customers_end=(pl.col("_opening").fill_null(0) + (pl.col("_starts") - pl.col("_ends")).cum_sum())
            .over("_group")
            .cast(pl.Int64)
        )
        .with_columns(
            customers_start=pl.col("customers_end").shift(1).over("_group").fill_null(pl.col("_opening"))
        )
    )
    exposure = pl.col("customers_start") * pl.col("period_days") + pl.col("_days_in") - pl.col("_days_out")
    return counts.with_columns(customer_days=exposure).with_columns(_rates())


def _flows(spells: pl.DataFrame, periods: pl.DataFrame) -> pl.DataFrame:
    """Per ``(_group, period)``: starts, ends, new, reactivated, churned, lost and partial customer-days."""
    n_periods = periods.height
    period = pl.col("period")
    period_end = pl.lit(periods["period_end"]).gather(period.clip(0, n_periods - 1))
    inside = period.is_between(0, n_periods - 1)
    # Churned: the spell ended in the period and no later spell started in it (none runs at its end);
    # that spell is the last of the customer's spells ending in the period.
    churned = pl.col("p_next_start").is_null() | (pl.col("p_next_start") != pl.col("p_end"))
    # Lost: churned, and active at the period's start: the first spell ending in the period started before it.
    chain = shift_within(pl.col("p_end")) != pl.col("p_end")
    ends = spells.filter(pl.col("end").is_not_null()).with_columns(
        period=pl.col("p_end"),
        _chain_start=pl.when(chain.fill_null(True)).then(pl.col("p_start")).forward_fill(),
    )
    out_ = group_agg(
        # the period end is gathered before grouping: Polars fails on it inside agg on an empty frame
        ends.filter(inside).with_columns(_period_end=period_end),
        ["period"],
        [
            pl.len().alias("_ends"),
            churned.sum().alias("churned_in_period"),
            (churned & (pl.col("_chain_start") < period)).sum().alias("customers_lost"),
            days(pl.col("_period_end") - pl.col("end")).sum().alias("_days_out"),
        ],
    )
    reactivated = ~pl.col("first") & (pl.col("p_prev_start") != pl.col("p_start")).fill_null(True)
    in_ = group_agg(
        spells.with_columns(period=pl.col("p_start")).filter(inside).with_columns(_period_end=period_end),
        ["period"],
        [
            pl.len().alias("_starts"),
            pl.col("first").sum().alias("customers_new"),
            reactivated.sum().alias("customers_reactivated"),
            days(pl.col("_period_end") - pl.col("start")).sum().alias("_days_in"),
        ],
    )
    return in_.join(out_, on=["_group", "period"], how="full", coalesce=True, nulls_equal=True)


def _active_at_first_boundary(spells: pl.DataFrame) -> pl.DataFrame:
    """Spells running at ``B_0``: started at or before it (period index < 0), ending after it."""
    running = (pl.col("p_start") < 0) & (pl.col("p_end").fill_null(1) >= 0)
    return group_agg(spells, [], [running.sum().cast(pl.Int64).alias("_opening")])


def _rates() -> list[pl.Expr]:
    start, end = pl.col("customers_start"), pl.col("customers_end")
    average = pl.col("customer_days") / pl.col("period_days")
    return [
        ratio(start - end, start).alias("customer_churn_rate"),
        ratio(pl.col("customers_lost"), start).alias("lost_churn_rate"),
        ratio(pl.col("churned_in_period"), start + pl.col("customers_new") / 2).alias("adjusted_churn_rate"),
        ratio(pl.col("churned_in_period"), average).alias("exposure_churn_rate"),
    ]


__all__ = ["COUNT_COLUMNS", "FAR_FUTURE", "customer_counts", "index_spells"]
