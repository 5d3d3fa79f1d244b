"""Feature columns in words, from the declarations: one sentence template per statistic.

:func:`describe_feature` says what a column measures; :func:`explain` says what one customer's
value means ("3 failed payments in the last 30 days", "CSAT fell from 5 to 2",
"no order for 140 days, usual gap 30").
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

__all__ = ["describe_feature", "explain", "feature_columns"]

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
}
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


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value
    number = float(value)
    if not math.isfinite(number):
        return "?"  # e.g. the earlier value behind a ratio of 0, which cannot be worked back
    if number == int(number):
        return f"{int(number):,}"
    return f"{number:,.0f}" if abs(number) >= 10 else f"{number:,.2f}".rstrip("0").rstrip(".")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value != value


def explain(column: str, row: Mapping[str, Any]) -> str:
    """One customer's value of a feature in plain words.

    Parameters
    ----------
    column : str
        A column of :func:`build_features`.
    row : mapping or pandas.Series
        The customer's row of features (other columns are used for context, e.g. the usual gap).

    Examples
    --------
    >>> explain("payments_failed_30d", {"payments_failed_30d": 3})
    '3 failed payments in the last 30 days'
    >>> explain("surveys_csat_trend", {"surveys_csat_trend": -3.0, "surveys_csat_last": 2.0})
    'CSAT fell from 5 to 2'
    """
    r = _resolve(column)
    f = r.feature
    value = row[column]
    what = f.what or f.name.replace("_", " ")
    if _missing(value):
        return f"no {what} on record"
    fields: dict[str, Any] = {"what": what, "span": _span(f, r.window, r.features), "w": r.window}
    if isinstance(f, Derived) and f.op != "bins":
        fields.update(_derived_fields(r, f, row, value))
    if not isinstance(value, str):
        fields["percent"] = f"{float(value):.0%}"
    fields["value"] = _fmt(value)
    template = f.text or _EXPLAIN[f.stat if isinstance(f, Agg) else f.op]
    if isinstance(f, Derived) and f.op == "diff" and value == 0:
        template = "{what} unchanged at {left}{span}"
    if isinstance(f, Agg) and not f.text and not isinstance(value, str):
        template, fields = _counted(f.stat, float(value), template, fields)
    return re.sub(r"(?<![\d.,])1 days\b", "1 day", template.format(**fields))


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
