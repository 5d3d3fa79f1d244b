"""Scored customer lists: who is at risk, how much revenue is at stake, and why (DESIGN §6).

One row per eligible customer, sorted by priority: highest churn probability first, then the larger
revenue at risk, then the customer id (so the order never depends on the input's row order).

Revenue at risk is **per year**, for order and subscription data alike: churn probability × the
customer's yearly revenue, the sum of their orders in the 365 days up to the as-of date **plus**
12 × the MRR of the subscriptions open at the as-of date (a subscriber's next year of billing).
Snapshot tables have no revenue unless a ``revenue_col`` (yearly revenue) is named.

Risk tiers cut the calibrated probability: by default ``high`` ≥ 0.5, ``medium`` ≥ 0.2, else
``low`` (``thresholds=(medium, high)``). A contact list sized to the team marks the first ``top``
customers (or the first ``top_percent`` %) of the priority order in a boolean ``contact`` column;
:func:`contact_summary` says how many churners and how much revenue at risk it is expected to hold.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnrisk._deprecation import renamed
from churnrisk.errors import ChurnriskError
from churnrisk.model import ChurnModel, EncodedRows, prepare_features
from churnrisk.reasons import top_reasons
from churnrisk.training import eligible_customers, repeat_buying, uses_repeat_buying

__all__ = [
    "DEFAULT_THRESHOLDS",
    "SCORE_COLUMNS",
    "TIERS",
    "contact_summary",
    "eligible_features",
    "mark_contacts",
    "risk_tiers",
    "score_data",
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


#: Churn probabilities from which a customer is ``medium`` and ``high`` risk.
DEFAULT_THRESHOLDS = (0.2, 0.5)
#: Customers scored at a time (probabilities and reasons): bounds the memory of scoring.
SCORING_BLOCK = 200_000
#: When scoring a store: the features are computed for the customers of about this many events at a
#: time, and scored :data:`STORE_BLOCK` customers at a time at most. Both bound the memory, whatever
#: the population (the store itself is the rest of it).
STORE_BLOCK_EVENTS = 150_000
STORE_BLOCK = 15_000


def risk_tiers(proba: Any, *, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Any:
    """``low`` / ``medium`` / ``high`` (ordered) from calibrated probabilities.

    ``thresholds`` are ``(medium, high)``: the probabilities from which a customer is medium and
    high risk, with ``0 <= medium <= high <= 1``.

    Examples
    --------
    >>> list(risk_tiers([0.1, 0.2, 0.7]))
    ['low', 'medium', 'high']
    >>> list(risk_tiers([0.1, 0.2, 0.7], thresholds=(0.1, 0.8)))
    ['medium', 'medium', 'medium']
    """
    _check_thresholds(thresholds)
    p = np.asarray(proba, dtype=float)
    codes = (p >= thresholds[0]).astype(int) + (p >= thresholds[1]).astype(int)
    return pd.Categorical.from_codes(codes, categories=pd.Index(TIERS), ordered=True)


def _check_thresholds(thresholds: Sequence[float]) -> None:
    values = list(thresholds) if isinstance(thresholds, Sequence) else []
    if not (
        len(values) == 2
        and all(isinstance(v, int | float) and 0 <= v <= 1 for v in values)
        and values[0] <= values[1]
    ):
        raise ChurnriskError(
            "The 'thresholds' of the risk tiers must be two probabilities (medium, high) with "
            f"0 <= medium <= high <= 1. Got {thresholds!r} instead. Suggestion: thresholds=(0.2, 0.5)."
        )


@renamed(as_of="cutoff")
def score_features(
    model: ChurnModel,
    features: pd.DataFrame,
    *,
    cutoff: Any = None,
    revenue: pd.Series | None = None,
    segments: pd.DataFrame | None = None,
    n_reasons: int = 3,
    keep_families: bool = False,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    top: int | None = None,
    top_percent: float | None = None,
    block: int = SCORING_BLOCK,
) -> pd.DataFrame:
    """Score a feature frame indexed by customer id: probability, tier, revenue at risk, reasons.

    ``revenue`` is each customer's yearly revenue (``revenue_at_risk`` is then per year);
    ``thresholds``, ``top`` and ``top_percent`` as in :func:`risk_tiers` and :func:`mark_contacts`.
    Probabilities and reasons are computed ``block`` customers at a time, so their working memory
    (the encoded rows and every what-if) does not grow with the population; the result is the same
    for any block size.
    """
    blocks = (features.iloc[start : start + block] for start in range(0, max(len(features), 1), block))
    return _scored(
        model,
        blocks,
        cutoff=cutoff,
        revenue=revenue,
        segments=segments,
        n_reasons=n_reasons,
        keep_families=keep_families,
        thresholds=thresholds,
        top=top,
        top_percent=top_percent,
    )


def _scored(
    model: ChurnModel,
    blocks: Iterable[pd.DataFrame],
    *,
    top: int | None,
    top_percent: float | None,
    thresholds: Sequence[float],
    **options: Any,
) -> pd.DataFrame:
    """The scores of every block of customers' features, in one priority-sorted list."""
    _check_thresholds(thresholds)
    scores = pd.concat(
        [_block_scores(model, b, thresholds=thresholds, **options) for b in blocks], ignore_index=True
    )
    return mark_contacts(_sorted(scores), top=top, top_percent=top_percent)


def _block_scores(
    model: ChurnModel,
    features: pd.DataFrame,
    *,
    cutoff: Any,
    revenue: pd.Series | None,
    segments: pd.DataFrame | None,
    n_reasons: int,
    keep_families: bool,
    thresholds: Sequence[float],
) -> pd.DataFrame:
    """One block's scores, in the block's order."""
    proba, reasons = _proba_and_reasons(model, features, n_reasons)
    recent = (
        np.zeros(len(features)) if revenue is None else revenue.reindex(features.index).fillna(0).to_numpy()
    )
    out = pd.DataFrame(
        {
            "customer_id": features.index.to_numpy(),
            "churn_probability": proba,
            "risk_tier": risk_tiers(proba, thresholds=thresholds),
            "revenue_at_risk": proba * recent if revenue is not None else np.nan,
            "reasons": reasons["reasons"].to_numpy(),
            "as_of": pd.Timestamp(cutoff) if cutoff is not None else pd.NaT,
            "model": model.name,
        }
    )
    if segments is not None:
        for column in segments.columns:
            out[column] = segments[column].reindex(features.index).to_numpy()
    if model.metadata.get("horizons"):  # a several-horizon model: p_churn_<h>d, expected lifetime
        from churnrisk.horizons import churn_curves

        for curve, values in churn_curves(model, features).items():
            out[curve] = values.to_numpy()
    if keep_families:
        out["reason_families"] = reasons["reason_families"].to_numpy()
    return out


def _proba_and_reasons(
    model: ChurnModel, features: pd.DataFrame, n_reasons: int
) -> tuple[np.ndarray, pd.DataFrame]:
    prepared = prepare_features(features, model.schema)
    # encoded once for the probabilities and every what-if of the reasons (when the model allows)
    encoded = EncodedRows.of(model, prepared)
    proba = encoded.proba() if encoded is not None else model.predict_prepared(prepared)
    reasons = top_reasons(model, prepared, n_reasons=n_reasons, proba=proba, raw=features, encoded=encoded)
    return proba, reasons


def _sorted(scores: pd.DataFrame) -> pd.DataFrame:
    keys = scores.assign(_rev=scores["revenue_at_risk"].fillna(0))
    order = keys.sort_values(
        ["churn_probability", "_rev", "customer_id"], ascending=[False, False, True], kind="stable"
    ).index
    return scores.loc[order].reset_index(drop=True)


def mark_contacts(
    scores: pd.DataFrame, *, top: int | None = None, top_percent: float | None = None
) -> pd.DataFrame:
    """The contact list a team can call: ``contact`` is true for the first ``top`` customers of
    the priority-sorted ``scores``, or for the first ``top_percent`` % of them (rounded up).

    Neither given: ``scores`` unchanged (no ``contact`` column).

    Examples
    --------
    >>> scores = pd.DataFrame({"customer_id": [7, 3, 5, 1], "churn_probability": [0.9, 0.6, 0.3, 0.1]})
    >>> mark_contacts(scores, top_percent=50)["contact"].tolist()
    [True, True, False, False]
    """
    if top is None and top_percent is None:
        return scores
    return scores.assign(contact=np.arange(len(scores)) < _list_size(len(scores), top, top_percent))


def _list_size(n: int, top: int | None, top_percent: float | None) -> int:
    if top_percent is None and isinstance(top, int | np.integer) and top >= 1:
        return int(top)
    if top is None and isinstance(top_percent, int | float) and 0 < top_percent <= 100:
        return math.ceil(n * top_percent / 100 - 1e-9)  # 10 % of 30 is 3, not 4 by a rounding error
    raise ChurnriskError(
        "The contact list is sized by 'top' (a positive number of customers) or 'top_percent' (a "
        f"percentage in (0, 100]), one of them. Got top={top!r}, top_percent={top_percent!r} instead."
    )


def contact_summary(scores: pd.DataFrame) -> dict[str, float]:
    """What the contact list is expected to hold: customers, churners (the sum of their churn
    probabilities) and revenue at risk per year, and the shares of all expected churners and of
    all revenue at risk that they are.

    Examples
    --------
    >>> scores = pd.DataFrame(
    ...     {"churn_probability": [0.8, 0.4, 0.2], "revenue_at_risk": [80.0, 4.0, 16.0],
    ...      "contact": [True, True, False]}
    ... )
    >>> {k: round(v, 2) for k, v in contact_summary(scores).items()}  # doctest: +NORMALIZE_WHITESPACE
    {'customers': 2, 'expected_churners': 1.2, 'churner_share': 0.86,
     'revenue_at_risk': 84.0, 'revenue_share': 0.84}
    """
    if "contact" not in scores.columns:
        raise ChurnriskError(
            "the scores have no 'contact' column. "
            "Suggestion: mark the list with mark_contacts(scores, top=N)."
        )
    chosen = scores[scores["contact"].astype(bool)]
    # no revenue known (a snapshot table without a revenue column): NaN, not 0
    churners, revenue = chosen["churn_probability"].sum(), chosen["revenue_at_risk"].sum(min_count=1)
    all_churners = scores["churn_probability"].sum()
    all_revenue = scores["revenue_at_risk"].sum(min_count=1)
    return {
        "customers": len(chosen),
        "expected_churners": float(churners),
        "churner_share": float(churners / all_churners) if all_churners else float("nan"),
        "revenue_at_risk": float(revenue),
        "revenue_share": float(revenue / all_revenue) if all_revenue else float("nan"),
    }


@renamed(as_of="cutoff")
def score_store(
    model: ChurnModel,
    store: Any,
    *,
    cutoff: Any = None,
    n_reasons: int = 3,
    keep_families: bool = False,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    top: int | None = None,
    top_percent: float | None = None,
    revenue: pd.Series | str = "recent",
    block: int = SCORING_BLOCK,
) -> pd.DataFrame:
    """Score every customer eligible at ``cutoff`` (default: the last instant in the data).

    ``thresholds`` cut the risk tiers; ``top`` / ``top_percent`` mark a contact list
    (:func:`mark_contacts`). ``revenue_at_risk`` is per year: the churn probability times
    ``revenue``, which is ``"recent"`` (last year's, see the module docstring), ``"expected"``
    (the expected revenue of the next 365 days from :func:`churnrisk.value.predict_value`:
    BG/NBD + Gamma-Gamma or the feature model for order data, MRR x expected active months for
    subscriptions), or a Series of yearly revenue indexed by customer id.

    Memory is bounded whatever the population: the eligible customers' features are computed from
    their own events, about :data:`STORE_BLOCK_EVENTS` events at a time, and scored
    :data:`STORE_BLOCK` (or ``block``, if fewer) customers at a time; the list is the same for any
    block size.
    """
    from churnrisk.rates._periods import data_span

    if model.metadata.get("kind") != "events":
        raise ChurnriskError(
            "this model was trained on a snapshot table, not an event store. "
            "Suggestion: use `churnrisk score MODEL TABLE.csv` with a table of the same shape."
        )
    cutoff = pd.Timestamp(cutoff if cutoff is not None else data_span(store)[1])
    return _scored(
        model,
        _joined(
            _eligible_blocks(model, store, cutoff, block=_store_block(store, block)), min(block, STORE_BLOCK)
        ),
        cutoff=cutoff,
        revenue=_yearly_revenue(store, cutoff, revenue, model.metadata["definition"]),
        segments=_segments(store),
        n_reasons=n_reasons,
        keep_families=keep_families,
        thresholds=thresholds,
        top=top,
        top_percent=top_percent,
    )


def _store_block(store: Any, block: int) -> int:
    """Customers per block when scoring a store: at most ``block``, and about
    :data:`STORE_BLOCK_EVENTS` of their events (at the store's events per customer)."""
    events = sum(table.height for name, table in store.tables.items() if name != "customers")
    per_customer = events / max(store["customers"].height, 1)
    return max(1, min(block, int(STORE_BLOCK_EVENTS / max(per_customer, 1.0))))


def _joined(frames: Iterable[pd.DataFrame], size: int) -> Iterator[pd.DataFrame]:
    """Consecutive frames joined into blocks of ``size`` rows or more (the last may be smaller):
    the features are computed in small blocks, the trees run over large ones."""
    held: list[pd.DataFrame] = []
    for frame in frames:
        held.append(frame)
        if sum(map(len, held)) >= size:
            yield pd.concat(held) if len(held) > 1 else held[0]
            held = []
    if held:
        yield pd.concat(held) if len(held) > 1 else held[0]


def _yearly_revenue(store: Any, cutoff: pd.Timestamp, revenue: pd.Series | str, definition: str) -> pd.Series:
    """The revenue that ``revenue_at_risk`` weighs: given, last year's, or the next year's expected."""
    if isinstance(revenue, pd.Series):
        return revenue
    if revenue == "recent":
        return recent_revenue(store, cutoff)
    if revenue == "expected":
        from churnrisk.value import predict_value

        value = predict_value(store, horizon=365, cutoff=cutoff, definition=definition)
        return value.table.set_index("customer_id")["expected_revenue"]
    raise ChurnriskError(
        f"The 'revenue' parameter must be 'recent', 'expected' or a Series. Got {revenue!r} instead."
    )


def eligible_features(model: ChurnModel, store: Any, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The features of the customers eligible at ``cutoff``, as the model scores them."""
    (features,) = _eligible_blocks(model, store, cutoff, block=None)
    return features


def _eligible_blocks(
    model: ChurnModel, store: Any, cutoff: pd.Timestamp, *, block: int | None
) -> Iterator[pd.DataFrame]:
    """The features of the customers eligible at ``cutoff``, ``block`` customers at a time in id
    order (``None``: all at once). Only their events are read, one block at a time."""
    from churnrisk.features import build_features

    meta = model.metadata
    windows = {"windows": tuple(meta["windows"])} if meta.get("windows") else {}
    ids = eligible_customers(
        store,
        cutoff,
        definition=meta["definition"],
        lookback=meta.get("lookback"),
        horizon=meta["horizon"],
        reactivation_gap_days=meta.get("reactivation_gap_days") or 0,
    )
    extra = None
    if uses_repeat_buying(store, meta["definition"]):  # fitted on every customer's orders, once
        extra = repeat_buying(store, ids.to_series(), cutoff, horizon=meta["horizon"])
    size = max(block or len(ids), 1)
    for start in range(0, max(len(ids), 1), size):
        chosen = ids[start : start + size]
        features = build_features(store, cutoff, customers=chosen, **windows)
        features = features.loc[features.index.isin(chosen)].sort_index()
        if extra is not None:
            features = pd.concat([features, extra.reindex(features.index)], axis=1)
        yield features


def recent_revenue(store: Any, cutoff: pd.Timestamp) -> pd.Series:
    """Yearly revenue per customer: orders of the last 365 days plus 12 × the MRR open at ``cutoff``."""
    import polars as pl

    t = cutoff.to_pydatetime()
    parts = []
    if "orders" in store:
        start = (cutoff - pd.Timedelta(days=365)).to_pydatetime()
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


def score_data(
    model: ChurnModel,
    data: str | os.PathLike[str],
    *,
    cutoff: Any = None,
    config: Any = None,
    encoding: str | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Score what ``churnrisk score`` is given: an event store (a folder or a database URL) with a
    model trained on events (:func:`score_store`), a table file with a snapshot model
    (:func:`score_table`); ``options`` are theirs.
    """
    if model.metadata.get("kind") == "snapshot":
        if not Path(data).is_file():
            raise ChurnriskError(f"a snapshot model scores a table file; {data} is not a file.")
        if options.pop("revenue", "recent") != "recent":
            raise ChurnriskError("--revenue expected needs an event store; a snapshot table has no history.")
        from churnrisk.snapshot import read_snapshot

        return score_table(model, read_snapshot(data), **options)
    from churnrisk.features import feature_inputs
    from churnrisk.validation import load_store

    # no as-of check here: scoring at a past cutoff on the full data is fine, the features only read
    # events up to the cutoff (``validate --as-of`` keeps the check). Only the columns the features
    # read are loaded (the eligibility and the revenue read no others): the store is most of the memory.
    store = load_store(data, config=config, encoding=encoding, columns=feature_inputs(), until=cutoff)
    return score_store(model, store, cutoff=cutoff, **options)


@renamed(id_column="customer_col")
def score_table(
    model: ChurnModel,
    table: pd.DataFrame,
    *,
    customer_col: str | None = None,
    revenue_col: str | None = None,
    n_reasons: int = 3,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    top: int | None = None,
    top_percent: float | None = None,
) -> pd.DataFrame:
    """Score a one-row-per-customer table with a snapshot model (same columns as its training table).

    ``revenue_col`` names a column of yearly revenue; the other options as in :func:`score_store`.
    """
    from churnrisk.snapshot import snapshot_ids

    customer_col = customer_col or model.metadata.get("id_column")
    if customer_col is not None and customer_col not in table.columns:
        raise ChurnriskError(f"the table lacks the id column {customer_col!r}. Suggestion: pass --id.")
    features = table.set_axis(snapshot_ids(table, customer_col), axis=0)
    revenue = None
    if revenue_col is not None:
        revenue = pd.to_numeric(features[revenue_col], errors="coerce")
    return score_features(
        model,
        features,
        revenue=revenue,
        n_reasons=n_reasons,
        thresholds=thresholds,
        top=top,
        top_percent=top_percent,
    )


def summarize(scores: pd.DataFrame, *, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Customers, mean probability, expected churners (the sum of the probabilities) and revenue at
    risk per year by tier (and by segment when present)."""
    by = list(by) if by is not None else ["risk_tier", *[c for c in SEGMENT_COLUMNS if c in scores.columns]]
    grouped = scores.groupby(by, observed=True, dropna=False)
    table = grouped.agg(
        customers=("customer_id", "size"),
        mean_probability=("churn_probability", "mean"),
        expected_churners=("churn_probability", "sum"),
        revenue_at_risk=("revenue_at_risk", "sum"),
    ).reset_index()
    return table.sort_values(by, ascending=[False] + [True] * (len(by) - 1), kind="stable").reset_index(
        drop=True
    )
