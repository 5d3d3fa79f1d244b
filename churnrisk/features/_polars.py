"""The Polars executor: turns the declarations of :mod:`._spec` into one lazy query per table.

Per table and cutoff: keep rows with event time ``<= cutoff``, hide the ``known_when`` times that
lie after the cutoff, add the row-level helpers, then one ``group_by(customer_id).agg([...])``
computes every statistic of every window as a conditional aggregation (no join per window, no
Python per customer). Derived columns and fills are applied after joining the families onto the
population.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from churnrisk.contract import TABLES
from churnrisk.features._spec import FAMILIES, Agg, Col, Derived, Duration, Family, Lag, LastTime, Where

__all__ = ["feature_frame", "family_features", "feature_name", "prepare_tables"]

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


def _span(agg: Agg, family: Family, cutoff: datetime, window: int | None) -> pl.Expr | None:
    t = pl.col(family.time)
    if agg.span == "history":
        return None
    if agg.span == "open":
        return pl.col(family.end).is_null()  # type: ignore[arg-type]
    start = cutoff - timedelta(days=window)  # type: ignore[arg-type]
    if agg.span == "window":
        return t > start
    if agg.span == "prior":
        return (t > start - timedelta(days=window)) & (t <= start)  # type: ignore[arg-type]
    end = pl.col(family.end)  # type: ignore[arg-type]
    return (t <= start) & (end.is_null() | (end > start))


def _and(conditions: list[pl.Expr]) -> pl.Expr | None:
    if not conditions:
        return None
    out = conditions[0]
    for c in conditions[1:]:
        out = out & c
    return out


def _days(cutoff: datetime, times: pl.Expr) -> pl.Expr:
    return (pl.lit(cutoff) - times).dt.total_microseconds() / _DAY_US


def _agg_expr(agg: Agg, family: Family, cutoff: datetime, window: int | None) -> pl.Expr:
    span = _span(agg, family, cutoff, window)
    mask = _and([*(_where(w) for w in agg.where), *([span] if span is not None else [])])
    t = pl.col(family.time)

    def rows(expr: pl.Expr) -> pl.Expr:
        return expr if mask is None else expr.filter(mask)

    def count(m: pl.Expr | None) -> pl.Expr:
        return (pl.len() if m is None else m.sum()).cast(pl.Int64)

    x = pl.col(agg.column) if agg.column else t
    stat = agg.stat
    if stat == "count":
        return count(mask)
    if stat in ("sum", "mean", "min", "max", "last"):
        return getattr(rows(x), stat)()
    if stat == "prev":
        return pl.when(count(mask) > 1).then(rows(x).tail(2).first())
    if stat == "n_unique":
        return rows(x).drop_nulls().n_unique().cast(pl.Int64)
    if stat == "days_since":
        return _days(cutoff, rows(t).max())
    if stat == "days_since_first":
        return _days(cutoff, rows(t).min())
    if stat == "share":
        denominator = count(span)
        numerator = count(mask)
        return pl.when(denominator > 0).then(numerator / denominator)
    if stat == "mean_gap":
        n = count(mask)
        spread = (rows(t).max() - rows(t).min()).dt.total_microseconds() / _DAY_US
        return pl.when(n > 1).then(spread / (n - 1))
    raise ValueError(f"unknown statistic {stat!r}")


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


# ---------------------------------------------------------------------- one family
def _family_lazy(
    family: Family, frame: pl.DataFrame, cutoff: datetime, windows: Sequence[int], *, presorted: bool
) -> tuple[pl.LazyFrame, list[Agg | Derived]] | None:
    features = family_features(family, frame.columns)
    aggs = [f for f in features if isinstance(f, Agg)]
    if not aggs or family.time not in frame.columns and not family.one_row_per_customer:
        return None
    t = pl.col(family.time) if family.time in frame.columns else None
    needed = {ID, family.time, *(family.known_when), *(c for a in aggs for c in a.columns)}
    needed |= {c for h in family.helpers for c in h.columns}
    rows = frame.select([c for c in frame.columns if c in needed])
    if t is not None:
        # Events at the cutoff belong to the features; later events do not exist yet.
        rows = rows.filter(t.is_null() | (t <= cutoff) if family.one_row_per_customer else t <= cutoff)
    # One contiguous chunk: float sums then do not depend on how the rows after the cutoff
    # (now gone) split the table into chunks, so features are bit-for-bit reproducible.
    lf = rows.rechunk().lazy()
    hidden = [c for c in family.known_when if c in frame.columns]
    if hidden:
        # An end or resolution after the cutoff had not happened at the cutoff.
        lf = lf.with_columns(pl.when(pl.col(c) <= cutoff).then(pl.col(c)).alias(c) for c in hidden)
    if family.one_row_per_customer:
        exprs = [_row_expr(a, family, cutoff).alias(feature_name(family, a.name, None)) for a in aggs]
        return lf.select(pl.col(ID), *exprs), features
    if family.order_needed and not presorted:
        # Stable: events at the same time keep their order in the table. Grouping keeps row order
        # inside a group, so time order is enough, unless a Lag needs each customer's rows together.
        lagged = any(isinstance(h, Lag) for h in family.helpers)
        lf = lf.sort([ID, family.time] if lagged else family.time, maintain_order=True)
    helpers = [h for h in family.helpers if set(h.columns) <= set(frame.columns)]
    if helpers:
        lf = lf.with_columns(_helper(h, family).alias(h.name) for h in helpers)
    exprs = [
        _agg_expr(a, family, cutoff, w).alias(feature_name(family, a.name, w))
        for a in aggs
        for w in (windows if a.windowed else [None])
    ]
    return lf.group_by(ID).agg(exprs), features


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


# ---------------------------------------------------------------------- all families
def prepare_tables(tables: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Sort every event table by customer and time once, for many cutoffs over the same data.

    Grouping sorted data is several times faster, and time order inside each customer is then
    already right for ``last``/``prev``.
    """
    out = dict(tables)
    for family in FAMILIES:
        frame = tables.get(family.table)
        if frame is None or family.one_row_per_customer or family.time not in frame.columns:
            continue
        # Stable, by customer only where order does not matter: rows of a customer stay in the
        # order build_features sees them, so sums come out bit for bit the same.
        keys = [ID, family.time] if family.order_needed else [ID]
        out[family.table] = frame.sort(keys, maintain_order=True)
    return out


def _population(
    tables: Mapping[str, pl.DataFrame], active: list[pl.DataFrame], cutoff: datetime
) -> pl.Series:
    """Customers who signed up by the cutoff, or (without a signup time) had any event by then."""
    customers = tables["customers"]
    if "signup_at" in customers.columns and customers["signup_at"].null_count() == 0:
        return customers.filter(pl.col("signup_at") <= cutoff)[ID].sort()
    seen = pl.concat([a.select(ID) for a in active]).unique() if active else customers.head(0).select(ID)
    in_seen = pl.col(ID).is_in(seen[ID].implode())
    if "signup_at" in customers.columns:
        signup = pl.col("signup_at")
        keep = (signup <= cutoff) | (signup.is_null() & in_seen)
    else:
        keep = in_seen
    return customers.filter(keep)[ID].sort()


def _align(frame: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    """The rows of ``frame`` (unique ids) for the sorted ``ids``, nulls where it has none.

    A binary search instead of a join: the population and each family are keyed the same way.
    """
    frame = frame.sort(ID)
    if frame.height == 0:
        return frame.clear(ids.len()).drop(ID)
    position = frame[ID].search_sorted(ids, side="left").clip(upper_bound=frame.height - 1)
    found = frame[ID].gather(position) == ids
    rows = frame.drop(ID)[position]
    return rows.with_columns(pl.when(pl.lit(found)).then(pl.col(c)).alias(c) for c in rows.columns)


def feature_frame(
    tables: Mapping[str, pl.DataFrame], cutoff: datetime, windows: Sequence[int], *, presorted: bool = False
) -> pl.DataFrame:
    """Every family's features at ``cutoff``: one row per customer of the population, sorted by id.

    Families run one after the other (each query is parallel inside): the peak memory is that of
    the largest family, not of all of them at once.
    """
    plans = []
    for family in FAMILIES:
        frame = tables.get(family.table)
        built = None if frame is None else _family_lazy(family, frame, cutoff, windows, presorted=presorted)
        if built is not None:
            plans.append((family, *built))
    results = [(family, lf.collect(), features) for family, lf, features in plans]
    active = [frame for family, frame, _ in results if not family.one_row_per_customer]
    ids = _population(tables, active, cutoff)
    del active
    parts: list[pl.DataFrame] = [ids.to_frame()]
    while results:
        family, frame, features = results.pop(0)
        fills, stages = _finish(family, features, windows)
        part = _align(frame, ids).lazy()
        for exprs in [fills, *stages]:
            part = part.with_columns(exprs) if exprs else part
        parts.append(part.select(output_columns(family, features, windows)).collect())
        del frame
    return pl.concat(parts, how="horizontal")
