"""Candidate selection: the shipped model is the validation slice's best, and never a baseline's loser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from churnrisk.candidates import (
    Selection,
    assemble,
    candidate_pipelines,
    select_model,
    selection_frame,
    training_summary,
)
from churnrisk.errors import ChurnriskError
from churnrisk.model import fit_calibrated


def _rows(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Churn driven by recency alone; ``noise`` carries nothing."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(40.0, n)
    X = pd.DataFrame({"purchases_recency": recency, "noise": rng.normal(size=n)})  # noqa: N806
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(recency - 40.0) / 15.0))).astype(int)
    return X, y


def test_candidates_are_the_learned_models_and_the_baselines_present():
    schema = {"purchases_recency": "number", "purchases_bgnbd_quiet": "number", "country": "category"}
    assert list(candidate_pipelines(schema)) == ["gbm", "logistic", "bgnbd", "recency"]
    assert list(candidate_pipelines({"activity_recency": "number"})) == ["gbm", "logistic", "recency"]
    assert list(candidate_pipelines(schema, model="logistic")) == ["logistic"]
    with pytest.raises(ChurnriskError, match="'model' parameter must be one of"):
        candidate_pipelines(schema, model="forest")


def test_the_winner_has_the_lowest_validation_log_loss():
    X, y = _rows()  # noqa: N806
    train, validation = np.arange(len(y)) < 3000, np.arange(len(y)) >= 3000
    estimator, selection = select_model(
        candidate_pipelines({c: "number" for c in X}), X, y, train, validation
    )
    # every candidate's log loss recomputed by scikit-learn from its own fit
    losses = selection.table["log_loss"]
    assert selection.winner == losses.idxmin()
    got = log_loss(y[validation], estimator.predict_proba(X[validation])[:, 1])
    assert got == pytest.approx(losses.min(), rel=1e-9)
    summary = selection.summary()
    assert summary["winner"] == selection.winner
    assert summary["margin"] == pytest.approx(losses.sort_values().iloc[1] - losses.min())
    # blends exist for each learned model with each baseline, weights between 0.1 and 0.9
    blends = [n for n in losses.index if "+" in n]
    assert sorted(n.split("@")[0] for n in blends) == ["gbm+recency", "logistic+recency"]
    assert all(0.1 <= float(n.split("@")[1]) <= 0.9 for n in blends)


def test_a_blend_is_the_weighted_mean_of_its_parts():
    X, y = _rows(seed=1)  # noqa: N806
    train, validation = np.arange(len(y)) < 3000, np.arange(len(y)) >= 3000
    pipelines = candidate_pipelines({c: "number" for c in X})
    parts = {
        k: fit_calibrated(pipelines[k], X[train], y[train], X[validation], y[validation])
        for k in ("gbm", "recency")
    }
    selection = Selection(pd.DataFrame(), "gbm+recency@0.3", ("gbm", "recency"), 0.3)
    blended = assemble(selection, parts, y[validation])
    expected = 0.3 * parts["gbm"].predict_proba(X)[:, 1] + 0.7 * parts["recency"].predict_proba(X)[:, 1]
    np.testing.assert_allclose(blended.predict_proba(X)[:, 1], expected)


def test_a_one_feature_baseline_keeps_its_ranking():
    X, y = _rows(seed=2)  # noqa: N806
    train, validation = np.arange(len(y)) < 3000, np.arange(len(y)) >= 3000
    pipeline = candidate_pipelines({c: "number" for c in X})["recency"]
    fitted = fit_calibrated(pipeline, X[train], y[train], X[validation], y[validation])
    proba = fitted.predict_proba(X)[:, 1]
    order = np.argsort(X["purchases_recency"].to_numpy())
    assert (np.diff(proba[order]) >= -1e-12).all()  # more days since the last order, never less risk


def test_training_summary_says_who_won_and_by_how_much():
    meta = {
        "selection": {"by": "log_loss", "winner": "gbm+bgnbd@0.7", "margin": 0.0035, "candidates": {}},
        "metrics": {"roc_auc": 0.7467, "average_precision": 0.5159},
        "baselines": {
            "recency": {"roc_auc": 0.5987, "average_precision": 0.3905},
            "bgnbd": {"roc_auc": 0.7375, "average_precision": 0.5044},
        },
        "refit": True,
        "cutoffs": {"final_train": ["2011-07-10", "2011-08-10"], "final_calibration": ["2011-09-10"]},
        "rows": {"final_train": 12345, "final_calibration": 1907},
    }
    assert training_summary(meta) == [
        "Chosen on the validation slice: gbm+bgnbd@0.7 (ahead of the next candidate by 0.0035 log loss).",
        "Out of time, ROC AUC: model 0.747, best baseline bgnbd 0.738 (+0.009).",
        "Out of time, average precision: model 0.516, best baseline bgnbd 0.504 (+0.012).",
        "Refit through 2011-09-10: trained on 12,345 rows of 2 cutoffs, calibrated on 1,907 rows of "
        "2011-09-10.",
    ]
    frame = selection_frame({"candidates": {"gbm": {"log_loss": 0.5, "roc_auc": 0.7, "n": 10.0}}})
    assert list(frame.columns) == ["candidate", "log_loss", "roc_auc", "n"]
    assert frame["n"].tolist() == [10] and frame["n"].dtype.kind == "i"


def test_candidates_learn_from_a_seeded_sample_of_at_most_their_rows_cap(monkeypatch):
    import churnrisk.candidates as candidates

    X, y = _rows(4000)  # noqa: N806
    schema = {"purchases_recency": "number", "noise": "number"}
    pipelines = candidate_pipelines(schema, model="auto")
    train = np.arange(4000) < 3000
    monkeypatch.setattr(candidates, "LINEAR_ROWS", 1000)
    thinned = candidates._fit_rows(pipelines["logistic"], train)
    assert thinned.sum() == 1000 and not thinned[3000:].any()  # only training rows, exactly the cap
    assert np.array_equal(thinned, candidates._fit_rows(pipelines["logistic"], train))  # deterministic
    assert candidates._fit_rows(pipelines["gbm"], train) is train  # under BOOSTING_ROWS: every row
    assert candidates.sample_notes(["gbm", "logistic"], pipelines, train) == [
        "logistic learned from a seeded sample of 1,000 of the 3,000 training rows"
    ]
    monkeypatch.setattr(candidates, "BOOSTING_ROWS", 2000)
    boosted = candidates._fit_rows(pipelines["gbm"], train)
    assert boosted.sum() == 2000 and not boosted[3000:].any()
    assert candidates.sample_notes(["gbm"], pipelines, train) == [
        "gbm learned from a seeded sample of 2,000 of the 3,000 training rows"
    ]
    monkeypatch.setattr(candidates, "LINEAR_ROWS", 3000)
    assert candidates._fit_rows(pipelines["logistic"], train) is train  # at the cap: untouched
    # the selected logistic model is the one fitted on the sample
    monkeypatch.setattr(candidates, "LINEAR_ROWS", 1000)
    _, selection = select_model({"logistic": pipelines["logistic"]}, X, y, train, ~train)
    direct = fit_calibrated(candidate_pipelines(schema, model="logistic")["logistic"], X[thinned], y[thinned],
                            X[~train], y[~train])  # fmt: skip
    assert selection.table.loc["logistic", "log_loss"] == pytest.approx(
        log_loss(y[~train], direct.predict_proba(X[~train])[:, 1]), rel=1e-9
    )
