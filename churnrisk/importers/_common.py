"""What every importer shares: the report and result types, reading a raw table, typing its columns,
and leaving rows out with a count."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from churnrisk._io import check_writable, write_table
from churnrisk.contract import TABLES
from churnrisk.errors import ChurnriskError

Source = str | os.PathLike[str]
FORMATS = ("csv", "parquet")


# ---------------------------------------------------------------------- results
@dataclass
class ImportReport:
    """What an import read, wrote and left out (rows dropped, by reason), and how long it took."""

    source: str
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_out: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def drop(self, reason: str, rows: int) -> None:
        """Count ``rows`` left out for ``reason`` (reasons with no rows are not listed)."""
        if rows:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(rows)

    def to_frame(self) -> pd.DataFrame:
        """One row per count: ``step`` (read / written / dropped / missing), ``what`` and ``rows``."""
        records = [
            *(("read", k, v) for k, v in self.rows_read.items()),
            *(("written", k, v) for k, v in self.rows_out.items()),
            *(("dropped", k, v) for k, v in self.dropped.items()),
            *(("missing", k, v) for k, v in self.missing.items() if v),
        ]
        return pd.DataFrame(records, columns=["step", "what", "rows"])


@dataclass
class ImportResult:
    """Event-store tables made by an importer, side tables that are not part of the contract, a report."""

    tables: dict[str, pd.DataFrame]
    report: ImportReport
    extras: dict[str, pd.DataFrame] = field(default_factory=dict)

    def write(
        self, folder: Source, *, overwrite: bool = False, fmt: Literal["csv", "parquet"] = "csv"
    ) -> list[Path]:
        """Write every table as ``<name>.<fmt>`` into ``folder`` (created if missing), atomically.

        Nothing is written when any target exists and ``overwrite`` is not set, or when the folder
        already holds the same table in the other format (the event store would not know which to read).
        """
        if fmt not in FORMATS:
            raise ChurnriskError(f"unknown format {fmt!r}. Suggestion: use one of {list(FORMATS)}.")
        folder = _make_folder(Path(folder))
        frames = {**self.tables, **self.extras}
        targets = {name: folder / f"{name}.{fmt}" for name in frames}
        for target in targets.values():
            _check_other_format(target)
            check_writable(target, overwrite=overwrite)
        return [write_table(frames[name], target, overwrite=overwrite) for name, target in targets.items()]


def _make_folder(folder: Path) -> Path:
    if folder.exists() and not folder.is_dir():
        raise ChurnriskError(f"{folder} is a file, not a folder. Suggestion: choose a folder for the tables.")
    if not folder.parent.exists():
        raise ChurnriskError(f"the folder {folder.parent} does not exist.")
    folder.mkdir(exist_ok=True)
    return folder


def _check_other_format(target: Path) -> None:
    other = [target.with_suffix(f".{f}") for f in FORMATS if f".{f}" != target.suffix]
    clash = [p for p in other if p.exists() and p.stem in TABLES]
    if clash:
        raise ChurnriskError(
            f"{clash[0]} already exists; writing {target.name} beside it would give the table two files. "
            "Suggestion: remove it, or write in the same format (--format)."
        )


def _finish(result: ImportResult, started: float) -> ImportResult:
    frames = {**result.tables, **result.extras}
    result.report.rows_out = {name: len(frame) for name, frame in frames.items()}
    result.report.seconds = time.perf_counter() - started
    return result


def _describe(source: Any) -> str:
    return "DataFrame" if isinstance(source, pd.DataFrame) else str(source)


# ---------------------------------------------------------------------- reading raw data
def _read_raw(source: Source | pd.DataFrame, what: str) -> pd.DataFrame:
    """A raw table from a DataFrame, a CSV file or a Parquet file."""
    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    if not path.is_file():
        raise ChurnriskError(f"{path} is not a file. Suggestion: give the path of the {what} file.")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise ChurnriskError(f"{path} cannot be read as the {what} file: {exc}") from None
    raise ChurnriskError(f"cannot tell the format of {path}: use a .csv or .parquet file.")


def _require(frame: pd.DataFrame, columns: Mapping[str, Any] | tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ChurnriskError(
            f"the {what} data has no column{'s' if len(missing) > 1 else ''} {missing}; "
            f"found {list(frame.columns)}. Suggestion: check that this is the {what} file."
        )


# ---------------------------------------------------------------------- typing raw columns
def _times(values: pd.Series) -> pd.Series:
    """ISO 8601 timestamps (naive), unreadable or blank ones as NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = pd.to_datetime(_text(values), format="ISO8601", errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[us]")


def _text(values: pd.Series) -> pd.Series:
    """Text with surrounding blanks removed and empty strings as missing."""
    text = values.astype("str").str.strip()
    return text.mask(values.isna() | (text == ""))


def _any_text(values: pd.Series) -> pd.Series:
    """Like :func:`_text` for values of any type (booleans and numbers as Python prints them)."""
    return _text(values.astype("object").map(str, na_action="ignore"))


def _numbers(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    return pd.to_numeric(_text(values), errors="coerce").astype("float64")


_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


def _flags(values: pd.Series) -> pd.Series:
    """True/False/missing from booleans, 0/1 or yes/no/true/false text (anything else is missing)."""
    text = _any_text(values).str.lower()
    flags = pd.Series(pd.NA, index=values.index, dtype="boolean")
    flags[text.isin(_TRUE)] = True
    flags[text.isin(_FALSE)] = False
    return flags


def _as_is(values: pd.Series) -> pd.Series:
    return values


#: A raw column's contract name and how its values are typed.
Column = tuple[str, Callable[[pd.Series], pd.Series]]


def _pick(
    frame: pd.DataFrame, columns: Mapping[str, Column], what: str, *, required: tuple[str, ...]
) -> pd.DataFrame:
    """Rename raw columns to contract names and type them, keeping the optional ones that are present."""
    _require(frame, required, what)
    picked = {ours: convert(frame[raw]) for raw, (ours, convert) in columns.items() if raw in frame.columns}
    return pd.DataFrame(picked, index=frame.index)


def _customer_ids(values: pd.Series) -> pd.Series:
    """Whole-number ids as Int64 (``12346.0`` -> 12346); anything else as text."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() == values.notna().sum() and (numbers.dropna() % 1 == 0).all():
        return numbers.astype("Int64")
    return _text(values)


# ---------------------------------------------------------------------- leaving rows out
def _leave_out(frame: pd.DataFrame, bad: pd.Series, reason: str, report: ImportReport) -> pd.DataFrame:
    """``frame`` without the rows marked ``bad``, counted in the report under ``reason``."""
    report.drop(reason, int(bad.sum()))
    return frame[~bad]


def _drop_missing(
    frame: pd.DataFrame, columns: Mapping[str, str], what: str, report: ImportReport
) -> pd.DataFrame:
    """Leave out rows with a missing or unreadable value in ``columns``, counted per column.

    ``columns`` maps our column names to the names the user knows (the raw ones).
    """
    for column, shown in columns.items():
        frame = _leave_out(frame, frame[column].isna(), f"{what} without a readable {shown}", report)
    return frame


def _drop_repeated(frame: pd.DataFrame, column: str, what: str, report: ImportReport) -> pd.DataFrame:
    """Keep the first row of each id; later rows with the same id are left out (counted)."""
    if column not in frame.columns:
        return frame
    repeated = frame[column].notna() & frame[column].duplicated()
    return _leave_out(frame, repeated, f"{what} whose {column} repeats an earlier row", report)
