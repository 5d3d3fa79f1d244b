"""Benchmark: features at one cutoff over 10M, 50M and 100M order events on one machine.

The data are a plain event store, as a user would have it: ``orders/part-<i>.parquet`` files of
about 10M rows each in arbitrary customer and time order (written chunk by chunk, seeded numpy)
and ``customers.parquet``; about 20 orders per customer, spread over three years, half of them
after the cutoff.

What is measured is the product path, end to end:
``build_features_partitioned(folder, CUTOFF, output=...)`` -- one streaming pass that drops the
events after the cutoff and writes them into customer buckets (a hash of ``customer_id``), then
typing, validation and the default engine's executor on one bucket at a time, and the Parquet
output. The number of buckets is chosen by the function from the data size. Each size runs in a
fresh interpreter, so its peak RSS (``ru_maxrss``) is its own; wall time and CPU time (user +
system, all threads) are printed; the generation time is not included.

Usage::

    python benchmarks/bench_scale.py                        # 10M, 50M and 100M events
    python benchmarks/bench_scale.py --sizes 10 --keep      # 10M only, keep the data
    python benchmarks/bench_scale.py --sizes 100 --partitions 20
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


def generate(folder: Path, *, orders: int, rows_per_file: int = 10_000_000, seed: int = 0) -> None:
    """Write ``orders`` order events (unsorted part files) and their customers."""
    customers = max(1, orders // ORDERS_PER_CUSTOMER)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0])
    pl.DataFrame(
        {
            "customer_id": np.arange(1, customers + 1),
            "signup_at": _times(rng, customers) - np.timedelta64(365, "D"),
        }
    ).write_parquet(folder / "customers.parquet")
    (folder / "orders").mkdir(exist_ok=True)
    sizes = np.diff(np.linspace(0, orders, -(-orders // rows_per_file) + 1).astype(np.int64))
    categories = pl.Series("category", CATEGORIES)
    for i, n in enumerate(int(n) for n in sizes):
        rng = np.random.default_rng([seed, i + 1])
        pl.DataFrame(
            {
                "customer_id": rng.integers(1, customers + 1, n),
                "ordered_at": _times(rng, n),
                "amount": rng.gamma(2.0, 30.0, n).round(2),
                "category": categories.gather(rng.integers(0, len(CATEGORIES), n)),
            }
        ).write_parquet(folder / "orders" / f"part-{i:03d}.parquet")
    (folder / "DONE").write_text(json.dumps({"orders": orders, "customers": customers, "files": len(sizes)}))


def child(folder: Path, partitions: int | None) -> None:
    """Features at CUTOFF with the product function, end to end."""
    from churnrisk.features import build_features_partitioned

    t0 = time.perf_counter()
    result = build_features_partitioned(
        folder,
        CUTOFF,
        output=folder / "features.parquet",
        overwrite=True,
        windows=(30, 90, 180, 365),
        partitions=partitions,
    )
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "peak_gib": usage.ru_maxrss / 2**20,
                "customers": result.rows,
                "columns": result.columns,
                "partitions": result.partitions,
            }
        )
    )


def _measure(folder: Path, partitions: int | None) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(folder)]
    if partitions:
        command += ["--partitions", str(partitions)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _disk_gib(folder: Path) -> float:
    return sum(p.stat().st_size for p in (folder / "orders").glob("*.parquet")) / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,50,100", help="millions of order events, comma-separated")
    parser.add_argument("--partitions", type=int, default=None, help="default: chosen by the library")
    parser.add_argument("--keep", action="store_true", help="keep the generated data of 100M and more")
    parser.add_argument("--child", type=Path, default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.partitions)
        return
    header = ("events", 12), ("customers", 11), ("buckets", 8), ("parquet", 9), ("time", 8), ("CPU", 8)
    print(" ".join(f"{name:>{width}}" for name, width in header), f"{'peak RSS':>10}")
    for millions in (int(s) for s in args.sizes.split(",")):
        folder = ROOT / "bench-data" / f"scale-plain-{millions}M"
        if not (folder / "DONE").exists():
            shutil.rmtree(folder, ignore_errors=True)
            t0 = time.perf_counter()
            generate(folder, orders=millions * 1_000_000)
            print(f"  (generated {folder.name} in {time.perf_counter() - t0:.0f} s)", flush=True)
        meta = json.loads((folder / "DONE").read_text())
        result = _measure(folder, args.partitions)
        print(
            f"{meta['orders']:>12,} {result['customers']:>11,} {result['partitions']:>8} "
            f"{_disk_gib(folder):>7.2f} G {result['seconds']:>6.1f} s {result['cpu_seconds']:>6.1f} s "
            f"{result['peak_gib']:>6.2f} GiB",
            flush=True,
        )
        if millions >= 50 and not args.keep:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
