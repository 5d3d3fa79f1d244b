"""One churn definition: its checks, the grace period in the labels, and labels = rates on it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from churnrisk.definition import ChurnDefinition, data_end, label_steps
from churnrisk.errors import ChurnriskError
from churnrisk.labels import label_end, make_labels
from churnrisk.rates import churn_rates
from churnrisk.store import EventStore

T = pd.Timestamp


# ---------------------------------------------------------------------- the checks, in one place
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "churny"}, "The 'definition' parameter must be one of ['subscription', 'inactivity']"),
        ({"horizon": 0}, "The 'horizon' parameter must be a positive whole number of days. Got 0"),
        ({"horizon": 1.5}, "The 'horizon' parameter must be a positive whole number of days. Got 1.5"),
        ({"horizon": True}, "The 'horizon' parameter must be a positive whole number of days. Got True"),
        ({"lookback": -30}, "The 'lookback' parameter must be a positive whole number of days. Got -30"),
        ({"lead_time": -1}, "The 'lead_time' parameter must be a whole number of days >= 0. Got -1"),
        (
            {"reactivation_gap_days": -2},
            "The 'reactivation_gap_days' parameter must be a number of days >= 0",
        ),
        ({"reactivation_gap_days": float("nan")}, "'reactivation_gap_days' parameter must be a number"),
    ],
)
def test_every_option_is_checked_with_one_message_template(options, message):
    with pytest.raises(ChurnriskError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ChurnDefinition(**{"kind": "subscription", **options})


def test_values_are_normalised_and_recorded_as_plain_options():
    churn = ChurnDefinition("inactivity", horizon=30.0, lead_time=7, reactivation_gap_days=1)
    assert churn.horizon == 30 and isinstance(churn.horizon, int)
    assert churn.options() == {
        "definition": "inactivity",
        "horizon": 30,
        "lookback": None,
        "lead_time": 7,
        "reactivation_gap_days": 1.0,
    }
    assert ChurnDefinition.from_options(churn.options()) == churn
    # no grace period: recorded as before grace periods existed, and read back as none
    plain = ChurnDefinition("subscription", horizon=90)
    assert "reactivation_gap_days" not in plain.options()
    assert ChurnDefinition.from_options(plain.options()) == plain
    # metadata written before the grace period existed
    old = {"definition": "subscription", "horizon": 90, "lookback": None, "lead_time": 0}
    assert ChurnDefinition.from_options(old).reactivation_gap_days == 0.0


def test_windows_and_the_label_end():
    assert ChurnDefinition("inactivity").window == 90  # the rates' default
    assert ChurnDefinition("inactivity", horizon=30).window == 30  # the labels' default
    assert ChurnDefinition("inactivity", horizon=30, lookback=60).window == 60
    cutoff = datetime(2024, 3, 31)
    grace = ChurnDefinition("subscription", horizon=30, lead_time=5, reactivation_gap_days=10)
    assert grace.label_end(cutoff) == datetime(2024, 5, 15)  # 31 March + 5 + 30 + 10 days
    # the grace period is a subscription notion: order windows already are one
    assert ChurnDefinition("inactivity", horizon=30, reactivation_gap_days=10).label_end(cutoff) == datetime(
        2024, 4, 30
    )
    assert label_end(cutoff, horizon=30, lead_time=5, reactivation_gap_days=10) == datetime(2024, 5, 15)


def test_a_definition_object_or_keywords_not_both(subscription_store):
    churn = ChurnDefinition("subscription", horizon=30)
    by_object = make_labels(subscription_store, CUTOFF, definition=churn)
    assert_frame_equal(
        by_object, make_labels(subscription_store, CUTOFF, definition="subscription", horizon=30)
    )
    with pytest.raises(ChurnriskError, match=r"together with \['horizon'\]"):
        make_labels(subscription_store, CUTOFF, definition=churn, horizon=60)
    with pytest.raises(ChurnriskError, match="'horizon' parameter"):
        make_labels(subscription_store, CUTOFF, definition=ChurnDefinition("subscription"))
    with pytest.raises(ChurnriskError, match="reactivation_gap_days or lookback"):
        churn_rates(subscription_store, definition=churn, lookback=30)


def test_the_end_of_the_data_counts_subscription_ends():
    """A subscription end is an event: the data reach it even when no other event is that late."""
    store = EventStore.from_frames(
        {
            "customers": pd.DataFrame({"customer_id": [1]}),
            "subscriptions": pd.DataFrame(
                {
                    "customer_id": [1],
                    "started_at": [T("2024-01-01")],
                    "ended_at": [T("2024-05-01")],
                    "mrr": [1.0],
                }
            ),
        }
    )
    assert data_end(store) == datetime(2024, 5, 1)
    labels = make_labels(store, "2024-01-31", definition="subscription", horizon=90)  # ends 04-30
    assert labels["churned"].tolist() == [0] and labels.attrs["censored"] == 0


# ---------------------------------------------------------------------- the grace period, by hand
CUTOFF = T("2024-03-31")  # horizon 30 days: (03-31, 04-30]


@pytest.fixture(scope="module")
def subscription_store() -> EventStore:
    """Gap 0 vs gap 10 days; the data run until 2024-06-30."""
    rows = [
        (1, "2024-01-01", None),  # 1: stays
        (2, "2024-01-01", "2024-04-10"),  # 2: expires, is back 5 days later, inside the horizon
        (2, "2024-04-15", None),
        (3, "2024-01-01", "2024-04-10"),  # 3: expires, is back 35 days later: churned
        (3, "2024-05-15", None),
        (4, "2024-01-01", "2024-04-25"),  # 4: expires 5 days before the horizon ends, renews 8 days
        (4, "2024-05-03", None),  #        later: inside a grace period of 10 days
        (5, "2024-01-01", "2024-04-28"),  # 5: expires and never comes back
        (6, "2024-01-01", "2024-03-25"),  # 6: in an 8-day pause at the cutoff: one spell with the
        (6, "2024-04-02", None),  #        grace period (eligible), not eligible without it
        (7, "2024-01-01", "2024-04-25"),  # 7: renews 13 days after expiring: past the grace period
        (7, "2024-05-08", None),
        (8, "2024-06-30", None),  # the data run until 06-30
    ]
    subs = pd.DataFrame(rows, columns=["customer_id", "started_at", "ended_at"]).assign(mrr=10.0)
    subs["started_at"] = pd.to_datetime(subs["started_at"])
    subs["ended_at"] = pd.to_datetime(subs["ended_at"])
    customers = pd.DataFrame({"customer_id": range(1, 9)})
    return EventStore.from_frames({"customers": customers, "subscriptions": subs})


def _labels(ids, churned) -> pd.Series:
    return pd.Series(churned, index=pd.Index(ids, name="customer_id"), name="churned", dtype="int64")


@pytest.mark.parametrize(
    ("gap", "expected"),
    [
        (0, _labels([1, 2, 3, 4, 5, 7], [0, 0, 1, 1, 1, 1])),
        (10, _labels([1, 2, 3, 4, 5, 6, 7], [0, 0, 1, 0, 1, 0, 1])),
    ],
)
def test_a_renewal_within_the_grace_period_is_not_churn(subscription_store, gap, expected):
    labels = make_labels(
        subscription_store, CUTOFF, definition="subscription", horizon=30, reactivation_gap_days=gap
    )
    assert_frame_equal(labels[["churned"]], expected.to_frame())
    assert labels.attrs.get("reactivation_gap_days", 0) == gap  # recorded when there is one
    # the same definition over history: April's lost-customer rate is the labels' churn rate
    rates = churn_rates(
        subscription_store, period="month", start="2024-03-31", end="2024-04-30", reactivation_gap_days=gap
    )
    assert rates["customers_start"].tolist() == [len(expected)]
    assert rates["lost_churn_rate"].tolist() == [pytest.approx(expected.mean(), abs=1e-15)]


def test_the_grace_period_delays_the_known_outcome(subscription_store):
    """With a gap of 10 days the outcome of (c, c + 30] is known 10 days later: censored before."""
    late = T("2024-05-31")  # horizon ends 06-30 = the end of the data
    assert make_labels(subscription_store, late, definition="subscription", horizon=30).attrs["censored"] == 0
    graced = make_labels(
        subscription_store, late, definition="subscription", horizon=30, reactivation_gap_days=10
    )
    assert len(graced) == 0 and graced.attrs["censored"] == 6  # all but 5 and 8 are active at 05-31
    steps = label_steps(
        ChurnDefinition("subscription", horizon=30, reactivation_gap_days=10), late, subscription_store
    )
    assert steps.known_at == datetime(2024, 7, 10) and steps.end == datetime(2024, 6, 30)


# ---------------------------------------------------------------------- labels = rates, as a property
START = datetime(2024, 3, 1)  # March: 31 days
DAYS = 31
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# one customer: rows apart by pauses (0 = touching), in days from 1 February
row_st = st.tuples(st.integers(0, 20), st.integers(1, 40))
subs_customer_st = st.tuples(st.integers(0, 40), st.lists(row_st, min_size=1, max_size=4), st.booleans())


def _subscriptions(customers) -> pd.DataFrame:
    rows = []
    for cid, (offset, pieces, last_open) in enumerate(customers, start=1):
        t = datetime(2024, 2, 1) + timedelta(days=offset, hours=cid % 3 * 8)
        for pause, length in pieces:
            t += timedelta(days=pause)
            rows.append([cid, t, t + timedelta(days=length)])
            t += timedelta(days=length)
        if last_open:
            rows[-1][2] = None
    frame = pd.DataFrame(rows, columns=["customer_id", "started_at", "ended_at"]).assign(mrr=5.0)
    return frame.astype({"ended_at": "datetime64[us]"})


def _store_until(tables: dict[str, pd.DataFrame], customers: int) -> EventStore:
    """The tables and one late customer, so that every outcome in March (plus a grace period) is known."""
    late = pd.DataFrame(
        {"customer_id": [customers + 1], "ordered_at": [datetime(2024, 9, 1)], "amount": [1.0]}
    )
    orders = pd.concat([tables.get("orders", late.iloc[:0]), late], ignore_index=True)
    ids = pd.DataFrame({"customer_id": range(1, customers + 2)})
    return EventStore.from_frames({**tables, "orders": orders, "customers": ids})


def _same_rate(store: EventStore, churn: ChurnDefinition) -> None:
    labels = make_labels(store, START, definition=churn)
    rates = churn_rates(
        store, period="month", start=START, end=START + timedelta(days=DAYS), definition=churn
    )
    assert labels.attrs["censored"] == 0
    assert rates["customers_start"].tolist() == [len(labels)]
    assert rates["customers_lost"].tolist() == [labels["churned"].sum()]


@given(
    customers=st.lists(subs_customer_st, min_size=1, max_size=6),
    gap=st.sampled_from([0, 3, 10, 30.5]),
)
@PROPERTY
def test_subscription_labels_churn_at_the_historical_rate(customers, gap):
    subs = _subscriptions(customers)
    churn = ChurnDefinition("subscription", horizon=DAYS, reactivation_gap_days=gap)
    _same_rate(_store_until({"subscriptions": subs}, len(customers)), churn)


@given(
    days=st.lists(st.lists(st.integers(0, 120), min_size=1, max_size=5), min_size=1, max_size=6),
    gap=st.sampled_from([0, 10]),
)
@PROPERTY
def test_inactivity_labels_churn_at_the_historical_rate(days, gap):
    """Look-back = horizon = the month: the inactivity window of the rates (the gap has no effect)."""
    rows = [
        (cid, datetime(2024, 1, 1) + timedelta(days=d, hours=cid % 2 * 12), 1.0)
        for cid, offsets in enumerate(days, start=1)
        for d in offsets
    ]
    orders = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount"])
    churn = ChurnDefinition("inactivity", horizon=DAYS, lookback=DAYS, reactivation_gap_days=gap)
    _same_rate(_store_until({"orders": orders}, len(days)), churn)


# ---------------------------------------------------------------------- command line
def test_cli_labels_take_the_grace_period(subscription_store, tmp_path):
    from typer.testing import CliRunner

    from churnrisk.cli import app

    for name, frame in subscription_store.tables.items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
    command = [
        "labels",
        str(tmp_path),
        "--cutoff",
        "2024-03-31",
        "--horizon",
        "30",
        "--definition",
        "subscription",
    ]
    for gap, counts in (("0", "6 customers labelled, 4 churned"), ("10", "7 customers labelled, 3 churned")):
        result = CliRunner().invoke(app, [*command, "--reactivation-gap", gap])
        assert result.exit_code == 0, result.output
        assert counts in " ".join(result.stdout.split())
    refused = CliRunner().invoke(app, [*command, "--reactivation-gap", "-1"])
    assert refused.exit_code == 2  # a usage error: typer's own check of the option


@pytest.mark.parametrize(("gap", "ids"), [(0, [1, 2, 3, 4, 5, 7]), (10, [1, 2, 3, 4, 5, 6, 7])])
def test_customers_at_risk_follow_the_same_spells(subscription_store, gap, ids):
    from churnrisk.labels import eligible_at

    churn = ChurnDefinition("subscription", horizon=30, reactivation_gap_days=gap)
    assert eligible_at(subscription_store, CUTOFF.to_pydatetime(), churn).to_list() == ids


# ---------------------------------------------------------------------- training sets, models, monitoring
GRACE = {"definition": "subscription", "horizon": 30, "reactivation_gap_days": 10}


def test_training_sets_label_with_the_grace_period_and_keep_it(subscription_store, tmp_path):
    from churnrisk.training import append_training_set, build_training_set, write_training_set

    built = build_training_set(subscription_store, [CUTOFF], windows=(30,), **GRACE)
    labels = make_labels(subscription_store, CUTOFF, **GRACE)
    assert built["customer_id"].tolist() == labels.index.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert built["churned"].astype(int).tolist() == labels["churned"].tolist() == [0, 0, 1, 0, 1, 0, 1]
    assert built.attrs["reactivation_gap_days"] == 10.0
    folder = tmp_path / "train"
    write_training_set(folder, subscription_store, [CUTOFF], windows=(30,), **GRACE)
    with pytest.raises(ChurnriskError, match="reactivation_gap_days: 10.0 there, 0.0 now"):
        append_training_set(
            folder, subscription_store, ["2024-04-30"], windows=(30,), **{**GRACE, "reactivation_gap_days": 0}
        )


def test_a_model_is_trained_evaluated_and_monitored_on_its_own_grace_period(subscription_store):
    from churnrisk.monitoring import cutoff_plan
    from churnrisk.training import build_training_set
    from churnrisk.workflow import model_rows, outcomes_seen_until, train_model

    stored = build_training_set(subscription_store, [CUTOFF], windows=(30,), **GRACE)
    with pytest.raises(ChurnriskError, match="reactivation_gap_days: 10.0 there, 0 given"):
        train_model(subscription_store, training_set=stored, reactivation_gap_days=0)

    class Recorded:
        """What evaluation and monitoring read of a trained model: its metadata (and a constant score)."""

        metadata = {
            **GRACE,
            "lead_time": 0,
            "windows": [30],
            "kind": "events",
            "cutoffs": {"train": ["2024-02-29"]},
        }

        def predict_proba(self, features: pd.DataFrame):
            return [0.5] * len(features)

    rows = model_rows(Recorded(), subscription_store, CUTOFF)
    assert rows["churned"].tolist() == [0, 0, 1, 0, 1, 0, 1]  # customer 6's pause is bridged
    assert outcomes_seen_until(Recorded.metadata) == T("2024-02-29") + pd.Timedelta(days=40)
    plan = cutoff_plan(Recorded(), as_of=T("2024-06-30"), known_until=T("2024-06-30"), since="2024-04-30")
    assert plan["cutoff"].tolist() == [T("2024-04-30"), T("2024-05-30"), T("2024-06-30")]
    assert plan["known_on"].tolist() == [T("2024-06-09"), T("2024-07-09"), T("2024-08-09")]  # 30 + 10 days
    assert plan["status"].tolist() == ["backtested", "pending", "pending"]


def test_cli_training_set_records_the_grace_period(subscription_store, tmp_path):
    from typer.testing import CliRunner

    from churnrisk.cli import app
    from churnrisk.training import read_training_set

    data = tmp_path / "store"
    data.mkdir()
    for name, frame in subscription_store.tables.items():
        frame.write_parquet(data / f"{name}.parquet")
    out = tmp_path / "train"
    result = CliRunner().invoke(
        app,
        ["training-set", str(data), "--first-cutoff", "2024-03-31", "--last-cutoff", "2024-03-31",
         "--horizon", "30", "--definition", "subscription", "--windows", "30", "--reactivation-gap", "10",
         "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = read_training_set(out)
    assert stored.attrs["reactivation_gap_days"] == 10.0
    assert stored["churned"].astype(int).tolist() == [0, 0, 1, 0, 1, 0, 1]


@pytest.mark.slow
def test_train_model_learns_on_and_records_the_grace_period(paused_demo_store):
    from churnrisk.training import cutoff_range
    from churnrisk.workflow import train_model

    cutoffs = cutoff_range("2023-07-01", "2024-09-01", every="2M")
    model = train_model(
        paused_demo_store, cutoffs=cutoffs, horizon=60, definition="subscription", reactivation_gap_days=30,
        model="logistic", refit=False,
    )  # fmt: skip
    meta = model.metadata
    assert meta["reactivation_gap_days"] == 30.0
    test = make_labels(
        paused_demo_store, "2024-09-01", **{**GRACE, "horizon": 60, "reactivation_gap_days": 30}
    )
    plain = make_labels(paused_demo_store, "2024-09-01", definition="subscription", horizon=60)
    assert meta["rows"]["test"] == len(test) != len(plain)  # the grace period's rows, not the plain ones
