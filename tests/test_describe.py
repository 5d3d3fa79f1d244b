"""Plain-words feature descriptions never fail, whatever a customer's values are."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnrisk.features import explain, feature_columns
from churnrisk.features._describe import worse_side

COLUMNS = [c for c in feature_columns() if not c.startswith("customer_")]
VALUES = st.one_of(
    st.just(0.0),
    st.just(math.nan),
    st.just(math.inf),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(
    row=st.fixed_dictionaries({c: VALUES for c in COLUMNS}),
    column=st.sampled_from(COLUMNS),
    typical=st.one_of(st.none(), VALUES),
)
def test_explain_gives_text_for_any_values(row, column, typical):
    text = explain(column, row, typical=typical)
    assert isinstance(text, str) and text
    assert "nan" not in text.lower().replace("(", " ").replace(")", " ").split()


@pytest.mark.parametrize(
    ("column", "value", "typical", "text"),
    [
        ("activity_events_180d", 60.0, 150.0, "60 product events in the last 180 days (typical: 150)"),
        ("activity_events_30d", 0.0, 4.0, "no product events in the last 30 days (typical: 4)"),
        ("activity_recency", 35.3, 4.08, "35 days since the last product event (typical: 4)"),
        ("subscription_mrr", 29.0, 116.0, "MRR at the cutoff: 29 (typical: 116)"),
        ("subscription_tenure", 20.4, 145.7, "new customer: first subscription 20 days ago (typical: 146)"),
        ("surveys_csat_mean_90d", 2.5, 4.0, "CSAT averaged 2.5 in the last 90 days (typical: 4)"),
        ("returns_refund_share", 0.5, 0.25, "50% of returns that were refunds (typical: 25%)"),
        ("surveys_nps_group", "detractor", "passive", "NPS group: detractor (typical: passive)"),
        ("payments_failed_30d", 3.0, None, "3 failed payments in the last 30 days"),
        ("payments_failed_30d", 3.0, math.nan, "3 failed payments in the last 30 days"),
    ],
)
def test_explain_compares_with_the_typical_customer(column, value, typical, text):
    assert explain(column, {column: value}, typical=typical) == text


@pytest.mark.parametrize(
    "row",
    [
        {"activity_events_trend_90d": -80.0, "activity_events_90d": 60.0},  # fell from 140 to 60 (... vs ...)
        {"surveys_csat_trend": -3.0, "surveys_csat_last": 2.0},  # CSAT fell from 5 to 2
        {"purchases_gap_ratio": 140 / 30, "purchases_recency": 140.0},  # no order for 140 days, usual gap 30
    ],
)
def test_a_sentence_that_compares_with_the_past_needs_no_typical(row):
    column = next(iter(row))
    assert explain(column, row, typical=1.0) == explain(column, row)


def test_every_declared_feature_says_which_way_is_worse():
    from churnrisk.features._describe import _WORSE, _resolve

    for column in feature_columns():
        r = _resolve(column)
        assert r.feature.name in _WORSE[r.family.name], column


@pytest.mark.parametrize(
    ("column", "side"),
    [
        ("payments_failed_30d", 1),
        ("support_complaint_recency", -1),
        ("activity_events_trend_90d", -1),
        ("subscription_tenure", -1),
        ("surveys_ces_last", 0),
        ("purchases_bgnbd_quiet", 1),
        ("customer_segment", 0),
        ("tenure", 0),
    ],
)
def test_worse_side(column, side):
    assert worse_side(column) == side


def test_explain_a_ratio_of_zero():
    # A basket-size ratio of 0 cannot be worked back to the earlier value; it must still read.
    assert explain("purchases_aov_30d", {"purchases_aov_30d": 0.0, "purchases_monetary_30d": 0.0})
