"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

It is the classic baseline for non-contractual data: a customer buys at a gamma-distributed rate
``lambda`` (shape ``r``, rate ``alpha``) while "alive", and after each purchase drops out with a
beta-distributed probability ``p`` (``a``, ``b``). The churn score used by churnrisk is the probability
of **no purchase within the horizon**, not P(alive): P(alive) is 1 for every one-time buyer, which makes
it a poor ranking of who will not come back.

``BGNBD(modified=True)`` is the MBG/NBD variant (Batislam, Denizel & Filiztekin 2007): a customer may
also drop out right after the first purchase, so a one-time buyer's P(alive) is below 1 and falls
with the time since the purchase. Both variants share one set of formulas: with ``k = x`` (BG/NBD)
or ``k = x + 1`` (MBG/NBD) drop-out chances taken, ``p | alive ~ Beta(a, b + k)``.

The log-likelihood is equation (6) of the paper; the parameters are fitted on their logarithms with
:func:`scipy.optimize.minimize` so they stay positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import polars as pl
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from churnrisk.errors import ChurnriskError

__all__ = ["BGNBD", "quiet_and_alive", "rfm_from_days", "rfm_summary"]


@dataclass
class BGNBD:
    """BG/NBD model; ``fit`` estimates ``params_`` = (r, alpha, a, b).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (0 = plain maximum likelihood, as in the paper).
    modified : bool
        The MBG/NBD variant: drop-out is also possible right after the first purchase.

    Examples
    --------
    >>> import pandas as pd
    >>> data = pd.DataFrame({"frequency": [0, 2, 5, 1], "recency": [0, 20, 30, 3], "T": [40, 38, 35, 30]})
    >>> model = BGNBD().fit(data["frequency"], data["recency"], data["T"])
    >>> model.params_.keys()
    dict_keys(['r', 'alpha', 'a', 'b'])
    """

    penalizer: float = 0.0
    modified: bool = False

    def fit(self, frequency, recency, T) -> BGNBD:  # noqa: N803 - T is the paper's name
        """Fit by maximum likelihood on repeat-purchase counts, time of last purchase and age."""
        x, t_x, t_age = _arrays(frequency, recency, T)
        with np.errstate(all="ignore"):  # far-off trial points overflow; the optimiser steps back
            result = minimize(
                lambda log_params: -self._objective(np.exp(log_params), x, t_x, t_age),
                x0=np.zeros(4),
                method="L-BFGS-B",
            )
        if not np.all(np.isfinite(result.x)):
            raise ChurnriskError("BG/NBD did not converge. Suggestion: check the purchase history.")
        self.params_ = dict(zip(("r", "alpha", "a", "b"), np.exp(result.x).tolist(), strict=True))
        params = tuple(self.params_.values())
        self.log_likelihood_ = float(log_likelihood(params, x, t_x, t_age, modified=self.modified).sum())
        return self

    def _objective(self, params: np.ndarray, x, t_x, t_age) -> float:
        mean = log_likelihood(params, x, t_x, t_age, modified=self.modified).mean()
        return float(mean - self.penalizer * np.sum(params**2))

    def _dropouts(self, x: np.ndarray) -> np.ndarray:
        """Drop-out chances a customer alive now has passed: one per repeat purchase (+1 if modified)."""
        return x + 1.0 if self.modified else x

    def prob_no_purchase(self, t, frequency, recency, T) -> np.ndarray:  # noqa: N803
        """Probability that each customer makes no purchase in the next ``t`` time units.

        Dead customers never buy; an alive one has ``lambda | data ~ Gamma(r + x, alpha + T)``, so
        ``P(none) = 1 - P(alive) + P(alive) * ((alpha + T) / (alpha + T + t)) ** (r + x)``.
        """
        x, t_x, t_age = _arrays(frequency, recency, T)
        r, alpha, _, _ = self.params_.values()
        alive = self.prob_alive(x, t_x, t_age)
        quiet_if_alive = np.exp((r + x) * (np.log(alpha + t_age) - np.log(alpha + t_age + t)))
        return 1.0 - alive + alive * quiet_if_alive

    def prob_alive(self, frequency, recency, T) -> np.ndarray:  # noqa: N803
        """P(alive | x, t_x, T), equation (13) of the paper (1 for BG/NBD one-time buyers)."""
        x, t_x, t_age = _arrays(frequency, recency, T)
        r, alpha, a, b = self.params_.values()
        k = self._dropouts(x)
        with np.errstate(divide="ignore"):
            log_ratio = (
                np.log(a)
                - np.log(np.maximum(b + k - 1, 1e-12))
                + (r + x) * np.log((alpha + t_age) / (alpha + t_x))
            )
        return np.where(k > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)

    def prob_alive_at(self, t, frequency, recency, T) -> np.ndarray:  # noqa: N803
        """P(alive at T + t | x, t_x, T): alive now, and no drop-out after purchases in the next ``t``.

        Given alive, ``lambda ~ Gamma(r + x, alpha + T)`` and ``p ~ Beta(a, b + k)`` independently,
        and purchases in ``t`` are Poisson, so surviving them has probability
        ``E[exp(-lambda p t)] = 2F1(r + x, a; a + b + k; -t / (alpha + T))`` (Euler's integral).
        """
        x, _, t_age = _arrays(frequency, recency, T)
        r, alpha, a, b = self.params_.values()
        survive = hyp2f1(r + x, a, a + b + self._dropouts(x), -np.asarray(t, dtype=float) / (alpha + t_age))
        return self.prob_alive(frequency, recency, T) * survive

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:  # noqa: N803
        """Expected number of purchases in the next ``t`` time units (equation 10 of the paper)."""
        x, t_x, t_age = _arrays(frequency, recency, T)
        r, alpha, a, b = self.params_.values()
        k = self._dropouts(x)
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t_age + t)
        shrink = ((alpha + t_age) / (alpha + t_age + t)) ** (r + x)
        alive_rate = (a + b + k - 1) / (a - 1) * (1.0 - shrink * hyp2f1(r + x, b + k, a + b + k - 1, z))
        return alive_rate * self.prob_alive(frequency, recency, T)


def log_likelihood(
    params, x: np.ndarray, t_x: np.ndarray, t_age: np.ndarray, *, modified: bool = False
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6; MBG/NBD if ``modified``)."""
    r, alpha, a, b = params
    k = x + 1.0 if modified else x
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + k) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + t_age)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            k > 0,
            np.log(a) - np.log(np.maximum(b + k - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


def _arrays(*columns) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(c, dtype=float) for c in columns)


def rfm_summary(
    orders: pl.DataFrame | pd.DataFrame,
    cutoff: datetime,
    *,
    customer_col: str = "customer_id",
    datetime_col: str = "ordered_at",
    unit_days: float = 7.0,
    monetary_col: str | None = None,
) -> pd.DataFrame:
    """Frequency, recency and age per customer at ``cutoff``, purchases counted once per day.

    Like lifetimes' ``summary_data_from_transaction_data``: ``frequency`` is the number of repeat
    purchase days, ``recency`` the time from the first to the last purchase and ``T`` from the first
    purchase to the cutoff, in units of ``unit_days`` (weeks by default). Orders after the cutoff are
    ignored. With ``monetary_col`` (e.g. ``"amount"``), ``monetary_value`` is the mean spend of the
    repeat purchase days (the first day left out, as Gamma-Gamma expects; 0 without repeats).
    """
    frame = orders if isinstance(orders, pl.DataFrame) else pl.from_pandas(orders)
    spend = pl.col(monetary_col).sum() if monetary_col else pl.lit(0.0)
    days = (
        frame.filter(pl.col(datetime_col) <= cutoff)
        .group_by(customer_col, pl.col(datetime_col).dt.truncate("1d").alias("day"))
        .agg(spend=spend.cast(pl.Float64))
        .sort(customer_col, "day")
        .group_by(customer_col)
        .agg(
            n=pl.len(),
            first=pl.col("day").first(),
            last=pl.col("day").last(),
            repeat_spend=pl.col("spend").sum() - pl.col("spend").first(),
        )
    )
    return rfm_from_days(
        days, cutoff, customer_col=customer_col, unit_days=unit_days, monetary=monetary_col is not None
    )


def rfm_from_days(
    days: pl.DataFrame,
    cutoff: datetime,
    *,
    customer_col: str = "customer_id",
    unit_days: float = 7.0,
    monetary: bool = False,
) -> pd.DataFrame:
    """:func:`rfm_summary` from one row per customer: ``n`` purchase days, the ``first`` and
    ``last`` of them (``repeat_spend`` with ``monetary``). Any engine may count the days (Spark
    does, for :func:`churnrisk.spark.with_repeat_buying`); the summary is this one."""
    unit = unit_days * 86_400_000_000.0  # microseconds
    if not monetary:
        days = days.with_columns(repeat_spend=pl.lit(0.0))
    summary = days.select(
        customer_col,
        frequency=(pl.col("n") - 1).cast(pl.Float64),
        recency=(pl.col("last") - pl.col("first")).dt.total_microseconds() / unit,
        T=(pl.lit(cutoff) - pl.col("first")).dt.total_microseconds() / unit,
        monetary_value=pl.when(pl.col("n") > 1)
        .then(pl.col("repeat_spend") / (pl.col("n") - 1))
        .otherwise(0.0),
    )
    if not monetary:
        summary = summary.drop("monetary_value")
    return summary.sort(customer_col).to_pandas().set_index(customer_col)


def quiet_and_alive(summary: pd.DataFrame, *, horizon_days: float) -> tuple[pd.Series, pd.Series]:
    """A BG/NBD fitted on ``summary`` (:func:`rfm_summary`, in weeks): per customer, the probability
    of no purchase within ``horizon_days`` and the probability of being alive."""
    args = (summary["frequency"], summary["recency"], summary["T"])
    fitted = BGNBD().fit(*args)
    quiet = pd.Series(fitted.prob_no_purchase(horizon_days / 7.0, *args), index=summary.index)
    return quiet, pd.Series(fitted.prob_alive(*args), index=summary.index)
