"""Training sets: features and labels stacked over many cutoffs, keyed by (customer_id, cutoff).

Every row is one customer at one cutoff (DESIGN §3): features see only events up to the cutoff,
the label only ``(cutoff + lead_time, cutoff + lead_time + horizon]``. The event tables are
put in time order and encoded once, and reused for every cutoff. Rows of a censored cutoff (its
horizon runs past the end of the data) are kept with a missing ``churned``, so that
:func:`update_training_set` can fill them in once the outcome is known, next to the rows of the
new cutoffs, without rebuilding history.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from pandas.api.types import union_categoricals

from churnrisk.errors import ChurnriskError
from churnrisk.features._build import (
    check_windows,
    numeric_values,
    promoted,
    to_cutoff,
    to_pandas_column,
    to_pandas_features,
)
from churnrisk.features._polars import PreparedTables, feature_frame, prepare_tables
from churnrisk.features._spec import DEFAULT_WINDOWS
from churnrisk.labels import Definition, check_label_options, label_frame
from churnrisk.spells import subscription_spells
from churnrisk.store import EventStore

__all__ = ["build_training_set", "make_cutoffs", "update_training_set"]

ID = "customer_id"
KEY = [ID, "cutoff"]
Progress = Callable[[int, int], None]
_UNITS = {"D": "days", "W": "weeks", "M": "months", "Q": "months", "Y": "years"}


def make_cutoffs(first: Any, last: Any, every: str = "1M") -> list[datetime]:
    """Cutoffs from ``first`` to ``last`` (inclusive), ``every`` apart.

    ``every`` is a count and a unit: ``D`` days, ``W`` weeks, ``M`` months, ``Q`` quarters,
    ``Y`` years. Month steps keep the day of ``first`` (clipped to the month's last day), each
    counted from ``first`` so they do not drift.

    Examples
    --------
    >>> [c.date().isoformat() for c in make_cutoffs("2024-01-31", "2024-04-30", every="1M")]
    ['2024-01-31', '2024-02-29', '2024-03-31', '2024-04-30']
    """
    start, stop = to_cutoff(first, "first"), to_cutoff(last, "last")
    match = re.fullmatch(r"\s*(\d+)\s*([DWMQY])\s*", str(every).upper())
    if match is None or int(match.group(1)) == 0:
        raise ChurnriskError(
            f"The 'every' parameter must be a count and a unit (D, W, M, Q or Y). Got {every!r} instead. "
            "Suggestion: every='1M'."
        )
    if stop < start:
        raise ChurnriskError(f"the last cutoff {stop:%Y-%m-%d} is before the first {start:%Y-%m-%d}.")
    count, unit = int(match.group(1)), match.group(2)
    step = count * 3 if unit == "Q" else count
    out, k = [], 0
    offset: dict[str, Any] = {_UNITS[unit]: step}
    while (cutoff := pd.Timestamp(start) + k * pd.DateOffset(**offset)) <= stop:
        out.append(cutoff.to_pydatetime())
        k += 1
    return out


def _cutoff_list(cutoffs: Iterable[Any]) -> list[datetime]:
    values = sorted({to_cutoff(c) for c in cutoffs})
    if not values:
        raise ChurnriskError("no cutoffs given. Suggestion: make_cutoffs('2024-01-31', '2024-12-31').")
    return values


def _rows(
    tables: PreparedTables, cutoff: datetime, windows: tuple[int, ...], labels: pl.DataFrame
) -> pl.DataFrame:
    """Features and labels of the eligible customers at one cutoff (``labels``: sorted by customer)."""
    # Features of exactly the labelled customers, in their order: no join.
    features = feature_frame(tables, cutoff, windows, customers=labels[ID])
    cutoffs = pl.Series("cutoff", np.full(labels.height, np.datetime64(cutoff, "us")))
    return features.insert_column(1, cutoffs).hstack(labels.select("churned", "churn_type"))


def _cutoff_rows(
    store: EventStore,
    cutoffs: Sequence[datetime],
    windows: tuple[int, ...],
    options: dict[str, Any],
    progress: Progress | None,
) -> tuple[int, Iterator[pl.DataFrame]]:
    """The number of rows, and the rows of each cutoff in turn (computed when asked for).

    Labels come first (they are small), so that the row count is known before any feature.
    """
    # Customer ids encoded (and order-dependent tables sorted) once for all cutoffs.
    tables = prepare_tables(store.tables)
    spells = subscription_spells(store["subscriptions"]) if options["definition"] == "subscription" else None
    labels = [label_frame(store, cutoff, spells=spells, **options) for cutoff in cutoffs]

    def rows() -> Iterator[pl.DataFrame]:
        for done, cutoff in enumerate(cutoffs, start=1):
            yield _rows(tables, cutoff, windows, labels[done - 1])
            labels[done - 1] = labels[done - 1].clear()
            if progress is not None:
                progress(done, len(cutoffs))

    return sum(frame.height for frame in labels), rows()


def _to_pandas(
    frame: pl.DataFrame, options: dict[str, Any], windows: tuple[int, ...], *, sort: bool = True
) -> pd.DataFrame:
    """Rows sorted by cutoff and customer (``frame`` is consumed, see ``to_pandas_features``)."""
    out = to_pandas_features(frame.sort("cutoff", ID) if sort else frame).reset_index()
    return _typed(out, options, windows)


def _stacked(total: int, frames: Iterable[pl.DataFrame]) -> pd.DataFrame:
    """The rows of every cutoff (``total`` in all), stacked into one pandas frame.

    Each numeric column is allocated once at its final size and every cutoff writes its slice
    into it: the peak holds the result plus one cutoff's work, not the result twice.
    """
    arrays: dict[str, np.ndarray] = {}
    other: dict[str, list[pl.Series]] = {}
    names: list[str] = []
    start = 0
    for done, frame in enumerate(frames, start=1):
        names = names or frame.columns
        stop = start + frame.height
        for name in frame.columns:
            column = frame.drop_in_place(name)
            if name in arrays or (done == 1 and column.dtype.is_numeric()):
                values = numeric_values(column)  # missing values as NaN (whole numbers become floats)
                if name not in arrays:
                    arrays[name] = np.empty(total, dtype=values.dtype)
                elif values.dtype != arrays[name].dtype:
                    arrays[name] = arrays[name].astype(promoted(values.dtype, arrays[name].dtype))
                arrays[name][start:stop] = values
            else:  # text as 32-bit codes until the end (a fraction of the memory of the strings)
                other.setdefault(name, []).append(
                    column.cast(pl.Categorical) if column.dtype == pl.String else column
                )
        start = stop
    columns = {}
    for name in names:
        if name in arrays:
            columns[name] = pd.Series(arrays.pop(name), copy=False)
        else:
            column = pl.concat([p.to_frame() for p in other.pop(name)], how="vertical_relaxed").to_series()
            columns[name] = to_pandas_column(column)
    return pd.DataFrame(columns, copy=False)


def _typed(out: pd.DataFrame, options: dict[str, Any], windows: tuple[int, ...]) -> pd.DataFrame:
    out["churned"] = out["churned"].astype("Int64")
    out["churn_type"] = out["churn_type"].astype("string")
    out.attrs.update(options)
    out.attrs["windows"] = list(windows)
    return out


def build_training_set(
    store: EventStore,
    cutoffs: Iterable[Any],
    *,
    definition: Definition,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Features and churn labels of every eligible customer at every cutoff.

    Parameters
    ----------
    store : EventStore
        A validated event store.
    cutoffs : iterable of date-like
        E.g. :func:`make_cutoffs`.
    definition, horizon, lookback, lead_time
        The churn label, see :func:`churnrisk.labels.make_labels`.
    windows : sequence of int, default (30, 90, 180, 365)
        Feature look-back windows in days, see :func:`churnrisk.features.build_features`.
    progress : callable, optional
        Called as ``progress(done, total)`` after each cutoff.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id``, ``cutoff``, the features, ``churned`` (nullable 0/1: missing for
        censored cutoffs, whose horizon runs past the end of the data) and ``churn_type``;
        sorted by cutoff and customer. ``.attrs`` records the label options and windows.
    """
    options = check_label_options(store, definition, horizon, lookback, lead_time)
    windows_ = check_windows(windows)
    # Cutoffs come in order, customers sorted in each: stacking needs no sort.
    total, frames = _cutoff_rows(store, _cutoff_list(cutoffs), windows_, options, progress)
    return _typed(_stacked(total, frames), options, windows_)


def _read_existing(existing: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(existing, pd.DataFrame):
        return existing.copy(deep=False)  # columns are taken out of it, never changed
    path = Path(existing)
    if not path.exists():
        raise ChurnriskError(f"{path} does not exist. Suggestion: build it first with build_training_set.")
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        # one block per column, Arrow buffers released while converting: no second copy
        return pq.read_table(path).to_pandas(split_blocks=True, self_destruct=True)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, parse_dates=["cutoff"])
    raise ChurnriskError(f"cannot tell the format of {path}: use a .csv or .parquet file.")


def update_training_set(
    existing: pd.DataFrame | str | os.PathLike[str],
    store: EventStore,
    new_cutoffs: Iterable[Any],
    *,
    definition: Definition,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Add new cutoffs to a training set, and fill in labels that were censored and are now known.

    Costs about one cutoff per new cutoff: earlier rows keep their features (they only ever saw
    events up to their own cutoff); only their missing labels are computed. The options must be
    those the existing set was built with; the result equals :func:`build_training_set` over all
    cutoffs. Cutoffs already in ``existing`` are not recomputed.
    """
    options = check_label_options(store, definition, horizon, lookback, lead_time)
    windows_ = check_windows(windows)
    old = _read_existing(existing)
    _check_same_options(old, options, windows_)
    known = set(pd.to_datetime(old["cutoff"].unique()).to_pydatetime()) if len(old) else set()
    new = [c for c in _cutoff_list(new_cutoffs) if c not in known]
    old = _fill_censored(store, old, options)
    if new:
        total, frames = _cutoff_rows(store, new, windows_, options, progress)
        old = _append(old, _typed(_stacked(total, frames), options, windows_))
        if known and min(new) < max(known):
            old = old.sort_values(["cutoff", ID], kind="stable", ignore_index=True)
    return _typed(old, options, windows_)


def _append(old: pd.DataFrame, added: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``old`` then those of ``added``, column by column (``old`` is consumed: each of
    its columns is released once copied, so the peak holds the result and one column more).

    A count that is whole numbers in one part and has missing values in the other (``int32`` /
    ``float32``) stays 32-bit; text categories are merged and kept sorted.
    """
    columns = {}
    for name in list(old.columns):
        a, b = old.pop(name), added.pop(name)
        if isinstance(a.dtype, pd.CategoricalDtype) or isinstance(b.dtype, pd.CategoricalDtype):
            both = union_categoricals([_category(a), _category(b)], sort_categories=True)
            columns[name] = pd.Series(both, copy=False)
        elif isinstance(a.dtype, np.dtype) and isinstance(b.dtype, np.dtype) and a.dtype.kind in "iuf":
            dtype = promoted(a.dtype, b.dtype)
            columns[name] = pd.Series(np.concatenate([a.to_numpy(dtype), b.to_numpy(dtype)]), copy=False)
        else:
            columns[name] = pd.concat([a, b], ignore_index=True)
        del a
    return pd.DataFrame(columns, copy=False)


def _category(values: pd.Series) -> pd.Series:
    """``values`` as a categorical with ``str`` categories (text of any pandas string dtype)."""
    out = values.astype("category")
    return out.cat.set_categories(pd.Index(out.cat.categories.astype(object), dtype="str"))


def _fill_censored(store: EventStore, old: pd.DataFrame, options: dict[str, Any]) -> pd.DataFrame:
    """Labels of rows whose cutoff was censored when they were built, if now observable (only
    those rows are touched)."""
    missing = old["churned"].isna().to_numpy()
    if not missing.any():
        return old
    open_cutoffs = sorted(pd.to_datetime(old.loc[missing, "cutoff"].unique()).to_pydatetime())
    spells = subscription_spells(store["subscriptions"]) if options["definition"] == "subscription" else None
    labels = pl.concat(
        label_frame(store, c, spells=spells, **options).with_columns(cutoff=pl.lit(c, pl.Datetime("us")))
        for c in open_cutoffs
    ).select(*KEY, "churned", "churn_type")
    asked = pl.from_pandas(old.loc[missing, KEY]).with_columns(pl.col("cutoff").cast(pl.Datetime("us")))
    found = asked.join(labels, on=KEY, how="left", maintain_order="left")
    churned = old["churned"].astype("Int64").to_numpy(dtype="float64", na_value=np.nan, copy=True)
    churned[missing] = found["churned"].cast(pl.Float64).to_numpy()
    churn_type = old["churn_type"].to_numpy(dtype=object, copy=True)
    churn_type[missing] = found["churn_type"].to_numpy()
    return old.assign(churned=pd.array(churned).astype("Int64"), churn_type=churn_type)


def _check_same_options(old: pd.DataFrame, options: dict[str, Any], windows: tuple[int, ...]) -> None:
    recorded = {k: old.attrs[k] for k in (*options, "windows") if k in old.attrs}
    given = {**options, "windows": list(windows)}
    different = {k: (v, given[k]) for k, v in recorded.items() if v != given[k]}
    if different:
        detail = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in different.items())
        raise ChurnriskError(
            f"the existing training set was built with other options ({detail}). "
            "Suggestion: pass the same options, or rebuild it with build_training_set."
        )
    missing = {ID, "cutoff", "churned", "churn_type"} - set(old.columns)
    if missing:
        raise ChurnriskError(f"the existing training set lacks the columns {sorted(missing)}.")
