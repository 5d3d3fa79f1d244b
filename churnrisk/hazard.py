"""A discrete-time hazard model of churn: one classifier, churn probabilities over several horizons.

**Time to churn.** Every customer eligible at a cutoff (as for the one-horizon labels of
:mod:`churnrisk.labels`, lead time 0) has a time to churn: the days from the cutoff to the end of
the spell running at the cutoff.

* ``subscription``: the subscription spell (:func:`churnrisk.spells.subscription_spells`: touching
  rows, e.g. plan changes, are one spell).
* ``inactivity``: the order spell with window ``lookback`` (:func:`churnrisk.spells.order_spells`):
  the customer churns ``lookback`` days after the last order of a run in which no two orders are
  more than ``lookback`` days apart, i.e. when an order is followed by ``lookback`` days with none.

The end is known when it falls at or before ``until`` (the end of the data); otherwise the time is
censored there, ``observed = until - cutoff`` days after the cutoff.

*Against the one-horizon label* (with, for inactivity, ``horizon = lookback``): every customer the
label counts as churned within ``h`` has churned within ``h`` here; the converse fails only for a
customer who left and came back inside the horizon (active again at ``cutoff + h``): the label
looks at the horizon's end only, the time to churn at the first end. Only the hazard's definition
makes churn within ``h`` non-decreasing in ``h``.

**Person-period rows.** The horizons cut the time after a cutoff into intervals ``(0, h1], (h1, h2],
...``. A row is at risk in interval ``k`` when its time to churn is past the interval's start, and the
interval counts only when its end is observed (``observed >= end``): every row of a cutoff is
censored at the same instant, the end of the data, so dropping a partly observed interval drops its
churners and stayers alike (keeping its churners only would inflate the hazard). Its label is 1 when
the churn falls inside the interval. One classifier learns the hazard ``P(churn in k | at risk at
its start, features)``, with the interval's start as a feature, and the probability of churning
within ``h_j`` is ``1 - prod_{k <= j} (1 - hazard_k)``: non-decreasing by construction. Every cutoff
teaches the model, up to the intervals its outcome has reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from churnrisk.errors import ChurnriskError

__all__ = ["INTERVAL", "HazardModel", "churn_within", "fit_hazard", "person_periods", "time_to_churn"]

ID = "customer_id"
#: The feature that tells the hazard classifier which interval a person-period row is in (its start).
INTERVAL = "interval_start_days"


def churn_spells(store: Any, *, definition: str, lookback: int) -> pl.DataFrame:
    """The spells whose end is the churn: subscription spells, or order spells of window ``lookback``."""
    from churnrisk.definition import ChurnDefinition
    from churnrisk.spells import source_spells

    churn = ChurnDefinition.make(store, definition, lookback=lookback or None)  # checks the tables
    return source_spells(store, churn.spell_source(store))


def time_to_churn(
    store: Any,
    cutoffs: Sequence[Any],
    *,
    definition: str,
    lookback: int,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Every eligible customer at every cutoff: ``customer_id, cutoff, time, churned, observed``.

    ``time`` is the number of days from the cutoff to the churn (``churned`` = 1) or to ``until``
    (censored, ``churned`` = 0); ``observed`` the days from the cutoff to ``until`` (default: the end
    of the data). Sorted by cutoff and customer, like a training set. See the module docstring.
    """
    from churnrisk.features._build import to_cutoff
    from churnrisk.labels import data_end

    spells = churn_spells(store, definition=definition, lookback=lookback)
    last = until if until is not None else data_end(store)
    day = 86_400.0
    parts = []
    for cutoff in sorted({to_cutoff(c) for c in cutoffs}):
        if cutoff > last:
            raise ChurnriskError(f"cutoff {cutoff:%Y-%m-%d} is after the end of the data, {last:%Y-%m-%d}.")
        running = spells.filter(
            (pl.col("start") <= cutoff) & (pl.col("end").is_null() | (pl.col("end") > cutoff))
        )
        churned = pl.col("end").is_not_null() & (pl.col("end") <= last)
        parts.append(
            running.select(
                ID,
                cutoff=pl.lit(cutoff, pl.Datetime("us")),
                time=(
                    pl.when(churned).then(pl.col("end")).otherwise(pl.lit(last)) - cutoff
                ).dt.total_seconds()
                / day,
                churned=churned.cast(pl.Int8),
                observed=pl.lit((last - cutoff).total_seconds() / day),
            ).sort(ID)
        )
    return pl.concat(parts).to_pandas()


def person_periods(
    time: Any, churned: Any, observed: Any, horizons: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand rows into person-period rows over the intervals ``(0, h1], (h1, h2], ...``.

    Returns ``row`` (the index of the source row), ``interval`` (its index ``k``) and ``label`` (1 when
    the churn falls in the interval), ordered by row then interval. Row ``i`` is in interval ``k``
    when ``time[i] > start_k`` (still there at its start) and ``observed[i] >= end_k``.

    Examples
    --------
    >>> row, k, label = person_periods([10, 50, 60], [1, 1, 0], [200, 200, 60], [30, 90])
    >>> row.tolist(), k.tolist(), label.tolist()
    ([0, 1, 1, 2], [0, 0, 1, 0], [1, 0, 1, 0])
    """
    t, event, seen = (np.asarray(v, dtype=float) for v in (time, churned, observed))
    ends = np.asarray(horizons, dtype=float)
    starts = np.concatenate([[0.0], ends[:-1]])
    inside = (t[:, None] > starts) & (seen[:, None] >= ends)
    row, interval = np.nonzero(inside)  # row-major: by row, then interval
    label = (event[row] == 1) & (t[row] <= ends[interval])
    return row, interval, label.astype(int)


def churn_within(hazards: np.ndarray) -> np.ndarray:
    """Churn probability within each horizon from the hazards of its intervals: ``1 - cumprod(1 - h)``.

    Examples
    --------
    >>> churn_within(np.array([[0.1, 0.5]])).round(3).tolist()
    [[0.1, 0.55]]
    """
    return 1.0 - np.cumprod(1.0 - np.clip(hazards, 0.0, 1.0), axis=1)


def _with_interval(X: pd.DataFrame, start: Any) -> pd.DataFrame:  # noqa: N803
    return X.assign(**{INTERVAL: np.asarray(start, dtype=float)})


def fit_hazard(
    X: pd.DataFrame,  # noqa: N803
    observations: pd.DataFrame,
    horizons: Sequence[int],
    *,
    train: np.ndarray,
    calibrate: np.ndarray,
    model: str = "gbm",
    random_state: int | None = 0,
) -> HazardModel:
    """Fit the hazard classifier on the person-period rows of ``train``, calibrate it on ``calibrate``'s.

    ``X`` is the prepared feature frame (:func:`churnrisk.model.prepare_features`), one row per
    (customer, cutoff); ``observations`` the matching rows of :func:`time_to_churn`; ``train`` and
    ``calibrate`` boolean masks over them (the calibration rows later in time, as for one horizon).
    """
    from churnrisk.model import FINE_GBM, fit_calibrated, input_schema, make_pipeline

    row, interval, label = person_periods(
        observations["time"], observations["churned"], observations["observed"], horizons
    )
    starts = np.concatenate([[0.0], np.asarray(horizons, dtype=float)[:-1]])
    periods = _with_interval(X.iloc[row].reset_index(drop=True), starts[interval])
    # smaller trees learning more slowly than the one-horizon default: the later intervals' signal is
    # weak, and on the demo this lowered the integrated Brier score (benchmarks/bench_horizons.py)
    pipeline = make_pipeline(
        input_schema(periods), model=model, random_state=random_state, gbm_options=FINE_GBM
    )
    fit, cal = train[row], calibrate[row]
    estimator = fit_calibrated(pipeline, periods[fit], label[fit], periods[cal], label[cal])
    return HazardModel(estimator, [int(h) for h in horizons])


class HazardModel:
    """A fitted hazard classifier read as churn probabilities over its horizons.

    ``estimator`` predicts the hazard of an interval from the features plus :data:`INTERVAL` (the
    interval's start in days). As a churn model (``predict_proba``) it gives the probability of
    churning within the first horizon, the hazard of the first interval. Only data: a scikit-learn
    estimator and a list of ints, so a model file holding it loads without running code.
    """

    def __init__(self, estimator: Any, horizons: list[int]) -> None:
        self.estimator = estimator
        self.horizons = horizons

    def hazards(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803 - scikit-learn's name
        """The hazard of every interval for every row of a prepared feature frame: ``(rows, horizons)``."""
        starts = [0, *self.horizons[:-1]]
        if len(X) == 0:
            return np.empty((0, len(starts)))
        return np.column_stack([self.estimator.predict_proba(_with_interval(X, s))[:, 1] for s in starts])

    def churn_probabilities(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """Churn probability within every horizon, non-decreasing along each row."""
        return churn_within(self.hazards(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        p = self.estimator.predict_proba(_with_interval(X, 0.0))[:, 1]
        return np.column_stack([1.0 - p, p])
