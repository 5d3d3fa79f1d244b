"""One churn definition (DESIGN §2-3), checked in one place, and the label steps it implies.

:class:`ChurnDefinition` is what "churned" means: its ``kind`` (``subscription`` or
``inactivity``), the ``horizon`` a label looks ahead, the ``lookback`` (the inactivity window: a
customer who ordered within it is active), the ``lead_time`` between the cutoff and the horizon,
and the ``reactivation_gap_days`` (a grace period: subscription rows apart by less than it are one
relationship, so "no renewal within 30 days after expiry" is churn, a renewal 10 days late is not).
The historical rates, the labels, the training sets, training, evaluation, monitoring and the
Spark engine all build one from their keyword arguments, so every check below runs the same way
wherever the definition enters.

The label of a definition at a cutoff is declared here as engine-neutral steps
(:func:`label_steps`): which spells to build (:class:`SpellSource`), at which instants a customer
must be active to be eligible, at which instant still being active means "stayed", and until
when the data must reach for the outcome to be known. :mod:`churnrisk.labels` executes the steps
with Polars, :mod:`churnrisk.spark` with Spark, so a change to the definition lands in both.

"The end of the data" is defined here too (:func:`data_span`): the latest event time of every
table, subscription ends included (an ``ended_at`` is an event: validation refuses one after the
as-of date like any other time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from churnrisk.errors import ChurnriskError

__all__ = [
    "DEFAULT_INACTIVITY_DAYS",
    "END_TIMES",
    "KINDS",
    "ChurnDefinition",
    "LabelSteps",
    "SpellSource",
    "activity_table",
    "check_days",
    "data_end",
    "data_span",
    "label_steps",
    "recorded_options",
    "resolve_kind",
]

Kind = Literal["subscription", "inactivity"]
#: The kinds of churn definition shared by the historical rates and the point-in-time labels.
KINDS: tuple[str, ...] = ("subscription", "inactivity")
#: Default inactivity window for order data: no order for 90 days means the customer has left.
DEFAULT_INACTIVITY_DAYS = 90


def check_days(value: Any, name: str, *, minimum: int = 1, whole: bool = True) -> Any:
    """``value`` as a number of days, or a :class:`ChurnriskError` naming ``name`` and the value.

    ``whole`` asks for a whole number (returned as ``int``; ``90.0`` is accepted), else any real
    number (NaN refused); ``minimum`` is 1 (positive) or 0.
    """
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if whole:
        ok = number and float(value) == int(value) and int(value) >= minimum
        kind = "a positive whole number of days" if minimum >= 1 else "a whole number of days >= 0"
    else:
        ok = number and value >= minimum  # NaN fails the comparison
        kind = "a positive number of days" if minimum >= 1 else "a number of days >= 0"
    if not ok:
        raise ChurnriskError(
            f"The '{name}' parameter must be {kind}. Got {value!r} instead. Suggestion: e.g. {name}=90."
        )
    return int(value) if whole else float(value)


def _check_kind(kind: Any) -> None:
    if kind not in KINDS:
        raise ChurnriskError(
            f"The 'definition' parameter must be one of {list(KINDS)}. Got {kind!r} instead."
        )


def resolve_kind(store: Any, kind: str | None) -> str:
    """Check a kind of churn definition against a store; ``None`` picks one from the store's tables.

    ``subscription`` when the store has subscriptions, else ``inactivity``. Works for any store that
    answers ``"orders" in store`` (the in-process one and the Spark one).
    """
    if kind is None:
        return "subscription" if "subscriptions" in store else "inactivity"
    _check_kind(kind)
    if kind == "subscription" and "subscriptions" not in store:
        raise ChurnriskError(
            "the subscription churn definition needs a 'subscriptions' table. "
            "Suggestion: use the inactivity definition for order data."
        )
    if kind == "inactivity" and "orders" not in store and "activity" not in store:
        raise ChurnriskError(
            "the inactivity churn definition needs an 'orders' or 'activity' table. "
            "Suggestion: use the subscription definition for subscription data."
        )
    return kind


@dataclass(frozen=True)
class ChurnDefinition:
    """What "churned" means; every field is checked when the definition is made.

    Parameters
    ----------
    kind : {"subscription", "inactivity"}
        ``subscription``: active while a subscription runs. ``inactivity``: active while the last
        order (or activity event) is less than the inactivity window old.
    horizon : int, optional
        Days after the lead time in which a label looks for churn (labels need one; rates do not).
    lookback : int, optional
        The inactivity window in days: eligible when ordered in ``(cutoff - lookback, cutoff]``.
        Default: the horizon for labels, :data:`DEFAULT_INACTIVITY_DAYS` for rates.
    lead_time : int, default 0
        Days between the cutoff and the start of the horizon.
    reactivation_gap_days : float, default 0
        Subscription rows of one customer apart by less than this are one spell (a grace period).

    Examples
    --------
    >>> grace = ChurnDefinition("subscription", horizon=90, reactivation_gap_days=30)
    >>> grace.options()["reactivation_gap_days"]
    30.0
    >>> ChurnDefinition("inactivity", horizon=0)
    Traceback (most recent call last):
    ...
    churnrisk.errors.ChurnriskError: The 'horizon' parameter must be a positive whole number of days. Got 0 \
instead. Suggestion: e.g. horizon=90.
    """

    kind: str
    horizon: int | None = None
    lookback: int | None = None
    lead_time: int = 0
    reactivation_gap_days: float = 0.0

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        checked = {
            "horizon": None if self.horizon is None else check_days(self.horizon, "horizon"),
            "lookback": None if self.lookback is None else check_days(self.lookback, "lookback"),
            "lead_time": check_days(self.lead_time, "lead_time", minimum=0),
            "reactivation_gap_days": check_days(
                self.reactivation_gap_days, "reactivation_gap_days", minimum=0, whole=False
            ),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def make(
        cls, store: Any, definition: str | ChurnDefinition | None = None, **options: Any
    ) -> ChurnDefinition:
        """A definition from a public function's keyword arguments, its kind checked against ``store``.

        ``definition`` may already be a :class:`ChurnDefinition` (then ``options`` must be left
        out); ``None`` picks the kind from the store's tables; options given as ``None`` take
        their defaults.
        """
        given = {k: v for k, v in options.items() if v is not None}
        if isinstance(definition, ChurnDefinition):
            if given:
                raise ChurnriskError(
                    f"a ChurnDefinition was given together with {sorted(given)}. "
                    "Suggestion: put those options into the definition."
                )
            resolve_kind(store, definition.kind)
            return definition
        return cls(resolve_kind(store, definition), **given)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ChurnDefinition:
        """The definition recorded by :meth:`options` (in a training set or model's metadata).

        Metadata written before the grace period existed have none: 0 days.
        """
        fields = ("horizon", "lookback", "lead_time", "reactivation_gap_days")
        given = {k: options[k] for k in fields if options.get(k) is not None}
        return cls(options["definition"], **given)

    def options(self) -> dict[str, Any]:
        """The definition as plain values (``definition`` is the kind), e.g. for metadata; the grace
        period only when there is one, so a definition without one reads as it was recorded before
        grace periods existed (:func:`recorded_options` reads both)."""
        values = asdict(self)
        if not values["reactivation_gap_days"]:
            del values["reactivation_gap_days"]
        return {"definition": values.pop("kind"), **values}

    def needs_horizon(self, caller: str) -> int:
        if self.horizon is None:
            raise ChurnriskError(f"{caller} needs a horizon. Suggestion: e.g. horizon=90.")
        return self.horizon

    @property
    def window(self) -> int:
        """The inactivity window: the look-back, else the horizon, else the default 90 days."""
        return self.lookback or self.horizon or DEFAULT_INACTIVITY_DAYS

    @property
    def gap(self) -> timedelta:
        """The grace period; only subscription spells have one."""
        return timedelta(days=self.reactivation_gap_days if self.kind == "subscription" else 0)

    @property
    def label_delay(self) -> timedelta:
        """How long after a cutoff its label is known: the lead time and the horizon, plus the grace
        period (a renewal within it after an expiry near the horizon's end still counts as staying)."""
        return timedelta(days=self.lead_time + self.needs_horizon("a label")) + self.gap

    def spell_source(self, store: Any, *, window: int | None = None) -> SpellSource:
        """The spells whose end is churn under this definition: subscription rows with the grace
        period, or orders (else activity events) with an inactivity ``window`` (default: :attr:`window`)."""
        if self.kind == "subscription":
            return SpellSource("subscriptions", "started_at", gap_days=self.reactivation_gap_days)
        table, time = activity_table(store)
        return SpellSource(table, time, window=window or self.window)

    def label_end(self, cutoff: datetime) -> datetime:
        """The last instant a label at ``cutoff`` reads (see :attr:`label_delay`)."""
        return cutoff + self.label_delay


def recorded_options(recorded: Mapping[Any, Any]) -> dict[Any, Any]:
    """Options recorded with a training set or a model, a missing grace period read as none."""
    return {"reactivation_gap_days": 0.0, **recorded} if "definition" in recorded else dict(recorded)


# ---------------------------------------------------------------------- the label as steps
@dataclass(frozen=True)
class SpellSource:
    """Which spells to build from a store: an engine builds each source once and reuses it.

    ``window`` None: the rows ``[started_at, ended_at)`` of ``table`` (subscriptions), merged when
    they touch or lie less than ``gap_days`` apart. Else an event at ``t`` of ``table`` makes the
    customer active on ``[t, t + window days)``; overlapping or touching windows merge.
    """

    table: str
    time: str
    window: int | None = None
    gap_days: float = 0.0


@dataclass(frozen=True)
class LabelSteps:
    """A label at one cutoff, as steps every engine runs the same way.

    A customer is **eligible** when active at every ``(source, instant)`` of ``eligible``; they
    **stayed** when active in ``outcome[0]`` at ``outcome[1]``, else churned. The outcome is known
    when the data reach ``known_at``, otherwise every eligible customer's label is missing
    (censored). With ``churn_type``, the churn instant is the latest end of a ``outcome[0]`` spell
    in ``(start, end]``, split into voluntary and involuntary there.
    """

    eligible: tuple[tuple[SpellSource, datetime], ...]
    outcome: tuple[SpellSource, datetime]
    start: datetime
    end: datetime
    known_at: datetime
    churn_type: bool


def activity_table(store: Any) -> tuple[str, str]:
    """The table (and its time column) that keeps a customer active under inactivity: orders, else
    activity events."""
    return ("orders", "ordered_at") if "orders" in store else ("activity", "occurred_at")


def label_steps(definition: ChurnDefinition, cutoff: datetime, store: Any) -> LabelSteps:
    """The steps of the label of ``definition`` at ``cutoff`` (see :class:`LabelSteps`).

    * ``subscription``: eligible when active at the cutoff and still at ``cutoff + lead_time``
      (who left during the lead time is not labelled); stayed when active at the horizon's end.
    * ``inactivity``: eligible when an order fell in ``(cutoff - lookback, cutoff]``; stayed when
      an order fell in the horizon ``(cutoff + lead_time, cutoff + lead_time + horizon]``.
    """
    horizon = definition.needs_horizon("a label")
    start = cutoff + timedelta(days=definition.lead_time)
    end = start + timedelta(days=horizon)
    spells = definition.spell_source(store)
    if definition.kind == "subscription":
        eligible: tuple[tuple[SpellSource, datetime], ...] = ((spells, cutoff), (spells, start))
        outcome = (spells, end)
    else:
        eligible = ((spells, cutoff),)
        outcome = (definition.spell_source(store, window=horizon), end)
    return LabelSteps(
        eligible,
        outcome,
        start,
        end,
        known_at=definition.label_end(cutoff),
        churn_type=definition.kind == "subscription",
    )


# ---------------------------------------------------------------------- the end of the data
#: Times that count towards the end of the data besides each table's event time (the contract's
#: ``TableSpec.time``): a subscription end is an event too.
END_TIMES: tuple[tuple[str, str], ...] = (("subscriptions", "ended_at"),)


def data_span(store: Any) -> tuple[datetime, datetime]:
    """The first and the last instant an (in-process) store knows about: event times and
    :data:`END_TIMES`; outcomes after the last one are unknown."""
    first, last = store.time_span()
    for table, column in END_TIMES:
        frame = store.get(table)
        latest = frame[column].max() if frame is not None and column in frame.columns else None
        if latest is not None:
            last = latest if last is None else max(last, latest)
    if first is None or last is None:
        raise ChurnriskError("the event store has no dated events: churn cannot be measured or labelled.")
    return first, last


def data_end(store: Any) -> datetime:
    """The last instant a store knows about (see :func:`data_span`)."""
    return data_span(store)[1]
