"""Snapshot mode: a table with one row per customer and a label column, as many public churn sets are.

:func:`train_snapshot` reads the table, decides which columns are features, trains the calibrated
pipeline on a stratified hold-out split and reports out-of-sample metrics. Columns that cannot be
features are left out and the notes say which and why:

* **id-like**: text or whole-number columns with a different value on every row (``customerID``,
  ``RowNumber``): they identify a row, they do not describe a customer;
* **free text**: text columns with very many distinct values (``Surname``): more than
  ``max(100, 5 % of rows)`` distinct values, so no category is seen often enough to learn from.

Text columns whose non-blank values are all numbers (Telco's ``TotalCharges``, blank for new
customers) are read as numbers with the blanks missing, and the notes say so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from churnrisk import __version__
from churnrisk._deprecation import renamed
from churnrisk.errors import ChurnriskError
from churnrisk.evaluation import calibration_table, score_metrics
from churnrisk.model import (
    FINE_GBM,
    ChurnModel,
    fit_cross_calibrated,
    input_schema,
    make_pipeline,
    prepare_features,
    reference_values,
    spread_values,
)

__all__ = ["POSITIVE_LABELS", "read_snapshot", "snapshot_columns", "train_snapshot"]

#: Label values read as "churned" (compared in lower case); the other value is "stayed".
POSITIVE_LABELS = ("1", "1.0", "yes", "y", "true", "t", "churn", "churned", "exited", "left")


def read_snapshot(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV or Parquet snapshot table."""
    path = Path(path)
    if not path.is_file():
        raise ChurnriskError(f"table file {path} does not exist. Suggestion: check the --table path.")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() != ".csv":
        raise ChurnriskError(f"table file {path} must be .csv or .parquet. Suggestion: convert it.")
    try:
        return pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ChurnriskError(f"cannot read {path}: {exc}. Suggestion: save it as UTF-8 CSV.") from None


def to_label(values: pd.Series, column: str) -> pd.Series:
    """0/1 from a two-valued label column (Yes/No, True/False, 1/0, ...)."""
    text = values.astype(str).str.strip().str.lower()
    distinct = sorted(text[values.notna()].unique())
    positive = [v for v in distinct if v in POSITIVE_LABELS]
    if values.isna().any() or len(distinct) != 2 or len(positive) != 1:
        raise ChurnriskError(
            f"label column {column!r} must have exactly two values, one of them meaning churned "
            f"({', '.join(POSITIVE_LABELS[:6])}, ...), and no blanks; got {distinct[:5]}"
            f"{' and blanks' if values.isna().any() else ''}. "
            "Suggestion: recode it as 1 = churned, 0 = stayed."
        )
    return (text == positive[0]).astype(int)


def snapshot_columns(frame: pd.DataFrame, *, exclude: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str]]:
    """The usable feature columns of a snapshot table, and a note for each column changed or left out."""
    notes: list[str] = []
    kept: dict[str, pd.Series] = {}
    n = len(frame)
    for column in frame.columns:
        if column in exclude:
            continue
        values = frame[column]
        text = not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))
        if n > 1 and values.nunique(dropna=False) == n and (text or pd.api.types.is_integer_dtype(values)):
            notes.append(f"{column}: left out, id-like (a different value on every row)")
            continue
        if text:
            numbers = _numbers_or_none(values)
            if numbers is not None:
                blanks = int(numbers.isna().sum() - values.isna().sum())
                notes.append(f"{column}: read as numbers ({blanks} blank value(s) treated as missing)")
                kept[column] = numbers
                continue
            if values.nunique() > max(100, 0.05 * n):
                notes.append(f"{column}: left out, free text ({values.nunique():,} distinct values)")
                continue
        kept[column] = values
    if not kept:
        raise ChurnriskError("no usable feature columns are left. Suggestion: check the table's columns.")
    return pd.DataFrame(kept, index=frame.index), notes


def _numbers_or_none(values: pd.Series) -> pd.Series | None:
    stripped = values.astype(str).str.strip().where(values.notna(), None)
    filled = stripped.replace("", None).dropna()
    numbers = pd.to_numeric(filled, errors="coerce")
    if filled.empty or numbers.isna().any():
        return None
    return pd.to_numeric(stripped.replace("", None), errors="coerce").astype("float64")


@renamed(id_column="customer_col")
def train_snapshot(
    table: pd.DataFrame,
    *,
    label: str,
    customer_col: str | None = None,
    model: str = "gbm",
    test_size: float = 0.25,
    random_state: int | None = 0,
) -> ChurnModel:
    """Train and evaluate a calibrated churn model on a one-row-per-customer table.

    Stratified split: 25 % of the rows are held out for the test. A snapshot has no time order, so
    the probabilities are calibrated by 5-fold cross-validation on the other 75 % (each fold's model
    calibrated on the rows it did not see, the five averaged) instead of on a later time slice.
    ``customer_col`` names the customer id column (kept out of the features, recorded as the
    model's ``id_column`` for scoring). The returned model's ``metadata["metrics"]`` are on the
    hold-out.
    """
    for column in (label, customer_col):
        if column is not None and column not in table.columns:
            raise ChurnriskError(
                f"column {column!r} is not in the table; it has {', '.join(map(str, table.columns[:15]))}. "
                "Suggestion: check --label / --id."
            )
    y = to_label(table[label], label)
    features, notes = snapshot_columns(table, exclude=tuple(c for c in (label, customer_col) if c))
    schema = input_schema(features)
    X = prepare_features(features, schema)  # noqa: N806
    fit_X, test_X, fit_y, test_y = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state
    )
    estimator = fit_cross_calibrated(
        make_pipeline(schema, model=model, random_state=random_state, gbm_options=FINE_GBM),
        fit_X,
        fit_y,
        random_state=random_state,
    )
    proba = estimator.predict_proba(test_X)[:, 1]
    metadata = _metadata(schema, features, notes, label=label, id_column=customer_col, model=model)
    metadata["metrics"] = score_metrics(test_y, proba)
    metadata["calibration"] = calibration_table(test_y, proba).to_dict(orient="list")
    metadata["rows"] = {"train": len(fit_X), "test": len(test_X)}
    return ChurnModel(estimator, metadata)


def _metadata(
    schema: dict[str, str], features: pd.DataFrame, notes: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "snapshot",
        "churnrisk_version": __version__,
        "schema": schema,
        "reference": reference_values(features, schema),
        "spread": spread_values(prepare_features(features, schema), schema),
        "families": {c: c for c in schema},
        "notes": notes,
        "definition": "label column",
        "horizon": None,
        "lookback": None,
        "cutoffs": [],
        **extra,
    }


def snapshot_ids(table: pd.DataFrame, customer_col: str | None) -> pd.Index:
    """Customer ids of a snapshot table: the id column, else the row number."""
    if customer_col is None:
        return pd.RangeIndex(len(table), name="customer_id")
    ids = table[customer_col]
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[:3].tolist()
        raise ChurnriskError(
            f"id column {customer_col!r} has duplicates, e.g. {dup}. Suggestion: one row per customer."
        )
    return pd.Index(np.asarray(ids), name="customer_id")
