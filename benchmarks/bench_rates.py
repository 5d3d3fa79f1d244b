"""Benchmark: churn rates over a synthetic store of millions of events.

    python benchmarks/bench_rates.py                      # 1M customers, 10M orders, ~2M subscription rows
    python benchmarks/bench_rates.py --customers 100000 --orders 1000000

The store is generated with NumPy (seeded) straight into Polars frames, so the figures measure the
calculators, not CSV parsing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from churnrisk.rates import churn_rates, cohort_retention, repeat_rates
from churnrisk.store import EventStore

START = np.datetime64("2022-01-01T00:00:00", "us")
SPAN_US = 3 * 365 * 86_400 * 10**6
DAY_US = 86_400 * 10**6


def make_store(n_customers: int, n_orders: int, seed: int = 0) -> EventStore:
    """Customers with a segment, uniform random orders, and subscription spells with plan changes."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_customers + 1)
    customers = pl.DataFrame({"customer_id": ids, "segment": rng.choice(["a", "b", "c", "d"], n_customers)})
    orders = pl.DataFrame(
        {
            "customer_id": rng.integers(1, n_customers + 1, n_orders),
            "ordered_at": START + rng.integers(0, SPAN_US, n_orders).astype("timedelta64[us]"),
            "amount": rng.gamma(2.0, 30.0, n_orders).round(2),
        }
    )
    return EventStore(
        {"customers": customers, "orders": orders, "subscriptions": _subscriptions(rng, ids)}, source="bench"
    )


def _subscriptions(rng: np.random.Generator, ids: np.ndarray) -> pl.DataFrame:
    """Each customer: a first row, a touching plan change for half of them; 40 % churn at the end."""
    n = len(ids)
    start = START + rng.integers(0, SPAN_US // 2, n).astype("timedelta64[us]")
    change = start + (rng.integers(30, 400, n) * DAY_US).astype("timedelta64[us]")
    end = change + (rng.integers(30, 500, n) * DAY_US).astype("timedelta64[us]")
    changes = rng.random(n) < 0.5
    churns = rng.random(n) < 0.4
    first_end = np.where(changes, change, end)
    first = pl.DataFrame(
        {
            "customer_id": ids,
            "started_at": start,
            "ended_at": first_end,
            "mrr": rng.choice([10.0, 50, 200], n),
        }
    ).with_columns(pl.when(pl.lit(pl.Series(changes | churns))).then(pl.col("ended_at")).alias("ended_at"))
    second = pl.DataFrame(
        {
            "customer_id": ids[changes],
            "started_at": change[changes],
            "ended_at": end[changes],
            "mrr": rng.choice([10.0, 50, 200], int(changes.sum())),
        }
    ).with_columns(pl.when(pl.lit(pl.Series(churns[changes]))).then(pl.col("ended_at")).alias("ended_at"))
    return pl.concat([first, second])


def timed(label: str, call: Callable[[], Any]) -> Any:
    began, cpu = time.perf_counter(), time.process_time()
    result = call()
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    print(f"{label:<42} {wall:7.2f} s wall {cpu:7.2f} s CPU  ({len(result):,} rows out)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    began = time.perf_counter()
    store = make_store(args.customers, args.orders, args.seed)
    events = sum(frame.height for name, frame in store.tables.items() if name != "customers")
    print(f"{store!r}: {events:,} events, generated in {time.perf_counter() - began:.1f} s")
    timed("rates, subscription, month", lambda: churn_rates(store, period="month", definition="subscription"))
    timed("rates, subscription, day", lambda: churn_rates(store, period="day", definition="subscription"))
    timed(
        "rates, subscription, month, --by segment",
        lambda: churn_rates(store, period="month", definition="subscription", by="segment"),
    )
    timed(
        "rates, inactivity (orders), month",
        lambda: churn_rates(store, period="month", definition="inactivity"),
    )
    timed(
        "rates, inactivity (orders), week", lambda: churn_rates(store, period="week", definition="inactivity")
    )
    timed("repeat rates", lambda: repeat_rates(store))
    timed("cohort retention, subscription, month", lambda: cohort_retention(store, definition="subscription"))


if __name__ == "__main__":
    main()
