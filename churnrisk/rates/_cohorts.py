"""Cohort retention: customers by acquisition period (rows) x periods since acquisition (columns)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import polars as pl

from churnrisk._deprecation import renamed
from churnrisk.definition import DEFAULT_INACTIVITY_DAYS, ChurnDefinition
from churnrisk.errors import ChurnriskError
from churnrisk.rates._customers import index_spells
from churnrisk.rates._periods import data_span, period_boundaries, rate_definition, store_spells


@renamed(inactivity_days="lookback")
def cohort_retention(
    store: Any,
    *,
    period: str = "month",
    start: Any = None,
    end: Any = None,
    definition: str | ChurnDefinition | None = None,
    values: str = "share",
    reactivation_gap_days: float = 0,
    lookback: int = DEFAULT_INACTIVITY_DAYS,
) -> pd.DataFrame:
    """Retention table: of the customers acquired in a period, how many are active ``n`` periods later.

    A customer's cohort is the period ``(period_start, period_end]`` in which their first-ever spell
    starts (the same rule as ``customers_new`` in :func:`churn_rates`). Column ``"n"`` counts the cohort's
    customers active at the end of the ``n``-th period after the acquisition period (``"0"``: at the end
    of the acquisition period itself), under the chosen churn definition; reactivated customers count
    again. Cells whose instant lies after the last complete period are empty (NaN).

    Parameters
    ----------
    values : {"share", "count"}, default "share"
        Fractions of the cohort size, or customer counts.

    Other parameters are those of :func:`churnrisk.rates.churn_rates`.

    Returns
    -------
    pandas.DataFrame
        ``cohort_start, cohort_end, customers`` (cohort size), then ``"0", "1", ...``.
    """
    if values not in ("share", "count"):
        raise ChurnriskError(f"The 'values' parameter must be 'share' or 'count'. Got {values!r} instead.")
    churn = rate_definition(store, definition, reactivation_gap_days, lookback)
    spells = store_spells(store, churn)
    first, last = data_span(store)
    bounds = period_boundaries(period, start, end, first=first, last=last)
    n_periods = bounds.len() - 1
    indexed = index_spells(spells, bounds).with_columns(
        # sorted by customer and start: each customer's first spell comes first
        cohort=pl.when(pl.col("first")).then(pl.col("p_start")).forward_fill()
    )
    indexed = indexed.filter(pl.col("cohort").is_between(0, n_periods - 1))
    counts = _active_counts(indexed, n_periods)
    return _wide(counts, indexed, bounds, values)


def _active_counts(indexed: pl.DataFrame, n_periods: int) -> pl.DataFrame:
    """Customers of each cohort active at boundary ``cohort + 1 + n``, for every ``n`` inside the data."""
    # A spell is active at boundaries p_start + 1 ... p_end (open: to the last one).
    last_active = pl.min_horizontal(pl.col("p_end").fill_null(n_periods), pl.lit(n_periods))
    plus = indexed.select("cohort", n=pl.col("p_start") - pl.col("cohort"), d=pl.lit(1))
    minus = indexed.select("cohort", n=last_active - pl.col("cohort"), d=pl.lit(-1))
    grid = (
        indexed.select("cohort")
        .unique()
        .with_columns(n=pl.int_ranges(0, n_periods - pl.col("cohort")))
        .explode("n")
    )
    changes = pl.concat([plus, minus]).group_by("cohort", "n").agg(pl.col("d").sum())
    return (
        grid.join(changes, on=["cohort", "n"], how="left")
        .sort("cohort", "n")
        .with_columns(active=pl.col("d").fill_null(0).cum_sum().over("cohort"))
    )


def _wide(counts: pl.DataFrame, indexed: pl.DataFrame, bounds: pl.Series, values: str) -> pd.DataFrame:
    sizes = indexed.filter(pl.col("first")).group_by("cohort").agg(customers=pl.len())
    counts = counts.join(sizes, on="cohort")
    value = pl.col("active") / pl.col("customers") if values == "share" else pl.col("active")
    wide = (
        counts.with_columns(value=value, n=pl.col("n").cast(pl.String))
        .pivot("n", index=["cohort", "customers"], values="value", sort_columns=False)
        .sort("cohort")
    )
    dates = pl.DataFrame(
        {
            "cohort": pl.int_range(0, bounds.len() - 1, eager=True),
            "cohort_start": bounds[:-1],
            "cohort_end": bounds[1:],
        }
    )
    wide = wide.join(dates, on="cohort").sort("cohort")
    offsets = [c for c in wide.columns if c not in ("cohort", "customers", "cohort_start", "cohort_end")]
    offsets.sort(key=int)
    return wide.select("cohort_start", "cohort_end", "customers", *offsets).to_pandas()
