"""One row per customer with a churn label (Telco, Orange, e-commerce) as a clean table to train on."""

from __future__ import annotations

import time
from typing import Literal, overload

import pandas as pd

from churnrisk._deprecation import renamed
from churnrisk.errors import ChurnriskError
from churnrisk.importers._common import ImportReport, Source, _any_text, _describe, _flags, _read_raw

#: Label columns recognised without ``label=`` (compared in lower case).
KNOWN_LABELS = ("churn", "churned", "churn_flag", "exited")
_MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null"})


@overload
def import_snapshot(
    source: Source | pd.DataFrame,
    *,
    label: str | None = ...,
    customer_col: str | None = ...,
    return_report: Literal[False] = ...,
) -> pd.DataFrame: ...


@overload
def import_snapshot(
    source: Source | pd.DataFrame,
    *,
    label: str | None = ...,
    customer_col: str | None = ...,
    return_report: Literal[True],
) -> tuple[pd.DataFrame, ImportReport]: ...


@renamed(id_col="customer_col")
def import_snapshot(
    source: Source | pd.DataFrame,
    *,
    label: str | None = None,
    customer_col: str | None = None,
    return_report: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, ImportReport]:
    """Read a one-row-per-customer table with a churn label and clean it for training.

    Parameters
    ----------
    source : path or DataFrame
        A CSV or Parquet file (or a DataFrame), one row per customer.
    label : str, optional
        The label column. Default: the one column named ``Churn``, ``Churned``, ``churn_flag`` or
        ``Exited`` (in any case).
    customer_col : str, optional
        The customer id column; checked to be present, complete and unique, and kept as text.
    return_report : bool, default False
        Also return an :class:`ImportReport` (rows read, rows without a label, blanks per column).

    Returns
    -------
    DataFrame
        The table with the label as 0/1 integers (yes/no, true/false and 1/0 are understood;
        rows without a label are left out and counted), and every text column whose non-blank
        values are all numbers converted to numbers (blanks become NaN, counted per column).

    Examples
    --------
    >>> raw = pd.DataFrame({"id": ["a", "b", "c"], "TotalCharges": ["29.85", " ", "108.15"],
    ...                     "Churn": ["No", "Yes", "no"]})
    >>> import_snapshot(raw, customer_col="id")
      id  TotalCharges  Churn
    0  a         29.85      0
    1  b           NaN      1
    2  c        108.15      0
    """
    started = time.perf_counter()
    raw = _read_snapshot(source)
    report = ImportReport(_describe(source), rows_read={"rows": len(raw)})
    label = _snapshot_label(raw, label)
    if customer_col is not None:
        raw[customer_col] = _snapshot_ids(raw, customer_col)
    frame = raw.apply(lambda col: col if col.name in (label, customer_col) else _snapshot_column(col, report))
    frame[label] = _binary_label(frame[label], label)
    missing = frame[label].isna()
    report.drop(f"rows without a value in the label column {label!r}", int(missing.sum()))
    frame = frame[~missing].astype({label: "int64"}).reset_index(drop=True)
    report.rows_out = {"rows": len(frame), "churners": int(frame[label].sum())}
    report.seconds = time.perf_counter() - started
    return (frame, report) if return_report else frame


def _read_snapshot(source: Source | pd.DataFrame) -> pd.DataFrame:
    frame = _read_raw(source, "customer snapshot")
    if frame.empty:
        raise ChurnriskError(f"{_describe(source)} has no rows. Suggestion: check the file.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _snapshot_label(frame: pd.DataFrame, label: str | None) -> str:
    if label is not None:
        if label not in frame.columns:
            raise ChurnriskError(
                f"the label column {label!r} is not in the table; found {list(frame.columns)}. "
                "Suggestion: pass --label with one of these names."
            )
        return label
    found = [c for c in frame.columns if c.lower() in KNOWN_LABELS]
    if len(found) != 1:
        what = "no column" if not found else f"several columns {found}"
        raise ChurnriskError(
            f"cannot tell the label column: {what} named like {list(KNOWN_LABELS)}; found "
            f"{list(frame.columns)}. Suggestion: pass --label COLUMN."
        )
    return found[0]


def _snapshot_ids(frame: pd.DataFrame, id_col: str) -> pd.Series:
    if id_col not in frame.columns:
        raise ChurnriskError(
            f"the id column {id_col!r} is not in the table; found {list(frame.columns)}. "
            "Suggestion: pass --id with one of these names, or leave it out."
        )
    ids = _any_text(frame[id_col])
    problems = {"missing": int(ids.isna().sum()), "repeated": int(ids.dropna().duplicated().sum())}
    if any(problems.values()):
        examples = ids[ids.duplicated(keep=False) & ids.notna()].unique()[:5].tolist()
        raise ChurnriskError(
            f"the id column {id_col!r} has {problems['missing']:,} missing and {problems['repeated']:,} "
            f"repeated values (e.g. {examples}). Suggestion: ids must be unique; pass another --id."
        )
    return ids


def _snapshot_column(values: pd.Series, report: ImportReport) -> pd.Series:
    """Numbers from numeric-looking text (blanks as NaN, counted); other columns as they are."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        report.missing[str(values.name)] = int(values.isna().sum())
        return values
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values
    text = _any_text(values)
    blank = text.isna() | text.str.lower().isin(_MISSING_TEXT)
    numbers = pd.to_numeric(text.mask(blank), errors="coerce")
    report.missing[str(values.name)] = int(blank.sum())
    if blank.all() or numbers.isna().sum() > blank.sum():
        return text.mask(blank)
    return numbers


def _binary_label(values: pd.Series, label: str) -> pd.Series:
    flags = _flags(values)
    text = _any_text(values)
    unknown = flags.isna() & text.notna()
    if unknown.any():
        raise ChurnriskError(
            f"the label column {label!r} has values that are not yes/no, true/false or 1/0: "
            f"{text[unknown].unique()[:5].tolist()} ({int(unknown.sum()):,} rows). "
            "Suggestion: pass the right column with --label."
        )
    return flags.astype("Int64")
