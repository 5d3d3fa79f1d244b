"""The pipeline, calibration, out-of-time split and training on an event store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, requires_shared_data

from churnrisk.errors import ChurnriskError
from churnrisk.model import MODEL_KINDS, fit_calibrated, input_schema, make_pipeline, prepare_features
from churnrisk.training import cutoff_range, default_cutoffs, split_cutoffs
from churnrisk.workflow import train_model


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
    # last outcome known: 2024-12-31 - 90 days = 2024-10-02; first allowed: 2024-01-01 + 90 days = 2024-03-31
    got = default_cutoffs(_orders_between("2024-01-01", "2024-12-31 15:00"), horizon=90)
    expected = [
        "2024-04-02",
        "2024-05-02",
        "2024-06-02",
        "2024-07-02",
        "2024-08-02",
        "2024-09-02",
        "2024-10-02",
    ]
    assert [c.strftime("%Y-%m-%d") for c in got] == expected
    # and they allow an out-of-time split: fit cutoffs up to 2024-07-04, the test cutoff 2024-10-02
    train, cal, test = split_cutoffs(got, horizon=90)
    assert (len(train), len(cal), test) == (3, 1, [pd.Timestamp("2024-10-02")])


@pytest.mark.parametrize(
    ("last", "horizon", "have", "needed"),
    [
        # test cutoff 2024-02-01; fit cutoffs 90 days before it: 2023-11-01 and 2023-10-01; 90 days of
        # warm-up before 2023-10-01 → the data must start by 2023-07-03: 303 days up to 2024-05-01
        ("2024-05-01", 90, 121, 303),
        # test 2024-07-29; fit 2024-04-29 and 2024-03-29; warm-up from 2023-12-30: 302 days
        ("2024-10-27", 90, 300, 302),
        # test 2024-07-04; fit 180 days before: 2024-01-04 and 2023-12-04; warm-up from 2023-09-05: 483 days
        ("2024-12-31", 180, 365, 483),
    ],
)
def test_default_cutoffs_on_a_short_history_say_how_much_more_is_needed(last, horizon, have, needed):
    store = _orders_between("2024-01-01", last)
    message = rf"data cover {have} days .* needs at least {needed} .* add {needed - have} more days"
    with pytest.raises(ChurnriskError, match=message):
        default_cutoffs(store, horizon=horizon)


def test_default_cutoffs_on_just_enough_history_train_and_test():
    # test cutoff 2024-10-29 - 90 days = 2024-07-31; the second fit cutoff 2024-03-31 is 90 days in
    got = default_cutoffs(_orders_between("2024-01-01", "2024-10-29"), horizon=90)
    expected = ["2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30", "2024-07-31"]
    assert [c.strftime("%Y-%m-%d") for c in got] == expected
    train, cal, test = split_cutoffs(got, horizon=90)
    assert (train, cal) == ([pd.Timestamp("2024-03-31")], [pd.Timestamp("2024-04-30")])


def test_split_cutoffs_with_a_named_test_cutoff():
    cutoffs = list(pd.date_range("2024-01-01", "2024-12-01", freq="MS"))
    train, cal, test = split_cutoffs(cutoffs, horizon=60, test_cutoff="2024-06-01")
    # fit cutoffs: label windows end by 2024-06-01 -> up to 2024-04-02: Jan..Apr, the last one validates
    assert (train, cal, test) == (cutoffs[:3], [cutoffs[3]], [pd.Timestamp("2024-06-01")])


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


def _at_least_the_best_baseline(meta) -> None:
    for key in ("roc_auc", "average_precision"):
        best = max(b[key] for b in meta["baselines"].values())
        assert meta["metrics"][key] >= best - 0.005, (key, meta["metrics"][key], meta["baselines"])


@pytest.mark.realdata
@pytest.mark.slow
@requires_shared_data
def test_online_retail_with_default_cutoffs_is_at_least_its_best_baseline():
    from churnrisk.contract import TABLES
    from churnrisk.importers import import_online_retail
    from churnrisk.store import EventStore

    tables = import_online_retail(SHARED_DATA / "online_retail" / "online_retail.parquet").tables
    store = EventStore.from_frames({k: v for k, v in tables.items() if k in TABLES})
    cutoffs = default_cutoffs(store, horizon=90)
    meta = train_model(store, cutoffs=cutoffs, horizon=90, definition="inactivity").metadata
    print("Online Retail:", meta["selection"]["winner"], meta["metrics"], meta["baselines"])
    assert set(meta["baselines"]) == {"historical_rate", "recency", "bgnbd"}
    assert meta["cutoffs"]["test"] == ["2011-09-10"] and len(meta["cutoffs"]["train"]) >= 3
    _at_least_the_best_baseline(meta)


@pytest.mark.slow
def test_cdnow_with_a_long_horizon_and_look_back_is_at_least_its_best_baseline():
    """CDNOW (the lifetimes wheel's 18 months of CD orders), 180-day horizon, 365-day look-back."""
    lifetimes = pytest.importorskip("lifetimes")
    from pathlib import Path

    from churnrisk.store import EventStore

    source = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    raw = pd.read_csv(source, sep=r"\s+", header=0, names=["customer_id", "date", "cds", "amount"])
    orders = raw.assign(ordered_at=pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"))
    orders = orders.loc[orders["amount"] > 0, ["customer_id", "ordered_at", "amount"]]
    customers = pd.DataFrame({"customer_id": orders["customer_id"].unique()})
    store = EventStore.from_frames({"customers": customers, "orders": orders})
    cutoffs = default_cutoffs(store, horizon=180)
    meta = train_model(store, cutoffs=cutoffs, horizon=180, lookback=365, definition="inactivity").metadata
    print("CDNOW:", meta["selection"]["winner"], meta["metrics"], meta["baselines"])
    _at_least_the_best_baseline(meta)


@pytest.mark.slow
def test_train_model_refits_through_the_latest_labelled_cutoff(demo_store):
    from churnrisk.workflow import evaluate_model

    cutoffs = cutoff_range("2023-07-01", "2024-10-01", every="1M")
    options = {"cutoffs": cutoffs, "horizon": 60, "definition": "subscription"}
    tested = train_model(demo_store, refit=False, **options)
    shipped = train_model(demo_store, **options)
    meta, kept = shipped.metadata, tested.metadata
    # the same candidates, winner and out-of-time test; only the shipped fit differs
    assert meta["selection"] == kept["selection"] and meta["metrics"] == kept["metrics"]
    assert kept["cutoffs"]["final_calibration"] == kept["cutoffs"]["calibration"]
    # every cutoff is in the final fit, those inside the test gap (Aug, Sep) and the test cutoff too
    final = meta["cutoffs"]["final_train"] + meta["cutoffs"]["final_calibration"]
    assert final == [c.strftime("%Y-%m-%d") for c in cutoffs]
    assert meta["cutoffs"]["final_calibration"] == ["2024-07-01", "2024-08-01", "2024-09-01", "2024-10-01"]
    # the tested fit reproduces its recorded test metrics; the refit one has seen the test rows
    again = evaluate_model(tested, demo_store, cutoff="2024-10-01")
    assert again["metrics"]["roc_auc"] == pytest.approx(kept["metrics"]["roc_auc"], abs=1e-12)
    assert again["notes"] == []  # out of time: the tested fit learned from outcomes up to 2024-09-30
    refit = evaluate_model(shipped, demo_store, cutoff="2024-10-01")
    assert refit["metrics"]["roc_auc"] != pytest.approx(kept["metrics"]["roc_auc"], abs=1e-9)
    # the refit saw the outcomes of 2024-10-01 + 60 days: said, not hidden
    assert refit["notes"] == [
        "the model learned from outcomes up to 2024-11-30, after this cutoff: these figures are "
        "optimistic. Suggestion: evaluate at a later cutoff for an out-of-time measure."
    ]


@pytest.mark.slow
def test_the_historical_rate_baseline_is_an_honest_probability(demo_store):
    cutoffs = cutoff_range("2023-07-01", "2024-10-01", every="1M")
    meta = train_model(demo_store, cutoffs=cutoffs, horizon=60, definition="subscription").metadata
    base = meta["baselines"]["historical_rate"]
    # a constant at the test's own base rate has Brier p(1-p); the training-time rates come close
    constant = base["base_rate"] * (1 - base["base_rate"])
    assert abs(base["brier"] - constant) < 0.01
    rates = meta["base_rates"]
    assert rates["segment"] == "segment" and 0 < rates["overall"] < 1
    assert set(rates["by_segment"]) <= {"smb", "mid_market", "enterprise", "consumer", "business"}


def test_base_rates_by_segment_by_hand():
    from churnrisk.evaluation import base_rates, historical_rate
    from churnrisk.store import EventStore

    ids = list(range(1, 71))
    store = EventStore.from_frames(
        {
            "customers": pd.DataFrame({"customer_id": ids, "segment": ["a"] * 40 + ["b"] * 20 + ["c"] * 10}),
            "orders": pd.DataFrame(
                {"customer_id": ids, "ordered_at": pd.Timestamp("2024-01-01"), "amount": 1.0}
            ),
        }
    )
    # a: 10 of 40 churned; b: 15 of 20 (below 30 rows: the overall rate); c: 5 of 10
    churned = [1] * 10 + [0] * 30 + [1] * 15 + [0] * 5 + [1] * 5 + [0] * 5
    rates = base_rates(store, pd.DataFrame({"customer_id": ids, "churned": churned}))
    assert rates == {"segment": "segment", "overall": 30 / 70, "by_segment": {"a": 0.25}, "n": 70}
    got = historical_rate(store, pd.Series([1, 45, 65, 99]), rates)
    np.testing.assert_allclose(got, [0.25, 30 / 70, 30 / 70, 30 / 70])


def _stored(seed: int, n: int = 600) -> pd.DataFrame:
    """``_data`` as a training set holds it: 32-bit floats, an int32 count, categorical text."""
    X, _ = _data(seed, n)
    plan = pd.Categorical(X["plan"], categories=pd.Index(["basic", "pro", "team"], dtype="str"))
    plan[::7] = np.nan
    count = np.random.default_rng(seed).integers(0, 9, n).astype(np.int32)
    return pd.DataFrame(
        {"x": X["x"].astype(np.float32), "z": X["z"].astype(np.float32), "n": count, "plan": plan}
    )


def test_training_matrix_takes_32_bit_numbers_and_categories_without_copies():
    from churnrisk.model import training_matrix

    stored = _stored(0)
    schema = input_schema(stored)
    assert schema == {"x": "number", "z": "number", "n": "number", "plan": "category"}
    X = training_matrix(stored, schema)
    assert X.dtypes.to_dict() == {
        "x": np.float32,
        "z": np.float32,
        "n": np.float32,
        "plan": stored["plan"].dtype,
    }
    assert np.shares_memory(X["x"].to_numpy(), stored["x"].to_numpy())
    assert np.shares_memory(X["plan"].array.codes, stored["plan"].array.codes)
    np.testing.assert_array_equal(X["n"].to_numpy(), stored["n"].to_numpy())


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.array([0, 3, 2**24], dtype=np.int64), np.float32),  # exact in 32 bits
        (np.array([0, 3, 2**24 + 1], dtype=np.int64), np.float64),  # not: 2**24 + 1 would round
        (np.array([-(2**24), 5], dtype=np.int32), np.float32),
        (np.array([-(2**24) - 1, 5], dtype=np.int32), np.float64),
        (np.array([0, 2**24], dtype=np.uint32), np.float32),
        (np.array([True, False, True]), np.float32),
        (np.array([1.5, np.nan, 2.0]), np.float64),
    ],
)
def test_training_matrix_makes_whole_numbers_floats_only_as_wide_as_needed(values, dtype):
    from churnrisk.model import training_matrix

    X = training_matrix(pd.DataFrame({"v": values}), {"v": "number"})
    assert X["v"].dtype == dtype
    np.testing.assert_array_equal(X["v"].to_numpy(dtype=float), values.astype(float))


def test_training_matrix_reads_text_as_prepare_features_does():
    from churnrisk.model import training_matrix

    frame = pd.DataFrame({"plan": ["basic", None, "pro"], "size": pd.Categorical([1, 2, None])})
    schema = {"plan": "category", "size": "category"}
    pd.testing.assert_frame_equal(training_matrix(frame, schema), prepare_features(frame, schema))
    with pytest.raises(ChurnriskError, match="lacks 1 column"):
        training_matrix(frame, {**schema, "tenure": "number"})


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_a_model_fitted_on_the_training_matrix_is_the_one_fitted_on_prepared_features(kind):
    from churnrisk.model import training_matrix

    _, y = _data(3)
    stored = _stored(3)
    schema = input_schema(stored)
    compact, prepared = training_matrix(stored, schema), prepare_features(stored, schema)

    def fit(X):  # noqa: N803
        pipeline = make_pipeline(schema, model=kind)
        return fit_calibrated(pipeline, X[:400], y[:400], X[400:500], y[400:500])

    a, b = fit(prepared).predict_proba(prepared[500:])[:, 1], fit(compact).predict_proba(prepared[500:])[:, 1]
    # the same numbers: gradient boosting bins them alike; the logistic regression scales them in
    # 32 bits instead of 64 (its imputed medians and scaled values differ in the 7th digit at most)
    atol = 0 if kind == "gbm" else 1e-6
    np.testing.assert_allclose(a, b, rtol=0, atol=atol)
    np.testing.assert_allclose(b, fit(compact).predict_proba(compact[500:])[:, 1], rtol=0, atol=atol)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_fit_calibrated_rows_is_fit_calibrated_on_the_slices(kind):
    from churnrisk.model import fit_calibrated_rows

    X, y = _data(5)
    prepared = prepare_features(X, input_schema(X))
    fit, calibrate = np.arange(600) < 400, (np.arange(600) >= 400) & (np.arange(600) < 500)
    a = fit_calibrated(
        make_pipeline(input_schema(X), model=kind), prepared[fit], y[fit], prepared[calibrate], y[calibrate]
    )
    b, proba = fit_calibrated_rows(make_pipeline(input_schema(X), model=kind), prepared, y, fit, calibrate)
    np.testing.assert_array_equal(a.predict_proba(prepared[500:]), b.predict_proba(prepared[500:]))
    np.testing.assert_array_equal(proba, b.predict_proba(prepared[calibrate])[:, 1])
    with pytest.raises(ChurnriskError, match="need churners and non-churners"):
        fit_calibrated_rows(
            make_pipeline(input_schema(X), model=kind), prepared, y, fit & (y == 1), calibrate
        )


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_calibrate_is_scikit_learns_calibration_of_the_frozen_pipeline(kind):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from churnrisk.model import calibrate

    X, y = _data(7)
    prepared = prepare_features(X, input_schema(X))
    pipeline = make_pipeline(input_schema(X), model=kind).fit(prepared[:400], y[:400])
    ours, proba = calibrate(pipeline, prepared[400:500], y[400:500])
    theirs = CalibratedClassifierCV(FrozenEstimator(pipeline)).fit(prepared[400:500], y[400:500])
    np.testing.assert_array_equal(ours.predict_proba(prepared[500:]), theirs.predict_proba(prepared[500:]))
    np.testing.assert_array_equal(proba, theirs.predict_proba(prepared[400:500])[:, 1])
    assert list(ours.feature_names_in_) == list(theirs.feature_names_in_)
    assert ours.n_features_in_ == theirs.n_features_in_
    mine, sklearns = ours.calibrated_classifiers_[0], theirs.calibrated_classifiers_[0]
    assert (mine.method, list(mine.classes)) == (sklearns.method, list(sklearns.classes))
    ab = [(c.calibrators[0].a_, c.calibrators[0].b_) for c in (mine, sklearns)]
    assert ab[0] == ab[1]
