"""Monitoring: PSI by hand, the backtest against independent labels, stale and shifted inputs, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing

import numpy as np
import pandas as pd
import polars as pl
import pytest

from churnrisk.drift import bin_shares, bin_values, drift_table, feature_profile, psi
from churnrisk.errors import ChurnriskError
from churnrisk.model import ChurnModel
from churnrisk.monitoring import Thresholds, monitor
from churnrisk.store import EventStore
from churnrisk.training import cutoff_range
from churnrisk.workflow import train_model

# --- drift.py, by hand ------------------------------------------------------------------------------------


def test_psi_by_hand():
    # 0.25 ln(0.25 / 0.5) ... written out: (a - e) ln(a / e) per bin
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    with pytest.raises(ChurnriskError, match="same length"):
        psi([0.5, 0.5], [1.0])


def test_numeric_profile_and_drift_by_hand():
    train = pd.DataFrame({"x": [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    profile = feature_profile(train, {"x": "number"}, n_bins=2)
    # the median (lower) of ten values is the 5th, 1.0: bins (-inf, 1] and (1, inf), five values each
    assert profile == {"x": {"kind": "number", "edges": [1.0], "shares": [0.5, 0.5], "missing": 0.0}}
    now = pd.DataFrame({"x": [0.0, 5.0, 6.0, 7.0, None]})  # 1 low, 3 high, 1 missing
    np.testing.assert_allclose(bin_shares(now["x"], profile["x"]), [0.2, 0.6, 0.2])
    # the empty missing bin of training counts as 1e-4
    expected = (
        (0.2 - 0.5) * math.log(0.2 / 0.5)
        + (0.6 - 0.5) * math.log(0.6 / 0.5)
        + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    )
    table = drift_table(now, profile)
    assert table.to_dict(orient="records") == [
        {"feature": "x", "psi": pytest.approx(expected), "missing_train": 0.0, "missing_now": 0.2}
    ]
    # one value per bin: the median of today's values in it (0; 6), and missing
    assert bin_values(now["x"], profile["x"])[:2] == [0.0, 6.0]
    assert np.isnan(bin_values(now["x"], profile["x"])[2])


def test_category_profile_pools_unseen_categories():
    train = pd.DataFrame({"plan": ["a", "a", "b", None, "c"]})
    profile = feature_profile(train, {"plan": "category"})
    assert profile["plan"] == {
        "kind": "category",
        "categories": ["a", "b", "c"],
        "shares": [0.4, 0.2, 0.2, 0.0],
        "missing": 0.2,
    }
    now = pd.Series(["a", "d", "d", "e"])
    np.testing.assert_allclose(bin_shares(now, profile["plan"]), [0.25, 0, 0, 0.75, 0])
    assert bin_values(now, profile["plan"])[:4] == ["a", "b", "c", "d"]


def test_profile_is_plain_json():
    frame = pd.DataFrame({"x": np.arange(100, dtype="float32"), "c": ["u", "v"] * 50})
    profile = feature_profile(frame, {"x": "number", "c": "category"})
    assert json.loads(json.dumps(profile)) == profile
    assert len(profile["x"]["edges"]) == 9 and sum(profile["x"]["shares"]) == pytest.approx(1.0)


def test_thresholds_are_checked():
    with pytest.raises(ChurnriskError, match="'max_psi' threshold"):
        Thresholds(max_psi=-1)
    with pytest.raises(ChurnriskError, match="'recent' threshold"):
        Thresholds(recent=0)


def test_thresholds_given_keep_the_defaults_of_the_limits_not_given():
    assert Thresholds.given(max_gap=0.1, max_psi=None, stale_days=None) == Thresholds(max_gap=0.1)
    assert Thresholds.given() == Thresholds()
    with pytest.raises(ChurnriskError, match="'auc_margin' threshold"):
        Thresholds.given(auc_margin=-0.5)


# --- a model trained mid-history, monitored on the whole demo history -------------------------------------

HORIZON = 60


@pytest.fixture(scope="module")
def model(demo_store):
    """Trained on cutoffs up to 2024-06-30 of a history that runs to 2024-12-30."""
    cutoffs = cutoff_range("2023-10-31", "2024-06-30")
    return train_model(demo_store, cutoffs=cutoffs, horizon=HORIZON, definition="subscription", model="gbm")


@pytest.fixture(scope="module")
def healthy(model, demo_store):
    return monitor(model, demo_store)


def _end(store) -> pd.Timestamp:
    from churnrisk.rates._periods import data_span

    return pd.Timestamp(data_span(store)[1])


def stale_activity(store) -> EventStore:
    """The same store, but the activity table stopped filling four months before the end."""
    stop = (_end(store) - pd.DateOffset(months=4)).to_pydatetime()
    return EventStore({**store.tables, "activity": store["activity"].filter(pl.col("occurred_at") <= stop)})


def failing_payments(store) -> EventStore:
    """The same store, but every payment attempt of the last two months failed."""
    recent = pl.col("attempted_at") > (_end(store) - pd.DateOffset(months=2)).to_pydatetime()
    status = pl.when(recent).then(pl.lit("failed")).otherwise(pl.col("status"))
    return EventStore({**store.tables, "payments": store["payments"].with_columns(status=status)})


@pytest.fixture(scope="module")
def stale(model, demo_store):
    return monitor(model, stale_activity(demo_store))


def test_healthy_store_has_no_alert_and_predictions_near_outcomes(healthy):
    assert healthy.healthy and healthy.alerts.empty
    done = healthy.cutoffs[healthy.cutoffs["status"] == "backtested"]
    assert len(done) >= 4
    assert (done["predicted_rate"] - done["observed_rate"]).abs().max() < 0.03  # within 3 points everywhere
    assert (done["roc_auc"] > 0.6).all()
    # returns are rare: three quiet weeks are not a stale table when only a few were expected in them
    quiet = healthy.freshness[healthy.freshness["days_behind"] > 14]
    assert quiet["table"].tolist() == ["returns"] and (quiet["expected_events"] < 10).all()
    assert not healthy.freshness["stale"].any()
    assert healthy.by_tier["risk_tier"].drop_duplicates().tolist() == ["low", "medium", "high"]


def test_backtest_cutoffs_start_after_training_and_pending_ones_are_not_guessed(model, healthy, demo_store):
    from churnrisk.labels import data_end

    learned = max(pd.Timestamp(c) for k, cs in model.metadata["cutoffs"].items() if k != "test" for c in cs)
    table = healthy.cutoffs
    assert (table["cutoff"] > learned).all()
    assert (table["known_on"] == table["cutoff"] + pd.Timedelta(days=HORIZON)).all()
    end = pd.Timestamp(data_end(demo_store))
    assert ((table["status"] == "backtested") == (table["known_on"] <= end)).all()
    pending = table[table["status"] == "pending"]
    assert len(pending) >= 1 and table["cutoff"].max() == healthy.as_of.normalize()
    assert pending[["n", "predicted_rate", "observed_rate", "roc_auc"]].isna().all().all()


def test_backtest_counts_and_rates_match_independent_labels(model, healthy, demo_store):
    from churnrisk.labels import make_labels

    row = healthy.cutoffs[healthy.cutoffs["status"] == "backtested"].iloc[-1]
    labels = make_labels(demo_store, row["cutoff"], definition="subscription", horizon=HORIZON)
    assert row["n"] == len(labels)
    assert row["observed_rate"] == pytest.approx(labels["churned"].mean())
    tiers = healthy.by_tier[healthy.by_tier["cutoff"] == row["cutoff"]]
    assert tiers["n"].sum() == row["n"]
    weighted = (tiers["n"] * tiers["predicted_rate"]).sum() / tiers["n"].sum()
    assert weighted == pytest.approx(row["predicted_rate"])
    assert (tiers["n"] * tiers["observed_rate"]).sum() == pytest.approx(labels["churned"].sum())
    segments = healthy.by_segment[healthy.by_segment["cutoff"] == row["cutoff"]]
    assert set(segments["segment"]) == {"enterprise", "mid_market", "smb"} and segments["n"].sum() == row["n"]


def test_stale_activity_table_raises_freshness_and_drift_alerts(stale):
    assert not stale.healthy
    alerts = stale.alerts
    fresh = alerts[alerts["kind"] == "freshness"]
    assert fresh["table"].tolist() == ["activity"]
    message = fresh["message"].iloc[0]
    assert "'activity'" in message and "Check the export or pipeline" in message
    row = stale.freshness.set_index("table").loc["activity"]
    assert 120 <= row["days_behind"] <= 125 and row["expected_events"] > 1000 and row["stale"]
    assert stale.freshness["stale"].sum() == 1
    drifted = alerts[alerts["kind"] == "drift"]
    activity = drifted[drifted["table"] == "activity"]
    assert len(activity) >= 3 and activity["feature"].str.startswith("activity_").all()
    assert drifted.sort_values("value")["table"].iloc[-1] == "activity"  # the largest shift


def test_shifted_feature_raises_a_drift_alert_on_it(model, demo_store):
    result = monitor(model, failing_payments(demo_store), since="2024-11-01")  # drift only: no backtest
    alerts = result.alerts
    assert set(alerts["kind"]) == {"drift"}  # nothing stale
    assert "payments_failure_recency" in set(alerts["feature"])
    payments = alerts[alerts["feature"].str.startswith("payments_")]
    assert (payments["table"] == "payments").all()
    # the shifted table drifts most (PSI); another drift may show beside it (subscription tenure: the
    # demo business ages, and with every customer failing payments its effect on the risk is larger)
    assert alerts.loc[alerts["value"].idxmax(), "table"] == "payments"
    row = result.drift.set_index("feature").loc["payments_failure_recency"]
    assert row["psi"] > 0.25 and row["effect"] >= 0.02
    # every customer with payments now has a recent failure: the feature is no longer missing
    assert row["missing_now"] < row["missing_train"]


def test_thresholds_decide_the_alerts(model, healthy):
    from churnrisk.monitoring import find_alerts

    frames = (healthy.cutoffs, healthy.drift, healthy.freshness)
    strict = find_alerts(model, *frames, Thresholds(max_gap=0.0, max_psi=0.0, min_effect=0.0))
    assert set(strict["kind"]) == {"calibration", "drift"}  # no model is exactly calibrated
    # every feature whose drift effect was measured, i.e. above the PSI threshold used then (0.25)
    assert set(strict.loc[strict["kind"] == "drift", "feature"]) == set(healthy.drift.dropna()["feature"])
    recent = healthy.cutoffs[healthy.cutoffs["status"] == "backtested"].tail(3)
    gap = abs(recent["predicted_rate"].mean() - recent["observed_rate"].mean())
    assert strict.loc[strict["kind"] == "calibration", "value"].item() == pytest.approx(gap)
    lax = find_alerts(model, *frames, Thresholds(max_gap=1.0, auc_margin=1.0))
    assert lax.empty


def test_model_without_profile_still_monitors(model, demo_store):
    old = ChurnModel(model.estimator, {k: v for k, v in model.metadata.items() if k != "profile"})
    result = monitor(old, demo_store, since="2024-09-01")
    assert result.drift.empty and any("no training profile" in n for n in result.notes)
    assert result.cutoffs["cutoff"].min() >= pd.Timestamp("2024-09-01")


def test_snapshot_model_and_bad_dates_are_refused(model, demo_store):
    with pytest.raises(ChurnriskError, match="snapshot"):
        monitor(ChurnModel(None, {"kind": "snapshot"}), demo_store)
    with pytest.raises(ChurnriskError, match="'since' parameter of monitor must be a date. Got 'soon'"):
        monitor(model, demo_store, since="soon")
    with pytest.raises(ChurnriskError, match="'every' parameter"):
        monitor(model, demo_store, every="monthly")


def test_json_shape(healthy, stale):
    data = json.loads(json.dumps(stale.to_dict()))
    assert set(data) >= {"cutoffs", "drift", "freshness", "alerts", "as_of", "healthy"}
    first = data["cutoffs"][0]
    assert {"cutoff", "n", "predicted_rate", "observed_rate", "roc_auc"} <= set(first)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", first["cutoff"])
    fresh = next(a for a in data["alerts"] if a["kind"] == "freshness")
    assert fresh["table"] == "activity" and "feature" not in fresh
    drift = next(a for a in data["alerts"] if a["kind"] == "drift")
    assert drift["feature"].startswith("activity_") and drift["table"] == "activity"
    assert data["cutoffs"][-1]["n"] is None  # pending: null, not NaN
    assert json.loads(json.dumps(healthy.to_dict()))["alerts"] == []


# --- past score files ---------------------------------------------------------------------------------------


def test_past_score_lists_against_what_happened(model, demo_store, tmp_path):
    from churnrisk._io import write_table
    from churnrisk.labels import make_labels
    from churnrisk.scoring import score_store

    past, recent = pd.Timestamp("2024-09-30"), _end(demo_store)
    scores = score_store(model, demo_store, cutoff=past, n_reasons=1, top=25)  # 25 customers to call
    write_table(scores, tmp_path / "2024-09.parquet")
    write_table(score_store(model, demo_store, cutoff=recent, n_reasons=1), tmp_path / "latest.csv")
    (tmp_path / "notes.txt").write_text("not a score file", encoding="utf-8")
    result = monitor(model, demo_store, scores=tmp_path, since="2024-10-01")
    table = result.past_scores.set_index("file")
    assert table.loc["latest.csv", "status"] == "pending"
    row = table.loc["2024-09.parquet"]
    assert row["status"] == "backtested" and row["listed"] == len(scores)
    churned = make_labels(demo_store, past, definition="subscription", horizon=HORIZON)["churned"]
    y = scores["customer_id"].map(churned).dropna().to_numpy(dtype=int)  # sorted by priority
    assert row["labelled"] == len(y)
    assert row["observed_rate"] == pytest.approx(y.mean())
    k = 0.1 * len(y)  # the top 10 %, the boundary customer pro rata
    assert row["hit_rate_top_10pct"] == pytest.approx((y[: int(k)].sum() + (k - int(k)) * y[int(k)]) / k)
    high = scores.loc[scores["customer_id"].isin(churned.index), "risk_tier"].astype(str).to_numpy() == "high"
    assert row["high_tier"] == high.sum()
    called = scores.loc[scores["contact"], "customer_id"].map(churned).dropna()
    assert row["contacts"] == len(called) and row["hit_rate_contacts"] == pytest.approx(called.mean())
    assert np.isnan(table.loc["latest.csv", "contacts"])  # pending, and no contact column


def test_past_scores_need_score_files(model, demo_store, tmp_path):
    with pytest.raises(ChurnriskError, match="no score files"):
        monitor(model, demo_store, scores=tmp_path, since="2024-12-01")
    pd.DataFrame({"customer_id": [1], "as_of": ["2024-06-30"]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(ChurnriskError, match=r"x\.csv lacks the column\(s\) churn_probability"):
        monitor(model, demo_store, scores=tmp_path, since="2024-12-01")


# --- the command line ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    from churnrisk.modelfile import save_model

    return save_model(model, tmp_path_factory.mktemp("model") / "churn.skops")


def run_cli(*args: str):
    from typer.testing import CliRunner

    from churnrisk.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_healthy_exits_0_with_json(model_file, demo_folder):
    result = run_cli("monitor", model_file, demo_folder, "--format", "json", "--since", "2024-10-01")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["healthy"] is True and data["alerts"] == []
    assert [c["status"] for c in data["cutoffs"]].count("pending") >= 1


def test_cli_stale_table_exits_3_and_writes_the_page(model_file, demo_store, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name, frame in stale_activity(demo_store).tables.items():
        frame.write_parquet(folder / f"{name}.parquet")
    page = tmp_path / "monitor.html"
    result = run_cli("monitor", model_file, folder, "-o", page, "--since", "2024-10-01")
    assert result.exit_code == 3, result.output
    assert "table 'activity' is stale" in result.stdout and "Traceback" not in result.output
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    again = run_cli("monitor", model_file, folder, "-o", page)  # the page exists: refused before any work
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_cli_errors_and_usage(model_file, demo_folder, tmp_path):
    missing = run_cli("monitor", tmp_path / "none.skops", demo_folder)
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert run_cli("monitor", model_file, demo_folder, "--format", "xml").exit_code == 2
    assert run_cli("monitor", model_file, demo_folder, "--max-psi", "-1").exit_code == 2


# --- the HTML page ---------------------------------------------------------------------------------------


def test_monitoring_page_sections_pictures_and_escaping(stale):
    from churnrisk.report import MONITOR_SECTIONS, render_monitoring

    evil = '<script>alert("x")</script>'
    page = render_monitoring(dataclasses.replace(stale, model_name=evil, notes=("a & b",)))
    assert re.findall(r"<h2>(.*?)</h2>", page) == list(MONITOR_SECTIONS)
    assert "<script>" not in page and "&lt;script&gt;" in page and "a &amp; b" in page
    # predicted vs observed, drift, freshness
    assert page.count('<img alt="') == 3
    assert "table &#x27;activity&#x27; is stale" in page
    assert (
        re.search(r"https?:|<link|<script", re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page))
        is None
    )


@pytest.mark.browser
@pytest.mark.slow
def test_monitoring_page_renders_in_headless_chromium(stale, tmp_path):
    from test_report import CHROMIUM, chromium

    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    from churnrisk.report import MONITOR_SECTIONS, render_monitoring

    html_file = tmp_path / "monitor.html"
    html_file.write_text(render_monitoring(stale), encoding="utf-8")
    dom = chromium("--dump-dom", html_file.as_uri(), profile=tmp_path / "p")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert [h.strip() for h in re.findall(r"<h2>(.*?)</h2>", dom.stdout)] == list(MONITOR_SECTIONS)
    assert dom.stdout.count("<img ") == 3


def test_cli_threshold_help_shows_the_library_defaults():
    from churnrisk.cli._monitor import monitor_command

    shown = {}
    for name, hint in typing.get_type_hints(monitor_command, include_extras=True).items():
        helps = [getattr(m, "help", None) or "" for m in getattr(hint, "__metadata__", ())]
        found = re.search(r"\[([\d.]+)\]", " ".join(helps))
        if found:
            shown[name] = float(found[1])
    defaults = dataclasses.asdict(Thresholds())
    assert shown and shown == {k: pytest.approx(defaults[k]) for k in shown}
