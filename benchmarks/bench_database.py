"""Benchmark: one cutoff's features read from PostgreSQL (and DuckDB) against the same store in Parquet.

Generates the synthetic store of ``bench_features.py`` (10M orders plus about 6M tickets, surveys,
payments and subscription rows of 1M customers by default) as Parquet under ``bench-data/``, copies
it into the database once (``churnrisk.database.copy_store``: ADBC ``COPY`` for PostgreSQL), then
prints the time and peak memory of reading the store (only the columns the features use; from a
database, only the events up to the cutoff) plus ``build_features`` for one cutoff, each run in a
fresh subprocess so that its peak RSS is its own (the server's memory is not in it), median of
``--runs`` (with the fastest and slowest run: on a shared machine the spread matters). The target:
the database path within 2x the Parquet path's time and 1.5x its memory.

Where PostgreSQL's time goes (2M orders, a local server on the same 2 cores): the rows travel in
binary ``COPY`` and the ADBC driver decodes them at about 200 ns a row plus 40 ns a column of our
CPU, while the server spends about as much producing them; both grow with the rows read, so the
database path is bound by the rows up to the cutoff, not by the columns' types (``numeric`` aside:
it is read as ``double precision``, or it would cost twice as much).

Usage::

    python benchmarks/bench_database.py --postgres postgresql://user:pw@127.0.0.1:5432/bench
    python benchmarks/bench_database.py --postgres URL --orders 200000 --customers 20000 --runs 1
    python benchmarks/bench_database.py --duckdb-only --orders 200000 --customers 20000

The PostgreSQL URL may also come from ``CHURNRISK_BENCH_POSTGRES``; its database must exist (the
tables are created in its default schema, and replaced when their row counts differ).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import CUTOFF, ROOT, generate  # noqa: E402


def _load(folder: Path, url: str) -> None:
    """Copy the Parquet store into the database unless it holds the same row counts already."""
    from churnrisk.database import copy_store, read_database
    from churnrisk.store import EventStore

    sizes = {p.stem: pl.scan_parquet(p).select(pl.len()).collect().item() for p in folder.glob("*.parquet")}
    try:
        there = read_database(url, columns=dict.fromkeys(sizes, frozenset({"customer_id"})))
        if {name: frame.height for name, frame in there.tables.items()} == sizes:
            return
    except Exception as exc:  # any reason to (re)load
        print(f"loading the database ({type(exc).__name__})")
    t0 = time.perf_counter()
    copy_store(EventStore.from_folder(folder), url, overwrite=True)
    print(f"copied {folder.name} into {url.split('@')[-1]} in {time.perf_counter() - t0:.1f} s")


def child(source: str) -> None:
    """One measured run: read the store the way ``churnrisk features`` does, and build the features."""
    from churnrisk.features import build_features, feature_inputs
    from churnrisk.validation import load_store

    t0, c0 = time.perf_counter(), time.process_time()
    store = load_store(source, columns=feature_inputs(), until=CUTOFF)
    loaded = time.perf_counter() - t0
    frame = build_features(store, CUTOFF)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "seconds": time.perf_counter() - t0,
        "load": loaded,
        "cpu": time.process_time() - c0,
        "peak_gib": usage.ru_maxrss / 2**20,
        "shape": list(frame.shape),
    }
    print(json.dumps(figures))


def _run(source: str, runs: int) -> dict[str, float]:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, __file__, "--child", source], check=True, capture_output=True, text=True
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    figures = {k: statistics.median(r[k] for r in results) for k in ("seconds", "load", "cpu")}
    figures["fastest"] = min(r["seconds"] for r in results)
    figures["slowest"] = max(r["seconds"] for r in results)
    figures["peak_gib"] = max(r["peak_gib"] for r in results)
    figures["shape"] = results[0]["shape"]
    return figures


def _print(label: str, figures: dict[str, float], base: dict[str, float] | None = None) -> None:
    ratio = ""
    if base is not None:
        ratio = (
            f"  = {figures['seconds'] / base['seconds']:.2f}x time, "
            f"{figures['peak_gib'] / base['peak_gib']:.2f}x memory of Parquet"
        )
    print(
        f"{label:<10} {figures['seconds']:6.2f} s [{figures['fastest']:.2f}-{figures['slowest']:.2f}] "
        f"(read {figures['load']:5.2f} s, CPU {figures['cpu']:6.2f} s)"
        f"  peak {figures['peak_gib']:5.2f} GiB  shape {figures['shape']}{ratio}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("CHURNRISK_BENCH_POSTGRES"))
    parser.add_argument("--duckdb-only", action="store_true", help="no PostgreSQL: Parquet against DuckDB")
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if not args.postgres and not args.duckdb_only:
        parser.error("give --postgres URL (or CHURNRISK_BENCH_POSTGRES), or --duckdb-only")
    folder = ROOT / "bench-data" / f"database-{args.orders}-{args.customers}"
    if not (folder / "orders.parquet").exists():
        t0 = time.perf_counter()
        generate(folder, customers=args.customers, orders=args.orders)
        print(f"generated {folder} in {time.perf_counter() - t0:.1f} s")
    duck = f"duckdb://{folder.parent / (folder.name + '.duckdb')}"
    targets = {"duckdb": duck} if args.duckdb_only else {"postgresql": args.postgres, "duckdb": duck}
    for url in targets.values():
        _load(folder, url)
    print(
        f"one cutoff ({CUTOFF:%Y-%m-%d}): read the features' columns + build_features, median of {args.runs}"
    )
    base = _run(str(folder), args.runs)
    _print("parquet", base)
    for label, url in targets.items():
        _print(label, _run(url, args.runs), base)


if __name__ == "__main__":
    main()
