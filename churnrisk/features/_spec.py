"""The signal families as data (DESIGN §4): what to aggregate, over which rows, in which windows.

A family is a list of declarations over one event table, read by one generic executor
(:mod:`churnrisk.features._polars`; a Spark executor can read the same declarations). The
vocabulary is deliberately small so that every engine can translate it:

* :class:`Where` — a row filter: a column compared with a literal (``status == "failed"``) or with
  another column (:class:`Col`), or a null/true test.
* :class:`Agg` — one statistic of one column over the rows of one *span*, e.g.
  ``Agg("failed", "count", where=(Where("status", "==", "failed"),))``. Statistics: ``count``,
  ``sum``, ``mean``, ``min``, ``max``, ``last``, ``prev`` (the value before the last one),
  ``n_unique``, ``days_since`` (cutoff minus the latest event time), ``days_since_first``,
  ``share`` (rows matching ``where`` / rows in the span), ``mean_gap`` (mean days between
  consecutive events). Spans, all relative to the cutoff ``c`` and a window ``w``:

  - ``window``: event time in ``(c - w, c]`` — one column per window;
  - ``prior``: event time in ``(c - 2w, c - w]`` — the window before, for trends;
  - ``history``: event time ``<= c`` — one column;
  - ``open``: intervals still open at ``c`` (``end`` null once end times after ``c`` are hidden);
  - ``open_at_window_start``: intervals open at ``c - w``.

* :class:`Derived` — arithmetic on aggregated columns of the same family and window: ``diff``
  (left - right), ``ratio`` (left / right, missing when right is 0) and ``bins`` (labels for
  value ranges).
* Row-level helper columns computed before aggregating (after the point-in-time cut):
  :class:`Duration` (days between two time columns), :class:`Lag` (the customer's previous value
  in time order) and :class:`LastTime` (the customer's latest event time among rows matching a
  filter).

Point-in-time rules are part of the family: only rows with event time ``<= c`` are read, and the
time columns listed in ``known_when`` (``ended_at``, ``resolved_at``) are hidden (set to null)
when they lie after the cutoff, because at the cutoff they had not happened yet.

Column names are ``<family>_<name>_<w>d`` for window-wise features and ``<family>_<name>``
otherwise. ``fill`` is the value for a customer with no matching rows when zero is the truth
(no tickets = 0 complaints); otherwise such a customer gets a missing value. ``what`` is the noun
phrase the explanations use; ``text`` overrides the statistic's sentence template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_WINDOWS",
    "FAMILIES",
    "Agg",
    "Col",
    "Derived",
    "Duration",
    "Family",
    "Inputs",
    "Lag",
    "LastTime",
    "Where",
    "feature_inputs",
    "merge_inputs",
]

#: Default look-back windows, in days.
DEFAULT_WINDOWS: tuple[int, ...] = (30, 90, 180, 365)

Stat = Literal[
    "count",
    "sum",
    "mean",
    "min",
    "max",
    "last",
    "prev",
    "n_unique",
    "days_since",
    "days_since_first",
    "share",
    "mean_gap",
]
Span = Literal["window", "prior", "history", "open", "open_at_window_start"]
Op = Literal["==", "!=", "<", "<=", ">", ">=", "is_null", "not_null", "is_true"]
WINDOWED_SPANS: tuple[str, ...] = ("window", "prior", "open_at_window_start")


@dataclass(frozen=True)
class Col:
    """A reference to another column of the same row, as the right-hand side of a :class:`Where`."""

    name: str


@dataclass(frozen=True)
class Where:
    """A row filter: ``column op value``; ``value`` is a literal or a :class:`Col`."""

    column: str
    op: Op = "=="
    value: Any = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, self.value.name) if isinstance(self.value, Col) else (self.column,)


@dataclass(frozen=True)
class Agg:
    """One statistic of one column over the rows of one span (see the module docstring)."""

    name: str
    stat: Stat
    column: str | None = None
    where: tuple[Where, ...] = ()
    span: Span = "window"
    fill: float | None = None
    what: str = ""
    text: str | None = None
    keep: bool = True

    @property
    def windowed(self) -> bool:
        return self.span in WINDOWED_SPANS

    @property
    def columns(self) -> tuple[str, ...]:
        own = (self.column,) if self.column else ()
        return own + tuple(c for w in self.where for c in w.columns)


@dataclass(frozen=True)
class Derived:
    """Arithmetic on the aggregated columns ``left`` and ``right`` of the same family and window."""

    name: str
    op: Literal["diff", "ratio", "bins"]
    left: str
    right: str | None = None
    bins: tuple[tuple[float, str], ...] = ()
    what: str = ""
    text: str | None = None
    keep: bool = True


@dataclass(frozen=True)
class Duration:
    """Row-level helper: days from ``start`` to ``end`` (missing when either is missing)."""

    name: str
    start: str
    end: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.start, self.end)


@dataclass(frozen=True)
class Lag:
    """Row-level helper: the customer's previous value of ``column`` in event-time order."""

    name: str
    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True)
class LastTime:
    """Row-level helper: the customer's latest event time (up to the cutoff) among rows matching
    ``where``; ``0001-01-01`` when there is none, so that "after it" is true for every row."""

    name: str
    where: tuple[Where, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for w in self.where for c in w.columns)


Helper = Duration | Lag | LastTime


@dataclass(frozen=True)
class Family:
    """A signal family: declarations over one event table (see the module docstring).

    ``one_row_per_customer`` marks the customers table (no grouping; rows without a time are kept).
    ``attributes`` adds one ``last`` feature per column of the table that is not in the contract.
    """

    name: str
    table: str
    time: str
    features: tuple[Agg | Derived, ...]
    known_when: tuple[str, ...] = ()
    end: str | None = None
    helpers: tuple[Helper, ...] = ()
    one_row_per_customer: bool = False
    attributes: bool = False

    @property
    def inputs(self) -> frozenset[str] | None:
        """The columns of its table that the family reads (``None``: all of them, ``attributes``)."""
        if self.attributes:
            return None
        read = {"customer_id", self.time, *self.known_when, *([self.end] if self.end else [])}
        read |= {c for f in self.features if isinstance(f, Agg) for c in f.columns}
        read |= {c for h in self.helpers for c in h.columns}
        return frozenset(read - {h.name for h in self.helpers})


def _failed() -> tuple[Where, ...]:
    return (Where("status", "==", "failed"),)


FAMILIES: tuple[Family, ...] = (
    Family(
        "purchases",
        "orders",
        "ordered_at",
        (
            Agg("frequency", "count", fill=0, what="orders"),
            Agg("monetary", "sum", "amount", fill=0, what="spent"),
            Agg("frequency_prior", "count", span="prior", fill=0, what="orders", keep=False),
            Agg("monetary_prior", "sum", "amount", span="prior", fill=0, what="spent", keep=False),
            Derived("frequency_trend", "diff", "frequency", "frequency_prior", what="orders"),
            Derived("spend_trend", "diff", "monetary", "monetary_prior", what="spending"),
            Derived("aov", "ratio", "monetary", "frequency", what="average order value"),
            Derived(
                "aov_prior",
                "ratio",
                "monetary_prior",
                "frequency_prior",
                what="the average order value before",
                keep=False,
            ),
            Derived("aov_trend", "diff", "aov", "aov_prior", what="average order value"),
            Agg("recency", "days_since", span="history", what="order"),
            Agg("orders", "count", span="history", fill=0, what="orders in total"),
            Agg("spend", "sum", "amount", span="history", fill=0, what="spent in total"),
            Agg("first_order", "days_since_first", span="history", what="first order"),
            Agg("usual_gap", "mean_gap", span="history", what="orders"),
            Derived(
                "gap_ratio",
                "ratio",
                "recency",
                "usual_gap",
                what="order",
                text="no order for {left} days, usual gap {right}",
            ),
        ),
    ),
    Family(
        "returns",
        "returns",
        "returned_at",
        (
            Agg("count", "count", fill=0, what="returns"),
            Agg("amount", "sum", "amount", fill=0, what="returned"),
            Agg("refunds", "count", where=(Where("kind", "==", "refund"),), fill=0, what="refunds"),
            Agg("exchanges", "count", where=(Where("kind", "==", "exchange"),), fill=0, what="exchanges"),
            Agg(
                "refund_share",
                "share",
                where=(Where("kind", "==", "refund"),),
                span="history",
                what="returns that were refunds",
            ),  # fmt: skip
            Agg("recency", "days_since", span="history", what="return"),
        ),
    ),
    Family(
        "subscription",
        "subscriptions",
        "started_at",
        (
            Agg("tenure", "days_since_first", span="history", what="first subscription"),
            Agg("mrr", "sum", "mrr", span="open", fill=0, what="MRR"),
            Agg("open", "count", span="open", fill=0, what="subscriptions"),
            Agg("mrr_start", "sum", "mrr", span="open_at_window_start", fill=0, what="MRR", keep=False),
            Derived("mrr_change", "diff", "mrr", "mrr_start", what="MRR"),
            Agg(
                "downgrades",
                "count",
                where=(Where("mrr", "<", Col("previous_mrr")),),
                fill=0,
                what="downgrades",
            ),  # fmt: skip
            Agg(
                "upgrades", "count", where=(Where("mrr", ">", Col("previous_mrr")),), fill=0, what="upgrades"
            ),  # fmt: skip
            Agg("plan", "last", "plan", span="history", what="plan"),
        ),
        known_when=("ended_at",),
        end="ended_at",
        helpers=(Lag("previous_mrr", "mrr"),),
    ),
    Family(
        "support",
        "tickets",
        "opened_at",
        (
            Agg("tickets", "count", fill=0, what="support tickets"),
            Agg("complaints", "count", where=(Where("is_complaint", "is_true"),), fill=0, what="complaints"),
            Agg(
                "unresolved",
                "count",
                where=(Where("resolved_at", "is_null"),),
                span="history",
                fill=0,
                what="unresolved tickets",
            ),  # fmt: skip
            Agg(
                "complaint_recency",
                "days_since",
                where=(Where("is_complaint", "is_true"),),
                span="history",
                what="complaint",
            ),  # fmt: skip
            Agg("resolution_days", "mean", "resolution_days", what="days to resolve a ticket"),
        ),
        known_when=("resolved_at",),
        helpers=(Duration("resolution_days", "opened_at", "resolved_at"),),
    ),
    Family(
        "surveys",
        "surveys",
        "answered_at",
        (
            Agg(
                "csat_last",
                "last",
                "score",
                where=(Where("kind", "==", "csat"),),
                span="history",
                what="CSAT",
            ),  # fmt: skip
            Agg(
                "csat_prev",
                "prev",
                "score",
                where=(Where("kind", "==", "csat"),),
                span="history",
                what="CSAT",
            ),  # fmt: skip
            Derived("csat_trend", "diff", "csat_last", "csat_prev", what="CSAT"),
            Agg("csat_mean", "mean", "score", where=(Where("kind", "==", "csat"),), what="CSAT"),
            Agg(
                "nps_last",
                "last",
                "score",
                where=(Where("kind", "==", "nps"),),
                span="history",
                what="NPS score",
            ),  # fmt: skip
            Derived(
                "nps_group",
                "bins",
                "nps_last",
                bins=((6, "detractor"), (8, "passive"), (10, "promoter")),
                what="NPS group",
            ),  # fmt: skip
            Agg(
                "ces_last",
                "last",
                "score",
                where=(Where("kind", "==", "ces"),),
                span="history",
                what="customer effort score",
            ),  # fmt: skip
            Agg("recency", "days_since", span="history", what="survey answer"),
        ),
    ),
    Family(
        "payments",
        "payments",
        "attempted_at",
        (
            Agg("failed", "count", where=_failed(), fill=0, what="failed payments"),
            Agg(
                "consecutive_failures",
                "count",
                where=(*_failed(), Where("attempted_at", ">", Col("last_success_at"))),
                span="history",
                fill=0,
                what="failed payments in a row",
            ),  # fmt: skip
            Agg("failure_recency", "days_since", where=_failed(), span="history", what="failed payment"),
            Agg(
                "recovered",
                "count",
                where=(*_failed(), Where("attempted_at", "<", Col("last_success_at"))),
                fill=0,
                what="failed payments later recovered",
            ),  # fmt: skip
            Agg(
                "unrecovered",
                "count",
                where=(*_failed(), Where("attempted_at", ">", Col("last_success_at"))),
                fill=0,
                what="failed payments not recovered",
            ),  # fmt: skip
        ),
        helpers=(LastTime("last_success_at", (Where("status", "==", "succeeded"),)),),
    ),
    Family(
        "activity",
        "activity",
        "occurred_at",
        (
            Agg("events", "count", fill=0, what="product events"),
            Agg("events_prior", "count", span="prior", fill=0, what="product events", keep=False),
            Derived("events_trend", "diff", "events", "events_prior", what="product events"),
            Agg("recency", "days_since", span="history", what="product event"),
        ),
    ),
    Family(
        "customer",
        "customers",
        "signup_at",
        (Agg("tenure", "days_since_first", span="history", what="signup"),),
        one_row_per_customer=True,
        attributes=True,
    ),
)


Inputs = dict[str, frozenset[str] | None]


def feature_inputs(families: tuple[Family, ...] = FAMILIES) -> Inputs:
    """The columns the features read, by table (``None``: all columns), e.g. for
    ``EventStore.from_folder(folder, columns=feature_inputs())``."""
    return merge_inputs(*({family.table: family.inputs} for family in families))


def merge_inputs(*inputs: Inputs) -> Inputs:
    """The columns any of ``inputs`` reads, by table (``None``, all columns, wins)."""
    out: Inputs = {}
    for each in inputs:
        for table, columns in each.items():
            before = out.get(table, frozenset())
            out[table] = None if columns is None or before is None else before | columns
    return out
