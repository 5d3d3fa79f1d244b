"""Per-customer value out of time: BG/NBD + Gamma-Gamma, the feature model and "last period's revenue".

Run: ``python benchmarks/bench_value.py [--horizon 90] [--demo]`` (Online Retail needs ../shared/data).
Every model is fitted on what was known ``horizon`` days before the end of the data and compared
with each customer's revenue in the ``horizon`` days that followed (``churnrisk.predict_value``'s
holdout): mean absolute error, root mean squared error, and the predicted against the actual total.
``--demo`` runs the same on the synthetic demo business (order customers) instead.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from churnrisk.contract import TABLES
from churnrisk.demo import demo_store
from churnrisk.importers import import_online_retail
from churnrisk.store import EventStore
from churnrisk.value import predict_value

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail" / "online_retail.parquet"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--demo", action="store_true", help="the demo business (5,000 customers)")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.demo:
        store = demo_store(5000, seed=0)
    else:
        tables = import_online_retail(DATA).tables
        store = EventStore.from_frames({k: v for k, v in tables.items() if k in TABLES})
    forecast = predict_value(store, horizon=args.horizon, definition="inactivity")
    table = forecast.evaluation
    assert table is not None
    table = table.assign(total_error=table["predicted_total"] / table["actual_total"] - 1)
    with pd.option_context("display.width", 120):
        print(table.round(3).to_string())
    seconds = time.perf_counter() - started
    print(f"chosen: {forecast.method}; {len(forecast.table):,} customers valued; {seconds:.1f}s")


if __name__ == "__main__":
    main()
