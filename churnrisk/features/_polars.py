"""The default executor: the declarations of :mod:`._spec` over Polars frames and numpy arrays.

Once per store (:func:`prepare_tables`): each table keeps the columns its family reads, in event
time order, with customer ids as dense integer slots and times as integer microseconds. Per
cutoff and family (:class:`_Cut`): the rows up to the cutoff are a prefix and each window a slice
of it; counts and sums are ``numpy.bincount`` over the slots of the slice, the latest or earliest
time ``ufunc.at``, row filters (``where``) boolean masks from Polars expressions (computed once
per store when they do not depend on the cutoff). Statistics are turned into 32-bit output columns
one at a time, missing values and fills applied, derived columns computed; families (the largest
in two halves) run on two long-lived threads. Over many cutoffs in ascending order, statistics
over the whole history run on from one cutoff to the next (``running``).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from churnrisk.contract import TABLES
from churnrisk.features._spec import FAMILIES, Agg, Col, Derived, Duration, Family, Lag, LastTime, Where

__all__ = ["PreparedTables", "family_features", "feature_frame", "feature_name", "prepare_tables"]

ID = "customer_id"
_DAY_US = 86_400_000_000
# "No such event": earlier than any event, so that "after the last success" holds for every row.
_NEVER = datetime(1, 1, 1)


def feature_name(family: Family, name: str, window: int | None) -> str:
    """``<family>_<name>_<w>d`` for a window-wise feature, ``<family>_<name>`` otherwise."""
    return f"{family.name}_{name}" if window is None else f"{family.name}_{name}_{window}d"


def family_features(family: Family, columns: Sequence[str]) -> list[Agg | Derived]:
    """The declarations of ``family`` that the table's ``columns`` can feed (attributes expanded)."""
    present = set(columns) | {h.name for h in family.helpers if set(h.columns) <= set(columns)}
    if family.time not in columns:
        present = set()  # only the customers table may lack its time column: attributes remain
    aggs: list[Agg | Derived] = [
        f for f in family.features if isinstance(f, Derived) or set(f.columns) <= present and bool(present)
    ]
    if family.attributes:
        contract = {c.name for c in TABLES[family.table].columns}
        aggs += [
            Agg(c, "last", c, span="history", what=c.replace("_", " ")) for c in columns if c not in contract
        ]
    names = {f.name for f in aggs if isinstance(f, Agg)}
    # Drop derived columns whose inputs are missing (in declaration order: derived may feed derived).
    kept: list[Agg | Derived] = []
    for f in aggs:
        if isinstance(f, Derived):
            if f.left not in names or (f.right is not None and f.right not in names):
                continue
            names.add(f.name)
        kept.append(f)
    return kept


def windowed_names(features: Sequence[Agg | Derived]) -> dict[str, bool]:
    """Whether each declared name gives one column per window (derived: if any input does)."""
    out: dict[str, bool] = {}
    for f in features:
        if isinstance(f, Agg):
            out[f.name] = f.windowed
        else:
            out[f.name] = out[f.left] or (f.right is not None and out[f.right])
    return out


def output_columns(family: Family, features: Sequence[Agg | Derived], windows: Sequence[int]) -> list[str]:
    windowed = windowed_names(features)
    return [
        feature_name(family, f.name, w)
        for f in features
        if f.keep
        for w in (windows if windowed[f.name] else [None])
    ]


# ---------------------------------------------------------------------- expressions
def _where(where: Where) -> pl.Expr:
    col = pl.col(where.column)
    if where.op == "is_null":
        return col.is_null()
    if where.op == "not_null":
        return col.is_not_null()
    if where.op == "is_true":
        return col.fill_null(False)
    right = pl.col(where.value.name) if isinstance(where.value, Col) else pl.lit(where.value)
    ops = {
        "==": col.__eq__,
        "!=": col.__ne__,
        "<": col.__lt__,
        "<=": col.__le__,
        ">": col.__gt__,
        ">=": col.__ge__,
    }
    return ops[where.op](right)


def _and(conditions: list[pl.Expr]) -> pl.Expr | None:
    if not conditions:
        return None
    out = conditions[0]
    for c in conditions[1:]:
        out = out & c
    return out


def _days(cutoff: datetime, times: pl.Expr) -> pl.Expr:
    return (pl.lit(cutoff) - times).dt.total_microseconds() / _DAY_US


def _row_expr(agg: Agg, family: Family, cutoff: datetime) -> pl.Expr:
    """The same statistics for a table with one row per customer (no grouping)."""
    if agg.stat == "days_since_first":
        return _days(cutoff, pl.col(family.time))
    if agg.stat == "last":
        return pl.col(agg.column)  # type: ignore[arg-type]
    raise ValueError(f"statistic {agg.stat!r} is not defined for one row per customer")


def _duration(helper: Duration) -> pl.Expr:
    return (pl.col(helper.end) - pl.col(helper.start)).dt.total_microseconds() / _DAY_US


def _derived(d: Derived, left: str, right: str | None) -> pl.Expr:
    a = pl.col(left)
    if d.op == "diff":
        return a - pl.col(right)  # type: ignore[arg-type]
    if d.op == "ratio":
        b = pl.col(right).cast(pl.Float64)  # type: ignore[arg-type]
        return pl.when(b != 0).then(a / b)
    expr: Any = pl.lit(None, pl.String)
    for upper, label in reversed(d.bins):
        expr = pl.when(a <= upper).then(pl.lit(label)).otherwise(expr)
    return pl.when(a.is_not_null()).then(expr)


def _finish(
    family: Family, features: Sequence[Agg | Derived], windows: Sequence[int]
) -> tuple[list[pl.Expr], list[list[pl.Expr]]]:
    """Fills (where zero is the truth) and the derived columns, in stages: derived may feed derived."""
    windowed = windowed_names(features)

    def name(n: str, w: int | None) -> str:
        return feature_name(family, n, w if windowed[n] else None)

    fills = [
        pl.col(name(a.name, w)).fill_null(a.fill)
        for a in features
        if isinstance(a, Agg) and a.fill is not None
        for w in (windows if a.windowed else [None])
    ]
    depth: dict[str, int] = {f.name: 0 for f in features if isinstance(f, Agg)}
    stages: list[list[pl.Expr]] = []
    for d in features:
        if isinstance(d, Derived):
            depth[d.name] = 1 + max(depth[d.left], depth[d.right] if d.right else 0)
            while len(stages) < depth[d.name]:
                stages.append([])
            stages[depth[d.name] - 1] += [
                _derived(d, name(d.left, w), name(d.right, w) if d.right else None).alias(name(d.name, w))
                for w in (windows if windowed[d.name] else [None])
            ]
    return fills, stages


# ---------------------------------------------------------------------- customers as dense slots
@dataclass(frozen=True)
class _Slots:
    """Maps customer ids to integer slots ``0 .. size - 1``.

    Integer ids in a compact range are their own slots when the range starts near zero (an event
    table's ids are then used as they are: no copy), ``id - low`` otherwise; other ids (text,
    sparse integers) their position among the customers' ids. Slots that no customer has are
    never output.
    """

    ids: pl.Series  # the customers' ids, sorted
    low: int | None
    size: int

    @classmethod
    def of(cls, customers: pl.Series) -> _Slots:
        ids = customers.drop_nulls().unique().sort()
        if ids.dtype.is_integer() and ids.len():
            low, high = int(ids[0]), int(ids[-1])
            if high - low < 4 * ids.len() + 1024:
                low = 0 if 0 <= low <= ids.len() + 1024 else low
                return cls(ids, low, high - low + 1)
        return cls(ids, None, ids.len())

    def __call__(self, ids: pl.Series, *, unknown: int = -1) -> np.ndarray:
        """The slots of ``ids`` (read-only); ids that are not customers' get ``unknown``."""
        if self.low is not None and ids.dtype.is_integer():
            raw = (ids.fill_null(self.low - 1) if ids.has_nulls() else ids).to_numpy()
            inside = not len(raw) or (raw.min() >= self.low and raw.max() < self.low + self.size)
            if self.low == 0 and inside and raw.dtype == np.int64:
                return raw  # the ids themselves
            slot = np.subtract(raw, self.low, dtype=np.int64)  # one new array: the slots
            if not inside:
                slot[(slot < 0) | (slot >= self.size)] = unknown
            return slot
        codes = ids.replace_strict(
            self.ids, np.arange(self.size, dtype=np.int64), default=unknown, return_dtype=pl.Int64
        )
        return codes.fill_null(unknown).to_numpy()


@dataclass
class _Table:
    """One event table ready for many cutoffs: the needed columns sorted by event time (stable:
    rows at the same time keep their table order), each row's customer slot and the event times as
    integer microseconds (ascending; a missing time sorts last, after every cutoff). The rows up to
    any cutoff are then a prefix, and the rows of any window a contiguous slice."""

    frame: pl.DataFrame
    slot: np.ndarray
    time: np.ndarray
    hidden: frozenset[str]  # columns whose values depend on the cutoff (``known_when``)
    masks: dict[tuple[Where, ...], np.ndarray] = field(default_factory=dict)
    numbers: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)
    # running statistics over the history, kept across cutoffs (see ``_Cut._running``): None = off
    runs: dict[tuple[Any, ...], tuple[int, np.ndarray]] | None = None
    # the kept values above are shared by the threads working on parts of one family
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def static(self, columns: Iterable[str]) -> bool:
        """Whether these columns have the same values at every cutoff."""
        return set(columns) <= set(self.frame.columns) - self.hidden

    def values(self, column: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A numeric column of every row as float64 (times as microseconds), and where it is not
        null: for columns that do not depend on the cutoff (each cutoff takes its prefix)."""
        with self.lock:
            if column not in self.numbers:
                self.numbers[column] = _float_values(self.frame[column])
            return self.numbers[column]

    def mask(self, where: tuple[Where, ...], expr: pl.Expr) -> np.ndarray:
        """A row filter over every row, for filters that do not depend on the cutoff (each cutoff
        takes its prefix)."""
        with self.lock:
            if where not in self.masks:
                self.masks[where] = self.frame.select(expr.fill_null(False))[:, 0].to_numpy()
            return self.masks[where]


@dataclass
class PreparedTables:
    """The event tables encoded once (see :func:`prepare_tables`), reused for every cutoff."""

    tables: dict[str, pl.DataFrame]
    slots: _Slots
    prepared: dict[str, _Table] = field(default_factory=dict)


_LATEST = np.iinfo(np.int64).max


def _micros(times: pl.Series, missing: int) -> np.ndarray:
    """Times as integer microseconds (no copy when none is missing)."""
    micros = times.cast(pl.Int64)
    return (micros.fill_null(missing) if micros.has_nulls() else micros).to_numpy()


def _prepare_table(family: Family, frame: pl.DataFrame, slots: _Slots) -> _Table | None:
    features = family_features(family, frame.columns)
    aggs = [f for f in features if isinstance(f, Agg)]
    if not aggs or family.time not in frame.columns:
        return None
    needed = {family.time, *family.known_when, *(c for a in aggs for c in a.columns)}
    needed |= {c for h in family.helpers for c in h.columns}
    rows = frame.select([c for c in frame.columns if c in needed or c == ID])
    if family.end is not None and family.end not in rows.columns:  # no end column: nothing has ended
        rows = rows.with_columns(pl.lit(None, pl.Datetime("us")).alias(family.end))
    rows = _categorical(rows, [a.column for a in aggs if a.stat in ("last", "prev") and a.column])
    lags = [h for h in family.helpers if isinstance(h, Lag) and h.column in rows.columns]
    if lags and _by_customer_and_time(rows, family.time):  # e.g. a table exported per customer
        rows, lags = rows.hstack(_previous(rows, lags)), []
    time = _micros(rows[family.time], _LATEST)
    if len(time) > 1 and not bool((time[1:] >= time[:-1]).all()):
        rows = rows.sort(family.time, nulls_last=True, maintain_order=True)
        time = _micros(rows[family.time], _LATEST)
    if lags:
        rows = rows.hstack(_lagged(rows, lags))
    # rows of ids that are not customers: counted apart (slot ``size``), never output
    slot = slots(rows[ID], unknown=slots.size)
    return _Table(rows.drop(ID), slot, time, frozenset(family.known_when))


def _lagged(rows: pl.DataFrame, lags: Sequence[Lag]) -> pl.DataFrame:
    """Each row's previous value of the same customer in time order (``rows``: in time order).

    Earlier rows are never after a cutoff that the row itself is not after, so this holds at every
    cutoff and is computed once.
    """
    order = rows.select(pl.arg_sort_by(ID, maintain_order=True)).to_series()
    previous = _previous(rows.select(ID, *(h.column for h in lags))[order], lags)
    back = np.empty(len(order), dtype=np.int64)
    back[order.to_numpy()] = np.arange(len(order))  # the inverse permutation, without a second sort
    return previous[back]


def _categorical(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Text ``columns`` (other than the id) as 32-bit category codes: the output columns taken
    from them are gathered and turned into pandas categoricals without a string per row."""
    text = [c for c in columns if c != ID and frame.schema[c] == pl.String]
    return frame.with_columns(pl.col(text).cast(pl.Categorical)) if text else frame


def _previous(grouped: pl.DataFrame, lags: Sequence[Lag]) -> pl.DataFrame:
    """The value of the row before, where it is the same customer's (``grouped``: each customer's
    rows together, in time order)."""
    same = pl.col(ID) == pl.col(ID).shift(1)
    return grouped.select(pl.when(same).then(pl.col(h.column).shift(1)).alias(h.name) for h in lags)


def _by_customer_and_time(rows: pl.DataFrame, time: str) -> bool:
    """Whether the rows are sorted by customer, then time (no id or time missing)."""
    if rows[time].has_nulls() or rows[ID].has_nulls():
        return False
    before, same = pl.col(ID).shift(1), pl.col(ID) == pl.col(ID).shift(1)
    ordered = (pl.col(ID) > before) | (same & (pl.col(time) >= pl.col(time).shift(1)))
    return bool(rows.select(ordered.slice(1).all()).item())


def prepare_tables(
    tables: Mapping[str, pl.DataFrame] | PreparedTables, *, running: bool = False
) -> PreparedTables:
    """Encode the event tables once, for one or many cutoffs over the same data.

    Customer ids become dense integer slots, times integer microseconds, and every table is put
    in time order (a no-op for the usual append-only log). ``running`` keeps the statistics over
    each customer's whole history from one cutoff to the next, so that a later cutoff only folds
    in the rows since the previous one (for many cutoffs in ascending order; the values are the
    same, bit for bit).
    """
    if isinstance(tables, PreparedTables):
        return tables
    out = PreparedTables(dict(tables), _Slots.of(tables["customers"][ID]))
    families = [f for f in FAMILIES if f.table in tables and not f.one_row_per_customer]
    tasks = [functools.partial(_prepare_table, f, tables[f.table], out.slots) for f in families]
    customers = functools.partial(_categorical, tables["customers"], tables["customers"].columns)
    *prepared, out.tables["customers"] = _in_threads(lambda task: task(), [*tasks, customers])
    out.prepared = {f.name: table for f, table in zip(families, prepared, strict=True) if table is not None}
    for table in out.prepared.values():
        table.runs = {} if running else None
    return out


def _in_threads(work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[work(item) for item in items]`` on up to two threads (numpy and Polars release the GIL
    for most of the work). Items are independent and results come back in order.

    The threads are the same from one call to the next: memory freed by one cutoff's work is
    reused by the next (new threads would each allocate afresh, and the peak would grow).
    """
    if len(items) < 2 or threading.current_thread().name.startswith(_THREADS):
        return [work(item) for item in items]  # nothing to share, or already on one of them
    return list(_pool().map(work, items))


_THREADS = "churnrisk-features"
_POOLS: dict[int, ThreadPoolExecutor] = {}  # by process id: a forked child starts its own
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    with _POOL_LOCK:
        pool = _POOLS.get(os.getpid())
        if pool is None:
            workers = min(2, os.cpu_count() or 1)
            pool = _POOLS[os.getpid()] = ThreadPoolExecutor(workers, thread_name_prefix=_THREADS)
        return pool


# ---------------------------------------------------------------------- one family, one cutoff
_NEVER_US = (_NEVER - datetime(1970, 1, 1)) // timedelta(microseconds=1)
# values per slot (a Series for ``last``/``prev``), and which are defined (None: all)
_Result = tuple[np.ndarray | pl.Series, np.ndarray | None]
# rows of the prefix: a slice, and a mask over the whole prefix (None: every row of the slice)
_Rows = tuple[slice, np.ndarray | None]
# folds rows into a statistic per slot, in place
_Fold = Callable[[np.ndarray, _Rows], None]


class _Cut:
    """The rows of one table at one cutoff, and grouped statistics over them by customer slot.

    The table is in time order, so the rows up to the cutoff are a prefix and every window a
    slice of it: no row masks for time. Counts and sums are ``numpy.bincount`` over the slots of
    the slice (no hashing, no sort), so each window costs one pass over its own rows and one
    output array.

    Slot arrays have one extra entry, ``size``, collecting rows of ids that are not customers.
    """

    def __init__(self, family: Family, table: _Table, cutoff: datetime, size: int):
        self.family, self.table, self.size = family, table, size + 1
        self.cut = (cutoff - datetime(1970, 1, 1)) // timedelta(microseconds=1)
        # Events at the cutoff belong to the features; later events do not exist yet.
        n = int(np.searchsorted(table.time, self.cut, side="right"))
        self.n, self.slot, self.time = n, table.slot[:n], table.time[:n]
        frame = table.frame.slice(0, n)
        hidden = [c for c in family.known_when if c in frame.columns]
        if hidden:
            # An end or resolution after the cutoff had not happened at the cutoff.
            frame = frame.with_columns(pl.when(pl.col(c) <= cutoff).then(pl.col(c)).alias(c) for c in hidden)
        durations = [
            h for h in family.helpers if isinstance(h, Duration) and set(h.columns) <= set(frame.columns)
        ]
        if durations:
            frame = frame.with_columns(_duration(h).alias(h.name) for h in durations)
        self.frame = frame
        self._starts: dict[int, int] = {}
        self._masks: dict[tuple[Where, ...], np.ndarray | None] = {}
        self._extremes: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._lasts: dict[tuple[Any, ...], np.ndarray] = {}
        self._columns: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        for h in family.helpers:
            if isinstance(h, LastTime) and set(h.columns) <= set(frame.columns):
                self.frame = self.frame.with_columns(self._last_time(h).alias(h.name))

    def start(self, age: int) -> int:
        """The first row of the window ``(cutoff - age, cutoff]`` (``age`` in microseconds)."""
        if age not in self._starts:
            self._starts[age] = int(np.searchsorted(self.time, self.cut - age, side="right"))
        return self._starts[age]

    @functools.cached_property
    def rows(self) -> np.ndarray:
        """Events per customer slot (all rows up to the cutoff)."""
        return self._counts((slice(0, self.n), None), ((), None))

    # -------------------------------------------------------------- rows and columns
    def mask(self, where: tuple[Where, ...]) -> np.ndarray | None:
        if where not in self._masks:
            expr = _and([_where(w) for w in where])
            columns = {c for w in where for c in w.columns}
            if expr is None:
                self._masks[where] = None
            elif self.table.static(columns):
                self._masks[where] = self.table.mask(where, expr)[: self.n]
            else:  # hidden columns or helpers of this cutoff
                self._masks[where] = self.frame.select(expr.fill_null(False))[:, 0].to_numpy()
        return self._masks[where]

    def values(self, column: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A numeric column as float64 (times as microseconds), and where it is not null."""
        if column not in self._columns:
            if self.table.static([column]):
                values, valid = self.table.values(column)
                self._columns[column] = values[: self.n], None if valid is None else valid[: self.n]
            else:
                self._columns[column] = _float_values(self.frame[column])
        return self._columns[column]

    def span(self, agg: Agg, window: int | None) -> _Rows:
        """The rows of the agg's span (before its ``where`` filter)."""
        if agg.span == "history":
            return slice(0, self.n), None
        if agg.span == "open":
            return slice(0, self.n), self.end == _LATEST
        w = window * _DAY_US  # type: ignore[operator]
        if agg.span == "window":
            return slice(self.start(w), self.n), None
        if agg.span == "prior":
            return slice(self.start(2 * w), self.start(w)), None
        # open at the window start: started by then, not ended by then (ends after the cutoff are hidden)
        return slice(0, self.start(w)), self.end > self.cut - w

    @functools.cached_property
    def end(self) -> np.ndarray:
        """The end times as microseconds (``_LATEST``: not ended by the cutoff)."""
        return _micros(self.frame[self.family.end], _LATEST)  # type: ignore[index]

    def _select(self, rows: _Rows, x: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """The slots (and values of ``x``) of ``rows``."""
        part, m = rows
        slot = self.slot[part]
        x = None if x is None else x[part]
        if m is not None:
            keep = m[part]
            slot, x = slot[keep], None if x is None else x[keep]
        return slot, x

    # -------------------------------------------------------------- grouped statistics
    def _running(
        self, run: tuple[Any, ...] | None, rows: _Rows, start: Callable[[], np.ndarray], fold: _Fold
    ) -> np.ndarray:
        """A statistic per slot: ``fold`` the ``rows`` into ``start()``.

        With ``run`` (a key: the rows are the whole history, filtered by the same rows at every
        cutoff) and running statistics on, the result is kept on the table and the next, later
        cutoff folds in only the rows after this one's. Each fold processes rows in time order,
        as one pass over all of them would, so the values are the same bit for bit.
        """
        runs = self.table.runs
        if run is None or runs is None:
            value = start()
            fold(value, rows)
            return value
        with self.table.lock:
            kept = runs.get(run)
            # the first cutoff, or an earlier one than the last: from the start
            done, value = (0, start()) if kept is None or kept[0] > self.n else kept
            fold(value, (slice(done, self.n), rows[1]))
            runs[run] = (self.n, value)
            return value.copy()  # the kept one changes with the next cutoff

    def _count(self, rows: _Rows, run: tuple[Any, ...] | None = None) -> np.ndarray:
        if rows[1] is None and rows[0] == slice(0, self.n):
            return self.rows
        return self._counts(rows, run)

    def _counts(self, rows: _Rows, run: tuple[Any, ...] | None) -> np.ndarray:
        if run is None or self.table.runs is None:
            return _bincount(self._select(rows)[0], None, self.size)

        def fold(value: np.ndarray, part: _Rows) -> None:
            value += _bincount(self._select(part)[0], None, self.size)

        return self._running(("count", *run), rows, self._zeros(np.int64), fold)

    def _sum(self, x: np.ndarray, rows: _Rows, run: tuple[Any, ...] | None = None) -> np.ndarray:
        """Sums of ``x`` per slot (``add.at`` adds in row order, as ``bincount`` does)."""
        if run is None or self.table.runs is None:
            return _bincount(*self._select(rows, x), self.size)

        def fold(value: np.ndarray, part: _Rows) -> None:
            np.add.at(value, *self._select(part, x))

        return self._running(("sum", *run), rows, self._zeros(np.float64), fold)

    def _zeros(self, dtype: Any) -> Callable[[], np.ndarray]:
        return lambda: np.zeros(self.size, dtype=dtype)

    def _extreme(
        self, x: np.ndarray, rows: _Rows, *, largest: bool, run: tuple[Any, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if x.dtype.kind == "i":
            info = np.iinfo(x.dtype)
            first: Any = info.min if largest else info.max
        else:
            first = -np.inf if largest else np.inf
        ufunc = np.maximum if largest else np.minimum

        def fold(value: np.ndarray, part: _Rows) -> None:
            ufunc.at(value, *self._select(part, x))

        key = None if run is None else ("max" if largest else "min", *run)
        out = self._running(key, rows, lambda: np.full(self.size, first, dtype=x.dtype), fold)
        # whole numbers (times) never equal the first value; floats may be infinite
        return out, out != first if x.dtype.kind == "i" else self._count(rows, run) > 0

    def _time_extreme(
        self, key: tuple[Any, ...], rows: _Rows, *, largest: bool, run: tuple[Any, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The latest (or earliest) event time per slot among ``rows`` (described by ``key``)."""
        key = (*key, largest)
        if key not in self._extremes:
            self._extremes[key] = self._extreme(self.time, rows, largest=largest, run=run)
        return self._extremes[key]

    def _positions(self, rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
        """The slots and row positions of ``rows``."""
        part, m = rows
        position = np.arange(part.start, part.stop) if m is None else np.flatnonzero(m[part]) + part.start
        return self.slot[position], position

    def _last(self, rows: _Rows, run: tuple[Any, ...] | None = None, *, previous: bool) -> np.ndarray:
        """Row positions of each customer's last and (with ``previous``, or running) previous
        row among ``rows`` (in time order; ``-1``: none), as two rows of one array."""
        previous = previous or (run is not None and self.table.runs is not None)

        def fold(value: np.ndarray, part: _Rows) -> None:
            slot, position = self._positions(part)
            first = part[0].start == 0  # nothing folded in yet: straight into ``value``
            last = value[0] if first else np.full(self.size, -1, dtype=np.int64)
            np.maximum.at(last, slot, position)
            if previous:
                before = position != last[slot]  # all but each customer's last row of this part
                earlier = value[1] if first else np.full(self.size, -1, dtype=np.int64)
                np.maximum.at(earlier, slot[before], position[before])
            if not first:
                seen = last >= 0
                if previous:
                    value[1] = np.where(seen, np.where(earlier >= 0, earlier, value[0]), value[1])
                value[0] = np.where(seen, last, value[0])

        start = lambda: np.full((2, self.size), -1, dtype=np.int64)  # noqa: E731
        return self._running(None if run is None else ("last", *run), rows, start, fold)

    def _last_time(self, helper: LastTime) -> pl.Series:
        latest, found = self._extreme(self.time, (slice(0, self.n), self.mask(helper.where)), largest=True)
        per_row = np.where(found, latest, _NEVER_US)[self.slot]
        return pl.Series(per_row).cast(pl.Datetime("us"))

    def stat(self, agg: Agg, window: int | None) -> _Result:
        """One statistic per customer slot (``_Result``); rows of customers without events are
        undefined here, and made missing (or filled) by the caller."""
        stat = agg.stat
        part, span_mask = self.span(agg, window)
        rows: _Rows = (part, _and_np(self.mask(agg.where), span_mask))
        # the whole history, filtered alike at every cutoff: may run on from the previous cutoff
        history = agg.span == "history" and self.table.static(agg.columns)
        run = (agg.where, agg.column) if history else None
        if stat == "count":  # rows by ``where`` alone (whatever the column)
            return self._count(rows, run and (agg.where, None)), None
        if stat == "share":
            n, denominator = self._count(rows, run), self._count((part, span_mask), run and ((), None))
            return n / np.maximum(denominator, 1), denominator > 0
        if stat in ("sum", "mean", "min", "max"):
            x, valid = self.values(agg.column)  # type: ignore[arg-type]
            rows = (part, _and_np(rows[1], valid))
            if stat in ("min", "max"):
                value, found = self._extreme(x, rows, largest=stat == "max", run=run)
                return self._typed(value, agg.column), found
            if stat == "sum":
                return self._typed(self._sum(x, rows, run), agg.column), None
            if run is None or self.table.runs is None:  # one selection for both
                slot, values = self._select(rows, x)
                sums, n = _bincount(slot, values, self.size), _bincount(slot, None, self.size)
            else:
                sums, n = self._sum(x, rows, run), self._count(rows, run)
            return sums / np.maximum(n, 1), n > 0
        key = (agg.where, agg.span, window if agg.windowed else None)
        if stat in ("last", "prev"):
            if key not in self._lasts:
                previous = any(
                    isinstance(f, Agg) and f.stat == "prev" and (f.where, f.span) == (agg.where, agg.span)
                    for f in self.family.features
                )
                self._lasts[key] = self._last(rows, None if run is None else run[:1], previous=previous)
            return self._gather(agg.column or self.family.time, self._lasts[key][int(stat == "prev")])
        if stat == "n_unique":
            slot, position = self._positions(rows)
            column = self.frame[agg.column or self.family.time].gather(position)
            pairs = pl.DataFrame({"slot": slot, "x": column}).drop_nulls().unique()
            return np.bincount(pairs["slot"].to_numpy(), minlength=self.size), None
        if stat in ("days_since", "days_since_first"):
            latest, found = self._time_extreme(key, rows, largest=stat == "days_since", run=run)
            return (self.cut - latest) / _DAY_US, found
        if stat == "mean_gap":
            n = self._count(rows, run)
            latest, _ = self._time_extreme(key, rows, largest=True, run=run)
            first_time, _ = self._time_extreme(key, rows, largest=False, run=run)
            return (latest - first_time) / _DAY_US / np.maximum(n - 1, 1), n > 1
        raise ValueError(f"unknown statistic {stat!r}")

    def _typed(self, values: np.ndarray, column: str | None) -> Any:
        dtype = self.frame[column].dtype if column else None
        return values.astype(np.int64) if dtype is not None and dtype.is_integer() else values

    def _gather(self, column: str, rows: np.ndarray) -> _Result:
        """The values of ``column`` at the row positions ``rows`` (``-1``: none)."""
        found, at = rows >= 0, np.maximum(rows, 0)
        series = self.frame[column]
        if not self.n:
            return series.clear(self.size), found
        if series.dtype.is_float():  # numpy all the way: missing values become NaN anyway
            x, valid = self.values(column)
            return x[at], found if valid is None else found & valid[at]
        return series.gather(at), found


def _float_values(series: pl.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """A numeric column as float64 (times as microseconds; missing as 0), and where it is not null."""
    valid = series.is_not_null().to_numpy() if series.null_count() else None
    if series.dtype.is_temporal():
        return _micros(series, 0).astype(np.float64), valid
    return series.cast(pl.Float64).fill_null(0.0).to_numpy(), valid


#: Rows per ``numpy.bincount`` call over a read-only array (see :func:`_bincount`).
_BLOCK = 1 << 21


def _bincount(slot: np.ndarray, weights: np.ndarray | None, size: int) -> np.ndarray:
    """Counts (or sums of ``weights``, as floats even over no rows) per slot.

    ``numpy.bincount`` first copies an input it cannot write to, and the columns Polars shares
    with numpy are read-only: over many rows the copies would be as large as the table. Counts
    then go a block of rows at a time, sums by ``add.at`` (no copy; it adds in row order, as
    ``bincount`` does, so the sums are the same to the last bit).
    """
    shared = not slot.flags.writeable or (weights is not None and not weights.flags.writeable)
    if not shared or len(slot) <= _BLOCK:
        out = np.bincount(slot, weights, minlength=size)
        return out if weights is None else out.astype(np.float64, copy=False)
    if weights is not None:
        sums = np.zeros(size, dtype=np.float64)
        np.add.at(sums, slot, weights)
        return sums
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, len(slot), _BLOCK):
        counts += np.bincount(slot[start : start + _BLOCK], minlength=size)
    return counts


def _and_np(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else a if b is None else a & b


def _numeric(values: np.ndarray | pl.Series) -> np.ndarray:
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).fill_null(np.nan).to_numpy()
    return values


def _derived_values(d: Derived, a: np.ndarray, b: np.ndarray | None) -> np.ndarray | pl.Series:
    """A derived column from its inputs (missing is NaN), as :func:`_derived` does in Polars."""
    if d.op == "diff":
        return a - b  # type: ignore[operator]
    if d.op == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b != 0, a / b, np.nan)  # type: ignore[operator]
    uppers = np.array([upper for upper, _ in d.bins], dtype=np.float64)
    labels = [label for _, label in d.bins]
    if not bool((np.diff(uppers) > 0).all()):  # bins not in ascending order: as declared
        frame = pl.DataFrame({"x": pl.Series(a, nan_to_null=True)})
        return frame.select(_derived(d, "x", None))[:, 0]
    # the first bin whose upper bound the value does not exceed; none: missing
    code = np.searchsorted(uppers, a, side="left")
    found = pl.Series((code < len(labels)) & ~np.isnan(a))
    rows = pl.select(pl.when(pl.lit(found)).then(pl.lit(pl.Series(code)))).to_series()
    return pl.Series(labels, dtype=pl.Enum(labels)).gather(rows)


# statistics that are 0 for a customer without rows
_ZERO_WITHOUT_ROWS = ("count", "sum", "n_unique")


def _assemble(
    family: Family,
    features: Sequence[Agg | Derived],
    windows: Sequence[int],
    result: Callable[[Agg, int | None], _Result],
    positions: np.ndarray | slice,
    present: np.ndarray,
    outside: np.ndarray | None,
) -> pl.DataFrame:
    """The family's output columns for the customers at ``positions``: missing values (customers
    without events, undefined statistics) are NaN, or ``fill`` where zero is the truth; then the
    derived columns, in declaration order (derived may feed derived).

    Statistics are computed one at a time (``result``) and turned into their 32-bit output right
    away; full precision is kept only for the inputs of derived columns, and only while they are
    read: the columns over the whole history first, then window by window (a windowed column may
    read one over the history, never one of another window).
    """
    windowed = windowed_names(features)
    inputs = {n for d in features if isinstance(d, Derived) for n in (d.left, d.right) if n}
    columns: dict[str, np.ndarray | pl.Series] = {}
    out: dict[str, np.ndarray | pl.Series] = {}

    def column(n: str, w: int | None) -> np.ndarray:
        return _numeric(columns[feature_name(family, n, w if windowed[n] else None)])

    for w in [None, *windows]:
        read = []
        for f in (f for f in features if windowed[f.name] == (w is not None)):
            name = feature_name(family, f.name, w)
            if isinstance(f, Derived):
                value = _derived_values(f, column(f.left, w), column(f.right, w) if f.right else None)
            else:
                value = _missing_as_declared(f, *result(f, w), positions, present, precise=f.name in inputs)
            if f.name in inputs:
                columns[name] = value
                read.append(name)
            if f.keep:
                out[name] = _small(value, outside)
        for name in read if w is not None else []:
            del columns[name]
    return pl.DataFrame({name: out[name] for name in output_columns(family, features, windows)})


def _missing_as_declared(
    f: Agg,
    values: np.ndarray | pl.Series,
    valid: np.ndarray | None,
    positions: np.ndarray | slice,
    present: np.ndarray,
    *,
    precise: bool,
) -> np.ndarray | pl.Series:
    """One statistic for the customers at ``positions``: NaN where undefined, or ``fill``
    (floats as 32-bit unless ``precise``: the input of a derived column)."""
    if valid is None and f.fill == 0 and f.stat in _ZERO_WITHOUT_ROWS:
        return values[positions]  # already 0 for customers without rows
    defined = present if valid is None else present & valid[positions]
    if isinstance(values, pl.Series):
        series = values[positions]
        series = pl.select(pl.when(pl.lit(pl.Series(defined))).then(pl.lit(series))).to_series()
        return series.fill_null(f.fill) if f.fill is not None else series
    if bool(defined.all()):
        return values[positions]
    fill = f.fill if f.fill is not None else np.nan
    if values.dtype.kind != "f" or precise:
        return np.where(defined, values[positions], fill)
    out = values[positions].astype(np.float32)  # the output right away: one allocation
    out[~defined] = fill
    return out


def _small(values: np.ndarray | pl.Series, outside: np.ndarray | None) -> np.ndarray | pl.Series:
    """32-bit numbers (see :func:`compact`), missing for the customers ``outside`` the population."""
    if isinstance(values, pl.Series):
        if outside is not None:
            values = pl.select(pl.when(pl.lit(pl.Series(~outside))).then(pl.lit(values))).to_series()
        return compact(values.to_frame()).to_series()
    if outside is not None and values.dtype.kind in "fi":
        values = values.astype(np.float32)
        values[outside] = np.nan
    if values.dtype.kind == "f":
        return values.astype(np.float32, copy=False)
    if values.dtype.kind == "i" and (
        not values.size or (_INT32.min <= values.min() and values.max() <= _INT32.max)
    ):
        return values.astype(np.int32)
    return values


def _customers_part(
    family: Family,
    frame: pl.DataFrame,
    slots: _Slots,
    cutoff: datetime,
    positions: np.ndarray | slice,
    outside: np.ndarray | None,
) -> pl.DataFrame | None:
    """The customers table's own features (one row per customer): no grouping, a gather; missing
    for those ``outside`` the population."""
    features = family_features(family, frame.columns)
    aggs = [f for f in features if isinstance(f, Agg)]
    if not aggs:
        return None
    exprs = [_row_expr(a, family, cutoff).alias(feature_name(family, a.name, None)) for a in aggs]
    values = frame.select(exprs)
    row = np.full(slots.size, -1, dtype=np.int64)
    slot = slots(frame[ID])
    known = slot >= 0
    row[slot[known]] = np.arange(frame.height)[known]
    found = row[positions]
    if outside is not None:
        found[outside] = -1
    gathered = values[np.maximum(found, 0)] if frame.height else values.clear(len(found))
    ok = pl.Series(found >= 0)
    part = gathered.with_columns(pl.when(ok).then(pl.col(c)).alias(c) for c in gathered.columns)
    return compact(_complete(part, family, features, ()))


def _complete(
    part: pl.DataFrame, family: Family, features: Sequence[Agg | Derived], windows: Sequence[int]
) -> pl.DataFrame:
    fills, stages = _finish(family, features, windows)
    lf = part.lazy()
    for exprs in [fills, *stages]:
        lf = lf.with_columns(exprs) if exprs else lf
    return lf.select(output_columns(family, features, windows)).collect()


# ---------------------------------------------------------------------- all families
def _seen(prepared: PreparedTables, cutoff: datetime) -> np.ndarray:
    """Which customer slots have any event at or before the cutoff."""
    cut = (cutoff - datetime(1970, 1, 1)) // timedelta(microseconds=1)
    seen = np.zeros(prepared.slots.size, dtype=bool)
    for table in prepared.prepared.values():
        n = int(np.searchsorted(table.time, cut, side="right"))
        seen[table.slot[:n][table.slot[:n] < prepared.slots.size]] = True
    return seen


def _population(prepared: PreparedTables, cutoff: datetime) -> pl.Series:
    """Customers who signed up by the cutoff, or (without a signup time) had any event by then."""
    customers = prepared.tables["customers"]
    if "signup_at" in customers.columns and customers["signup_at"].null_count() == 0:
        return customers.filter(pl.col("signup_at") <= cutoff)[ID].sort()
    slot = prepared.slots(customers[ID])
    in_seen = pl.Series((slot >= 0) & _seen(prepared, cutoff)[np.maximum(slot, 0)])
    if "signup_at" in customers.columns:
        signup = pl.col("signup_at")
        keep = (signup <= cutoff) | (signup.is_null() & pl.lit(in_seen))
    else:
        keep = pl.lit(in_seen)
    return customers.filter(keep)[ID].sort()


def _event_part(
    family: Family,
    features: Sequence[Agg | Derived],
    prepared: PreparedTables,
    cutoff: datetime,
    windows: Sequence[int],
    positions: np.ndarray | slice,
    outside: np.ndarray | None,
) -> pl.DataFrame:
    """Features of one event family for the customers at ``positions`` (their slots); missing for
    those ``outside`` the population."""
    cut = _Cut(family, prepared.prepared[family.name], cutoff, prepared.slots.size)
    present = cut.rows[positions] > 0
    return _assemble(family, features, windows, cut.stat, positions, present, outside)


def feature_frame(
    tables: Mapping[str, pl.DataFrame] | PreparedTables,
    cutoff: datetime,
    windows: Sequence[int],
    *,
    customers: pl.Series | None = None,
    release: bool = False,
) -> pl.DataFrame:
    """Every family's features at ``cutoff``: one row per customer of the population, sorted by id.

    ``tables`` may be the result of :func:`prepare_tables`, to share the encoding between many
    cutoffs. ``customers`` (sorted ids) asks for exactly those rows instead, as a left join onto
    the population would give them (missing features for ids outside it). Families run two at a
    time: the peak memory holds the work of two families, not of all of them at once.

    ``release`` hands the tables over (a ``dict`` given is emptied): each is dropped as soon as
    its family's features are computed, so that the peak holds the largest table beside the
    features, not every table beside them. For one cutoff over tables read for it alone.
    """
    prepared = prepare_tables(tables)
    if release and isinstance(tables, dict):
        tables.clear()
    population = _population(prepared, cutoff)
    ids = population if customers is None else customers.rename(ID)
    slots = prepared.slots(ids)
    outside: np.ndarray | None = None
    if customers is not None:
        inside = ids.is_in(population.implode()).to_numpy() & (slots >= 0)
        outside = None if inside.all() else ~inside
        slots = np.where(inside, slots, 0)
    positions: np.ndarray | slice = slots
    if len(slots) and bool((slots == np.arange(slots[0], slots[0] + len(slots))).all()):
        positions = slice(int(slots[0]), int(slots[0]) + len(slots))  # consecutive slots: views, no gathers
    families = [
        f
        for f in FAMILIES
        if f.name in prepared.prepared or (f.one_row_per_customer and f.table in prepared.tables)
    ]
    features = {f: family_features(f, prepared.tables[f.table].columns) for f in families}
    rows = sum(prepared.tables[f.table].height for f in families if f.name in prepared.prepared)
    # A family with a third of all rows or more would keep one thread busy alone: in two halves.
    tasks = [
        (f, group)
        for f in families
        for group in (_halves(features[f]) if prepared.tables[f.table].height * 3 >= rows else [features[f]])
    ]

    unfinished = {f: sum(task[0] is f for task in tasks) for f in families}
    lock = threading.Lock()

    def part_of(task: tuple[Family, list[Agg | Derived]]) -> pl.DataFrame | None:
        family, group = task
        part: pl.DataFrame | None
        if family.name in prepared.prepared:
            part = _event_part(family, group, prepared, cutoff, windows, positions, outside)
        else:
            frame = prepared.tables[family.table]
            part = _customers_part(family, frame, prepared.slots, cutoff, positions, outside)
            del frame
        with lock:
            unfinished[family] -= 1
            if release and not unfinished[family]:  # its last part: the table is not read again
                prepared.prepared.pop(family.name, None)
                prepared.tables.pop(family.table, None)
        return part

    # The largest tables first, so that the two threads finish together.
    tasks.sort(key=lambda task: -prepared.tables[task[0].table].height)
    done = list(zip(tasks, _in_threads(part_of, tasks), strict=True))
    out = [ids.to_frame()]
    for family in families:
        parts = [part for (f, _), part in done if f is family and part is not None]
        if parts:
            part = pl.concat(parts, how="horizontal")
            out.append(part.select(output_columns(family, features[family], windows)))
    return pl.concat(out, how="horizontal")


def _halves(features: Sequence[Agg | Derived]) -> list[list[Agg | Derived]]:
    """The features in two groups with no input in common, the per-window ones and those over
    the whole history (derived ones go with their inputs), or one group if they cannot be parted."""
    windowed = windowed_names(features)
    groups = [[f for f in features if windowed[f.name]], [f for f in features if not windowed[f.name]]]
    names = [{f.name for f in group} for group in groups]
    crossing = any(
        isinstance(f, Derived) and {f.left, f.right} - {None} - names[i]
        for i, group in enumerate(groups)
        for f in group
    )
    return [list(features)] if crossing or not all(groups) else groups


_INT32 = np.iinfo(np.int32)


def compact(part: pl.DataFrame) -> pl.DataFrame:
    """Features as 32-bit numbers: half the memory of a feature table and of a training set.

    Whole numbers (counts) become ``Int32``, or ``Float32`` where some are missing (a count of a
    customer outside the population); every other number ``Float32``: exact for whole numbers up
    to 16.7 million, about 7 significant digits otherwise, which is more than any model or
    explanation of churn reads. Values beyond the ``Int32`` range stay 64-bit.
    """

    def small(column: pl.Series) -> pl.Series:
        if column.dtype.is_float():
            return column.cast(pl.Float32)
        if column.dtype.is_integer():
            low, high = column.min(), column.max()
            if low is None or (_INT32.min <= low and high <= _INT32.max):  # type: ignore[operator]
                return column.cast(pl.Float32 if column.has_nulls() else pl.Int32)
        return column

    return pl.DataFrame([small(part[c]) for c in part.columns])
