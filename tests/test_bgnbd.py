"""BG/NBD: the paper's CDNOW parameters, an independent integral check, the RFM summary."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

from churnrisk.bgnbd import BGNBD, rfm_summary


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    lifetimes = pytest.importorskip("lifetimes")  # used only as the source of the data files
    path = Path(lifetimes.__file__).parent / "datasets" / "cdnow_customers_summary.csv"
    return pd.read_csv(path)


def test_cdnow_reproduces_published_parameters(cdnow):
    # Fader, Hardie & Lee (2005), 2,357 CDNOW customers, time in weeks: r, alpha, a, b and LL = -9582.4.
    assert len(cdnow) == 2357
    model = BGNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    expected = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in expected.items():
        assert model.params_[name] == pytest.approx(value, abs=1.5e-3), name
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)


@pytest.mark.parametrize(
    ("x", "t_x", "age", "t"), [(0, 0.0, 30.0, 13.0), (2, 20.0, 38.0, 13.0), (5, 5.0, 38.0, 4.0)]
)
def test_prob_no_purchase_matches_numerical_integration(x, t_x, age, t):
    model = BGNBD()
    model.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    r, alpha, a, b = model.params_.values()

    # p integrates out in closed form (beta functions); lambda numerically.
    alive_p = special.beta(a, b + x) / special.beta(a, b)
    dead_p = special.beta(a + 1, b + x - 1) / special.beta(a, b) if x > 0 else 0.0

    def weight(lam, quiet_after):
        prior = stats.gamma.pdf(lam, r, scale=1 / alpha)
        alive = alive_p * lam**x * np.exp(-lam * (age + quiet_after))
        return prior * (alive + dead_p * lam**x * np.exp(-lam * t_x))

    def total(quiet_after):
        return integrate.quad(weight, 0, np.inf, args=(quiet_after,), epsabs=1e-14, limit=200)[0]

    expected = total(t) / total(0.0)
    got = model.prob_no_purchase(t, [x], [t_x], [age])[0]
    assert got == pytest.approx(expected, rel=2e-3)


def test_one_time_buyers_are_alive_but_may_not_buy_again():
    model = BGNBD()
    model.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert model.prob_alive([0, 0], [0, 0], [10, 50]).tolist() == [1.0, 1.0]
    quiet = model.prob_no_purchase(13, [0, 0], [0, 0], [10, 50])
    assert 0 < quiet[0] < quiet[1] < 1  # a longer silence makes a purchase less likely


def test_rfm_summary_counts_purchase_days_up_to_cutoff():
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 3],
            "ordered_at": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-01 17:00",
                    "2024-01-15 00:00",
                    "2024-03-01 00:00",
                    "2024-01-29 00:00",
                    "2024-01-30 00:00",
                ]
            ),
        }
    )
    got = rfm_summary(orders, datetime(2024, 1, 29), unit_days=1)
    expected = pd.DataFrame(
        {"frequency": [1.0, 0.0], "recency": [14.0, 0.0], "T": [28.0, 0.0]},
        index=pd.Index([1, 2], name="customer_id"),
    )
    pd.testing.assert_frame_equal(got, expected, check_index_type=False)
