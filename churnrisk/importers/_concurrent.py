"""Concurrent subscriptions of one customer cut into the contract's non-overlapping spells of constant MRR
(the rules: see the package docstring)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: A spell that ends with nothing after it takes the reason of a churn event at most this far away.
CHURN_MATCH_DAYS = 31


def split_concurrent_subscriptions(
    subscriptions: pd.DataFrame, *, churn_events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Cut possibly overlapping subscriptions into non-overlapping spells of constant total MRR.

    Parameters
    ----------
    subscriptions : DataFrame
        ``customer_id``, ``started_at``, ``ended_at`` (NaT = still active), ``mrr`` and ``plan``;
        one customer may hold several subscriptions at once.
    churn_events : DataFrame, optional
        ``customer_id``, ``churned_at``, ``reason``: a spell after which the customer holds nothing
        takes the reason of the nearest event within ``CHURN_MATCH_DAYS`` days of its end.

    Returns
    -------
    DataFrame
        One row per spell: ``customer_id``, ``subscription_id`` (``<customer_id>/<n>``),
        ``started_at``, ``ended_at``, ``mrr`` (summed over the active subscriptions), ``plan`` (that
        of the largest one), ``end_reason`` and ``n_subscriptions``.

    Examples
    --------
    >>> subs = pd.DataFrame({
    ...     "customer_id": ["a", "a"], "plan": ["Basic", "Pro"], "mrr": [10.0, 30.0],
    ...     "started_at": pd.to_datetime(["2024-01-01", "2024-02-01"]),
    ...     "ended_at": pd.to_datetime(["2024-03-01", None])})
    >>> split_concurrent_subscriptions(subs)[["started_at", "ended_at", "mrr", "plan", "end_reason"]]
      started_at   ended_at   mrr   plan end_reason
    0 2024-01-01 2024-02-01  10.0  Basic    upgrade
    1 2024-02-01 2024-03-01  40.0    Pro  downgrade
    2 2024-03-01        NaT  30.0    Pro        NaN
    """
    pieces = _spell_pieces(subscriptions)
    prev = pieces.groupby("customer_id", sort=False)[["until", "mrr", "plan"]].shift(1)
    new = (prev["until"] != pieces["at"]) | (prev["mrr"] != pieces["mrr"]) | (prev["plan"] != pieces["plan"])
    spell = new.astype("int64").groupby(pieces["customer_id"]).cumsum()
    spells = (
        pieces.groupby(["customer_id", spell], sort=False)
        .agg(
            started_at=("at", "first"),
            ended_at=("until", "last"),
            mrr=("mrr", "first"),
            plan=("plan", "first"),
            n_subscriptions=("n", "max"),
        )
        .reset_index(level=0)
        .reset_index(drop=True)
    )
    spells["plan"] = spells["plan"].replace("", pd.NA)
    spells["end_reason"] = _end_reasons(spells, churn_events)
    number = spells.groupby("customer_id").cumcount() + 1
    spells.insert(1, "subscription_id", spells["customer_id"].astype("str") + "/" + number.astype("str"))
    return spells[
        [
            "customer_id",
            "subscription_id",
            "started_at",
            "ended_at",
            "mrr",
            "plan",
            "end_reason",
            "n_subscriptions",
        ]
    ]


def _spell_pieces(subs: pd.DataFrame) -> pd.DataFrame:
    """The intervals between an account's successive start/end dates, with what is active in each."""
    subs = subs[["customer_id", "started_at", "ended_at", "mrr", "plan"]].assign(
        plan=lambda f: f["plan"].astype("str").fillna("")
    )
    points = (
        pd.concat(
            [
                subs[["customer_id", "started_at"]].set_axis(["customer_id", "at"], axis=1),
                subs[["customer_id", "ended_at"]].set_axis(["customer_id", "at"], axis=1).dropna(),
            ]
        )
        .drop_duplicates()
        .sort_values(["customer_id", "at"])
    )
    points["until"] = points.groupby("customer_id")["at"].shift(-1)
    pairs = points.merge(subs, on="customer_id")
    active = pairs[
        (pairs["started_at"] <= pairs["at"]) & (pairs["ended_at"].isna() | (pairs["ended_at"] > pairs["at"]))
    ]
    # the plan of a piece is that of its largest subscription (the latest one on a tie)
    active = active.sort_values(
        ["customer_id", "at", "mrr", "started_at"], ascending=[True, True, False, False]
    )
    return (
        active.groupby(["customer_id", "at"], sort=True)
        .agg(until=("until", "first"), mrr=("mrr", "sum"), plan=("plan", "first"), n=("mrr", "size"))
        .reset_index()
    )


def _end_reasons(spells: pd.DataFrame, churn_events: pd.DataFrame | None) -> pd.Series:
    following = spells.groupby("customer_id", sort=False)[["started_at", "mrr"]].shift(-1)
    direct = following["started_at"] == spells["ended_at"]
    change = np.select(
        [following["mrr"] > spells["mrr"], following["mrr"] < spells["mrr"]],
        ["upgrade", "downgrade"],
        default="plan change",
    )
    lapsed = spells["ended_at"].notna() & ~direct
    churned = _nearest_churn_reason(spells[lapsed], churn_events)
    reasons = pd.Series(pd.NA, index=spells.index, dtype="str")
    reasons[direct] = pd.Series(change, index=spells.index)[direct]
    reasons[lapsed] = churned
    return reasons


def _nearest_churn_reason(ended: pd.DataFrame, churn_events: pd.DataFrame | None) -> pd.Series:
    fallback = pd.Series("ended", index=ended.index, dtype="str")
    if churn_events is None or ended.empty or "reason" not in churn_events.columns:
        return fallback
    left = ended[["customer_id", "ended_at"]].reset_index().sort_values("ended_at")
    right = churn_events[["customer_id", "churned_at", "reason"]].dropna().sort_values("churned_at")
    matched = pd.merge_asof(
        left,
        right,
        left_on="ended_at",
        right_on="churned_at",
        by="customer_id",
        direction="nearest",
        tolerance=pd.Timedelta(days=CHURN_MATCH_DAYS),
    ).set_index("index")["reason"]
    return matched.reindex(ended.index).fillna(fallback).astype("str")
