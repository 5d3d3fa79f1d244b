"""Churn definitions shared by the historical rates and the point-in-time labels (DESIGN §2-3).

A *spell* is one continuous relationship of a customer with the business: a row with
``customer_id``, ``start`` and ``end`` (``end`` null = still open). A customer is **active at
instant t** when one of their spells has ``start <= t < end``. Spells are half-open intervals, so a
spell that ends at ``t`` and another that starts at ``t`` touch, and touching spells are one spell.

Two ways to get spells:

* :func:`subscription_spells` (contractual data): subscription rows, merged when they touch or are
  separated by less than ``reactivation_gap_days`` — a plan change is a new row, not churn.
* :func:`order_spells` (non-contractual data): a customer is active at ``t`` when they ordered in
  ``(t - lookback, t]``; an order at ``t`` makes them active on ``[t, t + lookback)``.

A spell's ``end`` is the instant the customer churned (``churned_at``); :func:`churn_type` tells
voluntary from involuntary churn.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl

from churnrisk._deprecation import renamed
from churnrisk.definition import (
    DEFAULT_INACTIVITY_DAYS,
    KINDS,
    SpellSource,
    check_days,
    resolve_kind,
)
from churnrisk.errors import ChurnriskError

__all__ = [
    "DEFAULT_INACTIVITY_DAYS",
    "DEFINITIONS",
    "INVOLUNTARY_REASON",
    "active_at",
    "churn_type",
    "order_spells",
    "resolve_definition",
    "source_spells",
    "subscription_spells",
]

#: ``end_reason`` values (regular expression, case-insensitive) that mean the payment failed.
INVOLUNTARY_REASON = r"(?i)payment|card|billing|dunning|declin|involuntary|non.?pay|unpaid|expired"

# Stands in for "never" (an open spell) wherever a maximum over end times is taken.
_FOREVER = datetime(9999, 12, 31)


def _polars(frame: pl.DataFrame | pd.DataFrame, name: str) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pd.DataFrame):
        return pl.from_pandas(frame)
    raise ChurnriskError(f"{name} must be a pandas or Polars DataFrame, got {type(frame).__name__}.")


def _require(frame: pl.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ChurnriskError(
            f"{name} lacks the column(s) {missing}; it has {frame.columns}. "
            "Suggestion: map your column names in the config file."
        )


def shift_within(expr: pl.Expr, n: int = 1, *, by: str = "customer_id") -> pl.Expr:
    """``expr.shift(n)`` inside runs of equal ``by`` (null across a change) on a frame sorted by ``by``.

    Much faster than ``.over(by)`` when there are millions of small groups.
    """
    return pl.when(pl.col(by) == pl.col(by).shift(n)).then(expr.shift(n))


def merge_intervals(intervals: pl.DataFrame, *, gap: timedelta = timedelta(0)) -> pl.DataFrame:
    """Merge each customer's intervals ``[start, end)`` that overlap, touch or lie less than ``gap`` apart.

    ``intervals`` has ``customer_id``, ``start``, ``end`` (null = open) and optionally ``end_reason``;
    the result has one row per merged spell, sorted by customer and start, ``end_reason`` taken from
    the interval that ends last.
    """
    reason = pl.col("end_reason") if "end_reason" in intervals.columns else pl.lit(None, pl.String)
    frame = (
        intervals.select("customer_id", "start", "end", reason.alias("end_reason"))
        .filter(pl.col("customer_id").is_not_null() & pl.col("start").is_not_null())
        .with_columns(_end=pl.col("end").fill_null(_FOREVER))
        .sort("customer_id", "start")
    )
    previous_end = shift_within(pl.col("_end"))
    if frame.select((pl.col("_end") < previous_end).any()).item():
        return _merge_nested(frame, gap)
    # No interval ends before the one above it (true of valid subscriptions and of order windows, which
    # all have one length): the previous end is the latest end so far, and a spell ends with its last row.
    new = _starts_spell(previous_end, gap)
    frame = frame.with_columns(_new=new, _last=new.shift(-1, fill_value=True))
    starts = frame.filter(pl.col("_new")).select("customer_id", "start")
    ends = frame.filter(pl.col("_last")).select(
        pl.when(pl.col("_end") < _FOREVER).then(pl.col("_end")).alias("end"), "end_reason"
    )
    return pl.concat([starts, ends], how="horizontal")


def _starts_spell(reach: pl.Expr, gap: timedelta) -> pl.Expr:
    """A row starts a new spell when it begins after everything before it ended (touching merges) and
    the pause is at least the reactivation gap."""
    pause = pl.col("start") - reach
    return reach.is_null() | ((pause > timedelta(0)) & (pause >= gap))


def _merge_nested(frame: pl.DataFrame, gap: timedelta) -> pl.DataFrame:
    reach = pl.col("_end").cum_max().shift(1).over("customer_id")
    return (
        frame.with_columns(_spell=_starts_spell(reach, gap).cast(pl.Int64).cum_sum())
        .group_by("_spell", maintain_order=True)
        .agg(
            pl.col("customer_id").first(),
            pl.col("start").first(),
            pl.col("_end").max().alias("end"),
            pl.col("end_reason").get(pl.col("_end").arg_max()),
        )
        .with_columns(pl.when(pl.col("end") < _FOREVER).then(pl.col("end")).alias("end"))
        .drop("_spell")
    )


def subscription_spells(
    subscriptions: pl.DataFrame | pd.DataFrame, *, reactivation_gap_days: float = 0
) -> pl.DataFrame:
    """Continuous subscription relationships per customer.

    Parameters
    ----------
    subscriptions : DataFrame
        The contract's ``subscriptions`` table: ``customer_id``, ``started_at``, ``ended_at``
        (empty = still active), optionally ``end_reason``.
    reactivation_gap_days : float, default 0
        Rows of one customer that touch (one ends when the next starts) always form one spell;
        rows separated by a pause shorter than this many days do too. A pause of this length or
        longer is churn followed by a reactivation.

    Returns
    -------
    polars.DataFrame
        ``customer_id, start, end, end_reason``: one row per spell, ``end`` null when still open,
        ``end_reason`` of the spell's last row.

    Examples
    --------
    >>> from datetime import datetime as dt
    >>> subs = pl.DataFrame({"customer_id": [1, 1], "started_at": [dt(2024, 1, 1), dt(2024, 3, 1)],
    ...                      "ended_at": [dt(2024, 3, 1), None]})
    >>> subscription_spells(subs).select("start", "end").rows()
    [(datetime.datetime(2024, 1, 1, 0, 0), None)]
    """
    frame = _polars(subscriptions, "subscriptions")
    _require(frame, "subscriptions", ("customer_id", "started_at"))
    gap = timedelta(days=check_days(reactivation_gap_days, "reactivation_gap_days", minimum=0, whole=False))
    end = pl.col("ended_at") if "ended_at" in frame.columns else pl.lit(None, pl.Datetime("us"))
    columns = [pl.col("customer_id"), pl.col("started_at").alias("start"), end.alias("end")]
    if "end_reason" in frame.columns:
        columns.append(pl.col("end_reason").cast(pl.String))
    return merge_intervals(frame.select(columns), gap=gap)


@renamed(inactivity_days="lookback")
def order_spells(orders: pl.DataFrame | pd.DataFrame, *, lookback: int) -> pl.DataFrame:
    """Activity spells from orders: an order at ``t`` makes the customer active on ``[t, t + window)``.

    So a customer is active at ``t`` when they ordered in ``(t - window, t]``; the spell ends
    ``lookback`` days after their last order of a run. Overlapping or touching windows merge.

    Parameters
    ----------
    orders : DataFrame
        ``customer_id`` and ``ordered_at``.
    lookback : int
        The inactivity window in days (``--lookback``; the rates' default is
        :data:`DEFAULT_INACTIVITY_DAYS`).

    Returns
    -------
    polars.DataFrame
        ``customer_id, start, end, end_reason`` (``end_reason`` is ``"inactivity"``); ``end`` may lie
        after the last date in the data: the customer is active until then.

    Examples
    --------
    >>> from datetime import datetime as dt
    >>> orders = pl.DataFrame({"customer_id": [1, 1, 1],
    ...                        "ordered_at": [dt(2024, 1, 1), dt(2024, 1, 31), dt(2024, 6, 1)]})
    >>> [(s.day, e.day) for s, e in order_spells(orders, lookback=30).select("start", "end").rows()]
    [(1, 1), (1, 1)]
    """
    frame = _polars(orders, "orders")
    _require(frame, "orders", ("customer_id", "ordered_at"))
    window = timedelta(days=check_days(lookback, "lookback", whole=False))
    intervals = frame.select(
        "customer_id", pl.col("ordered_at").alias("start"), (pl.col("ordered_at") + window).alias("end")
    )
    return merge_intervals(intervals).with_columns(end_reason=pl.lit("inactivity"))


def active_at(spells: pl.DataFrame | pd.DataFrame, t: Any) -> pl.DataFrame:
    """Customers active at instant ``t``: a spell with ``start <= t < end`` (null end = open).

    Returns a one-column frame ``customer_id``, unique, sorted.
    """
    frame = _polars(spells, "spells")
    t = pd.Timestamp(t).to_pydatetime()
    inside = (pl.col("start") <= t) & (pl.col("end").is_null() | (pl.col("end") > t))
    return frame.filter(inside).select("customer_id").unique().sort("customer_id")


def churn_type(
    store: Any,
    churned: pl.DataFrame | pd.DataFrame,
    *,
    window_days: float = 30,
) -> pl.DataFrame:
    """Split churn into voluntary and involuntary (DESIGN §2, seed).

    The rule: a customer who churned at ``churned_at`` churned **involuntarily** when

    * a payment attempt failed in ``[churned_at - window_days, churned_at]`` and no attempt succeeded
      after the last such failure up to ``churned_at`` (the failure was never recovered), or
    * the subscription row that ended at ``churned_at`` has an ``end_reason`` that names a payment
      problem (:data:`INVOLUNTARY_REASON`: "payment failed", "card expired", "dunning", ...).

    Every other churn is **voluntary**, including when the store has neither payments nor end reasons.
    Only events up to ``churned_at`` are read, so labels built with this rule see nothing later.

    Parameters
    ----------
    store : EventStore
        Reads its ``payments`` and ``subscriptions`` tables when present.
    churned : DataFrame
        ``customer_id`` and ``churned_at`` (one row per churn event; a customer may churn twice).
    window_days : float, default 30
        How long before the churn a failed payment still counts as its cause.

    Returns
    -------
    polars.DataFrame
        ``customer_id, churned_at, churn_type`` in the order of ``churned``; ``churn_type`` is
        ``"voluntary"`` or ``"involuntary"``.
    """
    events = _polars(churned, "churned")
    _require(events, "churned", ("customer_id", "churned_at"))
    window = timedelta(days=check_days(window_days, "window_days", minimum=0, whole=False))
    events = events.select("customer_id", pl.col("churned_at").cast(pl.Datetime("us"))).with_row_index("_row")
    failed = _unrecovered_failure(store.get("payments"), events, window)
    by_reason = _payment_end_reason(store.get("subscriptions"), events)
    involuntary = pl.concat([failed, by_reason]).unique()
    return (
        events.join(involuntary.with_columns(_inv=pl.lit(True)), on="_row", how="left")
        .sort("_row")
        .select(
            "customer_id",
            "churned_at",
            pl.when(pl.col("_inv"))
            .then(pl.lit("involuntary"))
            .otherwise(pl.lit("voluntary"))
            .alias("churn_type"),
        )
    )


def _unrecovered_failure(
    payments: pl.DataFrame | None, events: pl.DataFrame, window: timedelta
) -> pl.DataFrame:
    """Rows of ``events`` whose last payment attempt in the window failed and was not followed by success."""
    if payments is None or "status" not in payments.columns:
        return pl.DataFrame(schema={"_row": pl.UInt32})
    attempts = payments.select(
        "customer_id", "attempted_at", pl.col("status").cast(pl.String).str.to_lowercase()
    )
    joined = events.join(attempts, on="customer_id").filter(pl.col("attempted_at") <= pl.col("churned_at"))
    last_failure = (
        joined.filter(
            (pl.col("status") == "failed") & (pl.col("attempted_at") >= pl.col("churned_at") - window)
        )
        .group_by("_row")
        .agg(pl.col("attempted_at").max().alias("_failed_at"))
    )
    recovered = (
        joined.join(last_failure, on="_row")
        .filter((pl.col("status") == "succeeded") & (pl.col("attempted_at") > pl.col("_failed_at")))
        .select("_row")
        .unique()
    )
    return last_failure.select("_row").join(recovered, on="_row", how="anti")


def _payment_end_reason(subscriptions: pl.DataFrame | None, events: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``events`` where a subscription row ending at ``churned_at`` names a payment problem."""
    if subscriptions is None or not {"ended_at", "end_reason"} <= set(subscriptions.columns):
        return pl.DataFrame(schema={"_row": pl.UInt32})
    reasons = subscriptions.filter(
        pl.col("end_reason").cast(pl.String).str.contains(INVOLUNTARY_REASON)
    ).select("customer_id", pl.col("ended_at").alias("churned_at"))
    return events.join(reasons, on=["customer_id", "churned_at"], how="semi").select("_row")


#: The churn definitions shared by the historical rates and the point-in-time labels.
DEFINITIONS = KINDS
#: Checks a kind of churn definition against a store (see :func:`churnrisk.definition.resolve_kind`).
resolve_definition = resolve_kind


def source_spells(store: Any, source: SpellSource) -> pl.DataFrame:
    """The spells of one declared source (:class:`~churnrisk.definition.SpellSource`), with Polars."""
    frame = store[source.table]
    if source.window is None:
        return subscription_spells(frame, reactivation_gap_days=source.gap_days)
    events = frame.select("customer_id", pl.col(source.time).alias("ordered_at"))
    return order_spells(events, lookback=source.window)
