"""Each plot drawn on a small input, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from numpy.testing import assert_allclose

from churnrisk import plots
from churnrisk.errors import ChurnriskError


@pytest.fixture
def ax():
    """Axes of a figure outside pyplot, so no global state builds up between tests."""
    return Figure().add_subplot()


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# --- rates -----------------------------------------------------------------------------------------


def rates_table(**changes):
    table = pd.DataFrame(
        {
            "period_start": pd.to_datetime(["2024-03-01", "2024-01-01", "2024-02-01"]),
            "customer_churn_rate": [-0.3, -1.1, -0.2],  # net change: negative while the base grows
            "lost_churn_rate": [0.03, 0.01, 0.02],
            "adjusted_churn_rate": [0.05, 0.04, 0.06],
            "gross_revenue_churn": [0.07, 0.02, 0.03],
            "net_revenue_churn": [np.nan, np.nan, np.nan],
        }
    )
    return table.assign(**changes)


def test_churn_rates_one_line_per_available_rate_in_time_order(ax):
    assert plots.plot_churn_rates(rates_table(), ax=ax) is ax
    lines = ax.get_lines()
    assert len(lines) == 3  # net revenue churn is all missing, net change not by default: not drawn
    assert legend_texts(ax) == [
        "customer churn (lost / start)",
        "adjusted churn (exposure)",
        "gross revenue churn",
    ]
    assert_allclose(lines[0].get_ydata(), [0.01, 0.02, 0.03])  # sorted by period
    assert_allclose(lines[2].get_ydata(), [0.02, 0.03, 0.07])
    assert ax.get_ylabel() == "churn rate"


def test_churn_rates_chosen_columns(ax):
    plots.plot_churn_rates(rates_table(), columns=["adjusted_churn_rate", "customer_churn_rate"], ax=ax)
    assert len(ax.get_lines()) == 2
    assert_allclose(ax.get_lines()[0].get_ydata(), [0.04, 0.06, 0.05])
    assert_allclose(ax.get_lines()[1].get_ydata(), [-1.1, -0.2, -0.3])
    assert legend_texts(ax) == ["adjusted churn (exposure)", "customer churn (net change)"]


def test_churn_rates_refuses_several_segments(ax):
    table = pd.concat([rates_table().assign(segment="a"), rates_table().assign(segment="b")])
    with pytest.raises(ChurnriskError, match="select one segment"):
        plots.plot_churn_rates(table, ax=ax)
    with pytest.raises(ChurnriskError, match="period_start"):
        plots.plot_churn_rates(pd.DataFrame({"x": [1]}), ax=ax)


def test_cohort_retention_heatmap_shows_the_table(ax):
    retention = pd.DataFrame(
        [[1.0, 0.5, 0.25], [1.0, 0.6, np.nan], [1.0, np.nan, np.nan]],
        index=pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        columns=[0, 1, 2],
    )
    plots.plot_cohort_retention(retention, ax=ax)
    shown = ax.images[0].get_array()
    assert_allclose(shown.filled(np.nan), retention.to_numpy(), equal_nan=True)
    assert shown.mask.sum() == 3
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert [t.get_text() for t in ax.texts] == ["100%", "50%", "25%", "100%", "60%", "100%"]
    assert ax.get_xlabel() == "periods since acquisition"


def test_cohort_retention_accepts_the_rates_table_shape(ax):
    table = pd.DataFrame(
        {
            "cohort_start": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "cohort_end": pd.to_datetime(["2024-02-01", "2024-03-01"]),
            "customers": [4, 5],
            "0": [1.0, 0.8],
            "1": [0.75, np.nan],
        }
    )
    plots.plot_cohort_retention(table, ax=ax)
    assert_allclose(ax.images[0].get_array().filled(np.nan), [[1.0, 0.75], [0.8, np.nan]], equal_nan=True)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    with pytest.raises(ChurnriskError, match="values='share'"):
        plots.plot_cohort_retention(table.assign(**{"0": [4, 4]}), ax=ax)


def test_rate_plots_draw_the_rates_module_output(demo_store, ax):
    from churnrisk.rates import churn_rates, cohort_retention

    rates = churn_rates(demo_store, period="month")
    plots.plot_churn_rates(rates, ax=ax)
    first = ax.get_lines()[0]
    assert_allclose(first.get_ydata(), rates.sort_values("period_start")["lost_churn_rate"], equal_nan=True)
    heat = Figure().add_subplot()
    retention = cohort_retention(demo_store, period="quarter")
    plots.plot_cohort_retention(retention, ax=heat)
    assert heat.images[0].get_array().shape == (len(retention), len(retention.columns) - 3)


def test_non_repeat_rate_against_benchmarks(ax):
    benchmarks = pd.DataFrame({"category": ["apparel", "shoes", "pets"], "non_repeat_rate": [71, 78, 70]})
    plots.plot_non_repeat_rate(0.74, benchmarks=benchmarks, category="shoes", ax=ax)
    names = [t.get_text() for t in ax.get_yticklabels()]
    widths = [p.get_width() for p in ax.patches]
    assert names == ["pets", "apparel", "your customers", "shoes"]  # sorted by rate
    assert_allclose(widths, [0.70, 0.71, 0.74, 0.78])  # percents read as fractions
    assert ax.patches[2].get_facecolor() == to_rgba("tab:red")
    assert ax.patches[3].get_facecolor() == to_rgba("tab:orange")


def test_non_repeat_rate_unknown_category(ax):
    with pytest.raises(ChurnriskError, match="'toys' is not among the benchmarks"):
        plots.plot_non_repeat_rate(0.7, benchmarks={"apparel": 0.71}, category="toys", ax=ax)


def test_non_repeat_rate_default_benchmarks_are_the_seed(ax):
    plots.plot_non_repeat_rate(0.5, ax=ax)
    widths = dict(
        zip([t.get_text() for t in ax.get_yticklabels()], [p.get_width() for p in ax.patches], strict=True)
    )
    assert len(widths) == 15  # 14 seed categories and the user's bar
    assert min(v for k, v in widths.items() if k != "your customers") == pytest.approx(0.62)
    assert max(widths.values()) == pytest.approx(0.82)


# --- model quality ---------------------------------------------------------------------------------

# The classic four-row example: one of the four (positive, negative) pairs is ranked the wrong way.
Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def test_roc_curve_and_auc(ax):
    plots.plot_roc(Y, S, label="gbm", ax=ax)
    plots.plot_roc(Y, [0.1, 0.2, 0.3, 0.4], label="perfect", ax=ax)
    chance, gbm, perfect = ax.get_lines()
    assert chance.get_label() == "chance"  # drawn once for both curves
    assert_allclose(gbm.get_xdata(), [0, 0, 0.5, 0.5, 1])
    assert_allclose(gbm.get_ydata(), [0, 0.5, 0.5, 1, 1])
    assert legend_texts(ax) == ["chance", "gbm (AUC 0.750)", "perfect (AUC 1.000)"]


def test_precision_recall_and_base_rate(ax):
    plots.plot_precision_recall(Y, S, ax=ax)
    base, curve = ax.get_lines()
    assert_allclose(base.get_ydata(), [0.5, 0.5])
    # thresholds 0.8, 0.4, 0.35, 0.1: precision 1, 1/2, 2/3, 1/2 at recall 1/2, 1/2, 1, 1
    assert_allclose(curve.get_xdata(), [1, 1, 0.5, 0.5, 0])
    assert_allclose(curve.get_ydata(), [0.5, 2 / 3, 0.5, 1, 1])
    assert legend_texts(ax)[1] == "model (AP 0.833)"  # (1/2)·1 + (1/2)·(2/3)


def test_calibration_bins(ax):
    y = [0, 0, 1, 1, 0, 1]
    p = [0.1, 0.1, 0.9, 0.9, 0.6, 0.6]
    plots.plot_calibration(y, p, n_bins=2, strategy="uniform", ax=ax)
    diagonal, curve = ax.get_lines()
    assert_allclose(curve.get_xdata(), [0.1, 0.75])  # mean predicted in [0, .5) and [.5, 1]
    assert_allclose(curve.get_ydata(), [0.0, 0.75])  # observed churn in the same bins
    assert ax.get_xlabel() == "mean predicted probability"


def test_calibration_refuses_scores_outside_0_1(ax):
    with pytest.raises(ChurnriskError, match="probabilities in \\[0, 1\\]"):
        plots.plot_calibration(Y, [-3, 1, 2, 5], ax=ax)


def test_labels_and_scores_must_line_up(ax):
    with pytest.raises(ChurnriskError, match="same length"):
        plots.plot_roc([0, 1, 1], [0.1, 0.2], ax=ax)
    with pytest.raises(ChurnriskError, match="0/1"):
        plots.plot_roc([0, 2], [0.1, 0.2], ax=ax)


def test_cumulative_gain_ties_taken_together():
    gain = plots.cumulative_gain([0, 1, 1, 0, 0, 1], [0.9, 0.9, 0.5, 0.5, 0.5, 0.1])
    expected = pd.DataFrame(
        {
            "fraction_contacted": [0, 2 / 6, 5 / 6, 1],
            "fraction_captured": [0, 1 / 3, 2 / 3, 1],
            "lift": [np.nan, 1.0, 0.8, 1.0],
        }
    )
    pd.testing.assert_frame_equal(gain, expected)


def test_cumulative_gain_does_not_depend_on_row_order(random_state):
    rng = np.random.default_rng(random_state)
    y = rng.integers(0, 2, 300)
    score = rng.integers(0, 10, 300) / 10  # many ties
    order = rng.permutation(300)
    pd.testing.assert_frame_equal(
        plots.cumulative_gain(y, score), plots.cumulative_gain(y[order], score[order])
    )


def test_gain_and_lift_plots(ax):
    y, score = [0, 1, 1, 0, 0, 1], [0.9, 0.9, 0.5, 0.5, 0.5, 0.1]
    plots.plot_cumulative_gain(y, score, ax=ax)
    assert_allclose(ax.get_lines()[1].get_ydata(), [0, 1 / 3, 2 / 3, 1])
    lift_ax = Figure().add_subplot()
    plots.plot_lift(y, score, ax=lift_ax)
    random, lift = lift_ax.get_lines()
    assert_allclose(random.get_ydata(), [1, 1])
    assert_allclose(lift.get_xdata(), [2 / 6, 5 / 6, 1])
    assert_allclose(lift.get_ydata(), [1.0, 0.8, 1.0])


def test_gain_needs_a_churner():
    with pytest.raises(ChurnriskError, match="at least one churner"):
        plots.cumulative_gain([0, 0], [0.1, 0.2])


# --- features and scores ---------------------------------------------------------------------------


def test_churn_by_decile_of_a_20_row_table(ax):
    toy = pd.DataFrame(
        {
            "days_since_last_order": [*range(1, 21)],
            "churned": [0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1],
        }
    ).sample(frac=1, random_state=0)  # order must not matter
    table = plots.churn_by_decile(toy["days_since_last_order"], toy["churned"])
    # deciles of 1..20 are the pairs (1, 2), (3, 4), ..., (19, 20)
    assert table["customers"].tolist() == [2] * 10
    assert table["churn_rate"].tolist() == [0, 0, 0.5, 0, 0.5, 0.5, 0.5, 1, 1, 1]
    plots.plot_churn_by_decile(toy["days_since_last_order"], toy["churned"], name="days since order", ax=ax)
    assert [p.get_height() for p in ax.patches] == [0, 0, 0.5, 0, 0.5, 0.5, 0.5, 1, 1, 1]
    assert_allclose(ax.get_lines()[0].get_ydata(), [0.5, 0.5])  # 10 churners of 20
    assert ax.get_xlabel() == "days since order (quantile bin)"


def test_churn_by_decile_missing_values_get_their_own_bin():
    table = plots.churn_by_decile([1.0, 2.0, np.nan, 3.0, 4.0, np.nan], [0, 1, 1, 0, 1, 1], n_bins=2)
    assert table["bin"].tolist()[-1] == "missing"
    assert table[["customers", "churned"]].to_numpy().tolist() == [[2, 1], [2, 1], [2, 2]]


def scored_list():
    return pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 6],
            "churn_probability": [0.93, 0.85, 0.72, 0.45, 0.25, 0.15],  # off the bin edges
            "risk_tier": ["high", "high", "high", "medium", "low", "low"],
            "revenue_at_risk": [90.0, 8.0, 70.0, 40.0, 2.0, 1.0],
            "reasons": [
                "3 failed payments in the last 30 days; CSAT fell from 5 to 2",
                ["2 failed payments in the last 30 days", "CSAT fell from 4 to 1"],
                "no order for 140 days, usual gap 30",
                "3 failed payments in the last 30 days",  # medium tier: not counted
                None,
                "",
            ],
            "segment": ["smb", "enterprise", "smb", None, "smb", "enterprise"],
        }
    )


def test_risk_distribution_stacks_tiers_from_low_to_high(ax):
    plots.plot_risk_distribution(scored_list(), bins=10, ax=ax)
    assert legend_texts(ax) == ["low", "medium", "high"]
    assert len(ax.patches) == 30  # 3 tiers × 10 bins
    top_layer = ax.containers[-1]
    # stacked: the last layer's tops are the total counts per bin
    assert [int(p.get_y() + p.get_height()) for p in top_layer] == [0, 1, 1, 0, 1, 0, 0, 1, 1, 1]


def test_reason_counts_among_the_highest_tier():
    counts = plots.reason_counts(scored_list())
    expected = pd.DataFrame(
        {
            "reason": [
                "# failed payments in the last # days",
                "CSAT fell from # to #",
                "no order for # days, usual gap #",
            ],
            "customers": [2, 2, 1],
            "share": [2 / 3, 2 / 3, 1 / 3],
        }
    )
    pd.testing.assert_frame_equal(counts, expected, check_dtype=False)


def test_reason_counts_chosen_tiers_verbatim():
    counts = plots.reason_counts(scored_list(), tiers=["medium", "low"], generalize_numbers=False)
    assert counts["reason"].tolist() == ["3 failed payments in the last 30 days"]
    assert counts["share"].tolist() == [1 / 3]


def test_top_reasons_plot_most_frequent_on_top(ax):
    plots.plot_top_reasons(scored_list(), top=2, ax=ax)
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names == ["CSAT fell from # to #", "# failed payments in the last # days"]  # top bar last
    assert [p.get_width() for p in ax.patches] == [2, 2]


def test_revenue_by_segment_sums(ax):
    table = plots.revenue_by_segment(scored_list())
    expected = pd.DataFrame(
        {
            "segment": ["smb", "(none)", "enterprise"],
            "customers": [3, 1, 2],
            "revenue_at_risk": [162.0, 40.0, 9.0],
            "expected_churners": [0.93 + 0.72 + 0.25, 0.45, 0.85 + 0.15],
        }
    )
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    plots.plot_revenue_at_risk(scored_list(), ax=ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["enterprise", "(none)", "smb"]
    assert [p.get_width() for p in ax.patches] == [9.0, 40.0, 162.0]


def test_missing_score_columns_are_named(ax):
    with pytest.raises(ChurnriskError, match="revenue_at_risk"):
        plots.plot_revenue_at_risk(scored_list().drop(columns="revenue_at_risk"), ax=ax)


@pytest.mark.parametrize(
    ("draw", "args"),
    [
        (plots.plot_roc, (Y, S)),
        (plots.plot_churn_rates, (rates_table(),)),
        (plots.plot_revenue_at_risk, (scored_list(),)),
    ],
)
def test_without_ax_a_new_figure_is_made(draw, args):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    try:
        ax = draw(*args)
        assert ax.figure.number not in before
        assert ax.has_data()
    finally:
        plt.close("all")


def test_importing_plots_does_not_load_pyplot():
    import subprocess
    import sys

    code = "import sys, churnrisk.plots, churnrisk.report; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
