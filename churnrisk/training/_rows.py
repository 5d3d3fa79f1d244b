"""The rows a model learns from: the eligible customers at each cutoff, labelled, with the BG/NBD columns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from churnrisk.definition import ChurnDefinition, recorded_options
from churnrisk.errors import ChurnriskError
from churnrisk.features import DEFAULT_WINDOWS
from churnrisk.labels import eligible_at
from churnrisk.training._sets import build_training_set
from churnrisk.training._storage import read_training_set


def training_rows(
    store: Any,
    cutoffs: Sequence[Any],
    *,
    definition: str,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    reactivation_gap_days: float = 0,
    windows: Sequence[int] | None = None,
    training_set: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``customer_id, cutoff, <features>, churned`` for every eligible customer at every cutoff.

    With ``training_set`` (a frame of :func:`churnrisk.training.build_training_set`, built with
    these options) its rows at ``cutoffs`` are used instead of being computed; else
    :func:`churnrisk.training.build_training_set` computes them. Rows whose outcome is not known
    yet are dropped.
    """
    rows: Any
    if training_set is not None:
        rows = _at_cutoffs(training_set, cutoffs)
    else:
        rows = build_training_set(
            store,
            cutoffs,
            definition=definition,  # type: ignore[arg-type]  # checked by resolve_definition
            horizon=horizon,
            lookback=lookback,
            lead_time=lead_time,
            reactivation_gap_days=reactivation_gap_days,
            windows=DEFAULT_WINDOWS if windows is None else tuple(windows),
        )
    # censored rows (the horizon runs past the data) have no label yet: nothing to learn or test on
    rows = rows[rows["churned"].notna()].reset_index(drop=True)
    rows["churned"] = rows["churned"].astype(int)
    if not uses_repeat_buying(store, definition):
        return rows
    extra = [
        repeat_buying(store, part["customer_id"], pd.Timestamp(c), horizon=horizon).set_axis(part.index)
        for c, part in rows.groupby("cutoff", sort=True)
    ]
    return pd.concat([rows, pd.concat(extra)], axis=1)


def _at_cutoffs(training_set: pd.DataFrame, cutoffs: Sequence[Any]) -> pd.DataFrame:
    wanted = pd.to_datetime(list(cutoffs))
    missing = wanted.difference(pd.to_datetime(training_set["cutoff"].unique()))
    if len(missing):
        raise ChurnriskError(
            f"the training set has no rows at the cutoff(s) {', '.join(str(c.date()) for c in missing)}. "
            "Suggestion: append them to it (churnrisk training-set ... --append), or leave the cutoffs out."
        )
    return training_set[training_set["cutoff"].isin(wanted)].reset_index(drop=True)


#: Extra order-data features: the BG/NBD model's view of each customer at the cutoff.
REPEAT_BUYING = ("purchases_bgnbd_quiet", "purchases_bgnbd_alive")


def uses_repeat_buying(store: Any, definition: str) -> bool:
    """Order data under the inactivity definition get the BG/NBD features."""
    return definition == "inactivity" and "orders" in store


def with_repeat_buying(
    store: Any, features: pd.DataFrame, cutoff: pd.Timestamp, *, horizon: int
) -> pd.DataFrame:
    """``features`` (indexed by customer) with the :func:`repeat_buying` columns beside them."""
    extra = repeat_buying(store, features.index.to_series(), cutoff, horizon=horizon)
    return pd.concat([features, extra.set_axis(features.index)], axis=1)  # one concatenation


def repeat_buying(store: Any, ids: pd.Series, cutoff: pd.Timestamp, *, horizon: int) -> pd.DataFrame:
    """BG/NBD P(no purchase within the horizon) and P(alive) of ``ids``, fitted on orders up to ``cutoff``.

    The model is refitted at every cutoff on the history known then, so the features stay point in
    time. BG/NBD is a strong baseline on order data; as features it lets the model start from it.
    """
    from churnrisk.bgnbd import quiet_and_alive, rfm_summary  # scipy: loaded when a model needs it

    summary = rfm_summary(store["orders"], cutoff.to_pydatetime())
    quiet, alive = quiet_and_alive(summary, horizon_days=horizon)  # as churnrisk.spark computes them
    values = {
        name: ids.map(p).to_numpy(dtype=float) for name, p in zip(REPEAT_BUYING, (quiet, alive), strict=True)
    }
    return pd.DataFrame(values, index=ids.index)


def eligible_customers(
    store: Any,
    cutoff: pd.Timestamp,
    *,
    definition: str,
    lookback: int | None,
    horizon: int,
    reactivation_gap_days: float = 0,
) -> pd.Index:
    """Customers at risk at ``cutoff``: an open subscription (spells of the definition's grace
    period), or (inactivity) an order in the look-back; the labels' first eligibility step."""
    churn = ChurnDefinition(definition, horizon, lookback, reactivation_gap_days=reactivation_gap_days)
    ids = eligible_at(store, cutoff.to_pydatetime(), churn)
    return pd.Index(ids.to_list(), name="customer_id")


def _stored_rows(
    training_set: pd.DataFrame | str | os.PathLike[str] | None,
    cutoffs: Sequence[Any] | None,
    given: dict[str, Any],
) -> tuple[pd.DataFrame | None, Sequence[Any], dict[str, Any]]:
    """The stored training set (if any), the cutoffs and the label options to train with."""
    if training_set is None:
        if cutoffs is None or given["horizon"] is None:
            raise ChurnriskError(
                "train_model needs cutoffs and a horizon, or a training_set. "
                "Suggestion: train_model(store, cutoffs=[...], horizon=90)."
            )
        return None, cutoffs, given
    rows = training_set if isinstance(training_set, pd.DataFrame) else read_training_set(training_set)
    recorded = {k: v for k, v in recorded_options(rows.attrs).items() if k in given}  # none from a CSV file
    plain = {k: list(v) if k == "windows" and v is not None else v for k, v in given.items()}
    different = {k: (recorded[k], v) for k, v in plain.items() if v is not None and recorded.get(k, v) != v}
    if different:
        detail = ", ".join(f"{k}: {a!r} there, {b!r} given" for k, (a, b) in different.items())
        raise ChurnriskError(
            f"the training set was built with other options ({detail}). "
            "Suggestion: leave those options out to use the training set's, or rebuild it."
        )
    options = {k: plain[k] if plain[k] is not None else recorded.get(k) for k in given}
    labelled = sorted(pd.to_datetime(rows.loc[rows["churned"].notna(), "cutoff"].unique()))
    return rows, labelled if cutoffs is None else cutoffs, options
