"""Validation of an event store: every problem in one run (DESIGN §1).

Each check is a small function ``(store, as_of) -> list[Problem]``; :func:`validate` runs them all
and adds the problems found while reading. Exact repeated rows in a table without an id column are
a warning only: two identical purchases on one day are genuine in real retail data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from churnrisk.contract import ACTIVITY_TABLES, SCORE_RANGES, TABLES
from churnrisk.errors import DataError, Problem
from churnrisk.store import N_EXAMPLES, EventStore, StoreConfig, read_config

__all__ = ["ValidationReport", "load_store", "validate"]


@dataclass
class ValidationReport:
    """The problems found in a store, and the size of each table."""

    problems: list[Problem] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tables": self.rows,
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.warnings],
        }


def validate(store: EventStore, *, as_of: datetime | None = None) -> ValidationReport:
    """Check ``store`` against the contract; return every problem found (never raises for bad data)."""
    problems = list(store.load_problems)
    for check in CHECKS:
        problems.extend(check(store, as_of))
    return ValidationReport(problems, {name: frame.height for name, frame in store.tables.items()})


def load_store(
    source: str | os.PathLike[str] | EventStore,
    *,
    config: str | os.PathLike[str] | StoreConfig | None = None,
    as_of: datetime | None = None,
    encoding: str | None = None,
) -> EventStore:
    """Read and validate an event store; raise :class:`DataError` listing every error.

    This is what every command that reads data calls first.
    """
    if isinstance(source, EventStore):
        store = source
    else:
        cfg = config if isinstance(config, StoreConfig) else read_config(config)
        store = EventStore.from_folder(source, config=cfg, encoding=encoding)
    report = validate(store, as_of=as_of)
    if not report.ok:
        raise DataError(report.problems)
    return store


# ---------------------------------------------------------------------- checks
Check = Callable[[EventStore, datetime | None], list[Problem]]


def _examples(frame: pl.DataFrame, column: str) -> tuple[Any, ...]:
    return tuple(frame[column].unique(maintain_order=True).head(N_EXAMPLES).to_list())


def _problem_if(
    frame: pl.DataFrame, table: str, column: str, message: str, *, severity: str = "error", **kw: Any
) -> list[Problem]:
    """A problem for the rows of ``frame`` (already filtered to the offending ones), if any."""
    if frame.height == 0:
        return []
    return [
        Problem(
            table,
            column,
            message,
            rows=frame.height,
            examples=_examples(frame, column),
            severity=severity,  # type: ignore[arg-type]
            **kw,
        )
    ]


def check_tables(store: EventStore, as_of: datetime | None) -> list[Problem]:
    failed_to_load = {p.table for p in store.load_problems}
    problems = []
    if "customers" not in store and "customers" not in failed_to_load:
        problems.append(Problem("customers", None, "missing table (customers.csv or customers.parquet)"))
    if not any(t in store or t in failed_to_load for t in ACTIVITY_TABLES):
        problems.append(
            Problem(
                "/".join(ACTIVITY_TABLES),
                None,
                "no activity table: at least one of orders, subscriptions or activity is needed",
            )
        )
    return problems


def check_missing(store: EventStore, as_of: datetime | None) -> list[Problem]:
    """Nulls in required columns, except where reading already reported the values as unreadable."""
    reported = {(p.table, p.column) for p in store.load_problems}
    problems = []
    for name, frame in store.tables.items():
        for column in TABLES[name].required:
            if (name, column) in reported:
                continue
            nulls = frame.filter(pl.col(column).is_null())
            if nulls.height:
                problems.append(
                    Problem(name, column, "missing values in a required column", rows=nulls.height)
                )
    return problems


def check_keys(store: EventStore, as_of: datetime | None) -> list[Problem]:
    problems = []
    for name, frame in store.tables.items():
        key = [k for k in TABLES[name].key if k in frame.columns]
        if key:
            repeated = frame.filter(pl.col(key[0]).is_not_null() & pl.struct(key).is_duplicated())
            problems += _problem_if(repeated, name, key[0], "repeated id")
        else:
            repeated = frame.filter(frame.is_duplicated())
            problems += _problem_if(
                repeated,
                name,
                "customer_id",
                "rows that repeat exactly (kept: they can be genuine, e.g. two identical purchases)",
                severity="warning",
            )
    return problems


def check_ranges(store: EventStore, as_of: datetime | None) -> list[Problem]:
    problems = []
    for name, frame in store.tables.items():
        for column in TABLES[name].columns:
            if column.nonnegative and column.name in frame.columns:
                negative = frame.filter(pl.col(column.name) < 0)
                problems += _problem_if(negative, name, column.name, "negative values")
    surveys = store.get("surveys")
    if surveys is not None:
        for kind, (low, high) in SCORE_RANGES.items():
            out = surveys.filter((pl.col("kind") == kind) & ~pl.col("score").is_between(low, high))
            problems += _problem_if(out, "surveys", "score", f"{kind} scores outside {low:g}-{high:g}")
    return problems


def check_customer_ids(store: EventStore, as_of: datetime | None) -> list[Problem]:
    if "customers" not in store:
        return []
    known = store["customers"].select("customer_id").unique()
    problems = []
    for name, frame in store.tables.items():
        if name == "customers":
            continue
        unknown = frame.select("customer_id").drop_nulls().join(known, on="customer_id", how="anti")
        problems += _problem_if(
            unknown, name, "customer_id", "customer ids that are not in the customers table"
        )
    return problems


def check_as_of(store: EventStore, as_of: datetime | None) -> list[Problem]:
    if as_of is None:
        return []
    problems = []
    for name, frame in store.tables.items():
        column = TABLES[name].time or ("signup_at" if "signup_at" in frame.columns else None)
        if column is None or column not in frame.columns:
            continue
        late = frame.filter(pl.col(column) > as_of)
        problems += _problem_if(late, name, column, f"events after the as-of date {as_of:%Y-%m-%d %H:%M}")
    return problems


def check_order_of_times(store: EventStore, as_of: datetime | None) -> list[Problem]:
    pairs = {"subscriptions": ("started_at", "ended_at"), "tickets": ("opened_at", "resolved_at")}
    problems = []
    for name, (first, then) in pairs.items():
        frame = store.get(name)
        if frame is not None and then in frame.columns:
            wrong = frame.filter(pl.col(then) < pl.col(first))
            problems += _problem_if(wrong, name, then, f"earlier than {first}")
    return problems


def check_overlapping_spells(store: EventStore, as_of: datetime | None) -> list[Problem]:
    """Subscription spells of one customer may touch but not overlap (a plan change is a new row)."""
    spells = store.get("subscriptions")
    if spells is None:
        return []
    end = pl.col("ended_at") if "ended_at" in spells.columns else pl.lit(None, pl.Datetime("us"))
    overlapping = (
        spells.select("customer_id", "started_at", end.alias("ended_at"))
        .drop_nulls(["customer_id", "started_at"])
        .sort("customer_id", "started_at")
        .with_columns(
            previous_end=pl.col("ended_at").shift(1).over("customer_id"),
            previous_open=(pl.col("ended_at").is_null().shift(1).over("customer_id")),
        )
        .filter(
            pl.col("previous_open").fill_null(False)
            | (pl.col("started_at") < pl.col("previous_end")).fill_null(False)
        )
    )
    return _problem_if(
        overlapping,
        "subscriptions",
        "customer_id",
        "overlapping subscription spells of one customer (a spell starts before the previous one ends)",
    )


CHECKS: tuple[Check, ...] = (
    check_tables,
    check_missing,
    check_keys,
    check_ranges,
    check_customer_ids,
    check_as_of,
    check_order_of_times,
    check_overlapping_spells,
)
