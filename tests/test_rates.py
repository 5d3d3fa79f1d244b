"""Churn rates per period on small hand-computed tables (months of 2024 unless said otherwise)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from churnrisk.errors import ChurnriskError
from churnrisk.rates import annualise, churn_rates
from churnrisk.store import EventStore

NaN = float("nan")


def _store(rows, *, customers=None, **tables):
    """Subscriptions from (customer_id, started_at, ended_at, mrr) tuples."""
    subs = pd.DataFrame(rows, columns=["customer_id", "started_at", "ended_at", "mrr"])
    subs["started_at"] = pd.to_datetime(subs["started_at"], format="ISO8601")
    subs["ended_at"] = pd.to_datetime(subs["ended_at"], format="ISO8601")
    if customers is None:
        customers = pd.DataFrame({"customer_id": sorted(subs["customer_id"].unique())})
    return EventStore.from_frames({"customers": customers, "subscriptions": subs, **tables})


def _rates(store, start="2024-01-01", end="2024-02-01", **options):
    return churn_rates(store, period="month", start=start, end=end, **options)


def _row(table, i=0):
    return table.iloc[i]


def test_seed_example_5000_to_4800():
    rows = [(i, "2023-06-01", "2024-01-15" if i < 200 else None, 10.0) for i in range(5000)]
    row = _row(_rates(_store(rows)))
    assert (row.customers_start, row.customers_end, row.customers_lost) == (5000, 4800, 200)
    assert row.customer_churn_rate == pytest.approx(0.04)
    assert row.lost_churn_rate == pytest.approx(0.04)
    assert row.annualised_churn_rate == pytest.approx(1 - 0.96**12)
    assert row.mrr_start == 50_000 and row.mrr_churned == 2_000


def test_seed_example_1000_to_200():
    rows = [(i, "2023-06-01", "2024-01-20" if i >= 200 else None, 1.0) for i in range(1000)]
    row = _row(_rates(_store(rows)))
    assert row.customer_churn_rate == pytest.approx((1000 - 200) / 1000)


def test_the_full_row_of_a_small_month():
    rows = [
        (1, "2023-12-01", None, 100.0),  # stays
        (2, "2023-12-01", "2024-01-20", 50.0),  # lost on Jan 20
        (3, "2024-01-05", None, 30.0),  # new
        (4, "2023-12-01", "2024-01-10", 20.0),  # expansion 20 -> 40 on Jan 10 (touching rows)
        (4, "2024-01-10", None, 40.0),
        (5, "2024-01-10", "2024-01-20", 70.0),  # joins and leaves inside January
    ]
    table = _rates(_store(rows))
    expected = pd.DataFrame(
        {
            "period_start": pd.to_datetime(["2024-01-01"]),
            "period_end": pd.to_datetime(["2024-02-01"]),
            "customers_start": [3],
            "customers_new": [2],
            "customers_reactivated": [0],
            "customers_lost": [1],
            "churned_in_period": [2],
            "customers_end": [3],
            "customer_churn_rate": [0.0],
            "lost_churn_rate": [1 / 3],
            "adjusted_churn_rate": [2 / (3 + 2 / 2)],
            # customer-days: 1 and 4 all month (31 + 31), 2 for 19 days, 3 for 27, 5 for 10
            "exposure_churn_rate": [2 / ((31 + 31 + 19 + 27 + 10) / 31)],
            "annualised_churn_rate": [1 - (2 / 3) ** 12],
            "customer_days": [118.0],
            "mrr_start": [170.0],
            "mrr_churned": [50.0],
            "mrr_contraction": [0.0],
            "mrr_expansion": [20.0],
            "gross_revenue_churn": [50 / 170],
            "net_revenue_churn": [30 / 170],
            "mrr_new": [30.0],
            "mrr_reactivated": [0.0],
            "mrr_end": [170.0],
            "gross_revenue_retention": [120 / 170],
            "net_revenue_retention": [140 / 170],
            "quick_ratio": [(30 + 20) / 50],
        }
    )
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)


def test_join_and_leave_inside_one_period():
    rows = [(i, "2023-12-01", None, 10.0) for i in range(4)] + [(9, "2024-01-10", "2024-01-20", 5.0)]
    row = _row(_rates(_store(rows)))
    assert (row.customers_start, row.customers_new, row.customers_lost, row.churned_in_period) == (4, 1, 0, 1)
    assert row.customers_end == 4
    assert row.lost_churn_rate == 0
    assert row.adjusted_churn_rate == pytest.approx(1 / 4.5)
    assert row.exposure_churn_rate == pytest.approx(1 / ((4 * 31 + 10) / 31))
    # its MRR came and went inside the month: neither in mrr_start nor churned from it
    assert (row.mrr_start, row.mrr_churned, row.mrr_new) == (40, 0, 0)


def test_downgrade_is_contraction_not_churn():
    rows = [
        (1, "2023-12-01", "2024-01-15", 100.0),
        (1, "2024-01-15", None, 60.0),
        (2, "2023-12-01", None, 50.0),
    ]
    row = _row(_rates(_store(rows)))
    assert (row.customers_lost, row.churned_in_period, row.customers_reactivated) == (0, 0, 0)
    assert (row.mrr_start, row.mrr_contraction, row.mrr_churned, row.mrr_expansion, row.mrr_end) == (
        150,
        40,
        0,
        0,
        110,
    )
    assert row.gross_revenue_churn == pytest.approx(40 / 150)
    assert row.net_revenue_retention == pytest.approx(110 / 150)
    assert row.quick_ratio == 0


def test_upgrade_exactly_on_a_period_boundary_counts_in_the_period_before():
    rows = [(1, "2023-12-01", "2024-02-01", 100.0), (1, "2024-02-01", None, 150.0)]
    table = _rates(_store(rows), end="2024-03-01")
    jan, feb = _row(table, 0), _row(table, 1)
    assert (jan.mrr_start, jan.mrr_expansion, jan.mrr_end) == (100, 50, 150)
    assert jan.net_revenue_churn == pytest.approx(-0.5)
    assert (feb.mrr_start, feb.mrr_expansion, feb.mrr_end) == (150, 0, 150)
    assert table["customers_lost"].tolist() == [0, 0]


def test_spell_starting_at_the_period_start_is_already_there():
    rows = [(1, "2024-01-01", "2024-02-01", 10.0)]
    table = _rates(_store(rows), start="2023-12-01", end="2024-02-01")
    dec, jan = _row(table, 0), _row(table, 1)
    assert (dec.customers_new, dec.customers_end) == (1, 1)
    # it ends exactly at January's end: active through the whole month, lost in it
    assert (jan.customers_start, jan.customers_new, jan.customers_lost, jan.customers_end) == (1, 0, 1, 0)
    assert jan.customer_days == 31


def test_mid_period_plan_changes_compare_start_with_end():
    rows = [
        (1, "2023-12-01", "2024-01-10", 100.0),
        (1, "2024-01-10", "2024-01-20", 80.0),
        (1, "2024-01-20", None, 120.0),
    ]
    row = _row(_rates(_store(rows)))
    assert (row.customers_lost, row.churned_in_period, row.customers_reactivated) == (0, 0, 0)
    assert (row.mrr_expansion, row.mrr_contraction) == (20, 0)


@pytest.mark.parametrize(
    ("gap", "lost", "churned", "reactivated"),
    [(0, 0, 0, 1), (5, 0, 0, 1), (5.5, 0, 0, 0)],  # the pause is 5 days: merged only when the gap exceeds it
)
def test_reactivation_inside_a_period(gap, lost, churned, reactivated):
    rows = [(1, "2023-12-01", "2024-01-10", 10.0), (1, "2024-01-15", None, 10.0)]
    row = _row(_rates(_store(rows), reactivation_gap_days=gap))
    assert (row.customers_lost, row.churned_in_period, row.customers_reactivated) == (
        lost,
        churned,
        reactivated,
    )
    assert (row.customers_start, row.customers_end) == (1, 1)


def test_reactivation_across_periods_and_a_bridging_gap():
    rows = [
        (1, "2023-12-01", "2024-01-10", 100.0),
        (1, "2024-03-05", None, 80.0),
        (2, "2023-12-01", None, 10.0),
    ]
    store = _store(rows)
    apart = _rates(store, end="2024-04-01")
    assert apart["customers_lost"].tolist() == [1, 0, 0]
    assert apart["customers_reactivated"].tolist() == [0, 0, 1]
    assert apart["mrr_churned"].tolist() == [100, 0, 0]
    assert apart["mrr_reactivated"].tolist() == [0, 0, 80]
    # the pause lasts 55 days: a 60-day gap makes it one relationship, its MRR stays at the last paid
    bridged = _rates(store, end="2024-04-01", reactivation_gap_days=60)
    assert bridged["customers_lost"].tolist() == [0, 0, 0]
    assert bridged["customers_end"].tolist() == [2, 2, 2]
    assert bridged["mrr_start"].tolist() == [110, 110, 110]
    assert bridged["mrr_contraction"].tolist() == [0, 0, 20]


def test_net_growth_gives_a_negative_customer_churn_rate():
    rows = [(1, "2023-12-01", None, 1.0), (2, "2023-12-01", "2024-01-05", 1.0)] + [
        (i, "2024-01-10", None, 1.0) for i in range(3, 7)
    ]
    row = _row(_rates(_store(rows)))
    assert (row.customers_start, row.customers_end) == (2, 5)
    assert row.customer_churn_rate == pytest.approx((2 - 5) / 2)
    assert row.lost_churn_rate == pytest.approx(0.5)


def test_nobody_at_the_start_gives_nan():
    rows = [(1, "2024-01-10", None, 10.0)]
    row = _row(_rates(_store(rows)))
    assert (row.customers_start, row.customers_new, row.customers_end) == (0, 1, 1)
    for column in (
        "customer_churn_rate",
        "lost_churn_rate",
        "annualised_churn_rate",
        "gross_revenue_churn",
        "net_revenue_churn",
        "quick_ratio",
    ):
        assert math.isnan(row[column]), column
    assert row.adjusted_churn_rate == 0  # 0 / (0 + 1/2)


def test_by_segment():
    customers = pd.DataFrame({"customer_id": [1, 2, 3], "plan": ["pro", "basic", "pro"]})
    rows = [
        (1, "2023-12-01", "2024-01-15", 10.0),
        (2, "2023-12-01", None, 5.0),
        (3, "2023-12-01", None, 10.0),
    ]
    table = _rates(_store(rows, customers=customers), by="plan")
    assert table["plan"].tolist() == ["basic", "pro"]
    assert table["customers_start"].tolist() == [1, 2]
    assert table["lost_churn_rate"].tolist() == [0.0, 0.5]
    assert table["mrr_churned"].tolist() == [0.0, 10.0]


@pytest.mark.parametrize(
    ("period", "starts"),
    [
        ("day", ["2024-01-01", "2024-01-02"]),
        ("week", ["2024-01-01", "2024-01-08"]),  # Mondays
        ("quarter", ["2024-01-01", "2024-04-01"]),
        ("year", ["2024-01-01"]),
    ],
)
def test_periods_default_start_and_complete_periods_only(period, starts):
    end = {"day": "2024-01-03", "week": "2024-01-15", "quarter": "2024-07-01", "year": "2025-01-01"}[period]
    rows = [(1, "2024-01-01 10:00", "2024-01-02 12:00", 1.0), (2, "2024-01-03", end, 1.0)]
    table = churn_rates(_store(rows), period=period)
    assert table["period_start"].tolist() == pd.to_datetime(starts).tolist()


def test_annualise():
    assert annualise(0.04, "month") == pytest.approx(1 - 0.96**12)
    assert annualise(np.array([0.0, 1.0]), "week").tolist() == [0.0, 1.0]
    assert annualise(0.1, "year") == pytest.approx(0.1)


def test_order_data_revenue_from_existing_customers():
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 3],
            "ordered_at": pd.to_datetime(
                ["2024-01-05", "2024-02-05", "2024-03-05", "2024-01-20", "2024-03-01", "2024-02-02"]
            ),
            "amount": [10.0, 20, 30, 5, 5, 7],
        }
    )
    store = EventStore.from_frames({"customers": pd.DataFrame({"customer_id": [1, 2, 3]}), "orders": orders})
    table = churn_rates(store, period="month", lookback=30)
    # 30-day windows: 1 is active on [Jan 5, Feb 4) and [Feb 5, Mar 6); 2 on [Jan 20, Feb 19) and from Mar 1
    assert table["period_start"].tolist() == pd.to_datetime(["2024-01-01", "2024-02-01"]).tolist()
    feb = _row(table, 1)
    assert (feb.customers_start, feb.customers_new, feb.customers_reactivated, feb.customers_end) == (
        2,
        1,
        2,
        3,
    )
    assert (feb.customers_lost, feb.churned_in_period) == (0, 0)
    assert feb.customer_churn_rate == pytest.approx(-0.5)
    # customers active on Feb 1 (1 and 2): January revenue 10 + 5, February revenue 20 + 5 (Mar 1 is in Feb)
    assert (feb.revenue_previous, feb.revenue_existing) == (15, 25)
    assert feb.revenue_churn == pytest.approx(-10 / 15)
    assert "mrr_start" not in table.columns


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"period": "fortnight"}, "period"),
        ({"by": "nope"}, "customers table"),
        ({"definition": "inactivity"}, "orders"),
        ({"definition": "both"}, "definition"),
        ({"start": "2024-05-01", "end": "2024-02-01"}, "no complete"),
        ({"start": "not a date"}, "start"),
    ],
)
def test_user_errors(options, match):
    store = _store([(1, "2023-12-01", None, 1.0)])
    with pytest.raises(ChurnriskError, match=match):
        churn_rates(store, **{"end": "2024-02-01", **options})


def test_nan_constant():
    assert math.isnan(NaN)


@pytest.mark.parametrize(
    "name", ["churn_rates", "cohort_retention", "customer_lifetime_value", "churn_by_type", "winback_list"]
)
def test_old_inactivity_days_warns_and_still_works(name):
    import churnrisk.rates

    measure = getattr(churnrisk.rates, name)
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "ordered_at": pd.to_datetime(["2024-01-05", "2024-02-20", "2024-01-20", "2024-03-30"]),
            "amount": [10.0, 20, 5, 7],
        }
    )
    store = EventStore.from_frames({"customers": pd.DataFrame({"customer_id": [1, 2, 3]}), "orders": orders})
    expected = measure(store, lookback=30)
    assert not expected.equals(measure(store, lookback=90)) or name == "winback_list"  # the option matters
    with pytest.warns(DeprecationWarning, match="'inactivity_days'.*'lookback'"):
        pd.testing.assert_frame_equal(measure(store, inactivity_days=30), expected)
