"""Benchmark: purchase features at one cutoff over 10M, 50M and 100M order events on one machine.

The data are bigger than what one should hold in memory at once, so both steps work in pieces:

* **Generating** writes the orders chunk by chunk (seeded numpy) as Parquet partitioned by a
  customer bucket, ``bench-data/scale-<N>M/orders/bucket=<k>/part.parquet``, with the matching
  ``customers/bucket=<k>.parquet``, sorted by customer and time inside a bucket (grouping sorted
  data is about twice as fast). Customers are bucketed by id range; a real event log would be
  bucketed by ``hash(customer_id)`` (Spark's ``bucketBy``/``partitionBy``, or one pass of
  ``pl.scan_parquet(...).sink_parquet(..., partition_by=...)``). About 20 orders per customer.
* **Computing** runs the default engine's Polars executor (the same declarations as
  ``build_features``) on one bucket at a time and writes each bucket's feature rows to
  ``features/bucket=<k>.parquet``. Every feature is per customer and a bucket holds all of a
  customer's events, so the pieces are exact, and peak memory is that of one bucket
  (``--rows-per-bucket``), whatever the total.

Each size is measured in a fresh interpreter, so its peak RSS (``ru_maxrss``) is its own; the
generation time is not included.

Usage::

    python benchmarks/bench_scale.py                        # 10M, 50M and 100M events
    python benchmarks/bench_scale.py --sizes 10 --keep      # 10M only, keep the data
    python benchmarks/bench_scale.py --sizes 100 --rows-per-bucket 10000000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
START = np.datetime64("2021-01-01T00:00:00", "s")
SPAN_S = 3 * 365 * 86_400
CUTOFF = datetime(2023, 6, 30)
ORDERS_PER_CUSTOMER = 20
CATEGORIES = np.array(["books", "shoes", "toys", "food", "garden", "beauty", "pets", "sports"])


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    return (START + rng.integers(0, SPAN_S, n).astype("timedelta64[s]")).astype("datetime64[us]")


def generate(folder: Path, *, orders: int, rows_per_bucket: int, seed: int = 0) -> None:
    """Write ``orders`` order events and their customers, one customer bucket at a time."""
    customers = max(1, orders // ORDERS_PER_CUSTOMER)
    buckets = max(1, -(-orders // rows_per_bucket))
    edges = np.linspace(0, customers, buckets + 1).astype(np.int64)
    sizes = np.diff(np.linspace(0, orders, buckets + 1).astype(np.int64))
    (folder / "customers").mkdir(parents=True, exist_ok=True)
    for k in range(buckets):
        rng = np.random.default_rng([seed, k])
        ids = np.arange(edges[k] + 1, edges[k + 1] + 1)
        pl.DataFrame(
            {"customer_id": ids, "signup_at": _times(rng, len(ids)) - np.timedelta64(365, "D")}
        ).write_parquet(folder / "customers" / f"bucket={k}.parquet")
        n = int(sizes[k])
        part = folder / "orders" / f"bucket={k}"
        part.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(
            {
                "customer_id": rng.integers(edges[k] + 1, edges[k + 1] + 1, n),
                "ordered_at": _times(rng, n),
                "amount": rng.gamma(2.0, 30.0, n).round(2),
                "category": pl.Series(CATEGORIES[rng.integers(0, len(CATEGORIES), n)], dtype=pl.Categorical),
            }
        ).sort("customer_id", "ordered_at").write_parquet(part / "part.parquet")
    (folder / "DONE").write_text(json.dumps({"orders": orders, "customers": customers, "buckets": buckets}))


def child(folder: Path) -> None:
    """Purchase features at CUTOFF, bucket by bucket, with the default engine's executor."""
    from churnrisk.features._polars import feature_frame

    out = folder / "features"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    t0 = time.perf_counter()
    rows = events = 0
    for part in sorted((folder / "orders").iterdir(), key=lambda p: int(p.name.split("=")[1])):
        k = part.name.split("=")[1]
        tables = {
            "customers": pl.read_parquet(folder / "customers" / f"bucket={k}.parquet"),
            "orders": pl.read_parquet(part / "part.parquet").with_columns(pl.col("category").cast(pl.String)),
        }
        features = feature_frame(tables, CUTOFF, (30, 90, 180, 365), presorted=True)
        features.write_parquet(out / f"bucket={k}.parquet")
        rows += features.height
        events += tables["orders"].height
        del tables, features
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": seconds, "peak_gib": peak, "customers": rows, "events": events}))


def _measure(folder: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(folder)], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _disk_gib(folder: Path) -> float:
    return sum(p.stat().st_size for p in (folder / "orders").rglob("*.parquet")) / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,50,100", help="millions of order events, comma-separated")
    parser.add_argument("--rows-per-bucket", type=int, default=5_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated data of 100M and more")
    parser.add_argument("--child", type=Path, default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"{'events':>12} {'customers':>11} {'buckets':>8} {'parquet':>9} {'time':>8} {'peak RSS':>10}")
    for millions in (int(s) for s in args.sizes.split(",")):
        folder = ROOT / "bench-data" / f"scale-{millions}M"
        if not (folder / "DONE").exists():
            shutil.rmtree(folder, ignore_errors=True)
            t0 = time.perf_counter()
            generate(folder, orders=millions * 1_000_000, rows_per_bucket=args.rows_per_bucket)
            print(f"  (generated {folder.name} in {time.perf_counter() - t0:.0f} s)", flush=True)
        meta = json.loads((folder / "DONE").read_text())
        result = _measure(folder)
        print(
            f"{result['events']:>12,} {result['customers']:>11,} {meta['buckets']:>8} "
            f"{_disk_gib(folder):>7.2f} G {result['seconds']:>6.1f} s {result['peak_gib']:>6.2f} GiB",
            flush=True,
        )
        if millions >= 100 and not args.keep:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
