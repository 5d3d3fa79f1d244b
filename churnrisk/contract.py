"""The event-store data contract (DESIGN §1): which tables exist and what their columns mean.

Every other module reads table and column names from here, so the contract lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACTIVITY_TABLES",
    "SCORE_RANGES",
    "TABLES",
    "Column",
    "TableSpec",
]

Kind = Literal["id", "time", "number", "text", "bool", "category"]


@dataclass(frozen=True)
class Column:
    """One column of the contract.

    ``kind`` decides how the column is parsed: ``id`` (the customer key), ``time`` (a timestamp,
    see :mod:`churnrisk.store`), ``number``, ``text``, ``bool`` or ``category`` (text from a fixed set
    of ``allowed`` values, compared in lower case).
    """

    name: str
    kind: Kind
    required: bool = False
    nonnegative: bool = False
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract: its columns, its event-time column and its unique key."""

    name: str
    columns: tuple[Column, ...]
    time: str | None = None
    key: tuple[str, ...] = ()

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _spec(name: str, *columns: Column, time: str | None = None, key: tuple[str, ...] = ()) -> TableSpec:
    customer = Column("customer_id", "id", required=True)
    return TableSpec(name, (customer, *columns), time=time, key=key)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        _spec("customers", Column("signup_at", "time"), key=("customer_id",)),
        _spec(
            "orders",
            Column("ordered_at", "time", required=True),
            Column("amount", "number", required=True, nonnegative=True),
            Column("order_id", "text"),
            Column("category", "text"),
            Column("quantity", "number", nonnegative=True),
            time="ordered_at",
            key=("order_id",),
        ),
        _spec(
            "returns",
            Column("returned_at", "time", required=True),
            Column("amount", "number", nonnegative=True),
            Column("kind", "category", allowed=("refund", "exchange")),
            time="returned_at",
        ),
        _spec(
            "subscriptions",
            Column("started_at", "time", required=True),
            Column("ended_at", "time"),
            Column("mrr", "number", required=True, nonnegative=True),
            Column("plan", "text"),
            Column("end_reason", "text"),
            Column("subscription_id", "text"),
            time="started_at",
            key=("subscription_id",),
        ),
        _spec(
            "tickets",
            Column("opened_at", "time", required=True),
            Column("category", "text"),
            Column("is_complaint", "bool"),
            Column("resolved_at", "time"),
            Column("ticket_id", "text"),
            time="opened_at",
            key=("ticket_id",),
        ),
        _spec(
            "surveys",
            Column("answered_at", "time", required=True),
            Column("kind", "category", required=True, allowed=("csat", "nps", "ces")),
            Column("score", "number", required=True),
            time="answered_at",
        ),
        _spec(
            "payments",
            Column("attempted_at", "time", required=True),
            Column("status", "category", required=True, allowed=("succeeded", "failed")),
            Column("amount", "number", nonnegative=True),
            Column("failure_reason", "text"),
            Column("payment_id", "text"),
            time="attempted_at",
            key=("payment_id",),
        ),
        _spec(
            "activity",
            Column("occurred_at", "time", required=True),
            Column("event", "text", required=True),
            Column("value", "number"),
            time="occurred_at",
        ),
    )
}

#: Tables that say whether a customer is active; a store needs ``customers`` and at least one of these.
ACTIVITY_TABLES: tuple[str, ...] = ("orders", "subscriptions", "activity")

#: Valid survey scores by kind (inclusive).
SCORE_RANGES: dict[str, tuple[float, float]] = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
