"""Scoring: tiers, order, revenue at risk, invariance to row order, determinism, missing columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnrisk.errors import ChurnriskError
from churnrisk.model import ChurnModel, fit_calibrated, input_schema, make_pipeline, prepare_features
from churnrisk.scoring import (
    SCORE_COLUMNS,
    contact_summary,
    mark_contacts,
    recent_revenue,
    risk_tiers,
    score_features,
    score_store,
    score_table,
    summarize,
)
from churnrisk.store import EventStore
from churnrisk.training import cutoff_range


@pytest.fixture(scope="module")
def toy() -> tuple[ChurnModel, pd.DataFrame]:
    rng = np.random.default_rng(1)
    n = 800
    X = pd.DataFrame({"a": rng.normal(size=n), "plan": rng.choice(["x", "y"], n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * X["a"]))).astype(int)
    schema = input_schema(X)
    prepared = prepare_features(X, schema)
    est = fit_calibrated(make_pipeline(schema, model="gbm"), prepared[:600], y[:600], prepared[600:], y[600:])
    meta = {"kind": "snapshot", "schema": schema, "reference": {"a": 0.0, "plan": "x"}, "name": "toy"}
    return ChurnModel(est, meta), X.set_axis(pd.Index(np.arange(1000, 1000 + n), name="customer_id"))


def test_risk_tiers_by_hand():
    assert list(risk_tiers([0.0, 0.19, 0.2, 0.49, 0.5, 1.0])) == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_risk_tiers_at_chosen_thresholds():
    got = risk_tiers([0.05, 0.1, 0.29, 0.3, 0.9], thresholds=(0.1, 0.3))
    assert list(got) == ["low", "medium", "medium", "high", "high"]
    assert list(risk_tiers([0.0, 0.4, 1.0], thresholds=(0.4, 0.4))) == ["low", "high", "high"]


@pytest.mark.parametrize("thresholds", [(0.5, 0.2), (0.2,), (-0.1, 0.5), (0.2, 1.5), ("a", "b"), 0.2])
def test_bad_thresholds_are_refused(thresholds):
    with pytest.raises(ChurnriskError, match=r"thresholds.*0 <= medium <= high <= 1"):
        risk_tiers([0.3], thresholds=thresholds)


def _ranked(n: int) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": np.arange(n), "churn_probability": np.linspace(0.9, 0.0, n)})


@pytest.mark.parametrize(
    ("n", "top", "top_percent", "size"),
    [
        (30, 4, None, 4),
        (30, None, 10, 3),
        (31, None, 10, 4),
        (30, None, 100, 30),
        (5, 9, None, 5),
        (7, None, 0.1, 1),
    ],
)
def test_contact_list_is_the_head_of_the_priority_order(n, top, top_percent, size):
    got = mark_contacts(_ranked(n), top=top, top_percent=top_percent)
    assert got["contact"].tolist() == [True] * size + [False] * (n - size)


def test_no_contact_list_without_a_size():
    assert "contact" not in mark_contacts(_ranked(3)).columns


@pytest.mark.parametrize(
    ("top", "top_percent"), [(3, 10.0), (0, None), (None, 0.0), (None, 120.0), (2.5, None)]
)
def test_a_contact_list_needs_one_valid_size(top, top_percent):
    with pytest.raises(ChurnriskError, match="contact list is sized by 'top'.*or 'top_percent'"):
        mark_contacts(_ranked(3), top=top, top_percent=top_percent)


def test_contact_summary_by_hand():
    scores = pd.DataFrame(
        {
            "churn_probability": [0.8, 0.5, 0.4, 0.2, 0.1],
            "revenue_at_risk": [80.0, 5.0, 40.0, 10.0, 15.0],
            "contact": [True, True, True, False, False],
        }
    )
    # expected churners 0.8 + 0.5 + 0.4 = 1.7 of 2.0; revenue 125 of 150
    got = contact_summary(scores)
    assert got["customers"] == 3
    assert got["expected_churners"] == pytest.approx(1.7)
    assert got["churner_share"] == pytest.approx(0.85)
    assert got["revenue_at_risk"] == pytest.approx(125.0)
    assert got["revenue_share"] == pytest.approx(125 / 150)
    with pytest.raises(ChurnriskError, match="no 'contact' column"):
        contact_summary(scores.drop(columns="contact"))


def test_summary_counts_expected_churners_by_tier():
    scores = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "churn_probability": [0.7, 0.6, 0.3, 0.1],
            "risk_tier": risk_tiers([0.7, 0.6, 0.3, 0.1]),
            "revenue_at_risk": [70.0, 6.0, 3.0, 1.0],
        }
    )
    expected = pd.DataFrame(
        {
            "risk_tier": pd.Categorical(
                ["high", "medium", "low"], categories=["low", "medium", "high"], ordered=True
            ),
            "customers": [2, 1, 1],
            "mean_probability": [0.65, 0.3, 0.1],
            "expected_churners": [1.3, 0.3, 0.1],
            "revenue_at_risk": [76.0, 3.0, 1.0],
        }
    )
    pd.testing.assert_frame_equal(summarize(scores), expected)


def test_scores_mark_tiers_and_contacts_as_asked(toy):
    model, X = toy
    scores = score_features(model, X, thresholds=(0.3, 0.6), top_percent=5)
    p = scores["churn_probability"]
    expected = np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))
    assert (scores["risk_tier"].astype(str).to_numpy() == expected).all()
    assert scores["contact"].tolist() == [True] * 40 + [False] * (len(X) - 40)  # 5 % of 800


def test_scores_are_sorted_and_have_the_columns(toy):
    model, X = toy
    scores = score_features(model, X, revenue=pd.Series(100.0, index=X.index), cutoff="2024-01-01")
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert scores["churn_probability"].is_monotonic_decreasing
    np.testing.assert_allclose(scores["revenue_at_risk"], 100 * scores["churn_probability"])
    assert (scores["model"] == "toy").all()


def test_shuffling_rows_changes_no_customers_score(toy):
    model, X = toy
    before = score_features(model, X).set_index("customer_id")
    after = score_features(model, X.sample(frac=1, random_state=3)).set_index("customer_id")
    pd.testing.assert_frame_equal(before.sort_index(), after.sort_index())


def test_missing_feature_column_is_named(toy):
    model, X = toy
    with pytest.raises(ChurnriskError, match="lacks 1 column.*: plan"):
        score_features(model, X.drop(columns="plan"))


def test_recent_revenue_by_hand():
    store = EventStore.from_frames(
        {
            "customers": pd.DataFrame({"customer_id": [1, 2, 3]}),
            "orders": pd.DataFrame(
                {
                    "customer_id": [1, 1, 2],
                    "order_id": ["a", "b", "c"],
                    "ordered_at": pd.to_datetime(["2023-01-01", "2024-03-01", "2024-06-01"]),
                    "amount": [50.0, 20.0, 30.0],
                }
            ),
            "subscriptions": pd.DataFrame(
                {
                    "customer_id": [2, 3],
                    "subscription_id": ["s1", "s2"],
                    "started_at": pd.to_datetime(["2024-01-01", "2024-01-01"]),
                    "ended_at": pd.to_datetime([None, "2024-05-01"]),
                    "mrr": [10.0, 99.0],
                }
            ),
        }
    )
    got = recent_revenue(store, pd.Timestamp("2024-06-01")).sort_index()
    # 1: only the order inside (2023-06-02, 2024-06-01]; 2: order 30 + 12 × 10; 3: subscription ended
    assert got.to_dict() == {1: 20.0, 2: 150.0}


@pytest.mark.slow
def test_same_data_and_seed_give_identical_scores(demo_store):
    from churnrisk.workflow import train_model

    cutoffs = cutoff_range("2023-07-01", "2024-10-01", every="1M")

    def run():
        model = train_model(
            demo_store, cutoffs=cutoffs, horizon=60, definition="subscription", random_state=7
        )
        return score_store(model, demo_store, cutoff="2024-12-01")

    first, second = run(), run()
    pd.testing.assert_frame_equal(first, second)
    assert (first["as_of"] == pd.Timestamp("2024-12-01")).all()
    summary = summarize(first)
    assert summary["customers"].sum() == len(first)
    assert list(summary.columns) == [
        "risk_tier",
        "segment",
        "customers",
        "mean_probability",
        "expected_churners",
        "revenue_at_risk",
    ]


def test_scoring_in_blocks_gives_the_same_list(toy, demo_store):
    import warnings

    from churnrisk.modelfile import ModelVersionWarning, load_model

    model, X = toy
    pd.testing.assert_frame_equal(score_features(model, X, block=37), score_features(model, X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelVersionWarning)  # a model from other library versions warns
        demo = load_model(Path(__file__).resolve().parents[1] / "models" / "demo-subscription.skops")
    whole = score_store(demo, demo_store, cutoff="2024-10-31")
    assert len(whole) > 250 and whole["reasons"].str.len().gt(0).any()
    pd.testing.assert_frame_equal(score_store(demo, demo_store, cutoff="2024-10-31", block=101), whole)


def test_score_features_old_as_of_warns_and_still_works(toy):
    model, X = toy
    expected = score_features(model, X, cutoff="2024-01-01")
    with pytest.warns(DeprecationWarning, match="'as_of'.*'cutoff'"):
        got = score_features(model, X, as_of="2024-01-01")
    pd.testing.assert_frame_equal(got, expected)
    assert (got["as_of"] == pd.Timestamp("2024-01-01")).all()


def test_score_table_old_id_column_warns_and_still_works(toy):
    model, X = toy
    table = X.reset_index().rename(columns={"customer_id": "cid"})
    expected = score_table(model, table, customer_col="cid")
    assert sorted(expected["customer_id"]) == list(X.index)
    with pytest.warns(DeprecationWarning, match="'id_column'.*'customer_col'"):
        pd.testing.assert_frame_equal(score_table(model, table, id_column="cid"), expected)


def test_score_store_old_as_of_warns_and_still_works(demo_store):
    import warnings

    from churnrisk.modelfile import ModelVersionWarning, load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelVersionWarning)  # a model from other library versions warns
        demo = load_model(Path(__file__).resolve().parents[1] / "models" / "demo-subscription.skops")
    expected = score_store(demo, demo_store, cutoff="2024-10-31", n_reasons=1)
    assert (expected["as_of"] == pd.Timestamp("2024-10-31")).all()
    with pytest.warns(DeprecationWarning, match="'as_of'.*'cutoff'"):
        got = score_store(demo, demo_store, as_of="2024-10-31", n_reasons=1)
    pd.testing.assert_frame_equal(got, expected)
