"""Point-in-time churn labels (DESIGN §3), on the churn definition shared with the rates.

For a cutoff ``c``, a lead time ``L`` and a horizon ``H``, the label reads only what happens in
``(c + L, c + L + H]`` (plus the grace period after it, see below):

* ``subscription``: eligible when active at ``c`` (a subscription spell with ``start <= c < end``)
  and still active at ``c + L``; churned when no spell is active at ``c + L + H``. Churn is split
  into voluntary and involuntary by :func:`churnrisk.spells.churn_type` at the churn instant. With
  a ``reactivation_gap_days`` G, subscription rows less than G days apart are one spell (as in the
  rates): an expiry followed by a renewal within G days is not churn, so the outcome is known only
  once the data reach ``c + L + H + G``.
* ``inactivity``: eligible when the customer ordered in ``(c - lookback, c]``; churned when they
  place no order in ``(c + L, c + L + H]``. Orders, or activity events when there are no orders.

The steps are declared once (:func:`churnrisk.definition.label_steps`) and executed here with
Polars (and by :mod:`churnrisk.spark` with Spark). With ``L = 0`` and, for inactivity,
``lookback = H``, the churn rate over the labelled customers is the historical ``lost_churn_rate``
of :func:`churnrisk.rates.churn_rates` for the period ``[c, c + H]`` on the same definition. A
cutoff whose outcome runs past the end of the data (:func:`churnrisk.definition.data_end`) is
*censored*: its customers are not labelled (the outcome is not known yet); their number is in
``.attrs``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd
import polars as pl

from churnrisk.definition import (
    ChurnDefinition,
    LabelSteps,
    SpellSource,
    check_days,
    data_end,
    label_steps,
)
from churnrisk.features._build import to_cutoff
from churnrisk.features._spec import Inputs
from churnrisk.spells import DEFINITIONS, active_at, churn_type, source_spells
from churnrisk.store import EventStore

__all__ = [
    "DEFINITIONS",
    "ChurnDefinition",
    "check_label_options",
    "data_end",
    "eligible_at",
    "label_definition",
    "label_end",
    "label_frame",
    "make_labels",
]

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


def label_end(
    cutoff: datetime, *, horizon: int, lead_time: int = 0, reactivation_gap_days: float = 0
) -> datetime:
    """The last instant a label at ``cutoff`` may read: ``cutoff + lead_time + horizon``, plus the
    grace period (only subscription labels need it, see :meth:`ChurnDefinition.label_end`)."""
    return cutoff + timedelta(days=lead_time + horizon + reactivation_gap_days)


#: Spells already built, by source: labelling many cutoffs builds each source once.
SpellCache = dict[SpellSource, pl.DataFrame]


def _active(store: EventStore, where: tuple[SpellSource, datetime], cache: SpellCache) -> pl.DataFrame:
    source, instant = where
    if source not in cache:
        cache[source] = source_spells(store, source)
    return active_at(cache[source], instant)


def label_frame(
    store: EventStore,
    cutoff: datetime,
    *,
    definition: str,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    reactivation_gap_days: float = 0,
    spells: SpellCache | None = None,
) -> pl.DataFrame:
    """Eligible customers at ``cutoff`` with ``churned`` (null when censored) and ``churn_type``.

    ``spells`` (a dict, filled as sources are built) may be passed in when labelling many cutoffs.
    """
    churn = ChurnDefinition(definition, horizon, lookback, lead_time, reactivation_gap_days)
    steps = label_steps(churn, cutoff, store)
    cache: SpellCache = {} if spells is None else spells
    eligible = _active(store, steps.eligible[0], cache)
    for where in steps.eligible[1:]:
        eligible = eligible.join(_active(store, where, cache), on=ID, how="semi")
    still = _active(store, steps.outcome, cache)
    censored = steps.known_at > data_end(store)
    churned = pl.col(ID).is_in(still[ID].implode()).not_()
    frame = eligible.with_columns(
        churned=pl.lit(None, pl.Int8) if censored else churned.cast(pl.Int8),
        churn_type=pl.lit(None, pl.String),
    )
    if steps.churn_type and not censored:
        frame = _with_churn_type(store, frame, cache[steps.outcome[0]], steps)
    return frame.sort(ID)


def eligible_at(store: EventStore, cutoff: datetime, churn: ChurnDefinition) -> pl.Series:
    """The customers at risk at ``cutoff`` as far as the cutoff knows (the first eligibility step:
    active at the cutoff), sorted; e.g. the customers to score."""
    return _active(store, label_steps(churn, cutoff, store).eligible[0], {})[ID].sort()


def _with_churn_type(
    store: EventStore, frame: pl.DataFrame, spells: pl.DataFrame, steps: LabelSteps
) -> pl.DataFrame:
    """Voluntary or involuntary, judged at the end of the spell that was running at the horizon's start."""
    ended = (
        spells.filter((pl.col("end") > steps.start) & (pl.col("end") <= steps.end))
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
    definition: Definition | ChurnDefinition,
    horizon: int | None = None,
    lookback: int | None = None,
    lead_time: int | None = None,
    reactivation_gap_days: float | None = None,
) -> pd.DataFrame:
    """Churn labels at ``cutoff``: who of the eligible customers churned within the horizon.

    Parameters
    ----------
    store : EventStore
        A validated event store.
    cutoff : date, datetime or str
        The prediction instant; the label reads only ``(cutoff + lead_time, cutoff + lead_time +
        horizon]`` (and the grace period after it).
    definition : {"subscription", "inactivity"} or ChurnDefinition
        See the module docstring; a :class:`~churnrisk.definition.ChurnDefinition` carries the
        options below (leave them out then).
    horizon : int
        Days after the lead time in which churn is looked for.
    lookback : int, optional
        ``inactivity`` only: a customer is eligible when they ordered in ``(cutoff - lookback,
        cutoff]``. Default: the horizon.
    lead_time : int, default 0
        Days between the cutoff and the start of the horizon (time to act on a prediction).
        Subscription customers who left during the lead time are not labelled.
    reactivation_gap_days : float, default 0
        ``subscription`` only: the grace period; rows less than this apart are one spell, as in
        :func:`churnrisk.rates.churn_rates`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``churned`` (0/1) and ``churn_type`` (``voluntary`` /
        ``involuntary`` for subscription churn, missing otherwise). ``.attrs`` holds
        ``censored`` (customers not labelled because the outcome runs past the end of the
        data), ``cutoff``, ``definition``, ``horizon``, ``lookback``, ``lead_time`` and
        ``reactivation_gap_days``.
    """
    cutoff = to_cutoff(cutoff)
    options = check_label_options(store, definition, horizon, lookback, lead_time, reactivation_gap_days)
    frame = label_frame(store, cutoff, **options)
    labelled = frame.filter(pl.col("churned").is_not_null())
    out = labelled.to_pandas().set_index(ID)
    out["churned"] = out["churned"].astype("int64")
    out["churn_type"] = out["churn_type"].astype("string")
    out.attrs = {"censored": frame.height - labelled.height, "cutoff": cutoff}
    out.attrs.update(options)
    return out


def label_definition(
    store: Any,
    definition: str | ChurnDefinition | None,
    horizon: Any = None,
    lookback: Any = None,
    lead_time: Any = None,
    reactivation_gap_days: Any = None,
) -> ChurnDefinition:
    """The churn definition of a label, checked against ``store``; a label needs a horizon."""
    churn = ChurnDefinition.make(
        store,
        definition,
        horizon=horizon,
        lookback=lookback,
        lead_time=lead_time,
        reactivation_gap_days=reactivation_gap_days,
    )
    if churn.horizon is None:
        check_days(None, "horizon")  # raises, naming the parameter
    return churn


def check_label_options(store: Any, definition: Any, *options: Any) -> dict[str, Any]:
    """Validated label options (those of :func:`label_definition`, in its order), as plain values."""
    return label_definition(store, definition, *options).options()
