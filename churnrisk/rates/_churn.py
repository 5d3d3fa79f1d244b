"""``churn_rates``: the per-period customer and revenue churn table (DESIGN §2)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import polars as pl

from churnrisk._deprecation import renamed
from churnrisk.definition import DEFAULT_INACTIVITY_DAYS, ChurnDefinition
from churnrisk.rates._customers import COUNT_COLUMNS, customer_counts
from churnrisk.rates._periods import (
    PERIODS,
    activity_events,
    data_span,
    finish,
    period_boundaries,
    rate_definition,
    store_spells,
    with_group,
)
from churnrisk.rates._revenue import (
    MRR_COLUMNS,
    ORDER_REVENUE_COLUMNS,
    mrr_movements,
    mrr_steps,
    order_revenue_churn,
)

CUSTOMER_COLUMNS = [
    "period_start",
    "period_end",
    *COUNT_COLUMNS,
    "customer_churn_rate",
    "lost_churn_rate",
    "adjusted_churn_rate",
    "exposure_churn_rate",
    "annualised_churn_rate",
    "customer_days",
]


@renamed(inactivity_days="lookback")
def churn_rates(
    store: Any,
    *,
    period: str = "month",
    start: Any = None,
    end: Any = None,
    by: str | None = None,
    definition: str | ChurnDefinition | None = None,
    reactivation_gap_days: float = 0,
    lookback: int = DEFAULT_INACTIVITY_DAYS,
) -> pd.DataFrame:
    """Customer and revenue churn per period, with the counts behind every rate.

    A period runs from the instant ``period_start`` to the instant ``period_end``; a spell that starts
    or ends at ``t`` counts in the period with ``period_start < t <= period_end``.

    Parameters
    ----------
    store : EventStore
        A validated store (:func:`churnrisk.load_store`).
    period : {"day", "week", "month", "quarter", "year"}, default "month"
        Weeks start on Monday, quarters in January, April, July and October.
    start, end : date-like, optional
        First boundary (default: the start of the period holding the first event) and the latest
        last boundary (default: the last event in the data). Only complete periods are reported.
    by : str, optional
        A column of the ``customers`` table: one row per period and value.
    definition : {"subscription", "inactivity"} or ChurnDefinition, optional
        Default: ``subscription`` when the store has subscriptions, else ``inactivity``
        (orders, or activity events when there are no orders). A
        :class:`~churnrisk.definition.ChurnDefinition` carries the two options below (its
        ``lookback``, else its horizon, is the inactivity window), the same object the labels take.
    reactivation_gap_days : float, default 0
        Subscription spells apart by less than this merge (see :func:`churnrisk.spells.subscription_spells`).
    lookback : int, default 90
        The inactivity window in days (see :func:`churnrisk.spells.order_spells`).

    Returns
    -------
    pandas.DataFrame
        One row per period (and group). Counts: ``customers_start`` / ``customers_end`` (active at the
        instants ``period_start`` / ``period_end``), ``customers_new`` (first-ever spell starts in the
        period), ``customers_reactivated`` (a later spell starts in it), ``customers_lost`` (active at
        the start, not at the end), ``churned_in_period`` (a spell ended in it and none was running at
        its end; includes customers who joined inside it), ``customer_days`` (real exposure).
        Rates (fractions, NaN when the denominator is 0):

        * ``customer_churn_rate = (customers_start - customers_end) / customers_start`` — the seed's
          net formula, negative when the base grew; reported as computed.
        * ``lost_churn_rate = customers_lost / customers_start``.
        * ``adjusted_churn_rate = churned_in_period / (customers_start + customers_new / 2)``.
        * ``exposure_churn_rate = churned_in_period / (customer_days / period days)``.
        * ``annualised_churn_rate = 1 - (1 - lost_churn_rate) ** periods per year``.

        Subscription data adds MRR movements (``mrr_start``, ``mrr_churned``, ``mrr_contraction``,
        ``mrr_expansion``, ``mrr_new``, ``mrr_reactivated``, ``mrr_end``), ``gross_revenue_churn =
        (churned + contraction) / mrr_start``, ``net_revenue_churn = (churned + contraction -
        expansion) / mrr_start``, their retention complements and ``quick_ratio = (new + reactivated
        + expansion) / (churned + contraction)``. Order data adds ``revenue_previous``,
        ``revenue_existing`` and ``revenue_churn`` of the customers active at the period's start.
    """
    churn = rate_definition(store, definition, reactivation_gap_days, lookback)
    events = activity_events(store) if churn.kind == "inactivity" else None
    spells = with_group(store_spells(store, churn, events=events), store, by)
    first, last = data_span(store)
    bounds = period_boundaries(period, start, end, first=first, last=last)
    table = customer_counts(spells, bounds).with_columns(
        annualised_churn_rate=1 - (1 - pl.col("lost_churn_rate")) ** PERIODS[period][1]
    )
    columns = list(CUSTOMER_COLUMNS)
    revenue = _revenue(store, events, spells, bounds, by, churn)
    if revenue is not None:
        table = table.join(revenue, on=["_group", "period"], how="left", nulls_equal=True)
        columns += [c for c in revenue.columns if c not in ("_group", "period")]
    return finish(table, by, columns)


def _revenue(
    store: Any,
    events: pl.DataFrame | None,
    spells: pl.DataFrame,
    bounds: pl.Series,
    by: str | None,
    churn: ChurnDefinition,
) -> pl.DataFrame | None:
    if events is None:  # subscription definition
        steps = with_group(
            mrr_steps(store["subscriptions"], reactivation_gap_days=churn.reactivation_gap_days), store, by
        )
        return mrr_movements(steps, bounds).select("_group", "period", *MRR_COLUMNS)
    if "amount" not in events.columns:  # activity events: no revenue
        return None
    orders = with_group(events, store, by)
    return order_revenue_churn(orders, bounds, lookback=churn.window).select(
        "_group", "period", *ORDER_REVENUE_COLUMNS
    )
