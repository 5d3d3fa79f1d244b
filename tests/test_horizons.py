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


