"""Out-of-core features: bucket by bucket, the same table as build_features on the whole store."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from churnrisk.cli import app
from churnrisk.contract import TABLES
from churnrisk.errors import ChurnriskError, DataError
from churnrisk.features import build_features, build_features_partitioned
from churnrisk.store import EventStore
from churnrisk.validation import load_store

CUTOFF = "2024-06-30"


@pytest.fixture(scope="module")
def parquet_store(tmp_path_factory, demo_tables):
    folder = tmp_path_factory.mktemp("store")
    for name, frame in demo_tables.items():
        if name in TABLES:
            frame.to_parquet(folder / f"{name}.parquet")
    return folder


@pytest.fixture(scope="module")
def expected(demo_store):
    return build_features(demo_store, CUTOFF)


def _as_polars(features: pd.DataFrame) -> pl.DataFrame:
    """build_features' table as Polars: categoricals back to text, sorted by id."""
    frame = pl.from_pandas(features, include_index=True, nan_to_null=False)
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String)).sort("customer_id")


def _missing_as_null(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))


def _assert_same(path, features: pd.DataFrame) -> None:
    """Same columns, same values bit for bit; missing is NaN in pandas, null or NaN in Parquet."""
    got = pl.read_parquet(path).sort("customer_id")
    want = _as_polars(features)
    assert got.columns == want.columns
    # integer counts with gaps are floats in pandas: compare values, not storage types
    assert_frame_equal(_missing_as_null(got), _missing_as_null(want), check_dtypes=False, check_exact=True)


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_equals_build_features(parquet_store, expected, tmp_path, partitions):
    out = tmp_path / "features.parquet"
    result = build_features_partitioned(parquet_store, CUTOFF, output=out, partitions=partitions)
    assert result.path == out and result.partitions == partitions
    assert result.rows == len(expected) and result.columns == expected.shape[1] + 1
    _assert_same(out, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.parquet"]  # no temp files left


def test_dtypes_follow_build_features(parquet_store, expected, tmp_path):
    out = tmp_path / "f.parquet"
    build_features_partitioned(parquet_store, CUTOFF, output=out, partitions=3)
    got = pl.read_parquet_schema(out)
    for name in ("purchases_frequency_90d", "purchases_monetary_90d"):
        assert got[name].is_numeric() and expected[name].dtype.kind in "iuf"
    assert got["customer_id"] == pl.Int64


def test_partitions_chosen_from_memory_budget(parquet_store, expected, tmp_path):
    out = tmp_path / "f.parquet"
    result = build_features_partitioned(parquet_store, CUTOFF, output=out, memory_budget=10_000_000)
    assert result.partitions > 1
    _assert_same(out, expected)
    big = build_features_partitioned(parquet_store, CUTOFF, output=tmp_path / "g.parquet")
    assert big.partitions == 1


def test_csv_store(demo_tables, tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for name, frame in demo_tables.items():
        if name in TABLES:
            frame.to_csv(folder / f"{name}.csv", index=False)
    out = tmp_path / "f.parquet"
    build_features_partitioned(folder, CUTOFF, output=out, partitions=4, windows=(30, 365))
    _assert_same(out, build_features(load_store(folder), CUTOFF, windows=(30, 365)))


def test_folder_of_parts_and_config_mapping(demo_tables, demo_store, tmp_path):
    folder = tmp_path / "store"
    (folder / "tx").mkdir(parents=True)
    demo_tables["customers"].to_parquet(folder / "customers.parquet")
    orders = demo_tables["orders"].rename(columns={"customer_id": "client", "amount": "revenue"})
    half = len(orders) // 2
    orders.iloc[:half].to_parquet(folder / "tx" / "part-0.parquet")
    orders.iloc[half:].to_parquet(folder / "tx" / "part-1.parquet")
    config = tmp_path / "mapping.toml"
    config.write_text(
        '[tables.orders]\nfile = "tx"\n[tables.orders.columns]\ncustomer_id = "client"\namount = "revenue"\n'
    )
    out = tmp_path / "f.parquet"
    build_features_partitioned(folder, CUTOFF, output=out, partitions=3, config=config)
    store = EventStore.from_frames({k: demo_tables[k] for k in ("customers", "orders")})
    _assert_same(out, build_features(store, CUTOFF))


def test_refuses_to_overwrite(parquet_store, tmp_path):
    out = tmp_path / "f.parquet"
    out.write_text("keep me")
    with pytest.raises(ChurnriskError, match="already exists"):
        build_features_partitioned(parquet_store, CUTOFF, output=out, partitions=2)
    assert out.read_text() == "keep me"
    build_features_partitioned(parquet_store, CUTOFF, output=out, partitions=2, overwrite=True)
    assert pl.read_parquet(out).height > 0


def test_bad_arguments(parquet_store, tmp_path):
    with pytest.raises(ChurnriskError, match="'partitions'"):
        build_features_partitioned(parquet_store, CUTOFF, output=tmp_path / "f.parquet", partitions=0)
    with pytest.raises(ChurnriskError, match=r"\.parquet file"):
        build_features_partitioned(parquet_store, CUTOFF, output=tmp_path / "f.csv")
    with pytest.raises(ChurnriskError, match="does not exist"):
        build_features_partitioned(tmp_path / "nowhere", CUTOFF, output=tmp_path / "f.parquet")
    assert list(tmp_path.iterdir()) == []


def test_bad_store_reports_every_bucket_and_writes_nothing(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    pl.DataFrame({"customer_id": list(range(1, 41))}).write_parquet(folder / "customers.parquet")
    ids = list(range(1, 41)) + [99, 98]  # two ids that are not customers
    amounts = [-1.0 if i % 10 == 0 else 5.0 for i in range(1, 41)] + [1.0, 1.0]  # four negatives
    pl.DataFrame(
        {
            "customer_id": ids,
            "ordered_at": [pd.Timestamp("2024-01-01").to_pydatetime()] * len(ids),
            "amount": amounts,
        }
    ).write_parquet(folder / "orders.parquet")
    out = tmp_path / "f.parquet"
    with pytest.raises(DataError) as caught:
        build_features_partitioned(folder, CUTOFF, output=out, partitions=4)
    problems = {(p.table, p.column, p.message): p for p in caught.value.errors}
    negative = problems["orders", "amount", "negative values"]
    assert negative.rows == 4 and set(negative.examples) == {-1.0}
    unknown = problems["orders", "customer_id", "customer ids that are not in the customers table"]
    assert unknown.rows == 2 and set(unknown.examples) == {98, 99}
    assert len(caught.value.errors) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_events_after_cutoff_are_not_read(demo_tables, demo_store, tmp_path):
    """A late bad row is dropped while reading: it cannot change features at the cutoff."""
    folder = tmp_path / "store"
    folder.mkdir()
    demo_tables["customers"].to_parquet(folder / "customers.parquet")
    orders = demo_tables["orders"]
    late = orders.iloc[:1].assign(ordered_at=pd.Timestamp("2030-01-01"), amount=-5.0)
    pd.concat([orders, late]).to_parquet(folder / "orders.parquet")
    out = tmp_path / "f.parquet"
    build_features_partitioned(folder, CUTOFF, output=out, partitions=2)
    store = EventStore.from_frames({k: demo_tables[k] for k in ("customers", "orders")})
    _assert_same(out, build_features(store, CUTOFF))


def test_cli_out_of_core(parquet_store, expected, tmp_path):
    out = tmp_path / "f.parquet"
    runner = CliRunner()
    args = ["features", str(parquet_store), "--cutoff", CUTOFF, "--partitions", "3", "-o", str(out)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "(3 customer buckets)" in " ".join(done.output.split())
    _assert_same(out, expected)
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.output
    assert "Traceback" not in again.output
    no_output = runner.invoke(app, ["features", str(parquet_store), "--cutoff", CUTOFF, "--out-of-core"])
    assert no_output.exit_code == 2
