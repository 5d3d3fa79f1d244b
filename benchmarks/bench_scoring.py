"""Scoring N customers with reasons: time and peak memory.

Run: ``python benchmarks/bench_scoring.py [--customers 1000000] [--repeat 3]``. Realistic features:
the demo model is trained on the demo business (``churnrisk.demo``, subscription churn, as the
quickstart does), then N customers are drawn (with replacement) from the demo's own feature rows
at its last cutoff, so every column has the generator's distribution (heavy zeros, rare complaints
and failed payments, episodes of falling activity and satisfaction, missing survey values,
categories). The timed part: probabilities, per-family what-if attribution and reason sentences
for every customer. Prints each run and the median.

``--store`` measures the whole ``churnrisk score`` command instead (imports, reading and
validating the store, features, probabilities, reasons, writing the list), with the shipped model
``models/demo-subscription.skops``, on the demo store of ``--store-customers`` customers (200,000 by
default; written once under ``bench-data/`` by ``bench_train.demo_store``): each run in a fresh
process, so that its peak memory (``ru_maxrss``) is its own; prints each run and the medians::

    python benchmarks/bench_scoring.py --store --repeat 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from churnrisk.contract import TABLES
from churnrisk.demo import make_demo_data
from churnrisk.model import ChurnModel
from churnrisk.quickstart import train_demo_model
from churnrisk.scoring import SCORING_BLOCK, score_features
from churnrisk.store import EventStore
from churnrisk.training import eligible_customers

MODEL = Path(__file__).resolve().parents[1] / "models" / "demo-subscription.skops"


def demo_model_and_rows(n_demo: int = 10_000, seed: int = 0) -> tuple[ChurnModel, pd.DataFrame]:
    """The demo model and the feature rows of the demo's eligible subscribers at its last date."""
    from churnrisk.features import build_features
    from churnrisk.rates._periods import data_span

    tables = make_demo_data(n_demo, seed=seed)
    store = EventStore.from_frames({k: v for k, v in tables.items() if k in TABLES})
    model = train_demo_model(store, random_state=seed)
    as_of = pd.Timestamp(data_span(store)[1])
    features = build_features(store, as_of)
    ids = eligible_customers(store, as_of, definition="subscription", lookback=None, horizon=60)
    return model, features.loc[features.index.isin(ids), model.features]


def synthetic_features(rows: pd.DataFrame, n: int, seed: int = 1) -> pd.DataFrame:
    """``n`` customers drawn with replacement from ``rows``, with new ids."""
    rng = np.random.default_rng(seed)
    frame = rows.iloc[rng.integers(0, len(rows), n)]
    return frame.set_axis(pd.Index(np.arange(n), name="customer_id"), axis=0)


def _cpu_seconds() -> float:
    """CPU time of this process (user + system, all threads): what the run costs on a quiet machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def score_command(customers: int, repeat: int) -> None:
    """``churnrisk score`` on the demo store of ``customers``, ``repeat`` times in fresh processes."""
    import pyarrow.parquet as pq
    from bench_train import BENCH_DATA, command, demo_store

    data = demo_store(customers, BENCH_DATA)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        out = Path(tmp) / "scores.parquet"
        for i in range(repeat):
            runs.append(command(["score", str(MODEL), str(data), "-o", str(out), "--overwrite"]))
            scored = pq.ParquetFile(out).metadata.num_rows
            print(
                f"run {i + 1}: churnrisk score on {data.name} ({scored:,} eligible customers scored): "
                f"{runs[-1]['wall_seconds']:.1f}s wall, {runs[-1]['cpu_seconds']:.1f}s CPU, "
                f"peak RSS {runs[-1]['peak_rss_mb'] / 1024:.2f} GiB",
                flush=True,
            )
    wall, cpu, peak = (
        statistics.median(r[k] for r in runs) for k in ("wall_seconds", "cpu_seconds", "peak_rss_mb")
    )
    print(
        f"churnrisk score on {data.name}, median of {len(runs)} runs: {wall:.1f}s wall, {cpu:.1f}s CPU, "
        f"peak RSS {peak / 1024:.2f} GiB ({peak:,.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--block",
        type=int,
        default=SCORING_BLOCK,
        help="customers scored at a time (a huge number: all at once)",
    )
    parser.add_argument("--store", action="store_true", help="time the whole `churnrisk score` command")
    parser.add_argument("--store-customers", type=int, default=200_000, help="demo store size for --store")
    args = parser.parse_args()
    if args.store:
        score_command(args.store_customers, args.repeat)
        return
    model, rows = demo_model_and_rows()
    features = synthetic_features(rows, args.customers)
    revenue = pd.Series(100.0, index=features.index)
    times, cpu = [], []
    for _ in range(args.repeat):
        started, started_cpu = time.perf_counter(), _cpu_seconds()
        scores = score_features(model, features, revenue=revenue, block=args.block)
        times.append(time.perf_counter() - started)
        cpu.append(_cpu_seconds() - started_cpu)
        print(f"run: {times[-1]:.1f}s wall, {cpu[-1]:.1f}s CPU (all threads)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    with_reasons = (scores["reasons"] != "").mean()
    elapsed = statistics.median(times)
    print(
        f"scored {len(scores):,} customers x {features.shape[1]} features with reasons: median "
        f"{elapsed:.1f}s wall, {statistics.median(cpu):.1f}s CPU, of {len(times)} runs "
        f"({len(scores) / elapsed:,.0f}/s); peak RSS (whole process) "
        f"{peak / 2**20:,.0f} MiB; {with_reasons:.0%} have at least one reason"
    )
    print(scores.head(3).to_string())


if __name__ == "__main__":
    main()
