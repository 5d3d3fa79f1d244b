"""Per-customer value: Gamma-Gamma (hand-computed, published CDNOW fit), predict_value on small stores."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import integrate, stats
from sklearn.metrics import roc_auc_score

from churnrisk.errors import ChurnriskError
from churnrisk.gammagamma import GammaGamma, gamma_gamma_log_likelihood
from churnrisk.store import EventStore
from churnrisk.value import predict_value, value_errors


@pytest.fixture(scope="module")
def cdnow_spend() -> pd.DataFrame:
    lifetimes = pytest.importorskip("lifetimes")
    path = Path(lifetimes.__file__).parent / "datasets" / "cdnow_customers_summary_with_transactions.csv"
    frame = pd.read_csv(path).rename(columns={"x": "frequency", "zbar": "monetary_value"})
    return frame[frame["frequency"] > 0]


def test_gamma_gamma_likelihood_by_hand():
    # x = 2 transactions of mean 10, p = 2, q = 3, gamma = 4 (Fader & Hardie 2013, eq. 3):
    # G(7) / (G(4) G(3)) * 4^3 * 10^3 * 2^4 / (4 + 2 * 10)^7 = 60 * 64 * 1000 * 16 / 24^7
    expected = np.log(60 * 64 * 1000 * 16 / 24**7)
    got = gamma_gamma_log_likelihood((2.0, 3.0, 4.0), np.array([2.0]), np.array([10.0]))
    assert got[0] == pytest.approx(expected, rel=1e-12)


def test_gamma_gamma_likelihood_matches_integration_over_nu():
    # The mean of x gamma(p, nu) values is gamma(p x, x nu); nu ~ gamma(q, gamma) integrates out.
    p, q, gamma, x, m = 1.5, 2.5, 7.0, 3, 12.0

    def joint(nu):
        return stats.gamma.pdf(m, p * x, scale=1 / (x * nu)) * stats.gamma.pdf(nu, q, scale=1 / gamma)

    expected = np.log(integrate.quad(joint, 0, np.inf, epsabs=1e-14)[0])
    got = gamma_gamma_log_likelihood((p, q, gamma), np.array([x]), np.array([m]))[0]
    assert got == pytest.approx(expected, rel=1e-6)


def test_gamma_gamma_reproduces_published_cdnow_parameters(cdnow_spend):
    # Fader & Hardie (2013): the 946 repeat buyers of the 2,357 CDNOW customers, p=6.25, q=3.74, gamma=15.44.
    assert len(cdnow_spend) == 946
    model = GammaGamma().fit(cdnow_spend["frequency"], cdnow_spend["monetary_value"])
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert model.params_[name] == pytest.approx(value, abs=0.01), name


def test_gamma_gamma_expected_spend_matches_lifetimes(cdnow_spend):
    lifetimes = pytest.importorskip("lifetimes")
    ours = GammaGamma().fit(cdnow_spend["frequency"], cdnow_spend["monetary_value"])
    theirs = lifetimes.GammaGammaFitter()
    theirs.params_ = pd.Series({"p": ours.params_["p"], "q": ours.params_["q"], "v": ours.params_["gamma"]})
    x, m = cdnow_spend["frequency"].iloc[:50], cdnow_spend["monetary_value"].iloc[:50]
    expected = theirs.conditional_expected_average_profit(x, m).to_numpy()
    np.testing.assert_allclose(ours.expected_spend(x, m), expected, rtol=1e-9)


def test_gamma_gamma_one_time_buyers_get_the_population_mean():
    model = GammaGamma()
    model.params_ = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    # p gamma / (q - 1) = 30, whatever their (meaningless) first-order value
    assert model.expected_spend([0, 0], [0.0, 99.0]).tolist() == [30.0, 30.0]
    assert model.mean_spend == 30.0


@pytest.mark.parametrize(
    ("frequency", "monetary"), [([1, 0, 2], [5.0, 3.0, 4.0]), ([1, 2], [5.0, -1.0]), ([1], [5.0])]
)
def test_gamma_gamma_refuses_customers_without_repeat_spend(frequency, monetary):
    with pytest.raises(ChurnriskError, match="repeat customers"):
        GammaGamma().fit(frequency, monetary)


def test_value_errors_by_hand():
    actual = pd.Series([0.0, 10.0, 20.0])
    table = value_errors(actual, {"a": pd.Series([2.0, 10.0, 14.0])})
    row = table.loc["a"]
    assert row["mae"] == pytest.approx(8 / 3)
    assert row["rmse"] == pytest.approx(np.sqrt(40 / 3))
    assert (row["predicted_total"], row["actual_total"], row["customers"]) == (26.0, 30.0, 3)


def _subscription_store() -> EventStore:
    """Four subscribers; at 2024-01-31 two relationships have ended (after 10 and 25 days)."""
    day = pd.Timestamp("2024-01-01")
    subs = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 4],
            "started_at": [day, day, day, day, day + pd.Timedelta(days=5)],
            "ended_at": [
                day + pd.Timedelta(days=10),
                day + pd.Timedelta(days=25),
                pd.NaT,
                day + pd.Timedelta(days=5),
                pd.NaT,
            ],
            "mrr": [10.0, 20.0, 30.0, 40.0, 50.0],
        }
    )
    return EventStore.from_frames(
        {"customers": pd.DataFrame({"customer_id": [1, 2, 3, 4]}), "subscriptions": subs}
    )


def test_subscription_value_is_mrr_times_expected_active_months():
    # At 2024-01-31 (day 30): durations 10 (ended), 25 (ended), 30 and 30 (open; customer 4's plan change at
    # day 5 is one relationship). KM: S = 3/4 after day 10, then at day 25 one of three at risk ends: 1/2.
    # Flat after day 25, so both open customers (tenure 30) expect all 60 days: S(90) / S(30) = 1.
    forecast = predict_value(_subscription_store(), horizon=60, cutoff="2024-01-31", margin=0.5)
    assert forecast.method == "survival"
    table = forecast.table.set_index("customer_id")
    assert table.index.tolist() == [3, 4]
    months = 60 / (365.25 / 12)
    np.testing.assert_allclose(table["mrr"], [30.0, 50.0])
    np.testing.assert_allclose(table["expected_months"], [months, months])
    np.testing.assert_allclose(table["expected_revenue"], [30 * months, 50 * months])
    np.testing.assert_allclose(table["expected_margin"], [15 * months, 25 * months])
    np.testing.assert_allclose(table["p_active_end"], [1.0, 1.0])


def test_subscription_value_conditions_on_tenure():
    # At day 9 nothing has ended yet: the curve is flat at 1, every open customer stays the whole horizon.
    # At day 20 customer 1 has ended after 10 days; customers 2-4 (tenure 20) are past that, so they also
    # expect the whole horizon: what matters is survival beyond their own tenure.
    store = _subscription_store()
    for as_of in ("2024-01-10", "2024-01-21"):
        table = predict_value(store, horizon=5, cutoff=as_of).table
        np.testing.assert_allclose(table["expected_months"], 5 / (365.25 / 12))


def test_subscription_value_out_of_time_check_by_hand():
    # Holdout at day 20: customers 2, 3, 4 open (tenure 20, past the only end at day 10), MRR 20, 30, 50,
    # each predicted 10 active days. Active in (day 20, day 30]: 5, 10, 10 days; in (day 10, day 20]: 10.
    forecast = predict_value(_subscription_store(), horizon=10, cutoff="2024-01-31")
    evaluation = forecast.evaluation
    assert evaluation is not None
    month = 365.25 / 12
    actual_total = (5 * 20 + 10 * 30 + 10 * 50) / month
    expected = pd.DataFrame(
        {
            "customers": [3, 3, 3],
            "mae": [100 / month / 3, 100 / month / 3, 100 / month / 3],
            "predicted_total": [1000 / month] * 3,
            "actual_total": [actual_total] * 3,
        },
        index=pd.Index(["survival", "last_period", "mrr_no_churn"], name="model"),
    )
    pd.testing.assert_frame_equal(evaluation.drop(columns="rmse"), expected)


def test_order_value_columns_and_one_time_buyers(demo_store):
    forecast = predict_value(
        demo_store, horizon=90, cutoff="2024-06-30", definition="inactivity", method="bgnbd"
    )
    table = forecast.table
    assert list(table.columns) == [
        "customer_id",
        "expected_orders",
        "expected_revenue",
        "p_alive",
        "p_alive_end",
    ]
    assert forecast.method == "bgnbd"
    assert table["customer_id"].is_unique
    assert (table["expected_orders"] >= 0).all() and (table["expected_revenue"] >= 0).all()
    assert ((table["p_alive_end"] <= table["p_alive"] + 1e-12) & (table["p_alive"] <= 1)).all()
    orders = demo_store["orders"].filter(pl.col("ordered_at") <= datetime(2024, 6, 30))
    assert set(table["customer_id"]) == set(orders["customer_id"].unique().to_list())
    # one-time buyers (MBG/NBD): below 1, and lower the longer ago their only purchase was
    counts = orders.group_by("customer_id").agg(
        n=pl.col("ordered_at").dt.date().n_unique(), last=pl.col("ordered_at").max()
    )
    once = counts.filter(pl.col("n") == 1).to_pandas().set_index("customer_id")
    once = once.join(table.set_index("customer_id")).sort_values("last")
    assert (once["p_alive"] < 1).all()
    assert once["p_alive"].is_monotonic_increasing  # later purchase, more likely alive


def test_order_value_close_to_simulated_future(demo_tables, demo_store):
    # The demo simulates orders through 2024: value at mid-2024 against what the simulator then produced.
    as_of, days = datetime(2024, 6, 30), 180
    forecast = predict_value(demo_store, horizon=days, cutoff=as_of, definition="inactivity", method="bgnbd")
    table = forecast.table.set_index("customer_id")
    future = demo_store["orders"].filter(
        (pl.col("ordered_at") > as_of) & (pl.col("ordered_at") <= as_of + timedelta(days=days))
    )
    actual = (
        future.group_by("customer_id")
        .agg(orders=pl.col("ordered_at").dt.date().n_unique(), revenue=pl.col("amount").sum())
        .to_pandas()
        .set_index("customer_id")
        .reindex(table.index, fill_value=0)
    )
    assert table["expected_orders"].sum() == pytest.approx(actual["orders"].sum(), rel=0.15)
    assert table["expected_revenue"].sum() == pytest.approx(actual["revenue"].sum(), rel=0.15)
    # the quarter valued highest orders far more afterwards than the quarter valued lowest
    quarter = pd.qcut(table["expected_orders"].rank(method="first"), 4, labels=False)
    by_quarter = actual["orders"].groupby(quarter).mean()
    assert by_quarter[3] > 3 * by_quarter[0]
    # P(alive) ranks the customers the simulator kept alive above those it had already churned
    truth = demo_tables["ground_truth"].set_index("customer_id").reindex(table.index)
    alive = ~(truth["churned"] & (truth["churned_at"] <= as_of))
    assert roc_auc_score(alive, table["p_alive"]) > 0.7
    # and the out-of-time check beside the anchor, on the holdout horizon ending at as_of
    evaluation = forecast.evaluation
    assert evaluation is not None
    assert {"bgnbd", "features", "last_period"} <= set(evaluation.index)
    assert evaluation.loc["bgnbd", "rmse"] < evaluation.loc["last_period", "rmse"]
    assert evaluation["actual_total"].nunique() == 1


def test_auto_picks_the_model_with_the_lower_holdout_error(demo_store):
    forecast = predict_value(
        demo_store, horizon=90, cutoff="2024-09-30", definition="inactivity", random_state=0
    )
    evaluation = forecast.evaluation
    assert evaluation is not None
    assert forecast.method == evaluation.loc[["bgnbd", "features"], "rmse"].idxmin()
    again = predict_value(
        demo_store, horizon=90, cutoff="2024-09-30", definition="inactivity", random_state=0
    )
    pd.testing.assert_frame_equal(forecast.table, again.table)


#: The time column that dates each table's rows (later end or resolution times are not known yet).
EVENT_TIME = {
    "orders": "ordered_at",
    "returns": "returned_at",
    "subscriptions": "started_at",
    "tickets": "opened_at",
    "surveys": "answered_at",
    "payments": "attempted_at",
    "activity": "occurred_at",
}


def test_feature_value_uses_nothing_after_as_of(demo_store):
    as_of = datetime(2024, 3, 31)
    cut = EventStore.from_frames(
        {
            name: frame.filter(pl.col(EVENT_TIME[name]) <= as_of) if name in EVENT_TIME else frame
            for name, frame in demo_store.tables.items()
        }
    )
    ours = predict_value(demo_store, horizon=60, cutoff=as_of, definition="inactivity", method="features")
    truncated = predict_value(cut, horizon=60, cutoff=as_of, definition="inactivity", method="features")
    pd.testing.assert_frame_equal(ours.table, truncated.table)
    pd.testing.assert_frame_equal(ours.evaluation, truncated.evaluation)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"horizon": 0}, "horizon"),
        ({"horizon": 30, "margin": 1.5}, "margin"),
        ({"horizon": 30, "method": "magic"}, "method"),
        ({"horizon": 30, "cutoff": "soon"}, "cutoff"),
    ],
)
def test_bad_arguments_are_clear_errors(demo_store, options, message):
    with pytest.raises(ChurnriskError, match=message):
        predict_value(demo_store, **options)


def _write_store(store: EventStore, folder: Path) -> Path:
    for name, frame in store.tables.items():
        frame.write_parquet(folder / f"{name}.parquet")
    return folder


def test_cli_per_customer_value_writes_the_table(tmp_path):
    from typer.testing import CliRunner

    from churnrisk.cli import app

    data = _write_store(_subscription_store(), tmp_path)
    out = tmp_path / "value.csv"
    args = ["clv", str(data), "--per-customer", "--horizon", "60", "--as-of", "2024-01-31", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    expected = predict_value(_subscription_store(), horizon=60, cutoff="2024-01-31").table
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    again = CliRunner().invoke(app, args)  # never over a file without --overwrite
    assert again.exit_code == 1 and "already exists" in again.output
    assert "Traceback" not in again.output


def test_cli_per_customer_value_needs_a_horizon(tmp_path):
    from typer.testing import CliRunner

    from churnrisk.cli import app

    data = _write_store(_subscription_store(), tmp_path)
    result = CliRunner().invoke(app, ["clv", str(data), "--per-customer"])
    assert result.exit_code == 2
    assert "--horizon" in result.output


def test_short_history_has_no_holdout_and_falls_back_to_bgnbd():
    # 60 days of orders: no 90-day horizon before as_of to test on
    orders = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 3, 4],
            "ordered_at": pd.to_datetime(
                ["2024-01-01", "2024-01-20", "2024-01-05", "2024-02-10", "2024-02-01", "2024-02-20"]
            ),
            "amount": [10.0, 30.0, 20.0, 40.0, 15.0, 25.0],
        }
    )
    store = EventStore.from_frames(
        {"customers": pd.DataFrame({"customer_id": [1, 2, 3, 4]}), "orders": orders}
    )
    forecast = predict_value(store, horizon=90, cutoff="2024-03-01")
    assert (forecast.method, forecast.evaluation) == ("bgnbd", None)
    assert forecast.table["customer_id"].tolist() == [1, 2, 3, 4]
    with pytest.raises(ChurnriskError, match="learn from"):
        predict_value(store, horizon=90, cutoff="2024-03-01", method="features")


def test_subscription_value_before_any_subscription_is_a_clear_error():
    with pytest.raises(ChurnriskError, match="no subscription started by 2023-06-30"):
        predict_value(_subscription_store(), horizon=30, cutoff="2023-06-30")


def test_old_as_of_warns_and_still_works():
    expected = predict_value(_subscription_store(), horizon=60, cutoff="2024-01-31").table
    with pytest.warns(DeprecationWarning, match="'as_of'.*'cutoff'"):
        got = predict_value(_subscription_store(), horizon=60, as_of="2024-01-31").table
    pd.testing.assert_frame_equal(got, expected)
