"""Repeat purchases, benchmarks, cohorts, CLV and involuntary churn on hand-computed tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from churnrisk.errors import ChurnriskError
from churnrisk.rates import (
    benchmark_for,
    category_benchmarks,
    churn_by_type,
    churn_events,
    cohort_retention,
    customer_lifetime_value,
    repeat_rates,
    winback_list,
)
from churnrisk.store import EventStore

T = pd.Timestamp


def _orders_store(order_ids=True):
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 2, 3, 4],
            "ordered_at": pd.to_datetime(
                [
                    "2024-01-05",
                    "2024-01-05",
                    "2024-02-05",
                    "2024-03-05",
                    "2024-01-20",
                    "2025-03-01",
                    "2024-02-02",
                    "2025-02-01",
                ]
            ),
            "amount": [5.0, 5, 20, 30, 5, 5, 7, 12],
        }
    )
    if order_ids:
        orders["order_id"] = ["a", "a", "b", "c", "d", "e", "f", "g"]  # two lines of order "a"
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4], "region": ["n", "s", "s", "n"]})
    return EventStore.from_frames({"customers": customers, "orders": orders})


@pytest.mark.parametrize("order_ids", [True, False])
def test_repeat_rates(order_ids):
    row = repeat_rates(_orders_store(order_ids)).iloc[0]
    assert (row.customers, row.repeat_customers, row.orders, row.repeat_orders) == (4, 2, 7, 5)
    assert row.repeat_purchase_rate == 0.5
    assert row.repeat_order_share == pytest.approx(5 / 7)
    assert row.repeat_revenue_share == pytest.approx(70 / 89)
    # followed: first order at least a year before the last data (2025-03-01): customers 1, 2, 3;
    # 2 came back after more than a year, 3 never
    assert (row.customers_followed, row.customers_not_back) == (3, 2)
    assert row.non_repeat_rate == pytest.approx(2 / 3)


def test_repeat_rates_window_and_segments():
    row = repeat_rates(_orders_store(), start="2024-02-01").iloc[0]
    assert (row.customers, row.repeat_customers) == (4, 1)
    assert (row.customers_followed, row.customers_not_back) == (1, 1)  # only 3's first order is in the window
    by = repeat_rates(_orders_store(), by="region")
    assert by["region"].tolist() == ["n", "s"]
    assert by["repeat_customers"].tolist() == [1, 1]
    assert by["customers_followed"].tolist() == [1, 2]


def test_benchmarks_shipped_and_compared():
    table = category_benchmarks()
    assert len(table) == 14
    assert table.set_index("category")["non_repeat_rate"].to_dict()["beauty & fitness"] == 0.62
    assert table["non_repeat_rate"].between(0.62, 0.82).all()
    row = repeat_rates(_orders_store(), category="Apparel").iloc[0]
    assert row.benchmark_category == "apparel"
    assert row.benchmark_non_repeat_rate == 0.71
    assert row.non_repeat_vs_benchmark == pytest.approx(2 / 3 - 0.71)


def test_unknown_category_suggests_the_closest():
    with pytest.raises(ChurnriskError, match="did you mean 'apparel'"):
        benchmark_for("aparel")


def test_repeat_needs_orders():
    subs = pd.DataFrame({"customer_id": [1], "started_at": [T("2024-01-01")], "mrr": [1.0]})
    store = EventStore.from_frames({"customers": pd.DataFrame({"customer_id": [1]}), "subscriptions": subs})
    with pytest.raises(ChurnriskError, match="orders"):
        repeat_rates(store)


# ---------------------------------------------------------------------- subscriptions example
SUBS = pd.DataFrame(
    {
        "customer_id": [1, 1, 1, 2, 2, 3, 4],
        "started_at": pd.to_datetime(
            ["2024-01-01", "2024-02-01", "2024-03-05", "2024-01-01", "2024-01-15", "2024-01-01", "2024-02-10"]
        ),
        "ended_at": pd.to_datetime(
            ["2024-02-01", "2024-03-01", None, "2024-01-10", "2024-02-01", "2024-02-01", "2024-02-20"]
        ),
        "mrr": [1.0, 2, 3, 4, 5, 6, 7],
        "end_reason": [None, None, None, None, "payment failed", None, None],
    }
)
PAYMENTS = pd.DataFrame(
    {
        "customer_id": [1, 1, 3],
        "attempted_at": pd.to_datetime(["2024-02-25", "2024-02-26", "2024-01-28"]),
        "status": ["failed", "failed", "failed"],
        "failure_reason": ["insufficient_funds", "card_declined", "expired_card"],
    }
)


def _subs_store():
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4]})
    return EventStore.from_frames({"customers": customers, "subscriptions": SUBS, "payments": PAYMENTS})


def test_cohort_retention():
    table = cohort_retention(_subs_store(), start="2023-12-01", end="2024-06-01", values="count")
    # customers 1-3 start at Jan 1 00:00, so they were new in December; 4 in February
    assert table["cohort_start"].tolist() == [T("2023-12-01"), T("2024-02-01")]
    assert table["customers"].tolist() == [3, 1]
    offsets = [str(n) for n in range(6)]
    # December cohort active at Jan 1, Feb 1, Mar 1, Apr 1, May 1, Jun 1: 3, 1 (customer 1), 0, 1, 1, 1
    assert table.loc[0, offsets].tolist() == [3, 1, 0, 1, 1, 1]
    february = table.loc[1, offsets].tolist()
    assert february[:4] == [0, 0, 0, 0] and all(math.isnan(v) for v in february[4:])
    shares = cohort_retention(_subs_store(), start="2023-12-01", end="2024-06-01")
    assert shares.loc[0, offsets].tolist() == pytest.approx([1, 1 / 3, 0, 1 / 3, 1 / 3, 1 / 3])


def test_clv_subscriptions():
    row = customer_lifetime_value(_subs_store(), start="2023-12-01", end="2024-05-01", margin=0.3).iloc[0]
    # MRR at the five month starts: 0, 11, 2, 0, 3 over 0, 3, 1, 0, 1 customers; 3 of them lost
    assert row.value_per_period == pytest.approx(16 / 5)
    assert row.churn_rate == pytest.approx(3 / 5)
    assert row.expected_lifetime_periods == pytest.approx(5 / 3)
    assert row.clv == pytest.approx(16 / 3)
    assert row.clv_margin == pytest.approx(0.3 * 16 / 3)


def test_clv_orders():
    store = _orders_store()
    row = customer_lifetime_value(store, end="2024-03-05", lookback=30, churn_rate=0.25).iloc[0]
    # January and February: orders a, b, d, f -> 4 orders by 3 customers, revenue 10 + 20 + 5 + 7
    assert (row.orders, row.customers, row.revenue) == (4, 3, 42)
    assert row.average_order_value == pytest.approx(10.5)
    assert row.purchase_frequency == pytest.approx(4 / 3 / 2)
    assert row.clv == pytest.approx(10.5 * 4 / 6 / 0.25)
    # pooled churn: nobody at January's start; of the 2 active on Feb 1, customer 2 is lost (next order 2025)
    pooled = customer_lifetime_value(store, end="2024-03-05", lookback=30).iloc[0]
    assert pooled.churn_rate == 0.5
    assert pooled.clv == pytest.approx(10.5 * 4 / 6 * 2)


def test_clv_rejects_bad_margin():
    with pytest.raises(ChurnriskError, match="margin"):
        customer_lifetime_value(_subs_store(), margin=30)


def test_churn_events_and_winback():
    events = churn_events(_subs_store())
    expected = pd.DataFrame(
        {
            "customer_id": [2, 2, 3, 4, 1],
            "churned_at": pd.to_datetime(
                ["2024-01-10", "2024-02-01", "2024-02-01", "2024-02-20", "2024-03-01"]
            ),
            "churn_type": ["voluntary", "involuntary", "involuntary", "voluntary", "involuntary"],
            "end_reason": [None, "payment failed", None, None, None],
            "mrr_lost": [4.0, 5, 6, 7, 2],
            "failed_payments": [0, 0, 1, 0, 2],
            "last_failed_at": pd.to_datetime([None, None, "2024-01-28", None, "2024-02-26"]),
            "last_failure_reason": [None, None, "expired_card", None, "card_declined"],
            "came_back": [True, False, False, False, True],
        }
    )
    pd.testing.assert_frame_equal(events, expected, check_dtype=False)
    winback = winback_list(_subs_store())
    assert winback["customer_id"].tolist() == [3, 2]  # not back, largest MRR first


def test_churn_by_type():
    table = churn_by_type(_subs_store(), start="2024-01-01", end="2024-03-01")
    # January: 2's first churn resumed inside January; 2 and 3 churn on Feb 1, both involuntary
    assert table["customers_start"].tolist() == [3, 1]
    assert table["churned"].tolist() == [2, 2]
    assert table["churned_involuntary"].tolist() == [2, 1]
    assert table["involuntary_share"].tolist() == [1.0, 0.5]
    assert table["voluntary_churn_rate"].tolist() == [0.0, 1.0]
    assert table["mrr_churned_involuntary"].tolist() == [11.0, 2.0]
    assert table["mrr_churned_voluntary"].tolist() == [0.0, 7.0]
