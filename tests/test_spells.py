"""Churn definitions: subscription and order spells, activity at an instant, churn type."""

from __future__ import annotations

from datetime import datetime as dt

import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from churnrisk.errors import ChurnriskError
from churnrisk.spells import active_at, churn_type, order_spells, subscription_spells
from churnrisk.store import EventStore


def _subs(rows):
    return pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.Int64,
            "started_at": pl.Datetime("us"),
            "ended_at": pl.Datetime("us"),
            "end_reason": pl.String,
        },
        orient="row",
    )


def _spells(rows):
    return pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.Int64,
            "start": pl.Datetime("us"),
            "end": pl.Datetime("us"),
            "end_reason": pl.String,
        },
        orient="row",
    )


SUBS = _subs(
    [
        # customer 1: a plan change (touching rows), then a pause of 4 days and an open row
        (1, dt(2024, 1, 1), dt(2024, 2, 1), None),
        (1, dt(2024, 2, 1), dt(2024, 3, 1), "downgrade"),
        (1, dt(2024, 3, 5), None, None),
        # customer 2: a single closed row
        (2, dt(2024, 1, 10), dt(2024, 1, 20), "too expensive"),
    ]
)


def test_touching_rows_merge_and_a_pause_splits():
    expected = _spells(
        [
            (1, dt(2024, 1, 1), dt(2024, 3, 1), "downgrade"),
            (1, dt(2024, 3, 5), None, None),
            (2, dt(2024, 1, 10), dt(2024, 1, 20), "too expensive"),
        ]
    )
    assert_frame_equal(subscription_spells(SUBS), expected)


@pytest.mark.parametrize(("gap", "n_spells"), [(0, 3), (3.9, 3), (4, 3), (4.1, 2), (30, 2)])
def test_reactivation_gap_merges_shorter_pauses(gap, n_spells):
    # the pause lasts exactly 4 days: a pause as long as the gap is churn, a shorter one is not
    assert subscription_spells(SUBS, reactivation_gap_days=gap).height == n_spells


def test_merged_pause_gives_one_open_spell():
    spells = subscription_spells(SUBS, reactivation_gap_days=5)
    assert spells.filter(pl.col("customer_id") == 1).rows() == [(1, dt(2024, 1, 1), None, None)]


def test_row_order_does_not_matter():
    shuffled = SUBS.sample(fraction=1.0, shuffle=True, seed=3)
    assert_frame_equal(subscription_spells(shuffled), subscription_spells(SUBS))


def test_pandas_input_and_missing_optional_columns():
    frame = pd.DataFrame(
        {
            "customer_id": [7, 7],
            "started_at": pd.to_datetime(["2024-01-01", "2024-01-05"]),
            "ended_at": pd.to_datetime(["2024-01-05", None]),
        }
    )
    spells = subscription_spells(frame)
    assert spells.rows() == [(7, dt(2024, 1, 1), None, None)]


def test_order_spells_window():
    orders = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2],
            "ordered_at": [dt(2024, 1, 1), dt(2024, 1, 31), dt(2024, 1, 31), dt(2024, 3, 2), dt(2024, 1, 5)],
        }
    )
    # 30-day window: Jan 1 -> [Jan 1, Jan 31), touches Jan 31 -> [Jan 31, Mar 1); Mar 2 starts anew
    expected = _spells(
        [
            (1, dt(2024, 1, 1), dt(2024, 3, 1), "inactivity"),
            (1, dt(2024, 3, 2), dt(2024, 4, 1), "inactivity"),
            (2, dt(2024, 1, 5), dt(2024, 2, 4), "inactivity"),
        ]
    )
    assert_frame_equal(order_spells(orders, lookback=30), expected)
    with pytest.warns(DeprecationWarning, match="'inactivity_days'.*'lookback'"):  # the old name
        assert_frame_equal(order_spells(orders, inactivity_days=30), expected)


def test_active_at_is_half_open():
    spells = subscription_spells(SUBS)
    assert active_at(spells, dt(2024, 1, 10))["customer_id"].to_list() == [1, 2]  # start is inside
    assert active_at(spells, dt(2024, 1, 20))["customer_id"].to_list() == [1]  # end is outside
    assert active_at(spells, dt(2024, 3, 1))["customer_id"].to_list() == []
    assert active_at(spells, "2030-01-01")["customer_id"].to_list() == [1]  # open spell


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_bad_gap_is_refused(bad):
    with pytest.raises(ChurnriskError, match="reactivation_gap_days"):
        subscription_spells(SUBS, reactivation_gap_days=bad)


def test_missing_column_is_named():
    with pytest.raises(ChurnriskError, match="started_at"):
        subscription_spells(pl.DataFrame({"customer_id": [1]}))
    with pytest.raises(ChurnriskError, match="lookback"):
        order_spells(pl.DataFrame({"customer_id": [1], "ordered_at": [dt(2024, 1, 1)]}), lookback=0)


# ---------------------------------------------------------------------- churn type
CHURN_SUBS = pd.DataFrame(
    {
        "customer_id": [1, 2, 3, 4, 5],
        "started_at": pd.to_datetime(["2024-01-01"] * 5),
        "ended_at": pd.to_datetime(["2024-03-01"] * 5),
        "mrr": [10.0] * 5,
        "end_reason": [None, None, None, "Payment failed", "moved away"],
    }
)
PAYMENTS = pd.DataFrame(
    {
        "customer_id": [1, 1, 2, 2, 3, 5],
        "attempted_at": pd.to_datetime(
            ["2024-02-20", "2024-02-25", "2024-02-20", "2024-02-22", "2024-01-15", "2024-02-28"]
        ),
        "status": ["failed", "failed", "failed", "succeeded", "failed", "failed"],
    }
)


def _store(**tables):
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5]})
    return EventStore.from_frames({"customers": customers, **tables})


def test_churn_type_rule():
    churned = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5], "churned_at": pd.to_datetime(["2024-03-01"] * 5)})
    out = churn_type(_store(subscriptions=CHURN_SUBS, payments=PAYMENTS), churned)
    # 1: two failures in the 30 days, never recovered; 2: recovered on Feb 22; 3: failure too early;
    # 4: end reason names the payment; 5: failure on Feb 28, not recovered
    assert out["churn_type"].to_list() == [
        "involuntary",
        "voluntary",
        "voluntary",
        "involuntary",
        "involuntary",
    ]
    assert out["customer_id"].to_list() == [1, 2, 3, 4, 5]


def test_churn_type_window_and_missing_tables():
    churned = pd.DataFrame({"customer_id": [3], "churned_at": pd.to_datetime(["2024-03-01"])})
    assert churn_type(_store(payments=PAYMENTS, subscriptions=CHURN_SUBS), churned, window_days=50)[
        "churn_type"
    ].to_list() == ["involuntary"]
    only_subs = _store(subscriptions=CHURN_SUBS.drop(columns="end_reason"))
    assert churn_type(only_subs, churned)["churn_type"].to_list() == ["voluntary"]


def test_churn_type_ignores_payments_after_churn():
    later = pd.DataFrame(
        {"customer_id": [1], "attempted_at": pd.to_datetime(["2024-03-02"]), "status": ["failed"]}
    )
    churned = pd.DataFrame({"customer_id": [1], "churned_at": pd.to_datetime(["2024-03-01"])})
    assert (
        churn_type(_store(payments=later, subscriptions=CHURN_SUBS), churned)["churn_type"].item()
        == "voluntary"
    )


def test_overlapping_rows_merge_to_the_latest_end():
    # not valid in a store (validation refuses overlaps), but the merge must still be right
    rows = _subs(
        [
            (1, dt(2024, 1, 1), dt(2024, 6, 1), "moved"),
            (1, dt(2024, 2, 1), dt(2024, 3, 1), "nested"),  # inside the first
            (1, dt(2024, 3, 1), dt(2024, 4, 1), None),
            (1, dt(2024, 6, 10), dt(2024, 7, 1), "price"),
            (2, dt(2024, 1, 1), None, None),
            (2, dt(2024, 1, 5), dt(2024, 2, 1), "x"),
        ]
    )
    expected = _spells(
        [
            (1, dt(2024, 1, 1), dt(2024, 6, 1), "moved"),
            (1, dt(2024, 6, 10), dt(2024, 7, 1), "price"),
            (2, dt(2024, 1, 1), None, None),
        ]
    )
    assert_frame_equal(subscription_spells(rows), expected)
    assert subscription_spells(rows, reactivation_gap_days=10).height == 2


def test_overlapping_order_windows_merge():
    orders = pl.DataFrame(
        {"customer_id": [1, 1, 1], "ordered_at": [dt(2024, 1, 10), dt(2024, 1, 1), dt(2024, 2, 20)]}
    )
    # windows [Jan 1, Jan 31) and [Jan 10, Feb 9) overlap; Feb 20 comes after a pause
    spells = order_spells(orders, lookback=30).select("start", "end").rows()
    assert spells == [(dt(2024, 1, 1), dt(2024, 2, 9)), (dt(2024, 2, 20), dt(2024, 3, 21))]
