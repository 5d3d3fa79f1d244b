"""``train_from_source``: what ``churnrisk train`` runs, its modes and defaults."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnrisk import workflow
from churnrisk.errors import ChurnriskError, OptionError
from churnrisk.snapshot import read_snapshot, train_snapshot
from churnrisk.training import cutoff_range, default_cutoffs
from churnrisk.validation import load_store


@pytest.fixture
def snapshot_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    age = rng.integers(18, 80, n)
    table = pd.DataFrame(
        {
            "cid": [f"C{i:04d}" for i in range(n)],
            "age": age,
            "plan": rng.choice(["a", "b"], n),
            "churn": (rng.random(n) < (age - 18) / 70).astype(int),
        }
    )
    table.to_csv(tmp_path / "snapshot.csv", index=False)
    return tmp_path / "snapshot.csv"


@pytest.mark.parametrize(
    ("given", "option"),
    [
        ({}, "DATA"),
        ({"data": "store", "table": "t.csv", "label": "y"}, "DATA"),
        ({"table": "t.csv", "label": "y", "training_set": "train/"}, "--training-set"),
        ({"table": "t.csv", "label": "y", "horizons": [30, 90]}, "--horizons"),
        ({"table": "t.csv"}, "--label"),
    ],
)
def test_options_that_do_not_go_together_name_the_option(given, option):
    with pytest.raises(OptionError) as caught:
        workflow.train_from_source(**given)
    assert caught.value.option == option


def test_a_table_file_as_data_suggests_snapshot_mode(snapshot_file):
    with pytest.raises(ChurnriskError, match="use snapshot mode: churnrisk train --table"):
        workflow.train_from_source(snapshot_file)


def test_snapshot_mode_is_train_snapshot_with_boosting_for_auto(snapshot_file):
    got = workflow.train_from_source(table=snapshot_file, label="churn", customer_col="cid", random_state=3)
    expected = train_snapshot(read_snapshot(snapshot_file), label="churn", customer_col="cid", random_state=3)
    assert got.metadata["id_column"] == "cid" and got.metadata["model"] == "gbm"
    assert got.metadata["metrics"] == expected.metadata["metrics"]


@pytest.fixture
def calls(monkeypatch):
    """The arguments the training functions are called with (nothing is trained)."""
    seen: dict[str, dict] = {}
    for name in ("train_model", "train_horizons"):
        monkeypatch.setattr(workflow, name, lambda store, _name=name, **kw: seen.setdefault(_name, kw))
    return seen


def test_event_defaults_a_90_day_horizon_and_every_cutoff_the_history_allows(demo_folder, calls):
    workflow.train_from_source(demo_folder, definition="subscription")
    options = calls["train_model"]
    assert (options["horizon"], options["lead_time"], options["definition"]) == (90, 0, "subscription")
    expected = default_cutoffs(load_store(demo_folder), horizon=90, lead_time=0, every="1M")
    assert [pd.Timestamp(c) for c in options["cutoffs"]] == expected


def test_event_cutoffs_from_a_range_and_a_stored_set_keeps_its_own_options(demo_folder, calls):
    workflow.train_from_source(demo_folder, first_cutoff="2024-01-31", last_cutoff="2024-06-30", horizon=30)
    assert calls["train_model"]["cutoffs"] == cutoff_range("2024-01-31", "2024-06-30", every="1M")
    calls.clear()
    workflow.train_from_source(demo_folder, training_set="train/")
    assert "horizon" not in calls["train_model"] and calls["train_model"]["cutoffs"] is None


def test_several_horizons_go_to_the_hazard_model(demo_folder, calls):
    workflow.train_from_source(demo_folder, horizons=[30, 90], every="2M")
    assert calls["train_horizons"]["horizons"] == [30, 90] and calls["train_horizons"]["every"] == "2M"
    assert "train_model" not in calls


def test_the_command_lines_store_is_released_before_the_fits(demo_folder, calls):
    workflow.train_from_source(demo_folder, definition="subscription")
    assert calls["train_model"]["release_store"] is True  # it loaded the store for this call alone


def test_a_released_store_trains_the_same_model_and_is_empty_after(demo_folder):
    options = {"cutoffs": ["2024-03-31", "2024-04-30", "2024-05-31", "2024-08-31"], "horizon": 60}
    options |= {"definition": "subscription", "model": "gbm"}
    kept, released = load_store(demo_folder), load_store(demo_folder)
    a = workflow.train_model(kept, **options)
    b = workflow.train_model(released, release_store=True, **options)
    assert released.tables == {} and kept.tables  # only the released store is emptied
    for key in ("metrics", "baselines", "base_rates", "reference", "risk_side"):
        assert a.metadata[key] == b.metadata[key], key
