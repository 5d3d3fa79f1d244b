"""Input drift: what each feature looked like in training, and how far today's values moved from it.

At training time :func:`feature_profile` records, per feature, a few numbers that fit in the model's
JSON metadata: for a number, bin edges at the training data's deciles and the share of rows in each
bin; for a category, the most frequent categories and their shares (the rest pooled as "other");
for both, the share of missing values. Later, :func:`drift_table` puts today's values into the same
bins and compares the shares with the population stability index (:func:`psi`), so the training
data is not needed to monitor a model.

Missing values are one more bin: a feature that stops being filled (a table that stopped loading)
moves its rows into that bin and shows as drift.

This module is deliberately low-level (numpy and pandas only): the training code imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from churnrisk.errors import ChurnriskError

__all__ = ["bin_shares", "bin_values", "drift_table", "feature_profile", "profile_shares", "psi"]

#: Value bins of a numeric feature (at most; ties at a decile merge bins).
N_BINS = 10
#: Categories kept by name; rarer ones (and categories never seen in training) share one bin.
MAX_CATEGORIES = 20
#: Shares below this count as this much in :func:`psi` (an empty bin would make it infinite).
FLOOR = 1e-4


def psi(expected: Any, actual: Any, *, floor: float = FLOOR) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` of two vectors of bin shares.

    Shares below ``floor`` are raised to it, so an empty bin gives a large but finite index. By the
    usual reading, below 0.1 is stable, 0.1 to 0.25 a moderate shift, above 0.25 a major shift.

    Examples
    --------
    >>> round(psi([0.5, 0.5], [0.25, 0.75]), 4)  # 0.25 ln 2 + 0.25 ln 1.5
    0.2747
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.ndim != 1:
        raise ChurnriskError(f"psi needs two share vectors of the same length. Got {e.shape} and {a.shape}.")
    e, a = np.maximum(e, floor), np.maximum(a, floor)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_profile(
    frame: pd.DataFrame, schema: Mapping[str, str], *, n_bins: int = N_BINS
) -> dict[str, dict[str, Any]]:
    """Per feature of ``schema``, its bins and shares in ``frame`` (the training rows); plain JSON.

    A number: ``{"kind": "number", "edges": [...], "shares": [...], "missing": m}`` with bins
    ``(-inf, e0], (e0, e1], ..., (ek, inf)`` at the deciles of the known values. A category:
    ``{"kind": "category", "categories": [...], "shares": [...], "missing": m}``, the last share
    being every other category. Shares are of all rows: ``sum(shares) + missing == 1``.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, None]})
    >>> feature_profile(frame, {"x": "number"}, n_bins=2)
    {'x': {'kind': 'number', 'edges': [2.0], 'shares': [0.4, 0.4], 'missing': 0.2}}
    """
    out = {}
    for column, kind in schema.items():
        values = frame[column]
        entry = _numeric_bins(values, n_bins) if kind == "number" else _category_bins(values)
        shares = bin_shares(values, entry)
        out[column] = {**entry, "shares": shares[:-1].tolist(), "missing": float(shares[-1])}
    return out


def _numeric_bins(values: pd.Series, n_bins: int) -> dict[str, Any]:
    known = values.to_numpy(dtype=float)
    known = known[np.isfinite(known)]
    if not len(known):
        return {"kind": "number", "edges": []}
    # "lower": every edge is a value seen in training, so ties (many zeros) give one clean bin
    edges = np.unique(np.quantile(known, np.arange(1, n_bins) / n_bins, method="lower"))
    return {"kind": "number", "edges": [float(e) for e in edges]}


def _category_bins(values: pd.Series) -> dict[str, Any]:
    counts = values.dropna().astype(str).value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {"kind": "category", "categories": [name for name, _ in ordered[:MAX_CATEGORIES]]}


def bin_shares(values: pd.Series, entry: Mapping[str, Any]) -> np.ndarray:
    """Shares of ``values`` in the bins of a profile ``entry``, the missing share last."""
    index, n_bins = _bin_index(values, entry)
    counts = np.bincount(index, minlength=n_bins).astype(float)
    return np.append(counts, values.isna().sum()) / max(len(values), 1)


def _bin_index(values: pd.Series, entry: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """The bin of every known value (missing values left out) and the number of value bins."""
    known = values[values.notna()]
    if entry["kind"] == "number":
        edges = np.asarray(entry["edges"], dtype=float)
        # side="left": a value equal to an edge belongs to the bin that ends there
        return np.searchsorted(edges, known.to_numpy(dtype=float), side="left"), len(edges) + 1
    names = list(entry["categories"])
    lookup = pd.Series(np.arange(len(names)), index=pd.Index(names, dtype=object))
    return known.astype(str).map(lookup).fillna(len(names)).to_numpy(dtype=int), len(names) + 1


def bin_values(values: pd.Series, entry: Mapping[str, Any]) -> list[Any]:
    """One representative value per bin of ``entry`` (missing last), to ask a model about each bin.

    A number bin: the median of ``values`` in it, or without any, the training edge that closes it
    (the last edge for the open top bin). A category: itself; the "other" bin: the first value of
    ``values`` outside the recorded categories, or a name never seen in training.
    """
    index, n_bins = _bin_index(values, entry)
    known = values[values.notna()]
    if entry["kind"] == "number":
        edges = list(entry["edges"]) or [0.0]
        medians = pd.Series(known.to_numpy(dtype=float)).groupby(index).median()
        out: list[Any] = [float(medians.get(b, edges[min(b, len(edges) - 1)])) for b in range(n_bins)]
    else:
        others = known[index == n_bins - 1]
        out = [*entry["categories"], str(others.iloc[0]) if len(others) else "(other)"]
    return [*out, np.nan]


def profile_shares(entry: Mapping[str, Any]) -> np.ndarray:
    """The recorded shares of a profile ``entry``, the missing share last (as :func:`bin_shares`)."""
    return np.append(np.asarray(entry["shares"], dtype=float), float(entry["missing"]))


def drift_table(frame: pd.DataFrame, profile: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """``feature, psi, missing_train, missing_now``: every profiled feature of ``frame`` against training.

    ``frame`` holds today's values, prepared as the training rows were (numbers as floats,
    categories as text). Rows are in the order of ``profile``.
    """
    absent = [c for c in profile if c not in frame.columns]
    if absent:
        raise ChurnriskError(
            f"the data lacks {len(absent)} profiled feature(s): {', '.join(absent[:10])}. "
            "Suggestion: monitor with data of the same shape as the training data."
        )
    rows = []
    for column, entry in profile.items():
        now = bin_shares(frame[column], entry)
        rows.append((column, psi(profile_shares(entry), now), float(entry["missing"]), float(now[-1])))
    return pd.DataFrame(rows, columns=["feature", "psi", "missing_train", "missing_now"])
