"""Benchmark: point-in-time features on a large synthetic event store.

Generates the store once as Parquet under ``bench-data/`` (seeded numpy; 10M orders plus about
6M tickets, surveys, payments and subscription rows of 1M customers by default), then prints the
time and peak memory of

* one cutoff in-process (load the Parquet store + ``build_features``), median of 3, each run in a
  fresh subprocess so that peak memory (``ru_maxrss``) is that run's own;
* the whole ``churnrisk features`` command (imports, reading and validating the store, features,
  writing the Parquet file), median of 3, beside an expert's Polars lazy query of the same
  columns (:func:`polars_features`: a scan per table with the needed columns and the rows up to
  the cutoff, one ``group_by`` per table, joins), collected and written (``in-memory``) or
  streamed into the file (``streaming``); the runs are interleaved, and the ratio is taken to the
  faster engine;
* ``build_training_set`` over 12 monthly cutoffs, and ``update_training_set`` adding the 12th
  month to a stored training set of the first 11 (built beforehand in its own process, so that
  the update's time and peak memory are its own: reading the stored set, the new month, the
  combined result); then ``append_training_set`` doing the same on a folder of per-cutoff files
  (the 12th month written as new files, the labels file of the 11th, stored as censored,
  rewritten; the other files untouched);
* with ``--floor``, a floor that involves no features: reading the orders table alone plus one
  grouped sum, and a Polars lazy query of three aggregations over it;
* the same purchases/support/payments/surveys features written the idiomatic pandas way
  (``groupby().agg`` per window, a 24-column subset with the same names: see ``pandas_features``),
  and the ratio pandas / churnrisk (churnrisk computes all its columns, so the ratio is a lower
  bound); ``--check`` verifies that the subset's values, and every column of the Polars
  reference, equal ours.

Wall time and CPU time (``getrusage``, all threads) are printed: on a shared machine CPU time is
the steadier figure.

Usage::

    python benchmarks/bench_features.py                 # 10M events
    python benchmarks/bench_features.py --orders 50000000 --customers 5000000
    python benchmarks/bench_features.py --skip-pandas --runs 1
    python benchmarks/bench_features.py --command-only --check   # the command beside the Polars query
    python benchmarks/bench_features.py --child floor-read --data bench-data/features-50M  # one figure
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
START = np.datetime64("2021-01-01T00:00:00", "s")
SPAN_S = 3 * 365 * 86_400
CUTOFF = datetime(2023, 6, 30)


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    return (START + rng.integers(0, SPAN_S, n).astype("timedelta64[s]")).astype("datetime64[us]")


def generate(folder: Path, *, customers: int, orders: int, seed: int = 0) -> None:
    """Write the synthetic store (customers, orders, tickets, surveys, payments, subscriptions)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    side = orders * 3 // 20  # ~1.5M rows per side table at 10M orders: ~6M in all
    ids = np.arange(1, customers + 1)
    pl.DataFrame(
        {
            "customer_id": ids,
            "signup_at": _times(rng, customers) - np.timedelta64(365, "D"),
            "segment": rng.choice(["smb", "mid", "enterprise"], customers),
            "country": rng.choice(["CZ", "FI", "SI", "IR", "DE"], customers),
        }
    ).write_parquet(folder / "customers.parquet")
    pl.DataFrame(
        {
            "customer_id": rng.integers(1, customers + 1, orders),
            "ordered_at": _times(rng, orders),
            "amount": rng.gamma(2.0, 30.0, orders).round(2),
            "category": rng.choice(["books", "shoes", "toys", "food", "garden"], orders),
        }
    ).sort("ordered_at").write_parquet(folder / "orders.parquet")
    opened = _times(rng, side)
    pl.DataFrame(
        {
            "customer_id": rng.integers(1, customers + 1, side),
            "opened_at": opened,
            "is_complaint": rng.random(side) < 0.3,
            "resolved_at": opened + rng.integers(3600, 30 * 86_400, side).astype("timedelta64[s]"),
        }
    ).sort("opened_at").write_parquet(folder / "tickets.parquet")
    pl.DataFrame(
        {
            "customer_id": rng.integers(1, customers + 1, side),
            "answered_at": _times(rng, side),
            "kind": rng.choice(["csat", "nps"], side),
            "score": rng.integers(1, 6, side).astype(float),
        }
    ).sort("answered_at").write_parquet(folder / "surveys.parquet")
    pl.DataFrame(
        {
            "customer_id": rng.integers(1, customers + 1, side),
            "attempted_at": _times(rng, side),
            "status": np.where(rng.random(side) < 0.1, "failed", "succeeded"),
            "amount": rng.gamma(2.0, 20.0, side).round(2),
        }
    ).sort("attempted_at").write_parquet(folder / "payments.parquet")
    _subscriptions(rng, customers, side).write_parquet(folder / "subscriptions.parquet")


def _subscriptions(rng: np.random.Generator, customers: int, rows: int) -> pl.DataFrame:
    """Consecutive spells per customer (a plan change is a new row), no overlaps."""
    owner = np.sort(rng.integers(1, customers + 1, rows))
    start = _times(rng, rows)
    frame = pl.DataFrame({"customer_id": owner, "started_at": start}).sort("customer_id", "started_at")
    nxt = pl.col("started_at").shift(-1).over("customer_id")
    return frame.with_columns(
        ended_at=pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise(nxt),
        mrr=pl.lit(rng.choice([10.0, 30.0, 100.0], rows)),
        plan=pl.lit(rng.choice(["basic", "pro", "team"], rows)),
    ).with_columns(ended_at=pl.when(nxt.is_null()).then(pl.col("ended_at")).otherwise(nxt))


# ---------------------------------------------------------------------- measured runs
#: The ``churnrisk`` script's first step (``churnrisk.cli`` makes it on import), then this file.
COMMAND_PRELUDE = (
    "import runpy, sys; from churnrisk._memory import return_polars_memory; return_polars_memory(); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _run_child(mode: str, folder: Path) -> dict[str, float]:
    """Run one measurement in a fresh interpreter: its peak RSS is its own. The command's starts as
    the ``churnrisk`` script does, its memory settings made before this file loads Polars."""
    script = [__file__, "--child", mode, "--data", str(folder)]
    if mode == "command":
        script = ["-c", COMMAND_PRELUDE, *script]
    out = subprocess.run(
        [sys.executable, *script],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _command(folder: Path) -> None:
    """``churnrisk features FOLDER --cutoff ... -o features.parquet`` as a user runs it (imports,
    reading and validating the store, features, writing the file), timed from before the import."""
    t0, c0 = time.perf_counter(), time.process_time()
    from churnrisk.cli import app

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "features.parquet"
        app(
            ["features", str(folder), "--cutoff", f"{CUTOFF:%Y-%m-%d}", "-o", str(out)], standalone_mode=False
        )
        _print_written(t0, c0, out)


def _reference(folder: Path, engine: str) -> None:
    """The Polars reference query (:func:`polars_features`) run and written as a user would: the
    whole table collected and written (``in-memory``), or streamed into the file (``streaming``);
    LZ4 like ours."""
    t0, c0 = time.perf_counter(), time.process_time()
    query = polars_features(folder, CUTOFF)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "features.parquet"
        if engine == "streaming":
            query.sink_parquet(out, compression="lz4", statistics=False)
        else:
            query.collect().write_parquet(out, compression="lz4", statistics=False)
        _print_written(t0, c0, out)


def _print_written(t0: float, c0: float, out: Path) -> None:
    """The figures of a child that wrote the feature file ``out`` (started at ``t0``/``c0``)."""
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    shape = [
        pl.scan_parquet(out).select(pl.len()).collect().item(),
        pl.scan_parquet(out).collect_schema().len(),
    ]
    figures = {"seconds": seconds, "load": 0.0, "compute": seconds, "compute_cpu": cpu, "cpu": cpu}
    print(json.dumps({**figures, "peak_gib": _peak_gib(), "shape": shape}))


def child(mode: str, folder: Path) -> None:
    if mode == "command":
        _command(folder)
        return
    if mode in ("polars-in-memory", "polars-streaming"):
        _reference(folder, mode.removeprefix("polars-"))
        return
    if mode == "check-polars":
        _check_reference(folder)
        return
    if mode in ("floor-read", "floor-polars"):
        _floor(mode, folder)
        return
    from churnrisk.features import build_features, feature_inputs
    from churnrisk.store import EventStore
    from churnrisk.training import training_inputs

    t0 = time.perf_counter()
    # only the columns the features (and labels) use, as the commands and a lazy query read them
    columns = feature_inputs() if mode == "one" else training_inputs()
    store = EventStore.from_folder(folder, columns=columns) if mode != "pandas" else None
    loaded = time.perf_counter() - t0
    if mode in ("stored", "update", "stored-folder", "append-folder"):
        from churnrisk import training

        cutoffs = training.make_cutoffs("2022-07-31", "2023-06-30", every="1M")
        options = {"definition": "subscription", "horizon": 30}
        stored = folder.parent / f"{folder.name}-training-first-11-months.parquet"
        parts = folder.parent / f"{folder.name}-training-first-11-months"  # a folder, one file per cutoff
    if mode == "stored":  # the stored training set for "update" (built in its own process)
        training.build_training_set(store, cutoffs[:-1], **options).to_parquet(stored, index=False)
        print(json.dumps({"written": str(stored)}))
        return
    if mode == "stored-folder":  # the same 11 months as a folder, for "append-folder"
        training.write_training_set(parts, store, cutoffs[:-1], overwrite=True, **options)
        _as_if_censored(parts / f"cutoff={cutoffs[-2]:%Y-%m-%d}.labels.parquet")
        print(json.dumps({"written": str(parts)}))
        return
    t1, c1 = time.perf_counter(), time.process_time()
    if mode == "update":
        frame = training.update_training_set(stored, store, cutoffs[-1:], **options)
    elif mode == "append-folder":  # the 12th month written, the 11th relabelled, the rest untouched
        summary = training.append_training_set(parts, store, cutoffs, **options)
        assert len(summary.added) == 1 and len(summary.relabelled) == 1, summary
        frame = np.empty((summary.rows, summary.cutoffs))  # only its shape is printed
    elif mode == "one":
        frame = build_features(store, CUTOFF)
    elif mode == "twelve":
        from churnrisk import training

        cutoffs = training.make_cutoffs("2022-07-31", "2023-06-30", every="1M")
        frame = training.build_training_set(store, cutoffs, definition="subscription", horizon=30)
    elif mode == "pandas":  # reads the Parquet files itself
        frame = pandas_features(folder, CUTOFF)
    elif mode == "check":  # the pandas subset against the same columns of build_features
        ours = build_features(EventStore.from_folder(folder), CUTOFF)
        frame = pandas_features(folder, CUTOFF)
        common = ours.loc[frame.index, list(frame.columns)].astype(float)
        diff = float(np.nanmax(np.abs(common.to_numpy() - frame.astype(float).to_numpy())))
        same_nan = bool((common.isna().to_numpy() == frame.isna().to_numpy()).all())
        print(json.dumps({"columns": len(frame.columns), "max_abs_diff": diff, "same_missing": same_nan}))
        return
    _print_run(t0, loaded, t1, c1, frame.shape)


def _print_run(t0: float, loaded: float, t1: float, c1: float, shape: Any) -> None:
    """One child's figures as a JSON line: ``t0`` its start, ``t1``/``c1`` the start of the
    computing (wall and CPU clocks)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "seconds": time.perf_counter() - t0,
        "load": loaded,
        "compute": time.perf_counter() - t1,
        "compute_cpu": time.process_time() - c1,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_gib": _peak_gib(),
        "shape": list(shape),
    }
    print(json.dumps(figures))


def _floor(mode: str, folder: Path) -> None:
    """What any engine pays before computing features, on the orders table alone: decoding its
    three columns and one grouped sum over them (``floor-read``), or a Polars lazy query of three
    aggregations over it (``floor-polars``)."""
    t0 = time.perf_counter()
    path = folder / "orders.parquet"
    if mode == "floor-read":
        orders = pl.read_parquet(path, columns=["customer_id", "ordered_at", "amount"])
        loaded, t1, c1 = time.perf_counter() - t0, time.perf_counter(), time.process_time()
        shape: Any = np.bincount(orders["customer_id"].to_numpy(), orders["amount"].to_numpy()).shape
    else:
        loaded, t1, c1 = 0.0, t0, time.process_time()
        aggs = [pl.col("amount").sum(), pl.len(), pl.col("ordered_at").max()]
        shape = pl.scan_parquet(path).group_by("customer_id").agg(aggs).collect().shape
    _print_run(t0, loaded, t1, c1, shape)


def _as_if_censored(part: Path) -> None:
    """Blank the labels file of a stored cutoff, as it was when its horizon still ran past the data
    (so that "append-folder" also fills in one censored month, as a monthly run does)."""
    frame = pl.read_parquet(part)
    censored = [pl.lit(None, frame.schema[c]).alias(c) for c in ("churned", "churn_type")]
    frame.with_columns(censored).write_parquet(part)


def pandas_features(folder: Path, cutoff: datetime):
    """Idiomatic pandas (read_parquet, boolean masks, groupby().agg per window), a reduced set:
    purchases frequency/monetary per window, recency, tenure; support tickets/complaints per
    window; payment failures per window; last CSAT and survey recency: 24 columns."""
    import pandas as pd

    cut = pd.Timestamp(cutoff)
    parts = []
    orders = pd.read_parquet(folder / "orders.parquet")
    orders = orders[orders["ordered_at"] <= cut]
    for w in (30, 90, 180, 365):
        recent = orders[orders["ordered_at"] > cut - pd.Timedelta(days=w)]
        agg = recent.groupby("customer_id")["amount"].agg(["count", "sum"])
        parts.append(agg.set_axis([f"purchases_frequency_{w}d", f"purchases_monetary_{w}d"], axis=1))
    hist = orders.groupby("customer_id")["ordered_at"].agg(["max", "min"])
    parts.append(
        pd.DataFrame(
            {
                "purchases_recency": (cut - hist["max"]).dt.total_seconds() / 86400,
                "purchases_first_order": (cut - hist["min"]).dt.total_seconds() / 86400,
            }
        )
    )
    tickets = pd.read_parquet(folder / "tickets.parquet")
    tickets = tickets[tickets["opened_at"] <= cut]
    for w in (30, 90, 180, 365):
        recent = tickets[tickets["opened_at"] > cut - pd.Timedelta(days=w)]
        agg = recent.groupby("customer_id")["is_complaint"].agg(["count", "sum"])
        parts.append(agg.set_axis([f"support_tickets_{w}d", f"support_complaints_{w}d"], axis=1))
    payments = pd.read_parquet(folder / "payments.parquet")
    failed = payments[(payments["attempted_at"] <= cut) & (payments["status"] == "failed")]
    for w in (30, 90, 180, 365):
        recent = failed[failed["attempted_at"] > cut - pd.Timedelta(days=w)]
        parts.append(recent.groupby("customer_id").size().rename(f"payments_failed_{w}d"))
    surveys = pd.read_parquet(folder / "surveys.parquet")
    surveys = surveys[surveys["answered_at"] <= cut].sort_values("answered_at")
    csat = surveys[surveys["kind"] == "csat"].groupby("customer_id")["score"].last()
    parts.append(csat.rename("surveys_csat_last"))
    last = surveys.groupby("customer_id")["answered_at"].max()
    parts.append(((cut - last).dt.total_seconds() / 86400).rename("surveys_recency"))
    customers = pd.read_parquet(folder / "customers.parquet").set_index("customer_id")
    out = customers[customers["signup_at"] <= cut][[]].join(parts, how="left")
    counts = [
        c
        for c in out.columns
        if any(k in c for k in ("frequency", "monetary", "tickets", "complaints", "failed"))
    ]
    return out.fillna(dict.fromkeys(counts, 0))


# ---------------------------------------------------------------------- the Polars reference
WINDOWS = (30, 90, 180, 365)
_DAY_US = 86_400_000_000
# A reference part: per-customer features of one table, and the columns that are 0 (not missing)
# for a customer without rows there.
Part = tuple[pl.LazyFrame, list[str]]


def _days(span: pl.Expr) -> pl.Expr:
    return span.dt.total_microseconds() / _DAY_US


def _scan(folder: Path, table: str, columns: list[str], cutoff: datetime) -> pl.LazyFrame:
    """The table's columns up to the cutoff (projection and predicate pushed into the reader)."""
    return pl.scan_parquet(folder / f"{table}.parquet").select(columns).filter(pl.col(columns[1]) <= cutoff)


def _within(time: str, cutoff: datetime, days: int) -> pl.Expr:
    return pl.col(time) > cutoff - timedelta(days=days)


def _n(rows: pl.Expr) -> pl.Expr:
    """How many rows match (signed: counts are subtracted for trends)."""
    return rows.sum().cast(pl.Int64)


def _ref_orders(folder: Path, c: datetime) -> Part:
    t, amount = pl.col("ordered_at"), pl.col("amount")
    aggs = [t.max().alias("last"), t.min().alias("first"), pl.len().alias("n"), amount.sum().alias("spend")]
    out, counted = [], ["purchases_orders", "purchases_spend"]
    for w in WINDOWS:
        now, before = (
            _within("ordered_at", c, w),
            _within("ordered_at", c, 2 * w) & ~_within("ordered_at", c, w),
        )
        aggs += [_n(now).alias(f"n{w}"), (amount * now).sum().alias(f"m{w}")]
        aggs += [_n(before).alias(f"nb{w}"), (amount * before).sum().alias(f"mb{w}")]
        n, m, nb, mb = (pl.col(f"{k}{w}") for k in ("n", "m", "nb", "mb"))
        aov, aov_before = pl.when(n != 0).then(m / n), pl.when(nb != 0).then(mb / nb)
        out += [n.alias(f"purchases_frequency_{w}d"), m.alias(f"purchases_monetary_{w}d")]
        out += [
            (n - nb).alias(f"purchases_frequency_trend_{w}d"),
            (m - mb).alias(f"purchases_spend_trend_{w}d"),
        ]
        out += [aov.alias(f"purchases_aov_{w}d"), (aov - aov_before).alias(f"purchases_aov_trend_{w}d")]
        counted += [
            f"purchases_{k}_{w}d" for k in ("frequency", "monetary", "frequency_trend", "spend_trend")
        ]
    n, recency = pl.col("n"), _days(pl.lit(c) - pl.col("last"))
    gap = pl.when(n > 1).then(_days(pl.col("last") - pl.col("first")) / (n - 1))
    out += [
        recency.alias("purchases_recency"),
        n.alias("purchases_orders"),
        pl.col("spend").alias("purchases_spend"),
    ]
    out += [
        _days(pl.lit(c) - pl.col("first")).alias("purchases_first_order"),
        gap.alias("purchases_usual_gap"),
    ]
    out.append(pl.when(gap != 0).then(recency / gap).alias("purchases_gap_ratio"))
    orders = _scan(folder, "orders", ["customer_id", "ordered_at", "amount"], c)
    return orders.group_by("customer_id").agg(aggs).select("customer_id", *out), counted


def _ref_subscriptions(folder: Path, c: datetime) -> Part:
    start, end, mrr, cid = pl.col("started_at"), pl.col("ended_at"), pl.col("mrr"), pl.col("customer_id")
    spells = _scan(folder, "subscriptions", ["customer_id", "started_at", "ended_at", "mrr", "plan"], c)
    # the previous spell of the customer (sorted: no window function); an end after the cutoff: not yet
    spells = spells.sort("customer_id", "started_at", maintain_order=True).with_columns(
        previous=pl.when(cid == cid.shift(1)).then(mrr.shift(1)), ended_at=pl.when(end <= c).then(end)
    )
    aggs = [start.min().alias("first"), (mrr * end.is_null()).sum().alias("subscription_mrr")]
    aggs += [_n(end.is_null()).alias("subscription_open"), pl.col("plan").last().alias("subscription_plan")]
    for w in WINDOWS:
        then, now = c - timedelta(days=w), _within("started_at", c, w)
        aggs.append((mrr * ((start <= then) & (end.is_null() | (end > then)))).sum().alias(f"start{w}"))
        aggs.append(_n(now & (mrr < pl.col("previous"))).alias(f"subscription_downgrades_{w}d"))
        aggs.append(_n(now & (mrr > pl.col("previous"))).alias(f"subscription_upgrades_{w}d"))
    changes = [
        (pl.col("subscription_mrr") - pl.col(f"start{w}")).alias(f"subscription_mrr_change_{w}d")
        for w in WINDOWS
    ]
    counts = [f"subscription_{k}_{w}d" for k in ("downgrades", "upgrades") for w in WINDOWS]
    tenure = _days(pl.lit(c) - pl.col("first")).alias("subscription_tenure")
    out = ["subscription_mrr", "subscription_open", *changes, *counts, "subscription_plan"]
    counted = ["subscription_mrr", "subscription_open", *(e.meta.output_name() for e in changes), *counts]
    return spells.group_by("customer_id").agg(aggs).select("customer_id", tenure, *out), counted


def _ref_tickets(folder: Path, c: datetime) -> Part:
    opened, resolved = pl.col("opened_at"), pl.col("resolved_at")
    complaint = pl.col("is_complaint").fill_null(False)
    tickets = _scan(folder, "tickets", ["customer_id", "opened_at", "is_complaint", "resolved_at"], c)
    tickets = tickets.with_columns(resolved_at=pl.when(resolved <= c).then(resolved))
    aggs = [
        _n(resolved.is_null()).alias("support_unresolved"),
        opened.filter(complaint).max().alias("complained"),
    ]
    counted = ["support_unresolved"]
    for w in WINDOWS:
        now = _within("opened_at", c, w)
        aggs += [
            _n(now).alias(f"support_tickets_{w}d"),
            _n(now & complaint).alias(f"support_complaints_{w}d"),
        ]
        aggs.append(_days(resolved - opened).filter(now).mean().alias(f"support_resolution_days_{w}d"))
        counted += [f"support_tickets_{w}d", f"support_complaints_{w}d"]
    recency = _days(pl.lit(c) - pl.col("complained")).alias("support_complaint_recency")
    return tickets.group_by("customer_id").agg(aggs).with_columns(recency).drop("complained"), counted


def _ref_surveys(folder: Path, c: datetime) -> Part:
    score, kind = pl.col("score"), pl.col("kind")
    # in time order, so that the last row of a group is the latest answer
    answers = _scan(folder, "surveys", ["customer_id", "answered_at", "kind", "score"], c).sort("answered_at")
    csat = score.filter(kind == "csat")
    aggs = [csat.last().alias("surveys_csat_last"), csat.get(-2, null_on_oob=True).alias("surveys_csat_prev")]
    aggs += [score.filter(kind == k).last().alias(f"surveys_{k}_last") for k in ("nps", "ces")]
    aggs += [pl.col("answered_at").max().alias("answered")]
    for w in WINDOWS:
        aggs.append(
            score.filter((kind == "csat") & _within("answered_at", c, w))
            .mean()
            .alias(f"surveys_csat_mean_{w}d")
        )
    nps = pl.col("surveys_nps_last")
    group = pl.when(nps <= 6).then(pl.lit("detractor")).when(nps <= 8).then(pl.lit("passive"))
    group = group.when(nps <= 10).then(pl.lit("promoter"))
    derived = {
        "surveys_csat_trend": pl.col("surveys_csat_last") - pl.col("surveys_csat_prev"),
        "surveys_nps_group": group,
        "surveys_recency": _days(pl.lit(c) - pl.col("answered")),
    }
    return answers.group_by("customer_id").agg(aggs).with_columns(**derived).drop("answered"), []


def _ref_payments(folder: Path, c: datetime) -> Part:
    at, failed, last_ok = pl.col("attempted_at"), pl.col("status") == "failed", pl.col("last_ok")
    payments = _scan(folder, "payments", ["customer_id", "attempted_at", "status"], c)
    # each customer's last success, joined back (faster than a window function over a million groups)
    successes = payments.filter(pl.col("status") == "succeeded").group_by("customer_id").agg(last_ok=at.max())
    payments = payments.join(successes, on="customer_id", how="left")
    payments = payments.with_columns(last_ok.fill_null(datetime(1, 1, 1)))
    aggs = [
        _n(failed & (at > last_ok)).alias("payments_consecutive_failures"),
        at.filter(failed).max().alias("failed"),
    ]
    for w in WINDOWS:
        now = failed & _within("attempted_at", c, w)
        aggs.append(_n(now).alias(f"payments_failed_{w}d"))
        aggs.append(_n(now & (at < last_ok)).alias(f"payments_recovered_{w}d"))
        aggs.append(_n(now & (at > last_ok)).alias(f"payments_unrecovered_{w}d"))
    recency = _days(pl.lit(c) - pl.col("failed")).alias("payments_failure_recency")
    counted = [a.meta.output_name() for a in aggs if a.meta.output_name() != "failed"]
    return payments.group_by("customer_id").agg(aggs).with_columns(recency).drop("failed"), counted


def polars_features(folder: Path, cutoff: datetime) -> pl.LazyFrame:
    """The feature columns of ``build_features`` on this store, written the way an expert writes
    them as one Polars lazy query: a scan per table (only the needed columns, only the rows up to
    the cutoff), one ``group_by`` per table with every window a conditional aggregation, left joins
    onto the customers who signed up by the cutoff. Numbers are made 32-bit at the end, as ours
    are, so that both write the same table."""
    c = cutoff
    customers = pl.scan_parquet(folder / "customers.parquet").filter(pl.col("signup_at") <= c)
    out = customers.select(
        "customer_id",
        _days(pl.lit(c) - pl.col("signup_at")).alias("customer_tenure"),
        pl.col("segment").alias("customer_segment"),
        pl.col("country").alias("customer_country"),
    )
    counted: list[str] = []
    for part in (_ref_orders, _ref_subscriptions, _ref_tickets, _ref_surveys, _ref_payments):
        features, zeros = part(folder, c)
        out, counted = out.join(features, on="customer_id", how="left"), counted + zeros
    small = [
        pl.col(pl.Int64, pl.UInt32).exclude("customer_id").cast(pl.Int32),
        pl.col(pl.Float64).cast(pl.Float32),
    ]
    return out.sort("customer_id").with_columns(pl.col(counted).fill_null(0)).with_columns(small)


def _check_reference(folder: Path) -> None:
    """Print how far the Polars reference is from ``build_features`` on every column: the same
    customers, columns, missing values and text, numbers to a relative difference (floats are
    summed in another order, and both are 32-bit)."""
    from churnrisk.features import build_features, feature_inputs
    from churnrisk.store import EventStore

    ours = build_features(EventStore.from_folder(folder, columns=feature_inputs()), CUTOFF)
    theirs = polars_features(folder, CUTOFF).collect()
    same_ids = bool((ours.index.to_numpy() == theirs["customer_id"].to_numpy()).all())
    names = sorted(set(ours.columns) & set(theirs.columns))
    worst, same_missing, same_text = 0.0, True, True
    for name in names:
        mine = ours[name]
        if mine.dtype.kind in "if":
            a = mine.to_numpy(dtype=np.float64, na_value=np.nan)
            b = theirs[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
            both = ~np.isnan(a) & ~np.isnan(b)
            same_missing &= bool((np.isnan(a) == np.isnan(b)).all())
            scale = np.maximum(np.abs(b[both]), 1.0)  # near zero: absolute
            worst = max(worst, float((np.abs(a[both] - b[both]) / scale).max(initial=0.0)))
        else:
            text = mine.astype("string").fillna("<missing>").to_numpy()
            same_text &= bool((text == theirs[name].cast(pl.String).fill_null("<missing>").to_numpy()).all())
    only = sorted(set(ours.columns) ^ (set(theirs.columns) - {"customer_id"}))
    print(json.dumps({
        "columns": len(names), "not_in_both": only, "same_customers": same_ids and len(ours) == theirs.height,
        "same_missing": same_missing, "same_text": same_text, "max_rel_diff": worst,
    }))  # fmt: skip


def _report(label: str, runs: list[dict[str, float]]) -> dict[str, float]:
    """Print medians (wall and CPU, total and without loading) and the peak; return the medians
    and the peak."""
    med = {
        k: statistics.median(r[k] for r in runs) for k in ("seconds", "load", "compute", "compute_cpu", "cpu")
    }
    med["peak_gib"] = peak = max(r["peak_gib"] for r in runs)
    print(
        f"{label:<44} {med['seconds']:6.2f} s (load {med['load']:5.2f} s, compute {med['compute']:5.2f} s "
        f"/ CPU {med['compute_cpu']:5.2f} s; process CPU {med['cpu']:6.2f} s)  peak {peak:5.2f} GiB  "
        f"shape {runs[0]['shape']}"
    )
    return med


def _command_and_reference(folder: Path, runs: int) -> None:
    """The whole command beside the Polars reference (both engines), runs interleaved so that the
    load of a shared machine falls on each alike; the ratio is taken to the faster reference."""
    modes = ("command", "polars-in-memory", "polars-streaming")
    done: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    for _ in range(runs):
        for mode in modes:
            done[mode].append(_run_child(mode, folder))
    ours = _report("the whole `churnrisk features ... -o f.parquet`", done["command"])
    refs = {
        mode: _report(f"Polars lazy reference, {mode.removeprefix('polars-')} (written)", done[mode])
        for mode in modes[1:]
    }
    best = min(refs, key=lambda mode: refs[mode]["seconds"])
    ref = refs[best]
    print(
        f"whole command / Polars reference ({best.removeprefix('polars-')}, the faster): "
        f"wall {ours['seconds'] / ref['seconds']:.2f}x, process CPU {ours['cpu'] / ref['cpu']:.2f}x; "
        f"peak {ours['peak_gib']:.2f} vs {ref['peak_gib']:.2f} GiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--skip-twelve", action="store_true")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the values of the pandas subset and the Polars reference with ours",
    )
    parser.add_argument(
        "--command-only", action="store_true", help="only the whole command beside the Polars reference"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time reading the orders alone, and Polars over orders alone",
    )
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    folder = args.data or ROOT / "bench-data" / f"features-{args.orders // 1_000_000}M"
    if args.child:
        child(args.child, folder)
        return
    if not (folder / "orders.parquet").exists():
        t0 = time.perf_counter()
        generate(folder, customers=args.customers, orders=args.orders)
        print(f"generated {folder} in {time.perf_counter() - t0:.1f} s")
    sizes = {
        p.stem: pl.scan_parquet(p).select(pl.len()).collect().item() for p in sorted(folder.glob("*.parquet"))
    }
    print("rows:", ", ".join(f"{k}={v:,}" for k, v in sizes.items()))
    if not args.command_only:
        ours = _report(
            "one cutoff, churnrisk (load + build_features)",
            [_run_child("one", folder) for _ in range(args.runs)],
        )
    _command_and_reference(folder, args.runs)
    if args.command_only:
        if args.check:
            print("Polars reference vs build_features, every column:", _run_child("check-polars", folder))
        return
    if not args.skip_twelve:
        _report("12 monthly cutoffs, build_training_set", [_run_child("twelve", folder) for _ in range(1)])
        _run_child("stored", folder)
        _report("update_training_set: 11 stored + the 12th", [_run_child("update", folder) for _ in range(1)])
        _run_child("stored-folder", folder)
        _report(
            "append_training_set: folder of 11 + the 12th (the 11th relabelled)",
            [_run_child("append-folder", folder) for _ in range(1)],
        )
    if not args.skip_pandas:
        theirs = _report(
            "one cutoff, idiomatic pandas (24-col subset)",
            [_run_child("pandas", folder) for _ in range(args.runs)],
        )
        print(
            "pandas / churnrisk, whole run (pandas: the 24-column subset; churnrisk: all columns, "
            f"so the ratio is a lower bound): wall {theirs['seconds'] / ours['seconds']:.1f}x, "
            f"process CPU {theirs['cpu'] / ours['cpu']:.1f}x"
        )
    if args.check:
        print("pandas subset vs build_features on the same columns:", _run_child("check", folder))
        print("Polars reference vs build_features, every column:", _run_child("check-polars", folder))
    if args.floor:  # no features at all: what the reading and one pass over the largest table cost
        _report("floor: read orders (3 columns) + one bincount", [_run_child("floor-read", folder)])
        _report("floor: Polars lazy, 3 aggregations over orders", [_run_child("floor-polars", folder)])


if __name__ == "__main__":
    main()
