"""Spark runs the churn definition's label steps: the grace period and the end of the data, as Polars."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest
from pandas.testing import assert_frame_equal

from churnrisk.definition import ChurnDefinition
from churnrisk.errors import ChurnriskError
from churnrisk.labels import make_labels
from churnrisk.spark import spark_available
from churnrisk.store import EventStore

_MISSING = spark_available()
pytestmark = [pytest.mark.spark, pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))]

CUTOFF = "2024-03-31"  # horizon 30 days: (03-31, 04-30]


@pytest.fixture(scope="module")
def spark():
    from churnrisk.spark import spark_session

    session = spark_session(master="local[2]", driver_memory="1g", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def grace_store() -> EventStore:
    """Renewals around the horizon's end, some within a 10-day grace period; data until 06-30."""
    rows = [
        (1, "2024-01-01", None, None),  # stays
        (2, "2024-01-01", "2024-04-25", "too expensive"),  # renews 8 days later: stays with the gap
        (2, "2024-05-03", None, None),
        (3, "2024-01-01", "2024-04-20", "too expensive"),  # back at the horizon's end: active there
        (3, "2024-04-30", None, None),
        (4, "2024-01-01", "2024-04-25", "too expensive"),  # back exactly 10 days later: churned
        (4, "2024-05-05", None, None),
        (5, "2024-01-01", "2024-03-25", None),  # in a pause at the cutoff, back 9.5 days later
        (5, "2024-04-03 12:00", None, None),
        (6, "2024-01-01", "2024-04-28", "card declined"),  # gone: involuntary churn
        (7, "2024-06-30", None, None),  # the data run until 06-30
    ]
    subs = pd.DataFrame(rows, columns=["customer_id", "started_at", "ended_at", "end_reason"]).assign(mrr=9.0)
    subs["started_at"] = pd.to_datetime(subs["started_at"], format="ISO8601")
    subs["ended_at"] = pd.to_datetime(subs["ended_at"])
    return EventStore.from_frames(
        {"customers": pd.DataFrame({"customer_id": range(1, 8)}), "subscriptions": subs}
    )


def _expected(ids, churned, types) -> pd.DataFrame:
    return pd.DataFrame(
        {"churned": pd.array(churned, dtype="int64"), "churn_type": pd.array(types, dtype="string")},
        index=pd.Index(ids, name="customer_id"),
    )


@pytest.mark.parametrize(
    ("gap", "expected"),
    [
        (
            0,
            _expected(
                [1, 2, 3, 4, 6], [0, 1, 0, 1, 1], [None, "voluntary", None, "voluntary", "involuntary"]
            ),
        ),
        (
            10,
            _expected(
                [1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 0, 1], [None, None, None, "voluntary", None, "involuntary"]
            ),
        ),
    ],
)
def test_grace_period_labels_by_hand_on_both_engines(spark, grace_store, gap, expected):
    from churnrisk.spark import make_labels as spark_labels
    from churnrisk.spark import to_pandas

    options = {"definition": "subscription", "horizon": 30, "reactivation_gap_days": gap}
    assert_frame_equal(make_labels(grace_store, CUTOFF, **options), expected)
    got = to_pandas(spark_labels(grace_store, CUTOFF, spark=spark, **options), kind="labels")
    assert_frame_equal(got, expected)


def test_the_grace_period_censors_on_both_engines(spark, grace_store, tmp_path):
    """At 05-31 the horizon ends with the data; with a gap of 10 days the outcome is not known yet."""
    from churnrisk.spark import run

    for name, frame in grace_store.tables.items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
    churn = ChurnDefinition("subscription", horizon=30, reactivation_gap_days=10)
    for cutoff, gap in (("2024-05-31", 0), ("2024-05-31", 10), (CUTOFF, 10)):
        options = {"definition": "subscription", "horizon": 30, "reactivation_gap_days": gap}
        expected = make_labels(grace_store, cutoff, **options)
        got = run("labels", tmp_path, cutoff, spark=spark, **options)
        assert_frame_equal(got, expected)
        assert got.attrs == expected.attrs
    assert make_labels(grace_store, "2024-05-31", definition=churn).attrs["censored"] == 5  # 1-5 active


@pytest.mark.slow
def test_training_set_with_a_grace_period_equals_default_engine(spark, paused_demo_store):
    from churnrisk.spark import SparkEventStore, to_pandas
    from churnrisk.spark import build_training_set as spark_training_set
    from churnrisk.training import build_training_set

    paused = paused_demo_store
    cutoffs = ["2024-02-29", "2024-12-15"]  # the second one is censored
    options = {"definition": "subscription", "horizon": 60, "reactivation_gap_days": 30, "windows": (30,)}
    expected = build_training_set(paused, cutoffs, **options)
    plain = build_training_set(paused, cutoffs, **{**options, "reactivation_gap_days": 0})
    # renewals within 30 days are not churn: fewer churners among more eligible customers
    assert expected["churned"].mean() < plain["churned"].mean()
    assert expected["churned"].isna().any()
    store = SparkEventStore.from_event_store(paused, spark=spark)
    got = to_pandas(spark_training_set(store, cutoffs, **options), kind="training")
    assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------- order data: the BG/NBD columns
@pytest.fixture(scope="module")
def order_model(demo_store, tmp_path_factory):
    """A small model on order features with the BG/NBD columns, as order-data models are trained."""
    from churnrisk.features import build_features
    from churnrisk.model import ChurnModel, input_schema, make_pipeline, reference_values
    from churnrisk.modelfile import save_model
    from churnrisk.training import with_repeat_buying

    features = build_features(demo_store, ORDER_CUTOFF, windows=(30, 90))
    features = with_repeat_buying(demo_store, features, pd.Timestamp(ORDER_CUTOFF), horizon=90)
    schema = input_schema(features)
    churned = (features["purchases_bgnbd_alive"].fillna(0) < 0.5).astype(int)
    churned.iloc[::7] = 1 - churned.iloc[::7]  # both classes, not a function of one column
    pipeline = make_pipeline(schema, model="logistic").fit(features, churned)
    path = tmp_path_factory.mktemp("order-model") / "orders.skops"
    metadata = {"schema": schema, "name": "orders", "reference": reference_values(features, schema)}
    save_model(ChurnModel(pipeline, metadata), path)
    return path, features


ORDER_CUTOFF = "2024-06-30"


@pytest.mark.slow
def test_bgnbd_columns_on_spark_equal_the_default_engine_and_score_the_same(spark, demo_store, order_model):
    from churnrisk.modelfile import load_model
    from churnrisk.spark import SparkEventStore, score, to_pandas, with_repeat_buying
    from churnrisk.spark import build_features as spark_features

    path, expected = order_model
    store = SparkEventStore.from_event_store(demo_store, spark=spark)
    plain = spark_features(store, ORDER_CUTOFF, windows=(30, 90))
    with pytest.raises(
        ChurnriskError, match=r"BG/NBD columns; add them with churnrisk\.spark\.with_repeat_buying"
    ):
        score(plain, path)
    features = with_repeat_buying(plain, store, ORDER_CUTOFF, horizon=90)
    got = to_pandas(features)
    columns = ["purchases_bgnbd_quiet", "purchases_bgnbd_alive"]
    assert got[columns].notna().sum().min() > 100 and got[columns].isna().any().all()  # buyers and not
    pd.testing.assert_frame_equal(got[columns], expected[columns], rtol=1e-12)
    scored = pl.from_arrow(score(features, path).toArrow()).to_pandas().set_index("customer_id").sort_index()
    probability = pd.Series(load_model(path).predict_proba(expected), index=expected.index)
    pd.testing.assert_series_equal(scored["churn_probability"], probability, check_names=False, rtol=1e-9)
