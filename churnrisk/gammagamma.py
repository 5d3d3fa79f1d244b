"""The Gamma-Gamma model of spend per transaction (Fader & Hardie 2013), fitted by maximum likelihood.

A customer's transaction values are gamma(p, nu) around a personal mean ``p / nu``, and ``nu`` varies
across customers as gamma(q, gamma). Given ``x`` repeat transactions with mean value ``m``, the
customer's expected spend per transaction is a weighted mean of the population mean and their own:
``(gamma + x m) p / (p x + q - 1)``. It is fitted on repeat customers only (``x > 0``), whose mean
value is known; everyone else gets the population mean ``p gamma / (q - 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

from churnrisk.errors import ChurnriskError

__all__ = ["GammaGamma", "gamma_gamma_log_likelihood"]


@dataclass
class GammaGamma:
    """Gamma-Gamma spend model; ``fit`` estimates ``params_`` = (p, q, gamma).

    Examples
    --------
    >>> model = GammaGamma().fit([1, 3, 2, 5, 1], [20.0, 35.0, 18.0, 30.0, 60.0])
    >>> sorted(model.params_)
    ['gamma', 'p', 'q']
    """

    def fit(self, frequency, monetary_value) -> GammaGamma:
        """Fit on repeat customers: ``frequency`` > 0 repeat transactions of mean ``monetary_value`` > 0."""
        x, m = _checked(frequency, monetary_value)
        with np.errstate(all="ignore"):  # far-off trial points overflow; the optimiser steps back
            result = minimize(
                lambda log_params: -gamma_gamma_log_likelihood(np.exp(log_params), x, m).mean(),
                x0=np.array([0.0, 1.0, np.log(m.mean())]),
                method="L-BFGS-B",
            )
        if not np.all(np.isfinite(result.x)):
            raise ChurnriskError("Gamma-Gamma did not converge. Suggestion: check the order amounts.")
        self.params_ = dict(zip(("p", "q", "gamma"), np.exp(result.x).tolist(), strict=True))
        self.log_likelihood_ = float(gamma_gamma_log_likelihood(tuple(self.params_.values()), x, m).sum())
        return self

    @property
    def mean_spend(self) -> float:
        """The population's mean spend per transaction, ``p gamma / (q - 1)`` (infinite if q <= 1)."""
        p, q, gamma = self.params_.values()
        return p * gamma / (q - 1) if q > 1 else np.inf

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """Expected spend per future transaction; the population mean for customers without repeats."""
        x = np.asarray(frequency, dtype=float)
        m = np.where(x > 0, np.asarray(monetary_value, dtype=float), 0.0)
        p, q, gamma = self.params_.values()
        return (gamma + x * m) * p / (p * x + q - 1)


def gamma_gamma_log_likelihood(params, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood of the mean value ``m`` of ``x`` transactions (Fader & Hardie 2013)."""
    p, q, gamma = params
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * m)
    )


def _checked(frequency, monetary_value) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary_value, dtype=float)
    bad = ~((x > 0) & (m > 0) & np.isfinite(m))
    if bad.any() or x.size < 2:
        raise ChurnriskError(
            f"Gamma-Gamma needs two or more repeat customers with a positive mean spend; got {x.size} "
            f"customer(s), {int(bad.sum())} with no repeat purchase or a spend <= 0. "
            "Suggestion: fit on customers with frequency > 0 and monetary_value > 0."
        )
    return x, m
