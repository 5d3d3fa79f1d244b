"""Scoring N customers with reasons: time and peak memory.

Run: ``python benchmarks/bench_scoring.py [--customers 1000000]``. A synthetic feature table shaped
like the event-store features (8 signal families, 42 columns, some missing values, two categorical
columns; complaints, failed payments and downgrades are rare, as in real data); a gradient-boosting
model trained on 20,000 rows, then the timed part: probabilities, per-family what-if attribution and
reason sentences for every customer.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from churnrisk.model import (
    ChurnModel,
    feature_families,
    fit_calibrated,
    input_schema,
    make_pipeline,
    prepare_features,
    reference_values,
    spread_values,
)
from churnrisk.scoring import score_features

#: Mean events per 30 days; risk signals (complaints, failed payments, downgrades) are rare, as in real data.
RATES = {
    "purchases": 1.0,
    "support": 0.1,
    "surveys": 1.0,
    "payments": 0.05,
    "activity": 3.0,
    "subscription": 0.02,
}
FAMILY_COLUMNS = {
    "purchases": ["frequency_{w}d", "monetary_{w}d"],
    "support": ["tickets_{w}d", "complaints_{w}d"],
    "surveys": ["csat_mean_{w}d"],
    "payments": ["failed_{w}d"],
    "activity": ["events_{w}d"],
    "subscription": ["downgrades_{w}d", "mrr_change_{w}d"],
}


def synthetic_features(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for family, stats in FAMILY_COLUMNS.items():
        for stat in stats:
            for w in (30, 90, 180, 365):
                columns[f"{family}_{stat.format(w=w)}"] = rng.poisson(RATES[family] * w / 30, n).astype(float)
    columns["surveys_csat_last"] = np.where(rng.random(n) < 0.3, np.nan, rng.integers(1, 6, n).astype(float))
    columns["customer_tenure"] = rng.integers(0, 2000, n).astype(float)
    frame = pd.DataFrame(columns)
    frame["customer_segment"] = rng.choice(["smb", "mid_market", "enterprise"], n)
    frame["customer_country"] = rng.choice(["DE", "FR", "GB", "US", "CZ"], n)
    logit = (
        0.4 * frame["support_complaints_90d"]
        + 0.6 * frame["payments_failed_30d"]
        - 0.2 * frame["activity_events_30d"]
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-(logit - 2)))).to_numpy().astype(int)
    frame.index = pd.Index(np.arange(n), name="customer_id")
    return frame, y


def train(n: int = 20_000) -> ChurnModel:
    X, y = synthetic_features(n, seed=1)
    schema = input_schema(X)
    prepared = prepare_features(X, schema)
    cut = int(n * 0.8)
    estimator = fit_calibrated(make_pipeline(schema), prepared[:cut], y[:cut], prepared[cut:], y[cut:])
    meta = {
        "kind": "events",
        "name": "bench",
        "schema": schema,
        "reference": reference_values(prepared, schema),
        "spread": spread_values(prepared, schema),
        "families": feature_families(list(schema)),
    }
    return ChurnModel(estimator, meta)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    model = train()
    features, _ = synthetic_features(args.customers, seed=2)
    started = time.perf_counter()
    scores = score_features(model, features, revenue=pd.Series(100.0, index=features.index))
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    with_reasons = (scores["reasons"] != "").mean()
    print(
        f"scored {len(scores):,} customers x {features.shape[1]} features with reasons in {elapsed:.1f}s "
        f"({len(scores) / elapsed:,.0f}/s); peak RSS (whole process) {peak / 2**20:,.0f} MiB; "
        f"{with_reasons:.0%} have at least one reason"
    )
    print(scores.head(3).to_string())


if __name__ == "__main__":
    main()
