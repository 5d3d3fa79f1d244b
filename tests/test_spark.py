"""The Spark engine: same declarations, same numbers as the default engine (Spark in local mode)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from churnrisk.errors import ChurnriskError, DataError
from churnrisk.features import FAMILIES, build_features
from churnrisk.spark import spark_available
from churnrisk.store import EventStore

_MISSING = spark_available()
pytestmark = [pytest.mark.spark, pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))]

CUTOFF = "2024-06-30"


@pytest.fixture(scope="module")
def spark():
    from churnrisk.spark import spark_session

    session = spark_session(master="local[2]", driver_memory="1g", shuffle_partitions=4)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark_demo(spark, demo_store):
    from churnrisk.spark import SparkEventStore

    return SparkEventStore.from_event_store(demo_store, spark=spark)


def assert_same_features(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns, order, index and dtypes; counts exactly, floats to 1e-9 relative."""
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_index_equal(got.index, expected.index)
    pd.testing.assert_series_equal(got.dtypes, expected.dtypes)
    exact = [c for c in expected.columns if not pd.api.types.is_float_dtype(expected[c])]
    floats = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]
    pd.testing.assert_frame_equal(got[exact], expected[exact], check_exact=True)
    # atol only for differences of sums that cancel to ~0 (summation order differs between engines)
    pd.testing.assert_frame_equal(got[floats], expected[floats], check_exact=False, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------- parity on the demo data
@pytest.mark.parametrize(("cutoff", "windows"), [(CUTOFF, (30, 90, 180, 365)), ("2023-12-31", (7, 60))])
def test_features_equal_default_engine_on_demo_data(spark_demo, demo_store, cutoff, windows):
    from churnrisk.spark import build_features as spark_features
    from churnrisk.spark import to_pandas

    expected = build_features(demo_store, cutoff, windows=windows)
    got = to_pandas(spark_features(spark_demo, cutoff, windows=windows))
    # every family takes part, so the comparison covers all of them
    assert {f.name for f in FAMILIES} == {c.split("_")[0] for c in expected.columns}
    assert len(expected) > 100
    assert_same_features(got, expected)


@pytest.mark.slow
def test_features_from_parquet_folder(spark, demo_store, tmp_path):
    from churnrisk.spark import build_features as spark_features
    from churnrisk.spark import read_store, to_pandas

    for name, frame in demo_store.tables.items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
    expected = build_features(demo_store, CUTOFF)
    got = to_pandas(spark_features(read_store(tmp_path, spark=spark), CUTOFF))
    assert_same_features(got, expected)


@pytest.mark.slow
def test_features_from_csv_files(spark, demo_store, tmp_path):
    from churnrisk.spark import build_features as spark_features
    from churnrisk.spark import read_store, to_pandas

    some = demo_store.tables["customers"]["customer_id"].head(300).implode()
    for name, frame in demo_store.tables.items():
        frame.filter(pl.col("customer_id").is_in(some)).write_csv(tmp_path / f"{name}.csv")
    from_csv = EventStore.from_folder(tmp_path)
    got = to_pandas(spark_features(read_store(tmp_path, spark=spark), CUTOFF))
    assert_same_features(got, build_features(from_csv, CUTOFF))


# ---------------------------------------------------------------------- labels and training sets
@pytest.mark.slow
@pytest.mark.parametrize(
    ("definition", "options"),
    [
        ("subscription", {"horizon": 90, "lead_time": 14}),
        ("inactivity", {"horizon": 90, "lookback": 180}),
    ],
)
def test_labels_equal_default_engine_on_demo_data(spark_demo, demo_store, definition, options):
    from churnrisk.labels import make_labels
    from churnrisk.spark import make_labels as spark_labels
    from churnrisk.spark import to_pandas

    expected = make_labels(demo_store, "2024-03-31", definition=definition, **options)
    got = to_pandas(spark_labels(spark_demo, "2024-03-31", definition=definition, **options), kind="labels")
    assert expected["churned"].sum() > 10  # churners and stayers both present
    if definition == "subscription":  # both kinds of churn are compared
        assert set(expected["churn_type"].dropna()) == {"voluntary", "involuntary"}
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.slow
def test_training_set_equals_default_engine_including_a_censored_cutoff(spark_demo, demo_store):
    from churnrisk.spark import build_training_set as spark_training_set
    from churnrisk.spark import to_pandas
    from churnrisk.training import build_training_set

    cutoffs = ["2024-03-31", "2024-12-15"]  # the second one's horizon runs past the data
    options = {"definition": "subscription", "horizon": 60, "windows": (30, 90)}
    expected = build_training_set(demo_store, cutoffs, **options)
    got = to_pandas(spark_training_set(spark_demo, cutoffs, **options), kind="training")
    assert expected["churned"].isna().any() and expected["churned"].notna().any()
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-9)


def test_label_options_are_checked_before_spark_runs(spark_demo):
    from churnrisk.spark import make_labels as spark_labels

    with pytest.raises(ChurnriskError, match="'definition' parameter"):
        spark_labels(spark_demo, CUTOFF, definition="gone", horizon=30)
    with pytest.raises(ChurnriskError, match="'horizon' parameter"):
        spark_labels(spark_demo, CUTOFF, definition="inactivity", horizon=0)


# ---------------------------------------------------------------------- small stores, by hand
def _store(**frames: pd.DataFrame) -> EventStore:
    return EventStore.from_frames(frames)


def test_hand_computed_values_with_ties_and_window_edges(spark):
    from churnrisk.spark import build_features as spark_features
    from churnrisk.spark import to_pandas

    ts = pd.to_datetime
    store = _store(
        customers=pd.DataFrame(
            {"customer_id": [1, 2, 3], "signup_at": ts(["2024-01-01"] * 2 + ["2024-08-01"])}
        ),
        orders=pd.DataFrame(
            {
                "customer_id": [1, 1, 1, 2, 3],
                # exactly at the window start (excluded), inside, exactly at the cutoff (included)
                "ordered_at": ts(["2024-05-31", "2024-06-10", "2024-06-30", "2024-07-01", "2024-06-01"]),
                "amount": [10.0, 20.0, 30.0, 99.0, 5.0],
            }
        ),
        surveys=pd.DataFrame(
            {
                "customer_id": [1, 1, 1],
                "answered_at": ts(["2024-06-01", "2024-06-05", "2024-06-05"]),  # a tie: input order decides
                "kind": ["csat", "csat", "csat"],
                "score": [5.0, 2.0, 4.0],
            }
        ),
    )
    got = to_pandas(spark_features(store, "2024-06-30", windows=[30], spark=spark))
    assert got.index.tolist() == [1, 2]  # 3 signed up after the cutoff
    assert got["purchases_frequency_30d"].tolist() == [2, 0]  # 2's order is after the cutoff
    assert got["purchases_monetary_30d"].tolist() == [50.0, 0.0]
    assert got.loc[1, "purchases_recency"] == 0.0
    assert got.loc[1, "purchases_usual_gap"] == pytest.approx(30 / 2)
    assert np.isnan(got.loc[2, "purchases_recency"])
    assert got.loc[1, "surveys_csat_last"] == 4.0
    assert got.loc[1, "surveys_csat_prev"] == 2.0
    assert got.loc[1, "surveys_csat_trend"] == 2.0
    assert_same_features(got, build_features(store, "2024-06-30", windows=[30]))


# ---------------------------------------------------------------------- reading errors
def test_subscriptions_without_an_end_column_are_all_open(spark):
    from churnrisk.spark import build_features as spark_features
    from churnrisk.spark import to_pandas

    ts = pd.to_datetime
    store = _store(
        customers=pd.DataFrame({"customer_id": [1, 2], "signup_at": ts(["2024-01-01", "2024-01-15"])}),
        subscriptions=pd.DataFrame(
            {"customer_id": [1, 2], "started_at": ts(["2024-01-01", "2024-03-10"]), "mrr": [10.0, 5.0]}
        ),
    )
    expected = build_features(store, "2024-03-31", windows=[30])
    assert expected["subscription_mrr"].tolist() == [10.0, 5.0]
    assert expected["subscription_open"].tolist() == [1, 1]
    assert expected["subscription_mrr_change_30d"].tolist() == [0.0, 5.0]  # 2 started inside the window
    assert_same_features(to_pandas(spark_features(store, "2024-03-31", windows=[30], spark=spark)), expected)


def test_read_store_reports_unreadable_values_and_missing_columns(spark, tmp_path):
    from churnrisk.spark import read_store

    pl.DataFrame({"customer_id": ["1", "2"]}).write_csv(tmp_path / "customers.csv")
    pl.DataFrame(
        {
            "customer_id": ["1", "2", "2"],
            "ordered_at": ["2024-01-01", "not a date", ""],
            "amount": ["1", "x", "3"],
        }
    ).write_csv(tmp_path / "orders.csv")
    with pytest.raises(DataError) as caught:
        read_store(tmp_path, spark=spark)
    text = str(caught.value)
    assert "orders.ordered_at: values that cannot be read (1 row)" in text
    assert "orders.amount: values that cannot be read (1 row)" in text

    (tmp_path / "orders.csv").unlink()
    pl.DataFrame({"customer_id": ["1"], "when": ["2024-01-01"]}).write_csv(tmp_path / "orders.csv")
    with pytest.raises(DataError, match="orders.ordered_at, amount: missing required column"):
        read_store(tmp_path, spark=spark)


def test_read_store_without_customers_is_a_clear_error(spark, tmp_path):
    from churnrisk.spark import read_store

    with pytest.raises(ChurnriskError, match="has no customers table"):
        read_store(tmp_path, spark=spark)


# ---------------------------------------------------------------------- scoring
def _arrow(features: pd.DataFrame):
    """The feature frame with its customer_id index as a column, as Arrow (a Spark DataFrame's source)."""
    return pl.from_pandas(features, include_index=True).to_arrow()


@pytest.fixture(scope="module")
def saved_model(demo_store, tmp_path_factory):
    from churnrisk.model import ChurnModel, input_schema, make_pipeline, reference_values
    from churnrisk.modelfile import save_model

    features = build_features(demo_store, CUTOFF)
    schema = input_schema(features)
    rng = np.random.default_rng(0)
    churned = (features["purchases_recency"].fillna(999) > 60) ^ (rng.random(len(features)) < 0.1)
    pipeline = make_pipeline(schema, model="logistic").fit(features, churned.astype(int))
    path = tmp_path_factory.mktemp("model") / "demo.skops"
    # "reference" (typical values) as train_model records it: the reasons need it
    metadata = {"schema": schema, "name": "demo", "reference": reference_values(features, schema)}
    save_model(ChurnModel(pipeline, metadata), path)
    return path, features


def test_scoring_on_spark_equals_in_process_scoring(spark, saved_model, tmp_path):
    from churnrisk.modelfile import load_model
    from churnrisk.spark import score, write_parquet

    path, features = saved_model
    expected = pd.Series(load_model(path).predict_proba(features), index=features.index)
    frame = spark.createDataFrame(_arrow(features)).repartition(3)
    scored = score(frame, path)
    out = write_parquet(scored, tmp_path / "scores.parquet")
    got = pl.read_parquet(f"{out}/*.parquet").to_pandas().set_index("customer_id")["churn_probability"]
    assert len(got) == len(expected)
    pd.testing.assert_series_equal(got.sort_index(), expected, check_names=False, rtol=1e-12)
    with pytest.raises(ChurnriskError, match="already exists"):
        write_parquet(scored, tmp_path / "scores.parquet")


def test_scoring_on_spark_gives_the_in_process_columns(spark, saved_model, tmp_path):
    import pyarrow as pa

    from churnrisk.modelfile import load_model
    from churnrisk.scoring import score_features
    from churnrisk.spark import score, write_parquet

    path, features = saved_model
    revenue = pd.Series(np.arange(len(features), dtype=float), index=features.index, name="revenue")
    expected = score_features(load_model(path), features, revenue=revenue).set_index("customer_id")
    with_revenue = _arrow(features).append_column("revenue", pa.array(revenue.to_numpy()))
    frame = spark.createDataFrame(with_revenue).repartition(3)
    out = write_parquet(score(frame, path, revenue_col="revenue"), tmp_path / "scores.parquet")
    got = pl.read_parquet(f"{out}/*.parquet").to_pandas().set_index("customer_id").sort_index()
    assert list(got.columns) == ["churn_probability", "risk_tier", "revenue_at_risk", "reasons"]
    expected = expected.loc[got.index]
    pd.testing.assert_series_equal(got["churn_probability"], expected["churn_probability"], rtol=1e-12)
    pd.testing.assert_series_equal(got["revenue_at_risk"], expected["revenue_at_risk"], rtol=1e-12)
    assert got["risk_tier"].tolist() == expected["risk_tier"].astype(str).tolist()
    # the same sentences; a tie between two columns of a family may be said with the other one
    # (seen: 1 of 1,511 rows, "no return on record" for "no returns that were refunds on record")
    same = (got["reasons"] == expected["reasons"]).mean()
    assert same > 0.99, same


def test_scoring_refuses_features_the_model_does_not_know(spark, saved_model):
    from churnrisk.spark import score

    path, features = saved_model
    frame = spark.createDataFrame(_arrow(features)).select("customer_id", "purchases_recency")
    with pytest.raises(ChurnriskError, match="lacks .* column"):
        score(frame, path)


def test_scoring_refuses_a_tampered_model(spark, saved_model, tmp_path):
    from churnrisk.spark import score

    path, features = saved_model
    bad = tmp_path / "bad.skops"
    bad.write_bytes(path.read_bytes() + b"x")
    (tmp_path / "bad.json").write_text(path.with_suffix(".json").read_text())
    frame = spark.createDataFrame(_arrow(features))
    with pytest.raises(ChurnriskError, match="does not match the hash"):
        score(frame, bad)


def test_cutoff_is_checked_before_spark_runs(spark_demo):
    from churnrisk.spark import build_features as spark_features

    with pytest.raises(ChurnriskError, match="'cutoff' parameter"):
        spark_features(spark_demo, "not a date")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("s3a:/bucket/events/", "s3a://bucket/events"),
        ("hdfs://nn:8020/d", "hdfs://nn:8020/d"),
        ("/tmp/x", "/tmp/x"),
    ],
)
def test_urls_survive_pathlib(given, expected):
    from pathlib import Path

    from churnrisk.spark import _url

    assert _url(Path(given) if given.startswith("/") else given) == expected


@pytest.mark.slow
def test_run_writes_parquet_or_collects_labels_with_the_censored_count(
    spark, demo_store, demo_folder, tmp_path
):
    from churnrisk.labels import make_labels
    from churnrisk.spark import run

    data = demo_folder
    options = {"definition": "inactivity", "horizon": 30}
    for cutoff in ("2024-06-30", "2024-12-15"):  # the second is censored
        expected = make_labels(demo_store, cutoff, **options)
        got = run("labels", data, cutoff, spark=spark, **options)
        pd.testing.assert_frame_equal(got, expected)
        assert got.attrs["censored"] == expected.attrs["censored"]
    assert run("labels", data, CUTOFF, output=tmp_path / "labels.parquet", spark=spark, **options) is None
    written = pl.read_parquet(tmp_path / "labels.parquet" / "*.parquet").sort("customer_id")
    assert written["customer_id"].to_list() == expected_ids(demo_store, options)
    with pytest.raises(ChurnriskError, match="writes Parquet"):
        run("labels", data, CUTOFF, output=tmp_path / "labels.csv", spark=spark, **options)


def expected_ids(store, options):
    from churnrisk.labels import make_labels

    return make_labels(store, CUTOFF, **options).index.tolist()


@pytest.mark.slow
def test_spark_builds_the_training_set_and_train_reads_it_row_group_by_row_group(
    spark, demo_store, demo_folder, tmp_path
):
    """Beyond one machine: Spark writes the training set as a Parquet dataset, train reads it."""
    import json

    from typer.testing import CliRunner

    from churnrisk.cli import app
    from churnrisk.training import build_training_set, read_training_set

    out = tmp_path / "training.parquet"
    built = CliRunner().invoke(
        app,
        ["training-set", str(demo_folder), "--engine", "spark", "--definition", "subscription",
         "--horizon", "30", "--windows", "30,90", "--first-cutoff", "2024-03-15",
         "--last-cutoff", "2024-12-15", "--every", "3M", "-o", str(out)],
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    assert len(list(out.glob("part-*.parquet"))) >= 1 and (out / "_churnrisk.json").exists()
    expected = build_training_set(demo_store, ["2024-03-15", "2024-06-15", "2024-09-15", "2024-12-15"],
                                  definition="subscription", horizon=30, windows=(30, 90))  # fmt: skip
    got = read_training_set(out)
    assert (got.attrs["definition"], got.attrs["horizon"], got.attrs["windows"]) == (
        "subscription",
        30,
        [30, 90],
    )
    pd.testing.assert_frame_equal(
        got, expected, check_exact=False, rtol=1e-9, atol=1e-9, check_dtype=False, check_categorical=False
    )
    model = tmp_path / "model.skops"
    trained = CliRunner().invoke(
        app, ["train", str(demo_folder), "--training-set", str(out), "--model", "logistic", "-o", str(model)]
    )
    assert trained.exit_code == 0, trained.output
    meta = json.loads(model.with_suffix(".json").read_text())
    assert (meta["horizon"], meta["windows"]) == (30, [30, 90])
    assert meta["cutoffs"]["test"] == ["2024-09-15"]  # December is censored: not a labelled cutoff
