"""How good is a churn score: metrics, lift and capture, calibration, baselines, plots (DESIGN §5).

Every metric is computed on the same rows for the model and for each baseline, and always next to
the base churn rate, so a reader sees at once whether a score is better than knowing nothing.

Ties
----
Lift and capture at the top ``k`` per cent are defined by a ranking, and scores tie (a baseline
such as the historical rate gives everyone in a segment the same score). churnrisk never breaks
ties by row order: a group of tied customers that straddles the cut counts pro rata, i.e. the
expected capture over every ordering of the tied rows. The result is therefore independent of the
order of the rows and of the customer ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from churnrisk.errors import ChurnriskError

__all__ = [
    "METRIC_KEYS",
    "calibration_table",
    "capture_at",
    "compare_scores",
    "lift_at",
    "plain_metrics",
    "score_metrics",
]

#: The keys of every metrics dict, in order (train's ``--metrics`` file uses the same).
METRIC_KEYS = (
    "roc_auc",
    "average_precision",
    "brier",
    "log_loss",
    "lift_at_10pct",
    "capture_at_10pct",
    "lift_at_20pct",
    "capture_at_20pct",
    "base_rate",
    "n",
)


def check_scores(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(y_score, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ChurnriskError(
            f"labels and scores must be 1-D and the same length. Got {y.shape} and {s.shape}."
        )
    if not np.isin(y, (0, 1)).all() or np.isnan(s).any():
        raise ChurnriskError("labels must be 0/1 and scores must not be missing.")
    return y, s


def capture_at(y_true: Any, y_score: Any, fraction: float) -> float:
    """Share of all churners found in the ``fraction`` of rows with the highest scores (ties pro rata).

    Examples
    --------
    >>> capture_at([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1], 0.5)  # 1 sure + half of the tied pair
    0.75
    """
    y, s = check_scores(y_true, y_score)
    if y.sum() == 0:
        return float("nan")
    frame = pd.DataFrame({"s": s, "y": y}).groupby("s", sort=True)["y"].agg(["size", "sum"]).iloc[::-1]
    take = fraction * len(y)
    before = frame["size"].cumsum().shift(fill_value=0).to_numpy()
    share = np.clip((take - before) / frame["size"].to_numpy(), 0.0, 1.0)
    return float((share * frame["sum"].to_numpy()).sum() / y.sum())


def lift_at(y_true: Any, y_score: Any, fraction: float) -> float:
    """Churn rate in the top ``fraction`` divided by the overall churn rate (ties pro rata).

    Examples
    --------
    >>> lift_at([1, 0, 0, 0], [0.9, 0.2, 0.2, 0.1], 0.25)
    4.0
    """
    return capture_at(y_true, y_score, fraction) / fraction


def score_metrics(y_true: Any, y_score: Any) -> dict[str, float]:
    """ROC AUC, average precision, Brier score, log loss, lift/capture at 10 % and 20 %, base rate, n.

    ``brier`` and ``log_loss`` only mean something for probabilities; for a score outside [0, 1]
    (e.g. days since the last order) they are NaN.
    """
    y, s = check_scores(y_true, y_score)
    both = 0 < y.sum() < len(y)
    is_prob = bool(((s >= 0) & (s <= 1)).all())
    out = {
        "roc_auc": skm.roc_auc_score(y, s) if both else np.nan,
        "average_precision": skm.average_precision_score(y, s) if both else np.nan,
        "brier": skm.brier_score_loss(y, s) if is_prob else np.nan,
        "log_loss": skm.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), labels=[0, 1]) if is_prob else np.nan,
    }
    for pct in (10, 20):
        out[f"lift_at_{pct}pct"] = lift_at(y, s, pct / 100)
        out[f"capture_at_{pct}pct"] = capture_at(y, s, pct / 100)
    out["base_rate"] = float(y.mean()) if len(y) else np.nan
    out["n"] = len(y)
    return {k: (int(v) if k == "n" else float(v)) for k, v in out.items()}


def calibration_table(y_true: Any, y_prob: Any, *, n_bins: int = 10) -> pd.DataFrame:
    """Predicted vs observed churn by bin of predicted probability (equal-count bins).

    Returns a frame with ``bin, n, mean_predicted, observed_rate`` (one row per non-empty bin).
    Tied probabilities always land in the same bin.
    """
    y, s = check_scores(y_true, y_prob)
    ranks = pd.Series(s).rank(method="min").to_numpy() - 1
    bins = np.minimum((ranks * n_bins / max(len(s), 1)).astype(int), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "p": s, "y": y}).groupby("bin")
    return pd.DataFrame(
        {"n": frame.size(), "mean_predicted": frame["p"].mean(), "observed_rate": frame["y"].mean()}
    ).reset_index()


def compare_scores(y_true: Any, scores: Mapping[str, Any]) -> pd.DataFrame:
    """One row of :func:`score_metrics` per named score (the model and each baseline), same rows."""
    rows = {name: score_metrics(y_true, s) for name, s in scores.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[list(METRIC_KEYS)]


def metrics_to_plain(metrics: Mapping[Any, Any]) -> dict[str, Any]:
    """NaN → None so the metrics dict is valid JSON."""
    return {str(k): (None if isinstance(v, float) and np.isnan(v) else v) for k, v in metrics.items()}


# --- baselines -----------------------------------------------------------------------------------------


def baseline_scores(
    store: Any,
    rows: pd.DataFrame,
    *,
    cutoff: Any,
    definition: str,
    horizon: int,
    lookback: int | None = None,
    base_rates: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """The baselines' scores for ``rows`` (``customer_id`` at one ``cutoff``), each higher = riskier.

    * ``historical_rate`` (when ``base_rates`` are given, see :func:`base_rates`): the observed churn
      rate of the *same* label definition at the training cutoffs, by segment;
    * ``recency``: days since the customer's last order or activity event (no event: the maximum);
    * ``bgnbd`` (order data, ``inactivity`` definition): the BG/NBD probability of no purchase
      within the horizon, fitted on every customer's purchase history up to the cutoff.
    """
    cutoff = pd.Timestamp(cutoff)
    ids = rows["customer_id"]
    out = {} if base_rates is None else {"historical_rate": historical_rate(store, ids, base_rates)}
    out["recency"] = _recency(store, ids, cutoff)
    if definition == "inactivity" and "orders" in store:
        out["bgnbd"] = _bgnbd(store, ids, cutoff, horizon)
    return out


#: Segments with fewer labelled rows than this get the overall rate.
MIN_SEGMENT_ROWS = 30


def base_rates(store: Any, rows: pd.DataFrame, *, segment: str | None = "segment") -> dict[str, Any]:
    """The observed churn rate of labelled ``rows`` (``customer_id``, ``churned``), overall and by segment.

    ``segment`` is a column of the customers table (none when it lacks it); a segment with fewer than
    :data:`MIN_SEGMENT_ROWS` rows keeps the overall rate. JSON-safe, stored in the model's metadata.

    Examples
    --------
    >>> import pandas as pd
    >>> base_rates({}, pd.DataFrame({"customer_id": [1, 2, 3, 4], "churned": [1, 0, 0, 0]}))
    {'segment': None, 'overall': 0.25, 'by_segment': {}, 'n': 4}
    """
    by = segment if "customers" in store and segment in store["customers"].columns else None
    churned = rows["churned"].astype(float)
    out: dict[str, Any] = {"segment": by, "overall": float(churned.mean()), "by_segment": {}, "n": len(rows)}
    if by is not None:
        groups = churned.groupby(_segments(store, rows["customer_id"], by).to_numpy()).agg(["mean", "size"])
        big = groups[groups["size"] >= MIN_SEGMENT_ROWS]
        out["by_segment"] = {str(k): float(v) for k, v in big["mean"].items()}
    return out


def historical_rate(store: Any, ids: pd.Series, rates: Mapping[str, Any]) -> np.ndarray:
    """Each customer's segment rate from :func:`base_rates` (the overall rate for other segments)."""
    by = rates.get("segment")
    if by is None or "customers" not in store or by not in store["customers"].columns:
        return np.full(len(ids), float(rates["overall"]))
    groups = _segments(store, ids, by)
    return groups.map(rates["by_segment"]).astype(float).fillna(float(rates["overall"])).to_numpy()


def _segments(store: Any, ids: pd.Series, by: str) -> pd.Series:
    lookup = store["customers"].select("customer_id", by).to_pandas().set_index("customer_id")[by]
    return ids.map(lookup).astype("str")


def _recency(store, ids: pd.Series, cutoff: pd.Timestamp) -> np.ndarray:
    import polars as pl

    times = []
    for table, column in (("orders", "ordered_at"), ("activity", "occurred_at")):
        if table in store:
            times.append(store[table].select("customer_id", pl.col(column).alias("t")))
    if not times:
        return np.zeros(len(ids))
    last = (
        pl.concat(times)
        .filter(pl.col("t") <= cutoff.to_pydatetime())
        .group_by("customer_id")
        .agg(pl.col("t").max())
        .to_pandas()
        .set_index("customer_id")["t"]
    )
    days = (cutoff - ids.map(last)).dt.total_seconds().to_numpy() / 86_400.0
    return np.where(np.isnan(days), np.nanmax(days, initial=0.0) + 1.0, days)


def _bgnbd(store, ids: pd.Series, cutoff: pd.Timestamp, horizon: int) -> np.ndarray:
    from churnrisk.bgnbd import BGNBD, rfm_summary

    summary = rfm_summary(store["orders"], cutoff.to_pydatetime())
    model = BGNBD().fit(summary["frequency"], summary["recency"], summary["T"])
    quiet = pd.Series(
        model.prob_no_purchase(horizon / 7.0, summary["frequency"], summary["recency"], summary["T"]),
        index=summary.index,
    )
    return ids.map(quiet).fillna(1.0).to_numpy()


def plain_metrics(metrics: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): (int(v) if k == "n" else None if pd.isna(v) else float(v)) for k, v in metrics.items()}
