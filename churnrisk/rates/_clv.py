"""Customer lifetime value (seed): value per period x expected lifetime (1 / churn rate)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import polars as pl

from churnrisk._deprecation import renamed
from churnrisk.definition import DEFAULT_INACTIVITY_DAYS, ChurnDefinition
from churnrisk.errors import ChurnriskError
from churnrisk.rates._churn import churn_rates
from churnrisk.rates._periods import PERIODS, finish, rate_definition, ratio, with_group
from churnrisk.rates._repeat import _orders

CLV_COLUMNS = [
    "customers",
    "orders",
    "revenue",
    "average_order_value",
    "purchase_frequency",
    "value_per_period",
    "churn_rate",
    "expected_lifetime_periods",
    "clv",
    "margin",
    "clv_margin",
]


@renamed(inactivity_days="lookback")
def customer_lifetime_value(
    store: Any,
    *,
    period: str = "month",
    start: Any = None,
    end: Any = None,
    by: str | None = None,
    margin: float | None = None,
    churn_rate: float | None = None,
    definition: str | ChurnDefinition | None = None,
    reactivation_gap_days: float = 0,
    lookback: int = DEFAULT_INACTIVITY_DAYS,
) -> pd.DataFrame:
    """Simple customer lifetime value, with every factor shown.

    ``clv = value_per_period x expected_lifetime_periods`` with ``expected_lifetime_periods =
    1 / churn_rate``, over the complete periods of :func:`churn_rates` (same ``start``/``end``):

    * order data (``definition="inactivity"``): ``value_per_period = average_order_value x
      purchase_frequency``, the average order value (revenue / orders) times the orders per customer
      per period (orders / customers who ordered / number of periods);
    * subscription data: ``value_per_period`` is the average MRR of the customers active at the
      periods' starts, times the months in a period; ``orders`` and the order columns are empty.

    ``churn_rate`` is the pooled lost-customer rate per period, ``sum(customers_lost) /
    sum(customers_start)``, unless given. ``margin`` (a fraction, e.g. 0.3) adds
    ``clv_margin = clv x margin``. NaN where a denominator is 0 (e.g. nobody churned).
    """
    if margin is not None and not 0 <= margin <= 1:
        raise ChurnriskError(f"The 'margin' parameter must be a fraction in [0, 1]. Got {margin!r} instead.")
    if churn_rate is not None and not 0 < churn_rate <= 1:
        raise ChurnriskError(f"The 'churn_rate' parameter must be in (0, 1]. Got {churn_rate!r} instead.")
    churn = rate_definition(store, definition, reactivation_gap_days, lookback)
    rates = (
        pl.from_pandas(
            churn_rates(
                store,
                period=period,
                start=start,
                end=end,
                by=by,
                definition=churn,
            )
        )
        .rename({by: "_group"} if by else {})
        .with_columns(*([] if by else [pl.lit(None, pl.String).alias("_group")]))
    )
    pooled = rates.group_by("_group").agg(
        _lost=pl.col("customers_lost").sum(),
        _start=pl.col("customers_start").sum(),
        _mrr=pl.col("mrr_start").sum() if "mrr_start" in rates.columns else pl.lit(None, pl.Float64),
        _n_periods=pl.len(),
        _from=pl.col("period_start").min(),
        _to=pl.col("period_end").max(),
    )
    if churn.kind == "subscription":
        months = 12 / PERIODS[period][1]
        table = pooled.with_columns(value_per_period=ratio(pl.col("_mrr"), pl.col("_start")) * months)
    else:
        table = _order_value(store, pooled, by)
    rate = pl.lit(churn_rate) if churn_rate is not None else ratio(pl.col("_lost"), pl.col("_start"))
    table = table.with_columns(churn_rate=rate.cast(pl.Float64))
    table = table.with_columns(expected_lifetime_periods=ratio(pl.lit(1.0), pl.col("churn_rate")))
    table = table.with_columns(
        clv=pl.col("value_per_period") * pl.col("expected_lifetime_periods"),
        margin=pl.lit(margin, pl.Float64),
    ).with_columns(clv_margin=pl.col("clv") * pl.col("margin"))
    for column in CLV_COLUMNS:
        if column not in table.columns:
            table = table.with_columns(pl.lit(None, pl.Float64).alias(column))
    return finish(
        table.rename({"_from": "period_start", "_to": "period_end"}),
        by,
        ["period_start", "period_end", *CLV_COLUMNS],
    )


def _order_value(store: Any, pooled: pl.DataFrame, by: str | None) -> pl.DataFrame:
    """Orders, revenue, average order value and purchase frequency inside the rates' periods."""
    if "orders" not in store:
        raise ChurnriskError(
            "order-based CLV needs an 'orders' table. Suggestion: use --definition subscription."
        )
    orders = with_group(_orders(store["orders"]), store, by).join(pooled, on="_group", nulls_equal=True)
    # Same boundary rule as the periods: an order at t counts when period_start < t <= period_end.
    inside = orders.filter((pl.col("ordered_at") > pl.col("_from")) & (pl.col("ordered_at") <= pl.col("_to")))
    sums = inside.group_by("_group").agg(
        customers=pl.col("customer_id").n_unique(), orders=pl.len(), revenue=pl.col("amount").sum()
    )
    return (
        pooled.join(sums, on="_group", how="left", nulls_equal=True)
        .with_columns(
            average_order_value=ratio(pl.col("revenue"), pl.col("orders")),
            purchase_frequency=ratio(pl.col("orders"), pl.col("customers")) / pl.col("_n_periods"),
        )
        .with_columns(value_per_period=pl.col("average_order_value") * pl.col("purchase_frequency"))
    )
