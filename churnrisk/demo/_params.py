"""The demo business's parameters: the causes of churn, their effect sizes, base rates, plans, categories."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


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
