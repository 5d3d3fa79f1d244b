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

The code, by job: the parameters above (``_params``), the customers' attributes and fate with the event
streams their risk episodes modulate (``_world``), one generator per table (``_tables``), and making,
writing and storing the tables (``_generate``).
"""

from churnrisk.demo._generate import DemoFiles, churners_by_cause, demo_store, make_demo_data, write_demo_data
from churnrisk.demo._params import (
    ATTRIBUTE_RISK,
    CATEGORY_NON_REPEAT,
    CAUSES,
    SCORE_SHIFTS,
    SIGNAL_EFFECTS,
)
from churnrisk.demo._params import DUNNING_RETRY_DAYS as DUNNING_RETRY_DAYS
from churnrisk.demo._params import EPISODE_DAYS as EPISODE_DAYS
from churnrisk.demo._params import EPISODE_GAP_DAYS as EPISODE_GAP_DAYS
from churnrisk.demo._params import EPISODE_HAZARD as EPISODE_HAZARD

__all__ = [
    "ATTRIBUTE_RISK",
    "CATEGORY_NON_REPEAT",
    "CAUSES",
    "SCORE_SHIFTS",
    "SIGNAL_EFFECTS",
    "DemoFiles",
    "churners_by_cause",
    "demo_store",
    "make_demo_data",
    "write_demo_data",
]
