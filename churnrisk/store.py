"""The event store: a folder of CSV/Parquet tables, or DataFrames, typed into one object (DESIGN §1).

How values are read, one documented way for every table:

* **Timestamps** are ISO 8601 (``2024-03-01``, ``2024-03-01 14:05:00``, ``2024-03-01T14:05:00+02:00``)
  unless the config names a ``time_format`` (strftime) for the table. A column whose values all carry
  an offset is converted to UTC; a column whose values carry none is taken as it is (the business's
  own clock). Either way the stored column is a naive ``Datetime[us]``. A column that mixes values
  with and without an offset is an error: there is no safe way to line them up.
* **Customer ids** are integers when every table's ids are whole numbers (``12346.0`` counts), text
  otherwise; text ids have surrounding blanks removed.
* **Categories** (``kind``, ``status``) are compared in lower case.
* Nothing is "fixed" silently: a value that cannot be read is reported, never dropped.

Reading never stops at the first problem. Problems found while reading are kept on the store
(``EventStore.load_problems``) and reported by :func:`churnrisk.validation.validate` with the rest.
"""

from __future__ import annotations

import io
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from churnrisk.contract import TABLES, Column, TableSpec
from churnrisk.errors import ChurnriskError, Problem

__all__ = ["EventStore", "StoreConfig", "read_config"]

N_EXAMPLES = 5
_AWARE = r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


@dataclass(frozen=True)
class StoreConfig:
    """How a user's files map onto the contract, read from a small TOML file.

    Example ``mapping.toml``::

        encoding = "utf-8"            # of every CSV file, unless a table says otherwise

        [tables.orders]
        file = "transactions.csv"     # default: orders.csv or orders.parquet
        time_format = "%d/%m/%Y %H:%M"
        [tables.orders.columns]       # contract name = your column name
        customer_id = "CustomerID"
        ordered_at = "InvoiceDate"
        amount = "Revenue"
    """

    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    encoding: str = "utf-8"

    def table(self, name: str) -> Mapping[str, Any]:
        return self.tables.get(name, {})


def read_config(path: str | os.PathLike[str] | None) -> StoreConfig:
    """Read a mapping TOML file; ``None`` gives the identity mapping."""
    if path is None:
        return StoreConfig()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChurnriskError(f"config file {path} does not exist.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ChurnriskError(f"config file {path} is not valid TOML: {exc}") from None
    tables = raw.get("tables", {})
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ChurnriskError(
            f"config file {path} names unknown tables {unknown}. Known tables: {sorted(TABLES)}."
        )
    return StoreConfig(tables=tables, encoding=str(raw.get("encoding", "utf-8")))


class EventStore:
    """Typed event tables keyed by contract name (``customers``, ``orders``, ...), as Polars frames.

    Build one with :meth:`from_folder` or :meth:`from_frames`; most users call
    :func:`churnrisk.load_store`, which also validates.
    """

    def __init__(
        self,
        tables: Mapping[str, pl.DataFrame],
        *,
        load_problems: list[Problem] | None = None,
        source: str | None = None,
    ) -> None:
        self.tables: dict[str, pl.DataFrame] = dict(tables)
        self.load_problems: list[Problem] = list(load_problems or [])
        self.source = source

    def __contains__(self, name: object) -> bool:
        return name in self.tables

    def __getitem__(self, name: str) -> pl.DataFrame:
        try:
            return self.tables[name]
        except KeyError:
            raise ChurnriskError(
                f"the event store has no '{name}' table; it has {sorted(self.tables)}."
            ) from None

    def get(self, name: str) -> pl.DataFrame | None:
        return self.tables.get(name)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v.height:,}" for k, v in self.tables.items())
        return f"EventStore({sizes})"

    def to_pandas(self, name: str) -> pd.DataFrame:
        """One table as a pandas DataFrame."""
        return self[name].to_pandas()

    @property
    def customer_ids(self) -> pl.Series:
        return self["customers"]["customer_id"]

    def time_span(self) -> tuple[datetime | None, datetime | None]:
        """The earliest and latest event time over all tables (``None`` if there are no events)."""
        bounds = [
            (frame[spec.time].min(), frame[spec.time].max())
            for name, frame in self.tables.items()
            if (spec := TABLES[name]).time and spec.time in frame.columns and frame.height
        ]
        lows = [lo for lo, _ in bounds if lo is not None]
        highs = [hi for _, hi in bounds if hi is not None]
        return (min(lows) if lows else None, max(highs) if highs else None)  # type: ignore[type-var]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls, frames: Mapping[str, pd.DataFrame | pl.DataFrame], *, config: StoreConfig | None = None
    ) -> EventStore:
        """Type DataFrames (pandas or Polars) given by contract table name."""
        config = config or StoreConfig()
        unknown = sorted(set(frames) - set(TABLES))
        if unknown:
            raise ChurnriskError(f"unknown tables {unknown}. Known tables: {sorted(TABLES)}.")
        raw = {name: _to_polars(name, frame) for name, frame in frames.items()}
        return _build(raw, config, problems=[], source="frames")

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike[str],
        *,
        config: StoreConfig | None = None,
        encoding: str | None = None,
    ) -> EventStore:
        """Read every contract table found in ``folder`` (``<table>.csv`` or ``<table>.parquet``)."""
        config = config or StoreConfig()
        folder = Path(folder)
        if not folder.is_dir():
            raise ChurnriskError(f"{folder} is not a folder of event tables.")
        raw: dict[str, pl.DataFrame] = {}
        problems: list[Problem] = []
        for name in TABLES:
            path = _find_file(folder, name, config.table(name))
            if path is None:
                continue
            table_encoding = encoding or config.table(name).get("encoding") or config.encoding
            frame = _read_file(name, path, table_encoding, problems)
            if frame is not None:
                raw[name] = frame
        return _build(raw, config, problems=problems, source=str(folder))


# ---------------------------------------------------------------------- reading files
def _find_file(folder: Path, name: str, table_config: Mapping[str, Any]) -> Path | None:
    if "file" in table_config:
        path = folder / str(table_config["file"])
        if not path.exists():
            raise ChurnriskError(f"the config names {path} for table '{name}', but it does not exist.")
        return path
    found = [folder / f"{name}{ext}" for ext in (".parquet", ".csv") if (folder / f"{name}{ext}").exists()]
    if len(found) > 1:
        raise ChurnriskError(
            f"both {found[0].name} and {found[1].name} are in {folder}: keep one, or name it in the config."
        )
    return found[0] if found else None


def _read_file(name: str, path: Path, encoding: str, problems: list[Problem]) -> pl.DataFrame | None:
    if path.stat().st_size == 0:
        problems.append(Problem(name, None, f"{path.name} is empty (not even a header)"))
        return None
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path)
        else:
            frame = _read_csv(name, path, encoding, problems)
            if frame is None:
                return None
    except (pl.exceptions.PolarsError, OSError) as exc:
        problems.append(Problem(name, None, f"{path.name} cannot be read: {exc}"))
        return None
    if frame.height == 0:
        problems.append(Problem(name, None, f"{path.name} has a header but no rows"))
        return None
    return frame


def _read_csv(name: str, path: Path, encoding: str, problems: list[Problem]) -> pl.DataFrame | None:
    """Read every CSV column as text: parsing happens in one place, with examples of what failed."""
    if encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
        bad = _first_non_utf8_line(path)
        if bad is not None:
            line, snippet = bad
            problems.append(
                Problem(
                    name,
                    None,
                    f"{path.name} is not UTF-8: the first undecodable byte is on line {line}",
                    examples=(snippet,),
                    suggestion="pass --encoding with the file's encoding, e.g. --encoding latin-1",
                )
            )
            return None
        return pl.read_csv(path, infer_schema=False)
    try:
        text = path.read_bytes().decode(encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        problems.append(Problem(name, None, f"{path.name} cannot be decoded as {encoding}: {exc}"))
        return None
    return pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False)


def _first_non_utf8_line(path: Path) -> tuple[int, str] | None:
    """The (1-based) line number and a snippet of the first line that is not valid UTF-8."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number, line[:60].decode("utf-8", errors="replace").rstrip()
    return None


def _to_polars(name: str, frame: pd.DataFrame | pl.DataFrame) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    if not isinstance(frame, pd.DataFrame):
        raise ChurnriskError(f"table '{name}' must be a pandas or Polars DataFrame, got {type(frame)}.")
    frame = frame.reset_index(drop=True)
    mixed = [c for c in frame.columns if frame[c].dtype == object]
    converted = frame.drop(columns=mixed)
    out = pl.from_pandas(converted) if len(converted.columns) else pl.DataFrame()
    # Object columns (mixed Python values, e.g. naive and aware Timestamps) go through text so that
    # parsing -- and its error reporting -- happens in one place.
    for column in mixed:
        values = [None if _is_missing(v) else _isoformat(v) for v in frame[column]]
        out = out.with_columns(pl.Series(str(column), values, dtype=pl.String))
    if out.width == 0:
        out = pl.DataFrame({str(c): [] for c in frame.columns})
    return out.select([str(c) for c in frame.columns])


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NaT


def _isoformat(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# ---------------------------------------------------------------------- typing
def _build(
    raw: Mapping[str, pl.DataFrame], config: StoreConfig, *, problems: list[Problem], source: str
) -> EventStore:
    tables: dict[str, pl.DataFrame] = {}
    for name, frame in raw.items():
        spec = TABLES[name]
        frame = _rename(frame, config.table(name).get("columns", {}))
        missing = [c for c in spec.required if c not in frame.columns]
        if missing:
            problems.append(
                Problem(
                    name,
                    ", ".join(missing),
                    f"missing required column{'s' if len(missing) > 1 else ''}; "
                    f"found columns {frame.columns}",
                    suggestion="map your column names onto the contract in a --config TOML file",
                )
            )
            continue
        tables[name] = _coerce(spec, frame, config.table(name), problems)
    tables = _unify_ids(tables)
    return EventStore(tables, load_problems=problems, source=source)


def _rename(frame: pl.DataFrame, columns: Mapping[str, str]) -> pl.DataFrame:
    mapping = {theirs: ours for ours, theirs in columns.items() if theirs in frame.columns}
    clashing = [ours for theirs, ours in mapping.items() if ours in frame.columns and ours != theirs]
    return frame.drop(clashing).rename(mapping)


def _coerce(
    spec: TableSpec, frame: pl.DataFrame, table_config: Mapping[str, Any], problems: list[Problem]
) -> pl.DataFrame:
    parsers = {
        "id": _parse_id,
        "time": _parse_time,
        "number": _parse_number,
        "bool": _parse_bool,
        "category": _parse_category,
        "text": _parse_text,
    }
    columns = []
    for name in frame.columns:
        column = spec.column(name)
        if column is None:
            columns.append(frame[name])
            continue
        try:
            parsed, bad = parsers[column.kind](frame[name], column, table_config)
        except _MixedZones as mixed:
            problems.append(_mixed_zone_problem(spec.name, name, mixed))
            columns.append(pl.Series(name, [None] * frame.height, dtype=pl.Datetime("us")))
            continue
        if bad is not None and bad.any():
            problems.append(_bad_values(spec.name, column, frame[name].filter(bad), parsed.dtype))
        columns.append(parsed.alias(name))
    return pl.DataFrame(columns)


def _bad_values(table: str, column: Column, values: pl.Series, dtype: Any) -> Problem:
    what = {"time": "timestamps", "number": "numbers", "bool": "true/false values"}.get(
        column.kind, "valid values"
    )
    if column.kind == "category":
        return Problem(
            table,
            column.name,
            f"unknown values; allowed are {list(column.allowed or ())}",
            rows=len(values),
            examples=_examples(values),
        )
    return Problem(
        table, column.name, f"values that are not {what}", rows=len(values), examples=_examples(values)
    )


def _mixed_zone_problem(table: str, column: str, mixed: _MixedZones) -> Problem:
    naive = mixed.text.filter(mixed.aware.not_() & mixed.text.is_not_null())
    aware = mixed.text.filter(mixed.aware)
    return Problem(
        table,
        column,
        f"mixes time-zone-aware ({len(aware):,} rows) and naive ({len(naive):,} rows) timestamps",
        rows=min(len(aware), len(naive)),
        examples=(*_examples(aware)[:2], *_examples(naive)[:2]),
        suggestion="write every timestamp with an offset (e.g. +00:00), or none of them",
    )


def _examples(values: pl.Series) -> tuple[Any, ...]:
    return tuple(values.unique(maintain_order=True).head(N_EXAMPLES).to_list())


def _blank(series: pl.Series) -> pl.Series:
    """Text with blanks stripped and empty strings as null."""
    stripped = series.cast(pl.String).str.strip_chars()
    return pl.select(pl.when(stripped == "").then(None).otherwise(stripped)).to_series()


def _parse_id(series: pl.Series, column: Column, _: Mapping[str, Any]) -> tuple[pl.Series, None]:
    if series.dtype.is_integer():
        return series.cast(pl.Int64), None
    if series.dtype.is_float():
        whole = series.is_null() | (series == series.floor())
        if whole.all():
            return series.cast(pl.Int64), None
    text = _blank(series)
    return text, None


def _parse_number(
    series: pl.Series, column: Column, _: Mapping[str, Any]
) -> tuple[pl.Series, pl.Series | None]:
    if series.dtype.is_numeric():
        return series.cast(pl.Float64), None
    text = _blank(series)
    parsed = text.cast(pl.Float64, strict=False)
    return parsed, parsed.is_null() & text.is_not_null()


def _parse_bool(
    series: pl.Series, column: Column, _: Mapping[str, Any]
) -> tuple[pl.Series, pl.Series | None]:
    if series.dtype == pl.Boolean:
        return series, None
    text = _blank(series).str.to_lowercase()
    parsed = pl.select(
        pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False).otherwise(None)
    ).to_series()
    return parsed, parsed.is_null() & text.is_not_null()


def _parse_category(
    series: pl.Series, column: Column, _: Mapping[str, Any]
) -> tuple[pl.Series, pl.Series | None]:
    text = _blank(series).str.to_lowercase()
    return text, text.is_not_null() & ~text.is_in(list(column.allowed or ()))


def _parse_text(series: pl.Series, column: Column, _: Mapping[str, Any]) -> tuple[pl.Series, None]:
    if series.dtype.is_integer() or series.dtype == pl.String:
        return series.cast(pl.String), None
    if series.dtype.is_float():
        # 536365.0 -> "536365": ids read as floats keep their natural spelling
        whole = series.is_null() | (series == series.floor())
        if whole.all():
            return series.cast(pl.Int64).cast(pl.String), None
    return series.cast(pl.String), None


def _parse_time(
    series: pl.Series, column: Column, table_config: Mapping[str, Any]
) -> tuple[pl.Series, pl.Series | None]:
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            series = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return series.cast(pl.Datetime("us")), None
    if dtype == pl.Date:
        return series.cast(pl.Datetime("us")), None
    text = _blank(series)
    fmt = table_config.get("time_format")
    if fmt:
        parsed = text.str.to_datetime(fmt, time_unit="us", strict=False)
        if isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone is not None:
            parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return parsed, parsed.is_null() & text.is_not_null()
    aware = text.str.contains(_AWARE)
    if aware.any() and (aware.not_() & text.is_not_null()).any():
        # Reported by _mixed_zone_problem; the values are not parsed at all.
        raise _MixedZones(text, aware)
    parsed = _parse_iso(text, utc=bool(aware.any()))
    return parsed, parsed.is_null() & text.is_not_null()


class _MixedZones(Exception):
    def __init__(self, text: pl.Series, aware: pl.Series) -> None:
        self.text, self.aware = text, aware


def _parse_iso(text: pl.Series, *, utc: bool) -> pl.Series:
    """Parse ISO 8601 text; Polars first (fast), pandas for whatever Polars' inferred format missed."""
    fast = text.str.to_datetime(time_unit="us", strict=False, time_zone="UTC" if utc else None)
    if utc:
        fast = fast.dt.replace_time_zone(None)
    missed = fast.is_null() & text.is_not_null()
    if not missed.any():
        return fast
    values = text.filter(missed).unique()
    slow = pd.to_datetime(values.to_pandas(), format="ISO8601", errors="coerce", utc=utc)
    if utc:
        slow = slow.dt.tz_localize(None)
    lookup = pl.DataFrame({"text": values, "parsed": pl.from_pandas(slow).cast(pl.Datetime("us"))})
    filled = pl.DataFrame({"text": text}).join(lookup, on="text", how="left", maintain_order="left")
    return fast.fill_null(filled["parsed"])


def _unify_ids(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Give ``customer_id`` one type in every table: Int64 if all are whole numbers, else text."""
    dtypes = {frame["customer_id"].dtype for frame in tables.values()}
    if dtypes <= {pl.Int64}:
        return tables
    out = {}
    for name, frame in tables.items():
        ids = frame["customer_id"]
        if ids.dtype == pl.String:
            as_int = ids.cast(pl.Int64, strict=False)
            # "0012" and "12" are different text ids: only canonical integers convert losslessly
            if (as_int.is_null() == ids.is_null()).all() and (as_int.cast(pl.String) == ids).all():
                ids = as_int
        out[name] = frame.with_columns(ids.alias("customer_id"))
    dtypes = {frame["customer_id"].dtype for frame in out.values()}
    if dtypes <= {pl.Int64}:
        return out
    return {n: f.with_columns(pl.col("customer_id").cast(pl.String)) for n, f in out.items()}
