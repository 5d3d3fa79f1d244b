"""train / evaluate / score / quickstart through the command line."""

from __future__ import annotations

import json
import os
import pickle
import re

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


def _snapshot_model(tmp_path) -> list[str]:
    _table(tmp_path / "t.csv")
    args = ["--table", str(tmp_path / "t.csv"), "--label", "Churn", "--id", "customerID"]
    result = runner.invoke(app, ["train", *args, "-o", str(tmp_path / "m.skops")])
    assert result.exit_code == 0, result.output
    return ["score", str(tmp_path / "m.skops"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "s.csv")]


def test_score_tiers_and_contact_list_as_asked(tmp_path):
    score = _snapshot_model(tmp_path)
    result = runner.invoke(app, [*score, "--medium", "0.3", "--high", "0.6", "--top-percent", "10"])
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "s.csv")
    p = scores["churn_probability"]
    assert (scores["risk_tier"] == np.where(p >= 0.6, "high", np.where(p >= 0.3, "medium", "low"))).all()
    assert scores["contact"].tolist() == [True] * 40 + [False] * 360  # 10 % of 400, the first ones
    churners = p[:40].sum()
    assert f"Contact list: 40 customers, expected to hold {churners:,.1f} churners" in " ".join(
        result.output.split()
    )
    assert "revenue at risk per year" in result.output  # in the summary's title
    assert "nan" not in result.output  # a snapshot table without revenue: no revenue in the list


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--top", "5", "--top-percent", "3"], "one of them"),
        (["--medium", "0.6", "--high", "0.5"], "0 <= medium <= high <= 1"),
    ],
)
def test_score_refuses_contradicting_options(tmp_path, options, message):
    result = runner.invoke(app, [*_snapshot_model(tmp_path), *options])
    assert result.exit_code == 1 and message in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "s.csv").exists()


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
        app,
        [
            "score",
            str(model),
            str(data),
            "--as-of",
            "2024-12-31",
            "-o",
            str(tmp_path / "s.parquet"),
            "--top",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(tmp_path / "s.parquet")
    listed = scores[scores["contact"]]
    assert len(listed) == 20 and listed.index.tolist() == list(range(20))
    said = " ".join(result.output.split())
    assert f"{listed['churn_probability'].sum():,.1f} churners" in said
    assert f"{listed['revenue_at_risk'].sum():,.0f} of revenue at risk per year" in said
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


@pytest.mark.parametrize(
    ("output", "metrics", "message"),
    [
        ("m", None, "a model file ends in .skops; got '.*m'. Suggestion: -o .*m.skops"),
        ("m.pkl", None, "ends in .skops; got '.*m.pkl'"),
        (
            "x.skops",
            "x.json",
            "--metrics .*x.json is the model's own metadata file .*--metrics .*x.metrics.json",
        ),
    ],
)
def test_train_refuses_model_paths_before_any_work(tmp_path, output, metrics, message):
    args = ["train", str(tmp_path / "no-such-folder"), "-o", str(tmp_path / output)]
    if metrics:
        args += ["--metrics", str(tmp_path / metrics)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.search(message, " ".join(result.output.split())), result.output
    assert list(tmp_path.iterdir()) == []


def test_train_on_a_table_file_suggests_snapshot_mode(tmp_path):
    _table(tmp_path / "t.csv")
    result = runner.invoke(app, ["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.skops")])
    assert result.exit_code == 1
    assert f"churnrisk train --table {tmp_path / 't.csv'} --label COLUMN" in " ".join(result.output.split())
    assert not (tmp_path / "m.skops").exists()


@pytest.mark.slow
def test_train_with_a_named_test_cutoff_and_no_refit(tmp_path, demo_folder):
    model = tmp_path / "m.skops"
    result = runner.invoke(
        app,
        [
            "train",
            str(demo_folder),
            "--definition",
            "subscription",
            "--horizon",
            "60",
            "--cutoffs",
            "2024-01-01,2024-02-01,2024-03-01,2024-04-01,2024-06-01,2024-07-01",
            "--test-cutoff",
            "2024-06-01",
            "--no-refit",
            "-o",
            str(model),
        ],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads(model.with_suffix(".json").read_text())
    # fit cutoffs end 60 days before 2024-06-01 (by 2024-04-02): Jan..Mar train, Apr validates; without
    # a refit July is not used
    assert meta["cutoffs"]["test"] == ["2024-06-01"]
    assert meta["cutoffs"]["train"] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert meta["cutoffs"]["calibration"] == ["2024-04-01"] == meta["cutoffs"]["final_calibration"]
    assert meta["refit"] is False and meta["model"] == meta["selection"]["winner"]
    text = " ".join(result.output.split())
    assert f"Chosen on the validation slice: {meta['model']}" in text
    assert "Candidates on the validation slice" in text and "Out of time, ROC AUC" in text
