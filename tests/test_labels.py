"""Churn labels: hand examples for both definitions, lead time, censoring, and the rates' base rate."""

from __future__ import annotations

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from churnrisk.cli import app
from churnrisk.errors import ChurnriskError
from churnrisk.labels import make_labels
from churnrisk.store import EventStore

T = pd.Timestamp
CUTOFF = T("2024-03-31")


@pytest.fixture(scope="module")
def subscription_store() -> EventStore:
    """Cutoff 2024-03-31, horizon 30 days: the horizon is (03-31, 04-30]."""
    subscriptions = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 4, 5, 6, 7],
            "started_at": [T("2024-01-01")] * 5 + [T("2024-04-01"), T("2023-01-01"), T("2024-01-01")],
            "ended_at": [
                None,  # 1: stays
                T("2024-04-15"),  # 2: leaves inside the horizon
                T("2024-04-10"),  # 3: leaves after an unrecovered failed payment
                T("2024-04-20"),  # 4: leaves, but comes back before the horizon ends
                None,
                None,  # 5: starts after the cutoff: not eligible
                CUTOFF,  # 6: ended exactly at the cutoff: not active at it, not eligible
                T("2024-04-30"),  # 7: ends exactly at the horizon's end: churned
            ],
            "mrr": [10.0] * 8,
        }
    )
    subscriptions.loc[4, "started_at"] = T("2024-04-25")
    return EventStore.from_frames(
        {
            "customers": pd.DataFrame({"customer_id": [1, 2, 3, 4, 5, 6, 7]}),
            "subscriptions": subscriptions,
            "payments": pd.DataFrame(
                {
                    "customer_id": [3, 2],
                    "attempted_at": [T("2024-04-05"), T("2024-04-01")],
                    "status": ["failed", "succeeded"],
                }  # fmt: skip
            ),
            # the data runs until 2024-06-01
            "orders": pd.DataFrame({"customer_id": [1], "ordered_at": [T("2024-06-01")], "amount": [1.0]}),
        }
    )


def _labels(ids, churned, types) -> pd.DataFrame:
    out = pd.DataFrame(
        {"churned": churned, "churn_type": pd.array(types, dtype="string")},
        index=pd.Index(ids, name="customer_id"),
    )
    out["churned"] = out["churned"].astype("int64")
    return out


def test_subscription_labels(subscription_store):
    labels = make_labels(subscription_store, CUTOFF, definition="subscription", horizon=30)
    expected = _labels(
        [1, 2, 3, 4, 7], [0, 1, 1, 0, 1], [None, "voluntary", "involuntary", None, "voluntary"]
    )
    assert_frame_equal(labels, expected)
    assert labels.attrs["censored"] == 0


def test_subscription_lead_time(subscription_store):
    """Lead time 10: the horizon is (04-10, 05-10]; 3 left during the lead time and is not labelled."""
    labels = make_labels(subscription_store, CUTOFF, definition="subscription", horizon=30, lead_time=10)
    assert_frame_equal(labels, _labels([1, 2, 4, 7], [0, 1, 0, 1], [None, "voluntary", None, "voluntary"]))


def test_censored_when_the_horizon_passes_the_end_of_the_data(subscription_store):
    labels = make_labels(subscription_store, CUTOFF, definition="subscription", horizon=63)
    assert len(labels) == 0
    assert labels.attrs["censored"] == 5
    # the horizon may reach the last event, 2024-06-01 = cutoff + 62 days, but not pass it
    assert len(make_labels(subscription_store, CUTOFF, definition="subscription", horizon=62)) == 5


@pytest.fixture(scope="module")
def order_store() -> EventStore:
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3, 3, 4, 4],
            "ordered_at": [
                CUTOFF,  # 1: orders at the cutoff (eligible) ...
                T("2024-04-30"),  # ... and at the horizon's last instant: not churned
                T("2024-02-01"),  # 2: eligible, never orders again: churned
                T("2024-01-31"),  # 3: exactly 60 days before the cutoff: outside the look-back
                T("2024-06-01"),
                T("2024-03-10"),  # 4: eligible, next order after the horizon: churned
                T("2024-05-05"),
            ],
            "amount": [1.0] * 7,
        }
    )
    return EventStore.from_frames(
        {"customers": pd.DataFrame({"customer_id": [1, 2, 3, 4]}), "orders": orders}
    )


def test_inactivity_labels(order_store):
    labels = make_labels(order_store, CUTOFF, definition="inactivity", horizon=30, lookback=60)
    assert_frame_equal(labels, _labels([1, 2, 4], [0, 1, 1], [None, None, None]))


def test_inactivity_lookback_defaults_to_the_horizon(order_store):
    labels = make_labels(order_store, CUTOFF, definition="inactivity", horizon=30)
    assert labels.index.tolist() == [1, 4]  # 2 ordered 59 days before the cutoff


def test_inactivity_lead_time(order_store):
    """Lead time 10: the horizon is (04-10, 05-10]: 4's order on 05-05 now counts."""
    labels = make_labels(order_store, CUTOFF, definition="inactivity", horizon=30, lookback=60, lead_time=10)
    assert_frame_equal(labels, _labels([1, 2, 4], [0, 1, 0], [None, None, None]))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"definition": "churny", "horizon": 30}, "definition"),
        ({"definition": "inactivity", "horizon": 0}, "horizon"),
        ({"definition": "inactivity", "horizon": 1.5}, "horizon"),
        ({"definition": "inactivity", "horizon": 30, "lead_time": -1}, "lead_time"),
        ({"definition": "inactivity", "horizon": 30, "lookback": 0}, "lookback"),
        ({"definition": "subscription", "horizon": 30}, "subscriptions"),
    ],
)
def test_bad_options_are_refused(order_store, options, match):
    with pytest.raises(ChurnriskError, match=match):
        make_labels(order_store, CUTOFF, **options)


# ---------------------------------------------------------------------- same rate as the rates module
def _monthly_periods(rates: pd.DataFrame) -> list[tuple[pd.Timestamp, int, float]]:
    rows = rates.dropna(subset=["lost_churn_rate"])
    rows = rows[rows["customers_start"] > 0]
    return [
        (r.period_start, (r.period_end - r.period_start).days, r.lost_churn_rate) for r in rows.itertuples()
    ]


def test_subscription_churn_rate_equals_the_historical_lost_churn_rate(demo_store):
    from churnrisk.rates import churn_rates

    rates = churn_rates(demo_store, period="month", definition="subscription")
    periods = _monthly_periods(rates)
    assert len(periods) >= 12
    for start, days, rate in periods:
        labels = make_labels(demo_store, start, definition="subscription", horizon=days)
        assert labels.attrs["censored"] == 0
        assert labels["churned"].mean() == pytest.approx(rate, abs=1e-12), start


def test_inactivity_churn_rate_equals_the_historical_lost_churn_rate(demo_store):
    from churnrisk.rates import churn_rates

    # quarters of 92 days (July-September, October-December): horizon = look-back = inactivity window
    rates = churn_rates(demo_store, period="quarter", definition="inactivity", lookback=92)
    periods = [p for p in _monthly_periods(rates) if p[1] == 92]
    assert periods
    for start, days, rate in periods:
        labels = make_labels(demo_store, start, definition="inactivity", horizon=days, lookback=days)
        assert labels["churned"].mean() == pytest.approx(rate, abs=1e-12), start


# ---------------------------------------------------------------------- command line
def test_cli_labels(order_store, tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    for name, frame in order_store.tables.items():
        frame.write_parquet(folder / f"{name}.parquet")
    out = tmp_path / "labels.csv"
    result = CliRunner().invoke(
        app,
        [
            "labels",
            str(folder),
            "--cutoff",
            "2024-03-31",
            "--horizon",
            "30",
            "--definition",
            "inactivity",
            "--lookback",
            "60",
            "-o",
            str(out),
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert "3 customers labelled, 2 churned (rate 66.67%), 0 censored" in " ".join(result.stdout.split())
    assert pd.read_csv(out)["customer_id"].tolist() == [1, 2, 4]
    censored = CliRunner().invoke(
        app,
        ["labels", str(folder), "--cutoff", "2024-05-31", "--horizon", "30", "--definition", "inactivity"],
    )
    assert censored.exit_code == 0 and "1 censored" in censored.stdout
    wrong = CliRunner().invoke(
        app,
        ["labels", str(folder), "--cutoff", "2024-03-31", "--horizon", "30", "--definition", "subscription"],
    )
    assert wrong.exit_code == 1 and "subscriptions" in wrong.stderr and "Traceback" not in wrong.output
