"""Revenue churn: MRR movements for subscriptions, revenue from existing customers for orders.

MRR of a customer at instant ``t``: the sum of ``mrr`` over their subscription rows with
``started_at <= t < ended_at``. Inside a pause bridged by ``reactivation_gap_days`` (the customer is
still active) it stays at the last MRR they paid; a customer who is not active has MRR 0. Amounts
are compared after rounding to 6 decimals, so float noise is not reported as expansion.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from churnrisk.rates._periods import period_frame, period_index, ratio
from churnrisk.spells import shift_within

MRR_COLUMNS = [
    "mrr_start",
    "mrr_churned",
    "mrr_contraction",
    "mrr_expansion",
    "gross_revenue_churn",
    "net_revenue_churn",
    "mrr_new",
    "mrr_reactivated",
    "mrr_end",
    "gross_revenue_retention",
    "net_revenue_retention",
    "quick_ratio",
]
ORDER_REVENUE_COLUMNS = ["revenue_previous", "revenue_existing", "revenue_churn"]


def mrr_steps(subscriptions: pl.DataFrame, spells: pl.DataFrame) -> pl.DataFrame:
    """Each customer's MRR as a step function: ``customer_id, t, mrr, active`` after every change at ``t``."""
    # MRR in integer millionths: running sums are exact, whatever the number of rows.
    micro = (pl.col("mrr").cast(pl.Float64) * 1e6).round().cast(pl.Int64)
    rows = subscriptions.select("customer_id", "started_at", "ended_at", micro.alias("mrr"))
    opens = rows.select("customer_id", pl.col("started_at").alias("t"), "mrr", _n=pl.lit(1))
    closes = rows.filter(pl.col("ended_at").is_not_null()).select(
        "customer_id", pl.col("ended_at").alias("t"), -pl.col("mrr"), _n=pl.lit(-1)
    )
    spell_ends = spells.filter(pl.col("end").is_not_null()).select(
        "customer_id", pl.col("end").alias("t"), _gone=pl.lit(True)
    )
    running = pl.col("_n") > 0
    return (
        pl.concat([opens, closes])
        .group_by("customer_id", "t")
        .agg(pl.col("mrr").sum(), pl.col("_n").sum())
        .sort("customer_id", "t")
        .with_columns(_within(pl.col("mrr")), _within(pl.col("_n")))
        .join(spell_ends, on=["customer_id", "t"], how="left", maintain_order="left")
        # A customer's first change is always a start, so filling forward never crosses customers.
        .with_columns(
            mrr=pl.when(running).then(pl.col("mrr") / 1e6).forward_fill(),
            active=running | pl.col("_gone").is_null(),
        )
        .with_columns(mrr=pl.when(pl.col("active")).then(pl.col("mrr")).otherwise(0.0))
        .select("customer_id", "t", "mrr", "active")
    )


def _within(delta: pl.Expr) -> pl.Expr:
    """Running sum of an integer ``delta`` per customer on a frame sorted by customer (no window function)."""
    total = delta.cum_sum()
    first = shift_within(pl.col("customer_id")).is_null()
    return total - pl.when(first).then(total - delta).forward_fill()


def mrr_movements(steps: pl.DataFrame, bounds: pl.Series, first_start: pl.DataFrame) -> pl.DataFrame:
    """MRR columns per ``(_group, period)``; ``first_start`` holds each customer's ``p_first_start``."""
    steps = steps.sort("customer_id", "t")
    steps = steps.with_columns(
        period=period_index(steps["t"], bounds),
        _mrr_before=shift_within(pl.col("mrr")).fill_null(0.0),
        _active_before=shift_within(pl.col("active")).fill_null(False),
    )
    periods = period_frame(bounds)
    changes = (
        steps.filter(pl.col("period").is_between(0, periods.height - 1))
        .group_by("customer_id", "_group", "period")
        .agg(
            before=pl.col("_mrr_before").first(),
            was_active=pl.col("_active_before").first(),
            after=pl.col("mrr").last(),
            is_active=pl.col("active").last(),
        )
        .join(first_start, on="customer_id", how="left")
    )
    movements = changes.group_by("_group", "period").agg(_movement_sums())
    opening = (
        steps.filter(pl.col("period") < 0)
        .group_by("customer_id", "_group")
        .agg(pl.col("mrr").last())
        .group_by("_group")
        .agg(_opening=pl.col("mrr").sum())
    )
    grid = steps.select("_group").unique().join(periods, how="cross")
    out = (
        grid.join(movements, on=["_group", "period"], how="left", nulls_equal=True)
        .with_columns(pl.col(c).fill_null(0.0) for c in movements.columns if c.startswith("mrr_"))
        .join(opening, on="_group", how="left", nulls_equal=True)
        .sort("_group", "period", nulls_last=True)
    )
    delta = (
        pl.col("mrr_new")
        + pl.col("mrr_reactivated")
        + pl.col("mrr_expansion")
        - pl.col("mrr_churned")
        - pl.col("mrr_contraction")
    )
    out = out.with_columns(
        mrr_end=(pl.col("_opening").fill_null(0.0) + delta.cum_sum()).over("_group").round(6)
    ).with_columns(
        mrr_start=pl.col("mrr_end").shift(1).over("_group").fill_null(pl.col("_opening").fill_null(0.0))
    )
    return out.with_columns(_mrr_rates()).select("_group", "period", *MRR_COLUMNS)


def _movement_sums() -> list[pl.Expr]:
    stayed = pl.col("was_active") & pl.col("is_active")
    came = ~pl.col("was_active") & pl.col("is_active")
    new = pl.col("p_first_start") == pl.col("period")
    return [
        pl.col("before").filter(pl.col("was_active") & ~pl.col("is_active")).sum().alias("mrr_churned"),
        (pl.col("before") - pl.col("after"))
        .filter(stayed & (pl.col("after") < pl.col("before")))
        .sum()
        .alias("mrr_contraction"),
        (pl.col("after") - pl.col("before"))
        .filter(stayed & (pl.col("after") > pl.col("before")))
        .sum()
        .alias("mrr_expansion"),
        pl.col("after").filter(came & new).sum().alias("mrr_new"),
        pl.col("after").filter(came & ~new).sum().alias("mrr_reactivated"),
    ]


def _mrr_rates() -> list[pl.Expr]:
    start = pl.col("mrr_start")
    lost = pl.col("mrr_churned") + pl.col("mrr_contraction")
    gained = pl.col("mrr_new") + pl.col("mrr_reactivated") + pl.col("mrr_expansion")
    net = lost - pl.col("mrr_expansion")
    return [
        ratio(lost, start).alias("gross_revenue_churn"),
        ratio(net, start).alias("net_revenue_churn"),
        (1 - ratio(lost, start)).alias("gross_revenue_retention"),
        (1 - ratio(net, start)).alias("net_revenue_retention"),
        ratio(gained, lost).alias("quick_ratio"),
    ]


def order_revenue_churn(orders: pl.DataFrame, bounds: pl.Series, *, inactivity_days: float) -> pl.DataFrame:
    """Revenue churn from existing customers (seed), per ``(_group, period)``.

    The customers active at the period's start (ordered in the ``inactivity_days`` before it): their
    revenue in the period before (``revenue_previous``) against their revenue in this period
    (``revenue_existing``); ``revenue_churn = 1 - existing / previous`` (net: may be negative).
    ``orders`` carries ``_group``.
    """
    n_periods = bounds.len() - 1
    previous_start = bounds[0] - (bounds[1] - bounds[0])
    extended = pl.concat([pl.Series([previous_start], dtype=bounds.dtype), bounds])
    # Period -1 is the one before the first; -2 gathers everything earlier (only its last order matters).
    revenue = (
        orders.with_columns(period=period_index(orders["ordered_at"], extended) - 1)
        .filter(pl.col("period") < n_periods)
        .group_by("customer_id", "_group", "period")
        .agg(revenue=pl.col("amount").sum(), last_order=pl.col("ordered_at").max())
        .sort("customer_id", "period")
    )
    pairs = _active_pairs(revenue, bounds, timedelta(days=inactivity_days))
    this = revenue.select("customer_id", "period", "revenue")
    sums = (
        pairs.join(this, on=["customer_id", "period"], how="left")
        .join(
            this.with_columns(pl.col("period") + 1),
            on=["customer_id", "period"],
            how="left",
            suffix="_previous",
        )
        .group_by("_group", "period")
        .agg(revenue_previous=pl.col("revenue_previous").sum(), revenue_existing=pl.col("revenue").sum())
    )
    grid = orders.select("_group").unique().join(period_frame(bounds), how="cross")
    return (
        grid.join(sums, on=["_group", "period"], how="left", nulls_equal=True)
        .with_columns(pl.col("revenue_previous", "revenue_existing").fill_null(0.0))
        .with_columns(
            revenue_churn=ratio(
                pl.col("revenue_previous") - pl.col("revenue_existing"), pl.col("revenue_previous")
            )
        )
        .select("_group", "period", *ORDER_REVENUE_COLUMNS)
    )


def _active_pairs(revenue: pl.DataFrame, bounds: pl.Series, window: timedelta) -> pl.DataFrame:
    """(customer, period k) with revenue in k or k - 1, active at ``B_k`` (last order after ``B_k - window``).

    ``revenue`` is sorted by customer and period; the last order at or before ``B_k`` is the last one of
    the customer's latest period before ``k``.
    """
    n_periods = bounds.len() - 1
    starts = pl.DataFrame({"period": pl.Series(range(n_periods), dtype=pl.Int64), "t": bounds[:-1]})
    # pair (c, p): the previous period with orders holds the last order before B_p
    same = revenue.select("customer_id", "_group", "period", last_order=shift_within(pl.col("last_order")))
    # pair (c, p + 1): this period's last order is the last before B_p+1
    following = revenue.select("customer_id", "_group", pl.col("period") + 1, "last_order")
    return (
        pl.concat([same, following])
        .join(starts, on="period")
        .filter(pl.col("last_order") > pl.col("t") - window)
        .unique(["customer_id", "period"])
        .select("customer_id", "_group", "period")
    )
