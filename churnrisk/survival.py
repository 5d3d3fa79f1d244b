"""Survival curves of subscription relationships: the Kaplan-Meier anchors (DESIGN §5).

:func:`kaplan_meier` estimates the share of subscription relationships still running after each
length, from the relationships known at a cutoff (those still open are censored there: their end is
not known yet); :func:`expected_active_days` turns the curve into each customer's expected active
days over a horizon, given how long they have already stayed, and :func:`survival_curves` into the
probability of leaving within each horizon. These know a customer's tenure and nothing else: they
are the anchors the churn models over several horizons (:mod:`churnrisk.horizons`) and the value
models (:mod:`churnrisk.value`) are tested beside.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from churnrisk.errors import ChurnriskError

__all__ = ["expected_active_days", "kaplan_meier", "relationships", "survival_at", "survival_curves"]

ID = "customer_id"


def relationships(
    subscriptions: pl.DataFrame | pd.DataFrame, cutoff: datetime, *, reactivation_gap_days: float = 0
) -> pd.DataFrame:
    """Subscription relationships started by ``cutoff``: ``customer_id, duration, ended``.

    ``duration`` is in days, up to the end or, for relationships still open at ``cutoff``, up to
    ``cutoff`` (censored: an end after the cutoff is not known yet, so it is not used).
    """
    from churnrisk.spells import subscription_spells

    frame = subscriptions if isinstance(subscriptions, pl.DataFrame) else pl.from_pandas(subscriptions)
    known = frame.filter(pl.col("started_at") <= cutoff).with_columns(
        pl.when(pl.col("ended_at") <= cutoff).then(pl.col("ended_at")).alias("ended_at")
    )
    spells = subscription_spells(known, reactivation_gap_days=reactivation_gap_days)
    out = spells.select(
        ID,
        duration=(pl.col("end").fill_null(cutoff) - pl.col("start")).dt.total_seconds() / 86_400,
        ended=pl.col("end").is_not_null(),
    )
    return out.sort(ID, "duration").to_pandas()


def kaplan_meier(durations: Any, observed: Any) -> pd.Series:
    """Kaplan-Meier survival curve: ``S(t)`` just after each distinct observed end time ``t``.

    Parameters
    ----------
    durations : array-like of float
        Length of each relationship (ended or censored).
    observed : array-like of bool
        True where the relationship ended at its duration, False where it was censored.

    Returns
    -------
    pandas.Series
        Indexed by the end times (ascending), the share still running after each; ``S = 1`` before
        the first. Ends at a time count before censorings at the same time, as usual.

    Examples
    --------
    >>> kaplan_meier([1, 2, 2, 3], [True, True, False, True]).round(3).tolist()
    [0.75, 0.5, 0.0]
    """
    t = np.asarray(durations, dtype=float)
    ended = np.asarray(observed, dtype=bool)
    if t.shape != ended.shape or t.size == 0 or np.isnan(t).any() or (t < 0).any():
        raise ChurnriskError(
            f"kaplan_meier needs as many non-negative durations as observed flags, at least one; got "
            f"{t.size} duration(s) and {ended.size} flag(s)."
        )
    times = np.unique(t[ended])
    at_risk = t.size - np.searchsorted(np.sort(t), times, side="left")
    ends = np.bincount(np.searchsorted(times, t[ended]), minlength=times.size)
    return pd.Series(np.cumprod(1.0 - ends / at_risk), index=pd.Index(times, name="days"), name="survival")


def survival_at(curve: pd.Series, t: Any) -> np.ndarray:
    """``S(t)`` of a :func:`kaplan_meier` curve (flat after its last end time)."""
    values = np.concatenate([[1.0], curve.to_numpy()])
    return values[np.searchsorted(curve.index.to_numpy(), np.asarray(t, dtype=float), side="right")]


def expected_active_days(curve: pd.Series, tenure: Any, days: float) -> np.ndarray:
    """Expected days still active in the next ``days``, having stayed ``tenure`` days already.

    ``integral_0^days S(tenure + u) du / S(tenure)``, exact for the step curve: the area under it
    is piecewise linear between its end times. NaN where ``S(tenure) = 0``.
    """
    knots = np.concatenate([[0.0], curve.index.to_numpy()])
    levels = np.concatenate([[1.0], curve.to_numpy()])
    area = np.concatenate([[0.0], np.cumsum(levels[:-1] * np.diff(knots))])

    def area_to(t: np.ndarray) -> np.ndarray:
        beyond = np.maximum(t - knots[-1], 0.0) * levels[-1]  # flat after the last end time
        return np.interp(np.minimum(t, knots[-1]), knots, area) + beyond

    start = np.asarray(tenure, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (area_to(start + days) - area_to(start)) / survival_at(curve, start)


def survival_curves(
    store: Any, cutoff: Any, *, horizons: Sequence[int] = (30, 90, 180, 365), reactivation_gap_days: float = 0
) -> pd.DataFrame:
    """Kaplan-Meier probability that each customer subscribed at ``cutoff`` is still one after each horizon.

    Returns one row per customer open at ``cutoff``: ``customer_id, tenure_days`` and
    ``p_churn_<h>d = 1 - S(tenure + h) / S(tenure)`` for each horizon (non-decreasing in ``h``).
    """
    from churnrisk.features._build import to_cutoff

    if "subscriptions" not in store:
        raise ChurnriskError("survival curves need a 'subscriptions' table.")
    spells = relationships(
        store["subscriptions"], to_cutoff(cutoff), reactivation_gap_days=reactivation_gap_days
    )
    curve = kaplan_meier(spells["duration"], spells["ended"])
    now = spells[~spells["ended"]]
    tenure = now["duration"].to_numpy()
    out = pd.DataFrame({ID: now[ID].to_numpy(), "tenure_days": tenure})
    for h in sorted(horizons):
        out[f"p_churn_{h}d"] = 1.0 - survival_at(curve, tenure + h) / survival_at(curve, tenure)
    return out
