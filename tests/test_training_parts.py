"""Training sets stored as a folder of per-cutoff Parquet files: append == full rebuild, untouched
parts stay untouched, other options are refused, the CLI and `churnrisk train` read the folder."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pandas as pd
import polars as pl
import pytest
from pandas.testing import assert_frame_equal
from test_training import _truncate  # the store as it was at a date
from typer.testing import CliRunner

from churnrisk.cli import app
from churnrisk.errors import ChurnriskError
from churnrisk.store import EventStore
from churnrisk.training import (
    append_training_set,
    build_training_set,
    read_training_set,
    write_training_set,
)

T = pd.Timestamp
OPTIONS = {"definition": "subscription", "horizon": 30, "windows": (30, 90)}
CUTOFFS = [T("2024-03-15"), T("2024-06-15"), T("2024-09-15"), T("2024-12-15")]
NAMES = ["cutoff=2024-03-15.parquet", "cutoff=2024-06-15.parquet"]  # features; labels beside them
LABELS = ["cutoff=2024-03-15.labels.parquet", "cutoff=2024-06-15.labels.parquet"]
OLD_NS = 1_000_000_000_000_000_000  # 2001-09-09: an mtime no write can produce now


@pytest.fixture(scope="module")
def full(demo_store) -> pd.DataFrame:
    return build_training_set(demo_store, CUTOFFS, **OPTIONS)


@pytest.fixture
def july_folder(demo_store, tmp_path):
    """March and June stored in July, when June's 30-day horizon still ran past the data."""
    folder = tmp_path / "train"
    summary = write_training_set(folder, _truncate(demo_store, datetime(2024, 7, 1)), CUTOFFS[:2], **OPTIONS)
    assert summary.cutoffs == 2 and summary.censored > 0
    assert read_training_set(folder).query("cutoff == @CUTOFFS[1]")["churned"].isna().all()
    for name in [*NAMES, *LABELS]:  # an mtime the append would change if it rewrote the file
        os.utime(folder / name, ns=(OLD_NS, OLD_NS))
    return folder


def _state(folder) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_append_equals_a_full_build_with_censored_labels_filled(demo_store, full, july_folder):
    before = _state(july_folder)
    summary = append_training_set(july_folder, demo_store, CUTOFFS[1:], **OPTIONS)
    assert_frame_equal(read_training_set(july_folder), full, check_exact=True)
    assert summary.added == tuple(CUTOFFS[2:]) and summary.relabelled == (CUTOFFS[1],)
    labelled = full["churned"].notna()
    assert (summary.cutoffs, summary.rows, summary.labelled) == (4, len(full), int(labelled.sum()))
    assert summary.churned == int(full.loc[labelled, "churned"].sum())
    after = _state(july_folder)
    # March had nothing to change, June only its labels: same bytes and mtimes for the rest
    assert {n: after[n] for n in [*NAMES, LABELS[0]]} == {n: before[n] for n in [*NAMES, LABELS[0]]}
    assert after[LABELS[1]][1] != OLD_NS  # June's labels were rewritten
    assert after["training-set.json"] == before["training-set.json"]
    assert sorted(after) == [
        ".lock",  # held while writing (see test_a_second_writer_...)
        LABELS[0],
        NAMES[0],
        LABELS[1],
        NAMES[1],
        "cutoff=2024-09-15.labels.parquet",
        "cutoff=2024-09-15.parquet",
        "cutoff=2024-12-15.labels.parquet",
        "cutoff=2024-12-15.parquet",
        "training-set.json",
    ]


def test_relabelling_changes_only_the_labels(demo_store, july_folder):
    june = july_folder / LABELS[1]
    old = pl.read_parquet(june)
    append_training_set(july_folder, demo_store, CUTOFFS[:2], **OPTIONS)
    new = pl.read_parquet(june)
    assert new.columns == old.columns == ["churned", "churn_type"] and new.schema == old.schema
    assert old["churned"].null_count() == old.height and new["churned"].null_count() == 0
    expected = read_training_set(july_folder).query("cutoff == @CUTOFFS[1]")["churned"]
    assert new["churned"].to_list() == expected.tolist()  # in the rows' order


def test_nothing_to_do_touches_nothing(demo_store, july_folder):
    before = _state(july_folder)
    still_july = _truncate(demo_store, datetime(2024, 7, 1))
    summary = append_training_set(july_folder, still_july, CUTOFFS[:2], **OPTIONS)
    assert summary.added == () and summary.relabelled == ()  # June is still censored
    assert _state(july_folder) == before


@pytest.mark.parametrize(
    ("changed", "match"),
    [({"horizon": 60}, "horizon: 30 there, 60 now"), ({"windows": (30,)}, r"windows: \[30, 90\] there")],
)
def test_append_with_other_options_is_refused(demo_store, july_folder, changed, match):
    before = _state(july_folder)
    with pytest.raises(ChurnriskError, match=match):
        append_training_set(july_folder, demo_store, CUTOFFS, **{**OPTIONS, **changed})
    assert _state(july_folder) == before


def test_append_from_a_store_with_other_tables_is_refused(demo_store, july_folder):
    without_returns = EventStore({k: v for k, v in demo_store.tables.items() if k != "returns"})
    before = _state(july_folder)
    with pytest.raises(ChurnriskError, match=r"cutoff 2024-09-15 have other columns.*'returns_count_30d'"):
        append_training_set(july_folder, without_returns, CUTOFFS[2:], **OPTIONS)
    assert _state(july_folder) == before


def test_options_are_recorded_beside_the_parts(july_folder):
    recorded = json.loads((july_folder / "training-set.json").read_text())
    assert {k: recorded[k] for k in ("definition", "horizon", "lookback", "lead_time", "windows")} == {
        "definition": "subscription",
        "horizon": 30,
        "lookback": None,
        "lead_time": 0,
        "windows": [30, 90],
    }
    assert read_training_set(july_folder).attrs == {
        **OPTIONS,
        "lookback": None,
        "lead_time": 0,
        "windows": [30, 90],
    }


def test_a_folder_built_in_one_go_reads_back_as_the_frame(demo_store, full, tmp_path):
    folder = tmp_path / "train.v1"  # any suffix but .csv/.parquet is a folder
    write_training_set(folder, demo_store, CUTOFFS, **OPTIONS)
    assert_frame_equal(read_training_set(folder), full, check_exact=True)


def test_writing_over_a_folder(demo_store, tmp_path):
    folder = tmp_path / "train"
    write_training_set(folder, demo_store, CUTOFFS[:2], **OPTIONS)
    with pytest.raises(ChurnriskError, match="already holds a training set.*--append"):
        write_training_set(folder, demo_store, CUTOFFS[2:3], **OPTIONS)
    write_training_set(folder, demo_store, CUTOFFS[2:3], overwrite=True, **OPTIONS)
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "cutoff=2024-09-15.labels.parquet",
        "cutoff=2024-09-15.parquet",
        "training-set.json",
    ]
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"")
    with pytest.raises(ChurnriskError, match="holds other files"):
        write_training_set(other, demo_store, CUTOFFS[:1], overwrite=True, **OPTIONS)
    assert [p.name for p in other.iterdir()] == ["cat.jpg"]  # not even a lock file left in it
    with pytest.raises(ChurnriskError, match="not a training-set folder"):
        read_training_set(other)


def test_cli_folder_then_append_then_train(demo_store, demo_folder, full, tmp_path):
    data = demo_folder
    out = tmp_path / "train"
    common = ["training-set", str(data), "--horizon", "30", "--definition", "subscription",
              "--windows", "30,90", "-o", str(out), "--every", "3M"]  # fmt: skip
    first = CliRunner().invoke(app, [*common, "--first-cutoff", "2024-03-15", "--last-cutoff", "2024-06-15"])
    assert first.exit_code == 0, first.output
    assert "2 cutoffs" in first.stdout
    later = ["--first-cutoff", "2024-03-15", "--last-cutoff", "2024-12-15", "--append"]
    appended = CliRunner().invoke(app, [*common, *later])
    assert appended.exit_code == 0, appended.output
    assert "4 cutoffs" in appended.stdout and "(2 cutoff(s) computed)" in " ".join(appended.stderr.split())
    assert_frame_equal(read_training_set(out), full, check_exact=True)
    again = CliRunner().invoke(app, [*common, "--first-cutoff", "2024-03-15", "--last-cutoff", "2024-03-15"])
    assert again.exit_code == 1 and "--append" in again.stderr and "Traceback" not in again.output
    other = CliRunner().invoke(app, [*common, *later[:-1], "--horizon", "60", "--append"])
    assert other.exit_code == 1 and "horizon: 30 there, 60 now" in " ".join(other.stderr.split())
    model = tmp_path / "model.skops"
    trained = CliRunner().invoke(
        app, ["train", str(data), "--training-set", str(out), "--model", "logistic", "-o", str(model)]
    )
    assert trained.exit_code == 0, trained.output
    meta = json.loads(model.with_suffix(".json").read_text())
    assert (meta["horizon"], meta["windows"]) == (30, [30, 90])
    # the set's labelled cutoffs: Dec is censored; test on Sep, calibrate on Jun, train on Mar; the
    # refit trains on Mar and Jun and calibrates on Sep (the latest quarter of the three cutoffs)
    assert meta["cutoffs"] == {
        "train": ["2024-03-15"],
        "calibration": ["2024-06-15"],
        "test": ["2024-09-15"],
        "final_train": ["2024-03-15", "2024-06-15"],
        "final_calibration": ["2024-09-15"],
    }


def test_train_model_on_a_stored_set_equals_training_from_the_store(demo_store, tmp_path):
    from churnrisk.workflow import train_model

    cutoffs = [T("2024-01-15"), T("2024-03-15"), T("2024-06-15"), T("2024-09-15")]
    folder = tmp_path / "train"
    write_training_set(folder, demo_store, cutoffs, **OPTIONS)
    common = {"model": "logistic", "random_state": 0}
    direct = train_model(demo_store, cutoffs=cutoffs, **OPTIONS, **common).metadata
    stored = train_model(demo_store, training_set=folder, **common).metadata
    assert stored["metrics"] == direct["metrics"] and stored["cutoffs"] == direct["cutoffs"]
    assert stored["rows"] == direct["rows"]
    with pytest.raises(ChurnriskError, match="horizon: 30 there, 60 given"):
        train_model(demo_store, training_set=folder, horizon=60, **common)
    with pytest.raises(ChurnriskError, match="no rows at the cutoff.*2024-10-15"):
        train_model(demo_store, training_set=folder, cutoffs=[*cutoffs, T("2024-10-15")], **common)


def test_a_cutoff_with_a_time_of_day_and_cutoffs_from_a_generator(demo_store, tmp_path):
    noon = datetime(2024, 3, 15, 12)
    folder = tmp_path / "train"
    write_training_set(folder, demo_store, (c for c in [noon, CUTOFFS[1]]), **OPTIONS)
    assert sorted(p.name for p in folder.glob("*.parquet")) == [
        "cutoff=2024-03-15T12-00-00.labels.parquet",
        "cutoff=2024-03-15T12-00-00.parquet",
        "cutoff=2024-06-15.labels.parquet",
        "cutoff=2024-06-15.parquet",
    ]
    summary = append_training_set(folder, demo_store, iter([noon, CUTOFFS[2]]), **OPTIONS)
    assert summary.added == (CUTOFFS[2],)
    expected = build_training_set(demo_store, [noon, *CUTOFFS[1:3]], **OPTIONS)
    assert_frame_equal(read_training_set(folder), expected, check_exact=True)


def test_an_interrupted_write_leaves_a_folder_that_can_be_appended_to(demo_store, full, july_folder):
    """A labels file written without its part (the write stopped between the two files) is not
    a cutoff, is not another file, and is replaced when the cutoff is computed."""
    orphan = july_folder / "cutoff=2024-09-15.labels.parquet"
    orphan.write_bytes(b"not parquet")
    assert sorted(read_training_set(july_folder)["cutoff"].unique()) == CUTOFFS[:2]
    append_training_set(july_folder, demo_store, CUTOFFS, **OPTIONS)
    assert_frame_equal(read_training_set(july_folder), full, check_exact=True)
    write_training_set(july_folder, demo_store, CUTOFFS[:1], overwrite=True, **OPTIONS)
    assert sorted(p.name for p in july_folder.iterdir()) == [
        ".lock",
        LABELS[0],
        NAMES[0],
        "training-set.json",
    ]


@pytest.mark.skipif(os.name != "posix", reason="advisory locks: POSIX only")
def test_a_second_writer_at_the_same_time_is_refused_and_touches_nothing(demo_store, july_folder):
    import fcntl

    before = _state(july_folder)
    with open(july_folder / ".lock", "a") as other:  # another process appending right now
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for write in (
            lambda: append_training_set(july_folder, demo_store, CUTOFFS, **OPTIONS),
            lambda: write_training_set(july_folder, demo_store, CUTOFFS, overwrite=True, **OPTIONS),
        ):
            with pytest.raises(ChurnriskError, match="another churnrisk process is writing"):
                write()
        assert _state(july_folder) == before
    summary = append_training_set(july_folder, demo_store, CUTOFFS, **OPTIONS)  # once it has finished
    assert [c.date().isoformat() for c in summary.added] == ["2024-09-15", "2024-12-15"]


def _as_spark_writes(frame: pd.DataFrame, folder, *, parts: int = 3, row_group: int = 500) -> None:
    """``frame`` as a Parquet dataset: part files in order, several row groups each, and ``_SUCCESS``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    (folder / "_SUCCESS").write_bytes(b"")
    bounds = [len(frame) * k // parts for k in range(parts + 1)]
    for k, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        table = pa.Table.from_pandas(frame.iloc[a:b], preserve_index=False)
        pq.write_table(table, folder / f"part-{k:05d}-abc.snappy.parquet", row_group_size=row_group)


def test_a_parquet_dataset_reads_row_group_by_row_group_and_trains(demo_store, full, tmp_path):
    from churnrisk.training._storage import DATASET_META
    from churnrisk.workflow import train_model

    folder = tmp_path / "spark.parquet"
    plain = full.astype({"churned": "float64", "churn_type": "object"})  # as Spark writes them
    _as_spark_writes(plain, folder)
    import pyarrow.parquet as pq

    groups = [pq.ParquetFile(p).num_row_groups for p in sorted(folder.glob("part-*"))]
    assert len(groups) == 3 and min(groups) > 1  # read across files and row groups
    got = read_training_set(folder)
    assert got.attrs == {}  # no options recorded: train must be told them
    assert_frame_equal(got, full, check_exact=True, check_dtype=False, check_categorical=False)
    assert got["churned"].dtype == "Int64" and got["churned"].isna().sum() == full["churned"].isna().sum()
    (folder / DATASET_META).write_text(json.dumps({**OPTIONS, "windows": list(OPTIONS["windows"])}))
    recorded = read_training_set(folder)
    assert recorded.attrs["horizon"] == 30 and recorded.attrs["windows"] == [30, 90]
    common = {"model": "logistic", "random_state": 0}
    labelled = CUTOFFS[:3]  # December's 30 days run past the data
    from_set = train_model(demo_store, training_set=folder, cutoffs=labelled, **common).metadata
    direct = train_model(demo_store, cutoffs=labelled, **OPTIONS, **common).metadata
    assert from_set["metrics"] == direct["metrics"] and from_set["rows"] == direct["rows"]
