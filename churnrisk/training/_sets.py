"""Building training sets: features and labels of many cutoffs, stacked; updated as outcomes become known."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from churnrisk.definition import recorded_options
from churnrisk.errors import ChurnriskError
from churnrisk.features._build import (
    check_windows,
    numeric_values,
    promoted,
    to_pandas_column,
    to_pandas_features,
)
from churnrisk.features._polars import PreparedTables, feature_frame, prepare_tables
from churnrisk.features._spec import DEFAULT_WINDOWS, Inputs, feature_inputs, merge_inputs
from churnrisk.labels import LABEL_INPUTS, Definition, SpellCache, check_label_options, label_frame
from churnrisk.store import EventStore
from churnrisk.training._cutoffs import _cutoff_list

ID = "customer_id"
KEY = [ID, "cutoff"]
Progress = Callable[[int, int], None]


def training_inputs() -> Inputs:
    """The columns features and labels read, by table (``None``: all), e.g. for
    ``EventStore.from_folder(folder, columns=training_inputs())``: every table the features read,
    so the end of the data (the latest event of any table) is the same as with all columns."""
    return merge_inputs(feature_inputs(), LABEL_INPUTS)


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
    spells: SpellCache,
) -> tuple[int, Iterator[pl.DataFrame]]:
    """The number of rows, and the rows of each cutoff in turn (computed when asked for).

    ``spells`` keeps the spells the labels build, so that each is built once for all cutoffs.

    Labels come first (they are small), so that the row count is known before any feature.
    """
    # Customer ids encoded (and order-dependent tables sorted) once for all cutoffs.
    tables = prepare_tables(store.tables, running=len(cutoffs) > 1)
    labels = [label_frame(store, cutoff, spells=spells, **options) for cutoff in cutoffs]

    def step(k: int) -> pl.DataFrame:
        frame = _rows(tables, cutoffs[k], windows, labels[k])
        labels[k] = labels[k].clear()
        return frame

    def rows() -> Iterator[pl.DataFrame]:
        # The next cutoff is computed while the caller takes this one in (in order: statistics
        # over the history run on from one cutoff to the next).
        with ThreadPoolExecutor(max_workers=1) as ahead:
            future = ahead.submit(step, 0)
            for done in range(1, len(cutoffs) + 1):
                frame = future.result()
                if done < len(cutoffs):
                    future = ahead.submit(step, done)
                yield frame
                del frame
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
    out["churn_type"] = _strings(out["churn_type"])
    out.attrs.update(options)
    out.attrs["windows"] = list(windows)
    return out


def _strings(values: pd.Series) -> pd.Series:
    """``values`` as pandas ``string``; a categorical by its codes (a take, not a string per row)."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype("string")
    categories = pd.array(values.cat.categories.to_numpy(dtype=object), dtype="string")
    text = categories.take(values.cat.codes.to_numpy(), allow_fill=True)
    return pd.Series(text, index=values.index, name=values.name, copy=False)


def build_training_set(
    store: EventStore,
    cutoffs: Iterable[Any],
    *,
    definition: Definition,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    reactivation_gap_days: float = 0,
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
    definition, horizon, lookback, lead_time, reactivation_gap_days
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
    options = check_label_options(store, definition, horizon, lookback, lead_time, reactivation_gap_days)
    windows_ = check_windows(windows)
    # Cutoffs come in order, customers sorted in each: stacking needs no sort.
    cutoffs_ = _cutoff_list(cutoffs)
    total, frames = _cutoff_rows(store, cutoffs_, windows_, options, progress, spells={})
    return _typed(_stacked(total, frames), options, windows_)


def _check_options(recorded: Mapping[Any, Any], options: dict[str, Any], windows: tuple[int, ...]) -> None:
    """Refuse options other than those ``recorded`` with the stored set (its ``.attrs``)."""
    given, stored = recorded_options({**options, "windows": list(windows)}), recorded_options(recorded)
    different = {k: (stored[k], v) for k, v in given.items() if k in stored and stored[k] != v}
    if different:
        detail = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in different.items())
        raise ChurnriskError(
            f"the existing training set was built with other options ({detail}). "
            "Suggestion: pass the same options, or rebuild it with build_training_set."
        )


# --- stored training sets: one file, or a folder of one Parquet file per cutoff ---------------------

META = "training-set.json"
