"""The rates on the synthetic demo business, checked against its ground truth with plain pandas."""

from __future__ import annotations

import pandas as pd

from churnrisk.rates import churn_events, churn_rates, repeat_rates


def test_monthly_subscription_churn_matches_ground_truth(demo_store, demo_tables):
    table = churn_rates(demo_store, period="month")
    truth = demo_tables["ground_truth"]
    churners = truth[(truth["customer_type"] == "subscriber") & truth["churned"]]
    inside = churners["churned_at"].gt(table["period_start"].min()) & churners["churned_at"].le(
        table["period_end"].max()
    )
    # subscribers churn once and never come back: every churn is one lost customer
    assert table["churned_in_period"].sum() == inside.sum()
    assert table["customers_lost"].sum() == inside.sum()
    pooled = table["customers_lost"].sum() / table["customers_start"].sum()
    assert 0.01 < pooled < 0.08  # "monthly subscription churn of a few percent"


def test_churn_types_match_ground_truth(demo_store, demo_tables):
    events = churn_events(demo_store)
    truth = demo_tables["ground_truth"]
    merged = events.merge(truth, on="customer_id", suffixes=("", "_truth"), validate="one_to_one")
    assert len(merged) == len(events) > 0
    assert (merged["churn_type"] == merged["churn_type_truth"]).all()
    assert (merged["churned_at"] == pd.to_datetime(merged["churned_at_truth"])).all()
    assert set(merged["churn_type"]) == {"voluntary", "involuntary"}


def test_buyers_non_repeat_rate_in_the_seed_range(demo_store):
    row = repeat_rates(demo_store).iloc[0]
    assert 0.6 < row.non_repeat_rate < 0.8
