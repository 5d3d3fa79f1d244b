"""Historical churn metrics (DESIGN §2): churn rates, revenue churn, repeat rates, CLV, cohorts.

The churn definitions come from :mod:`churnrisk.spells`, the same ones the point-in-time labels use.
Every function takes an :class:`~churnrisk.store.EventStore` and returns a pandas DataFrame with the
counts behind each rate.
"""

from churnrisk.rates._churn import churn_rates
from churnrisk.rates._clv import customer_lifetime_value
from churnrisk.rates._cohorts import cohort_retention
from churnrisk.rates._involuntary import churn_by_type, churn_events, winback_list
from churnrisk.rates._periods import PERIODS, annualise
from churnrisk.rates._repeat import benchmark_for, category_benchmarks, repeat_rates

__all__ = [
    "PERIODS",
    "annualise",
    "benchmark_for",
    "category_benchmarks",
    "churn_by_type",
    "churn_events",
    "churn_rates",
    "cohort_retention",
    "customer_lifetime_value",
    "repeat_rates",
    "winback_list",
]
