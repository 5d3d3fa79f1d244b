"""The Polars executor: turns the declarations of :mod:`._spec` into one lazy query per table.

Per table and cutoff: keep rows with event time ``<= cutoff``, hide the ``known_when`` times that
lie after the cutoff, add the row-level helpers, then one ``group_by(customer_id).agg([...])``
computes every statistic of every window as a conditional aggregation (no join per window, no
Python per customer). Derived columns and fills are applied after joining the families onto the
population.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from churnrisk.contract import TABLES
from churnrisk.features._spec import FAMILIES, Agg, Col, Derived, Duration, Family, Lag, LastTime, Where

__all__ = ["PreparedTables", "feature_frame", "family_features", "feature_name", "prepare_tables"]

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


def _helper(helper: Duration | Lag | LastTime, family: Family) -> pl.Expr:
    if isinstance(helper, Duration):
        return (pl.col(helper.end) - pl.col(helper.start)).dt.total_microseconds() / _DAY_US
    if isinstance(helper, Lag):
        # rows are sorted by customer and time (see _family_lazy)
        same_customer = pl.col(ID) == pl.col(ID).shift(1)
        return pl.when(same_customer).then(pl.col(helper.column).shift(1))
    mask = _and([_where(w) for w in helper.where])
    return pl.col(family.time).filter(mask).max().over(ID).fill_null(pl.lit(_NEVER))  # type: ignore[arg-type]


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
    """Maps customer ids to dense integer slots ``0 .. size - 1`` (``-1``: not a customer).

    Integer ids in a compact range use ``id - low`` (no hashing, no lookup); other ids (text,
    sparse integers) their position among the customers' ids.
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
                return cls(ids, low, high - low + 1)
        return cls(ids, None, ids.len())

    def __call__(self, ids: pl.Series) -> np.ndarray:
        if self.low is not None and ids.dtype.is_integer():
            raw = ids.fill_null(self.low - 1).to_numpy().astype(np.int64, copy=False) - self.low
            return np.where((raw >= 0) & (raw < self.size), raw, -1)
        codes = ids.replace_strict(
            self.ids, np.arange(self.size, dtype=np.int64), default=-1, return_dtype=pl.Int64
        )
        return codes.fill_null(-1).to_numpy()


@dataclass
class _Table:
    """One event table ready for many cutoffs: the needed columns (in time order where a statistic
    needs it), each row's customer slot and the event times as integer microseconds."""

    frame: pl.DataFrame
    slot: np.ndarray
    time: np.ndarray


@dataclass
class PreparedTables:
    """The event tables encoded once (see :func:`prepare_tables`), reused for every cutoff."""

    tables: dict[str, pl.DataFrame]
    slots: _Slots
    prepared: dict[str, _Table] = field(default_factory=dict)


def _micros(times: pl.Series, missing: int) -> np.ndarray:
    return times.cast(pl.Int64).fill_null(missing).to_numpy()


def _prepare_table(family: Family, frame: pl.DataFrame, slots: _Slots) -> _Table | None:
    features = family_features(family, frame.columns)
    aggs = [f for f in features if isinstance(f, Agg)]
    if not aggs or family.time not in frame.columns:
        return None
    needed = {family.time, *family.known_when, *(c for a in aggs for c in a.columns)}
    needed |= {c for h in family.helpers for c in h.columns}
    lagged = any(isinstance(h, Lag) for h in family.helpers)
    if lagged:
        needed.add(ID)
    rows = frame.select([c for c in frame.columns if c in needed or c == ID])
    if family.order_needed:
        # Stable: events at the same time keep their order in the table ("last" is the latest,
        # ties broken by table order); a Lag needs each customer's rows together.
        rows = rows.sort([ID, family.time] if lagged else family.time, maintain_order=True)
    slot = slots(rows[ID])
    if not lagged:
        rows = rows.drop(ID)
    return _Table(rows, slot, _micros(rows[family.time], np.iinfo(np.int64).max))


def prepare_tables(tables: Mapping[str, pl.DataFrame] | PreparedTables) -> PreparedTables:
    """Encode the event tables once, for one or many cutoffs over the same data.

    Customer ids become dense integer slots, times integer microseconds, and tables whose
    statistics depend on event order (``last``, ``prev``, lags) are sorted by time once.
    """
    if isinstance(tables, PreparedTables):
        return tables
    out = PreparedTables(dict(tables), _Slots.of(tables["customers"][ID]))
    for family in FAMILIES:
        frame = tables.get(family.table)
        if frame is not None and not family.one_row_per_customer:
            table = _prepare_table(family, frame, out.slots)
            if table is not None:
                out.prepared[family.name] = table
    return out


# ---------------------------------------------------------------------- one family, one cutoff
_NEVER_US = (_NEVER - datetime(1970, 1, 1)) // timedelta(microseconds=1)
# values per slot (a Series for ``last``/``prev``), and which are defined (None: all)
_Result = tuple[np.ndarray | pl.Series, np.ndarray | None]


class _Cut:
    """The rows of one table at one cutoff, and grouped statistics over them by customer slot.

    Sums and counts are ``numpy.bincount`` over the slots (no hashing, no sort). Counts and sums
    over windows come from one bincount per (statistic, column, filter) over ``slot x band``,
    where the bands are the intervals between the window edges: a window or prior span is then a
    sum over consecutive bands.
    """

    def __init__(self, family: Family, table: _Table, cutoff: datetime, size: int, edges: list[int]):
        self.family, self.size = family, size
        self.cut = (cutoff - datetime(1970, 1, 1)) // timedelta(microseconds=1)
        keep = (table.time <= self.cut) & (table.slot >= 0)
        everything = bool(keep.all())
        # Events at the cutoff belong to the features; later events do not exist yet.
        self.slot = table.slot if everything else table.slot[keep]
        self.time = table.time if everything else table.time[keep]
        self._source, self._keep = table.frame, None if everything else keep
        self._frame: pl.DataFrame | None = None
        hidden = [c for c in family.known_when if c in table.frame.columns]
        if hidden:
            # An end or resolution after the cutoff had not happened at the cutoff.
            self._frame = self.frame.with_columns(
                pl.when(pl.col(c) <= cutoff).then(pl.col(c)).alias(c) for c in hidden
            )
        helpers = [h for h in family.helpers if set(h.columns) <= set(table.frame.columns)]
        plain = [h for h in helpers if not isinstance(h, LastTime)]
        if plain:
            self._frame = self.frame.with_columns(_helper(h, family).alias(h.name) for h in plain)
        self._rows: np.ndarray | None = None
        self._end: np.ndarray | None = None
        self._masks: dict[tuple[Where, ...], np.ndarray | None] = {}
        self._bands: dict[tuple[Any, ...], np.ndarray] = {}
        self._extremes: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._columns: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        for h in helpers:
            if isinstance(h, LastTime):
                self._frame = self.frame.with_columns(self._last_time(h).alias(h.name))
        self.edges = np.array(edges, dtype=np.int64)
        self.band = np.searchsorted(self.edges, self.cut - self.time, side="right") if edges else None

    @property
    def frame(self) -> pl.DataFrame:
        """The table's rows up to the cutoff (filtered when first needed)."""
        if self._frame is None:
            self._frame = self._source if self._keep is None else self._source.filter(pl.Series(self._keep))
        return self._frame

    @property
    def rows(self) -> np.ndarray:
        """Events per customer slot (all rows up to the cutoff)."""
        if self._rows is None:
            counted = self._bands.get(("cumulative", "count", None, ()))
            self._rows = counted[-1] if counted is not None else np.bincount(self.slot, minlength=self.size)
        return self._rows

    # -------------------------------------------------------------- row masks
    def mask(self, where: tuple[Where, ...]) -> np.ndarray | None:
        if where not in self._masks:
            expr = _and([_where(w) for w in where])
            self._masks[where] = (
                None if expr is None else self.frame.select(expr.fill_null(False))[:, 0].to_numpy()
            )
        return self._masks[where]

    def values(self, column: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A numeric column as float64 (times as microseconds), and where it is not null."""
        if column not in self._columns:
            # Untouched columns are converted whole and cut with numpy (no filtered frame needed).
            whole = self._frame is None and self._keep is not None
            series = self._source[column] if whole else self.frame[column]
            valid = series.is_not_null().to_numpy() if series.null_count() else None
            if series.dtype.is_temporal():
                values = _micros(series, 0).astype(np.float64)
            else:
                values = series.cast(pl.Float64).fill_null(0.0).to_numpy()
            if whole:
                values, valid = values[self._keep], None if valid is None else valid[self._keep]
            self._columns[column] = values, valid
        return self._columns[column]

    def span(self, agg: Agg, window: int | None) -> np.ndarray | None:
        age = self.cut - self.time
        if agg.span == "history":
            return None
        if agg.span == "open":
            return self.frame[self.family.end].is_null().to_numpy()  # type: ignore[index]
        w = window * _DAY_US  # type: ignore[operator]
        if agg.span == "window":
            return age < w
        if agg.span == "prior":
            return (age >= w) & (age < 2 * w)
        if self._end is None:
            self._end = _micros(self.frame[self.family.end], np.iinfo(np.int64).max)  # type: ignore[index]
        return (age >= w) & (self._end > self.cut - w)

    # -------------------------------------------------------------- grouped statistics
    def _count(self, m: np.ndarray | None) -> np.ndarray:
        return self.rows if m is None else np.bincount(self.slot[m], minlength=self.size)

    def _extreme(
        self, x: np.ndarray, m: np.ndarray | None, *, largest: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        if x.dtype.kind == "i":
            info = np.iinfo(x.dtype)
            start: Any = info.min if largest else info.max
        else:
            start = -np.inf if largest else np.inf
        out = np.full(self.size, start, dtype=x.dtype)
        ufunc = np.maximum if largest else np.minimum
        ufunc.at(out, self.slot if m is None else self.slot[m], x if m is None else x[m])
        return out, self._count(m) > 0

    def _time_extreme(
        self, rows: tuple[Any, ...], m: np.ndarray | None, *, largest: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The latest (or earliest) event time per slot among the rows ``m`` described by ``rows``."""
        key = (*rows, largest)
        if key not in self._extremes:
            self._extremes[key] = self._extreme(self.time, m, largest=largest)
        return self._extremes[key]

    def _last(self, m: np.ndarray | None, skip: np.ndarray | None = None) -> np.ndarray:
        """Row position of each customer's last row among ``m`` (in time order), ``-1`` if none."""
        rows = np.arange(len(self.slot))
        if skip is not None:
            m = skip if m is None else m & skip
        out = np.full(self.size, -1, dtype=np.int64)
        np.maximum.at(out, self.slot if m is None else self.slot[m], rows if m is None else rows[m])
        return out

    def _last_time(self, helper: LastTime) -> pl.Series:
        latest, found = self._extreme(self.time, self.mask(helper.where), largest=True)
        per_row = np.where(found, latest, _NEVER_US)[self.slot]
        return pl.Series(per_row).cast(pl.Datetime("us"))

    def banded(self, kind: str, column: str | None, where: tuple[Where, ...]) -> np.ndarray:
        """Counts (or sums of ``column``) per band and customer slot, shape ``(bands, size)``."""
        key = (kind, column, where)
        if key not in self._bands:
            m = self.mask(where)
            weights = None
            if column is not None:
                x, valid = self.values(column)
                m = valid if m is None else (m if valid is None else m & valid)
                weights = x if m is None else x[m]
                if kind == "count":
                    weights = None
            nb = len(self.edges) + 1
            # band-major: a window is then a sum of a few contiguous rows
            idx = self.band * self.size + self.slot if self.band is not None else self.slot
            idx = idx if m is None else idx[m]
            counts = np.bincount(idx, weights=weights, minlength=self.size * nb)
            self._bands[key] = counts.reshape(nb, self.size)
        return self._bands[key]

    def cumulative(self, kind: str, column: str | None, where: tuple[Where, ...]) -> np.ndarray:
        """Running totals of :meth:`banded` over the bands, in band order."""
        key = ("cumulative", kind, column, where)
        if key not in self._bands:
            bands = self.banded(kind, column, where)
            running = bands.copy()
            for i in range(1, len(running)):
                np.add(running[i - 1], bands[i], out=running[i])
            self._bands[key] = running
        return self._bands[key]

    def _band_slice(self, agg: Agg, window: int | None) -> slice:
        if agg.span == "history":
            return slice(None)
        i = int(np.searchsorted(self.edges, window * _DAY_US))  # type: ignore[operator]
        if agg.span == "window":
            return slice(0, i + 1)
        return slice(i + 1, int(np.searchsorted(self.edges, 2 * window * _DAY_US)) + 1)  # type: ignore[operator]

    def stat(self, agg: Agg, window: int | None) -> _Result:
        """One statistic per customer slot (``_Result``); rows of customers without events are
        undefined here, and made missing (or filled) by the caller."""
        stat = agg.stat
        if stat in ("count", "sum", "mean", "share") and agg.span in ("window", "prior", "history"):
            part = self._band_slice(agg, window)

            def total(kind: str, column: str | None, where: tuple[Where, ...]) -> np.ndarray:
                if part.start is None or part.start == 0:  # a window: the running total over bands
                    return self.cumulative(kind, column, where)[(part.stop or 0) - 1]
                return _rows_sum(self.banded(kind, column, where)[part])

            if stat == "count":
                return total("count", None, agg.where), None
            if stat == "sum":
                return self._typed(total("sum", agg.column, agg.where), agg.column), None
            if stat == "mean":
                n = total("count", agg.column, agg.where)
                return total("sum", agg.column, agg.where) / np.maximum(n, 1), n > 0
            n, denominator = total("count", None, agg.where), total("count", None, ())
            return n / np.maximum(denominator, 1), denominator > 0
        m = _and_np(self.mask(agg.where), self.span(agg, window))
        if stat == "count":
            return self._count(m), None
        if stat in ("sum", "mean", "min", "max"):
            x, valid = self.values(agg.column)  # type: ignore[arg-type]
            m = _and_np(m, valid)
            if stat in ("min", "max"):
                value, found = self._extreme(x, m, largest=stat == "max")
                return self._typed(value, agg.column), found
            sums = np.bincount(self.slot if m is None else self.slot[m], x if m is None else x[m], self.size)
            if stat == "sum":
                return self._typed(sums, agg.column), None
            n = self._count(m)
            return sums / np.maximum(n, 1), n > 0
        if stat in ("last", "prev"):
            last = self._last(m)
            if stat == "prev":
                last = self._last(m, skip=np.arange(len(self.slot)) != last[self.slot])
            return self._gather(agg.column or self.family.time, last), last >= 0
        if stat == "n_unique":
            column = agg.column or self.family.time
            pairs = pl.DataFrame({"slot": self.slot, "x": self.frame[column]})
            pairs = (pairs if m is None else pairs.filter(pl.Series(m))).drop_nulls().unique()
            return np.bincount(pairs["slot"].to_numpy(), minlength=self.size), None
        rows = (agg.where, agg.span, window if agg.windowed else None)
        if stat in ("days_since", "days_since_first"):
            latest, found = self._time_extreme(rows, m, largest=stat == "days_since")
            return (self.cut - latest) / _DAY_US, found
        if stat == "mean_gap":
            n = self._count(m)
            latest, _ = self._time_extreme(rows, m, largest=True)
            first, _ = self._time_extreme(rows, m, largest=False)
            return (latest - first) / _DAY_US / np.maximum(n - 1, 1), n > 1
        raise ValueError(f"unknown statistic {stat!r}")

    def _typed(self, values: np.ndarray, column: str | None) -> Any:
        dtype = self.frame[column].dtype if column else None
        return values.astype(np.int64) if dtype is not None and dtype.is_integer() else values

    def _gather(self, column: str, rows: np.ndarray) -> pl.Series:
        return (
            self.frame[column].gather(np.maximum(rows, 0))
            if len(self.slot)
            else self.frame[column].clear(self.size)
        )


def _rows_sum(rows: np.ndarray) -> np.ndarray:
    """The sum of the rows of a small 2-D array, added in row order (exact for counts)."""
    out = rows[0].copy()
    for row in rows[1:]:
        out += row
    return out


def _and_np(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else a if b is None else a & b


def _edges(aggs: Sequence[Agg], windows: Sequence[int]) -> list[int]:
    banded = [a for a in aggs if a.stat in ("count", "sum", "mean", "share") and a.windowed]
    days = {w for a in banded if a.span in ("window", "prior") for w in windows}
    days |= {2 * w for a in banded if a.span == "prior" for w in windows}
    return sorted(d * _DAY_US for d in days)


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
    frame = pl.DataFrame({"x": pl.Series(a, nan_to_null=True)})
    return frame.select(_derived(d, "x", None))[:, 0]


def _assemble(
    family: Family,
    features: Sequence[Agg | Derived],
    windows: Sequence[int],
    results: Mapping[str, _Result],
    positions: np.ndarray,
    present: np.ndarray,
) -> pl.DataFrame:
    """The family's output columns for the customers at ``positions``: missing values (customers
    without events, undefined statistics) are NaN, or ``fill`` where zero is the truth; then the
    derived columns, in declaration order (derived may feed derived)."""
    windowed = windowed_names(features)
    columns: dict[str, np.ndarray | pl.Series] = {}
    for f in features:
        for w in windows if windowed[f.name] else [None]:
            name = feature_name(family, f.name, w)
            if isinstance(f, Derived):
                left = _numeric(columns[feature_name(family, f.left, w if windowed[f.left] else None)])
                right = None
                if f.right is not None:
                    right = _numeric(columns[feature_name(family, f.right, w if windowed[f.right] else None)])
                columns[name] = _derived_values(f, left, right)
                continue
            values, valid = results[name]
            defined = present if valid is None else present & valid[positions]
            if isinstance(values, pl.Series):
                series = values.gather(positions)
                series = pl.select(pl.when(pl.lit(pl.Series(defined))).then(pl.lit(series))).to_series()
                columns[name] = series.fill_null(f.fill) if f.fill is not None else series
            elif bool(defined.all()):
                columns[name] = values[positions]
            else:
                missing = f.fill if f.fill is not None else np.nan
                columns[name] = np.where(defined, values[positions], missing)
    keep = output_columns(family, features, windows)
    return pl.DataFrame({name: columns[name] for name in keep})


def _customers_part(
    family: Family, frame: pl.DataFrame, slots: _Slots, cutoff: datetime, positions: np.ndarray, size: int
) -> pl.DataFrame | None:
    """The customers table's own features (one row per customer): no grouping, a gather."""
    features = family_features(family, frame.columns)
    aggs = [f for f in features if isinstance(f, Agg)]
    if not aggs:
        return None
    exprs = [_row_expr(a, family, cutoff).alias(feature_name(family, a.name, None)) for a in aggs]
    values = frame.select(exprs)
    row = np.full(size, -1, dtype=np.int64)
    slot = slots(frame[ID])
    known = slot >= 0
    row[slot[known]] = np.arange(frame.height)[known]
    found = row[positions]
    gathered = values[np.maximum(found, 0)] if frame.height else values.clear(len(positions))
    ok = pl.Series(found >= 0)
    part = gathered.with_columns(pl.when(ok).then(pl.col(c)).alias(c) for c in gathered.columns)
    return _complete(part, family, features, ())


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
        seen[table.slot[(table.time <= cut) & (table.slot >= 0)]] = True
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
    family: Family, prepared: PreparedTables, cutoff: datetime, windows: Sequence[int], positions: np.ndarray
) -> pl.DataFrame:
    """One event family's features for the customers at ``positions`` (their slots)."""
    features = family_features(family, prepared.tables[family.table].columns)
    aggs = [f for f in features if isinstance(f, Agg)]
    cut = _Cut(family, prepared.prepared[family.name], cutoff, prepared.slots.size, _edges(aggs, windows))
    names = [
        (a, w, feature_name(family, a.name, w)) for a in aggs for w in (windows if a.windowed else [None])
    ]
    results = {name: cut.stat(a, w) for a, w, name in names}
    present = cut.rows[positions] > 0
    del cut
    return _assemble(family, features, windows, results, positions, present)


def feature_frame(
    tables: Mapping[str, pl.DataFrame] | PreparedTables,
    cutoff: datetime,
    windows: Sequence[int],
    *,
    presorted: bool = False,
    customers: pl.Series | None = None,
) -> pl.DataFrame:
    """Every family's features at ``cutoff``: one row per customer of the population, sorted by id.

    ``tables`` may be the result of :func:`prepare_tables`, to share the encoding between many
    cutoffs (``presorted`` is accepted for compatibility and has no effect). ``customers`` (sorted
    ids) asks for exactly those rows instead, as a left join onto the population would give them
    (missing features for ids outside it). Families run one after the other: the peak memory is
    that of the largest family, not of all of them at once.
    """
    del presorted
    prepared = prepare_tables(tables)
    population = _population(prepared, cutoff)
    ids = population if customers is None else customers.rename(ID)
    positions = prepared.slots(ids)
    outside = None
    if customers is not None:
        inside = ids.is_in(population.implode()).to_numpy() & (positions >= 0)
        outside = None if inside.all() else pl.Series(inside)
        positions = np.where(inside, positions, 0)
    parts: list[pl.DataFrame] = [ids.to_frame()]
    for family in FAMILIES:
        part = None
        if family.name in prepared.prepared:
            part = _event_part(family, prepared, cutoff, windows, positions)
        elif family.one_row_per_customer and family.table in prepared.tables:
            frame = prepared.tables[family.table]
            part = _customers_part(family, frame, prepared.slots, cutoff, positions, prepared.slots.size)
        if part is not None:
            if outside is not None:
                part = part.select(pl.when(pl.lit(outside)).then(pl.col(c)).alias(c) for c in part.columns)
            parts.append(part)
    return pl.concat(parts, how="horizontal")
