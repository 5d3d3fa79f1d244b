"""The Spark executor: the declarations of :mod:`._spec`, translated to ``pyspark.sql.functions``.

It gives every statistic, span and helper of the vocabulary the meaning the default engine
(:mod:`._polars`) gives it, so that both compute the same numbers from the same declarations (the
parity tests in ``tests/test_spark.py`` check every family):

* per table and cutoff: rows with event time ``<= cutoff``, ``known_when`` times after the cutoff
  hidden, row-level helpers added with window functions, then one ``groupBy(customer_id).agg``
  of conditional aggregations (``when(mask, x)``) for every statistic and window;
* the families' aggregates are joined onto the population, then fills and derived columns are
  applied as column expressions.

Where Spark differs by default, the translation follows the default engine: a sum over no rows is
0, a division is guarded (Spark's ANSI mode raises on division by zero), and "last"/"prev" order
rows by event time, then by their position in the input (a stable sort), here a
``monotonically_increasing_id`` taken when the table is read.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import reduce
from typing import TYPE_CHECKING

from churnrisk.features._polars import (
    ID,
    family_features,
    feature_name,
    output_columns,
    windowed_names,
)
from churnrisk.features._spec import FAMILIES, Agg, Col, Derived, Duration, Family, Lag, LastTime, Where

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["spark_feature_frame", "timestamp"]

_DAY_US = 86_400_000_000
# "No such event": earlier than any event (as in the Polars executor).
_NEVER = datetime(1, 1, 1)
# Input position, the tie-breaker for events of one customer at the same time.
ROW = "_churnrisk_row"

_OPS: dict[str, Callable[[Column, Column], Column]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _f():  # type: ignore[no-untyped-def]
    from pyspark.sql import functions

    return functions


def timestamp(value: datetime) -> Column:
    """A ``timestamp_ntz`` literal: event times are naive, whatever the session's time zone."""
    return _f().lit(value.isoformat(sep=" ")).cast("timestamp_ntz")


def _days_between(start: Column, end: Column) -> Column:
    """Days from ``start`` to ``end`` as a float, from exact microseconds (as Polars does)."""
    return _f().timestamp_diff("MICROSECOND", start, end) / _DAY_US


# ---------------------------------------------------------------------- expressions
def _where(where: Where) -> Column:
    F = _f()
    col = F.col(where.column)
    if where.op == "is_null":
        return col.isNull()
    if where.op == "not_null":
        return col.isNotNull()
    if where.op == "is_true":
        return F.coalesce(col, F.lit(False))
    right = F.col(where.value.name) if isinstance(where.value, Col) else F.lit(where.value)
    return _OPS[where.op](col, right)


def _and(conditions: Sequence[Column]) -> Column | None:
    return reduce(operator.and_, conditions) if conditions else None


def _span(agg: Agg, family: Family, cutoff: datetime, window: int | None) -> Column | None:
    F = _f()
    t = F.col(family.time)
    if agg.span == "history":
        return None
    if agg.span == "open":
        return F.col(family.end).isNull()  # type: ignore[arg-type]
    start = cutoff - timedelta(days=window)  # type: ignore[arg-type]
    if agg.span == "window":
        return t > timestamp(start)
    if agg.span == "prior":
        return (t > timestamp(start - timedelta(days=window))) & (t <= timestamp(start))  # type: ignore[arg-type]
    end = F.col(family.end)  # type: ignore[arg-type]
    return (t <= timestamp(start)) & (end.isNull() | (end > timestamp(start)))


def _agg_expr(agg: Agg, family: Family, cutoff: datetime, window: int | None) -> Column:
    F = _f()
    span = _span(agg, family, cutoff, window)
    mask = _and([*(_where(w) for w in agg.where), *([span] if span is not None else [])])
    t = F.col(family.time)

    def rows(expr: Column) -> Column:
        return expr if mask is None else F.when(mask, expr)

    def count(m: Column | None) -> Column:
        return F.count(F.lit(1)) if m is None else F.count(F.when(m, 1))

    x = F.col(agg.column) if agg.column else t
    order = F.struct(t, F.col(ROW))
    stat = agg.stat
    if stat == "count":
        return count(mask)
    if stat == "sum":
        return F.coalesce(F.sum(rows(x)), F.lit(0))  # Polars: the sum of no rows is 0
    if stat in ("mean", "min", "max"):
        return {"mean": F.avg, "min": F.min, "max": F.max}[stat](rows(x))
    if stat == "last":
        return F.max_by(x, rows(order))
    if stat == "prev":
        ordered = F.array_sort(F.collect_list(rows(F.struct(t, F.col(ROW), x.alias("_x")))))
        return F.get(ordered, F.size(ordered) - 2)["_x"]
    if stat == "n_unique":
        return F.count_distinct(rows(x))
    if stat == "days_since":
        return _days_between(F.max(rows(t)), timestamp(cutoff))
    if stat == "days_since_first":
        return _days_between(F.min(rows(t)), timestamp(cutoff))
    if stat == "share":
        denominator = count(span)
        return F.when(denominator > 0, count(mask) / denominator)
    if stat == "mean_gap":
        n = count(mask)
        return F.when(n > 1, _days_between(F.min(rows(t)), F.max(rows(t))) / (n - 1))
    raise ValueError(f"unknown statistic {stat!r}")


def _row_expr(agg: Agg, family: Family, cutoff: datetime) -> Column:
    """The same statistics for a table with one row per customer (no grouping)."""
    F = _f()
    if agg.stat == "days_since_first":
        return _days_between(F.col(family.time), timestamp(cutoff))
    if agg.stat == "last":
        return F.col(agg.column)  # type: ignore[arg-type]
    raise ValueError(f"statistic {agg.stat!r} is not defined for one row per customer")


def _helper(helper: Duration | Lag | LastTime, family: Family) -> Column:
    from pyspark.sql import Window

    F = _f()
    if isinstance(helper, Duration):
        return _days_between(F.col(helper.start), F.col(helper.end))
    if isinstance(helper, Lag):
        return F.lag(helper.column).over(Window.partitionBy(ID).orderBy(family.time, ROW))
    mask = _and([_where(w) for w in helper.where])
    latest = F.max(F.when(mask, F.col(family.time))).over(Window.partitionBy(ID))  # type: ignore[arg-type]
    return F.coalesce(latest, timestamp(_NEVER))


def _derived(d: Derived, a: Column, b: Column | None) -> Column:
    F = _f()
    if d.op == "diff":
        return a - b  # type: ignore[operator]
    if d.op == "ratio":
        b = b.cast("double")  # type: ignore[union-attr]
        return F.when(b != 0, a / b)
    expr = F.lit(None).cast("string")
    for upper, label in reversed(d.bins):
        expr = F.when(a <= upper, F.lit(label)).otherwise(expr)
    return F.when(a.isNotNull(), expr)


# ---------------------------------------------------------------------- one family
def _family_frame(
    family: Family, frame: DataFrame, cutoff: datetime, windows: Sequence[int]
) -> tuple[DataFrame, list[Agg | Derived]] | None:
    F = _f()
    features = family_features(family, frame.columns)
    aggs = [f for f in features if isinstance(f, Agg)]
    if not aggs or family.time not in frame.columns and not family.one_row_per_customer:
        return None
    needed = {ID, family.time, *(family.known_when), *(c for a in aggs for c in a.columns)}
    needed |= {c for h in family.helpers for c in h.columns}
    df = frame.select([c for c in frame.columns if c in needed]).withColumn(
        ROW, F.monotonically_increasing_id()
    )
    if family.end is not None and family.end not in frame.columns:  # no end column: nothing has ended
        df = df.withColumn(family.end, F.lit(None).cast("timestamp_ntz"))
    if family.time in frame.columns:
        t = F.col(family.time)
        # Events at the cutoff belong to the features; later events do not exist yet.
        keep = (
            (t.isNull() | (t <= timestamp(cutoff))) if family.one_row_per_customer else t <= timestamp(cutoff)
        )
        df = df.filter(keep)
    for c in (c for c in family.known_when if c in frame.columns):
        # An end or resolution after the cutoff had not happened at the cutoff.
        df = df.withColumn(c, F.when(F.col(c) <= timestamp(cutoff), F.col(c)))
    for h in (h for h in family.helpers if set(h.columns) <= set(frame.columns)):
        df = df.withColumn(h.name, _helper(h, family))
    if family.one_row_per_customer:
        exprs = [_row_expr(a, family, cutoff).alias(feature_name(family, a.name, None)) for a in aggs]
        return df.select(F.col(ID), *exprs), features
    exprs = [
        _agg_expr(a, family, cutoff, w).alias(feature_name(family, a.name, w))
        for a in aggs
        for w in (windows if a.windowed else [None])
    ]
    return df.groupBy(ID).agg(*exprs), features


def _finish(family: Family, features: Sequence[Agg | Derived], windows: Sequence[int]) -> list[Column]:
    """Fills where zero is the truth and derived columns, as expressions over the joined aggregates."""
    F = _f()
    windowed = windowed_names(features)

    def name(n: str, w: int | None) -> str:
        return feature_name(family, n, w if windowed[n] else None)

    exprs: dict[str, Column] = {}
    for f in features:
        for w in windows if windowed[f.name] else [None]:
            if isinstance(f, Agg):
                col = F.col(name(f.name, w))
                exprs[name(f.name, w)] = col if f.fill is None else F.coalesce(col, F.lit(f.fill))
            else:
                right = exprs[name(f.right, w)] if f.right else None
                exprs[name(f.name, w)] = _derived(f, exprs[name(f.left, w)], right)
    return [exprs[c].alias(c) for c in output_columns(family, features, windows)]


# ---------------------------------------------------------------------- all families
def _population(customers: DataFrame, seen: list[str], cutoff: datetime) -> Column:
    """Customers who signed up by the cutoff, or (without a signup time) had any event by then.

    ``seen`` are marker columns, one per event family, non-null where the customer had an event
    by the cutoff: the family aggregates are joined once and serve both purposes.
    """
    F = _f()
    in_seen = reduce(operator.or_, [F.col(m).isNotNull() for m in seen]) if seen else F.lit(False)
    if "signup_at" in customers.columns:
        signup = F.col("signup_at")
        return (signup <= timestamp(cutoff)) | (signup.isNull() & in_seen)
    return in_seen


def spark_feature_frame(
    tables: Mapping[str, DataFrame], cutoff: datetime, windows: Sequence[int]
) -> DataFrame:
    """Every family's features at ``cutoff`` as a Spark DataFrame, one row per customer of the
    population, sorted by id, with the columns and column order of the Polars executor.

    ``tables`` are Spark DataFrames typed like the :class:`~churnrisk.store.EventStore` tables
    (naive ``timestamp_ntz`` times, ``double`` numbers); see :func:`churnrisk.spark.read_store`.
    """
    plans = []
    for family in FAMILIES:
        frame = tables.get(family.table)
        built = None if frame is None else _family_frame(family, frame, cutoff, windows)
        if built is not None:
            plans.append((family, *built))
    F = _f()
    customers = tables["customers"]
    out = customers.select(ID, *(["signup_at"] if "signup_at" in customers.columns else []))
    columns, seen = [], []
    for family, frame, features in plans:
        if not family.one_row_per_customer:
            seen.append(f"_seen_{family.name}")
            frame = frame.withColumn(seen[-1], F.lit(True))
        out = out.join(frame, on=ID, how="left")
        columns += _finish(family, features, windows)
    result = out.filter(_population(customers, seen, cutoff)).select(ID, *columns)
    # 32-bit numbers, as the Polars executor gives them (see churnrisk.features._polars.compact)
    small = {"double": "float", "bigint": "int"}
    return result.select(
        ID, *(F.col(n).cast(small[t]) if t in small else F.col(n) for n, t in result.dtypes if n != ID)
    ).orderBy(ID)
