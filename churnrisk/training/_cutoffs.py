"""Cutoff calendars and the out-of-time split of cutoffs into train, validation and test."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from churnrisk.definition import data_span
from churnrisk.errors import ChurnriskError
from churnrisk.features._build import (
    to_cutoff,
)

_UNITS = {"D": "days", "W": "weeks", "M": "months", "Q": "months", "Y": "years"}


def cutoff_step(every: str) -> pd.DateOffset:
    """The calendar step of ``every`` (a count and a unit: ``D``, ``W``, ``M``, ``Q`` or ``Y``)."""
    match = re.fullmatch(r"\s*(\d+)\s*([DWMQY])\s*", str(every).upper())
    if match is None or int(match.group(1)) == 0:
        raise ChurnriskError(
            f"The 'every' parameter must be a count and a unit (D, W, M, Q or Y). Got {every!r} instead. "
            "Suggestion: every='1M'."
        )
    count, unit = int(match.group(1)), match.group(2)
    offset: dict[str, Any] = {_UNITS[unit]: count * 3 if unit == "Q" else count}
    return pd.DateOffset(**offset)


def make_cutoffs(
    first: Any, last: Any, every: str = "1M", *, anchor: Literal["first", "last"] = "first"
) -> list[datetime]:
    """Cutoffs from ``first`` to ``last`` (inclusive), ``every`` apart.

    ``every`` is a count and a unit: ``D`` days, ``W`` weeks, ``M`` months, ``Q`` quarters,
    ``Y`` years. The steps are counted from ``first`` (``anchor="last"``: back from ``last``, so
    that the latest cutoff is ``last`` itself), each from the anchor so that they do not drift;
    month steps keep the anchor's day (clipped to the month's last day).

    Examples
    --------
    >>> [c.date().isoformat() for c in make_cutoffs("2024-01-31", "2024-04-30", every="1M")]
    ['2024-01-31', '2024-02-29', '2024-03-31', '2024-04-30']
    >>> [c.date().isoformat() for c in make_cutoffs("2024-01-15", "2024-04-01", "1M", anchor="last")]
    ['2024-02-01', '2024-03-01', '2024-04-01']
    """
    start, stop = to_cutoff(first, "first"), to_cutoff(last, "last")
    step = cutoff_step(every)
    if stop < start:
        raise ChurnriskError(f"the last cutoff {stop:%Y-%m-%d} is before the first {start:%Y-%m-%d}.")
    origin, sign = (pd.Timestamp(start), 1) if anchor == "first" else (pd.Timestamp(stop), -1)
    out, k = [], 0
    while start <= (cutoff := origin + sign * k * step) <= stop:
        out.append(cutoff.to_pydatetime())
        k += 1
    return sorted(out)


def _cutoff_list(cutoffs: Iterable[Any]) -> list[datetime]:
    values = sorted({to_cutoff(c) for c in cutoffs})
    if not values:
        raise ChurnriskError("no cutoffs given. Suggestion: make_cutoffs('2024-01-31', '2024-12-31').")
    return values


def split_cutoffs(
    cutoffs: Sequence[pd.Timestamp], *, horizon: int, lead_time: int = 0, test_cutoff: Any = None
) -> tuple[list[pd.Timestamp], list[pd.Timestamp], list[pd.Timestamp]]:
    """Train, validation (calibration) and test cutoffs for an out-of-time evaluation.

    The test cutoff is ``test_cutoff`` (default: the last cutoff). The cutoffs whose label window
    ends by the test cutoff (at least ``horizon + lead_time`` days earlier) are fit cutoffs: the
    latest quarter of them (at least one) validates and calibrates, the rest train. Nothing the test
    labels see was known when training.
    """
    ordered = sorted(pd.Timestamp(c) for c in set(cutoffs))
    test = ordered[-1] if test_cutoff is None else pd.Timestamp(test_cutoff)
    gap = pd.Timedelta(days=horizon + lead_time)
    fit = [c for c in ordered if c + gap <= test]
    if len(fit) < 2:
        raise ChurnriskError(
            f"an out-of-time evaluation needs at least two cutoffs {horizon + lead_time} days or more before "
            f"the test cutoff ({test.date()}); got {len(fit)} of {len(ordered)} cutoff(s) from "
            f"{ordered[0].date()}. Suggestion: give more or earlier cutoffs (e.g. --every 1M over a longer "
            "period), or leave the cutoffs out to let churnrisk choose them."
        )
    n_cal = max(1, len(fit) // 4)
    return fit[:-n_cal], fit[-n_cal:], [test]


def cutoff_range(first: Any, last: Any, *, every: str = "1M") -> list[pd.Timestamp]:
    """Cutoffs from ``first`` to ``last``, ``every`` apart (e.g. ``30D``, ``2W``, ``1M``, ``1Q``),
    counted back from ``last``, so the latest cutoff is always ``last`` itself (see
    :func:`churnrisk.training.make_cutoffs`).

    Examples
    --------
    >>> [c.strftime("%Y-%m-%d") for c in cutoff_range("2024-01-15", "2024-04-01", every="1M")]
    ['2024-02-01', '2024-03-01', '2024-04-01']
    """
    return [pd.Timestamp(c) for c in make_cutoffs(first, last, every, anchor="last")]


#: Days of history before the first default cutoff, so the first features have something to read.
WARM_UP = 90


def default_cutoffs(store: Any, *, horizon: int, lead_time: int = 0, every: str = "1M") -> list[pd.Timestamp]:
    """As many cutoffs as the history allows: ``every`` apart, counted back from the last cutoff whose
    outcome is known, down to :data:`WARM_UP` days after the first event.

    Refuses a history too short for an out-of-time test (two fit cutoffs, a gap of ``horizon +
    lead_time`` days and the test cutoff), saying how many more days of data it needs.
    """
    first, last = (pd.Timestamp(t) for t in data_span(store))
    gap = pd.Timedelta(days=horizon + lead_time)
    latest = (last - gap).normalize()
    earliest = first + pd.Timedelta(days=WARM_UP)
    cutoffs = cutoff_range(earliest, latest, every=every) if earliest <= latest else []
    if sum(c <= latest - gap for c in cutoffs) >= 2:
        return cutoffs
    # the second fit cutoff counted back from the test cutoff must leave the warm-up before it
    step, k = cutoff_step(every), 1
    while latest - step * k > latest - gap:
        k += 1
    second = latest - step * (k + 1)
    needed = -((second - pd.Timedelta(days=WARM_UP) - last) // pd.Timedelta(days=1))
    have = (last - first).days
    raise ChurnriskError(
        f"the history is too short to train and test a model with a {horizon}-day horizon"
        f"{f' and a {lead_time}-day lead time' if lead_time else ''}: the data cover {have} days "
        f"({first.date()} to {last.date()}), and an out-of-time test needs at least {needed} "
        f"({WARM_UP} days of history before the first cutoff, two cutoffs {every} apart, "
        f"{horizon + lead_time} days between them and the test cutoff, and {horizon + lead_time} days "
        f"after it to see who churned). Suggestion: add {needed - have} more days of data, or use a "
        "shorter --horizon."
    )


def _final_split(
    cutoffs: pd.Series, *, refit: bool, tested: tuple[list[pd.Timestamp], list[pd.Timestamp]]
) -> dict[str, np.ndarray]:
    """Rows of the shipped fit: every labelled cutoff (latest quarter calibrates), or the tested split."""
    if not refit:
        return {"train": cutoffs.isin(tested[0]).to_numpy(), "cal": cutoffs.isin(tested[1]).to_numpy()}
    ordered = sorted(cutoffs.unique())
    n_cal = max(1, len(ordered) // 4)
    calibrate = cutoffs.isin(ordered[-n_cal:]).to_numpy()
    return {"train": ~calibrate, "cal": calibrate}


def _dates(cutoffs: pd.Series) -> list[str]:
    return [str(pd.Timestamp(c).date()) for c in sorted(cutoffs.unique())]


def check_label_window(
    store: Any, cutoff: pd.Timestamp, *, horizon: int, lead_time: int = 0, reactivation_gap_days: float = 0
) -> None:
    """Refuse a cutoff whose label window (and the grace period after it, for subscription churn) runs
    past the end of the data (its labels would be wrong)."""
    _, last = data_span(store)
    delay = pd.Timedelta(days=lead_time + horizon + reactivation_gap_days)
    end = cutoff + delay
    if end > pd.Timestamp(last):
        latest = pd.Timestamp(last) - delay
        raise ChurnriskError(
            f"cutoff {cutoff.date()} needs data up to {end.date()} to know who churned within "
            f"{horizon} days, "
            f"but the data end on {pd.Timestamp(last).date()}. Suggestion: use cutoffs up to {latest.date()}."
        )
