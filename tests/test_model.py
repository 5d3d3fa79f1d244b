"""The pipeline, calibration, out-of-time split and training on an event store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, requires_shared_data

from churnrisk.errors import ChurnriskError
from churnrisk.model import (
    MODEL_KINDS,
    cutoff_range,
    default_cutoffs,
    fit_calibrated,
    input_schema,
    make_pipeline,
    prepare_features,
    split_cutoffs,
    train_model,
)


def _data(seed: int, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )
    logit = 1.5 * X["x"] + (X["plan"] == "basic") - 0.5
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).to_numpy().astype(int)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_pipeline_contains_only_scikit_learn_estimators(kind):
    # churnrisk defines no custom transformer: every step is a scikit-learn estimator (already checked
    # by scikit-learn's own estimator checks), so there is nothing for parametrize_with_checks to run.
    pipeline = make_pipeline({"x": "number", "plan": "category"}, model=kind)
    classes = {type(v).__module__ for v in pipeline.get_params().values() if hasattr(v, "fit")}
    assert classes and all(m.startswith("sklearn.") for m in classes)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_calibrated_model_learns_and_is_deterministic(kind, random_state):
    X, y = _data(random_state)
    schema = input_schema(X)
    assert schema == {"x": "number", "z": "number", "plan": "category"}
    prepared = prepare_features(X, schema)

    def fit():
        pipe = make_pipeline(schema, model=kind, random_state=random_state)
        return fit_calibrated(pipe, prepared[:400], y[:400], prepared[400:500], y[400:500])

    p1, p2 = fit().predict_proba(prepared[500:])[:, 1], fit().predict_proba(prepared[500:])[:, 1]
    np.testing.assert_array_equal(p1, p2)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[500:], p1) > 0.7


def test_unknown_model_kind_is_refused():
    with pytest.raises(ChurnriskError, match="'model' parameter must be one of"):
        make_pipeline({"x": "number"}, model="forest")


def test_prepare_features_names_missing_columns():
    with pytest.raises(ChurnriskError, match="lacks 2 column.*: a, c"):
        prepare_features(pd.DataFrame({"b": [1.0]}), {"a": "number", "b": "number", "c": "category"})


def test_split_cutoffs_keeps_a_horizon_gap_before_the_test_cutoff():
    cutoffs = pd.date_range("2024-01-01", "2024-12-01", freq="MS")
    train, cal, test = split_cutoffs(list(cutoffs), horizon=90)
    assert test == [pd.Timestamp("2024-12-01")]
    # fit cutoffs: label windows end by 2024-12-01 → cutoffs up to 2024-09-02 → Jan..Sep (9); last 2 calibrate
    assert cal == [pd.Timestamp("2024-08-01"), pd.Timestamp("2024-09-01")]
    assert train == list(pd.date_range("2024-01-01", "2024-07-01", freq="MS"))


def test_too_few_cutoffs_is_a_clear_error():
    with pytest.raises(ChurnriskError, match="at least two cutoffs 90 days"):
        split_cutoffs([pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")], horizon=90)


@pytest.mark.parametrize(
    ("every", "expected"),
    [("1M", ["2024-02-01", "2024-03-01", "2024-04-01"]), ("30D", ["2024-02-01", "2024-03-02", "2024-04-01"])],
)
def test_cutoff_range_counts_back_from_the_last(every, expected):
    got = cutoff_range("2024-01-15", "2024-04-01", every=every)
    assert [c.strftime("%Y-%m-%d") for c in got] == expected


def test_cutoff_range_rejects_bad_spacing():
    with pytest.raises(ChurnriskError, match="count and a unit"):
        cutoff_range("2024-01-01", "2024-02-01", every="monthly")


def _orders_between(first: str, last: str):
    from churnrisk.store import EventStore

    return EventStore.from_frames(
        {
            "customers": pd.DataFrame({"customer_id": [1, 2]}),
            "orders": pd.DataFrame(
                {
                    "customer_id": [1, 2],
                    "ordered_at": [pd.Timestamp(first), pd.Timestamp(last)],
                    "amount": [5.0, 7.0],
                }
            ),
        }
    )


def test_default_cutoffs_run_monthly_back_from_the_last_known_outcome():
    # last outcome known: 2024-12-31 - 90 days = 2024-10-02; first allowed: 2024-01-01 + 180 days = 2024-06-29
    got = default_cutoffs(_orders_between("2024-01-01", "2024-12-31 15:00"), horizon=90)
    assert [c.strftime("%Y-%m-%d") for c in got] == ["2024-07-02", "2024-08-02", "2024-09-02", "2024-10-02"]


def test_default_cutoffs_on_a_short_history_leave_the_split_to_explain():
    store = _orders_between("2024-01-01", "2024-05-01")
    assert default_cutoffs(store, horizon=90) == [pd.Timestamp("2024-02-01")]  # 2024-05-01 - 90 days
    with pytest.raises(ChurnriskError, match="at least two cutoffs"):
        train_model(store, cutoffs=default_cutoffs(store, horizon=90), horizon=90, definition="inactivity")


def test_train_model_on_demo_store_reports_model_and_baselines(demo_store, random_state):
    cutoffs = cutoff_range("2023-07-01", "2024-10-01", every="1M")
    model = train_model(
        demo_store, cutoffs=cutoffs, horizon=60, definition="subscription", random_state=random_state
    )
    meta = model.metadata
    assert meta["cutoffs"]["test"] == ["2024-10-01"]
    assert max(pd.Timestamp(c) for c in meta["cutoffs"]["calibration"]) <= pd.Timestamp("2024-08-02")
    assert set(meta["baselines"]) == {"historical_rate", "recency"}
    assert meta["metrics"]["n"] == meta["rows"]["test"] == meta["baselines"]["recency"]["n"]
    assert meta["metrics"]["roc_auc"] > max(b["roc_auc"] for b in meta["baselines"].values())


def test_cutoff_after_the_data_is_refused(demo_store):
    cutoffs = cutoff_range("2023-07-01", "2024-12-01", every="1M")
    with pytest.raises(ChurnriskError, match="needs data up to 2025-03-01"):
        train_model(demo_store, cutoffs=cutoffs, horizon=90, definition="subscription")


@pytest.mark.realdata
@pytest.mark.slow
@requires_shared_data
def test_online_retail_model_beats_every_baseline():
    from churnrisk.contract import TABLES
    from churnrisk.importers import import_online_retail
    from churnrisk.store import EventStore

    tables = import_online_retail(SHARED_DATA / "online_retail" / "online_retail.parquet").tables
    store = EventStore.from_frames({k: v for k, v in tables.items() if k in TABLES})
    cutoffs = cutoff_range("2011-03-01", "2011-09-09", every="1M")
    meta = train_model(store, cutoffs=cutoffs, horizon=90, definition="inactivity").metadata
    print("Online Retail:", meta["metrics"], meta["baselines"])
    assert set(meta["baselines"]) == {"historical_rate", "recency", "bgnbd"}
    for baseline in meta["baselines"].values():
        assert meta["metrics"]["roc_auc"] > baseline["roc_auc"]
        assert meta["metrics"]["average_precision"] > baseline["average_precision"]
