"""Churn over several horizons, out of time: the hazard model beside per-horizon models, Kaplan-Meier and Cox.

Run: ``python benchmarks/bench_horizons.py [--customers 5000] [--horizons 30,90,180]`` (the demo,
subscription churn) or ``python benchmarks/bench_horizons.py --data online-retail --horizons 30,60,90
--lookback 90`` (UCI Online Retail from ../shared/data, inactivity churn). Needs lifelines.

The data are cut at ``T`` = the end of the data minus the longest horizon: every model sees only
events up to ``T`` (later ends of subscriptions are not known yet) and is tested on the customers
eligible at ``T``, whose time to churn (:func:`churnrisk.hazard.time_to_churn`) is known beyond the
longest horizon. On the same rows:

* **hazard model**: :func:`churnrisk.horizons.train_horizons` (one discrete-time hazard classifier);
* **per-horizon models** (subscription only, the design it replaced, as shipped: ``model="auto"``): one
  :func:`churnrisk.workflow.train_model` per horizon on the cutoffs whose horizon has passed, made
  monotone by a running maximum; its label is "no subscription at the horizon's end", the hazard
  model's "the subscription running at the cutoff ended" (they differ only for comebacks);
* **Kaplan-Meier** of the time to churn over the stacked monthly cutoffs before ``T`` (outcomes as
  known at ``T``), overall and by segment, and for subscriptions of relationship lengths conditional
  on each customer's tenure;
* **Cox** proportional hazards (lifelines, penalised) on the same point-in-time numeric features,
  fitted on the stacked cutoffs of the year before ``T``.

Metrics: the Brier score and ROC AUC at each horizon, the integrated Brier score (their mean over
the horizons) and Harrell's concordance of the longest horizon's probability with the time to churn.
"""

from __future__ import annotations

import argparse
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from churnrisk.contract import TABLES
from churnrisk.hazard import time_to_churn
from churnrisk.horizons import (
    churn_curves,
    churned_within,
    kaplan_meier,
    relationships,
    survival_at,
    train_horizons,
)
from churnrisk.labels import data_end
from churnrisk.scoring import eligible_features
from churnrisk.store import EventStore
from churnrisk.training import default_cutoffs
from churnrisk.workflow import train_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail" / "online_retail.parquet"
LATER_KNOWN = {"subscriptions": "ended_at", "tickets": "resolved_at"}


def known_at(store: EventStore, t: datetime) -> EventStore:
    """The store as it looked at ``t``: later events gone, later ends and resolutions unknown."""
    tables = {}
    for name, frame in store.tables.items():
        if TABLES[name].time:
            frame = frame.filter(pl.col(TABLES[name].time) <= t)
        if name in LATER_KNOWN and LATER_KNOWN[name] in frame.columns:
            later = pl.col(LATER_KNOWN[name])
            frame = frame.with_columns(pl.when(later <= t).then(later).alias(LATER_KNOWN[name]))
        tables[name] = frame
    return EventStore.from_frames(tables)


def stacked(past: EventStore, t: datetime, args: argparse.Namespace, months: int = 24) -> pd.DataFrame:
    """Time to churn at the monthly cutoffs of the ``months`` before ``t``, as known at ``t``."""
    cutoffs = [c for c in default_cutoffs(past, horizon=1) if c < pd.Timestamp(t)][-months:]
    return time_to_churn(past, cutoffs, definition=args.definition, lookback=args.lookback, until=t)


def km_probabilities(spans: pd.DataFrame, rows: pd.DataFrame, segments: pd.Series | None, horizons):
    groups = np.zeros(len(spans)) if segments is None else segments.reindex(spans["customer_id"]).to_numpy()
    mine = np.zeros(len(rows)) if segments is None else segments.reindex(rows.index).to_numpy()
    overall = kaplan_meier(spans["time"], spans["churned"])
    out = np.tile([1 - survival_at(overall, h) for h in horizons], (len(rows), 1))
    for g in pd.unique(groups):
        if (groups == g).sum() >= 200:  # a small segment keeps the overall curve
            curve = kaplan_meier(spans["time"][groups == g], spans["churned"][groups == g])
            out[mine == g] = [1 - survival_at(curve, h) for h in horizons]
    return out


def km_by_tenure(past: EventStore, t: datetime, rows: pd.DataFrame, horizons) -> np.ndarray:
    spells = relationships(past["subscriptions"], t)
    curve = kaplan_meier(spells["duration"], spells["ended"])
    tenure = spells[~spells["ended"]].set_index("customer_id")["duration"].reindex(rows.index).to_numpy()
    return np.column_stack(
        [1 - survival_at(curve, tenure + h) / survival_at(curve, tenure) for h in horizons]
    )


def cox_probabilities(past: EventStore, spans: pd.DataFrame, features: pd.DataFrame, model, horizons):
    from lifelines import CoxPHFitter

    recent = spans[spans["cutoff"] >= spans["cutoff"].max() - pd.Timedelta(days=365)]
    parts = [
        eligible_features(model, past, pd.Timestamp(c))
        .reindex(group["customer_id"])
        .assign(_time=group["time"].clip(lower=0.5).to_numpy(), _event=group["churned"].to_numpy())
        for c, group in recent.groupby("cutoff")
    ]
    train = pd.concat(parts)
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    medians = train[numeric].median()
    keep = [c for c in numeric if train[c].fillna(medians[c]).std() > 0]
    fit = train[keep].fillna(medians[keep]).assign(_time=train["_time"], _event=train["_event"])
    cox = CoxPHFitter(penalizer=0.1).fit(fit, "_time", "_event")
    test = features[keep].fillna(medians[keep])
    return 1 - cox.predict_survival_function(test, times=list(horizons)).T.to_numpy()


def per_horizon(past: EventStore, features: pd.DataFrame, horizons, args) -> np.ndarray:
    raw = []
    for h in horizons:
        cutoffs = default_cutoffs(past, horizon=h)
        fitted = train_model(past, cutoffs=cutoffs, horizon=h, definition=args.definition, model="auto")
        raw.append(fitted.predict_proba(features))
    return np.maximum.accumulate(np.column_stack(raw), axis=1)


def metrics(p: np.ndarray, rows: pd.DataFrame, horizons) -> dict[str, float]:
    from lifelines.utils import concordance_index
    from sklearn.metrics import roc_auc_score

    out = {}
    for j, h in enumerate(horizons):
        y = churned_within(rows, h)
        out[f"brier_{h}d"] = float(np.mean((p[:, j] - y) ** 2))
        out[f"auc_{h}d"] = float(roc_auc_score(y, p[:, j])) if 0 < y.sum() < len(y) else np.nan
    out["integrated_brier"] = float(np.mean([out[f"brier_{h}d"] for h in horizons]))
    out["concordance"] = float(concordance_index(rows["time"], -p[:, -1], rows["churned"]))
    return out


def load(args: argparse.Namespace) -> EventStore:
    if args.data == "demo":
        from churnrisk.demo import demo_store

        return demo_store(args.customers, seed=0)
    from churnrisk.importers import import_online_retail

    tables = import_online_retail(DATA).tables
    return EventStore.from_frames({k: v for k, v in tables.items() if k in TABLES})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=["demo", "online-retail"], default="demo")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--horizons", default="30,90,180")
    parser.add_argument(
        "--lookback", type=int, default=None, help="inactivity: days without an order = churn"
    )
    parser.add_argument("--model", default="gbm", help="gbm or logistic")
    args = parser.parse_args()
    args.definition = "subscription" if args.data == "demo" else "inactivity"
    warnings.simplefilter("ignore")  # lifelines' own warnings
    started = time.perf_counter()
    horizons = sorted(int(h) for h in args.horizons.split(","))
    args.lookback = args.lookback or horizons[0]
    store = load(args)
    t = (pd.Timestamp(data_end(store)) - pd.Timedelta(days=horizons[-1])).normalize().to_pydatetime()
    past = known_at(store, t)
    rows = time_to_churn(store, [t], definition=args.definition, lookback=args.lookback).set_index(
        "customer_id"
    )
    options = {"definition": args.definition, "lookback": args.lookback, "model": args.model}
    clock = time.perf_counter()
    hazard = train_horizons(past, horizons=horizons, **options)
    fit_seconds = time.perf_counter() - clock
    features = eligible_features(hazard, past, pd.Timestamp(t)).reindex(rows.index)
    spans = stacked(past, t, args)
    customers = past["customers"].to_pandas().set_index("customer_id")
    by = next((c for c in ("segment", "country") if c in customers.columns), None)
    table = {"hazard model": metrics(churn_curves(hazard, features).to_numpy()[:, :-1], rows, horizons)}
    if args.definition == "subscription":
        table["per-horizon models"] = metrics(per_horizon(past, features, horizons, args), rows, horizons)
        table["kaplan-meier by tenure"] = metrics(km_by_tenure(past, t, rows, horizons), rows, horizons)
    table["kaplan-meier"] = metrics(km_probabilities(spans, rows, None, horizons), rows, horizons)
    if by is not None:
        table[f"kaplan-meier by {by}"] = metrics(
            km_probabilities(spans, rows, customers[by], horizons), rows, horizons
        )
    table["cox (same features)"] = metrics(
        cox_probabilities(past, spans, features, hazard, horizons), rows, horizons
    )
    print(
        f"{args.data}, {args.definition} churn (lookback {args.lookback} d): test cutoff {t:%Y-%m-%d}, "
        f"{len(rows):,} customers eligible, outcomes known to +{horizons[-1]} days; "
        f"hazard model trained in {fit_seconds:.1f}s"
    )
    with pd.option_context("display.width", 200):
        print(pd.DataFrame(table).T.round(4).to_string())
    print(f"{time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
