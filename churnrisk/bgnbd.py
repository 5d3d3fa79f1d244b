"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

It is the classic baseline for non-contractual data: a customer buys at a gamma-distributed rate
``lambda`` (shape ``r``, rate ``alpha``) while "alive", and after each purchase drops out with a
beta-distributed probability ``p`` (``a``, ``b``). The churn score used by churnrisk is the probability
of **no purchase within the horizon**, not P(alive): P(alive) is 1 for every one-time buyer, which makes
it a poor ranking of who will not come back.

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
from scipy.special import gammaln

from churnrisk.errors import ChurnriskError

__all__ = ["BGNBD", "rfm_summary"]


@dataclass
class BGNBD:
    """BG/NBD model; ``fit`` estimates ``params_`` = (r, alpha, a, b).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (0 = plain maximum likelihood, as in the paper).

    Examples
    --------
    >>> import pandas as pd
    >>> data = pd.DataFrame({"frequency": [0, 2, 5, 1], "recency": [0, 20, 30, 3], "T": [40, 38, 35, 30]})
    >>> model = BGNBD().fit(data["frequency"], data["recency"], data["T"])
    >>> model.params_.keys()
    dict_keys(['r', 'alpha', 'a', 'b'])
    """

    penalizer: float = 0.0

    def fit(self, frequency, recency, T) -> BGNBD:  # noqa: N803 - T is the paper's name
        """Fit by maximum likelihood on repeat-purchase counts, time of last purchase and age."""
        x, t_x, t_age = _arrays(frequency, recency, T)
        result = minimize(
            lambda log_params: -self._objective(np.exp(log_params), x, t_x, t_age),
            x0=np.zeros(4),
            method="L-BFGS-B",
        )
        if not np.all(np.isfinite(result.x)):
            raise ChurnriskError("BG/NBD did not converge. Suggestion: check the purchase history.")
        self.params_ = dict(zip(("r", "alpha", "a", "b"), np.exp(result.x).tolist(), strict=True))
        self.log_likelihood_ = float(log_likelihood(tuple(self.params_.values()), x, t_x, t_age).sum())
        return self

    def _objective(self, params: np.ndarray, x, t_x, t_age) -> float:
        return float(log_likelihood(params, x, t_x, t_age).mean() - self.penalizer * np.sum(params**2))

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
        """P(alive | x, t_x, T), equation (13) of the paper."""
        x, t_x, t_age = _arrays(frequency, recency, T)
        r, alpha, a, b = self.params_.values()
        log_ratio = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-12))
            + (r + x) * np.log((alpha + t_age) / (alpha + t_x))
        )
        return np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)


def log_likelihood(params, x: np.ndarray, t_x: np.ndarray, t_age: np.ndarray) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + t_age)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
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
) -> pd.DataFrame:
    """Frequency, recency and age per customer at ``cutoff``, purchases counted once per day.

    Like lifetimes' ``summary_data_from_transaction_data``: ``frequency`` is the number of repeat
    purchase days, ``recency`` the time from the first to the last purchase and ``T`` from the first
    purchase to the cutoff, in units of ``unit_days`` (weeks by default). Orders after the cutoff are
    ignored.
    """
    frame = orders if isinstance(orders, pl.DataFrame) else pl.from_pandas(orders)
    days = (
        frame.filter(pl.col(datetime_col) <= cutoff)
        .select(customer_col, pl.col(datetime_col).dt.truncate("1d").alias("day"))
        .unique()
        .group_by(customer_col)
        .agg(n=pl.len(), first=pl.col("day").min(), last=pl.col("day").max())
    )
    unit = unit_days * 86_400_000_000.0  # microseconds
    summary = days.select(
        customer_col,
        frequency=(pl.col("n") - 1).cast(pl.Float64),
        recency=(pl.col("last") - pl.col("first")).dt.total_microseconds() / unit,
        T=(pl.lit(cutoff) - pl.col("first")).dt.total_microseconds() / unit,
    )
    return summary.sort(customer_col).to_pandas().set_index(customer_col)
