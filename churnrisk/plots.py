"""Pictures of churn: rates over time, cohorts, model quality, scores and the reasons behind them.

Every plotting function follows the lifelines convention: matplotlib is imported inside the function
(importing churnrisk never loads it), the function draws on ``ax`` when one is given and on a new
figure otherwise, and returns the axes so a caller can add titles or save the figure. Nothing here
calls ``pyplot.show``: the functions work the same under the non-interactive Agg backend.

The small tables behind the less obvious pictures are public functions too (:func:`churn_by_decile`,
:func:`reason_counts`, :func:`revenue_by_segment`), so a number on a chart can always be checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnrisk.errors import ChurnriskError
from churnrisk.evaluation import check_scores

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "RATE_LABELS",
    "churn_by_decile",
    "cumulative_gain",
    "plot_backtest",
    "plot_calibration",
    "plot_churn_by_decile",
    "plot_churn_rates",
    "plot_cohort_retention",
    "plot_cumulative_gain",
    "plot_drift",
    "plot_freshness",
    "plot_lift",
    "plot_non_repeat_rate",
    "plot_precision_recall",
    "plot_revenue_at_risk",
    "plot_risk_distribution",
    "plot_roc",
    "plot_top_reasons",
    "reason_counts",
    "revenue_by_segment",
    "write_plots",
]

#: Rate columns drawn by :func:`plot_churn_rates` by default, with their legend labels.
RATE_LABELS: dict[str, str] = {
    "lost_churn_rate": "customer churn (lost / start)",
    "adjusted_churn_rate": "adjusted churn (exposure)",
    "gross_revenue_churn": "gross revenue churn",
    "net_revenue_churn": "net revenue churn",
    "revenue_churn": "revenue churn (existing customers)",
}

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _axes(ax: Axes | None) -> Axes:
    """The axes to draw on: the caller's, or those of a new figure."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure().add_subplot()


def _percent_axis(axis: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(xmax=1.0))


def _integer_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _thousands_axis(axis: Any) -> None:
    from matplotlib.ticker import StrMethodFormatter

    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ChurnriskError(
            f"{what} needs the column(s) {missing}; got {list(frame.columns)}. "
            "Suggestion: pass the table the matching churnrisk function returns."
        )


def _binary(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0/1 integers and scores as floats, checked to line up."""
    y = np.asarray(y_true).astype(int)
    score = np.asarray(y_score, dtype=float)
    if y.shape != score.shape or y.ndim != 1:
        raise ChurnriskError(
            f"y_true and y_score must be 1-d and of the same length; got shapes {y.shape} and "
            f"{score.shape}. Suggestion: pass the labels and the scores of the same rows."
        )
    if not np.isin(y, (0, 1)).all():
        raise ChurnriskError(
            f"y_true must hold 0/1 (or False/True) labels; got values {sorted(set(y.tolist()))[:5]}."
        )
    return y, score


# --- historical rates ------------------------------------------------------------------------------


def plot_churn_rates(
    rates: pd.DataFrame, *, columns: Sequence[str] | None = None, ax: Axes | None = None
) -> Axes:
    """Customer, adjusted and revenue churn rates over time, one line each.

    Parameters
    ----------
    rates : DataFrame
        One row per period with ``period_start`` and rate columns (fractions), as returned by the
        historical rates of :mod:`churnrisk.rates`. Rows of several segments are refused: filter one.
    columns : sequence of str, optional
        Rate columns to draw. Default: those of :data:`RATE_LABELS` that are present and not all
        missing (revenue churn exists only for subscription data). The seed's net-change rate
        ``customer_churn_rate`` is not drawn by default: in a growing business it is strongly
        negative and would flatten every other line; pass it in ``columns`` to see it.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    _require(rates, ["period_start"], "plot_churn_rates")
    if rates["period_start"].duplicated().any():
        raise ChurnriskError(
            "plot_churn_rates draws one row per period, but some periods appear more than once "
            "(rates by segment?). Suggestion: select one segment before plotting."
        )
    if columns is None:
        columns = [c for c in RATE_LABELS if c in rates.columns and rates[c].notna().any()]
    _require(rates, columns, "plot_churn_rates")
    ax = _axes(ax)
    ordered = rates.sort_values("period_start")
    labels = {**RATE_LABELS, "customer_churn_rate": "customer churn (net change)"}
    for column in columns:
        ax.plot(ordered["period_start"], ordered[column], marker="o", label=labels.get(column, column))
    ax.set_xlabel("period start")
    ax.set_ylabel("churn rate")
    _percent_axis(ax.yaxis)
    if columns:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.set_title("Churn rate by period")
    return ax


def plot_cohort_retention(
    retention: pd.DataFrame, *, annotate: bool | None = None, ax: Axes | None = None
) -> Axes:
    """Heatmap of a cohort retention table: acquisition cohorts (rows) by periods since acquisition.

    Parameters
    ----------
    retention : DataFrame
        The table of :func:`churnrisk.rates.cohort_retention` (``cohort_start``, then one column per
        period since acquisition named ``"0"``, ``"1"``, ...), or any wide table with the cohort as
        index and periods as columns. Values are shares of the cohort still active (fractions;
        missing where the period has not happened yet).
    annotate : bool, optional
        Write the percentage in each cell. Default: when the table has at most 15 × 15 cells.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    retention = _retention_grid(retention)
    values = retention.to_numpy(dtype=float, na_value=np.nan)
    if np.nanmax(values, initial=0.0) > 1:
        raise ChurnriskError(
            "plot_cohort_retention draws shares of each cohort, but the table holds values above 1 "
            "(customer counts?). Suggestion: use cohort_retention(store, values='share')."
        )
    ax = _axes(ax)
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(values.shape[1]), [str(c) for c in retention.columns])
    ax.set_yticks(range(values.shape[0]), [_label(i) for i in retention.index])
    ax.set_xlabel("periods since acquisition")
    ax.set_ylabel("acquisition cohort")
    ax.set_title("Cohort retention")
    if annotate is None:
        annotate = values.shape[0] <= 15 and values.shape[1] <= 15
    if annotate:
        for (row, col), value in np.ndenumerate(values):
            if not np.isnan(value):
                ax.text(col, row, f"{value:.0%}", ha="center", va="center", fontsize=7,
                        color="black" if value > 0.6 else "white")  # fmt: skip
    ax.figure.colorbar(image, ax=ax, label="share retained")
    return ax


def _retention_grid(retention: pd.DataFrame) -> pd.DataFrame:
    """Cohorts as index and only the period columns, whichever shape the table came in."""
    if "cohort_start" in retention.columns:
        retention = retention.set_index("cohort_start")
        return retention[[c for c in retention.columns if str(c).isdigit()]]
    return retention


def _label(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, pd.Period):
        return str(value)
    return str(value)


def _benchmarks(benchmarks: pd.DataFrame | Mapping[str, float] | pd.Series | None) -> pd.Series:
    """Benchmark non-repeat rates by category, as a Series of fractions."""
    if benchmarks is None:
        from churnrisk.rates import category_benchmarks

        benchmarks = category_benchmarks()
    if isinstance(benchmarks, pd.DataFrame):
        text = [c for c in benchmarks.columns if not pd.api.types.is_numeric_dtype(benchmarks[c])]
        numbers = [c for c in benchmarks.columns if pd.api.types.is_numeric_dtype(benchmarks[c])]
        if not text or not numbers:
            raise ChurnriskError(
                f"benchmarks need a category column and a rate column; got {list(benchmarks.columns)}."
            )
        rate_col = next((c for c in numbers if "non_repeat" in str(c)), numbers[0])
        series = benchmarks.set_index(text[0])[rate_col]
    else:
        series = pd.Series(benchmarks, dtype=float)
    series = series.astype(float)
    return series / 100 if series.max() > 1 else series


def plot_non_repeat_rate(
    non_repeat_rate: float,
    *,
    benchmarks: pd.DataFrame | Mapping[str, float] | pd.Series | None = None,
    category: str | None = None,
    label: str = "your customers",
    ax: Axes | None = None,
) -> Axes:
    """The one-year non-repeat rate beside the seed's benchmarks by product category.

    Parameters
    ----------
    non_repeat_rate : float
        Share of customers who bought once and not again within a year (a fraction).
    benchmarks : DataFrame, Series or mapping, optional
        Benchmark rate by category (fractions or percents). Default: the benchmarks shipped in
        ``churnrisk/data/category_benchmarks.csv``.
    category : str, optional
        The user's own category, highlighted among the benchmarks.
    label : str
        Name of the bar of the user's rate.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        One horizontal bar per benchmark category plus one for ``non_repeat_rate``, sorted by rate.
    """
    table = _benchmarks(benchmarks)
    if label in table.index:
        raise ChurnriskError(
            f"label {label!r} is also a benchmark category. Suggestion: choose another label."
        )
    if category is not None and category not in table.index:
        raise ChurnriskError(
            f"category {category!r} is not among the benchmarks {sorted(table.index)}. "
            "Suggestion: use one of those names."
        )
    table = pd.concat([table, pd.Series({label: float(non_repeat_rate)})]).sort_values()
    colors = [
        "tab:red" if name == label else "tab:orange" if name == category else "tab:gray"
        for name in table.index
    ]
    ax = _axes(ax)
    ax.barh([str(i) for i in table.index], table.to_numpy(), color=colors)
    ax.set_xlabel("one-year non-repeat rate")
    _percent_axis(ax.xaxis)
    ax.set_xlim(0, 1)
    ax.set_title("Non-repeat rate against category benchmarks")
    return ax


# --- model quality ---------------------------------------------------------------------------------


def plot_roc(y_true: Any, y_score: Any, *, label: str | None = None, ax: Axes | None = None) -> Axes:
    """ROC curve with its AUC in the legend; call again on the same ``ax`` to compare baselines.

    The chance diagonal is drawn once per axes (as the ``chance`` line).

    Returns
    -------
    matplotlib Axes
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y, score = _binary(y_true, y_score)
    fpr, tpr, _ = roc_curve(y, score)
    ax = _axes(ax)
    _diagonal(ax)
    auc = roc_auc_score(y, score)
    ax.plot(fpr, tpr, label=f"{label or 'model'} (AUC {auc:.3f})")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    return ax


def _diagonal(ax: Axes) -> None:
    if not any(line.get_label() == "chance" for line in ax.get_lines()):
        ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="chance")


def plot_precision_recall(
    y_true: Any, y_score: Any, *, label: str | None = None, ax: Axes | None = None
) -> Axes:
    """Precision-recall curve with its average precision, above the base rate (a random ranking).

    Returns
    -------
    matplotlib Axes
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y, score = _binary(y_true, y_score)
    precision, recall, _ = precision_recall_curve(y, score)
    ax = _axes(ax)
    if not any(line.get_label() == "base rate" for line in ax.get_lines()):
        ax.axhline(y.mean(), linestyle="--", color="gray", linewidth=1, label="base rate")
    ap = average_precision_score(y, score)
    ax.step(recall, precision, where="post", label=f"{label or 'model'} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall")
    ax.legend(loc="upper right")
    return ax


def plot_calibration(
    y_true: Any,
    y_score: Any,
    *,
    n_bins: int = 10,
    strategy: str = "quantile",
    label: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Reliability diagram: observed churn rate against mean predicted probability per bin.

    Parameters
    ----------
    y_true, y_score : array-like
        0/1 labels and predicted probabilities in [0, 1].
    n_bins : int
        Number of bins.
    strategy : {"quantile", "uniform"}
        Bins of equal size (default) or of equal width, as in scikit-learn's ``calibration_curve``.
    label : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    from sklearn.calibration import calibration_curve

    y, score = _binary(y_true, y_score)
    if score.min() < 0 or score.max() > 1:
        raise ChurnriskError(
            f"plot_calibration needs probabilities in [0, 1]; got scores from {score.min():g} to "
            f"{score.max():g}. Suggestion: pass churn probabilities, not raw scores."
        )
    observed, predicted = calibration_curve(y, score, n_bins=n_bins, strategy=strategy)
    ax = _axes(ax)
    if not any(line.get_label() == "perfectly calibrated" for line in ax.get_lines()):
        ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label=label or "model")
    # zoom on the range the probabilities use: scores of 0-20 % would be a dot in the corner of [0, 1]
    upper = min(1.0, 1.1 * max(float(predicted.max()), float(observed.max()), 0.05))
    ax.set_xlim(0, upper)
    ax.set_ylim(0, upper)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Calibration")
    ax.legend(loc="upper left")
    return ax


def cumulative_gain(y_true: Any, y_score: Any) -> pd.DataFrame:
    """Share of churners captured when contacting the customers with the highest scores first.

    Customers with tied scores are taken together (one point per distinct score), so the curve does
    not depend on the order of the rows.

    Returns
    -------
    DataFrame
        Columns ``fraction_contacted``, ``fraction_captured`` and ``lift``, starting at (0, 0).

    Examples
    --------
    >>> cumulative_gain([1, 0, 1, 0], [0.9, 0.8, 0.8, 0.1])
       fraction_contacted  fraction_captured      lift
    0                0.00                0.0       NaN
    1                0.25                0.5  2.000000
    2                0.75                1.0  1.333333
    3                1.00                1.0  1.000000
    """
    y, score = _binary(y_true, y_score)
    if len(y) == 0 or y.sum() == 0:
        raise ChurnriskError("cumulative_gain needs at least one churner among the labels.")
    order = np.argsort(-score, kind="stable")
    y_sorted, s_sorted = y[order], score[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), len(y) - 1]
    contacted = np.r_[0, last_of_tie + 1] / len(y)
    captured = np.r_[0, np.cumsum(y_sorted)[last_of_tie]] / y.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = np.where(contacted > 0, captured / np.where(contacted > 0, contacted, 1), np.nan)
    return pd.DataFrame({"fraction_contacted": contacted, "fraction_captured": captured, "lift": lift})


def plot_cumulative_gain(
    y_true: Any, y_score: Any, *, label: str | None = None, ax: Axes | None = None
) -> Axes:
    """Cumulative gain: share of churners found against share of customers contacted.

    Returns
    -------
    matplotlib Axes
    """
    gain = cumulative_gain(y_true, y_score)
    ax = _axes(ax)
    _diagonal(ax)
    ax.plot(gain["fraction_contacted"], gain["fraction_captured"], label=label or "model")
    ax.set_xlabel("customers contacted, highest risk first")
    ax.set_ylabel("churners captured")
    _percent_axis(ax.xaxis)
    _percent_axis(ax.yaxis)
    ax.set_title("Cumulative gain")
    ax.legend(loc="lower right")
    return ax


def plot_lift(y_true: Any, y_score: Any, *, label: str | None = None, ax: Axes | None = None) -> Axes:
    """Lift: churn rate among the customers contacted first, as a multiple of the base rate.

    Returns
    -------
    matplotlib Axes
    """
    gain = cumulative_gain(y_true, y_score).iloc[1:]
    ax = _axes(ax)
    if not any(line.get_label() == "random" for line in ax.get_lines()):
        ax.axhline(1.0, linestyle="--", color="gray", linewidth=1, label="random")
    ax.plot(gain["fraction_contacted"], gain["lift"], label=label or "model")
    ax.set_xlabel("customers contacted, highest risk first")
    ax.set_ylabel("lift over the base rate")
    _percent_axis(ax.xaxis)
    ax.set_title("Lift")
    ax.legend(loc="upper right")
    return ax


# --- features and scores ---------------------------------------------------------------------------


def churn_by_decile(values: Any, churned: Any, *, n_bins: int = 10) -> pd.DataFrame:
    """Churn rate by quantile bin of a metric (the "churn vs metric cohort" table).

    Parameters
    ----------
    values : array-like
        The metric, one value per customer; missing values form their own ``missing`` bin.
    churned : array-like
        0/1 churn labels of the same customers.
    n_bins : int
        Number of quantile bins (fewer when the metric has many ties).

    Returns
    -------
    DataFrame
        One row per bin, lowest values first: ``bin`` (the interval, or ``"missing"``), ``customers``,
        ``churned`` and ``churn_rate``.
    """
    metric = pd.Series(np.asarray(values, dtype=float))
    labels = pd.Series(np.asarray(churned).astype(int))
    if len(metric) != len(labels):
        raise ChurnriskError(f"values and churned differ in length: {len(metric)} and {len(labels)}.")
    bins = pd.qcut(metric, q=n_bins, duplicates="drop")
    missing = metric.isna().to_numpy()
    frame = pd.DataFrame(
        {
            "bin": np.where(missing, "missing", bins.astype(str)),
            "code": np.where(missing, len(bins.cat.categories), bins.cat.codes),
            "churned": labels,
        }
    )
    table = (
        frame.groupby(["code", "bin"], sort=True)["churned"]
        .agg(customers="size", churned="sum")
        .reset_index()
    )
    table["churn_rate"] = table["churned"] / table["customers"]
    return table.drop(columns="code")


def plot_churn_by_decile(
    values: Any, churned: Any, *, n_bins: int = 10, name: str = "metric", ax: Axes | None = None
) -> Axes:
    """Bar chart of the churn rate by quantile bin of a metric, with the overall rate as a line.

    See :func:`churn_by_decile` for the parameters; ``name`` labels the x axis.

    Returns
    -------
    matplotlib Axes
    """
    table = churn_by_decile(values, churned, n_bins=n_bins)
    ax = _axes(ax)
    ax.bar(range(len(table)), table["churn_rate"].to_numpy(), color="tab:blue")
    ax.set_xticks(range(len(table)), table["bin"].tolist(), rotation=45, ha="right")
    rate = table["churned"].sum() / table["customers"].sum()
    ax.axhline(rate, linestyle="--", color="gray", linewidth=1, label=f"overall {rate:.1%}")
    ax.set_xlabel(f"{name} (quantile bin)")
    ax.set_ylabel("churn rate")
    _percent_axis(ax.yaxis)
    ax.set_title(f"Churn rate by {name}")
    ax.legend()
    return ax


def _tier_order(scores: pd.DataFrame) -> list[Any]:
    """Risk tiers from lowest to highest risk: the categorical order, else by mean probability."""
    tiers = scores["risk_tier"]
    if isinstance(tiers.dtype, pd.CategoricalDtype) and tiers.cat.ordered:
        return [t for t in tiers.cat.categories if (tiers == t).any()]
    return scores.groupby("risk_tier", observed=True)["churn_probability"].mean().sort_values().index.tolist()


def plot_risk_distribution(scores: pd.DataFrame, *, bins: int = 20, ax: Axes | None = None) -> Axes:
    """Histogram of churn probabilities, stacked by risk tier.

    Parameters
    ----------
    scores : DataFrame
        A scored customer list with ``churn_probability`` and ``risk_tier``.
    bins : int
        Number of equal-width bins on [0, 1].
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    _require(scores, ["churn_probability", "risk_tier"], "plot_risk_distribution")
    tiers = _tier_order(scores)
    data = [scores.loc[scores["risk_tier"] == t, "churn_probability"].to_numpy(dtype=float) for t in tiers]
    ax = _axes(ax)
    ax.hist(data, bins=np.linspace(0, 1, bins + 1).tolist(), stacked=True, label=[str(t) for t in tiers])
    ax.set_xlabel("churn probability")
    ax.set_ylabel("customers")
    _integer_axis(ax.yaxis)
    ax.set_title("Risk scores by tier")
    ax.legend(title="risk tier")
    return ax


def _split_reasons(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(";") if part.strip()]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [str(part).strip() for part in value if str(part).strip()]


def reason_counts(
    scores: pd.DataFrame,
    *,
    tiers: Sequence[Any] | None = None,
    n_customers: int | None = None,
    generalize_numbers: bool = True,
) -> pd.DataFrame:
    """How often each reason is given among high-risk customers.

    Parameters
    ----------
    scores : DataFrame
        A scored customer list with ``reasons`` (``"; "``-joined text or lists of text); with
        ``risk_tier`` and ``churn_probability`` when ``tiers`` is not given.
    tiers : sequence, optional
        Risk tiers to count. Default: the highest tier present.
    n_customers : int, optional
        Count among the ``n_customers`` customers with the highest churn probability instead
        (e.g. the list a retention team works through); excludes ``tiers``.
    generalize_numbers : bool
        Replace numbers by ``#`` so that "3 failed payments" and "4 failed payments" count as one.

    Returns
    -------
    DataFrame
        ``reason``, ``customers`` (customers given that reason) and ``share`` of the customers
        counted, most frequent first (ties by reason text).
    """
    _require(scores, ["reasons"], "reason_counts")
    if n_customers is not None:
        if tiers is not None:
            raise ChurnriskError("reason_counts takes tiers or n_customers, not both.")
        _require(scores, ["churn_probability"], "reason_counts")
        chosen = scores.sort_values("churn_probability", ascending=False, kind="stable").head(n_customers)
    else:
        if tiers is None and "risk_tier" in scores.columns:
            tiers = _tier_order(scores)[-1:]
        chosen = scores if tiers is None else scores[scores["risk_tier"].isin(list(tiers))]
    per_customer = chosen["reasons"].map(_split_reasons)
    if generalize_numbers:
        per_customer = per_customer.map(lambda rs: [_NUMBER.sub("#", r) for r in rs])
    reasons = per_customer.map(lambda rs: sorted(set(rs))).explode().dropna()
    counts = reasons.value_counts().rename_axis("reason").reset_index(name="customers")
    counts = counts.sort_values(["customers", "reason"], ascending=[False, True], ignore_index=True)
    counts["share"] = counts["customers"] / max(len(chosen), 1)
    return counts


def plot_top_reasons(
    scores: pd.DataFrame,
    *,
    tiers: Sequence[Any] | None = None,
    n_customers: int | None = None,
    top: int = 10,
    generalize_numbers: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of the most frequent reasons among high-risk customers.

    See :func:`reason_counts` for the parameters; ``top`` limits the number of bars.

    Returns
    -------
    matplotlib Axes
        The most frequent reason is the top bar.
    """
    counts = reason_counts(
        scores, tiers=tiers, n_customers=n_customers, generalize_numbers=generalize_numbers
    ).head(top)
    ax = _axes(ax)
    ax.barh(counts["reason"].tolist()[::-1], counts["customers"].to_numpy()[::-1], color="tab:red")
    ax.set_xlabel("high-risk customers given this reason")
    _integer_axis(ax.xaxis)
    ax.set_title("Most frequent reasons among high-risk customers")
    return ax


def revenue_by_segment(scores: pd.DataFrame, *, by: str = "segment") -> pd.DataFrame:
    """Customers and revenue at risk per segment, largest revenue at risk first.

    Returns
    -------
    DataFrame
        ``by``, ``customers``, ``revenue_at_risk`` and ``expected_churners`` (sum of probabilities).
    """
    _require(scores, [by, "revenue_at_risk", "churn_probability"], "revenue_by_segment")
    keyed = scores.assign(**{by: scores[by].astype(object).where(scores[by].notna(), "(none)").astype(str)})
    table = keyed.groupby(by, sort=True).agg(
        customers=("revenue_at_risk", "size"),
        revenue_at_risk=("revenue_at_risk", "sum"),
        expected_churners=("churn_probability", "sum"),
    )
    table = table.reset_index().sort_values(
        ["revenue_at_risk", by], ascending=[False, True], ignore_index=True
    )
    return table


def plot_revenue_at_risk(scores: pd.DataFrame, *, by: str = "segment", ax: Axes | None = None) -> Axes:
    """Horizontal bars of revenue at risk per segment (probability × recent revenue, summed).

    Returns
    -------
    matplotlib Axes
        The segment with the most revenue at risk is the top bar.
    """
    table = revenue_by_segment(scores, by=by)
    ax = _axes(ax)
    ax.barh(table[by].tolist()[::-1], table["revenue_at_risk"].to_numpy()[::-1], color="tab:purple")
    _thousands_axis(ax.xaxis)
    ax.set_xlabel("revenue at risk")
    ax.set_ylabel(by)
    ax.set_title(f"Revenue at risk by {by}")
    return ax


# --- monitoring ------------------------------------------------------------------------------------------


def plot_backtest(cutoffs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Predicted against observed churn rate at each backtested cutoff (see :mod:`churnrisk.monitoring`).

    ``cutoffs`` has ``cutoff``, ``predicted_rate`` and ``observed_rate``; rows without an observed
    rate (pending cutoffs) are left out.
    """
    _require(cutoffs, ["cutoff", "predicted_rate", "observed_rate"], "plot_backtest")
    done = cutoffs.dropna(subset=["observed_rate"]).sort_values("cutoff")
    ax = _axes(ax)
    ax.plot(done["cutoff"], done["predicted_rate"], marker="o", label="predicted")
    ax.plot(done["cutoff"], done["observed_rate"], marker="s", label="observed")
    ax.set_ylim(bottom=0)
    _percent_axis(ax.yaxis)
    ax.set_xlabel("cutoff")
    ax.set_ylabel("churn rate within the horizon")
    ax.legend(loc="best", fontsize="small")
    ax.set_title("Predicted vs observed churn")
    return ax


def plot_drift(
    drift: pd.DataFrame, *, top: int = 15, threshold: float = 0.25, ax: Axes | None = None
) -> Axes:
    """Population stability index of the ``top`` first features of ``drift`` (most influential first).

    Bars beyond ``threshold`` (a dashed line) are drawn in red.
    """
    _require(drift, ["feature", "psi"], "plot_drift")
    shown = drift.head(top).iloc[::-1]
    colors = ["tab:red" if v > threshold else "tab:blue" for v in shown["psi"]]
    ax = _axes(ax)
    ax.barh(shown["feature"].astype(str).tolist(), shown["psi"].to_numpy(dtype=float), color=colors)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("population stability index (PSI)")
    ax.set_title("Drift of the most influential features")
    return ax


def plot_freshness(freshness: pd.DataFrame, *, stale_days: float = 14, ax: Axes | None = None) -> Axes:
    """Days from each table's last event to the as-of date, a dashed line at ``stale_days``.

    Stale tables are red: those of the ``stale`` column when there is one, else those beyond
    ``stale_days``.
    """
    _require(freshness, ["table", "days_behind"], "plot_freshness")
    shown = freshness.sort_values("days_behind")
    stale = shown["stale"] if "stale" in shown.columns else shown["days_behind"] > stale_days
    colors = ["tab:red" if v else "tab:green" for v in stale]
    ax = _axes(ax)
    ax.barh(shown["table"].astype(str).tolist(), shown["days_behind"].to_numpy(dtype=float), color=colors)
    ax.axvline(stale_days, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("days from the last event to the as-of date")
    ax.set_title("Freshness of each table")
    return ax


def write_plots(y_true: Any, y_prob: Any, folder: str | Path, *, overwrite: bool = False) -> list[Path]:
    """ROC, precision-recall, calibration, lift/gain and risk-distribution PNGs into ``folder``.

    Uses :mod:`churnrisk.plots`; matplotlib is imported only here.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    y, s = check_scores(y_true, y_prob)
    drawings = {
        "roc.png": lambda ax: plot_roc(y, s, label="model", ax=ax),
        "precision_recall.png": lambda ax: plot_precision_recall(y, s, label="model", ax=ax),
        "calibration.png": lambda ax: plot_calibration(y, s, ax=ax),
        "gain.png": lambda ax: plot_cumulative_gain(y, s, label="model", ax=ax),
        "lift.png": lambda ax: plot_lift(y, s, label="model", ax=ax),
        "risk_distribution.png": lambda ax: plot_risk_distribution(_risk_frame(s), ax=ax),
    }
    written = []
    for name, draw in drawings.items():
        path = folder / name
        if path.exists() and not overwrite:
            raise ChurnriskError(f"{path} already exists. Suggestion: choose another --plots folder.")
        fig, ax = plt.subplots(figsize=(6, 4.5))
        draw(ax)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def _risk_frame(s: np.ndarray) -> pd.DataFrame:
    from churnrisk.scoring import risk_tiers

    return pd.DataFrame({"churn_probability": s, "risk_tier": risk_tiers(s)})
