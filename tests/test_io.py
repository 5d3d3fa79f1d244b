"""Tests for churnrisk._io: atomic writes that never replace a user's file without permission."""

from __future__ import annotations

import io
import os
import stat

import numpy as np
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


def feature_like() -> pd.DataFrame:
    """The dtypes of a feature table, with the awkward cases: missing values, unused categories."""
    return pd.DataFrame(
        {
            "customer_id": np.array([3, 1, 2, 7], dtype="int64"),
            "orders_30d": np.array([0, 2, 1, 5], dtype="int32"),
            "spend_30d": np.array([0.5, np.nan, 2.25, 1e-05], dtype="float32"),
            "ratio": np.array([np.nan, 1 / 3, 2.0, 1e20]),
            "open": np.array([True, False, True, True]),
            "plan": pd.Categorical(["pro", None, "basic", "pro"], categories=["team", "pro", "basic"]),
            "group": pd.Categorical([None] * 4, categories=pd.Index(["detractor"], dtype="str")),
            "segment": pd.array(["smb", None, 'a "big", one', "mid"], dtype="str"),
            "signup_at": pd.to_datetime(
                ["2024-01-01", None, "2024-02-03 04:05:06.789", "2024-03-01"], format="ISO8601"
            ),
            "changed_at": pd.to_datetime(["2024-01-01", None, "2024-07-01", "2024-01-02"]).tz_localize(
                "Europe/Prague"
            ),
        }
    )


def pandas_round_trip(frame: pd.DataFrame, path) -> pd.DataFrame:
    """What pandas' own Parquet writer gives back: the reference for the fast writer."""
    frame.to_parquet(path, index=False)
    return pd.read_parquet(path)


def test_parquet_reads_back_in_pandas_as_pandas_own_writer_does(tmp_path):
    frame = feature_like()
    back = pd.read_parquet(write_table(frame, tmp_path / "features.parquet"))
    assert_frame_equal(back, frame)
    assert_frame_equal(back, pandas_round_trip(frame, tmp_path / "reference.parquet"))
    assert back["plan"].cat.categories.tolist() == ["team", "pro", "basic"]  # unused, in order
    assert not back["plan"].cat.ordered


def test_parquet_reads_back_in_polars_and_pyarrow(tmp_path):
    import pyarrow.parquet as pq

    path = write_table(feature_like(), tmp_path / "features.parquet")
    back = pl.read_parquet(path)
    assert back.schema["orders_30d"] == pl.Int32 and back.schema["spend_30d"] == pl.Float32
    assert back.schema["plan"] == pl.Enum(["team", "pro", "basic"])
    assert back["spend_30d"].null_count() == 1 and not back["spend_30d"].is_nan().any()  # NaN: missing
    plan = pq.read_schema(path).field("plan").type
    assert (plan.value_type, plan.ordered) == ("string", False)


@pytest.mark.parametrize(
    "column",
    [
        pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
        pd.array([1, None, 3], dtype="Int64"),
        pd.array(["a", None, "c"], dtype="string"),
        pd.Series([1, "two", 3.0], dtype=object),
        pd.Categorical([1, 2, 1]),
    ],
    ids=["ordered-categorical", "nullable-int", "string-na", "object", "int-categories"],
)
def test_other_dtypes_keep_the_pandas_writer(tmp_path, column):
    frame = pd.DataFrame({"customer_id": [1, 2, 3], "x": column})
    if frame["x"].dtype == object:
        frame["x"] = frame["x"].astype(str)  # mixed objects: Parquet needs one type; text it is
    back = pd.read_parquet(write_table(frame, tmp_path / "out.parquet"))
    assert_frame_equal(back, pandas_round_trip(frame, tmp_path / "reference.parquet"))


def test_csv_is_the_text_pandas_writes(tmp_path):
    frame = feature_like().drop(columns=["signup_at", "changed_at", "spend_30d", "ratio"])
    frame["score"] = np.array([0.25, np.nan, 1 / 3, 12.5], dtype="float32")
    path = write_table(frame, tmp_path / "features.csv")
    assert path.read_text() == frame.to_csv(index=False)


def test_csv_numbers_read_back_the_same(tmp_path):
    frame = feature_like()
    back = pd.read_csv(write_table(frame, tmp_path / "features.csv"))
    reference = pd.read_csv(io.StringIO(frame.to_csv(index=False)))
    assert_frame_equal(back, reference)


def test_keyed_puts_the_index_first_without_warning_on_a_fragmented_frame():
    import warnings

    from churnrisk._io import keyed

    frame = pd.DataFrame(index=pd.Index([3, 1, 2], name="customer_id"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # building it column by column warns too
        for i in range(150):  # one block per column: what reset_index warns about
            frame[f"f{i}"] = [float(i), i + 0.5, -i]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = keyed(frame)
    assert got.columns[0] == "customer_id" and got["customer_id"].tolist() == [3, 1, 2]
    assert got["f149"].tolist() == [149.0, 149.5, -149.0] and got.shape == (3, 151)
