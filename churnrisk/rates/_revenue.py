"""Revenue churn: MRR movements for subscriptions, revenue from existing customers for orders.

MRR of a customer at instant ``t``: the sum of ``mrr`` over their subscription rows with
``started_at <= t < ended_at``. Inside a pause bridged by ``reactivation_gap_days`` (the customer is
still active) it stays at the last MRR they paid; a customer who is not active has MRR 0. Amounts
are compared after rounding to 6 decimals, so float noise is not reported as expansion.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from churnrisk.rates._periods import group_agg, group_values, period_frame, period_index, ratio, running_sum
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


def mrr_steps(subscriptions: pl.DataFrame, *, reactivation_gap_days: float = 0) -> pl.DataFrame:
    """Each customer's MRR as a step function: ``customer_id, t, mrr, active`` after every change at ``t``.

    A customer with no running row is still active while the pause is shorter than the reactivation
    gap (the rule of :func:`churnrisk.spells.subscription_spells`).
    """
    # MRR in integer millionths: running sums are exact, whatever the number of rows.
    micro = (pl.col("mrr").cast(pl.Float64) * 1e6).round().cast(pl.Int64)
    rows = subscriptions.select("customer_id", "started_at", "ended_at", micro.alias("mrr"))
    opens = rows.select("customer_id", pl.col("started_at").alias("t"), "mrr", _n=pl.lit(1))
    closes = rows.filter(pl.col("ended_at").is_not_null()).select(
        "customer_id", pl.col("ended_at").alias("t"), -pl.col("mrr"), _n=pl.lit(-1)
    )
    # Keep the state after the last change at each instant (a plan change ends and starts at once).
    last_at_t = (pl.col("customer_id") != pl.col("customer_id").shift(-1)) | (
        pl.col("t") != pl.col("t").shift(-1)
    )
    steps = (
        pl.concat([opens, closes])
        .sort("customer_id", "t")
        .with_columns(_within(pl.col("mrr")), _within(pl.col("_n")))
        .filter(last_at_t.fill_null(True))
    )
    running = pl.col("_n") > 0
    next_t = shift_within(pl.col("t"), -1)
    gone = ~running & (next_t.is_null() | (next_t - pl.col("t") >= timedelta(days=reactivation_gap_days)))
    first = shift_within(pl.col("customer_id")).is_null()
    return (
        steps.with_columns(
            # a bridged pause keeps the last MRR paid; filling forward never crosses customers
            mrr=pl.when(running).then(pl.col("mrr") / 1e6).when(first).then(0.0).forward_fill(),
            active=~gone,
        )
        .with_columns(mrr=pl.when(pl.col("active")).then(pl.col("mrr")).otherwise(0.0))
        .select("customer_id", "t", "mrr", "active")
    )


def _within(delta: pl.Expr) -> pl.Expr:
    """Running sum of an integer ``delta`` per customer on a frame sorted by customer (no window function)."""
    return running_sum(delta, shift_within(pl.col("customer_id")).is_null())


def mrr_movements(steps: pl.DataFrame, bounds: pl.Series) -> pl.DataFrame:
    """MRR columns per ``(_group, period)``; ``steps`` (sorted by customer and time) carries ``_group``.

    Each customer's changes inside one period form a run: the MRR before its first change is the
    MRR at the period's start, the MRR after its last change the MRR at its end.
    """
    periods = period_frame(bounds)
    period = pl.col("period")
    boundary = (pl.col("customer_id") != pl.col("customer_id").shift(1)) | (period != period.shift(1))
    steps = steps.with_columns(period=period_index(steps["t"], bounds)).with_columns(
        _mrr_before=shift_within(pl.col("mrr")).fill_null(0.0),
        _active_before=shift_within(pl.col("active")).fill_null(False),
        # a customer's first change is their first start
        p_first_start=pl.when(shift_within(pl.col("customer_id")).is_null()).then(period).forward_fill(),
        _run_first=boundary.fill_null(True),
        _run_last=boundary.shift(-1).fill_null(True),
    )
    inside = period.is_between(0, periods.height - 1)
    firsts = steps.filter(inside & pl.col("_run_first")).select(
        "_group", "period", "p_first_start", before="_mrr_before", was_active="_active_before"
    )
    lasts = steps.filter(inside & pl.col("_run_last")).select(after="mrr", is_active="active")
    changes = pl.concat([firsts, lasts], how="horizontal")
    movements = group_agg(changes, ["period"], _movement_sums())
    opening = group_agg(
        steps.filter((period < 0) & pl.col("_run_last")), [], [pl.col("mrr").sum().alias("_opening")]
    )
    grid = group_values(steps).join(periods, how="cross")
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


def order_revenue_churn(orders: pl.DataFrame, bounds: pl.Series, *, lookback: float) -> pl.DataFrame:
    """Revenue churn from existing customers (seed), per ``(_group, period)``.

    The customers active at the period's start (ordered in the ``lookback`` days before it): their
    revenue in the period before (``revenue_previous``) against their revenue in this period
    (``revenue_existing``); ``revenue_churn = 1 - existing / previous`` (net: may be negative).
    ``orders`` carries ``_group``.
    """
    n_periods = bounds.len() - 1
    previous_start = bounds[0] - (bounds[1] - bounds[0])
    extended = pl.concat([pl.Series([previous_start], dtype=bounds.dtype), bounds])
    # Period -1 is the one before the first; -2 gathers everything earlier (only its last order matters).
    # Sorted by customer and time, each customer's orders in one period are a run of rows.
    frame = orders.select(
        "customer_id",
        "_group",
        "ordered_at",
        (pl.col("amount").cast(pl.Float64) * 1e6).round().cast(pl.Int64),
    ).sort("customer_id", "ordered_at")
    frame = frame.with_columns(period=period_index(frame["ordered_at"], extended) - 1).filter(
        pl.col("period") < n_periods
    )
    key_changes = (pl.col("customer_id") != pl.col("customer_id").shift(-1)) | (
        pl.col("period") != pl.col("period").shift(-1)
    )
    run_first = key_changes.shift(1).fill_null(True)
    revenue = (
        frame.with_columns(revenue=running_sum(pl.col("amount"), run_first) / 1e6)
        .filter(key_changes.fill_null(True))
        .select("customer_id", "_group", "period", "revenue", last_order="ordered_at")
    )
    existing = _existing(revenue, bounds, timedelta(days=lookback))
    sums = group_agg(existing, ["period"], [pl.col("revenue_previous", "revenue_existing").sum()])
    grid = group_values(revenue).join(period_frame(bounds), how="cross")
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


def _existing(revenue: pl.DataFrame, bounds: pl.Series, window: timedelta) -> pl.DataFrame:
    """Per (customer, period k) active at ``B_k``: their revenue in ``k - 1`` and in ``k``.

    ``revenue`` has one row per customer and period with orders, sorted; only pairs with revenue in
    ``k`` or ``k - 1`` matter. The last order at or before ``B_k`` is the last one of the customer's
    latest period before ``k``, so everything comes from neighbouring rows (no join).
    """
    n_periods = bounds.len() - 1
    period = pl.col("period")

    def boundary(index: pl.Expr) -> pl.Expr:
        return pl.lit(bounds).gather(index.clip(0, n_periods))

    previous_is_adjacent = shift_within(period) == period - 1
    # pairs (c, k) for the periods with orders: the previous row holds the last order before B_k
    this = revenue.select(
        "_group",
        "period",
        revenue_previous=pl.when(previous_is_adjacent).then(shift_within(pl.col("revenue"))).otherwise(0.0),
        revenue_existing="revenue",
        _active=shift_within(pl.col("last_order")) > boundary(period) - window,
    ).filter(period.is_between(0, n_periods - 1))
    # pairs (c, k + 1) where k + 1 has no orders: revenue only in the period before
    following = revenue.filter(
        (shift_within(period, -1) != period + 1).fill_null(True) & (period + 1).is_between(0, n_periods - 1)
    ).select(
        "_group",
        period=period + 1,
        revenue_previous="revenue",
        revenue_existing=pl.lit(0.0),
        _active=pl.col("last_order") > boundary(period + 1) - window,
    )
    return pl.concat([this, following]).filter(pl.col("_active"))
