"""Candidate models compared on a validation slice: the shipped model is never worse than a baseline.

Training fits every candidate on the same prepared matrix (the training cutoffs), calibrates each on
the validation cutoffs, and keeps the one with the lowest log loss there (a proper score: it rewards
both ranking and honest probabilities). The candidates (DESIGN §5):

* ``gbm`` and ``logistic``: the pipelines of :func:`churnrisk.model.make_pipeline` on every feature;
* the baselines themselves, as one-feature models: ``bgnbd`` (the BG/NBD probability of no order
  within the horizon, a feature of order data under ``inactivity``) and ``recency`` (days since the
  last order or product event). A one-feature logistic regression keeps the baseline's ranking and
  gives it calibrated probabilities, and it scores new data through the same feature builders;
* blends: a weighted mean of a learned model's and a baseline's calibrated probabilities, the
  weight chosen on the validation slice (``gbm+bgnbd@0.6`` = 0.6 × gbm + 0.4 × bgnbd).

Every candidate is plain scikit-learn (a blend is a soft ``VotingClassifier`` over frozen,
calibrated members), so model files stay loadable without trusting code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.pipeline import make_pipeline as _chain
from sklearn.preprocessing import StandardScaler

from churnrisk.errors import ChurnriskError
from churnrisk.model import MODEL_KINDS, fit_calibrated_rows, make_pipeline, sample_rows

__all__ = [
    "BASELINE_FEATURES",
    "CHOICES",
    "Selection",
    "blend",
    "candidate_pipelines",
    "sample_notes",
    "select_model",
]

#: The baselines that are also candidates, and the feature each one is (the first one present).
BASELINE_FEATURES: dict[str, tuple[str, ...]] = {
    "bgnbd": ("purchases_bgnbd_quiet",),
    "recency": ("purchases_recency", "activity_recency"),
}
#: ``--model`` values: ``auto`` compares every candidate; the others train that pipeline alone.
CHOICES: tuple[str, ...] = ("auto", *MODEL_KINDS)
#: The blend weights of the learned model tried on the validation slice.
WEIGHTS: tuple[float, ...] = tuple(round(w, 1) for w in np.arange(0.1, 1.0, 0.1))
#: What the winner is chosen by (lower is better).
CRITERION = "log_loss"

#: Training rows a linear candidate learns from at most (a seeded sample beyond): its hundred-odd
#: coefficients are settled long before, while its imputer and dense one-hot matrix cost time
#: and memory per row (at a million customers, more than the boosting fit). Calibration and
#: validation always use every row.
LINEAR_ROWS = 150_000
#: Training rows a boosting candidate learns from at most (a seeded sample beyond). A fit's time
#: and memory grow with its rows, its out-of-time scores far more slowly: on the million-customer
#: demo (1.9 million training rows), a sample of 600,000 gives a test ROC AUC of 0.820 against
#: 0.822 and a log loss of 0.1908 against 0.1901, for 2 minutes of training instead of 4.5.
#: Calibration, validation and the test always use every row.
BOOSTING_ROWS = 600_000


def baseline_pipeline(column: str) -> Pipeline:
    """A logistic regression on one feature (missing values: the median, and an indicator)."""
    numbers = _chain(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
    )
    prep = ColumnTransformer([("number", numbers, [column])])
    return Pipeline([("prepare", prep), ("model", LogisticRegression(max_iter=1000))])


def candidate_pipelines(
    schema: Mapping[str, str], *, model: str = "auto", random_state: int | None = 0
) -> dict[str, Pipeline]:
    """The unfitted candidates for ``model`` (``auto``: learned models and baselines; else that one)."""
    if model not in CHOICES:
        raise ChurnriskError(f"The 'model' parameter must be one of {CHOICES}. Got {model!r} instead.")
    kinds = MODEL_KINDS if model == "auto" else (model,)
    out = {kind: make_pipeline(schema, model=kind, random_state=random_state) for kind in kinds}
    if model == "auto":
        for name, columns in BASELINE_FEATURES.items():
            column = next((c for c in columns if schema.get(c) == "number"), None)
            if column is not None:
                out[name] = baseline_pipeline(column)
    return out


def blend(learned: Any, baseline: Any, weight: float, y: np.ndarray) -> VotingClassifier:
    """``weight`` × the learned model's probability + (1 − ``weight``) × the baseline's (both fitted).

    The members are frozen: "fitting" the vote only records the classes of ``y``.
    """
    members = [("learned", FrozenEstimator(learned)), ("baseline", FrozenEstimator(baseline))]
    vote = VotingClassifier(members, voting="soft", weights=[weight, 1.0 - weight])
    return vote.fit(np.zeros((len(y), 1)), y)


@dataclass
class Selection:
    """The candidates' validation metrics (one row each, best first) and the winner's recipe."""

    table: pd.DataFrame
    winner: str
    parts: tuple[str, ...]
    weight: float | None
    #: Settings the refit keeps from the tested fits (the boosting rounds early stopping chose).
    settled: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-safe: the winner, its margin over the runner-up and every candidate's metrics."""
        scores = self.table[CRITERION]
        runner_up = float(scores.iloc[1]) if len(scores) > 1 else None
        return {
            "by": CRITERION,
            "winner": self.winner,
            "margin": None if runner_up is None else runner_up - float(scores.iloc[0]),
            "candidates": {
                str(name): {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
                for name, row in self.table.iterrows()
            },
        }


def select_model(
    pipelines: Mapping[str, Pipeline],
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    train: np.ndarray,
    validation: np.ndarray,
) -> tuple[Any, Selection]:
    """Fit every candidate on ``train``, calibrate on ``validation``, keep the lowest log loss there."""
    from churnrisk.evaluation import compare_scores

    fitted, proba = {}, {}
    for name, pipeline in pipelines.items():
        fitted[name], proba[name] = fit_calibrated_rows(
            pipeline, X, y, _fit_rows(pipeline, train), validation
        )
    y_val = y[validation]
    recipes: dict[str, tuple[tuple[str, ...], float | None]] = {name: ((name,), None) for name in fitted}
    for learned in (k for k in MODEL_KINDS if k in fitted):
        for baseline in (k for k in BASELINE_FEATURES if k in fitted):
            best, mixed = _best_weight(y_val, proba[learned], proba[baseline])
            name = f"{learned}+{baseline}@{best:g}"
            proba[name], recipes[name] = mixed, ((learned, baseline), best)
    table = compare_scores(y_val, proba).sort_values(
        [CRITERION, "average_precision"], ascending=[True, False]
    )
    winner = str(table.index[0])
    parts, weight = recipes[winner]
    settled = {name: _settled(fitted[name]) for name in parts}
    selection = Selection(table, winner, parts, weight, settled)
    return assemble(selection, {k: fitted[k] for k in parts}, y_val), selection


def _fit_rows(pipeline: Pipeline, rows: np.ndarray) -> np.ndarray:
    """``rows`` (a boolean mask), thinned to the pipeline's :func:`_row_cap` (seed 0)."""
    return sample_rows(rows, _row_cap(pipeline))


def _row_cap(pipeline: Pipeline) -> int:
    """:data:`LINEAR_ROWS` for a linear model, :data:`BOOSTING_ROWS` for boosting."""
    return LINEAR_ROWS if isinstance(pipeline[-1], LogisticRegression) else BOOSTING_ROWS


def sample_notes(parts: Sequence[str], pipelines: Mapping[str, Pipeline], rows: np.ndarray) -> list[str]:
    """A note for each of ``parts`` that learns from a sample of ``rows`` (a boolean mask)."""
    total = int(rows.sum())
    return [
        f"{name} learned from a seeded sample of {_row_cap(pipelines[name]):,} of the {total:,} training rows"
        for name in parts
        if _row_cap(pipelines[name]) < total
    ]


def _settled(calibrated: Any) -> dict[str, Any]:
    """A boosting fit's number of rounds, fixed for the refit (no second early-stopping split)."""
    pipeline = calibrated.estimator.estimator  # CalibratedClassifierCV(FrozenEstimator(pipeline))
    booster = pipeline[-1]
    if not isinstance(booster, HistGradientBoostingClassifier):
        return {}
    return {"model__max_iter": int(booster.n_iter_), "model__early_stopping": False}


def _best_weight(y: np.ndarray, learned: np.ndarray, baseline: np.ndarray) -> tuple[float, np.ndarray]:
    """The blend weight with the lowest log loss (:data:`CRITERION`, computed as ``score_metrics`` does,
    without the ranking metrics that every weight would pay for)."""
    from sklearn.metrics import log_loss

    mixes = {w: w * learned + (1 - w) * baseline for w in WEIGHTS}
    best = min(mixes, key=lambda w: log_loss(y, np.clip(mixes[w], 1e-15, 1 - 1e-15), labels=[0, 1]))
    return best, mixes[best]


def assemble(selection: Selection, fitted: Mapping[str, Any], y: np.ndarray) -> Any:
    """The winner as one estimator: the fitted candidate, or the blend of its two parts."""
    if selection.weight is None:
        return fitted[selection.parts[0]]
    learned, baseline = (fitted[p] for p in selection.parts)
    return blend(learned, baseline, selection.weight, y)


def refit(
    selection: Selection,
    pipelines: Mapping[str, Pipeline],
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    train: np.ndarray,
    calibration: np.ndarray,
) -> Any:
    """The winner's recipe fitted again on other rows (e.g. through the latest labelled cutoff).

    Gradient boosting keeps the number of rounds early stopping chose in the tested fit, so the
    refit learns from every row and costs one fit, not a search.
    """
    from sklearn.base import clone

    recipes = {
        name: clone(pipelines[name]).set_params(**selection.settled.get(name, {})) for name in selection.parts
    }
    fitted = {
        name: fit_calibrated_rows(pipeline, X, y, _fit_rows(pipeline, train), calibration)[0]
        for name, pipeline in recipes.items()
    }
    return assemble(selection, fitted, y[calibration])


def selection_frame(selection: Mapping[str, Any]) -> pd.DataFrame:
    """The candidates' validation metrics (from a model's ``selection`` metadata), best first."""
    table = pd.DataFrame.from_dict(selection["candidates"], orient="index")
    shown = ["log_loss", "brier", "roc_auc", "average_precision", "n"]
    table = table[[c for c in shown if c in table.columns]]
    if "n" in table.columns:
        table = table.astype({"n": int})
    return table.rename_axis("candidate").reset_index()


def training_summary(meta: Mapping[str, Any]) -> list[str]:
    """Sentences on a trained model: which candidate won, the test beside the best baseline, the refit."""
    lines = []
    selection = meta.get("selection")
    if selection:
        margin = selection.get("margin")
        by = f" by {margin:.4f} {selection['by'].replace('_', ' ')}" if margin is not None else ""
        lines.append(
            f"Chosen on the validation slice: {selection['winner']} (ahead of the next candidate{by})."
        )
    metrics, baselines = meta.get("metrics") or {}, meta.get("baselines") or {}
    for key, label in (("roc_auc", "ROC AUC"), ("average_precision", "average precision")):
        scored = {n: b.get(key) for n, b in baselines.items() if b.get(key) is not None}
        if metrics.get(key) is None or not scored:
            continue
        best = max(scored, key=lambda n: scored[n])
        lines.append(
            f"Out of time, {label}: model {metrics[key]:.3f}, best baseline {best} {scored[best]:.3f} "
            f"({metrics[key] - scored[best]:+.3f})."
        )
    cutoffs = meta.get("cutoffs") or {}
    if meta.get("refit") and cutoffs.get("final_calibration"):
        rows = meta["rows"]
        lines.append(
            f"Refit through {cutoffs['final_calibration'][-1]}: trained on {rows['final_train']:,} rows of "
            f"{len(cutoffs['final_train'])} cutoffs, calibrated on {rows['final_calibration']:,} rows of "
            f"{', '.join(cutoffs['final_calibration'])}."
        )
    return lines
