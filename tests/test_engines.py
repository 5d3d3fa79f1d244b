"""What the commands run: read the store, compute on the engine asked for, write or return."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from churnrisk.engines import features_at, labels_at, training_set_over
from churnrisk.errors import OptionError
from churnrisk.features import build_features
from churnrisk.validation import load_store

CUTOFF = "2024-01-31"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three buyers. At the 31 January cutoff, with a 30-day look-back and horizon:
    1 ordered on 10 Jan and again on 20 Feb (stayed); 2 ordered on 20 Jan only (churned);
    3 last ordered in October (not eligible), and again on 10 March, so the outcome is known."""
    pd.DataFrame({"customer_id": [1, 2, 3]}).to_csv(tmp_path / "customers.csv", index=False)
    pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3, 3],
            "ordered_at": ["2024-01-10", "2024-02-20", "2024-01-20", "2023-10-01", "2024-03-10"],
            "amount": [10.0, 20.0, 5.0, 7.0, 8.0],
        }
    ).to_csv(tmp_path / "orders.csv", index=False)
    return tmp_path


def test_features_at_equal_the_features_of_the_store_and_are_written_keyed(folder, tmp_path):
    expected = build_features(load_store(folder), CUTOFF, windows=[30, 90])
    run = features_at(folder, CUTOFF, windows=[30, 90])
    assert run.written is None
    pd.testing.assert_frame_equal(run.frame, expected)
    out = tmp_path / "features.parquet"
    written = features_at(folder, CUTOFF, windows=[30, 90], output=out)
    assert (written.written, written.rows, written.columns) == (str(out), 3, expected.shape[1] + 1)
    back = pd.read_parquet(out).set_index("customer_id")
    pd.testing.assert_frame_equal(back, expected, check_dtype=False, check_index_type=False)


def test_labels_at_by_hand(folder):
    run = labels_at(folder, CUTOFF, definition="inactivity", horizon=30, lookback=30)
    assert run.frame is not None and run.written is None
    assert run.frame["churned"].to_dict() == {1: 0, 2: 1}
    assert run.frame.attrs["censored"] == 0


def test_training_set_over_writes_every_cutoff(folder, tmp_path):
    out = tmp_path / "train.parquet"
    summary = training_set_over(
        folder,
        "2024-01-15",
        CUTOFF,
        output=out,
        every="16D",
        definition="inactivity",
        horizon=30,
        lookback=30,
    )
    assert summary is not None and summary.cutoffs == 2
    assert sorted(pd.read_parquet(out)["cutoff"].dt.strftime("%Y-%m-%d").unique()) == ["2024-01-15", CUTOFF]


@pytest.mark.parametrize(
    ("call", "option"),
    [
        (lambda f: features_at(f, CUTOFF, out_of_core=True), "--out-of-core"),
        (lambda f: features_at(f, CUTOFF, partitions=2, engine="spark", output="x.parquet"), "--out-of-core"),
        (lambda f: features_at("duckdb:///no.duckdb", CUTOFF, engine="spark"), "DATA"),
        (lambda f: labels_at("postgresql://h/db", CUTOFF, engine="spark", definition="inactivity"), "DATA"),
        (lambda f: features_at(f, CUTOFF, engine="dask"), "--engine"),  # type: ignore[arg-type]
        (
            lambda f: training_set_over(
                f,
                CUTOFF,
                CUTOFF,
                output="t",
                append=True,
                engine="spark",
                definition="inactivity",
                horizon=30,
            ),
            "--append",
        ),
    ],
)
def test_options_that_do_not_fit_name_the_option(folder, call, option):
    with pytest.raises(OptionError) as caught:
        call(folder)
    assert caught.value.option == option
