"""Scored customer lists: who is at risk, how much revenue is at stake, and why (DESIGN §6).

One row per eligible customer, sorted by priority: highest churn probability first, then the larger
revenue at risk, then the customer id (so the order never depends on the input's row order).

Revenue at risk = churn probability × the customer's recent revenue, where recent revenue is the
sum of their orders in the 365 days up to the as-of date **plus** 12 × the MRR of the subscriptions
open at the as-of date (a subscriber's next year of billing). Snapshot tables have no revenue unless
a ``revenue_col`` is named.

Risk tiers are fixed on the calibrated probability: ``high`` ≥ 0.5, ``medium`` ≥ 0.2, else ``low``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from churnrisk.errors import ChurnriskError
from churnrisk.model import (
    ChurnModel,
    EncodedRows,
    eligible_customers,
    prepare_features,
    uses_repeat_buying,
    with_repeat_buying,
)
from churnrisk.reasons import top_reasons

__all__ = [
    "SCORE_COLUMNS",
    "TIERS",
    "risk_tiers",
    "score_features",
    "score_store",
    "score_table",
    "summarize",
]

TIERS = ("low", "medium", "high")
SCORE_COLUMNS = (
    "customer_id",
    "churn_probability",
    "risk_tier",
    "revenue_at_risk",
    "reasons",
    "as_of",
    "model",
)
SEGMENT_COLUMNS = ("segment",)


def risk_tiers(proba: Any, *, thresholds: tuple[float, float] = (0.2, 0.5)) -> Any:
    """``low`` / ``medium`` / ``high`` (ordered) from calibrated probabilities.

    Examples
    --------
    >>> list(risk_tiers([0.1, 0.2, 0.7]))
    ['low', 'medium', 'high']
    """
    p = np.asarray(proba, dtype=float)
    codes = (p >= thresholds[0]).astype(int) + (p >= thresholds[1]).astype(int)
    return pd.Categorical.from_codes(codes, categories=pd.Index(TIERS), ordered=True)


def score_features(
    model: ChurnModel,
    features: pd.DataFrame,
    *,
    as_of: Any = None,
    revenue: pd.Series | None = None,
    segments: pd.DataFrame | None = None,
    n_reasons: int = 3,
    keep_families: bool = False,
) -> pd.DataFrame:
    """Score a feature frame indexed by customer id: probability, tier, revenue at risk, reasons."""
    prepared = prepare_features(features, model.schema)
    # encoded once for the probabilities and every what-if of the reasons (when the model allows)
    encoded = EncodedRows.of(model, prepared)
    proba = encoded.proba() if encoded is not None else model.predict_prepared(prepared)
    reasons = top_reasons(model, prepared, n_reasons=n_reasons, proba=proba, raw=features, encoded=encoded)
    recent = (
        np.zeros(len(features)) if revenue is None else revenue.reindex(features.index).fillna(0).to_numpy()
    )
    out = pd.DataFrame(
        {
            "customer_id": features.index.to_numpy(),
            "churn_probability": proba,
            "risk_tier": risk_tiers(proba),
            "revenue_at_risk": proba * recent if revenue is not None else np.nan,
            "reasons": reasons["reasons"].to_numpy(),
            "as_of": pd.Timestamp(as_of) if as_of is not None else pd.NaT,
            "model": model.name,
        }
    )
    if segments is not None:
        for column in segments.columns:
            out[column] = segments[column].reindex(features.index).to_numpy()
    if keep_families:
        out["reason_families"] = reasons["reason_families"].to_numpy()
    return _sorted(out)


def _sorted(scores: pd.DataFrame) -> pd.DataFrame:
    keys = scores.assign(_rev=scores["revenue_at_risk"].fillna(0))
    order = keys.sort_values(
        ["churn_probability", "_rev", "customer_id"], ascending=[False, False, True], kind="stable"
    ).index
    return scores.loc[order].reset_index(drop=True)


def score_store(
    model: ChurnModel, store: Any, *, as_of: Any = None, n_reasons: int = 3, keep_families: bool = False
) -> pd.DataFrame:
    """Score every customer eligible at ``as_of`` (default: the last instant in the data)."""
    from churnrisk.features import build_features
    from churnrisk.rates._periods import data_span

    if model.metadata.get("kind") != "events":
        raise ChurnriskError(
            "this model was trained on a snapshot table, not an event store. "
            "Suggestion: use `churnrisk score MODEL TABLE.csv` with a table of the same shape."
        )
    as_of = pd.Timestamp(as_of if as_of is not None else data_span(store)[1])
    meta = model.metadata
    windows = {"windows": tuple(meta["windows"])} if meta.get("windows") else {}
    features = build_features(store, as_of, **windows)
    ids = eligible_customers(
        store, as_of, definition=meta["definition"], lookback=meta.get("lookback"), horizon=meta["horizon"]
    )
    features = features.loc[features.index.isin(ids)].sort_index()
    if uses_repeat_buying(store, meta["definition"]):
        features = with_repeat_buying(store, features, as_of, horizon=meta["horizon"])
    return score_features(
        model,
        features,
        as_of=as_of,
        revenue=recent_revenue(store, as_of),
        segments=_segments(store),
        n_reasons=n_reasons,
        keep_families=keep_families,
    )


def recent_revenue(store: Any, as_of: pd.Timestamp) -> pd.Series:
    """Orders of the last 365 days plus 12 × the MRR open at ``as_of``, per customer."""
    import polars as pl

    t = as_of.to_pydatetime()
    parts = []
    if "orders" in store:
        start = (as_of - pd.Timedelta(days=365)).to_pydatetime()
        orders = store["orders"].filter((pl.col("ordered_at") > start) & (pl.col("ordered_at") <= t))
        parts.append(orders.select("customer_id", pl.col("amount").alias("revenue")))
    if "subscriptions" in store:
        subs = store["subscriptions"]
        open_ = (pl.col("started_at") <= t) & (pl.col("ended_at").is_null() | (pl.col("ended_at") > t))
        parts.append(subs.filter(open_).select("customer_id", (pl.col("mrr") * 12).alias("revenue")))
    if not parts:
        return pd.Series(dtype=float)
    total = pl.concat(parts).group_by("customer_id").agg(pl.col("revenue").sum()).to_pandas()
    return total.set_index("customer_id")["revenue"].astype(float)


def _segments(store: Any) -> pd.DataFrame | None:
    customers = store["customers"]
    columns = [c for c in SEGMENT_COLUMNS if c in customers.columns]
    if not columns:
        return None
    return customers.select("customer_id", *columns).to_pandas().set_index("customer_id")


def score_table(
    model: ChurnModel,
    table: pd.DataFrame,
    *,
    id_column: str | None = None,
    revenue_col: str | None = None,
    n_reasons: int = 3,
) -> pd.DataFrame:
    """Score a one-row-per-customer table with a snapshot model (same columns as its training table)."""
    from churnrisk.snapshot import snapshot_ids

    id_column = id_column or model.metadata.get("id_column")
    if id_column is not None and id_column not in table.columns:
        raise ChurnriskError(f"the table lacks the id column {id_column!r}. Suggestion: pass --id.")
    features = table.set_axis(snapshot_ids(table, id_column), axis=0)
    revenue = None
    if revenue_col is not None:
        revenue = pd.to_numeric(features[revenue_col], errors="coerce")
    return score_features(model, features, revenue=revenue, n_reasons=n_reasons)


def summarize(scores: pd.DataFrame, *, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Customers, mean probability and revenue at risk by tier (and by segment when present)."""
    by = list(by) if by is not None else ["risk_tier", *[c for c in SEGMENT_COLUMNS if c in scores.columns]]
    grouped = scores.groupby(by, observed=True, dropna=False)
    table = grouped.agg(
        customers=("customer_id", "size"),
        mean_probability=("churn_probability", "mean"),
        revenue_at_risk=("revenue_at_risk", "sum"),
    ).reset_index()
    return table.sort_values(by, ascending=[False] + [True] * (len(by) - 1), kind="stable").reset_index(
        drop=True
    )
