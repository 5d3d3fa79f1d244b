"""Why is this customer at risk: the top risk-raising factors, in words a support agent understands.

Attribution is a per-family "what if": for each signal family (purchases, support, payments, ...),
replace the customer's features of that family with the population's typical values (the training
median, or the most frequent category) and measure how much the churn probability drops. A family
counts as a reason only when putting it back to typical *lowers* the risk; the biggest drops win.

Only families that can be a reason are re-predicted: the customer's family must differ from
typical and one of its numeric values must lie on its *risky side* (beyond the training quartile
in the direction that goes with more churn, recorded at training time in ``risk_side``); the
others' effect is set to 0. The risky side must also be the side the words read as worse
(:func:`churnrisk.features._describe.worse_side`), and a change must be a real fall: many product
events, an upgrade, a long tenure or "MRR rose from 0 to 29" are never said as a risk, whatever
the data correlate them with. The sentence is said with that value (the one farthest on the
risky side), so a reason is never "0 failed payments" or a plain attribute such as the country.
For a gradient-boosting pipeline the customers are encoded (binned) once and the what-ifs of
every family are stacked into one pass over the trees and the calibrator
(:class:`churnrisk.model.EncodedRows`): a million customers take seconds of model time, not
SHAP's minutes.

The words come from :func:`churnrisk.features.explain` and always compare: with the customer's own
past ("CSAT fell from 5 to 2", "product events fell from 140 to 60 (last 90 days vs the 90
before)", "no order for 140 days, usual gap 30") or with the typical customer ("3 failed payments
in the last 30 days (typical: 0)"). Snapshot models (one column per family) say
"Contract: Month-to-month (typical: Two year)".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from churnrisk.model import ChurnModel, EncodedRows

__all__ = ["CAUSE_FAMILIES", "cause_agreement", "family_effects", "top_reasons"]

#: Which feature family carries each demo churn cause (``churnrisk.demo.CAUSES``).
CAUSE_FAMILIES: dict[str, str] = {
    "purchase_decline": "purchases",
    "complaints": "support",
    "low_satisfaction": "surveys",
    "failed_payments": "payments",
    "downgrade": "subscription",
    "fading_activity": "activity",
}

#: A family must lower the probability by at least this much when made typical to count as a reason.
MIN_EFFECT = 1e-3


def _groups(model: ChurnModel) -> dict[str, list[str]]:
    families = model.metadata.get("families") or {c: c for c in model.features}
    out: dict[str, list[str]] = {}
    for column in model.features:
        out.setdefault(families.get(column, column), []).append(column)
    return out


def family_effects(
    model: ChurnModel,
    prepared: pd.DataFrame,
    *,
    proba: np.ndarray | None = None,
    encoded: EncodedRows | None = None,
) -> pd.DataFrame:
    """Drop in churn probability when each family is set to the population's typical values.

    Returns a frame indexed like ``prepared`` with one column per family (positive = the family
    raises this customer's risk).
    """
    return _family_effects(model, prepared, proba, encoded, _risky_distance(model, prepared))


def _family_effects(
    model: ChurnModel,
    prepared: pd.DataFrame,
    proba: np.ndarray | None,
    encoded: EncodedRows | None,
    risky: dict[str, np.ndarray] | None,
) -> pd.DataFrame:
    base = model.predict_prepared(prepared) if proba is None else proba
    reference = model.metadata["reference"]
    groups = _groups(model)
    cases = {family: _candidates(prepared, columns, reference, risky) for family, columns in groups.items()}
    encoded = encoded if encoded is not None else EncodedRows.of(model, prepared)
    if encoded is not None:  # every what-if in one pass over the trees
        typical = encoded.what_ifs([(rows, groups[family]) for family, rows in cases.items()])
    else:
        typical = [_re_predicted(model, prepared, rows, groups[family]) for family, rows in cases.items()]
    effects = {}
    for (family, rows), proba_typical in zip(cases.items(), typical, strict=True):
        effect = np.zeros(len(prepared))
        effect[rows] = base[rows] - proba_typical
        effects[family] = effect
    return pd.DataFrame(effects, index=prepared.index)


def _candidates(
    prepared: pd.DataFrame,
    columns: list[str],
    reference: Mapping[str, Any],
    risky: dict[str, np.ndarray] | None,
) -> np.ndarray:
    """The rows whose what-if can matter: only customers whose family differs from typical can
    change (the others' effect is exactly 0), and only where one of its values is on its risky side."""
    candidates = _differs(prepared, columns, reference)
    if risky is not None:
        sides = [risky[c] > 0 for c in columns if c in risky]
        candidates &= np.any(sides, axis=0) if sides else False
    return np.flatnonzero(candidates)


def _re_predicted(
    model: ChurnModel, prepared: pd.DataFrame, rows: np.ndarray, columns: list[str]
) -> np.ndarray:
    """The probability of ``rows`` with ``columns`` set to typical, by the whole estimator."""
    if not rows.size:
        return np.empty(0)
    reference = model.metadata["reference"]
    typical = prepared.iloc[rows].copy()
    for column in columns:
        typical[column] = np.nan if reference.get(column) is None else reference[column]
    return model.predict_prepared(typical)


def _risky_distance(model: ChurnModel, prepared: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """Per numeric column with a known risky side, how far each row lies beyond its edge, in spreads.

    0 where the value is on the safe side, at the edge or missing. ``None`` for models trained
    before the risky sides were recorded (every family is then a candidate).
    """
    sides = model.metadata.get("risk_side")
    if not sides:
        return None
    spread = model.metadata.get("spread", {})
    out = {}
    for column, side in sides.items():
        said = _said_side(column, side) if column in prepared.columns else None
        if said is None:
            continue
        sign, edge = said
        beyond = sign * (prepared[column].to_numpy(dtype=float) - edge) / (spread.get(column) or 1.0)
        out[column] = np.where(np.isnan(beyond) | (beyond <= 0), 0.0, beyond)
    return out


def _said_side(column: str, side: Mapping[str, Any]) -> tuple[int, float] | None:
    """The risky side of a column as its words can say it: ``(sign, edge)``, or ``None``.

    The training rows give the side (``risk_side``); the words must read the same way
    (:func:`churnrisk.features._describe.worse_side`): a long tenure, many product events or an
    upgrade are never said as a risk, whatever the data say. A change must be a real fall (or rise):
    its edge is never on the other side of 0, so "unchanged" or "rose" never explain a fall.
    """
    from churnrisk.features._describe import is_change, worse_side

    sign, edge = side.get("sign"), side.get("edge")
    worse = worse_side(column)
    if not sign or edge is None or (worse and worse != sign):
        return None
    if is_change(column):
        edge = min(edge, 0.0) if sign < 0 else max(edge, 0.0)
    return int(sign), float(edge)


def _differs(prepared: pd.DataFrame, columns: list[str], reference: Mapping[str, Any]) -> np.ndarray:
    """Rows where any of ``columns`` is not the reference value (missing counts as different)."""
    out = np.zeros(len(prepared), dtype=bool)
    for column in columns:
        ref = reference.get(column)
        values = prepared[column]
        out |= (
            values.isna().to_numpy() if ref is None else ~(values == ref).fillna(False).to_numpy(dtype=bool)
        )
    return out


def _strongest_column(
    model: ChurnModel,
    prepared: pd.DataFrame,
    columns: list[str],
    risky: dict[str, np.ndarray] | None,
    rows: np.ndarray,
) -> np.ndarray:
    """Per row of ``rows``, the family column farthest from the typical value (in spreads); first
    column on ties."""
    if len(columns) == 1:
        return np.zeros(len(rows), dtype=int)
    if risky is not None:
        # the value that is farthest on the risky side: the reason is said with it
        zeros = np.zeros(len(rows))
        return np.column_stack([risky[c][rows] if c in risky else zeros for c in columns]).argmax(axis=1)
    reference, spread = model.metadata["reference"], model.metadata.get("spread", {})
    distance = np.zeros((len(rows), len(columns)))
    for j, column in enumerate(columns):
        values, ref = prepared[column].iloc[rows], reference.get(column)
        if model.schema[column] == "number" and ref is not None:
            scale = spread.get(column) or 1.0
            distance[:, j] = np.nan_to_num(np.abs(values.to_numpy(dtype=float) - ref) / scale)
        else:
            distance[:, j] = (values.astype(str) != str(ref)).to_numpy(dtype=float)
    return distance.argmax(axis=1)


def top_reasons(
    model: ChurnModel,
    prepared: pd.DataFrame,
    *,
    n_reasons: int = 3,
    proba: np.ndarray | None = None,
    raw: pd.DataFrame | None = None,
    encoded: EncodedRows | None = None,
) -> pd.DataFrame:
    """The top ``n_reasons`` risk-raising families per customer, and their text.

    Returns a frame indexed like ``prepared`` with ``reasons`` ("; "-separated sentences) and
    ``reason_families`` ("; "-separated family names), strongest first.
    """
    risky = _risky_distance(model, prepared)
    effects = _family_effects(model, prepared, proba, encoded, risky).to_numpy()
    order = np.argsort(-effects, axis=1, kind="stable")[:, :n_reasons]
    groups = _groups(model)
    families = np.asarray(list(groups))
    strong = np.take_along_axis(effects, order, axis=1) >= MIN_EFFECT
    say, needs = _sayer(model)
    source = prepared if raw is None else raw
    slots = np.full(order.shape, "", dtype=object)  # (customer, rank): the sentences
    for index, family in enumerate(families):
        rows, ranks = np.nonzero((order == index) & strong)  # a family has one rank per customer
        pick = _strongest_column(model, prepared, groups[family], risky, rows)
        for j, column in enumerate(groups[family]):
            chosen = pick == j
            if chosen.any():
                slots[rows[chosen], ranks[chosen]] = _column_texts(say, needs, column, source, rows[chosen])
    names = np.where(strong, families[order], "").astype(object)
    return pd.DataFrame({"reasons": _join(slots), "reason_families": _join(names)}, index=prepared.index)


def _column_texts(
    say: Callable[[str, Mapping[str, Any]], str],
    needs: Callable[[str, Mapping[str, Any]], tuple[str, ...]],
    column: str,
    source: pd.DataFrame,
    chosen: np.ndarray,
) -> np.ndarray:
    """The sentence for ``column`` on each chosen row, once per distinct combination of its inputs.

    The inputs are the columns the sentence reads, recorded on a row where ``column`` has a value
    (a missing value is said without looking further).
    """
    known = np.flatnonzero(source[column].iloc[chosen].notna().to_numpy())
    example = int(chosen[known[0] if known.size else 0])
    row = {str(k): v for k, v in source.iloc[example].items()}
    inputs = [c for c in needs(column, row) if c in source.columns]
    keys = source[inputs].iloc[chosen]
    groups = keys.groupby(inputs, dropna=False, sort=False, observed=True).ngroup().to_numpy()
    firsts = pd.Series(np.arange(len(keys))).groupby(groups).first().sort_index().to_numpy()
    records = keys.iloc[firsts].to_dict(orient="records")
    texts = np.array([say(column, {str(k): v for k, v in r.items()}) for r in records], dtype=object)
    return texts[groups]


def _join(slots: np.ndarray) -> np.ndarray:
    """Each row's non-empty texts (``slots``: customers x ranks), joined by "; " in rank order."""
    out = np.full(len(slots), "", dtype=object)
    for part in slots.T:
        said, has = part != "", out != ""
        both = said & has
        out[both] = out[both] + "; " + part[both]
        alone = said & ~has
        out[alone] = part[alone]
    return out


def _sayer(
    model: ChurnModel,
) -> tuple[Callable[[str, Mapping[str, Any]], str], Callable[[str, Mapping[str, Any]], tuple[str, ...]]]:
    """(column, row) → sentence, and (column, row) → the columns that sentence depends on.

    Every sentence carries its comparison: with the customer's own past, or with the typical
    customer (the training rows' ``reference`` value).
    """
    typical = model.metadata.get("reference", {})
    if model.metadata.get("kind") == "snapshot":

        def snapshot(column: str, row: Mapping[str, Any]) -> str:
            value, usual = _fmt(row[column]), typical.get(column)
            return f"{column}: {value}" if usual is None else f"{column}: {value} (typical: {_fmt(usual)})"

        return snapshot, (lambda column, row: (column,))
    from churnrisk.features import explain

    needs: dict[str, tuple[str, ...]] = {}

    def inputs(column: str, row: Mapping[str, Any]) -> tuple[str, ...]:
        if column not in needs:
            needs[column] = _inputs(explain, column, row) if "bgnbd" not in column else (column,)
        return needs[column]

    return (lambda column, row: _words(explain, column, row, typical.get(column))), inputs


class _Recorder(dict):
    """A row that remembers which columns were read."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        super().__init__(row)
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)


def _inputs(
    explain: Callable[[str, Mapping[str, Any]], str], column: str, row: Mapping[str, Any]
) -> tuple[str, ...]:
    recorder = _Recorder(row)
    explain(column, recorder)
    return tuple(dict.fromkeys([column, *recorder.read]))


def _words(explain: Callable[..., str], column: str, row: Mapping[str, Any], typical: Any) -> str:
    if column == "purchases_bgnbd_quiet":
        text = f"{row[column]:.0%} chance of no purchase within the horizon"
    elif column == "purchases_bgnbd_alive":
        text = f"{row[column]:.0%} chance the customer still buys here"
    else:
        return explain(column, row, typical=typical)
    compared = "" if typical is None else f", typical: {typical:.0%}"
    return f"{text} (repeat-buying model{compared})"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "missing" if np.isnan(value) else f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def cause_agreement(
    scored: pd.DataFrame,
    ground_truth: pd.DataFrame,
    *,
    threshold: float | None = None,
    top: float = 0.1,
    first: int | None = None,
) -> dict[str, Any]:
    """How often the reasons name the true cause, for correctly flagged churners of the demo data.

    ``scored`` has ``customer_id, churn_probability, reason_families`` and the observed label
    ``churned`` (churned within the horizon); ``ground_truth`` gives each churner's ``cause``.
    A churner is *flagged* when it is in the top ``top`` share of probabilities (or above
    ``threshold`` when given) and churned. Agreement: one of its ``reason_families`` is the family of
    its cause (:data:`CAUSE_FAMILIES`); with ``first``, one of its first ``first`` reasons (``first=1``:
    the first reason names the cause).

    Returns ``{"flagged_churners", "named_cause", "share", "by_cause"}``.
    """
    frame = scored.merge(ground_truth[["customer_id", "cause"]], on="customer_id", how="inner")
    cut = threshold if threshold is not None else frame["churn_probability"].quantile(1 - top)
    hit = frame[(frame["churn_probability"] >= cut) & frame["churned"].astype(bool) & frame["cause"].notna()]
    named = [
        CAUSE_FAMILIES.get(cause, "?") in str(families).split("; ")[:first]
        for cause, families in zip(hit["cause"], hit["reason_families"], strict=True)
    ]
    hit = hit.assign(named=named)
    return {
        "flagged_churners": len(hit),
        "named_cause": int(hit["named"].sum()),
        "share": float(hit["named"].mean()) if len(hit) else float("nan"),
        "by_cause": hit.groupby("cause")["named"].agg(["size", "mean"]).to_dict(orient="index"),
    }
