"""Shared test fixtures: fixed seeds, the shared real datasets, a small demo store."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The real public datasets beside the project (read-only); tests that need them skip without them.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"the shared datasets are not at {SHARED_DATA}"
)


@pytest.fixture
def random_state() -> int:
    return 0


@pytest.fixture(scope="session")
def demo_tables():
    """The synthetic demo business, small: 2,000 customers (tables and ground truth, pandas)."""
    from churnrisk.demo import make_demo_data

    return make_demo_data(n_customers=2_000, seed=0)


@pytest.fixture(scope="session")
def demo_store(demo_tables):
    """The demo tables typed into an EventStore."""
    from churnrisk.contract import TABLES
    from churnrisk.store import EventStore

    return EventStore.from_frames({k: v for k, v in demo_tables.items() if k in TABLES})


@pytest.fixture(scope="session")
def demo_folder(demo_store, tmp_path_factory) -> Path:
    """The demo store written as a folder of Parquet files, as the commands read it (read-only)."""
    folder = tmp_path_factory.mktemp("demo-store")
    for name, frame in demo_store.tables.items():
        frame.write_parquet(folder / f"{name}.parquet")
    return folder


@pytest.fixture(scope="session")
def paused_demo_store(demo_store):
    """The demo store with pauses of 0 to 39 days before a customer's next subscription row (the demo
    has none), for grace periods: each row followed by another ends ``customer_id % 40`` days early,
    if it can."""
    import polars as pl

    from churnrisk.store import EventStore

    subs = demo_store["subscriptions"].sort("customer_id", "started_at")
    followed = pl.col("customer_id") == pl.col("customer_id").shift(-1)
    early = pl.col("ended_at") - pl.duration(days=pl.col("customer_id") % 40)
    subs = subs.with_columns(
        ended_at=pl.when(followed & (early > pl.col("started_at"))).then(early).otherwise(pl.col("ended_at"))
    )
    return EventStore({**demo_store.tables, "subscriptions": subs})
