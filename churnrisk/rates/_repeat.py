"""Repeat purchases (non-contractual data): repeat-purchase rate, one-year non-repeat rate, repeat share.

An *order* is a distinct ``order_id`` when the orders table has one (several rows may be lines of one
order), otherwise a distinct ``(customer_id, ordered_at)``. Windows include ``start`` and exclude ``end``.
"""

from __future__ import annotations

import difflib
from datetime import timedelta
from importlib import resources
from typing import Any

import pandas as pd
import polars as pl

from churnrisk.errors import ChurnriskError
from churnrisk.rates._periods import (
    _instant,
    data_span,
    finish,
    group_agg,
    ratio,
    running_sum,
    to_micro,
    with_group,
)
from churnrisk.spells import shift_within

REPEAT_COLUMNS = [
    "customers",
    "repeat_customers",
    "repeat_purchase_rate",
    "orders",
    "repeat_orders",
    "repeat_order_share",
    "revenue",
    "repeat_revenue",
    "repeat_revenue_share",
    "customers_followed",
    "customers_not_back",
    "non_repeat_rate",
]


def category_benchmarks() -> pd.DataFrame:
    """One-year non-repeat rates by store category, shipped with the package (seed, Omniconvert).

    The share of customers who bought at least once and did not buy again within a year, measured over
    more than 1,000 online stores.

    Examples
    --------
    >>> category_benchmarks().set_index("category").loc["apparel", "non_repeat_rate"]
    np.float64(0.71)
    """
    path = resources.files("churnrisk") / "data" / "category_benchmarks.csv"
    with path.open("rb") as handle:
        return pd.read_csv(handle)


def benchmark_for(category: str) -> pd.Series:
    """The benchmark row of one category (case-insensitive); a clear error names the known ones."""
    table = category_benchmarks()
    match = table[table["category"].str.lower() == category.strip().lower()]
    if match.empty:
        known = table["category"].tolist()
        close = difflib.get_close_matches(category.lower(), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"choose one of {known}."
        raise ChurnriskError(f"no benchmark for the category {category!r}. Suggestion: {hint}")
    return match.iloc[0]


def repeat_rates(
    store: Any,
    *,
    start: Any = None,
    end: Any = None,
    within_days: float = 365,
    by: str | None = None,
    category: str | None = None,
) -> pd.DataFrame:
    """Repeat-purchase rate, repeat-customer shares and the one-year non-repeat rate.

    Parameters
    ----------
    store : EventStore
        Needs an ``orders`` table.
    start, end : date-like, optional
        The window of orders (default: all of them).
    within_days : float, default 365
        The non-repeat horizon: a customer is "not back" when no second order follows the first one
        within this many days. Only customers whose first-ever order is at least this long before
        ``end`` are followed, so recent buyers do not inflate the rate.
    by : str, optional
        A column of the customers table.
    category : str, optional
        A store category from :func:`category_benchmarks`: adds ``benchmark_non_repeat_rate`` and
        ``non_repeat_vs_benchmark`` (yours minus the benchmark) for a side-by-side comparison.

    Returns
    -------
    pandas.DataFrame
        One row (per group): ``customers`` with at least one order in the window, ``repeat_customers``
        with two or more, ``repeat_purchase_rate``; the orders and revenue of repeat customers and their
        shares (the seed's reference: 21 % of customers, 44 % of revenue, 46 % of orders);
        ``customers_followed``, ``customers_not_back`` and ``non_repeat_rate``.
    """
    if "orders" not in store:
        raise ChurnriskError(
            "repeat-purchase rates need an 'orders' table. Suggestion: add orders.csv to the event store."
        )
    orders = with_group(_orders(store["orders"]), store, by)
    lo, hi = _window(store, start, end)
    inside = orders.filter(pl.col("ordered_at").is_between(lo, hi, closed="left"))
    table = _shares(inside).join(
        _non_repeat(orders, lo, hi, timedelta(days=within_days)),
        on="_group",
        how="full",
        coalesce=True,
        nulls_equal=True,
    )
    columns = list(REPEAT_COLUMNS)
    if category is not None:
        bench = benchmark_for(category)
        table = table.with_columns(
            benchmark_category=pl.lit(bench["category"]),
            benchmark_non_repeat_rate=pl.lit(float(bench["non_repeat_rate"])),
        ).with_columns(
            non_repeat_vs_benchmark=pl.col("non_repeat_rate") - pl.col("benchmark_non_repeat_rate")
        )
        columns += ["benchmark_category", "benchmark_non_repeat_rate", "non_repeat_vs_benchmark"]
    return finish(table, by, columns)


def _orders(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per order, ``customer_id, ordered_at, amount`` (lines of one order summed), sorted by
    customer and time."""
    if "order_id" in frame.columns and frame["order_id"].null_count() == 0:
        grouped = frame.group_by("customer_id", "order_id").agg(
            pl.col("ordered_at").min(), pl.col("amount").sum()
        )
        return grouped.select("customer_id", "ordered_at", "amount").sort("customer_id", "ordered_at")
    # no order id: the rows of one customer at one instant are one order
    frame = frame.select("customer_id", "ordered_at", amount=to_micro(pl.col("amount"))).sort(
        "customer_id", "ordered_at"
    )
    change = (pl.col("customer_id") != pl.col("customer_id").shift(1)) | (
        pl.col("ordered_at") != pl.col("ordered_at").shift(1)
    )
    return frame.with_columns(amount=running_sum(pl.col("amount"), change.fill_null(True)) / 1e6).filter(
        change.shift(-1).fill_null(True)
    )


def _window(store: Any, start: Any, end: Any) -> tuple[Any, Any]:
    first, last = data_span(store)
    lo = _instant(start, "start") or first
    hi = _instant(end, "end") or last + timedelta(microseconds=1)
    if lo >= hi:
        raise ChurnriskError(f"the window from {lo} to {hi} is empty. Suggestion: check --start and --end.")
    return lo, hi


def _last_of_customer() -> pl.Expr:
    return shift_within(pl.col("customer_id"), -1).is_null()


def _shares(orders: pl.DataFrame) -> pl.DataFrame:
    """Repeat-customer shares; ``orders`` sorted by customer."""
    first = shift_within(pl.col("customer_id")).is_null()
    per_customer = orders.with_columns(
        n=running_sum(pl.repeat(1, pl.len(), dtype=pl.Int64), first),
        revenue=running_sum(to_micro(pl.col("amount")), first) / 1e6,
    ).filter(_last_of_customer())
    repeat = pl.col("n") >= 2
    table = group_agg(
        per_customer,
        [],
        [
            pl.len().alias("customers"),
            repeat.sum().alias("repeat_customers"),
            pl.col("n").sum().alias("orders"),
            pl.col("n").filter(repeat).sum().alias("repeat_orders"),
            pl.col("revenue").sum(),
            pl.col("revenue").filter(repeat).sum().alias("repeat_revenue"),
        ],
    )
    return table.with_columns(
        repeat_purchase_rate=ratio(pl.col("repeat_customers"), pl.col("customers")),
        repeat_order_share=ratio(pl.col("repeat_orders"), pl.col("orders")),
        repeat_revenue_share=ratio(pl.col("repeat_revenue"), pl.col("revenue")),
    )


def _non_repeat(orders: pl.DataFrame, lo: Any, hi: Any, within: timedelta) -> pl.DataFrame:
    """Customers whose first order is in ``[lo, hi - within)``: did a second follow within the horizon?

    ``orders`` sorted by customer and time: a customer's first row is their first order.
    """
    firsts = orders.select(
        "_group",
        first="ordered_at",
        second=shift_within(pl.col("ordered_at"), -1),
        _first_row=shift_within(pl.col("customer_id")).is_null(),
    ).filter(pl.col("_first_row") & pl.col("first").is_between(lo, hi - within, closed="left"))
    back = pl.col("second").is_not_null() & (pl.col("second") <= pl.col("first") + within)
    table = group_agg(
        firsts, [], [pl.len().alias("customers_followed"), (~back).sum().alias("customers_not_back")]
    )
    return table.with_columns(
        non_repeat_rate=ratio(pl.col("customers_not_back"), pl.col("customers_followed"))
    )
