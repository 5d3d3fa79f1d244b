"""Every customer's attributes and fate (risk episodes, churn), and the event streams they modulate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnrisk.demo._params import (
    ATTRIBUTE_RISK,
    BASE_RATES,
    BUYER_SEGMENTS,
    CATEGORY_NON_REPEAT,
    CATEGORY_SHARES,
    CAUSE_NAMES,
    CAUSES,
    CHANNELS,
    CHURN_NON_REPEAT,
    COUNTRIES,
    DUNNING_RETRY_DAYS,
    EPISODE_DAYS,
    EPISODE_GAP_DAYS,
    EPISODE_HAZARD,
    MAX_EPISODES,
    MONTH_DAYS,
    ORDER_RATE_SHAPE,
    SEGMENT_PLANS,
    SIGNAL_EFFECTS,
    SUBSCRIBER_SHARE,
)
from churnrisk.errors import ChurnriskError


@dataclass
class _Episodes:
    """Risk episodes, one row each, sorted by customer then onset (episodes of one customer never overlap)."""

    customer: np.ndarray
    onset: np.ndarray
    end: np.ndarray  # recovery, churn or the end of the data, whichever comes first
    cause: np.ndarray  # index into CAUSE_NAMES

    def at(self, customer: np.ndarray, t: np.ndarray, horizon: float) -> tuple[np.ndarray, np.ndarray]:
        """The cause of the episode each (customer, time) falls in (-1 for none) and how developed (0-1)."""
        if self.customer.size == 0:
            return np.full(t.size, -1), np.zeros(t.size)
        key = self.customer * (horizon + 1.0) + self.onset
        pos = np.searchsorted(key, customer * (horizon + 1.0) + t, side="right") - 1
        safe = np.clip(pos, 0, None)
        inside = (pos >= 0) & (self.customer[safe] == customer) & (t < self.end[safe])
        # signals develop over the cause's lead: fully there when the churn hazard switches on
        ramp = np.array([c.lead_days for c in CAUSES.values()])[self.cause[safe]]
        frac = np.where(inside, np.clip((t - self.onset[safe]) / ramp, 0.0, 1.0), 0.0)
        return np.where(inside, self.cause[safe], -1), frac


@dataclass
class _World:
    """Every customer's attributes and fate, as NumPy arrays; times are days since ``start``."""

    rng: np.random.Generator
    start: pd.Timestamp
    horizon: float  # days from start to end
    subscriber: np.ndarray  # bool
    signup: np.ndarray
    stop: np.ndarray  # churn time, or the end of the data
    churned: np.ndarray
    cause: np.ndarray  # index into CAUSE_NAMES, -1 for non-churners
    final_charge: np.ndarray  # involuntary churners: their last (failing) charge; else NaN
    attributes: dict[str, Any]
    episodes: _Episodes

    @classmethod
    def create(cls, n_customers: int, *, seed: int, start: Any, end: Any) -> _World:
        start_ts, end_ts = _window(start, end)
        if isinstance(n_customers, bool) or not isinstance(n_customers, int | np.integer) or n_customers < 1:
            raise ChurnriskError(
                f"The 'n_customers' parameter must be a positive integer. Got {n_customers!r} instead."
            )
        rng = np.random.default_rng(seed)
        horizon = (end_ts - start_ts) / pd.Timedelta(days=1)
        subscriber = rng.random(n_customers) < SUBSCRIBER_SHARE
        signup = rng.uniform(0.0, horizon - 1.0, n_customers)
        attributes = _attributes(rng, subscriber)
        risk = _attribute_risk(attributes)
        fate = _fate(rng, subscriber, signup, risk, horizon)
        return cls(rng, start_ts, horizon, subscriber, signup, attributes=attributes, **fate)

    @property
    def n(self) -> int:
        return self.subscriber.size


def _window(start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    try:
        start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    except (TypeError, ValueError) as exc:
        raise ChurnriskError(f"cannot read the dates start={start!r}, end={end!r}: {exc}") from None
    if start_ts.tzinfo is not None or end_ts.tzinfo is not None:
        raise ChurnriskError("start and end must be naive dates (no time zone).")
    if end_ts - start_ts < pd.Timedelta(days=90):
        raise ChurnriskError(
            f"The demo window must span at least 90 days. Got start={start_ts:%Y-%m-%d}, "
            f"end={end_ts:%Y-%m-%d}. Suggestion: choose an end at least 90 days after the start."
        )
    return start_ts, end_ts


def _draw(rng: np.random.Generator, options: Mapping[str, float] | tuple[str, ...], size: int) -> np.ndarray:
    """Draw ``size`` codes (positions in ``options``) from {value: weight} (or uniformly from a tuple)."""
    weights = np.array(list(options.values()) if isinstance(options, Mapping) else [1.0] * len(options))
    return rng.choice(len(weights), size=size, p=weights / weights.sum())


def _choice(
    rng: np.random.Generator, options: Mapping[str, float] | tuple[str, ...], size: int
) -> pd.Categorical:
    """Draw ``size`` values from {value: weight} (or uniformly from a tuple), as a categorical."""
    return _labels(_draw(rng, options, size), options)


def _labels(codes: np.ndarray, names: Any) -> Any:
    """Text from codes into ``names`` (-1 = missing): categoricals keep millions of labels cheap."""
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(list(names)))


def _attributes(rng: np.random.Generator, subscriber: np.ndarray) -> dict[str, Any]:
    n = subscriber.size
    sub_segment = _draw(rng, {k: v[2] for k, v in SEGMENT_PLANS.items()}, n)
    buyer_segment = len(SEGMENT_PLANS) + _draw(rng, BUYER_SEGMENTS, n)
    segment = _labels(np.where(subscriber, sub_segment, buyer_segment), (*SEGMENT_PLANS, *BUYER_SEGMENTS))
    tier = np.ones(n, dtype=np.int64)  # index into PLANS; buyers keep a dummy
    extra_seats = np.zeros(n)
    for code, (shares, seats, _) in enumerate(SEGMENT_PLANS.values()):
        rows = subscriber & (sub_segment == code)
        tier[rows] = 1 + rng.choice(3, size=int(rows.sum()), p=shares)
        extra_seats[rows] = seats
    category = _choice(rng, dict(zip(CATEGORY_NON_REPEAT, CATEGORY_SHARES, strict=True)), n)
    return {
        "segment": segment,
        "country": _choice(rng, COUNTRIES, n),
        "channel": _choice(rng, CHANNELS, n),
        "tier": tier,
        "seats": 1 + rng.poisson(extra_seats),
        "category": category,
        # a customer's lasting contentment (drives survey scores), and their own activity level
        "satisfaction": rng.normal(0.0, 1.0, n),
        "activity_rate": rng.gamma(2.0, BASE_RATES["activity"][0] / 2.0, n),
        "order_rate": _order_rates(rng, category),
    }


def _order_rates(rng: np.random.Generator, category: pd.Categorical) -> np.ndarray:
    """Orders per day: gamma-distributed around a category mean that targets the seed's benchmark.

    Without churn, P(no repeat within a year) = (1 + scale)^-shape for a gamma(shape, scale) yearly rate.
    """
    target = np.array(list(CATEGORY_NON_REPEAT.values()))[category.codes] - CHURN_NON_REPEAT
    scale = target ** (-1.0 / ORDER_RATE_SHAPE) - 1.0
    return rng.gamma(ORDER_RATE_SHAPE, scale) / 365.25


def _attribute_risk(attributes: Mapping[str, Any]) -> np.ndarray:
    risk = np.ones(attributes["segment"].size)
    for column, factors in ATTRIBUTE_RISK.items():
        values = attributes[column]
        for value, factor in factors.items():
            risk[values == value] *= factor
    return risk


def _fate(
    rng: np.random.Generator, subscriber: np.ndarray, signup: np.ndarray, risk: np.ndarray, horizon: float
) -> dict[str, Any]:
    """Draw every customer's risk episodes, and whether and when one of them ends in churn."""
    n, k = subscriber.size, MAX_EPISODES
    gap = np.where(subscriber, EPISODE_GAP_DAYS["subscriber"], EPISODE_GAP_DAYS["buyer"]) / risk
    gaps = rng.exponential(1.0, (n, k)) * gap[:, None]
    lengths = rng.uniform(*EPISODE_DAYS, (n, k))
    onset = signup[:, None] + np.cumsum(gaps, axis=1)
    onset[:, 1:] += np.cumsum(lengths, axis=1)[:, :-1]
    cause = _draw_causes(rng, subscriber, (n, k))
    base_hazard = np.where(subscriber, EPISODE_HAZARD["subscriber"], EPISODE_HAZARD["buyer"])
    hazard = base_hazard[:, None] * np.array([c.hazard for c in CAUSES.values()])[cause]
    lead = np.array([c.lead_days for c in CAUSES.values()])[cause]
    churn_at = onset + lead + rng.exponential(1.0, (n, k)) / hazard
    churns = (churn_at < onset + lengths) & (onset < horizon)
    has_churn = churns.any(axis=1)
    first = np.where(has_churn, churns.argmax(axis=1), k)
    rows = np.arange(n)
    safe = np.minimum(first, k - 1)
    churn_time = np.where(has_churn, churn_at[rows, safe], np.inf)
    churn_cause = np.where(has_churn, cause[rows, safe], -1)
    involuntary = churn_cause == CAUSE_NAMES.index("failed_payments")
    # Involuntary churn happens at the end of dunning: the charge due after the hazard struck fails,
    # and so do its retries; the spell ends on the last retry.
    dunning = DUNNING_RETRY_DAYS[-1]
    charge = signup + np.ceil((churn_time - dunning - signup) / MONTH_DAYS) * MONTH_DAYS
    final_charge = np.where(involuntary, charge, np.nan)
    churn_time = np.where(involuntary, charge + dunning, churn_time)
    churned = churn_time < horizon
    stop = np.minimum(churn_time, horizon)
    episode_end = np.minimum(onset + lengths, horizon)
    episode_end[rows, safe] = np.where(has_churn, stop, episode_end[rows, safe])
    keep = (np.arange(k)[None, :] <= first[:, None]) & (onset < stop[:, None])
    episodes = _Episodes(
        customer=np.repeat(rows, keep.sum(axis=1)),
        onset=onset[keep],
        end=episode_end[keep],
        cause=cause[keep],
    )
    return {
        "stop": stop,
        "churned": churned,
        "cause": np.where(churned, churn_cause, -1),
        "final_charge": final_charge,
        "episodes": episodes,
    }


def _draw_causes(rng: np.random.Generator, subscriber: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    shares = {
        True: np.array([c.share_subscriber for c in CAUSES.values()]),
        False: np.array([c.share_buyer for c in CAUSES.values()]),
    }
    u = rng.random(shape)
    cause = np.empty(shape, dtype=np.int64)
    for kind, weights in shares.items():
        edges = np.cumsum(weights / weights.sum())
        rows = subscriber == kind
        cause[rows] = np.minimum(np.searchsorted(edges, u[rows], side="right"), len(edges) - 1)
    return cause


# ====================================================================== event streams
def _poisson(
    rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Events of one Poisson process per row on ``[lo, hi)``: (row index, time) of each event."""
    span = np.clip(hi - lo, 0.0, None)
    counts = rng.poisson(rate * span)
    rows = np.repeat(np.arange(lo.size), counts)
    return rows, lo[rows] + rng.random(rows.size) * span[rows]


def _by_cause(table: Mapping[str, float], neutral: float) -> np.ndarray:
    """A per-cause lookup array; its last entry (index -1, no episode) is ``neutral``."""
    return np.array([table.get(name, neutral) for name in CAUSE_NAMES] + [neutral])


def _effects(signal: str) -> np.ndarray:
    """The signal's rate multiplier for each cause (1 where the cause does not touch it, or no episode)."""
    return _by_cause(SIGNAL_EFFECTS.get(signal, {}), 1.0)


def _signal(world: _World, signal: str, rate: np.ndarray, who: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Events of a signal: a base Poisson stream per customer, modulated by their risk episodes.

    ``rate`` is each customer's base rate per day and ``who`` selects the customers that have the
    signal at all. Returns (customer index, time), sorted by neither.
    """
    rng, effects = world.rng, _effects(signal)
    lo = np.where(who, world.signup, world.stop)
    rows, t = _poisson(rng, lo, world.stop, rate)
    # Falling signals: thin the base stream, down to the multiplier once the lead has passed.
    cause, frac = world.episodes.at(rows, t, world.horizon)
    factor = effects[cause]
    keep_probability = np.where(factor < 1.0, factor**frac, 1.0)
    keep = rng.random(t.size) < keep_probability
    rows, t = rows[keep], t[keep]
    # Rising signals: an extra stream for the length of the episode.
    ep = world.episodes
    extra_rate = np.where(who[ep.customer], rate[ep.customer], 0.0) * np.clip(
        effects[ep.cause] - 1.0, 0, None
    )
    extra_rows, extra_t = _poisson(rng, ep.onset, ep.end, extra_rate)
    return np.concatenate([rows, ep.customer[extra_rows]]), np.concatenate([t, extra_t])
