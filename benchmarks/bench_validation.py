"""Benchmark: read, type and validate a large event store (``load_store``).

Generates (numpy, seeded) a clean store as Parquet -- by default 1,000,000 customers and 10,000,000
orders plus subscriptions, tickets, surveys, payments and activity -- under ``bench-data/`` (git-ignored),
then times ``churnrisk.load_store`` in a fresh process: the median of ``--repeat`` runs and the peak
resident memory of that process.

    python benchmarks/bench_validation.py                      # 1M customers, 10M orders
    python benchmarks/bench_validation.py --customers 100000 --orders 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
START = np.datetime64("2022-01-01T00:00:00", "us")
SPAN_US = 2 * 365 * 86_400 * 1_000_000  # two years of history


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    return START + rng.integers(0, SPAN_US, n).astype("timedelta64[us]")


def _customer_ids(rng: np.random.Generator, n_customers: int, n: int) -> np.ndarray:
    # Skewed: a few customers buy a lot, most buy rarely (as in retail data).
    return (rng.pareto(1.5, n) * n_customers / 20).astype(np.int64) % n_customers + 1


def make_store(folder: Path, *, n_customers: int, n_orders: int, seed: int = 0) -> None:
    """Write a clean event store of the given size as Parquet files in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1, n_customers + 1, dtype=np.int64)
    pl.DataFrame(
        {
            "customer_id": ids,
            "signup_at": START - rng.integers(0, SPAN_US, n_customers).astype("timedelta64[us]"),
            "segment": rng.choice(["smb", "mid", "enterprise"], n_customers),
        }
    ).write_parquet(folder / "customers.parquet")

    amount = np.round(rng.lognormal(3, 1, n_orders), 2)
    amount[rng.random(n_orders) < 0.01] = 0.0  # free items are valid
    pl.DataFrame(
        {
            "customer_id": _customer_ids(rng, n_customers, n_orders),
            "ordered_at": _times(rng, n_orders),
            "amount": amount,
            "order_id": pl.int_range(n_orders, eager=True).cast(pl.String),
            "category": rng.choice(["books", "toys", "apparel", "home"], n_orders),
        }
    ).write_parquet(folder / "orders.parquet")

    _write_subscriptions(folder, rng, ids[rng.random(n_customers) < 0.3])
    n_small = n_orders // 20
    events = {
        "tickets": {
            "opened_at": _times(rng, n_small),
            "is_complaint": rng.random(n_small) < 0.2,
            "ticket_id": pl.int_range(n_small, eager=True).cast(pl.String),
        },
        "surveys": {
            "answered_at": _times(rng, n_small),
            "kind": rng.choice(["csat", "nps"], n_small),
            "score": rng.integers(1, 6, n_small).astype(float),
        },
        "payments": {
            "attempted_at": _times(rng, 2 * n_small),
            "status": rng.choice(["succeeded", "failed"], 2 * n_small, p=[0.95, 0.05]),
            "amount": np.round(rng.uniform(5, 200, 2 * n_small), 2),
            "payment_id": pl.int_range(2 * n_small, eager=True).cast(pl.String),
        },
        "activity": {
            "occurred_at": _times(rng, 4 * n_small),
            "event": rng.choice(["login", "export", "invite"], 4 * n_small),
        },
    }
    for name, columns in events.items():
        n = len(next(iter(columns.values())))
        frame = pl.DataFrame({"customer_id": _customer_ids(rng, n_customers, n), **columns})
        frame.write_parquet(folder / f"{name}.parquet")


def _write_subscriptions(folder: Path, rng: np.random.Generator, subscribers: np.ndarray) -> None:
    """One to three consecutive spells per subscriber; each starts where the previous one ended."""
    spells = rng.integers(1, 4, len(subscribers))
    customer = np.repeat(subscribers, spells)
    first = np.repeat(np.cumsum(spells) - spells, spells)  # index of each customer's first spell
    length = rng.integers(30, 200, len(customer)).astype("timedelta64[D]").astype("timedelta64[us]")
    before = np.cumsum(length) - length  # total length of all earlier spells (of anyone)
    started = np.repeat(_times(rng, len(subscribers)), spells) + (before - before[first])
    ended = started + length
    last = np.arange(len(customer)) - first == np.repeat(spells - 1, spells)
    open_spell = last & (rng.random(len(customer)) < 0.6)
    pl.DataFrame(
        {
            "customer_id": customer,
            "started_at": started,
            "ended_at": pl.Series(ended).set(pl.Series(open_spell), None),
            "mrr": rng.choice([29.0, 49.0, 99.0], len(customer)),
            "subscription_id": pl.int_range(len(customer), eager=True).cast(pl.String),
        }
    ).write_parquet(folder / "subscriptions.parquet")


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(folder: Path, repeat: int) -> dict[str, object]:
    """Time ``load_store`` on ``folder``; run in a fresh process so the peak RSS is its own."""
    import churnrisk  # imported here so the import is not part of the peak of the parent process

    baseline_mb = _peak_rss_mb()
    seconds, cpu, rows = [], [], {}
    for _ in range(repeat):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        store = churnrisk.load_store(folder)
        seconds.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
        rows = {name: frame.height for name, frame in store.tables.items()}
        del store  # so that the peak is one store's, not two
    report = churnrisk.validate(churnrisk.EventStore.from_folder(folder))
    return {
        "seconds": seconds,
        "median_seconds": statistics.median(seconds),
        "median_cpu_seconds": statistics.median(cpu),
        "peak_rss_mb": _peak_rss_mb(),
        "rss_after_import_mb": baseline_mb,
        "rows": rows,
        "warnings": [str(w) for w in report.warnings],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeat)))
        return

    folder = args.data / f"validation-{args.customers}c-{args.orders}o-s{args.seed}"
    if not (folder / "activity.parquet").exists():
        begin = time.perf_counter()
        make_store(folder, n_customers=args.customers, n_orders=args.orders, seed=args.seed)
        print(f"generated {folder} in {time.perf_counter() - begin:.1f} s")
    command = [sys.executable, __file__, "--measure", str(folder), "--repeat", str(args.repeat)]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    rows = result["rows"]
    print(
        "tables: "
        + ", ".join(f"{k}={v:,}" for k, v in rows.items())
        + f" (total {sum(rows.values()):,} rows)"
    )
    print(
        f"load_store (read + type + validate): median {result['median_seconds']:.2f} s wall of "
        f"{args.repeat} runs {[round(s, 2) for s in result['seconds']]}; "
        f"median CPU time (all threads) {result['median_cpu_seconds']:.2f} s"
    )
    print(f"peak RSS {result['peak_rss_mb']:,.0f} MB (after imports {result['rss_after_import_mb']:,.0f} MB)")
    for warning in result["warnings"]:
        print(f"warning: {warning}")


if __name__ == "__main__":
    main()
