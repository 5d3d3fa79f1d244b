"""Churn over several horizons, out of time, beside Kaplan-Meier by segment and a Cox model.

Run: ``python benchmarks/bench_horizons.py [--customers 5000] [--horizons 30,90,180]`` (needs lifelines).
The demo business is cut at ``T`` = the end of the data minus the longest horizon: the models see
only events up to ``T`` (later ends of subscriptions are not known yet) and are tested on the
subscribers open at ``T``, whose outcome at every horizon is known. Anchors on the same rows:
Kaplan-Meier of relationship lengths (overall and by segment, conditional on each customer's
tenure) and a Cox proportional-hazards model on the same point-in-time features, fitted on monthly
cutoffs before ``T``. Metrics: the Brier score at each horizon, their mean over the horizons
("integrated" on this grid) and Harrell's concordance of the longest horizon's probability with the
time to churn.
"""

from __future__ import annotations

import argparse
import time
import warnings
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl

from churnrisk.demo import demo_store
from churnrisk.features import build_features
from churnrisk.horizons import churn_curves, kaplan_meier, relationships, survival_at, train_horizons
from churnrisk.labels import data_end
from churnrisk.store import EventStore

EVENT_TIME = {
    "orders": "ordered_at",
    "returns": "returned_at",
    "subscriptions": "started_at",
    "tickets": "opened_at",
    "surveys": "answered_at",
    "payments": "attempted_at",
    "activity": "occurred_at",
}
LATER_KNOWN = {"subscriptions": "ended_at", "tickets": "resolved_at"}


def known_at(store: EventStore, t: datetime) -> EventStore:
    """The store as it looked at ``t``: later events gone, later ends and resolutions unknown."""
    tables = {}
    for name, frame in store.tables.items():
        if name in EVENT_TIME:
            frame = frame.filter(pl.col(EVENT_TIME[name]) <= t)
        if name in LATER_KNOWN and LATER_KNOWN[name] in frame.columns:
            later = pl.col(LATER_KNOWN[name])
            frame = frame.with_columns(pl.when(later <= t).then(later).alias(LATER_KNOWN[name]))
        tables[name] = frame
    return EventStore.from_frames(tables)


def outcomes(store: EventStore, t: datetime) -> pd.DataFrame:
    """Subscribers open at ``t``: days from ``t`` to the end of their relationship, and whether it ended."""
    end = data_end(store)
    spells = relationships(store["subscriptions"], end)
    past = relationships(known_at(store, t)["subscriptions"], t)
    open_now = past.loc[~past["ended"], ["customer_id", "duration"]].rename(columns={"duration": "tenure"})
    total = spells.groupby("customer_id").last()  # the latest relationship: the one open at t
    out = open_now.join(total, on="customer_id")
    out["time"] = out["duration"] - out["tenure"]
    return out.set_index("customer_id")[["tenure", "time", "ended"]]


def km_probabilities(past: EventStore, t: datetime, rows: pd.DataFrame, horizons, by: str | None):
    spells = relationships(past["subscriptions"], t)
    segments = past["customers"].to_pandas().set_index("customer_id")
    groups = segments[by].reindex(spells["customer_id"]).to_numpy() if by else np.zeros(len(spells))
    row_groups = segments[by].reindex(rows.index).to_numpy() if by else np.zeros(len(rows))
    out = np.zeros((len(rows), len(horizons)))
    for g in pd.unique(groups):
        curve = kaplan_meier(spells["duration"][groups == g], spells["ended"][groups == g])
        mine = row_groups == g
        tenure = rows["tenure"].to_numpy()[mine]
        for j, h in enumerate(horizons):
            out[mine, j] = 1 - survival_at(curve, tenure + h) / survival_at(curve, tenure)
    return out


def cox_probabilities(past: EventStore, t: datetime, features: pd.DataFrame, horizons) -> np.ndarray:
    from lifelines import CoxPHFitter

    spells = relationships(past["subscriptions"], t)
    rows = []
    for cutoff in pd.date_range(t - timedelta(days=365), t - timedelta(days=30), freq="MS"):
        c = cutoff.to_pydatetime()
        at_c = outcomes_known(past, spells, c, t)
        f = build_features(past, c).reindex(at_c.index)
        rows.append(f.assign(_time=at_c["time"], _event=at_c["ended"]))
    train = pd.concat(rows)
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    medians = train[numeric].median()
    keep = [c for c in numeric if train[c].fillna(medians[c]).std() > 0]
    fit = (
        train[keep].fillna(medians[keep]).assign(_time=train["_time"].clip(lower=0.5), _event=train["_event"])
    )
    cox = CoxPHFitter(penalizer=0.1).fit(fit, "_time", "_event")
    test = features[keep].fillna(medians[keep])
    survival = cox.predict_survival_function(test, times=list(horizons)).T.to_numpy()
    return 1 - survival


def outcomes_known(past: EventStore, spells: pd.DataFrame, c: datetime, t: datetime) -> pd.DataFrame:
    """At an earlier cutoff ``c``: the open relationships' remaining time, as known at ``t``."""
    before = relationships(known_at(past, c)["subscriptions"], c)
    open_c = before.loc[~before["ended"], ["customer_id", "duration"]].rename(columns={"duration": "tenure"})
    latest = spells.groupby("customer_id").last()
    out = open_c.join(latest, on="customer_id")
    out["time"] = out["duration"] - out["tenure"]
    return out.set_index("customer_id")


def metrics(p: np.ndarray, rows: pd.DataFrame, horizons) -> dict[str, float]:
    from lifelines.utils import concordance_index

    out = {}
    for j, h in enumerate(horizons):
        churned = (rows["ended"] & (rows["time"] <= h)).to_numpy()
        out[f"brier_{h}d"] = float(np.mean((p[:, j] - churned) ** 2))
    out["integrated_brier"] = float(np.mean([out[f"brier_{h}d"] for h in horizons]))
    out["concordance"] = float(concordance_index(rows["time"], -p[:, -1], rows["ended"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--horizons", default="30,90,180")
    parser.add_argument("--model", default="auto", help="train_model's model: auto, gbm or logistic")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # lifelines' own warnings
    started = time.perf_counter()
    horizons = sorted(int(h) for h in args.horizons.split(","))
    store = demo_store(args.customers, seed=0)
    t = (pd.Timestamp(data_end(store)) - pd.Timedelta(days=horizons[-1])).normalize().to_pydatetime()
    past = known_at(store, t)
    rows = outcomes(store, t)
    model = train_horizons(past, horizons=horizons, definition="subscription", model=args.model)
    features = build_features(past, t).reindex(rows.index)
    ours = churn_curves(model, features)[[f"p_churn_{h}d" for h in horizons]].to_numpy()
    table = {
        "horizon models": metrics(ours, rows, horizons),
        "kaplan-meier": metrics(km_probabilities(past, t, rows, horizons, None), rows, horizons),
        "kaplan-meier by segment": metrics(
            km_probabilities(past, t, rows, horizons, "segment"), rows, horizons
        ),
        "cox (same features)": metrics(cox_probabilities(past, t, features, horizons), rows, horizons),
    }
    print(f"test cutoff {t:%Y-%m-%d}: {len(rows):,} subscribers open, outcomes known to +{horizons[-1]} days")
    print(pd.DataFrame(table).T.round(4).to_string())
    print(f"{time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
