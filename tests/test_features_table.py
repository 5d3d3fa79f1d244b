"""The feature table as Polars writes it: the same file as the pandas table, without pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from pandas.testing import assert_frame_equal
from test_features import CUTOFF, _tables  # the inline store worked out by hand

from churnrisk._io import keyed, write_table
from churnrisk.features import build_features, feature_table
from churnrisk.features._polars import feature_frame, prepare_tables
from churnrisk.store import EventStore


@pytest.fixture
def store() -> EventStore:
    return EventStore.from_frames(_tables())


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_written_like_the_pandas_table(store, tmp_path, suffix):
    """Byte for byte in CSV; in Parquet, read back the same by pandas (categories and all) and
    by Polars."""
    ours, theirs = tmp_path / f"polars{suffix}", tmp_path / f"pandas{suffix}"
    write_table(feature_table(store, CUTOFF, windows=[30, 90]), ours)
    write_table(keyed(build_features(store, CUTOFF, windows=[30, 90])), theirs)
    if suffix == ".csv":
        assert ours.read_text() == theirs.read_text()
        return
    assert_frame_equal(pd.read_parquet(ours), pd.read_parquet(theirs))
    assert pl.read_parquet(ours).equals(pl.read_parquet(theirs))


def test_missing_numbers_are_null_and_text_an_enum_of_sorted_values(store):
    table = feature_table(store, CUTOFF, windows=[30, 90])
    assert table.columns[0] == "customer_id" and table["customer_id"].to_list() == [1, 2, 3]
    # customer 3 ordered once: no gap between orders (by hand: usual gap needs two orders)
    assert table["purchases_usual_gap"].to_list()[2] is None
    assert not any(table[c].is_nan().any() for c, dtype in table.schema.items() if dtype.is_float())
    assert table["customer_segment"].dtype == pl.Enum(["a", "b"])
    assert table["customer_segment"].to_list() == ["a", "b", "a"]


def test_release_empties_the_store_and_gives_the_same_table(store):
    kept = feature_table(store, CUTOFF, windows=[30, 90])
    released = feature_table(store, CUTOFF, windows=[30, 90], release=True)
    assert released.equals(kept)
    assert store.tables == {}


def test_release_drops_each_table_once_its_family_is_done(store):
    """Every table is dropped by the end, from the tables handed over and from the prepared ones;
    the features are those of a run that keeps them."""
    tables = dict(store.tables)
    expected = feature_frame(dict(tables), CUTOFF.to_pydatetime(), (30, 90))
    prepared = prepare_tables(tables)
    assert len(prepared.prepared) == 7 and "customers" in prepared.tables  # every family has its table
    got = feature_frame(prepared, CUTOFF.to_pydatetime(), (30, 90), release=True)
    assert prepared.prepared == {} and prepared.tables == {}
    assert got.equals(expected)
    assert np.array_equal(got["customer_id"].to_numpy(), [1, 2, 3])
    handed_over = dict(store.tables)
    assert feature_frame(handed_over, CUTOFF.to_pydatetime(), (30, 90), release=True).equals(expected)
    assert handed_over == {}
