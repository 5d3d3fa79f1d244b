"""train / evaluate / score / quickstart through the command line."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnrisk.cli import app

runner = CliRunner()


def _table(path, n: int = 400, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    pd.DataFrame(
        {
            "customerID": [f"ID-{i:04d}" for i in range(n)],
            "tenure": tenure,
            "Contract": rng.choice(["Month-to-month", "One year"], n),
            "Churn": np.where(rng.random(n) < 0.6 - tenure / 130, "Yes", "No"),
        }
    ).to_csv(path, index=False)


def test_snapshot_train_then_score(tmp_path):
    _table(tmp_path / "t.csv")
    result = runner.invoke(
        app,
        [
            "train",
            "--table",
            str(tmp_path / "t.csv"),
            "--label",
            "Churn",
            "--id",
            "customerID",
            "-o",
            str(tmp_path / "m.skops"),
            "--metrics",
            str(tmp_path / "metrics.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "roc_auc" in result.output and "m.skops" in result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n"] == 100 and 0 < metrics["base_rate"] < 1
    result = runner.invoke(
        app, ["score", str(tmp_path / "m.skops"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "s.csv")]
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "s.csv")
    assert len(scores) == 400 and scores["customer_id"].str.startswith("ID-").all()
    assert scores["churn_probability"].is_monotonic_decreasing


def test_score_refuses_a_pickle_without_traceback(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "m.skops").write_bytes(pickle.dumps(Payload()))
    _table(tmp_path / "t.csv")
    result = runner.invoke(
        app, ["score", str(tmp_path / "m.skops"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "s.csv")]
    )
    assert result.exit_code == 1
    assert "--trust-pickle" in result.output and "Traceback" not in result.output
    assert not marker.exists() and not (tmp_path / "s.csv").exists()


def test_train_needs_data_or_table(tmp_path):
    result = runner.invoke(app, ["train", "-o", str(tmp_path / "m.skops")])
    assert result.exit_code == 2


@pytest.mark.slow
def test_event_store_train_evaluate_score(tmp_path, demo_tables):
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in demo_tables.items():
        if name != "ground_truth":
            frame.to_parquet(data / f"{name}.parquet")
    model = tmp_path / "m.skops"
    result = runner.invoke(
        app,
        [
            "train",
            str(data),
            "--definition",
            "subscription",
            "--horizon",
            "60",
            "--first-cutoff",
            "2023-07-01",
            "--last-cutoff",
            "2024-10-01",
            "-o",
            str(model),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "historical_rate" in result.output and "recency" in result.output
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(model),
            str(data),
            "--cutoff",
            "2024-09-01",
            "--format",
            "json",
            "--plots",
            str(tmp_path / "plots"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["cutoff"] == "2024-09-01" and set(report["baselines"]) == {"historical_rate", "recency"}
    assert len(list((tmp_path / "plots").glob("*.png"))) == 6
    result = runner.invoke(app, ["evaluate", str(model), str(data), "--cutoff", "2024-12-01"])
    assert result.exit_code == 1 and "Suggestion: use cutoffs up to" in result.output
    result = runner.invoke(
        app, ["score", str(model), str(data), "--as-of", "2024-12-31", "-o", str(tmp_path / "s.parquet")]
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(tmp_path / "s.parquet")
    assert list(scores.columns[:7]) == [
        "customer_id",
        "churn_probability",
        "risk_tier",
        "revenue_at_risk",
        "reasons",
        "as_of",
        "model",
    ]
    assert "segment" in scores.columns
    # a past as-of date on the full data scores like the data cut at that date
    result = runner.invoke(
        app, ["score", str(model), str(data), "--as-of", "2024-06-30", "-o", str(tmp_path / "past.csv")]
    )
    assert result.exit_code == 0, result.output
    past = pd.read_csv(tmp_path / "past.csv")
    assert (past["as_of"].str[:10] == "2024-06-30").all()
    cut = tmp_path / "cut"
    cut.mkdir()
    for name, frame in demo_tables.items():
        if name != "ground_truth":
            time_col = next((c for c in frame.columns if c.endswith("_at") and c != "ended_at"), None)
            kept = frame if time_col is None else frame[frame[time_col] <= pd.Timestamp("2024-06-30")]
            kept.to_parquet(cut / f"{name}.parquet")
    result = runner.invoke(
        app, ["score", str(model), str(cut), "--as-of", "2024-06-30", "-o", str(tmp_path / "cut.csv")]
    )
    assert result.exit_code == 0, result.output
    cut_scores = pd.read_csv(tmp_path / "cut.csv")
    pd.testing.assert_series_equal(
        past.set_index("customer_id")["churn_probability"].sort_index(),
        cut_scores.set_index("customer_id")["churn_probability"].sort_index(),
    )
    result = runner.invoke(app, ["score", str(model), str(data), "-o", str(tmp_path / "s.parquet")])
    assert result.exit_code == 1 and "already exists" in result.output


@pytest.mark.slow
def test_quickstart_refuses_a_non_empty_folder_and_runs(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["quickstart", "--customers", "1500", "--out", str(tmp_path / "busy")])
    assert result.exit_code == 1 and "not empty" in result.output
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    result = runner.invoke(app, ["quickstart", "--customers", "1500", "--out", str(tmp_path / "qs")])
    assert result.exit_code == 0, result.output
    assert "Top customers at risk" in result.output
    assert (tmp_path / "qs" / "scores.csv").is_file() and (tmp_path / "qs" / "model.json").is_file()
