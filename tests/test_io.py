"""Tests for churnrisk._io: atomic writes that never replace a user's file without permission."""

from __future__ import annotations

import os
import stat

import pandas as pd
import polars as pl
import pytest
from pandas.testing import assert_frame_equal

from churnrisk._io import atomic_path, check_writable, write_table
from churnrisk.errors import ChurnriskError

FRAME = pd.DataFrame({"customer_id": [1, 2], "score": [0.25, 0.5]})


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".CSV"])
def test_write_table_round_trips(tmp_path, suffix):
    path = write_table(FRAME, tmp_path / f"scores{suffix}")
    back = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    assert_frame_equal(back, FRAME)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


def test_write_table_takes_polars(tmp_path):
    path = write_table(pl.from_pandas(FRAME), tmp_path / "scores.parquet")
    assert_frame_equal(pd.read_parquet(path), FRAME)


def test_refuses_to_overwrite_without_the_flag(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("precious\n")
    with pytest.raises(ChurnriskError, match="already exists. Suggestion: pass --overwrite"):
        write_table(FRAME, path)
    assert path.read_text() == "precious\n"
    write_table(FRAME, path, overwrite=True)
    assert_frame_equal(pd.read_csv(path), FRAME)


@pytest.mark.parametrize("name", ["scores.xlsx", "scores"])
def test_unknown_extension_is_a_clear_error(tmp_path, name):
    with pytest.raises(
        ChurnriskError, match=r"cannot tell the format of .*Suggestion: use one of \['.csv', '.parquet'\]"
    ):
        write_table(FRAME, tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_failing_writer_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text("half of it")
        raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []


def test_failing_writer_keeps_the_previous_file(tmp_path):
    target = tmp_path / "scores.parquet"
    target.write_text("old")

    class Broken(pd.DataFrame):
        def to_parquet(self, path, **kwargs):  # type: ignore[override]
            with open(path, "w") as handle:
                handle.write("partial")
            raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space left"):
        write_table(Broken(FRAME), target, overwrite=True)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["scores.parquet"]


def test_result_has_normal_permissions(tmp_path):
    path = write_table(FRAME, tmp_path / "scores.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_missing_folder_and_folder_target_are_clear_errors(tmp_path):
    with pytest.raises(ChurnriskError, match="the folder .*nope does not exist"):
        check_writable(tmp_path / "nope" / "scores.csv")
    with pytest.raises(ChurnriskError, match="is a folder"):
        check_writable(tmp_path, overwrite=True)
