"""Periods, boundaries and the small arithmetic every calculator shares.

A period is measured by two snapshots: the instant ``period_start`` and the instant ``period_end``
(the next period's start). A change at instant ``t`` (a spell starting or ending, an order) belongs
to the period with ``period_start < t <= period_end``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl

from churnrisk.definition import DEFAULT_INACTIVITY_DAYS, ChurnDefinition, activity_table, check_days
from churnrisk.definition import data_span as data_span  # one end of the data, for rates and labels
from churnrisk.errors import ChurnriskError
from churnrisk.spells import order_spells, subscription_spells

#: Period name -> (Polars interval, periods per year used to annualise).
PERIODS: dict[str, tuple[str, int]] = {
    "day": ("1d", 365),
    "week": ("1w", 52),
    "month": ("1mo", 12),
    "quarter": ("1q", 4),
    "year": ("1y", 1),
}

FAR_FUTURE = datetime(9999, 12, 31)


def check_period(period: str) -> str:
    if period not in PERIODS:
        raise ChurnriskError(
            f"The 'period' parameter must be one of {list(PERIODS)}. Got {period!r} instead."
        )
    return period


def annualise(rate: Any, period: str) -> Any:
    """Annualise a per-period churn rate: ``1 - (1 - rate) ** periods_per_year``.

    Examples
    --------
    >>> round(annualise(0.04, "month"), 4)
    0.3873
    """
    return 1 - (1 - rate) ** PERIODS[check_period(period)][1]


def ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """``numerator / denominator`` as a float, NaN where the denominator is 0."""
    return pl.when(denominator != 0).then(numerator / denominator).otherwise(float("nan"))


def _instant(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)
    except (ValueError, TypeError):
        raise ChurnriskError(f"The '{name}' parameter must be a date. Got {value!r} instead.") from None


def period_boundaries(period: str, start: Any, end: Any, *, first: datetime, last: datetime) -> pl.Series:
    """Instants ``B_0 < B_1 < ... < B_P``: period ``k`` runs from ``B_k`` to ``B_k+1``.

    ``start`` defaults to the start of the period holding ``first`` (the first activity); it is used as
    given otherwise. Only complete periods are returned: the last boundary is at or before ``end``
    (default ``last``, the last event in the data).
    """
    interval = PERIODS[check_period(period)][0]
    begin = _instant(start, "start")
    stop = _instant(end, "end") or last
    if begin is None:
        begin = pl.Series([first]).dt.truncate(interval).item()
    if begin >= stop:
        raise ChurnriskError(
            f"no complete {period} between {begin:%Y-%m-%d} and {stop:%Y-%m-%d}. "
            "Suggestion: choose an earlier --start, a later --end or a shorter --period."
        )
    bounds = pl.datetime_range(begin, stop, interval, eager=True, time_unit="us")
    if bounds.len() < 2:
        raise ChurnriskError(
            f"no complete {period} between {begin:%Y-%m-%d} and {stop:%Y-%m-%d}. "
            "Suggestion: choose an earlier --start, a later --end or a shorter --period."
        )
    return bounds.alias("boundary")


def period_index(times: pl.Series, bounds: pl.Series) -> pl.Series:
    """Index ``k`` of the period ``(B_k, B_k+1]`` holding each instant (-1 before, P after, null: null)."""
    filled = times.fill_null(FAR_FUTURE)
    index = bounds.search_sorted(filled, side="left").cast(pl.Int64) - 1
    return pl.select(pl.when(times.is_not_null()).then(index)).to_series().alias(times.name)


def period_frame(bounds: pl.Series) -> pl.DataFrame:
    """One row per period: ``period`` (index), ``period_start``, ``period_end``, ``period_days``."""
    frame = pl.DataFrame({"period_start": bounds[:-1], "period_end": bounds[1:]}).with_row_index("period")
    days = (pl.col("period_end") - pl.col("period_start")).dt.total_microseconds() / 86_400e6
    return frame.with_columns(pl.col("period").cast(pl.Int64), days.alias("period_days"))


# ---------------------------------------------------------------------- spells of a store
def activity_events(store: Any) -> pl.DataFrame | None:
    """``customer_id, ordered_at[, amount]`` of the events that keep a customer active (orders, else
    activity), sorted by customer and time: sorting once makes every later sort cheap."""
    if "orders" not in store and "activity" not in store:
        return None
    table, time = activity_table(store)
    revenue = ["amount"] if table == "orders" else []
    events = store[table].select("customer_id", pl.col(time).alias("ordered_at"), *revenue)
    return events.sort("customer_id", "ordered_at")


def rate_definition(
    store: Any,
    definition: str | ChurnDefinition | None,
    reactivation_gap_days: float = 0,
    lookback: int = DEFAULT_INACTIVITY_DAYS,
) -> ChurnDefinition:
    """The churn definition of a rate from its keyword arguments (or given whole), checked once."""
    if isinstance(definition, ChurnDefinition):
        if (reactivation_gap_days, lookback) != (0, DEFAULT_INACTIVITY_DAYS):
            raise ChurnriskError(
                "a ChurnDefinition was given together with reactivation_gap_days or lookback. "
                "Suggestion: put them into the definition (lookback, reactivation_gap_days)."
            )
        return ChurnDefinition.make(store, definition)
    return ChurnDefinition.make(
        store,
        definition,
        lookback=check_days(lookback, "lookback"),
        reactivation_gap_days=reactivation_gap_days,
    )


def store_spells(store: Any, churn: ChurnDefinition, *, events: pl.DataFrame | None = None) -> pl.DataFrame:
    """The store's spells under one churn definition (``events``: :func:`activity_events`, if at hand)."""
    if churn.kind == "subscription":
        return subscription_spells(store["subscriptions"], reactivation_gap_days=churn.reactivation_gap_days)
    events = activity_events(store) if events is None else events
    assert events is not None  # resolve_kind checked it
    return order_spells(events, lookback=churn.window)


def with_group(frame: pl.DataFrame, store: Any, by: str | None) -> pl.DataFrame:
    """Add the customer attribute ``by`` as a column ``_group`` (a constant when ``by`` is None)."""
    if by is None:
        return frame.with_columns(_group=pl.lit(None, pl.String))
    customers = store["customers"]
    if by not in customers.columns or by == "customer_id":
        attributes = [c for c in customers.columns if c != "customer_id"]
        raise ChurnriskError(
            f"The 'by' parameter must name a column of the customers table. Got {by!r}; "
            f"the customers table has {attributes}."
        )
    groups = customers.select("customer_id", pl.col(by).alias("_group"))
    return frame.join(groups, on="customer_id", how="left", maintain_order="left")


def running_sum(delta: pl.Expr, first: pl.Expr) -> pl.Expr:
    """Running sum of an integer ``delta`` restarting where ``first`` is true (exact: integers).

    On a frame sorted by customer this is a per-customer cumulative sum without a window function.
    """
    total = delta.cum_sum()
    return total - pl.when(first).then(total - delta).forward_fill()


def to_micro(amount: pl.Expr) -> pl.Expr:
    """Money as integer millionths, so that running sums are exact."""
    return (amount.cast(pl.Float64) * 1e6).round().cast(pl.Int64)


def group_agg(frame: pl.DataFrame, keys: list[str], aggs: list[pl.Expr]) -> pl.DataFrame:
    """``frame.group_by("_group", *keys).agg(*aggs)``; without a ``by`` group (all null) it groups by
    ``keys`` alone, several times faster on millions of rows."""
    if frame["_group"].null_count() < frame.height:
        return frame.group_by("_group", *keys).agg(*aggs)
    empty = pl.lit(None, frame["_group"].dtype).alias("_group")
    if not keys:
        return frame.select(*aggs).with_columns(empty)
    return frame.group_by(*keys).agg(*aggs).with_columns(empty)


def group_values(frame: pl.DataFrame) -> pl.DataFrame:
    """The distinct ``_group`` values of ``frame`` (one null row without a ``by`` group)."""
    if frame["_group"].null_count() < frame.height:
        return frame.select("_group").unique()
    return pl.DataFrame({"_group": pl.Series([None], dtype=frame["_group"].dtype)})


def finish(frame: pl.DataFrame, by: str | None, columns: list[str]) -> pd.DataFrame:
    """Order and name the output columns; the group column first, named after ``by``."""
    keys = [pl.col("_group").alias(by)] if by is not None else []
    sort = [by] if by is not None else []
    out = frame.select(*keys, *columns).sort([*sort, columns[0]], nulls_last=True)
    return out.to_pandas()


def days(delta: pl.Expr) -> pl.Expr:
    """A duration as fractional days."""
    return delta.dt.total_microseconds() / 86_400e6


def as_timedelta(days_: float) -> timedelta:
    return timedelta(days=days_)
