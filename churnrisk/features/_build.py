"""Point-in-time features for one cutoff: the public entry point over the Polars executor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from churnrisk.errors import ChurnriskError
from churnrisk.features._polars import feature_frame
from churnrisk.features._spec import DEFAULT_WINDOWS
from churnrisk.store import EventStore

__all__ = [
    "build_features",
    "check_windows",
    "feature_table",
    "numeric_values",
    "promoted",
    "to_cutoff",
    "to_pandas_column",
    "to_pandas_features",
]


def to_cutoff(cutoff: Any, name: str = "cutoff") -> datetime:
    """A naive ``datetime`` from a date, datetime, pandas Timestamp or ISO text."""
    try:
        value: Any = pd.Timestamp(cutoff)
    except (TypeError, ValueError):
        value = pd.NaT
    if value is pd.NaT or not isinstance(value, pd.Timestamp) or isinstance(cutoff, bool):
        raise ChurnriskError(
            f"The '{name}' parameter must be a date or datetime. Got {cutoff!r} instead. "
            "Suggestion: pass e.g. '2024-06-30'."
        )
    if value.tzinfo is not None:
        raise ChurnriskError(
            f"The '{name}' parameter must be naive (event times are stored without a time zone). "
            f"Got {cutoff!r} instead. Suggestion: drop the offset, e.g. '{value.tz_localize(None)}'."
        )
    return value.to_pydatetime()


def check_windows(windows: Sequence[int]) -> tuple[int, ...]:
    """Windows as a sorted tuple of distinct positive whole days."""
    try:
        values = tuple(sorted({int(w) for w in windows}))
        ok = bool(values) and all(float(w) == int(w) and int(w) > 0 for w in windows)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ChurnriskError(
            f"The 'windows' parameter must be positive whole numbers of days. Got {windows!r} instead. "
            "Suggestion: windows=(30, 90, 180, 365)."
        )
    return values


def numeric_values(column: pl.Series) -> np.ndarray:
    """A numeric column as numpy (no copy when nothing is missing); whole numbers with missing
    values become ``float32`` with NaN, as every other feature number is."""
    if column.dtype.is_integer() and column.has_nulls():
        column = column.cast(pl.Float32)
    return column.to_numpy()


def promoted(a: np.dtype, b: np.dtype) -> np.dtype:
    """The dtype holding both, keeping 32-bit features 32-bit (numpy takes int32 + float32 to float64)."""
    if a != b and {a, b} <= {np.dtype(np.int32), np.dtype(np.float32)}:
        return np.dtype(np.float32)
    return np.result_type(a, b)


def to_pandas_column(column: pl.Series) -> pd.Series:
    """A non-numeric feature column in pandas: text as a categorical with sorted categories.

    Works on the 32-bit codes of a Polars categorical or enum (text is made one first): the
    categories present are sorted, and each code is mapped to its rank in one gather.
    """
    if column.dtype == pl.String:
        column = column.cast(pl.Categorical)
    if not isinstance(column.dtype, pl.Categorical | pl.Enum):
        return column.to_pandas()
    present = column.unique().drop_nulls()
    names = present.cast(pl.String)
    order = names.arg_sort().to_numpy()
    physical = column.to_physical()
    top = physical.max()
    rank = np.full((0 if top is None else int(top)) + 2, -1, dtype=np.int32)  # type: ignore[arg-type]
    rank[present.to_physical().to_numpy()[order]] = np.arange(len(order), dtype=np.int32)
    codes = rank[physical.fill_null(len(rank) - 1).to_numpy()]  # the last rank: missing
    dtype = pd.CategoricalDtype(pd.Index(names.sort().to_list(), dtype="str"))  # str even when empty
    return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), copy=False)


def to_pandas_features(frame: pl.DataFrame) -> pd.DataFrame:
    """One conversion at the end: text columns become pandas categoricals, indexed by customer id.

    ``frame`` is consumed (emptied): its columns are handed over one at a time, so that the peak
    holds one copy of the table, not two.
    """
    index = pd.Index(frame.drop_in_place("customer_id").to_pandas(), name="customer_id")
    columns = {}
    for name in list(frame.columns):
        column = frame.drop_in_place(name)
        if column.dtype.is_numeric():
            # numpy straight away: no Arrow round trip, no copy for a single chunk
            columns[name] = pd.Series(numeric_values(column), copy=False)
        else:
            columns[name] = to_pandas_column(column)
        del column
    out = pd.DataFrame(columns, copy=False)
    out.index = index
    return out


def build_features(
    store: EventStore,
    cutoff: Any,
    *,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    customers: Sequence[Any] | pd.Index | None = None,
) -> pd.DataFrame:
    """Point-in-time features of every customer known at ``cutoff``.

    Parameters
    ----------
    store : EventStore
        The event tables; each optional table switches on its signal family.
    cutoff : date, datetime or str
        Features see only events at or before this instant (events exactly at the cutoff
        included); an end date or a ticket resolution after it is treated as not known yet.
    windows : sequence of int, default (30, 90, 180, 365)
        Look-back windows in days; a window ``w`` covers ``(cutoff - w, cutoff]``.
    customers : sequence of customer ids, optional
        Only these customers' rows (those of them known at the cutoff): their events are picked
        out first, so the work and the memory are those of their rows, and every value is the one
        the whole store gives (each feature reads one customer's events only).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (customers who signed up by the cutoff, or, without a signup
        time, had an event by then), one column per feature named ``<family>_<stat>[_<w>d]``;
        see :func:`describe_feature`. Missing values are NaN unless zero is the truth.

    Examples
    --------
    >>> import pandas as pd
    >>> from churnrisk.store import EventStore
    >>> store = EventStore.from_frames({
    ...     "customers": pd.DataFrame({"customer_id": [1, 2]}),
    ...     "orders": pd.DataFrame({
    ...         "customer_id": [1, 1, 2], "amount": [10.0, 20.0, 5.0],
    ...         "ordered_at": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-05-01"])}),
    ... })
    >>> build_features(store, "2024-03-31", windows=[90])["purchases_frequency_90d"].tolist()
    [1]
    """
    tables = store.tables if customers is None else _of_customers(store.tables, customers)
    frame = feature_frame(tables, to_cutoff(cutoff), check_windows(windows))
    return to_pandas_features(frame)


def feature_table(
    store: EventStore,
    cutoff: Any,
    *,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    release: bool = False,
) -> pl.DataFrame:
    """The table of :func:`build_features` as a Polars frame, to write as it is (no pandas).

    ``customer_id`` comes first; missing numbers are null; text is an ``Enum`` of its sorted
    values, so that a file written from it reads back (with pandas) as :func:`build_features`
    returns it, and as the pandas frame would have been written.

    ``release`` empties ``store``: each table is dropped as soon as its features are computed,
    so that the peak memory holds the largest table beside the features, not the whole store
    beside them (for a store read for this table alone).

    Examples
    --------
    >>> import pandas as pd
    >>> from churnrisk.store import EventStore
    >>> store = EventStore.from_frames({
    ...     "customers": pd.DataFrame({
    ...         "customer_id": [1, 2], "signup_at": pd.to_datetime(["2024-01-01"] * 2),
    ...         "plan": ["pro", "basic"]}),
    ...     "orders": pd.DataFrame({
    ...         "customer_id": [1], "amount": [10.0], "ordered_at": pd.to_datetime(["2024-03-01"])}),
    ... })
    >>> table = feature_table(store, "2024-03-31", windows=[90])
    >>> table["purchases_aov_90d"].to_list(), table["customer_plan"].to_list()
    ([10.0, None], ['pro', 'basic'])
    >>> table["customer_plan"].dtype
    Enum(categories=['basic', 'pro'])
    """
    at, windows = to_cutoff(cutoff), check_windows(windows)
    tables = store.tables
    if release:
        store.tables = {}
    frame = feature_frame(tables, at, windows, release=release)
    ids = frame.drop_in_place("customer_id")
    # one column at a time: the table is never held twice
    return pl.DataFrame([ids, *(_writable(frame.drop_in_place(name)) for name in list(frame.columns))])


def _writable(column: pl.Series) -> pl.Series:
    """A feature column as :func:`to_pandas_column` and a writer from pandas would give it."""
    if column.dtype.is_float():
        return column.fill_nan(None)
    if column.dtype == pl.String or isinstance(column.dtype, pl.Categorical | pl.Enum):
        text = column.cast(pl.String)
        return text.cast(pl.Enum(text.drop_nulls().unique().sort()))
    return column


def _of_customers(
    tables: dict[str, pl.DataFrame], customers: Sequence[Any] | pd.Index
) -> dict[str, pl.DataFrame]:
    """Every table's rows of ``customers`` (in the tables' own order).

    The rows within the customers' id range are taken first (a comparison, no hashing), so that
    taking a block of sorted ids at a time costs about one pass over the store, not one per block.
    """
    ids = pl.Series("customer_id", list(customers)).cast(tables["customers"]["customer_id"].dtype)
    within = pl.col("customer_id").is_between(ids.min(), ids.max()) if len(ids) else pl.lit(False)
    wanted = pl.col("customer_id").is_in(ids.implode())
    return {name: table.filter(within).filter(wanted) for name, table in tables.items()}
