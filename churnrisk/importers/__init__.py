"""Importers for public churn datasets: raw files in, event-store tables (or a clean snapshot) out.

Three shapes of data are supported, each by one function that returns pandas frames:

* :func:`import_online_retail` -- the UCI "Online Retail" invoice lines (one row per product line)
  become ``customers``, ``orders`` (one row per invoice) and ``returns`` (cancelled invoices).
* :func:`import_saas` -- a multi-table SaaS export (accounts, subscriptions with MRR, support
  tickets with satisfaction, feature usage, churn events) becomes ``customers``, ``subscriptions``,
  ``tickets``, ``surveys`` and ``activity``, plus a side table ``churn_events``.
* :func:`import_snapshot` -- a one-row-per-customer table with a churn label (Telco, Orange,
  e-commerce) becomes a clean table: label as 0/1, numeric-looking text as numbers.

Nothing is dropped silently: every row an importer leaves out is counted by reason in the
:class:`ImportReport`, and what the importers produce passes :func:`churnrisk.validation.validate`.

Rules that are choices, not facts of the data:

* Online Retail: an invoice number starting with ``C`` is a cancellation (a ``refund`` return worth
  the positive refunded value); one made of digits is a sale; anything else (``A...`` bad-debt
  adjustments) is an adjustment and dropped. Sale lines with a quantity <= 0 or a negative price are
  dropped, so amounts are never negative; a sale invoice whose lines are all free is kept with amount 0
  (zero amounts are valid in the contract). An invoice whose lines carry several timestamps is dated
  by the first. A customer's ``signup_at`` is their first kept invoice (sale or cancellation) and
  ``country`` the country on most of their lines.
* SaaS: one account may hold several concurrent subscriptions, while the contract wants
  non-overlapping spells of constant MRR per customer. Subscriptions are therefore cut at every start
  and end date of the account; each piece gets the summed MRR of the subscriptions active in it and
  the plan of the largest of them, and adjacent pieces with the same MRR and plan are merged. A spell
  followed directly by another ends with ``upgrade``, ``downgrade`` or ``plan change``; a spell after
  which the account holds nothing takes the reason of the churn event nearest its end (within
  ``CHURN_MATCH_DAYS``), else ``ended``. A ticket is a complaint when it was escalated; its priority
  is its category; its satisfaction score becomes a ``csat`` survey answered when the ticket closed.

The code lives in one private module per source (``_online_retail``, ``_saas`` with ``_concurrent`` for
the spells, ``_snapshot``) and what they share in ``_common``.
"""

from churnrisk.importers._common import ImportReport, ImportResult
from churnrisk.importers._concurrent import CHURN_MATCH_DAYS, split_concurrent_subscriptions
from churnrisk.importers._online_retail import import_online_retail
from churnrisk.importers._saas import import_saas
from churnrisk.importers._snapshot import import_snapshot

__all__ = [
    "CHURN_MATCH_DAYS",
    "ImportReport",
    "ImportResult",
    "import_online_retail",
    "import_saas",
    "import_snapshot",
    "split_concurrent_subscriptions",
]
