"""Point-in-time churn labels (DESIGN §3), on the churn definitions shared with the rates.

For a cutoff ``c``, a lead time ``L`` and a horizon ``H``, the label reads only what happens in
``(c + L, c + L + H]``:

* ``subscription``: eligible when active at ``c`` (a subscription spell with ``start <= c < end``)
  and still active at ``c + L``; churned when no spell is active at ``c + L + H``. Churn is split
  into voluntary and involuntary by :func:`churnrisk.spells.churn_type` at the churn instant.
* ``inactivity``: eligible when the customer ordered in ``(c - lookback, c]``; churned when they
  place no order in ``(c + L, c + L + H]``. Orders, or activity events when there are no orders.

With ``L = 0`` and, for inactivity, ``lookback = H``, the churn rate over the labelled customers is
the historical ``lost_churn_rate`` of :func:`churnrisk.rates.churn_rates` for the period
``[c, c + H]``. A cutoff whose horizon ends after the last event in the store is *censored*: its
customers are not labelled (the outcome is not known yet); their number is in ``.attrs``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd
import polars as pl

from churnrisk.errors import ChurnriskError
from churnrisk.features._build import to_cutoff
from churnrisk.features._spec import Inputs
from churnrisk.spells import (
    DEFINITIONS,
    active_at,
    churn_type,
    order_spells,
    resolve_definition,
    subscription_spells,
)
from churnrisk.store import EventStore

__all__ = ["DEFINITIONS", "make_labels"]

Definition = Literal["subscription", "inactivity"]
ID = "customer_id"
#: The columns the labels read, by table (``None``: all), e.g. for ``EventStore.from_folder(columns=)``
#: together with the features' (:func:`churnrisk.training.training_inputs`); the end of the data
#: is the latest event time of every table read.
LABEL_INPUTS: Inputs = {
    "customers": frozenset({ID}),
    "orders": frozenset({ID, "ordered_at"}),
    "activity": frozenset({ID, "occurred_at"}),
    "subscriptions": None,
    "payments": None,
}


def label_end(cutoff: datetime, *, horizon: int, lead_time: int = 0) -> datetime:
    """The last instant a label at ``cutoff`` looks at: ``cutoff + lead_time + horizon`` (days)."""
    return cutoff + timedelta(days=lead_time + horizon)


def _check_days(value: Any, name: str, *, allow_zero: bool = False) -> int:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and float(value) == int(value)
    if not ok or int(value) < (0 if allow_zero else 1):
        kind = "a whole number of days >= 0" if allow_zero else "a positive whole number of days"
        raise ChurnriskError(
            f"The '{name}' parameter must be {kind}. Got {value!r} instead. Suggestion: e.g. {name}=90."
        )
    return int(value)


def _purchases(store: EventStore) -> pl.DataFrame | None:
    """Orders, or activity events when there are no orders, as ``customer_id, ordered_at``."""
    if "orders" in store:
        return store["orders"].select(ID, "ordered_at")
    if "activity" in store:
        return store["activity"].select(ID, pl.col("occurred_at").alias("ordered_at"))
    return None


def data_end(store: EventStore) -> datetime:
    """The last event time in the store: outcomes after it are unknown."""
    last = store.time_span()[1]
    if last is None:
        raise ChurnriskError("the event store has no dated events to label churn with.")
    return last


def label_frame(
    store: EventStore,
    cutoff: datetime,
    *,
    definition: Definition,
    horizon: int,
    lookback: int | None,
    lead_time: int,
    spells: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Eligible customers at ``cutoff`` with ``churned`` (null when censored) and ``churn_type``.

    ``spells`` may be passed in when labelling many cutoffs (the subscription spells of the store).
    """
    start = cutoff + timedelta(days=lead_time)
    end = label_end(cutoff, horizon=horizon, lead_time=lead_time)
    if definition == "subscription":
        spells = subscription_spells(store["subscriptions"]) if spells is None else spells
        eligible = active_at(spells, cutoff).join(active_at(spells, start), on=ID, how="semi")
        still = active_at(spells, end)
    else:
        orders = _purchases(store)
        assert orders is not None  # resolve_definition
        eligible = active_at(order_spells(orders, inactivity_days=lookback or horizon), cutoff)
        still = active_at(order_spells(orders, inactivity_days=horizon), end)
    censored = end > data_end(store)
    churned = pl.col(ID).is_in(still[ID].implode()).not_()
    frame = eligible.with_columns(
        churned=pl.lit(None, pl.Int8) if censored else churned.cast(pl.Int8),
        churn_type=pl.lit(None, pl.String),
    )
    if definition == "subscription" and not censored:
        frame = _with_churn_type(store, frame, spells, start, end)  # type: ignore[arg-type]
    return frame.sort(ID)


def _with_churn_type(
    store: EventStore, frame: pl.DataFrame, spells: pl.DataFrame, start: datetime, end: datetime
) -> pl.DataFrame:
    """Voluntary or involuntary, judged at the end of the spell that was running at ``start``."""
    ended = (
        spells.filter((pl.col("end") > start) & (pl.col("end") <= end))
        .join(frame.filter(pl.col("churned") == 1).select(ID), on=ID, how="semi")
        .group_by(ID)
        .agg(pl.col("end").max().alias("churned_at"))
    )
    kinds = churn_type(store, ended).select(ID, pl.col("churn_type").alias("_kind"))
    return frame.join(kinds, on=ID, how="left").with_columns(churn_type=pl.col("_kind")).drop("_kind")


def make_labels(
    store: EventStore,
    cutoff: Any,
    *,
    definition: Definition,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
) -> pd.DataFrame:
    """Churn labels at ``cutoff``: who of the eligible customers churned within the horizon.

    Parameters
    ----------
    store : EventStore
        A validated event store.
    cutoff : date, datetime or str
        The prediction instant; the label reads only ``(cutoff + lead_time, cutoff + lead_time +
        horizon]``.
    definition : {"subscription", "inactivity"}
        See the module docstring.
    horizon : int
        Days after the lead time in which churn is looked for.
    lookback : int, optional
        ``inactivity`` only: a customer is eligible when they ordered in ``(cutoff - lookback,
        cutoff]``. Default: the horizon.
    lead_time : int, default 0
        Days between the cutoff and the start of the horizon (time to act on a prediction).
        Subscription customers who left during the lead time are not labelled.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``churned`` (0/1) and ``churn_type`` (``voluntary`` /
        ``involuntary`` for subscription churn, missing otherwise). ``.attrs`` holds
        ``censored`` (customers not labelled because the horizon runs past the end of the
        data), ``cutoff``, ``definition``, ``horizon``, ``lookback`` and ``lead_time``.
    """
    cutoff, options = to_cutoff(cutoff), check_label_options(store, definition, horizon, lookback, lead_time)
    frame = label_frame(store, cutoff, **options)
    labelled = frame.filter(pl.col("churned").is_not_null())
    out = labelled.to_pandas().set_index(ID)
    out["churned"] = out["churned"].astype("int64")
    out["churn_type"] = out["churn_type"].astype("string")
    out.attrs = {"censored": frame.height - labelled.height, "cutoff": cutoff}
    out.attrs.update(options)
    return out


def check_label_options(
    store: Any, definition: str, horizon: Any, lookback: Any, lead_time: Any
) -> dict[str, Any]:
    """Validated label options (raises :class:`ChurnriskError` naming what was given)."""
    resolve_definition(store, definition)
    return {
        "definition": definition,
        "horizon": _check_days(horizon, "horizon"),
        "lookback": None if lookback is None else _check_days(lookback, "lookback"),
        "lead_time": _check_days(lead_time, "lead_time", allow_zero=True),
    }
