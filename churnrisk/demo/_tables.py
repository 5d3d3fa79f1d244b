"""The event tables of the demo business, one generator each, drawn from the world, then typed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from churnrisk.demo._params import (
    _TICKET_CATEGORY_NAMES,
    ACTIVITY_EVENTS,
    BASE_FAILURE_PROBABILITY,
    BASE_RATES,
    BASE_RETURN_PROBABILITY,
    CATEGORY_NON_REPEAT,
    CAUSE_NAMES,
    CAUSES,
    DUNNING_RETRY_DAYS,
    FAILURE_REASONS,
    FAVOURITE_CATEGORY_SHARE,
    MONTH_DAYS,
    PLANS,
    REFUND_SHARE,
    RETRY_DAYS,
    SCORE_SHIFTS,
    TICKET_CATEGORIES,
    UPGRADE_GAP_DAYS,
)
from churnrisk.demo._world import _by_cause, _choice, _draw, _effects, _labels, _signal, _World


def demo_tables(world: _World) -> dict[str, pd.DataFrame]:
    """Every table of the demo business and its ground truth, drawn from ``world``.

    The generators share one random generator, so their order is part of the data: same seed, same tables.
    """
    spells = _subscriptions(world)
    orders = _orders(world)
    tables = {
        "customers": _customers(world),
        "orders": orders,
        "returns": _returns(world, orders),
        "subscriptions": spells,
        "tickets": _tickets(world),
        "surveys": _surveys(world),
        "payments": _payments(world, spells),
        "activity": _activity(world),
        "ground_truth": _ground_truth(world),
    }
    return {name: _finish(name, frame, world) for name, frame in tables.items()}


def _customers(world: _World) -> pd.DataFrame:
    a = world.attributes
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, world.n + 1),
            "signup_at": world.signup,
            "segment": a["segment"],
            "country": a["country"],
            "channel": a["channel"],
            "plan": _labels(np.where(world.subscriber, a["tier"], -1), PLANS),
            "category": _labels(np.where(world.subscriber, -1, a["category"].codes), CATEGORY_NON_REPEAT),
        }
    )


def _ground_truth(world: _World) -> pd.DataFrame:
    types = ("voluntary", "involuntary")
    type_of_cause = np.array([types.index(c.churn_type) for c in CAUSES.values()] + [-1])
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, world.n + 1),
            "customer_type": _labels(np.where(world.subscriber, 0, 1), ("subscriber", "buyer")),
            "churned": world.churned,
            "churned_at": np.where(world.churned, world.stop, np.nan),
            "cause": _labels(world.cause, CAUSE_NAMES),
            "churn_type": _labels(type_of_cause[world.cause], types),
        }
    )


def _subscriptions(world: _World) -> pd.DataFrame:
    """Spells: one per plan, touching at every plan change; the last one ends at churn."""
    rng, ep = world.rng, world.episodes
    subs = np.flatnonzero(world.subscriber)
    upgrade_at = world.signup[subs] + rng.exponential(UPGRADE_GAP_DAYS, subs.size)
    downgrade = world.subscriber[ep.customer] & (ep.cause == CAUSE_NAMES.index("downgrade"))
    change_customer = np.concatenate([subs, ep.customer[downgrade]])
    change_at = np.concatenate([upgrade_at, ep.onset[downgrade]])
    step = np.concatenate([np.ones(subs.size, np.int64), -np.ones(int(downgrade.sum()), np.int64)])
    inside = change_at < world.stop[change_customer]
    change_customer, change_at, step = change_customer[inside], change_at[inside], step[inside]
    order = np.lexsort((change_at, change_customer))
    change_customer, change_at, step = change_customer[order], change_at[order], step[order]
    tier_after, effective = _apply_plan_changes(world.attributes["tier"], change_customer, step)
    spell_customer = np.concatenate([subs, change_customer[effective]])
    spell_start = np.concatenate([world.signup[subs], change_at[effective]])
    spell_tier = np.concatenate([world.attributes["tier"][subs], tier_after[effective]])
    order = np.lexsort((spell_start, spell_customer))
    spell_customer, spell_start, spell_tier = spell_customer[order], spell_start[order], spell_tier[order]
    last = np.append(spell_customer[1:] != spell_customer[:-1], True)
    churned = world.churned[spell_customer]
    next_start = np.append(spell_start[1:], np.nan)
    ended = np.where(last, np.where(churned, world.stop[spell_customer], np.nan), next_start)
    reasons = (*(c.end_reason for c in CAUSES.values()), "plan_change")
    reason = np.where(last, np.where(churned, world.cause[spell_customer], -1), len(reasons) - 1)
    prices = np.array(list(PLANS.values()))
    return pd.DataFrame(
        {
            "customer_id": spell_customer + 1,
            "started_at": spell_start,
            "ended_at": ended,
            "mrr": prices[spell_tier] * world.attributes["seats"][spell_customer],
            "plan": _labels(spell_tier, PLANS),
            "end_reason": _labels(reason, reasons),
        }
    )


def _apply_plan_changes(
    initial: np.ndarray, customer: np.ndarray, step: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tier after each change (sorted by customer, time) and whether the change did anything.

    Changes are applied rank by rank (first change of every customer, then the second...), so the
    loop runs over a handful of ranks, never over customers.
    """
    rank = _rank_within(customer)
    tier = initial.copy()
    after = np.empty_like(step)
    effective = np.zeros(step.size, dtype=bool)
    for r in range(int(rank.max(initial=-1)) + 1):
        rows = np.flatnonzero(rank == r)
        who = customer[rows]
        new = np.clip(tier[who] + step[rows], 0, len(PLANS) - 1)
        effective[rows] = new != tier[who]
        after[rows] = new
        tier[who] = new
    return after, effective


def _rank_within(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within runs of equal values of a sorted array."""
    if group.size == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.append(True, group[1:] != group[:-1]))
    lengths = np.diff(np.append(starts, group.size))
    return np.arange(group.size) - np.repeat(starts, lengths)


def _payments(world: _World, spells: pd.DataFrame) -> pd.DataFrame:
    """A charge every month of a subscription; failures are retried, involuntary churners' are not."""
    rng = world.rng
    involuntary = ~np.isnan(world.final_charge)
    last_regular = np.where(involuntary, world.final_charge, world.stop)
    subs = np.flatnonzero(world.subscriber)
    # charges strictly before last_regular (which is itself a charge date for involuntary churners)
    months = (last_regular[subs] - world.signup[subs]) / MONTH_DAYS
    counts = np.ceil(months - 1e-9).astype(np.int64)
    customer = np.repeat(subs, np.clip(counts, 0, None))
    due = world.signup[customer] + _rank_within(customer) * MONTH_DAYS
    cause, _ = world.episodes.at(customer, due, world.horizon)
    factor = _effects("payment_failures")[cause]
    # A failure needs room for its (successful) retry before the customer stops.
    failed = (rng.random(due.size) < BASE_FAILURE_PROBABILITY * factor) & (
        due + RETRY_DAYS < world.stop[customer]
    )
    retry_customer, retry_at = customer[failed], due[failed] + RETRY_DAYS
    dunned = np.flatnonzero(involuntary)
    dunning_customer = np.repeat(dunned, len(DUNNING_RETRY_DAYS))
    dunning_at = world.final_charge[dunning_customer] + np.tile(DUNNING_RETRY_DAYS, dunned.size)
    frame = pd.DataFrame(
        {
            "customer_id": np.concatenate([customer, retry_customer, dunning_customer]) + 1,
            "attempted_at": np.concatenate([due, retry_at, dunning_at]),
            "failed": np.concatenate([failed, np.zeros(retry_at.size, bool), np.ones(dunning_at.size, bool)]),
        }
    )
    frame = frame[frame["attempted_at"] < world.horizon]
    failed = frame.pop("failed").to_numpy()
    reasons = np.where(failed, _draw(rng, FAILURE_REASONS, len(frame)), -1)
    return frame.assign(
        status=_labels(failed.astype(np.int64), ("succeeded", "failed")),
        amount=_mrr_at(spells, frame["customer_id"].to_numpy(), frame["attempted_at"].to_numpy(), world),
        failure_reason=_labels(reasons, FAILURE_REASONS),
    )


def _mrr_at(spells: pd.DataFrame, customer_id: np.ndarray, t: np.ndarray, world: _World) -> np.ndarray:
    """The MRR of the spell each (customer, time) falls in (spells are sorted by customer, start)."""
    scale = world.horizon + 1.0
    key = spells["customer_id"].to_numpy() * scale + spells["started_at"].to_numpy()
    pos = np.searchsorted(key, customer_id * scale + t, side="right") - 1
    return spells["mrr"].to_numpy()[np.clip(pos, 0, None)]


def _activity(world: _World) -> pd.DataFrame:
    rng = world.rng
    customer, t = _signal(world, "activity", world.attributes["activity_rate"], world.subscriber)
    event = _choice(rng, ACTIVITY_EVENTS, t.size)
    minutes = np.round(rng.lognormal(2.3, 0.8, t.size), 1)
    return pd.DataFrame({"customer_id": customer + 1, "occurred_at": t, "event": event, "value": minutes})


def _orders(world: _World) -> pd.DataFrame:
    """A first order at sign-up, then repeat orders at the buyer's own rate until they churn."""
    rng = world.rng
    buyers = np.flatnonzero(~world.subscriber)
    repeat_customer, repeat_t = _signal(world, "orders", world.attributes["order_rate"], ~world.subscriber)
    customer = np.concatenate([buyers, repeat_customer])
    t = np.concatenate([world.signup[buyers], repeat_t])
    favourite = world.attributes["category"].codes[customer]
    other = _draw(rng, tuple(CATEGORY_NON_REPEAT), t.size)
    favourite_again = rng.random(t.size) < FAVOURITE_CATEGORY_SHARE
    category = _labels(np.where(favourite_again, favourite, other), CATEGORY_NON_REPEAT)
    quantity = rng.geometric(0.65, t.size)
    unit_price = np.round(rng.lognormal(3.2, 0.7, t.size), 2)
    return pd.DataFrame(
        {
            "customer_id": customer + 1,
            "ordered_at": t,
            "amount": np.round(unit_price * quantity, 2),
            "category": category,
            "quantity": quantity.astype(np.int64),
        }
    )


def _returns(world: _World, orders: pd.DataFrame) -> pd.DataFrame:
    """Some orders come back; during complaint episodes more often, and more often for a refund."""
    rng = world.rng
    customer = orders["customer_id"].to_numpy() - 1
    ordered_at = orders["ordered_at"].to_numpy()
    cause, _ = world.episodes.at(customer, ordered_at, world.horizon)
    factor = _effects("returns")[cause]
    returned = rng.random(customer.size) < BASE_RETURN_PROBABILITY * factor
    returned_at = ordered_at + rng.uniform(2.0, 30.0, customer.size)
    returned &= returned_at < world.stop[customer]
    complaint = cause == CAUSE_NAMES.index("complaints")
    refund_share = np.where(complaint, REFUND_SHARE["complaints"], REFUND_SHARE["normal"])
    kind = _labels(np.where(rng.random(customer.size) < refund_share, 0, 1), ("refund", "exchange"))
    return pd.DataFrame(
        {
            "customer_id": customer[returned] + 1,
            "returned_at": returned_at[returned],
            "amount": orders["amount"].to_numpy()[returned],
            "kind": kind[returned],
        }
    )


def _tickets(world: _World) -> pd.DataFrame:
    rng = world.rng
    parts = []
    for complaint in (False, True):
        signal = "complaints" if complaint else "tickets"
        rates = np.where(world.subscriber, *BASE_RATES[signal])
        customer, t = _signal(world, signal, rates, np.ones(world.n, dtype=bool))
        category = np.empty(t.size, dtype=np.int64)
        for subscriber in (True, False):
            rows = world.subscriber[customer] == subscriber
            names = TICKET_CATEGORIES[(subscriber, complaint)]
            codes = _draw(rng, names, int(rows.sum()))
            category[rows] = np.array([_TICKET_CATEGORY_NAMES.index(name) for name in names])[codes]
        hours = rng.lognormal(np.log(72.0 if complaint else 20.0), 1.0, t.size)
        resolved = t + hours / 24.0
        open_for_good = rng.random(t.size) < (0.15 if complaint else 0.03)
        resolved = np.where(open_for_good | (resolved >= world.horizon), np.nan, resolved)
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": customer + 1,
                    "opened_at": t,
                    "category": _labels(category, _TICKET_CATEGORY_NAMES),
                    "is_complaint": complaint,
                    "resolved_at": resolved,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _surveys(world: _World) -> pd.DataFrame:
    """CSAT and NPS answers: the customer's lasting contentment, minus the episode's falling shift."""
    rng = world.rng
    rates = np.where(world.subscriber, *BASE_RATES["surveys"])
    customer, t = _signal(world, "surveys", rates, np.ones(world.n, dtype=bool))
    cause, frac = world.episodes.at(customer, t, world.horizon)
    shift = _by_cause(SCORE_SHIFTS, 0.0)[cause] * frac
    mood = world.attributes["satisfaction"][customer]
    csat = np.clip(np.round(4.1 + 0.6 * mood + 0.6 * rng.normal(size=t.size) + shift), 1, 5)
    nps = np.clip(np.round(7.8 + 1.3 * mood + 1.0 * rng.normal(size=t.size) + 2.0 * shift), 0, 10)
    is_csat = rng.random(t.size) < 0.6
    return pd.DataFrame(
        {
            "customer_id": customer + 1,
            "answered_at": t,
            "kind": _labels(np.where(is_csat, 0, 1), ("csat", "nps")),
            "score": np.where(is_csat, csat, nps),
        }
    )


# ====================================================================== finishing
#: Columns holding times (days since start) and the ids to number, per table.
_TIME_COLUMNS = {
    "customers": ("signup_at",),
    "orders": ("ordered_at",),
    "returns": ("returned_at",),
    "subscriptions": ("started_at", "ended_at"),
    "tickets": ("opened_at", "resolved_at"),
    "surveys": ("answered_at",),
    "payments": ("attempted_at",),
    "activity": ("occurred_at",),
    "ground_truth": ("churned_at",),
}
_IDS = {
    "orders": ("order_id", "O"),
    "subscriptions": ("subscription_id", "S"),
    "tickets": ("ticket_id", "T"),
    "payments": ("payment_id", "P"),
}


def _finish(name: str, frame: pd.DataFrame, world: _World) -> pd.DataFrame:
    """Sort by customer and time, turn day offsets into timestamps, number the ids, type the text."""
    time = _TIME_COLUMNS[name][0]
    if name not in ("customers", "ground_truth"):
        order = np.lexsort((frame[time].to_numpy(), frame["customer_id"].to_numpy()))
        frame = frame.iloc[order].reset_index(drop=True)
    frame = frame.assign(**{c: _timestamps(frame[c].to_numpy(), world.start) for c in _TIME_COLUMNS[name]})
    text = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    frame = frame.assign(**{c: _text(frame[c]) for c in text})
    if name in _IDS:
        column, prefix = _IDS[name]
        frame.insert(1, column, _numbered(prefix, len(frame)))
    return frame


def _text(values: pd.Series) -> Any:
    """A categorical as the default pandas string dtype, through Arrow (fast for millions of rows)."""
    return pd.array(pa.array(values).cast(pa.large_string()), dtype="str")


def _numbered(prefix: str, n: int) -> Any:
    """Ids ``<prefix>00000001`` ... as strings, written digit by digit into one Arrow buffer."""
    width = max(8, len(str(n)))
    chars = np.empty((n, len(prefix) + width), dtype=np.uint8)
    chars[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    numbers = np.arange(1, n + 1)
    for digit in range(width):
        chars[:, -1 - digit] = numbers // 10**digit % 10 + ord("0")
    offsets = np.arange(0, chars.size + 1, chars.shape[1], dtype=np.int64)
    ids = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))
    return pd.array(ids, dtype="str")


def _timestamps(days: np.ndarray, start: pd.Timestamp) -> np.ndarray:
    """Day offsets (float, NaN = missing) to naive timestamps floored to the second."""
    seconds = np.floor(np.nan_to_num(days, nan=0.0) * 86400.0).astype(np.int64)
    stamps = start.to_datetime64().astype("datetime64[us]") + seconds.astype("timedelta64[s]")
    return np.where(np.isnan(days), np.datetime64("NaT"), stamps).astype("datetime64[us]")
