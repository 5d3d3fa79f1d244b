"""Validation of an event store: every problem in one run (DESIGN §1).

Each check is a small function ``(store, as_of) -> list[Problem]``; :func:`validate` runs them all
and adds the problems found while reading. A check that finds nothing costs a scan or two (a
minimum, a maximum, a null count, neighbours in a table already sorted); the rows and examples
are gathered only when something is wrong. Exact repeated rows in a table without an id column are
a warning only: two identical purchases on one day are genuine in real retail data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from churnrisk.contract import ACTIVITY_TABLES, SCORE_RANGES, TABLES
from churnrisk.database import is_database_url, read_store
from churnrisk.errors import ChurnriskError, DataError, Problem
from churnrisk.store import N_EXAMPLES, EventStore, StoreConfig, missing_values, read_config

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


def validate(store: EventStore, *, as_of: datetime | str | None = None) -> ValidationReport:
    """Check ``store`` against the contract; return every problem found (never raises for bad data).

    Parameters
    ----------
    store : EventStore
        The typed tables, with the problems already found while reading them.
    as_of : datetime or str, optional
        The date the data is as of: any event after it is an error. A time-zone-aware value is
        converted to UTC, like the timestamps in the store.

    Returns
    -------
    ValidationReport
        Errors and warnings, each naming table, column, row count and examples.

    Examples
    --------
    >>> import pandas as pd
    >>> from churnrisk import EventStore, validate
    >>> store = EventStore.from_frames({
    ...     "customers": pd.DataFrame({"customer_id": [1, 2]}),
    ...     "orders": pd.DataFrame({"customer_id": [1, 3], "ordered_at": ["2024-01-05", "2024-02-01"],
    ...                             "amount": [10.0, -2.0]}),
    ... })
    >>> for problem in validate(store).errors:
    ...     print(problem)
    orders.amount: negative values (1 row); e.g. -2.0
    orders.customer_id: customer ids that are not in the customers table (1 row); e.g. 3
    """
    cutoff = _as_naive_utc(as_of)
    problems = list(store.load_problems)
    for check in CHECKS:
        problems.extend(check(store, cutoff))
    return ValidationReport(problems, {name: frame.height for name, frame in store.tables.items()})


def _as_naive_utc(as_of: datetime | str | None) -> datetime | None:
    if as_of is None:
        return None
    try:
        stamp = pd.Timestamp(as_of)
    except (TypeError, ValueError):
        raise ChurnriskError(
            f"The 'as_of' parameter of validate must be a date. Got {as_of!r} instead. "
            "Suggestion: use YYYY-MM-DD."
        ) from None
    if stamp is pd.NaT:
        raise ChurnriskError("The 'as_of' parameter of validate must be a date. Got a missing value instead.")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def load_store(
    source: str | os.PathLike[str] | EventStore,
    *,
    config: str | os.PathLike[str] | StoreConfig | None = None,
    as_of: datetime | str | None = None,
    encoding: str | None = None,
    columns: Mapping[str, Collection[str] | None] | None = None,
    until: datetime | None = None,
) -> EventStore:
    """Read and validate an event store; raise :class:`DataError` listing every error.

    This is what every command that reads data calls first.

    Parameters
    ----------
    source : path, database URL or EventStore
        A folder of ``<table>.csv`` / ``<table>.parquet`` files, a database
        (``postgresql://...``, ``duckdb://...``, see :mod:`churnrisk.database`), or a store built
        with :meth:`EventStore.from_frames`.
    config : path or StoreConfig, optional
        The TOML file mapping the user's table and column names onto the contract.
    as_of : datetime or str, optional
        The date the data is as of; events after it are errors.
    encoding : str, optional
        Encoding of the CSV files (default UTF-8, or the config's).
    columns : mapping, optional
        Read (and check) only these tables and columns of a folder, see
        :meth:`EventStore.from_folder` (e.g. :func:`churnrisk.features.feature_inputs`).
    until : datetime, optional
        A database, and a folder's Parquet files, read (and so check) only the events up to
        ``until``, e.g. a cutoff; CSV files are read whole. Results at or before ``until`` are the
        same either way, and the time span of the store is that of all the data.

    Returns
    -------
    EventStore
        The typed store; warnings (e.g. rows that repeat exactly) do not stop it.

    Raises
    ------
    DataError
        With ``problems`` listing every error and warning found.
    ChurnriskError
        When the folder or the config file cannot be used at all.
    """
    if isinstance(source, EventStore):
        store = source
    else:
        cfg = config if isinstance(config, StoreConfig) else read_config(config)
        store = read_store(source, config=cfg, encoding=encoding, columns=columns, until=until)
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
    """``customers`` and one activity table must be there (unless reading them already failed)."""
    failed_to_load = {p.table for p in store.load_problems}
    found = f"found tables: {sorted(store.tables)}"
    if store.source not in (None, "frames") and Path(store.source).is_dir():  # type: ignore[arg-type]
        files = sorted(
            p.name for p in Path(store.source).iterdir() if p.suffix.lower() in (".csv", ".parquet")
        )
        found += f" (data files in {store.source}: {files[:10]}{' ...' if len(files) > 10 else ''})"
    in_database = is_database_url(store.source)
    where = "a customers table or view" if in_database else "customers.csv or customers.parquet"
    kind = "table, view or query" if in_database else "file"
    problems = []
    if "customers" not in store and "customers" not in failed_to_load:
        problems.append(
            Problem(
                "customers",
                None,
                f"missing table ({where}); {found}",
                suggestion=f"add the table, or name its {kind} in a --config TOML file",
            )
        )
    if not any(t in store or t in failed_to_load for t in ACTIVITY_TABLES):
        problems.append(
            Problem(
                "/".join(ACTIVITY_TABLES),
                None,
                f"no activity table: at least one of orders, subscriptions or activity is needed; {found}",
            )
        )
    return problems


def check_missing(store: EventStore, as_of: datetime | None) -> list[Problem]:
    """Nulls in required columns (tables typed by the store already reported theirs while reading).

    The examples are row numbers (1 = the first data row, i.e. line 2 of a CSV file).
    """
    reported = {(p.table, p.column) for p in store.load_problems}
    problems = []
    for name, frame in store.tables.items():
        for column in TABLES[name].required:
            if (name, column) not in reported and column in frame.columns and frame[column].null_count():
                problems += missing_values(name, column, frame[column].is_null())
    return problems


def check_keys(store: EventStore, as_of: datetime | None) -> list[Problem]:
    """Ids must be unique; in a table without an id column, exact repeats are only a warning."""
    problems = []
    for name, frame in store.tables.items():
        key = [k for k in TABLES[name].key if k in frame.columns]
        if key:
            ids = frame if frame[key[0]].null_count() == 0 else frame.filter(pl.col(key[0]).is_not_null())
            repeated = _repeated_rows(ids, key, sorted_by=[key])
            problems += _problem_if(
                repeated, name, key[0], "repeated id (the rows counted share an id with another row)"
            )
        else:
            problems += _problem_if(
                _repeated_rows(frame, sorted_by=_usual_orders(name)),
                name,
                "customer_id",
                "rows that repeat exactly (kept: they can be genuine, e.g. two identical purchases)",
                severity="warning",
            )
    return problems


def _usual_orders(table: str) -> list[list[str]]:
    """Orders an event table often comes in already: by time, or by customer and time."""
    time = TABLES[table].time
    return [[time], ["customer_id", time]] if time else [["customer_id"]]


def _repeated_rows(
    frame: pl.DataFrame, columns: list[str] | None = None, *, sorted_by: Sequence[list[str]] = ()
) -> pl.DataFrame:
    """The rows of ``frame`` whose ``columns`` (default: all) equal those of another row.

    If ``frame`` is already sorted by one of the column lists in ``sorted_by`` (each a subset of
    ``columns``), equal rows are neighbours: only the runs of rows that share those values need a
    closer look, which makes the usual case (no repeats, a table sorted by time) cost a few scans.

    Otherwise hash every row, sort the hashes and look for neighbours that are equal: on ten
    million text ids this takes well under a second where ``is_duplicated`` takes many. Only the
    rows whose hash has a twin are then compared in full, so a hash collision cannot cause a false
    report.
    """
    columns = columns or frame.columns
    for order in sorted_by:
        if set(order) <= set(columns) and _is_sorted_by(frame, order):
            frame = frame.filter(_in_run(order))
            break
    if frame.height < 2:
        return frame.clear()
    hashes = frame[columns[0]].hash() if len(columns) == 1 else frame.select(columns).hash_rows()
    ordered = hashes.sort()
    twins = ordered.slice(1).filter(ordered.slice(1) == ordered.slice(0, ordered.len() - 1))
    if twins.len() == 0:
        return frame.clear()
    candidates = frame.filter(hashes.is_in(twins.unique().implode()))
    return candidates.filter(pl.struct(columns).is_duplicated())


def _is_sorted_by(frame: pl.DataFrame, order: list[str]) -> bool:
    """Is ``frame`` sorted by the columns ``order`` (ascending; one column may also descend)?

    Columns with missing values never count as sorted.
    """
    if any(c not in frame.columns or frame[c].null_count() for c in order):
        return False
    if len(order) == 1:
        column = frame[order[0]]
        return column.is_sorted() or column.is_sorted(descending=True)
    in_order = pl.lit(True)
    for name in reversed(order):  # lexicographic: greater here, or equal here and in order after
        col, prev = pl.col(name), pl.col(name).shift(1)
        in_order = (col > prev) | ((col == prev) & in_order)
    return bool(frame.select(in_order.fill_null(True).all()).item())


def _in_run(order: list[str]) -> pl.Expr:
    """Rows that share their ``order`` values with the row before or after them."""
    same = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in order]).fill_null(False)
    return same | same.shift(-1).fill_null(False)


def check_ranges(store: EventStore, as_of: datetime | None) -> list[Problem]:
    """Finite numbers, no negative amounts (zero is a free item) and survey scores inside the range
    of their kind."""
    problems = []
    for name, frame in store.tables.items():
        for column in TABLES[name].columns:
            if column.kind == "number" and column.name in frame.columns:
                problems += _infinite(frame, name, column.name)
            if column.nonnegative and column.name in frame.columns and _below(frame[column.name], 0):
                negative = frame.filter((pl.col(column.name) < 0) & pl.col(column.name).is_finite())
                problems += _problem_if(negative, name, column.name, "negative values")
    surveys = store.get("surveys")
    if surveys is not None:
        for kind, (low, high) in SCORE_RANGES.items():
            outside = ~pl.col("score").is_between(low, high) & pl.col("score").is_finite()
            out = surveys.filter((pl.col("kind") == kind) & outside)
            problems += _problem_if(
                out, "surveys", "score", f"{kind} scores outside {low:g}-{high:g} (kind {kind!r})"
            )
    return problems


def _infinite(frame: pl.DataFrame, table: str, column: str) -> list[Problem]:
    """Rows whose number is infinite ("inf" in a CSV file, a division by zero upstream)."""
    values = frame[column]
    if not values.dtype.is_float() or not values.is_infinite().any():
        return []
    infinite = frame.filter(pl.col(column).is_infinite())
    return _problem_if(infinite, table, column, "infinite values", suggestion="fix or remove those rows")


def _below(values: pl.Series, bound: float) -> bool:
    """Whether any value may be below ``bound``: the minimum says so in one scan (NaN: look closer)."""
    low = values.min()
    return low is not None and not bool(low >= bound)  # type: ignore[operator]


def check_customer_ids(store: EventStore, as_of: datetime | None) -> list[Problem]:
    """Every event belongs to a customer of the ``customers`` table."""
    if "customers" not in store:
        return []
    known = store["customers"]["customer_id"].drop_nulls()
    span = _contiguous_span(known)
    if span is None:
        known = known.unique()
    problems = []
    for name, frame in store.tables.items():
        if name == "customers":
            continue
        ids = frame["customer_id"]
        if span is not None and ids.dtype == known.dtype and _within(ids, *span):
            continue  # every id lies in the unbroken range of known ids
        unknown = frame.select("customer_id").filter(
            pl.col("customer_id").is_not_null() & ~pl.col("customer_id").is_in(known.implode())
        )
        problems += _problem_if(
            unknown, name, "customer_id", "customer ids that are not in the customers table"
        )
    return problems


def _contiguous_span(ids: pl.Series) -> tuple[int, int] | None:
    """``(first, last)`` if the integer ``ids`` are exactly ``first, first + 1, ..., last`` in order."""
    if not ids.dtype.is_integer() or ids.len() == 0:
        return None
    first, last = ids[0], ids[-1]
    if last - first + 1 != ids.len() or not bool((ids.diff(null_behavior="drop") == 1).all()):
        return None
    return first, last


def _within(ids: pl.Series, first: int, last: int) -> bool:
    low, high = ids.min(), ids.max()
    return low is None or bool(first <= low and high <= last)  # type: ignore[operator]


def check_as_of(store: EventStore, as_of: datetime | None) -> list[Problem]:
    """Nothing may happen after the as-of date: not an event, a signup, an end or a resolution."""
    if as_of is None:
        return []
    problems = []
    for name, frame in store.tables.items():
        for column in TABLES[name].columns:
            if column.kind == "time" and column.name in frame.columns and _after(frame[column.name], as_of):
                late = frame.filter(pl.col(column.name) > as_of)
                problems += _problem_if(
                    late, name, column.name, f"events after the as-of date {as_of:%Y-%m-%d %H:%M}"
                )
    return problems


def _after(times: pl.Series, as_of: datetime) -> bool:
    latest = times.max()
    return latest is not None and bool(latest > as_of)  # type: ignore[operator]


def check_order_of_times(store: EventStore, as_of: datetime | None) -> list[Problem]:
    """A spell cannot end, nor a ticket be resolved, before it began."""
    pairs = {"subscriptions": ("started_at", "ended_at"), "tickets": ("opened_at", "resolved_at")}
    problems = []
    for name, (first, then) in pairs.items():
        frame = store.get(name)
        if frame is not None and then in frame.columns:
            wrong = frame.filter(pl.col(then) < pl.col(first))
            problems += _problem_if(wrong, name, then, f"earlier than {first}")
    return problems


def check_overlapping_spells(store: EventStore, as_of: datetime | None) -> list[Problem]:
    """Subscription spells of one customer may touch but not overlap (a plan change is a new row).

    A spell overlaps when it starts before the latest end of the customer's earlier spells (an open
    spell never ends); the examples are customer ids.
    """
    spells = store.get("subscriptions")
    if spells is None:
        return []
    end = pl.col("ended_at") if "ended_at" in spells.columns else pl.lit(None, pl.Datetime("us"))
    frame = (
        spells.select("customer_id", "started_at", end.fill_null(datetime.max).alias("ended_at"))
        .drop_nulls(["customer_id", "started_at"])
        .sort("customer_id", "started_at", "ended_at")
    )
    overlapping = frame.filter(_starts_before_earlier_end(frame))
    return _problem_if(
        overlapping,
        "subscriptions",
        "customer_id",
        "overlapping subscription spells of one customer (a spell starts before an earlier one ends)",
    )


def _starts_before_earlier_end(spells: pl.DataFrame) -> pl.Series:
    """For spells sorted by customer and start: does each start before an earlier spell's end?

    The latest end so far, per customer, without a slow window over a million small groups: rank all
    times together, then ``customer number * K + end rank`` (K above every rank) grows from one
    customer to the next, so one running maximum over the whole column never carries a value from
    an earlier customer into a later one's comparison. When no spell starts before the end of the
    one just before it (the usual case) that is not even needed.
    """
    customer, start, end = spells["customer_id"], spells["started_at"], spells["ended_at"]
    first = customer != customer.shift(1)
    overlaps_previous = (~first & (end.shift(1) > start)).fill_null(False)
    if not overlaps_previous.any():
        # Each spell starts at or after the end of the one before, and (sorted) at or after that
        # one's start, hence after the ends of all the earlier ones: nothing overlaps.
        return overlaps_previous
    n = spells.height
    ranks = pl.concat([spells["started_at"], spells["ended_at"]]).rank("dense").cast(pl.Int64)
    start_rank, end_rank = ranks.head(n), ranks.tail(n)
    k = int(ranks.max() or 0) + 1  # type: ignore[arg-type]
    number = first.fill_null(True).cast(pl.Int64).cum_sum()
    latest_end = (number * k + end_rank).cum_max().shift(1) - number * k  # negative: other customer
    return (latest_end > start_rank).fill_null(False)


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
