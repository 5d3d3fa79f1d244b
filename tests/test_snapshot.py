"""Snapshot mode: column detection, labels, and the Telco benchmark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, requires_shared_data

from churnrisk.errors import ChurnriskError
from churnrisk.snapshot import read_snapshot, snapshot_columns, to_label, train_snapshot


def _bank(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    return pd.DataFrame(
        {
            "RowNumber": np.arange(1, n + 1),
            "CustomerId": [f"C{i:05d}" for i in range(n)],
            "Surname": [f"name{i}" for i in rng.integers(0, 300, n)],
            "Geography": rng.choice(["France", "Spain"], n),
            "Age": age,
            "Balance": rng.random(n) * 1000,
            "TotalCharges": [" " if i % 50 == 0 else f"{v:.2f}" for i, v in enumerate(rng.random(n) * 100)],
            "Exited": (rng.random(n) < (age - 18) / 70).astype(int),
        }
    )


def test_id_like_and_free_text_columns_are_left_out_with_a_note():
    table = _bank()
    kept, notes = snapshot_columns(table, exclude=("Exited",))
    assert list(kept.columns) == ["Geography", "Age", "Balance", "TotalCharges"]
    assert any(n.startswith("RowNumber: left out, id-like") for n in notes)
    assert any(n.startswith("CustomerId: left out, id-like") for n in notes)
    assert any(n.startswith("Surname: left out, free text") for n in notes)
    assert any(n.startswith("TotalCharges: read as numbers (8 blank") for n in notes)
    assert kept["TotalCharges"].isna().sum() == 8


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["Yes", "No", "yes"], [1, 0, 1]), ([True, False, False], [1, 0, 0]), ([0, 1, 1], [0, 1, 1])],
)
def test_to_label(values, expected):
    assert to_label(pd.Series(values), "y").tolist() == expected


def test_label_with_three_values_is_refused():
    with pytest.raises(ChurnriskError, match="exactly two values"):
        to_label(pd.Series(["a", "b", "c"]), "Churn")


def test_train_snapshot_reports_hold_out_metrics(random_state):
    model = train_snapshot(_bank(), label="Exited", customer_col="CustomerId", random_state=random_state)
    meta = model.metadata
    assert meta["kind"] == "snapshot" and meta["id_column"] == "CustomerId"
    assert meta["metrics"]["n"] == 100 and meta["rows"] == {"train": 300, "test": 100}
    assert meta["metrics"]["roc_auc"] > 0.6  # age drives the label
    assert "Surname" not in model.features and "RowNumber" not in model.features


def test_old_id_column_warns_and_still_works(random_state):
    with pytest.warns(DeprecationWarning, match="'id_column'.*'customer_col'"):
        model = train_snapshot(_bank(200), label="Exited", id_column="CustomerId", random_state=random_state)
    expected = train_snapshot(
        _bank(200), label="Exited", customer_col="CustomerId", random_state=random_state
    )
    assert model.metadata["id_column"] == "CustomerId"
    assert model.metadata["metrics"] == expected.metadata["metrics"]


def test_missing_label_column_is_named():
    with pytest.raises(ChurnriskError, match="'Churn' is not in the table"):
        train_snapshot(_bank(), label="Churn")


@pytest.mark.realdata
@pytest.mark.slow
@requires_shared_data
def test_telco_roc_auc_at_least_0_845(random_state):
    table = read_snapshot(SHARED_DATA / "telco" / "Telco-Customer-Churn.csv")
    model = train_snapshot(table, label="Churn", customer_col="customerID", random_state=random_state)
    print("Telco hold-out metrics:", model.metadata["metrics"])
    assert model.metadata["metrics"]["n"] == 1761
    assert model.metadata["metrics"]["roc_auc"] >= 0.845
