"""Reasons: the what-if attribution by hand, words, and the demo's true causes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnrisk.model import ChurnModel, fit_calibrated, input_schema, make_pipeline, prepare_features
from churnrisk.reasons import cause_agreement, family_effects, top_reasons


@pytest.fixture(scope="module")
def toy_model() -> tuple[ChurnModel, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 2000
    X = pd.DataFrame({"complaints": rng.poisson(1, n).astype(float), "noise": rng.normal(size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * X["complaints"] - 3)))).astype(int)
    schema = input_schema(X)
    prepared = prepare_features(X, schema)
    est = fit_calibrated(
        make_pipeline(schema, model="logistic"), prepared[:1500], y[:1500], prepared[1500:], y[1500:]
    )
    meta = {
        "kind": "snapshot",
        "schema": schema,
        "reference": {"complaints": 1.0, "noise": 0.0},
        "spread": {"complaints": 2.0, "noise": 1.35},
        "families": {"complaints": "complaints", "noise": "noise"},
    }
    return ChurnModel(est, meta), prepared


def test_family_effect_is_the_drop_when_the_family_is_typical(toy_model):
    model, X = toy_model
    rows = X.iloc[:5]
    effects = family_effects(model, rows)
    typical = rows.assign(complaints=1.0)
    expected = model.predict_prepared(rows) - model.predict_prepared(typical)
    np.testing.assert_allclose(effects["complaints"].to_numpy(), expected)


def test_only_risk_raising_families_are_reasons(toy_model):
    model, _ = toy_model
    rows = pd.DataFrame({"complaints": [5.0, 0.0], "noise": [0.0, 0.0]})
    got = top_reasons(model, rows)
    assert got["reason_families"].tolist() == ["complaints", ""]  # 0 complaints lowers risk: no reason
    assert got["reasons"].tolist() == ["complaints: 5 (typical: 1)", ""]


def test_event_model_reasons_use_the_feature_words(demo_model):
    model, scores = demo_model
    flagged = scores[scores["reasons"] != ""]
    assert len(flagged) > 0
    # words from the feature declarations, not column names
    assert not flagged["reasons"].str.contains(r"_\d+d\b").any()
    assert flagged["reason_families"].str.split("; ").map(len).max() <= 3


@pytest.fixture(scope="module")
def demo_model(demo_store):
    from churnrisk.scoring import score_store
    from churnrisk.training import cutoff_range
    from churnrisk.workflow import train_model

    cutoffs = cutoff_range("2023-07-01", "2024-10-01", every="1M")
    model = train_model(demo_store, cutoffs=cutoffs, horizon=60, definition="subscription", random_state=0)
    return model, score_store(model, demo_store, keep_families=True)


def test_reasons_name_the_true_cause_for_most_flagged_churners(demo_model, demo_store, demo_tables):
    from churnrisk.model import feature_part
    from churnrisk.scoring import score_features
    from churnrisk.training import training_rows

    model, _ = demo_model
    cutoff = pd.Timestamp(model.metadata["cutoffs"]["test"][0])
    rows = training_rows(demo_store, [cutoff], definition="subscription", horizon=60)
    features = feature_part(rows).set_axis(pd.Index(rows["customer_id"], name="customer_id"), axis=0)
    scored = score_features(model, features, keep_families=True).merge(rows[["customer_id", "churned"]])
    named = cause_agreement(scored, demo_tables["ground_truth"])
    first = cause_agreement(scored, demo_tables["ground_truth"], first=1)
    print("reasons agreement:", named, "first reason:", first)
    assert named["flagged_churners"] >= 15
    assert named["share"] >= 0.9
    # the first reason: 15 of 16 here (5,000 demo customers: 45 of 48)
    assert first["share"] >= 0.9


def test_cause_agreement_by_hand():
    scored = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "churn_probability": [0.9, 0.8, 0.7, 0.1],
            "reason_families": ["payments; support", "activity", "surveys", "payments"],
            "churned": [1, 1, 0, 1],
        }
    )
    truth = pd.DataFrame({"customer_id": [1, 2, 3, 4], "cause": ["failed_payments", "complaints", None, "x"]})
    got = cause_agreement(scored, truth, threshold=0.5)
    assert (got["flagged_churners"], got["named_cause"], got["share"]) == (2, 1, 0.5)
    scored["reason_families"] = ["support; payments", "activity", "surveys", "payments"]
    first = cause_agreement(scored, truth, threshold=0.5, first=1)
    assert (first["flagged_churners"], first["named_cause"]) == (2, 0)
    assert cause_agreement(scored, truth, threshold=0.5)["named_cause"] == 1


@pytest.fixture(scope="module")
def toy_gbm() -> tuple[ChurnModel, pd.DataFrame]:
    """A calibrated GBM on two families, one of them with a text category, with risky sides."""
    from churnrisk.model import reference_values, risk_sides, spread_values

    rng = np.random.default_rng(1)
    n = 3000
    X = pd.DataFrame(
        {
            "support_complaints_30d": rng.poisson(1, n).astype(float),
            "customer_segment": rng.choice(["smb", "enterprise"], n),
            "activity_events_30d": rng.poisson(5, n).astype(float),
        }
    )
    logit = (
        1.5 * X["support_complaints_30d"] - 0.5 * X["activity_events_30d"] + (X["customer_segment"] == "smb")
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    schema = input_schema(X)
    prepared = prepare_features(X, schema)
    est = fit_calibrated(make_pipeline(schema), prepared[:2000], y[:2000], prepared[2000:], y[2000:])
    meta = {
        "kind": "events",
        "schema": schema,
        "reference": reference_values(prepared, schema),
        "spread": spread_values(prepared, schema),
        "risk_side": risk_sides(prepared[:2000], y[:2000], schema),
        "families": {
            "support_complaints_30d": "support",
            "customer_segment": "support",
            "activity_events_30d": "activity",
        },
    }
    return ChurnModel(est, meta), prepared


def test_risk_sides_follow_the_label_by_hand():
    from churnrisk.model import risk_sides

    frame = pd.DataFrame({"up": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10], "down": [10.0, 9, 8, 7, 6, 5, 4, 3, 2, 1]})
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    sides = risk_sides(frame, y, {"up": "number", "down": "number"})
    # numpy's linear quantiles of 1..10: 25 % → 3.25, 75 % → 7.75
    assert sides == {"up": {"sign": 1, "edge": 7.75}, "down": {"sign": -1, "edge": 3.25}}


def test_encoded_what_if_equals_full_re_prediction(toy_gbm):
    model, X = toy_gbm
    rows = X.iloc[:300]
    effects = family_effects(model, rows)
    groups = {"support": ["support_complaints_30d", "customer_segment"], "activity": ["activity_events_30d"]}
    for family, columns in groups.items():
        typical = rows.copy()
        for column in columns:
            typical[column] = model.metadata["reference"][column]
        full = model.predict_prepared(rows) - model.predict_prepared(typical)
        got = effects[family].to_numpy()
        # families on their safe side are not attributed (effect 0); the others are exact
        attributed = got != 0
        assert attributed.any()
        np.testing.assert_allclose(got[attributed], full[attributed], atol=1e-12)


@pytest.mark.parametrize("by_column", [True, False], ids=["column-by-column", "whole-frame"])
def test_binned_rows_predict_exactly_what_predict_proba_gives(toy_gbm, by_column, monkeypatch):
    """The rows as the booster's bins, an unknown category and missing values included, give the
    estimator's own probabilities bit for bit, and so do the stacked what-ifs; whether the columns
    are encoded one at a time (the pipeline of ``make_pipeline``) or the frame through the pipeline."""
    from churnrisk.model import EncodedRows

    if not by_column:
        monkeypatch.setattr(EncodedRows, "_layout", lambda self: None)
    model, X = toy_gbm
    rows = X.iloc[:300].copy()
    rows.iloc[:5, rows.columns.get_loc("customer_segment")] = "never seen"  # goes where missing ones go
    rows.iloc[5:10, rows.columns.get_loc("customer_segment")] = np.nan
    rows.iloc[10:15, rows.columns.get_loc("activity_events_30d")] = np.nan
    encoded = EncodedRows.of(model, rows)
    assert encoded is not None and (encoded.layout is not None) == by_column
    np.testing.assert_array_equal(encoded.proba(), model.estimator.predict_proba(rows)[:, 1])
    support = ["support_complaints_30d", "customer_segment"]
    cases = [
        (np.arange(0, 300, 2), support),
        (np.arange(0), ["activity_events_30d"]),
        (np.arange(3, 40), support),
    ]
    for (chosen, columns), got in zip(cases, encoded.what_ifs(cases), strict=True):
        typical = rows.iloc[chosen].assign(**{c: model.metadata["reference"][c] for c in columns})
        expected = model.estimator.predict_proba(typical)[:, 1] if len(chosen) else np.empty(0)
        np.testing.assert_array_equal(got, expected)


def test_a_family_on_its_safe_side_is_never_a_reason(toy_gbm):
    model, _ = toy_gbm
    edge = model.metadata["risk_side"]["support_complaints_30d"]["edge"]
    rows = pd.DataFrame(
        {
            "support_complaints_30d": [edge + 3, 0.0],
            "customer_segment": ["smb", "smb"],
            "activity_events_30d": [5.0, 5.0],
        }
    )
    got = top_reasons(model, prepare_features(rows, model.schema))
    assert got["reason_families"].tolist()[0].split("; ")[0] == "support"
    assert got["reasons"].tolist()[0].startswith(f"{edge + 3:.0f} complaints in the last 30 days")
    # no complaints is the safe side: support is no reason although "smb" raises the risk
    assert "support" not in got["reason_families"].tolist()[1]


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("subscription_downgrades_90d", 1.0, "1 downgrade in the last 90 days"),
        ("payments_recovered_30d", 1.0, "1 failed payment later recovered in the last 30 days"),
        ("support_complaints_30d", 3.0, "3 complaints in the last 30 days"),
        ("activity_events_30d", 0.0, "no product events in the last 30 days"),
        ("subscription_tenure", 20.0, "new customer: first subscription 20 days ago"),
        ("subscription_tenure", 604.0, "first subscription 604 days ago"),
        ("activity_recency", 1.0, "1 day since the last product event"),
        ("activity_recency", 21.0, "21 days since the last product event"),
    ],
)
def test_reason_words_read_naturally(column, value, text):
    from churnrisk.features import explain

    assert explain(column, {column: value}) == text


def _sides(**sides: tuple[int, float]) -> ChurnModel:
    """A model whose metadata records only risky sides (what ``_risky_distance`` reads)."""
    return ChurnModel(
        None,
        {
            "risk_side": {c: {"sign": sign, "edge": edge} for c, (sign, edge) in sides.items()},
            "spread": dict.fromkeys(sides, 2.0),
        },
    )


@pytest.mark.parametrize(
    ("column", "side", "values", "expected"),
    [
        # more complaints than the edge: (value - edge) / spread
        ("support_complaints_30d", (1, 0.0), [0.0, 1.0, 4.0], [0.0, 0.5, 2.0]),
        # fewer product events is the risk the words can say
        ("activity_events_30d", (-1, 2.0), [1.0, 2.0, 9.0], [0.5, 0.0, 0.0]),
        # more product events going with churn in the data is never said as a risk
        ("activity_events_365d", (1, 43.0), [50.0, 90.0, 0.0], [0.0, 0.0, 0.0]),
        # a change: where the data's edge is above 0, "unchanged" and "rose" are still no fall
        ("subscription_mrr_change_180d", (-1, 29.0), [0.0, 10.0, -40.0], [0.0, 0.0, 20.0]),
        # a rise in MRR or product use is never a risk, nor a long tenure or an upgrade
        ("subscription_mrr_change_365d", (1, 0.0), [29.0, 79.0, 0.0], [0.0, 0.0, 0.0]),
        ("subscription_tenure", (1, 236.0), [600.0, 300.0, 10.0], [0.0, 0.0, 0.0]),
        ("subscription_upgrades_180d", (1, 0.0), [1.0, 2.0, 0.0], [0.0, 0.0, 0.0]),
        # a short tenure is ("new customer")
        ("customer_tenure", (-1, 60.0), [20.0, 60.0, 200.0], [20.0, 0.0, 0.0]),
        # a column the words do not know (a snapshot table): the data decide
        ("MonthlyCharges", (1, 80.0), [100.0, 50.0, np.nan], [10.0, 0.0, 0.0]),
    ],
)
def test_a_value_is_risky_only_where_its_words_read_as_a_risk(column, side, values, expected):
    from churnrisk.reasons import _risky_distance

    got = _risky_distance(_sides(**{column: side}), pd.DataFrame({column: values}))
    np.testing.assert_allclose(got.get(column, np.zeros(3)), expected)


def test_reasons_compare_with_the_typical_customer(toy_gbm):
    model, _ = toy_gbm
    rows = pd.DataFrame(
        {"support_complaints_30d": [6.0], "customer_segment": ["smb"], "activity_events_30d": [5.0]}
    )
    got = top_reasons(model, prepare_features(rows, model.schema), n_reasons=1)
    typical = model.metadata["reference"]["support_complaints_30d"]
    assert got["reasons"].tolist() == [f"6 complaints in the last 30 days (typical: {typical:.0f})"]


#: Words that read against a risk: every change said as a reason is a fall, never a rise.
CONTRADICTIONS = r"\bunchanged\b|\brose\b|\bstayed the same\b|\bfrom 0 to\b|\bchanged by\b"
#: Every reason compares: with the typical customer, or with the customer's own past.
COMPARISONS = r"\btypical: |\bvs the\b|\busual gap\b|\bfell from\b|^new customer: "


def test_no_demo_reason_reads_against_its_risk_or_is_a_bare_count(demo_model):
    _, scores = demo_model
    reasons = scores.loc[scores["reasons"] != "", "reasons"].str.split("; ").explode()
    assert len(reasons) >= 50
    assert not reasons.str.contains(CONTRADICTIONS).any(), reasons[reasons.str.contains(CONTRADICTIONS)]
    bare = reasons[~reasons.str.contains(COMPARISONS)]
    assert bare.empty, bare.unique()
    # a value said beside the typical one differs from it (the comparison says something)
    typical = reasons.str.extract(r"^(?:(no) |\D*?(\d[\d,]*(?:\.\d+)?)).*\(typical: ([\d,.]+)%?\)$")
    said = typical[0].notna() | typical[1].notna()
    value = np.where(typical[0].notna(), 0.0, pd.to_numeric(typical[1].str.replace(",", ""), errors="coerce"))
    assert said.sum() >= 30
    assert (value[said] != pd.to_numeric(typical.loc[said, 2].str.replace(",", ""))).all()


@pytest.mark.parametrize(
    ("column", "typical", "text"),
    [
        (
            "purchases_bgnbd_quiet",
            0.5,
            "93% chance of no purchase within the horizon (repeat-buying model, typical: 50%)",
        ),
        ("purchases_bgnbd_alive", None, "93% chance the customer still buys here (repeat-buying model)"),
    ],
)
def test_repeat_buying_reasons_compare_too(column, typical, text):
    from churnrisk.features import explain
    from churnrisk.reasons import _words

    assert _words(explain, column, {column: 0.93}, typical) == text
