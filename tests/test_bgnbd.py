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


PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.mark.parametrize("modified", [False, True])
def test_fit_expected_purchases_and_alive_match_lifetimes(cdnow, modified):
    lifetimes = pytest.importorskip("lifetimes")
    args = (cdnow["frequency"], cdnow["recency"], cdnow["T"])
    ours = BGNBD(modified=modified).fit(*args)
    theirs = lifetimes.ModifiedBetaGeoFitter() if modified else lifetimes.BetaGeoFitter()
    theirs.fit(*args)
    for name, value in theirs.params_.items():
        assert ours.params_[name] == pytest.approx(value, rel=2e-3), name
    theirs.params_ = pd.Series(ours.params_)  # compare the formulas at the same parameters
    some = tuple(column.iloc[:40] for column in args)
    expected = theirs.conditional_expected_number_of_purchases_up_to_time(39, *some).to_numpy()
    np.testing.assert_allclose(ours.expected_purchases(39, *some), expected, rtol=1e-8)
    np.testing.assert_allclose(ours.prob_alive(*some), theirs.conditional_probability_alive(*some), rtol=1e-8)


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize(
    ("x", "t_x", "age", "t"), [(0, 0.0, 30.0, 13.0), (2, 20.0, 38.0, 26.0), (7, 35.0, 38.0, 52.0)]
)
def test_prob_alive_at_a_future_date_matches_integration(modified, x, t_x, age, t):
    # Alive at T + t = alive at T, and every purchase in the next t (Poisson, rate lambda) is survived
    # (probability 1 - p each); given alive, lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + k).
    model = BGNBD(modified=modified)
    model.params_ = dict(PUBLISHED)
    r, alpha, a, b = PUBLISHED.values()
    k = x + 1 if modified else x

    def survive(p):  # E over lambda of exp(-lambda p t), times the density of p
        return ((alpha + age) / (alpha + age + p * t)) ** (r + x) * stats.beta.pdf(p, a, b + k)

    expected = model.prob_alive(x, t_x, age) * integrate.quad(survive, 0, 1, limit=200)[0]
    assert model.prob_alive_at(t, x, t_x, age) == pytest.approx(expected, rel=1e-6)
    assert model.prob_alive_at(0.0, x, t_x, age) == pytest.approx(model.prob_alive(x, t_x, age))


def test_one_time_buyer_alive_below_one_and_falling_with_time_since_purchase():
    model = BGNBD(modified=True)
    model.params_ = dict(PUBLISHED)
    ages = np.array([1.0, 5.0, 20.0, 50.0])  # weeks since the only purchase
    alive = model.prob_alive(np.zeros(4), np.zeros(4), ages)
    assert (alive < 1).all()
    assert (np.diff(alive) < 0).all()
    # P(alive) = 1 / (1 + a / b * ((alpha + T) / alpha) ** r), equation for x = 0 worked out by hand
    r, alpha, a, b = PUBLISHED.values()
    np.testing.assert_allclose(alive, 1 / (1 + a / b * ((alpha + ages) / alpha) ** r))
    later = model.prob_alive_at(13.0, np.zeros(4), np.zeros(4), ages)
    assert (later < alive).all() and (np.diff(later) < 0).all()


def test_rfm_summary_monetary_value_is_the_mean_of_repeat_purchase_days():
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2],
            "ordered_at": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-08 00:00",
                    "2024-01-08 12:00",
                    "2024-01-15 00:00",
                    "2024-01-02 00:00",
                ]
            ),
            "amount": [100.0, 10.0, 20.0, 50.0, 70.0],
        }
    )
    got = rfm_summary(orders, datetime(2024, 1, 31), unit_days=1, monetary_col="amount")
    # customer 1: repeat days 8 Jan (10 + 20) and 15 Jan (50): mean 40; the first purchase is left out
    assert got["monetary_value"].tolist() == [40.0, 0.0]
    assert got["frequency"].tolist() == [2.0, 0.0]
