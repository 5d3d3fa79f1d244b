"""Feature columns in words, from the declarations: one sentence template per statistic.

:func:`describe_feature` says what a column measures; :func:`explain` says what one customer's
value means ("3 failed payments in the last 30 days", "CSAT fell from 5 to 2",
"no order for 140 days, usual gap 30"), and with a ``typical`` value compares it with typical
customers ("60 product events in the last 180 days (typical: 150)"). :func:`worse_side` says which
way a feature's words read as worse, so that a reason never reads against the risk it claims.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from churnrisk.errors import ChurnriskError
from churnrisk.features._polars import family_features, output_columns, windowed_names
from churnrisk.features._spec import DEFAULT_WINDOWS, FAMILIES, Agg, Derived, Family

__all__ = ["describe_feature", "explain", "feature_columns", "is_change", "worse_side"]

_DESCRIBE = {
    "count": "number of {what}{span}",
    "sum": "total {what}{span}",
    "mean": "mean {what}{span}",
    "min": "lowest {what}{span}",
    "max": "highest {what}{span}",
    "last": "latest {what} up to the cutoff",
    "prev": "{what} before the latest one",
    "n_unique": "number of different {what}{span}",
    "days_since": "days from the last {what} to the cutoff",
    "days_since_first": "days from the {what} to the cutoff",
    "share": "share of {what}{span}",
    "mean_gap": "mean days between {what} up to the cutoff",
    "diff": "change in {what}: {left} minus {right}",
    "ratio": "{left} divided by {right}",
    "bins": "{what}, from the {left}",
}
_EXPLAIN = {
    "count": "{value} {what}{span}",
    "sum": "{value} {what}{span}",
    "mean": "{what} averaged {value}{span}",
    "min": "lowest {what} {value}{span}",
    "max": "highest {what} {value}{span}",
    "last": "last {what}: {value}",
    "prev": "previous {what}: {value}",
    "n_unique": "{value} different {what}{span}",
    "days_since": "{value} days since the last {what}",
    "days_since_first": "{what} {value} days ago",
    "share": "{percent} of {what}{span}",
    "mean_gap": "usually {value} days between {what}",
    "diff": "{what} {moved} from {right} to {left}{span}",
    "ratio": "{what}: {value}",
    "bins": "{what}: {value}",
    "sum open": "{what} at the cutoff: {value}",  # "MRR at the cutoff: 29", not "29 MRR open at ..."
}
#: Which way each feature reads as worse for the customer: +1 more is worse (complaints), -1 less is
#: worse (product events, CSAT; a change: a fall; a tenure: a new customer), 0 either way. Keyed by
#: family, then declared name; every declared feature has an entry (a test checks it).
_WORSE: dict[str, dict[str, int]] = {
    "purchases": {
        **dict.fromkeys(["frequency", "monetary", "frequency_trend", "spend_trend", "aov"], -1),
        **dict.fromkeys(["aov_trend", "orders", "spend", "first_order"], -1),
        **dict.fromkeys(["recency", "usual_gap", "gap_ratio"], 1),
    },
    "returns": {"count": 1, "amount": 1, "refunds": 1, "exchanges": 0, "refund_share": 1, "recency": -1},
    "subscription": {
        **dict.fromkeys(["tenure", "open", "mrr_change", "upgrades"], -1),
        "downgrades": 1,
        "mrr": 0,  # a small plan can be the risk, and so can a big one
        "plan": 0,
    },
    "support": {
        "tickets": 1,
        "complaints": 1,
        "unresolved": 1,
        "complaint_recency": -1,
        "resolution_days": 1,
    },
    "surveys": {
        **dict.fromkeys(["csat_last", "csat_prev", "csat_trend", "csat_mean", "nps_last"], -1),
        "nps_group": 0,
        "ces_last": 0,  # scales differ: on some a high effort score is bad, on others good
        "recency": 1,  # a long silence, not a recent answer
    },
    "payments": {
        **dict.fromkeys(["failed", "consecutive_failures", "recovered", "unrecovered"], 1),
        "failure_recency": -1,
    },
    "activity": {"events": -1, "events_trend": -1, "recency": 1},
    "customer": {"tenure": -1},
}
#: The same for the scores added beside the declared features (``churnrisk.training.with_repeat_buying``).
_WORSE_COLUMNS = {"purchases_bgnbd_quiet": 1, "purchases_bgnbd_alive": -1}
#: Statistics counted in days, said in whole days.
_DAYS = ("days_since", "days_since_first", "mean_gap")

_SPANS = {
    "window": " in the last {w} days",
    "prior": " in the {w} days before the last {w}",
    "history": "",
    "open": " open at the cutoff",
    "open_at_window_start": " open {w} days before the cutoff",
}


@dataclass(frozen=True)
class _Resolved:
    family: Family
    feature: Agg | Derived
    window: int | None
    features: tuple[Agg | Derived, ...]


def feature_columns(
    columns: Mapping[str, Sequence[str]] | None = None, *, windows: Sequence[int] = DEFAULT_WINDOWS
) -> list[str]:
    """The feature columns the declarations give, for tables with the given ``columns``.

    ``columns`` maps table name to its column names (e.g. ``{n: f.columns for n, f in
    store.tables.items()}``); ``None`` lists every declared feature of every family.
    """
    out: list[str] = []
    for family in FAMILIES:
        if columns is not None and family.table not in columns:
            continue
        names = columns[family.table] if columns is not None else _all_columns(family)
        out += output_columns(family, family_features(family, names), windows)
    return out


def _all_columns(family: Family) -> list[str]:
    names = {family.time, *(family.known_when)}
    names |= {c for f in family.features if isinstance(f, Agg) for c in f.columns}
    return sorted(names)


def _resolve(column: str) -> _Resolved:
    for family in FAMILIES:
        prefix = f"{family.name}_"
        if not column.startswith(prefix):
            continue
        rest = column[len(prefix) :]
        features = tuple(family_features(family, _all_columns(family)))
        windowed = _windowed(features)
        by_name = {f.name: f for f in features}
        head, _, tail = rest.rpartition("_")
        if head in by_name and windowed[head] and tail.endswith("d") and tail[:-1].isdigit():
            return _Resolved(family, by_name[head], int(tail[:-1]), features)
        if rest in by_name and not windowed[rest]:
            return _Resolved(family, by_name[rest], None, features)
        if family.attributes:
            attribute = Agg(rest, "last", rest, span="history", what=rest.replace("_", " "))
            return _Resolved(family, attribute, None, (*features, attribute))
    raise ChurnriskError(
        f"{column!r} is not a feature column. Suggestion: use a column of build_features(), "
        "e.g. 'payments_failed_30d'."
    )


def _windowed(features: Sequence[Agg | Derived]) -> dict[str, bool]:
    return windowed_names(features)


def _span(feature: Agg | Derived, window: int | None, features: Sequence[Agg | Derived]) -> str:
    if isinstance(feature, Derived):
        if window is None:
            return ""
        right = next((f for f in features if f.name == feature.right), None)
        if isinstance(right, Agg) and right.span == "prior":
            return f" (last {window} days vs the {window} before)"
        return f" over the last {window} days"
    return _SPANS[feature.span].format(w=window)


def describe_feature(column: str) -> str:
    """What a feature column measures, in one sentence.

    Examples
    --------
    >>> describe_feature("payments_failed_30d")
    'Number of failed payments in the last 30 days (events in (cutoff - 30 days, cutoff]).'
    """
    r = _resolve(column)
    f = r.feature
    text = _DESCRIBE[f.stat if isinstance(f, Agg) else f.op].format(
        what=f.what or f.name.replace("_", " "),
        span=_span(f, r.window, r.features),
        left=_describe_input(r, f.left if isinstance(f, Derived) else None),
        right=_describe_input(r, f.right if isinstance(f, Derived) else None),
    )
    if r.window is not None and isinstance(f, Agg) and f.span == "window":
        text += f" (events in (cutoff - {r.window} days, cutoff])"
    return text[0].upper() + text[1:] + "."


def _describe_input(r: _Resolved, name: str | None) -> str:
    if name is None:
        return ""
    feature = next(f for f in r.features if f.name == name)
    if isinstance(feature, Derived):
        return feature.what or name.replace("_", " ")
    window = r.window if feature.windowed else None
    return _DESCRIBE[feature.stat].format(
        what=feature.what, span=_SPANS[feature.span].format(w=window), left="", right=""
    )


def worse_side(column: str) -> int:
    """Which way a feature column reads as worse for the customer: +1 more, -1 less, 0 either way.

    0 as well for a column that is not a feature column (e.g. of a snapshot table). A value is only
    said as a churn risk on this side: "1 upgrade" or "MRR rose" never are.

    Examples
    --------
    >>> worse_side("support_complaints_30d"), worse_side("activity_events_90d"), worse_side("Contract")
    (1, -1, 0)
    """
    if column in _WORSE_COLUMNS:
        return _WORSE_COLUMNS[column]
    try:
        r = _resolve(column)
    except ChurnriskError:
        return 0
    return _WORSE.get(r.family.name, {}).get(r.feature.name, 0)


def is_change(column: str) -> bool:
    """Whether a feature column is a change (now minus before): said as a fall or a rise."""
    try:
        feature = _resolve(column).feature
    except ChurnriskError:
        return False
    return isinstance(feature, Derived) and feature.op == "diff"


def _fmt(value: Any, *, whole: bool = False) -> str:
    if isinstance(value, str):
        return value
    number = float(value)
    if not math.isfinite(number):
        return "?"  # e.g. the earlier value behind a ratio of 0, which cannot be worked back
    if whole or number == int(number):
        return f"{round(number):,}"
    return f"{number:,.0f}" if abs(number) >= 10 else f"{number:,.2f}".rstrip("0").rstrip(".")


def _said(feature: Agg | Derived, value: Any) -> str:
    """A value as the sentence says it: a share in percent, days in whole days."""
    stat = feature.stat if isinstance(feature, Agg) else None
    if stat == "share" and not isinstance(value, str):
        return f"{float(value):.0%}"
    return _fmt(value, whole=stat in _DAYS)


def _compares(feature: Agg | Derived) -> bool:
    """Whether the sentence compares with the customer's own past ("fell from 5 to 2", "usual gap")."""
    return isinstance(feature, Derived) and (feature.op == "diff" or "{right}" in (feature.text or ""))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value != value


def explain(column: str, row: Mapping[str, Any], *, typical: Any = None) -> str:
    """One customer's value of a feature in plain words.

    Parameters
    ----------
    column : str
        A column of :func:`build_features`.
    row : mapping or pandas.Series
        The customer's row of features (other columns are used for context, e.g. the usual gap).
    typical : optional
        The typical customer's value: a sentence that does not already compare with the customer's
        own past ends with it, "(typical: 150)".

    Examples
    --------
    >>> explain("payments_failed_30d", {"payments_failed_30d": 3})
    '3 failed payments in the last 30 days'
    >>> explain("surveys_csat_trend", {"surveys_csat_trend": -3.0, "surveys_csat_last": 2.0})
    'CSAT fell from 5 to 2'
    >>> explain("activity_events_180d", {"activity_events_180d": 60}, typical=150.0)
    '60 product events in the last 180 days (typical: 150)'
    """
    r = _resolve(column)
    text = _sentence(r, row, row[column])
    if typical is None or _missing(typical) or _compares(r.feature):
        return text
    return f"{text} (typical: {_said(r.feature, typical)})"


def _sentence(r: _Resolved, row: Mapping[str, Any], value: Any) -> str:
    f = r.feature
    what = f.what or f.name.replace("_", " ")
    if _missing(value):
        return f"no {what} on record"
    fields: dict[str, Any] = {"what": what, "span": _span(f, r.window, r.features), "w": r.window}
    if isinstance(f, Derived) and f.op != "bins":
        fields.update(_derived_fields(r, f, row, value))
    if not isinstance(value, str):
        fields["percent"] = f"{float(value):.0%}"
    fields["value"] = _said(f, value)
    template = f.text or _template(f)
    if isinstance(f, Derived) and f.op == "diff" and value == 0:
        template = "{what} unchanged at {left}{span}"
    if isinstance(f, Agg) and not f.text and not isinstance(value, str):
        template, fields = _counted(f.stat, float(value), template, fields)
    return re.sub(r"(?<![\d.,])1 days\b", "1 day", template.format(**fields))


def _template(feature: Agg | Derived) -> str:
    if isinstance(feature, Derived):
        return _EXPLAIN[feature.op]
    return _EXPLAIN.get(f"{feature.stat} {feature.span}", _EXPLAIN[feature.stat])


#: A customer this many days after their first subscription or order is said to be new.
NEW_CUSTOMER_DAYS = 90


def _counted(stat: str, value: float, template: str, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Counts in plain English: "no complaints", "1 complaint", "new customer: ... 20 days ago"."""
    if stat == "count" and value == 0:
        return "no {what}{span}", fields
    if stat == "count" and value == 1:
        return template, {**fields, "what": _singular(fields["what"])}
    if stat == "days_since_first" and value < NEW_CUSTOMER_DAYS:
        return "new customer: " + template, fields
    return template, fields


def _singular(what: str) -> str:
    """The noun phrase for one item: the first plural word loses its s ("failed payments later
    recovered" → "failed payment later recovered")."""
    words = what.split(" ")
    for i, word in enumerate(words):
        if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")):
            words[i] = word[:-1]
            break
    return " ".join(words)


def _derived_fields(r: _Resolved, f: Derived, row: Mapping[str, Any], value: Any) -> dict[str, str]:
    """The inputs of a derived value: the left one from the row, the right one worked back."""
    left_name = f.left if not _windowed(r.features)[f.left] or r.window is None else f"{f.left}_{r.window}d"
    left = row.get(f"{r.family.name}_{left_name}") if hasattr(row, "get") else None
    if left is None or _missing(left):
        return {"left": "?", "right": "?", "moved": "changed by " + _fmt(value) + ","}
    right = left - value if f.op == "diff" else (left / value if value else float("nan"))
    moved = "fell" if value < 0 else "rose" if value > 0 else "stayed the same,"
    return {"left": _fmt(left), "right": _fmt(right), "moved": moved}
