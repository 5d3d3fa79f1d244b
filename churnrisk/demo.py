"""A synthetic demo business whose churn is *caused* by the signals the toolkit reads.

The business mixes two kinds of customers:

* **subscribers** (SaaS-like): one subscription spell per plan (a plan change is a new touching row),
  a monthly payment per spell month (some fail and are retried), product activity, support tickets
  and surveys;
* **buyers** (e-commerce): a first order at sign-up, repeat orders at a personal rate (heterogeneous,
  gamma-distributed, so most buyers never come back, as in the seed's non-repeat benchmarks), returns
  (refund or exchange), tickets and surveys.

How churn happens (the ground truth)
------------------------------------
Every customer lives through *risk episodes*: the first starts an exponential waiting time after
sign-up (mean :data:`EPISODE_GAP_DAYS`, shortened or lengthened by :data:`ATTRIBUTE_RISK`), lasts
:data:`EPISODE_DAYS` and is followed by the next one. Each episode has one cause (drawn with the
shares in :data:`CAUSES`). While an episode lasts:

* the cause shows up in the data (:data:`SIGNAL_EFFECTS`, :data:`SCORE_SHIFTS`), fully developed
  by the end of the lead below: purchase frequency falls, complaints pile up, CSAT and NPS fall,
  payments fail, the plan is downgraded, activity fades;
* after a lead of at least ``lead_days`` (so the signal always comes first) the customer churns
  with hazard ``EPISODE_HAZARD[customer type] * CAUSES[cause].hazard`` per day.

An episode of length L ends in churn with probability ``1 - exp(-hazard * (L - lead_days))``: for
subscribers between about 0.74 (downgrade) and 0.91 (complaints) on average, churn coming 45-85 days
after the lead on average, so that a subscriber showing a developed signal mostly churns within a
60-day horizon (the demo model's); for buyers, whose churn is slower to show, between about 0.33
(purchase decline) and 0.64 (complaints). Subscribers' episodes are rarer to keep their monthly churn
at a few percent. A customer who gets through an episode
without churning recovers: the signal was there and nothing followed, which is what makes the signals
informative but not perfect. Background noise (occasional complaints, failed payments, low scores)
comes on top. Outside episodes the churn hazard is zero, so every churner has exactly one cause.

Failed-payment churn is involuntary: the last monthly charge fails and both retries fail
(:data:`DUNNING_RETRY_DAYS`), the spell ends on the last failed retry with ``end_reason =
"payment_failed"``, and no payment succeeds afterwards. Every other churn is voluntary.

Levels (checked in the tests with plain pandas): monthly subscription churn of a few percent and a
one-year non-repeat rate of 60-80 % for buyers, by category close to :data:`CATEGORY_NON_REPEAT`.

Everything is vectorised with NumPy (no loop over customers) and deterministic for a ``seed``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from churnrisk._io import write_table
from churnrisk.contract import TABLES
from churnrisk.errors import ChurnriskError
from churnrisk.store import EventStore

__all__ = [
    "ATTRIBUTE_RISK",
    "CATEGORY_NON_REPEAT",
    "CAUSES",
    "DemoFiles",
    "SCORE_SHIFTS",
    "SIGNAL_EFFECTS",
    "churners_by_cause",
    "demo_store",
    "make_demo_data",
    "write_demo_data",
]


class Cause(NamedTuple):
    """One cause of churn: how often risk episodes have it and how dangerous it is."""

    share_subscriber: float  # share of subscribers' risk episodes with this cause
    share_buyer: float  # share of buyers' risk episodes with this cause
    hazard: float  # churn hazard multiplier while the episode lasts (x EPISODE_HAZARD per day)
    lead_days: float  # shortest time from the episode's onset to churn: the signal comes first
    churn_type: str
    end_reason: str  # of the last subscription spell when a subscriber churns from it


#: The causes of churn and their effect sizes (hazard multipliers).
CAUSES: dict[str, Cause] = {
    # a falling purchase frequency takes longer to show than a complaint
    "purchase_decline": Cause(0.00, 0.50, 1.2, 90.0, "voluntary", "stopped_buying"),
    "complaints": Cause(0.20, 0.25, 1.5, 30.0, "voluntary", "poor_service"),
    "low_satisfaction": Cause(0.20, 0.25, 1.0, 30.0, "voluntary", "not_satisfied"),
    "failed_payments": Cause(0.20, 0.00, 1.2, 30.0, "involuntary", "payment_failed"),
    "downgrade": Cause(0.15, 0.00, 0.8, 30.0, "voluntary", "too_expensive"),
    "fading_activity": Cause(0.25, 0.00, 1.3, 45.0, "voluntary", "not_using"),
}
CAUSE_NAMES: tuple[str, ...] = tuple(CAUSES)

#: Churn hazard per day while a risk episode lasts, before the cause's multiplier, by customer type.
EPISODE_HAZARD = {"subscriber": 0.015, "buyer": 0.006}
#: Mean waiting time (days) before the first risk episode and between episodes, by customer type.
EPISODE_GAP_DAYS = {"subscriber": 600.0, "buyer": 300.0}
#: Length of a risk episode (days, uniform); churn can only happen ``lead_days`` after its onset.
EPISODE_DAYS = (90.0, 210.0)
MAX_EPISODES = 4

#: How much more often customers with an attribute run into risk episodes (episode rate multiplier).
ATTRIBUTE_RISK: dict[str, dict[str, float]] = {
    "channel": {"organic": 1.0, "paid_search": 1.3, "social": 1.2, "referral": 0.7, "email": 0.9},
    "segment": {"smb": 1.0, "mid_market": 0.85, "enterprise": 0.6, "consumer": 1.0, "business": 0.8},
}

#: Multiplier of each signal's rate while an episode of a cause lasts. Multipliers below 1 ramp
#: down gradually from 1 at the onset to the value reached after the cause's ``lead_days``, when the
#: churn hazard switches on (a *falling* signal, fully visible before churn can happen);
#: multipliers above 1 add an extra stream of events for the whole episode.
SIGNAL_EFFECTS: dict[str, dict[str, float]] = {
    "orders": {"purchase_decline": 0.03, "complaints": 0.7, "low_satisfaction": 0.8},
    "activity": {"fading_activity": 0.05, "low_satisfaction": 0.8, "downgrade": 0.7},
    "complaints": {"complaints": 40.0, "low_satisfaction": 2.0, "failed_payments": 2.0},
    "tickets": {"complaints": 2.0, "failed_payments": 3.0, "fading_activity": 0.5},
    "surveys": {"low_satisfaction": 6.0, "complaints": 1.5},
    # multiply a probability, not a rate
    "returns": {"complaints": 5.0},
    "payment_failures": {"failed_payments": 25.0},
}

#: Fall of the CSAT score (points on 1-5; NPS falls twice as much on 0-10) reached after the lead.
SCORE_SHIFTS: dict[str, float] = {
    "low_satisfaction": -2.5,
    "complaints": -1.2,
    "downgrade": -0.4,
    "fading_activity": -0.3,
    "failed_payments": -0.2,
}

#: Base event rates per day (subscriber, buyer), before episodes.
BASE_RATES: dict[str, tuple[float, float]] = {
    "activity": (0.2, 0.0),  # mean; each subscriber's own rate is gamma-distributed around it
    "tickets": (0.004, 0.0015),
    "complaints": (0.001, 0.0006),
    "surveys": (1 / 90, 1 / 240),
}
BASE_RETURN_PROBABILITY = 0.06
REFUND_SHARE = {"normal": 0.5, "complaints": 0.85}
BASE_FAILURE_PROBABILITY = 0.03
RETRY_DAYS = 4.0
DUNNING_RETRY_DAYS = (0.0, 4.0, 8.0)  # the final charge of an involuntary churner and its retries
MONTH_DAYS = 365.25 / 12
SUBSCRIBER_SHARE = 0.4
UPGRADE_GAP_DAYS = 540.0

#: Plans of the subscription product, cheapest first, and their price per seat per month.
PLANS: dict[str, float] = {"starter": 9.0, "basic": 29.0, "pro": 79.0, "business": 249.0}
#: Initial plan shares (basic, pro, business) and mean extra seats, by segment.
SEGMENT_PLANS: dict[str, tuple[tuple[float, float, float], float, float]] = {
    # segment: (plan shares, mean extra seats, share of subscribers)
    "smb": ((0.60, 0.35, 0.05), 0.5, 0.70),
    "mid_market": ((0.25, 0.50, 0.25), 4.0, 0.22),
    "enterprise": ((0.05, 0.35, 0.60), 15.0, 0.08),
}

#: One-year non-repeat rates by category from the seed's benchmarks (Omniconvert); buyers' order
#: rates are set per category so that the demo data lands near them.
CATEGORY_NON_REPEAT: dict[str, float] = {
    "beauty & fitness": 0.62,
    "people & society": 0.63,
    "food & drink": 0.64,
    "health": 0.65,
    "books & literature": 0.69,
    "pets & animals": 0.70,
    "sports": 0.70,
    "apparel": 0.71,
    "home & garden": 0.75,
    "toys & hobbies": 0.77,
    "shoes": 0.78,
    "apparel accessories": 0.79,
    "consumer electronics": 0.82,
    "gifts & special events": 0.82,
}
CATEGORY_SHARES = np.array([10, 3, 9, 6, 7, 5, 6, 14, 9, 6, 7, 5, 8, 5], dtype=float)
#: Shape of the gamma distribution of buyers' order rates (smaller = more heterogeneous).
ORDER_RATE_SHAPE = 0.5
#: Non-repeat added by churn on top of the rate heterogeneity (calibration of the category rates).
CHURN_NON_REPEAT = 0.05
FAVOURITE_CATEGORY_SHARE = 0.7

COUNTRIES = {"US": 0.35, "GB": 0.15, "DE": 0.15, "FR": 0.1, "NL": 0.07, "CZ": 0.07, "FI": 0.06, "SI": 0.05}
CHANNELS = {"organic": 0.35, "paid_search": 0.25, "social": 0.15, "referral": 0.15, "email": 0.10}
BUYER_SEGMENTS = {"consumer": 0.93, "business": 0.07}
ACTIVITY_EVENTS = {"login": 0.6, "feature_use": 0.3, "report_export": 0.1}
TICKET_CATEGORIES = {
    (True, False): ("how_to", "technical", "account", "billing"),
    (True, True): ("service", "billing", "product", "outage"),
    (False, False): ("order_status", "delivery", "account"),
    (False, True): ("delivery", "product_quality", "service"),
}
_TICKET_CATEGORY_NAMES = tuple(sorted({name for names in TICKET_CATEGORIES.values() for name in names}))
FAILURE_REASONS = ("card_declined", "insufficient_funds", "expired_card")

Format = Literal["parquet", "csv"]


# ====================================================================== public API
def make_demo_data(
    n_customers: int = 2000,
    *,
    seed: int = 0,
    start: Any = "2023-01-01",
    end: Any = "2024-12-31",
) -> dict[str, pd.DataFrame]:
    """Generate the demo business: every contract table plus ``ground_truth``.

    Parameters
    ----------
    n_customers : int, default 2000
        Number of customers (subscribers and buyers together).
    seed : int, default 0
        Random seed; the same seed gives identical frames.
    start, end : date-like
        The observation window: customers sign up from ``start`` on, and every event happens
        strictly before ``end`` (so ``validate(store, as_of=end)`` passes).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``customers, orders, returns, subscriptions, tickets, surveys, payments, activity`` (columns as
        in :mod:`churnrisk.contract`) and ``ground_truth``: one row per customer with
        ``customer_id, customer_type, churned, churned_at, cause, churn_type``.

    Notes
    -----
    ``customers`` carries ``segment``, ``country``, ``channel``, ``plan`` (the plan at sign-up,
    subscribers only) and ``category`` (the favourite product category, buyers only). A subscriber's
    ``signup_at`` is the start of their first spell, a buyer's the time of their first order.
    ``churned_at`` is when a subscriber's last spell ended, or when a buyer stopped buying for good
    (the generator knows it; the data only shows that no order follows). ``churn_type`` is
    ``"involuntary"`` for churn from failed payments, ``"voluntary"`` otherwise, missing for
    customers who did not churn before ``end``. Every event happens strictly before ``end`` and,
    for a churner, no later than ``churned_at``.

    Examples
    --------
    >>> tables = make_demo_data(200, seed=1)
    >>> sorted(tables)[:3]
    ['activity', 'customers', 'ground_truth']
    >>> int(tables["ground_truth"]["churned"].sum()) > 0
    True
    """
    world = _World.create(n_customers, seed=seed, start=start, end=end)
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


def write_demo_data(
    out_dir: str | os.PathLike[str],
    *,
    n_customers: int = 2000,
    seed: int = 0,
    start: Any = "2023-01-01",
    end: Any = "2024-12-31",
    fmt: Format = "parquet",
    overwrite: bool = False,
) -> DemoFiles:
    """Write the demo business into ``out_dir``: one file per table plus ``ground_truth``.

    Parameters are those of :func:`make_demo_data`, plus ``fmt`` (``"parquet"`` or ``"csv"``) and
    ``overwrite``: a folder that already holds files is refused unless it is set, and even then
    only the demo's own table files are replaced. Each file is written atomically.

    Returns
    -------
    DemoFiles
        The files written, their row counts, and the churners by type and cause.
    """
    if fmt not in ("parquet", "csv"):
        raise ChurnriskError(f"The 'fmt' parameter must be 'parquet' or 'csv'. Got {fmt!r} instead.")
    folder = _check_folder(Path(out_dir), overwrite=overwrite)
    tables = make_demo_data(n_customers, seed=seed, start=start, end=end)
    folder.mkdir(parents=True, exist_ok=True)  # only now: a failed run leaves nothing behind
    written = {}
    for name, frame in tables.items():
        written[name] = write_table(frame, folder / f"{name}.{fmt}", overwrite=overwrite)
        # Leave no file of the other format behind (only reached with overwrite): the store
        # refuses a table that is there twice.
        other = folder / f"{name}.{'csv' if fmt == 'parquet' else 'parquet'}"
        other.unlink(missing_ok=True)
    rows = {name: len(frame) for name, frame in tables.items()}
    return DemoFiles(files=written, rows=rows, churners=churners_by_cause(tables["ground_truth"]))


@dataclass(frozen=True)
class DemoFiles:
    """What :func:`write_demo_data` wrote."""

    files: dict[str, Path]
    rows: dict[str, int]
    churners: pd.DataFrame


def churners_by_cause(ground_truth: pd.DataFrame) -> pd.DataFrame:
    """Churners by customer type and cause, and their share of the customers of that type."""
    churned = ground_truth[ground_truth["churned"]]
    table = churned.groupby(["customer_type", "cause"]).size().rename("churners").reset_index()
    customers = ground_truth["customer_type"].value_counts()
    return table.assign(share=table["churners"] / table["customer_type"].map(customers).to_numpy())


def demo_store(n_customers: int = 2000, seed: int = 0) -> EventStore:
    """The demo business as an :class:`~churnrisk.store.EventStore` (without the ground truth)."""
    tables = make_demo_data(n_customers, seed=seed)
    return EventStore.from_frames({name: frame for name, frame in tables.items() if name in TABLES})


def _check_folder(folder: Path, *, overwrite: bool) -> Path:
    if folder.exists() and not folder.is_dir():
        raise ChurnriskError(f"{folder} exists and is not a folder. Suggestion: choose another path.")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise ChurnriskError(
            f"the folder {folder} is not empty. Suggestion: choose an empty or new folder, "
            "or pass --overwrite to replace the demo tables in it."
        )
    return folder


# ====================================================================== the customers and their fate
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


# ====================================================================== tables
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
