"""Monitoring 12 backtested monthly cutoffs, against scoring the same cutoffs, on the demo business.

Run: ``python benchmarks/bench_monitor.py [--customers 1000000] [--cutoffs 12]``. A gradient
boosting model is trained on a small demo business (``--train-customers``, 20,000, same
generator) and monitors a demo business of ``--customers`` customers over two years: ``--cutoffs``
monthly cutoffs whose 60-day horizon has passed are backtested (plus the pending ones), drift and
freshness are measured at the last date. Then the same cutoffs are scored with
:func:`churnrisk.score_store` (probabilities, tiers and reasons): monitoring should cost about
what scoring them costs, not more. Prints wall time, CPU time and the peak memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import time

import pandas as pd

from churnrisk.demo import demo_store
from churnrisk.monitoring import monitor
from churnrisk.rates._periods import data_span
from churnrisk.scoring import score_store
from churnrisk.training import cutoff_range
from churnrisk.workflow import train_model

HORIZON = 60


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--cutoffs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-customers", type=int, default=20_000)
    args = parser.parse_args()

    small = demo_store(n_customers=args.train_customers, seed=args.seed)
    model = train_model(
        small,
        cutoffs=cutoff_range("2023-06-30", "2024-06-30"),
        horizon=HORIZON,
        definition="subscription",
        model="gbm",
    )
    started = time.perf_counter()
    store = demo_store(n_customers=args.customers, seed=args.seed + 1)
    as_of = pd.Timestamp(data_span(store)[1])
    print(f"{args.customers:,} customers: demo data in {time.perf_counter() - started:.1f} s", flush=True)
    # cutoffs are counted back from the as-of date; the two latest are pending with a 60-day horizon
    since = (as_of.normalize() - pd.DateOffset(months=args.cutoffs + 1)).normalize()

    wall, cpu = time.perf_counter(), _cpu_seconds()
    result = monitor(model, store, since=since)
    monitor_wall, monitor_cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    done = result.cutoffs.loc[result.cutoffs["status"] == "backtested", "cutoff"]
    print(
        f"monitor: {len(done)} backtested + {len(result.cutoffs) - len(done)} pending cutoffs, "
        f"{int(result.cutoffs['n'].sum()):,} customer rows, {len(result.alerts)} alert(s): "
        f"{monitor_wall:.1f} s wall, {monitor_cpu:.1f} s CPU, peak {_peak_gib():.2f} GiB",
        flush=True,
    )

    wall, cpu = time.perf_counter(), _cpu_seconds()
    scored = sum(len(score_store(model, store, cutoff=cutoff)) for cutoff in done)
    score_wall, score_cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    print(
        f"score_store at the same {len(done)} cutoffs: {scored:,} customer rows: "
        f"{score_wall:.1f} s wall, {score_cpu:.1f} s CPU, peak {_peak_gib():.2f} GiB"
    )
    print(f"monitor / scoring: {monitor_wall / score_wall:.2f} (wall), {monitor_cpu / score_cpu:.2f} (CPU)")


if __name__ == "__main__":
    main()
