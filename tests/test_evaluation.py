"""Metrics, lift and capture with ties, calibration table, baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnrisk.errors import ChurnriskError
from churnrisk.evaluation import (
    METRIC_KEYS,
    calibration_table,
    capture_at,
    compare_scores,
    lift_at,
    score_metrics,
)


def test_capture_and_lift_by_hand():
    y = [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    assert capture_at(y, s, 0.2) == pytest.approx(2 / 3)  # top 2 rows hold 2 of 3 churners
    assert lift_at(y, s, 0.2) == pytest.approx((2 / 2) / 0.3)  # churn rate 100 % vs 30 %
    assert capture_at(y, s, 0.5) == pytest.approx(1.0)


def test_ties_straddling_the_cut_count_pro_rata():
    # top 10 % of 10 rows = 1 row, but four rows tie at the top holding two churners: 1/4 of them is taken
    y = [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
    s = [0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert capture_at(y, s, 0.1) == pytest.approx((2 * 0.25) / 3)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=4, max_size=40), st.randoms())
def test_lift_does_not_depend_on_row_order(pairs, rnd):
    y = np.array([int(a) for a, _ in pairs])
    s = np.array([b / 3 for _, b in pairs])
    if y.sum() == 0:
        return
    order = list(range(len(y)))
    rnd.shuffle(order)
    for fraction in (0.1, 0.2, 0.5):
        assert capture_at(y[order], s[order], fraction) == pytest.approx(capture_at(y, s, fraction))


def test_score_metrics_keys_and_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = score_metrics(y, p)
    assert tuple(m) == METRIC_KEYS
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["base_rate"] == 0.5 and m["n"] == 4


def test_non_probability_scores_have_no_brier():
    m = score_metrics([0, 1, 1], [3.0, 10.0, 40.0])
    assert np.isnan(m["brier"]) and np.isnan(m["log_loss"]) and m["roc_auc"] == 1.0


def test_bad_labels_are_refused():
    with pytest.raises(ChurnriskError, match="0/1"):
        score_metrics([0, 2], [0.1, 0.2])


def test_calibration_table_by_hand():
    y = [0, 0, 1, 0, 1, 1]
    p = [0.1, 0.1, 0.2, 0.6, 0.7, 0.9]
    got = calibration_table(y, p, n_bins=2)
    expected = pd.DataFrame(
        {"bin": [0, 1], "n": [3, 3], "mean_predicted": [0.4 / 3, 2.2 / 3], "observed_rate": [1 / 3, 2 / 3]}
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_compare_scores_same_rows():
    y = [0, 1, 0, 1]
    table = compare_scores(y, {"model": [0.1, 0.9, 0.2, 0.8], "flat": [0.5, 0.5, 0.5, 0.5]})
    assert table.loc["model", "roc_auc"] == 1.0 and table.loc["flat", "roc_auc"] == 0.5
    assert (table["n"] == 4).all()
