"""Churn over several horizons: Kaplan-Meier by hand and against lifelines, the discrete-time hazard model."""

from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from churnrisk.errors import ChurnriskError
from churnrisk.hazard import churn_within, person_periods, time_to_churn
from churnrisk.horizons import (
    churn_curves,
    expected_active_days,
    kaplan_meier,
    relationships,
    restricted_lifetime,
    survival_at,
    survival_curves,
    train_horizons,
)
from churnrisk.store import EventStore


def test_kaplan_meier_by_hand():
    # ends at 10 (1 of 5 at risk), a censoring at 15, ends at 20 (2 of 3 at risk), censoring at 30
    curve = kaplan_meier([10, 15, 20, 20, 30], [True, False, True, True, False])
    assert curve.index.tolist() == [10.0, 20.0]
    np.testing.assert_allclose(curve.to_numpy(), [4 / 5, 4 / 5 * 1 / 3])
    np.testing.assert_allclose(
        survival_at(curve, [0, 9.9, 10, 19, 20, 99]), [1, 1, 0.8, 0.8, 0.8 / 3, 0.8 / 3]
    )


def test_kaplan_meier_matches_lifelines():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' own deprecation warnings on import
        lifelines = pytest.importorskip("lifelines")
    rng = np.random.default_rng(0)
    durations = rng.integers(1, 60, 500).astype(float)  # many ties
    observed = rng.random(500) < 0.6
    ours = kaplan_meier(durations, observed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = lifelines.KaplanMeierFitter().fit(durations, observed).survival_function_["KM_estimate"]
    np.testing.assert_allclose(survival_at(ours, theirs.index.to_numpy()), theirs.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(("durations", "observed"), [([], []), ([1, 2], [True]), ([-1.0], [True])])
def test_kaplan_meier_refuses_bad_input(durations, observed):
    with pytest.raises(ChurnriskError, match="kaplan_meier"):
        kaplan_meier(durations, observed)


@pytest.mark.parametrize(
    ("tenure", "days", "expected"),
    [
        (0.0, 30.0, 10 * 1 + 10 * 0.5),  # all of the curve: 1 until 10, 1/2 until 20, then 0
        (5.0, 10.0, 5 * 1 + 5 * 0.5),
        (12.0, 100.0, 8 * 0.5 / 0.5),  # given alive at 12 (S = 1/2): 8 more days at 1/2, divided by 1/2
        (25.0, 10.0, np.nan),  # nobody survives 20 days: undefined
    ],
)
def test_expected_active_days_by_hand(tenure, days, expected):
    curve = kaplan_meier([10, 20], [True, True])
    got = expected_active_days(curve, [tenure], days)[0]
    np.testing.assert_allclose(got, expected)


def test_expected_active_days_flat_after_the_last_end():
    curve = kaplan_meier([10, 50], [True, False])  # S = 1/2 after 10, nothing known after
    np.testing.assert_allclose(expected_active_days(curve, [0.0, 10.0], 30.0), [10 + 20 * 0.5, 30.0])


@pytest.mark.parametrize(
    ("horizons", "survival", "limit", "expected"),
    [
        ([100], [0.5], 50, 0.5 * (1 + 0.75) * 50),  # inside the first interval
        ([100], [0.5], 100, 75.0),
        ([100], [1.0], 300, 300.0),  # nobody leaves
        ([100], [0.0], 300, 50.0),  # everybody gone by day 100
        ([50, 100], [0.8, 0.4], 100, 0.5 * 1.8 * 50 + 0.5 * 1.2 * 50),
        # beyond the last horizon at the last interval's hazard ln 2 / 50: 0.4 * 50 / ln 2 * (1 - 2^-2)
        ([50, 100], [0.8, 0.4], 200, 0.5 * 1.8 * 50 + 0.5 * 1.2 * 50 + 0.4 * 50 / np.log(2) * 0.75),
    ],
)
def test_restricted_lifetime_by_hand(horizons, survival, limit, expected):
    got = restricted_lifetime(horizons, np.array([survival]), limit=limit)[0]
    assert got == pytest.approx(expected)


def _store() -> EventStore:
    day = pd.Timestamp("2024-01-01")
    days = pd.to_timedelta
    subs = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 4, 5],
            "started_at": [day, day, day, day, day + days("5D"), day + days("25D")],
            "ended_at": [
                day + days("10D"),
                day + days("40D"),
                pd.NaT,
                day + days("5D"),
                day + days("20D"),
                pd.NaT,
            ],
            "mrr": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
        }
    )
    return EventStore.from_frames(
        {"customers": pd.DataFrame({"customer_id": [1, 2, 3, 4, 5]}), "subscriptions": subs}
    )


def test_relationships_censor_at_the_cutoff():
    # at day 30: 1 ended at 10; 2 ends at 40, not known yet; 3 open; 4's plan change at day 5 is one
    # relationship that ended at 20; 5 started at day 25
    got = relationships(_store()["subscriptions"], datetime(2024, 1, 31))
    expected = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5],
            "duration": [10.0, 30.0, 30.0, 20.0, 5.0],
            "ended": [True, False, False, True, False],
        }
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_survival_curves_by_hand():
    # KM at day 30: ends at 10 (1 of 4 at risk: durations 10, 20, 30, 30) and 20 (1 of 3): S = 3/4
    # then 1/2, flat after. Customers 2 and 3 (tenure 30) are past every known end: 0. Customer 5
    # (tenure 5): 1 - S(15) / S(5) = 1/4 within 10 days, 1 - S(35) / S(5) = 1/2 within 30.
    got = survival_curves(_store(), "2024-01-31", horizons=[30, 10])
    assert got.columns.tolist() == ["customer_id", "tenure_days", "p_churn_10d", "p_churn_30d"]
    assert got["customer_id"].tolist() == [2, 3, 5]
    np.testing.assert_allclose(got["tenure_days"], [30, 30, 5])
    np.testing.assert_allclose(got[["p_churn_10d", "p_churn_30d"]], [[0, 0], [0, 0], [0.25, 0.5]])


# --- the hazard model: time to churn, person-period rows, hazards to probabilities ----------------------

DAY0 = pd.Timestamp("2024-01-01")


def _day(d: int) -> datetime:
    return (DAY0 + pd.Timedelta(days=d)).to_pydatetime()


def _timed_store() -> EventStore:
    """``_store()`` plus one product event on day 60: the data end there."""
    activity = pd.DataFrame({"customer_id": [1], "occurred_at": [_day(60)], "event": ["login"]})
    return EventStore.from_frames(
        {**{k: v.to_pandas() for k, v in _store().tables.items()}, "activity": activity}
    )


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        # data end (day 60). Day 15: 2's spell ends on day 40, 4's (two touching rows) on day 20, 3 is
        # open; 1 left on day 10, 5 starts on day 25. Day 30: 2 ends on day 40, 3 and 5 are open.
        (
            None,
            [(2, 15, 25, 1, 45), (3, 15, 45, 0, 45), (4, 15, 5, 1, 45)]
            + [(2, 30, 10, 1, 30), (3, 30, 30, 0, 30), (5, 30, 30, 0, 30)],
        ),
        # as known on day 35: 2's end on day 40 is not known yet, it is censored like 3 and 5
        (
            35,
            [(2, 15, 20, 0, 20), (3, 15, 20, 0, 20), (4, 15, 5, 1, 20)]
            + [(2, 30, 5, 0, 5), (3, 30, 5, 0, 5), (5, 30, 5, 0, 5)],
        ),
    ],
)
def test_time_to_churn_subscription_by_hand(until, expected):
    got = time_to_churn(
        _timed_store(),
        [_day(30), _day(15)],
        definition="subscription",
        lookback=0,
        until=None if until is None else _day(until),
    )
    want = pd.DataFrame(expected, columns=["customer_id", "cutoff", "time", "churned", "observed"])
    want["cutoff"] = [_day(d) for d in want["cutoff"]]
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def _orders_store() -> EventStore:
    # 1 orders on days 0, 20, 50: with a 30-day window one run until day 80. 2 orders on days 0 and 40:
    # a run [0, 30), then another from day 40. 3 orders on day 120 (the data end).
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 3],
            "ordered_at": [_day(d) for d in (0, 20, 50, 0, 40, 120)],
            "amount": 10.0,
        }
    )
    return EventStore.from_frames({"customers": pd.DataFrame({"customer_id": [1, 2, 3]}), "orders": orders})


def test_time_to_churn_inactivity_by_hand_and_against_the_label():
    from churnrisk.labels import make_labels

    store = _orders_store()
    got = time_to_churn(store, [_day(25)], definition="inactivity", lookback=30)
    # eligible on day 25 (an order in the last 30 days): 1 churns on day 80, 2 on day 30
    assert got[["customer_id", "time", "churned", "observed"]].values.tolist() == [
        [1, 55, 1, 95],
        [2, 5, 1, 95],
    ]
    # The one-horizon label (horizon = lookback = 30: no order in days 25-55) says 2 stayed: 2 left on day
    # 30 and came back on day 40. 1, with an order on day 50, stayed by both definitions.
    labels = make_labels(store, _day(25), definition="inactivity", horizon=30, lookback=30)
    assert labels["churned"].to_dict() == {1: 0, 2: 0}


@pytest.mark.parametrize("definition", ["subscription", "inactivity"])
def test_churn_within_the_horizon_agrees_with_the_label_but_for_comebacks(demo_store, definition):
    # the label's churners all churned here too; the customers only the hazard counts are exactly those
    # active again at the end of the horizon (they left inside it and came back)
    from churnrisk.hazard import churn_spells
    from churnrisk.horizons import churned_within
    from churnrisk.labels import make_labels
    from churnrisk.spells import active_at

    h, cutoff = 90, datetime(2024, 3, 31)
    label = make_labels(demo_store, cutoff, definition=definition, horizon=h, lookback=h)["churned"]
    spans = time_to_churn(demo_store, [cutoff], definition=definition, lookback=h).set_index("customer_id")
    assert spans.index.tolist() == label.index.tolist()  # the same eligible customers
    ours = pd.Series(churned_within(spans, h), index=spans.index)
    assert (ours >= label).all()
    spells = churn_spells(demo_store, definition=definition, lookback=h)
    back = set(active_at(spells, cutoff + pd.Timedelta(days=h))["customer_id"].to_list())
    assert set(ours.index[ours > label]) == set(ours.index[ours == 1]) & back
    assert (ours > label).sum() < 0.2 * ours.sum()  # comebacks are the exception


def test_person_periods_by_hand():
    # intervals (0, 30] and (30, 90]; columns: time, churned, observed
    rows = [
        (10, 1, 200),  # churns in the first interval
        (50, 1, 200),  # stays through the first, churns in the second
        (200, 0, 200),  # censored after both: two stays
        (60, 0, 60),  # censored inside the second: its end (90) is not observed, only the first counts
        (40, 1, 60),  # a churn in an interval whose end is not observed yet is left out with it
        (30, 1, 100),  # churns on the first interval's last day: in the first
        (90, 0, 90),  # censored exactly at the second's end: two stays
    ]
    time, churned, observed = zip(*rows, strict=True)
    row, interval, label = person_periods(time, churned, observed, [30, 90])
    got = list(zip(row.tolist(), interval.tolist(), label.tolist(), strict=True))
    assert got == [(0, 0, 1), (1, 0, 0), (1, 1, 1), (2, 0, 0), (2, 1, 0), (3, 0, 0), (4, 0, 0), (5, 0, 1)] + [
        (6, 0, 0),
        (6, 1, 0),
    ]


@pytest.mark.parametrize(
    ("hazards", "expected"),
    [
        ([0.1, 0.5, 0.2], [0.1, 1 - 0.9 * 0.5, 1 - 0.9 * 0.5 * 0.8]),
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
        ([1.0, 0.3, 0.0], [1.0, 1.0, 1.0]),
        ([0.0, 0.25, 0.5], [0.0, 0.25, 1 - 0.75 * 0.5]),
    ],
)
def test_churn_within_by_hand(hazards, expected):
    np.testing.assert_allclose(churn_within(np.array([hazards])), [expected])


# --- the trained model on the demo -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def horizon_model(demo_store):
    return train_horizons(demo_store, horizons=[90, 30], definition="subscription", model="gbm", every="2M")


@pytest.fixture(scope="module")
def inactivity_model(demo_store):
    return train_horizons(
        demo_store, horizons=[30, 90, 180], definition="inactivity", lookback=90, model="gbm", every="3M"
    )


def test_horizon_model_metadata(horizon_model):
    meta = horizon_model.metadata
    assert meta["horizons"] == [30, 90]
    assert meta["horizon"] == 30  # the primary: the shortest
    assert meta["model"] == "hazard-gbm"
    assert set(meta["horizon_metrics"]) == {"30", "90"}
    for h, part in meta["horizon_metrics"].items():
        assert 0.6 < part["roc_auc"] <= 1, h
        assert part["brier"] < part["brier_kaplan_meier"], h  # beats the anchor on the same rows
    assert meta["metrics"] == {
        k: v for k, v in meta["horizon_metrics"]["30"].items() if k != "brier_kaplan_meier"
    }
    # tested out of time: every training cutoff's outcome was read as known at the test cutoff, and the
    # test cutoff's longest horizon has passed by the end of the data
    test = pd.Timestamp(meta["cutoffs"]["test"][0])
    assert pd.Timestamp(meta["cutoffs"]["calibration"][-1]) + pd.Timedelta(days=30) <= test
    assert max(meta["cutoffs"]["train"]) < min(meta["cutoffs"]["calibration"])
    assert test + pd.Timedelta(days=90) <= pd.Timestamp("2024-12-31")


def _curves(model, store):
    from churnrisk.scoring import eligible_features

    return churn_curves(model, eligible_features(model, store, pd.Timestamp("2024-12-30")))


def test_probabilities_come_from_the_interval_hazards(horizon_model, demo_store):
    from churnrisk.model import prepare_features
    from churnrisk.scoring import eligible_features

    features = eligible_features(horizon_model, demo_store, pd.Timestamp("2024-12-30"))
    curves = churn_curves(horizon_model, features)
    proba = curves[["p_churn_30d", "p_churn_90d"]].to_numpy()
    assert (np.diff(proba, axis=1) >= 0).all()  # every customer
    hazards = horizon_model.estimator.hazards(prepare_features(features, horizon_model.schema))
    np.testing.assert_allclose(proba[:, 0], hazards[:, 0])
    np.testing.assert_allclose(proba[:, 1], 1 - (1 - hazards[:, 0]) * (1 - hazards[:, 1]))
    np.testing.assert_allclose(proba[:, 0], horizon_model.predict_proba(features))  # churn_probability
    lifetime = curves["expected_lifetime_days"]
    assert ((lifetime > 0) & (lifetime <= 730)).all()
    np.testing.assert_allclose(lifetime, restricted_lifetime([30, 90], 1 - proba))


def test_inactivity_horizons(inactivity_model, demo_store):
    meta = inactivity_model.metadata
    assert (meta["definition"], meta["lookback"], meta["horizons"]) == ("inactivity", 90, [30, 90, 180])
    assert meta["integrated_brier"]["model"] < meta["integrated_brier"]["kaplan_meier"]
    curves = _curves(inactivity_model, demo_store)
    proba = curves[["p_churn_30d", "p_churn_90d", "p_churn_180d"]].to_numpy()
    assert len(proba) > 50
    assert (np.diff(proba, axis=1) >= 0).all()


def test_training_is_deterministic(inactivity_model, demo_store):
    again = train_horizons(
        demo_store, horizons=[30, 90, 180], definition="inactivity", lookback=90, model="gbm", every="3M"
    )
    from churnrisk.scoring import eligible_features

    features = eligible_features(again, demo_store, pd.Timestamp("2024-12-30"))
    pd.testing.assert_frame_equal(churn_curves(again, features), churn_curves(inactivity_model, features))
    assert again.metadata["horizon_metrics"] == inactivity_model.metadata["horizon_metrics"]


def _known_at(store: EventStore, t: datetime) -> EventStore:
    """The store as it looked at ``t``: later events gone, later ends of subscriptions unknown."""
    import polars as pl

    from churnrisk.contract import TABLES

    tables = {}
    for name, frame in store.tables.items():
        time = TABLES[name].time
        if time:
            frame = frame.filter(pl.col(time) <= t)
        if name == "subscriptions":
            frame = frame.with_columns(
                pl.when(pl.col("ended_at") <= t).then(pl.col("ended_at")).alias("ended_at")
            )
        tables[name] = frame
    return EventStore.from_frames(tables)


@pytest.mark.parametrize("definition", ["subscription", "inactivity"])
def test_point_in_time(demo_store, definition):
    # events after the cutoff change no feature, and events after cutoff + h no churn within h
    from churnrisk.horizons import _feature_rows, churned_within

    cutoff, h = datetime(2024, 3, 31), 90
    options = {
        "definition": definition,
        "lookback": h if definition == "inactivity" else None,
        "windows": None,
    }
    full = _feature_rows(demo_store, [pd.Timestamp(cutoff)], 30, options)
    past = _feature_rows(_known_at(demo_store, cutoff), [pd.Timestamp(cutoff)], 30, options)
    pd.testing.assert_frame_equal(past, full)
    horizon_end = cutoff + pd.Timedelta(days=h)
    later = time_to_churn(demo_store, [cutoff], definition=definition, lookback=h)
    then = time_to_churn(_known_at(demo_store, horizon_end), [cutoff], definition=definition, lookback=h)
    assert then["customer_id"].tolist() == later["customer_id"].tolist()
    np.testing.assert_array_equal(churned_within(then, h), churned_within(later, h))
    assert (churned_within(later, 365) != churned_within(then, 365)).any()  # a longer look would differ


def test_horizon_model_saves_loads_and_scores(horizon_model, demo_store, tmp_path):
    from churnrisk.modelfile import load_model, save_model
    from churnrisk.scoring import score_store

    path = save_model(horizon_model, tmp_path / "horizons.skops")
    loaded = load_model(path)  # only allow-listed types: no code from the file runs
    scores = score_store(loaded, demo_store, cutoff="2024-12-30")
    assert scores.columns[-3:].tolist() == ["p_churn_30d", "p_churn_90d", "expected_lifetime_days"]
    np.testing.assert_allclose(scores["churn_probability"], scores["p_churn_30d"])
    again = score_store(horizon_model, demo_store, cutoff="2024-12-30")
    pd.testing.assert_frame_equal(scores, again)


def test_churn_curves_need_a_several_horizon_model(demo_store):
    from churnrisk.model import ChurnModel

    with pytest.raises(ChurnriskError, match="one horizon"):
        churn_curves(ChurnModel(object(), {"name": "single"}), pd.DataFrame())


def test_primary_horizon_is_the_shortest(demo_store):
    with pytest.raises(ChurnriskError, match="shortest"):
        train_horizons(demo_store, horizons=[30, 90], horizon=90, definition="subscription")


@pytest.mark.parametrize("horizons", [[], [0, 30], [30.5]])
def test_bad_horizons_are_clear_errors(demo_store, horizons):
    with pytest.raises(ChurnriskError, match="horizon"):
        train_horizons(demo_store, horizons=horizons, definition="subscription")


@pytest.mark.parametrize(("option", "value"), [("lead_time", 7), ("training_set", "train/")])
def test_unsupported_options_are_clear_errors(demo_store, option, value):
    with pytest.raises(ChurnriskError, match="not supported"):
        train_horizons(demo_store, horizons=[30, 90], definition="subscription", **{option: value})


def test_longest_horizon_must_fit_the_history(demo_store):
    with pytest.raises(ChurnriskError, match="longest horizon"):
        train_horizons(demo_store, horizons=[30, 900], definition="subscription")


def test_revenue_at_risk_from_expected_value(horizon_model, demo_store):
    from churnrisk.scoring import score_store
    from churnrisk.value import predict_value

    value = predict_value(demo_store, horizon=365, cutoff="2024-12-30", definition="subscription")
    expected = value.table.set_index("customer_id")["expected_revenue"]
    scores = score_store(horizon_model, demo_store, cutoff="2024-12-30", revenue=expected)
    weights = expected.reindex(scores["customer_id"]).fillna(0).to_numpy()
    np.testing.assert_allclose(scores["revenue_at_risk"], scores["churn_probability"] * weights)
    assert scores["revenue_at_risk"].sum() > 0


def test_cli_train_with_horizons_then_score(demo_folder, tmp_path):
    from typer.testing import CliRunner

    from churnrisk.cli import app
    from churnrisk.validation import load_store
    from churnrisk.value import predict_value

    model = tmp_path / "horizons.skops"
    train = [
        "train",
        str(demo_folder),
        "--definition",
        "subscription",
        "--horizons",
        "90,30",
        "--every",
        "2M",
    ]
    result = CliRunner().invoke(app, [*train, "--model", "gbm", "-o", str(model)])
    assert result.exit_code == 0, result.output
    assert "Out-of-time test by horizon" in result.output
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(app, ["score", str(model), str(demo_folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    proba = scores[["p_churn_30d", "p_churn_90d"]].to_numpy()
    assert (np.diff(proba, axis=1) >= 0).all()
    assert scores["expected_lifetime_days"].between(0, 730).all()
    # revenue at risk from the value model: the next year's expected revenue
    out = tmp_path / "scores-expected.csv"
    result = CliRunner().invoke(
        app, ["score", str(model), str(demo_folder), "-o", str(out), "--revenue", "expected"]
    )
    assert result.exit_code == 0, result.output
    expected = pd.read_csv(out)
    value = predict_value(load_store(demo_folder), horizon=365, definition="subscription").table
    weights = value.set_index("customer_id")["expected_revenue"].reindex(expected["customer_id"]).fillna(0)
    np.testing.assert_allclose(
        expected["revenue_at_risk"], expected["churn_probability"] * weights.to_numpy()
    )


@pytest.mark.parametrize("horizons", ["30,soon", "0,30", ","])
def test_cli_refuses_bad_horizons(demo_folder, tmp_path, horizons):
    from typer.testing import CliRunner

    from churnrisk.cli import app

    args = ["train", str(demo_folder), "--horizons", horizons, "-o", str(tmp_path / "m.skops")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--horizons" in result.output
