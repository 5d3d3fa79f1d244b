"""The event store: a folder of CSV/Parquet tables, or DataFrames, typed into one object (DESIGN §1).

How values are read, one documented way for every table:

* **Timestamps** are ISO 8601 in its extended form: ``2024-03-01``, ``2024-03-01 14:05``,
  ``2024-03-01T14:05:00.250``, each optionally followed by an offset (``Z``, ``+02``, ``+0200``,
  ``+02:00``), unless the config names a ``time_format`` (strftime, e.g. ``"%d/%m/%Y %H:%M"``) for the
  table. Anything else (``01/02/2024``, ``20240301``, epoch numbers) is reported as unreadable rather
  than guessed. A column whose values all carry an offset is converted to UTC; a column whose values
  carry none is taken as it is (the business's own clock). Either way the stored column is a naive
  ``Datetime[us]``. A column that mixes values with and without an offset is an error: there is no
  safe way to line them up. Typed columns follow the same rule: Parquet or pandas timestamps with a
  time zone become UTC, naive ones are kept, and a pandas ``object`` column holding both naive and
  aware ``Timestamp`` values is the same error.
* **Customer ids** are integers when every table's ids are whole numbers (``12346.0`` counts), text
  otherwise; text ids have surrounding blanks removed.
* **Numbers**: text is read with ``.`` as the decimal point and no thousands separator; ``NaN`` counts
  as missing.
* **Booleans**: ``true/false``, ``t/f``, ``yes/no``, ``y/n``, ``1/0`` in any case.
* **Categories** (``kind``, ``status``) are compared in lower case.
* Columns outside the contract (customer attributes such as ``segment``) are kept as read: text from
  CSV, their own type from Parquet or DataFrames.
* Nothing is "fixed" silently: a value that cannot be read is reported, never dropped.

Reading never stops at the first problem. Problems found while reading are kept on the store
(``EventStore.load_problems``) and reported by :func:`churnrisk.validation.validate` with the rest.
"""

from __future__ import annotations

import codecs
import functools
import io
import os
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from churnrisk.contract import TABLES, Column, TableSpec
from churnrisk.errors import ChurnriskError, Problem

__all__ = ["EventStore", "StoreConfig", "read_config"]

Span = tuple[datetime | None, datetime | None]

N_EXAMPLES = 5
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

    A database (see :mod:`churnrisk.database`) takes ``schema = "analytics"`` at the top or per
    table, and per table ``table = "v_orders"`` (a table or view) or ``query = "SELECT ..."``.
    """

    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    encoding: str = "utf-8"
    schema: str | None = None

    def table(self, name: str) -> Mapping[str, Any]:
        return self.tables.get(name, {})


_TABLE_KEYS = {"file", "columns", "time_format", "encoding", "separator", "schema", "table", "query"}
#: Settings that say where a table is; at most one per table.
_WHERE_KEYS = ("file", "table", "query")


def read_config(path: str | os.PathLike[str] | None) -> StoreConfig:
    """Read a mapping TOML file; ``None`` gives the identity mapping.

    Raises :class:`~churnrisk.errors.ChurnriskError` when the file is missing, is not TOML, or names
    a table, a setting or a contract column that does not exist.
    """
    if path is None:
        return StoreConfig()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise ChurnriskError(
            f"config file {path} does not exist. Suggestion: check the --config path."
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ChurnriskError(f"config file {path} is not valid TOML: {exc}") from None
    _check_config(path, raw)
    encoding = str(raw.get("encoding", "utf-8"))
    _check_encoding(encoding)
    schema = raw.get("schema")
    return StoreConfig(
        tables=raw.get("tables", {}), encoding=encoding, schema=None if schema is None else str(schema)
    )


def _check_config(path: Path, raw: Mapping[str, Any]) -> None:
    def fail(what: str) -> ChurnriskError:
        return ChurnriskError(f"config file {path} {what}. Suggestion: see the example in the README.")

    unknown_keys = sorted(set(raw) - {"tables", "encoding", "schema"})
    if unknown_keys:
        raise fail(f"has unknown settings {unknown_keys}; known are ['encoding', 'schema', 'tables']")
    tables = raw.get("tables", {})
    if not isinstance(tables, Mapping):
        raise fail("has 'tables' that is not a table ([tables.orders] ...)")
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ChurnriskError(
            f"config file {path} names unknown tables {unknown}. Known tables: {sorted(TABLES)}."
        )
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise fail(f"has [tables.{name}] that is not a table")
        bad_keys = sorted(set(table) - _TABLE_KEYS)
        if bad_keys:
            raise fail(f"has unknown settings {bad_keys} for table '{name}'; known are {sorted(_TABLE_KEYS)}")
        where = [key for key in _WHERE_KEYS if key in table]
        if len(where) > 1 or ("query" in table and "schema" in table):
            named = where + (["schema"] if "query" in table and "schema" in table else [])
            raise fail(
                f"has [tables.{name}] with {named}: a table takes one of file, table "
                "(with an optional schema) or query"
            )
        columns = table.get("columns", {})
        if not isinstance(columns, Mapping) or not all(isinstance(v, str) for v in columns.values()):
            raise fail(f"has [tables.{name}.columns] that is not 'contract_name = \"your column\"' lines")
        contract = [c.name for c in TABLES[name].columns]
        bad_columns = sorted(set(columns) - set(contract))
        if bad_columns:
            raise fail(
                f"maps unknown columns {bad_columns} of table '{name}'; its contract columns are {contract}"
            )
        if "encoding" in table:
            _check_encoding(str(table["encoding"]))


def _check_encoding(encoding: str) -> str:
    """The codec's canonical name (``latin-1`` -> ``iso8859-1``); a clear error for unknown ones."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ChurnriskError(
            f"unknown encoding {encoding!r}. Suggestion: use a Python codec name such as "
            "'utf-8', 'latin-1' or 'cp1252'."
        ) from None


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
        #: The time span of the whole source when only part of it was read (events up to a date),
        #: or how to get it when it is first needed.
        self.span: Span | Callable[[], Span] = (None, None)

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
        if callable(self.span):
            self.span = self.span()
        bounds = [
            (frame[spec.time].min(), frame[spec.time].max())
            for name, frame in self.tables.items()
            if (spec := TABLES[name]).time and spec.time in frame.columns and frame.height
        ] + [self.span]
        lows = [lo for lo, _ in bounds if lo is not None]
        highs = [hi for _, hi in bounds if hi is not None]
        return (min(lows) if lows else None, max(highs) if highs else None)  # type: ignore[type-var,return-value]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls, frames: Mapping[str, pd.DataFrame | pl.DataFrame], *, config: StoreConfig | None = None
    ) -> EventStore:
        """Type DataFrames (pandas or Polars) given by contract table name.

        Examples
        --------
        >>> import pandas as pd
        >>> store = EventStore.from_frames({
        ...     "customers": pd.DataFrame({"customer_id": [1, 2]}),
        ...     "orders": pd.DataFrame({"customer_id": [1], "ordered_at": ["2024-03-01T10:00:00+02:00"],
        ...                             "amount": [9.5]}),
        ... })
        >>> store
        EventStore(customers=2, orders=1)
        >>> store["orders"]["ordered_at"].to_list()  # offsets become UTC
        [datetime.datetime(2024, 3, 1, 8, 0)]
        """
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
        columns: Mapping[str, Collection[str] | None] | None = None,
        until: datetime | None = None,
    ) -> EventStore:
        """Read every contract table found in ``folder`` (``<table>.csv`` or ``<table>.parquet``).

        ``encoding`` (of the CSV files) overrides the config's. Problems with the files themselves
        (empty, header only, not UTF-8, unreadable, both a CSV and a Parquet file) do not stop the
        reading: they are kept in ``load_problems`` and reported with every other problem.

        ``columns`` reads only the tables it names and, of each, only the given contract columns
        and the required ones (``None``: every column), e.g. what the features use
        (:func:`churnrisk.features.feature_inputs`): Parquet files are then read in part.

        ``until`` (naive, as the event times are) reads only the rows of a Parquet file whose event
        time is at or before it, or missing (the rows validation must see), as a database does:
        the files' statistics skip whole row groups of later events. CSV files are read whole.
        :meth:`time_span` still covers every event of the files.
        """
        config = config or StoreConfig()
        folder = Path(folder)
        if not folder.is_dir():
            what = "does not exist" if not folder.exists() else "is not a folder"
            raise ChurnriskError(
                f"{folder} {what}. Suggestion: give the folder that holds customers.csv "
                "(or .parquet) and the event tables."
            )
        if encoding is not None:
            _check_encoding(encoding)
        if until is not None and until.tzinfo is not None:  # times are stored in UTC, without a zone
            until = until.astimezone(UTC).replace(tzinfo=None)
        raw: dict[str, pl.DataFrame] = {}
        problems: list[Problem] = []
        cut: list[tuple[Path, str]] = []  # the files read up to ``until``, and their time column
        for name in TABLES if columns is None else [t for t in TABLES if t in columns]:
            table_config = config.table(name)
            path = _find_file(folder, name, table_config, problems)
            if path is None:
                continue
            table_encoding = encoding or table_config.get("encoding") or config.encoding
            wanted = None if columns is None else _wanted(name, columns[name], table_config)
            time = _up_to(name, path, table_config, until)
            up_to = None if time is None else (time, until)
            frame = _read_file(name, path, table_encoding, table_config, problems, wanted, up_to)
            if frame is not None:
                raw[name] = frame
            cut += [] if time is None else [(path, time)]
        store = _build(raw, config, problems=problems, source=str(folder))
        if cut:  # asked for only when someone needs the end of the data (labels do, features do not)
            store.span = functools.partial(_files_span, cut)
        return store


# ---------------------------------------------------------------------- reading files
def _find_file(
    folder: Path, name: str, table_config: Mapping[str, Any], problems: list[Problem]
) -> Path | None:
    if "file" in table_config:
        path = folder / str(table_config["file"])
        if not path.is_file():
            raise ChurnriskError(
                f"the config names {path} for table '{name}', but it does not exist. "
                f"Suggestion: the path is relative to {folder}."
            )
        return path
    found = [folder / f"{name}{ext}" for ext in (".parquet", ".csv") if (folder / f"{name}{ext}").is_file()]
    if len(found) > 1:
        problems.append(
            Problem(
                name,
                None,
                f"both {found[0].name} and {found[1].name} are in {folder}; neither was read",
                suggestion=f"keep one of them, or name the one to use in the config ([tables.{name}] file)",
            )
        )
        return None
    if not found:
        problems += _unread_files(folder, name)
    return found[0] if found else None


def _unread_files(folder: Path, name: str) -> list[Problem]:
    """A file named after the table in another format (``orders.xlsx``) is said, not silently skipped."""
    others = sorted(p.name for p in folder.glob(f"{name}.*") if p.is_file())
    if not others:
        return []
    return [
        Problem(
            name,
            None,
            f"{others[0]} is not read: tables are CSV or Parquet files",
            examples=tuple(others[1:]),
            suggestion=f"save it as {name}.csv (CSV UTF-8) or {name}.parquet",
        )
    ]


def _wanted(name: str, columns: Collection[str] | None, table_config: Mapping[str, Any]) -> set[str] | None:
    """The file's column names to read for the contract ``columns`` (and the required ones)."""
    if columns is None:
        return None
    mapping = table_config.get("columns", {})
    return {mapping.get(c, c) for c in {*columns, *TABLES[name].required}}


def _read_file(
    name: str,
    path: Path,
    encoding: str,
    table_config: Mapping[str, Any],
    problems: list[Problem],
    wanted: set[str] | None = None,
    up_to: tuple[str, datetime | None] | None = None,
) -> pl.DataFrame | None:
    """One table's file as it is (text for CSV); ``up_to``: a Parquet file's rows whose time
    column is at or before the given time, or missing."""
    if path.stat().st_size == 0:
        problems.append(Problem(name, None, f"{path.name} is empty (not even a header)"))
        return None
    frame: pl.DataFrame | None
    try:
        if path.suffix.lower() == ".parquet":
            schema = pl.read_parquet_schema(path)
            # none of the wanted columns: all of them, to report what is missing
            keep = [c for c in schema if wanted is None or c in wanted] or list(schema)
            rows = pl.scan_parquet(path).select(keep)
            if up_to is not None:
                time = pl.col(up_to[0])
                rows = rows.filter(time.is_null() | (time <= up_to[1]))
            frame = _contiguous(rows.collect())
            if frame.height == 0 and up_to is not None and _has_rows(path):
                return frame  # every event is later: none yet, which is no problem
        else:
            frame = _read_csv(name, path, encoding, str(table_config.get("separator", ",")), problems)
            if frame is not None and "separator" not in table_config:
                frame = _comma_separated(name, path, frame, problems)
            if frame is not None and wanted is not None:
                frame = frame.select(c for c in frame.columns if c in wanted)
    except pl.exceptions.NoDataError:
        problems.append(Problem(name, None, f"{path.name} is empty (not even a header)"))
        return None
    except (pl.exceptions.PolarsError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.append(Problem(name, None, f"{path.name} cannot be read: {reason}"))
        return None
    if frame is None:
        return None
    if frame.height == 0:
        problems.append(
            Problem(name, None, f"{path.name} has a header but no rows", examples=tuple(frame.columns))
        )
        return None
    return frame


def _up_to(name: str, path: Path, table_config: Mapping[str, Any], until: datetime | None) -> str | None:
    """The column of an event table's Parquet file to read ``until`` on: its event time, when the
    file holds naive times (other files are read whole, and their times parsed as usual). The
    customers are all read: an event's customer may sign up after ``until``."""
    time = TABLES[name].time
    if until is None or time is None or name == "customers" or path.suffix.lower() != ".parquet":
        return None
    column = str(table_config.get("columns", {}).get(time, time))
    try:
        dtype = pl.read_parquet_schema(path).get(column)
    except (pl.exceptions.PolarsError, OSError):
        return None  # reading the file reports it
    return column if isinstance(dtype, pl.Datetime) and dtype.time_zone is None else None


def _has_rows(path: Path) -> bool:
    return bool(pl.scan_parquet(path).select(pl.len()).collect().item())


def _files_span(files: list[tuple[Path, str]]) -> Span:
    """The earliest and latest time of every row of the given Parquet files and time columns."""
    bounds = [
        pl.scan_parquet(path).select(low=pl.col(column).min(), high=pl.col(column).max()).collect().row(0)
        for path, column in files
    ]
    lows = [low for low, _ in bounds if low is not None]
    highs = [high for _, high in bounds if high is not None]
    return (min(lows) if lows else None, max(highs) if highs else None)


def _contiguous(frame: pl.DataFrame) -> pl.DataFrame:
    """Numbers and times in one buffer each: a Parquet file comes in row groups, and a column of
    many chunks is copied every time it becomes a numpy array (the features make several, each as
    large as the table). Column by column, so that one column at most is held twice."""
    return pl.DataFrame([_one_buffer(frame.drop_in_place(name)) for name in list(frame.columns)])


def _one_buffer(column: pl.Series) -> pl.Series:
    if column.n_chunks() == 1 or not (column.dtype.is_numeric() or column.dtype.is_temporal()):
        return column
    if column.has_nulls():
        return column.rechunk()
    # Copied by numpy: its memory goes back to the system as soon as the table is dropped (a
    # Polars buffer's only after a while), which lowers the peak of a command that drops tables
    # as it goes.
    return pl.Series(column.name, column.to_physical().to_numpy()).cast(column.dtype)


def _read_csv(
    name: str, path: Path, encoding: str, separator: str, problems: list[Problem]
) -> pl.DataFrame | None:
    """Read every CSV column as text: parsing happens in one place, with examples of what failed."""
    codec = _check_encoding(encoding)
    if codec in ("utf-8", "utf-8-sig"):
        bad = _first_non_utf8_line(path)
        if bad is not None:
            line, snippet = bad
            problems.append(
                Problem(
                    name,
                    None,
                    f"{path.name} is not UTF-8: the first undecodable byte is on line {line}",
                    rows=1,
                    examples=(snippet,),
                    suggestion="pass --encoding with the file's encoding, e.g. --encoding latin-1",
                )
            )
            return None
        return pl.read_csv(path, infer_schema=False, separator=separator)
    try:
        text = path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        problems.append(
            Problem(
                name,
                None,
                f"{path.name} cannot be decoded as {encoding}: {exc.reason} at byte {exc.start:,}",
                suggestion="check the --encoding (or the config's encoding) of this file",
            )
        )
        return None
    return pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False, separator=separator)


def _comma_separated(
    name: str, path: Path, frame: pl.DataFrame, problems: list[Problem]
) -> pl.DataFrame | None:
    """``frame``, unless its one column is a header of several names joined by another separator."""
    header = frame.columns[0]
    separator = next((s for s in (";", "\t", "|") if s in header), None) if frame.width == 1 else None
    if separator is None:
        return frame
    toml = separator.replace("\t", "\\t")
    problems.append(
        Problem(
            name,
            None,
            f"{path.name} is not separated by commas: its header reads {header!r}",
            suggestion=f'name its separator in a --config TOML file: [tables.{name}] separator = "{toml}"',
        )
    )
    return None


def _first_non_utf8_line(path: Path, *, chunk_size: int = 1 << 24) -> tuple[int, str] | None:
    """The (1-based) line number and a snippet of the first line that is not valid UTF-8.

    Reads in chunks cut at line ends (a newline byte never occurs inside a UTF-8 sequence), so a
    large clean file costs one fast pass and no more memory than a chunk.
    """
    lines_before, carry = 0, b""
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            block = carry + chunk
            cut = block.rfind(b"\n") + 1 if chunk else len(block)
            block, carry = block[:cut], block[cut:]
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as exc:
                start = block.rfind(b"\n", 0, exc.start) + 1
                end = block.find(b"\n", exc.start)
                line = block[start : end if end >= 0 else len(block)]
                snippet = line[:80].decode("utf-8", errors="replace").rstrip()
                return lines_before + block.count(b"\n", 0, exc.start) + 1, snippet
            lines_before += block.count(b"\n")
            if not chunk:
                return None


def _to_polars(name: str, frame: pd.DataFrame | pl.DataFrame) -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    if not isinstance(frame, pd.DataFrame):
        raise ChurnriskError(
            f"table '{name}' must be a pandas or Polars DataFrame, got {type(frame).__name__}."
        )
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    mixed = [c for c in frame.columns if frame[c].dtype == object]
    typed = pl.from_pandas(frame.drop(columns=mixed)) if len(mixed) < frame.shape[1] else None
    # Object columns (mixed Python values, e.g. naive and aware Timestamps) go through text so that
    # parsing -- and its error reporting -- happens in one place.
    texts = {
        column: pl.Series(
            column, [None if _is_missing(v) else _isoformat(v) for v in frame[column]], dtype=pl.String
        )
        for column in mixed
    }
    return pl.DataFrame(
        [typed[c] if typed is not None and c in typed.columns else texts[c] for c in frame.columns]
    )


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and value != value)


def _isoformat(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# ---------------------------------------------------------------------- typing
def _build(
    raw: Mapping[str, pl.DataFrame], config: StoreConfig, *, problems: list[Problem], source: str
) -> EventStore:
    tables: dict[str, pl.DataFrame] = {}
    for name, frame in raw.items():
        spec = TABLES[name]
        mapping = config.table(name).get("columns", {})
        found = frame.columns
        frame = _rename(frame, mapping)
        missing = [c for c in spec.required if c not in frame.columns]
        for column in missing:
            mapped = f" (the config maps it to '{mapping[column]}')" if column in mapping else ""
            problems.append(
                Problem(
                    name,
                    column,
                    f"missing required column{mapped}; found columns {found}",
                    suggestion="map your column names onto the contract in a --config TOML file",
                )
            )
        if not missing:
            tables[name] = _coerce(spec, frame, config.table(name), problems)
    tables = _unify_ids(tables)
    return EventStore(tables, load_problems=problems, source=source)


def _rename(frame: pl.DataFrame, columns: Mapping[str, str]) -> pl.DataFrame:
    """Rename the user's columns to contract names (``columns`` maps contract name -> theirs)."""
    mapping = {theirs: ours for ours, theirs in columns.items() if theirs in frame.columns}
    # A column already called by a contract name that the config maps elsewhere gives way.
    clashing = [ours for theirs, ours in mapping.items() if ours in frame.columns and ours not in mapping]
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
            parsed, bad = (
                pl.Series(name, [None] * frame.height, dtype=pl.Datetime("us")),
                mixed.text.is_not_null(),
            )
        else:
            if bad is not None and bad.any():
                problems.append(_bad_values(spec.name, column, frame[name].filter(bad), table_config))
        if column.required and (parsed.null_count() or bad is not None):
            # Values that were there but unreadable are reported above, not again as missing.
            missing = parsed.is_null() if bad is None else parsed.is_null() & ~bad
            problems += missing_values(spec.name, name, missing)
        columns.append(parsed.alias(name))
    return pl.DataFrame(columns)


def missing_values(table: str, column: str, missing: pl.Series) -> list[Problem]:
    """A problem for the missing values of a required column (examples are 1-based row numbers)."""
    rows = missing.arg_true()
    if rows.len() == 0:
        return []
    examples = tuple(f"row {r + 1}" for r in rows.head(N_EXAMPLES).to_list())
    return [Problem(table, column, "missing values in a required column", rows=rows.len(), examples=examples)]


def _bad_values(table: str, column: Column, values: pl.Series, table_config: Mapping[str, Any]) -> Problem:
    if column.kind == "category":
        message = f"unknown values; allowed are {list(column.allowed or ())}"
    else:
        message = f"values that are not {_expected(column, table_config)}"
    suggestion = None
    if column.kind == "time" and not table_config.get("time_format"):
        suggestion = "write ISO 8601 timestamps, or set time_format for this table in a --config TOML file"
    return Problem(
        table, column.name, message, rows=len(values), examples=_examples(values), suggestion=suggestion
    )


def _expected(column: Column, table_config: Mapping[str, Any]) -> str:
    if column.kind == "time":
        fmt = table_config.get("time_format")
        return f"timestamps in the format {fmt!r}" if fmt else "ISO 8601 timestamps (YYYY-MM-DD[ HH:MM:SS])"
    return {"number": "numbers", "bool": "true/false values"}.get(column.kind, "valid values")


def _mixed_zone_problem(table: str, column: str, mixed: _MixedZones) -> Problem:
    naive = mixed.text.filter(mixed.naive)
    aware = mixed.text.filter(mixed.aware)
    return Problem(
        table,
        column,
        f"mixes time-zone-aware ({len(aware):,} rows) and naive ({len(naive):,} rows) timestamps",
        rows=len(aware) + len(naive),
        examples=(*_examples(aware)[:2], *_examples(naive)[:2]),
        suggestion="write every timestamp with an offset (e.g. +00:00), or none of them",
    )


def _examples(values: pl.Series) -> tuple[Any, ...]:
    return tuple(values.unique(maintain_order=True).head(N_EXAMPLES).to_list())


def _blank(series: pl.Series) -> pl.Series:
    """Text with blanks stripped and empty strings as null."""
    stripped = series.cast(pl.String).str.strip_chars()
    return pl.select(pl.when(stripped == "").then(None).otherwise(stripped)).to_series()


def _no_nan(series: pl.Series) -> pl.Series:
    return series.fill_nan(None) if series.dtype.is_float() and series.is_nan().any() else series


def _parse_id(series: pl.Series, column: Column, _: Mapping[str, Any]) -> tuple[pl.Series, None]:
    series = _no_nan(series)
    if series.dtype == pl.Int64:
        return series, None
    if series.dtype.is_integer():
        as_int = series.cast(pl.Int64, strict=False)  # UInt64 beyond Int64 -> text below
        if (as_int.is_null() == series.is_null()).all():
            return as_int, None
    if series.dtype.is_float():
        whole = series.is_null() | (series == series.floor())
        if whole.all():
            return series.cast(pl.Int64), None
    return _blank(series), None


def _parse_number(
    series: pl.Series, column: Column, _: Mapping[str, Any]
) -> tuple[pl.Series, pl.Series | None]:
    if series.dtype.is_numeric():
        return _no_nan(series.cast(pl.Float64)), None
    text = _blank(series)
    parsed = _no_nan(text.cast(pl.Float64, strict=False))
    nan_text = text.str.to_lowercase().is_in(["nan", "+nan", "-nan"])
    return parsed, parsed.is_null() & text.is_not_null() & ~nan_text


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
    # Worked out on the few distinct values, then mapped onto the rows.
    spelled = series.cast(pl.String).drop_nulls().unique()
    clean = _blank(spelled).str.to_lowercase()
    original = series.cast(pl.String)
    text = original
    if not (clean == spelled).all() or clean.null_count():
        text = original.replace_strict(spelled, clean, default=None)
    unknown = spelled.filter(clean.is_not_null() & ~clean.is_in(list(column.allowed or ())))
    return text, original.is_in(unknown.implode()).fill_null(False) if unknown.len() else None


def _parse_text(series: pl.Series, column: Column, _: Mapping[str, Any]) -> tuple[pl.Series, None]:
    series = _no_nan(series)
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
    parsed = _parse_format(text, str(fmt)) if fmt else _parse_iso(text)
    return parsed, parsed.is_null() & text.is_not_null()


def _parse_format(text: pl.Series, fmt: str) -> pl.Series:
    parsed = text.str.to_datetime(fmt, time_unit="us", strict=False)
    if isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone is not None:
        parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return parsed.cast(pl.Datetime("us"))


class _MixedZones(Exception):
    def __init__(self, text: pl.Series, aware: pl.Series, naive: pl.Series) -> None:
        self.text, self.aware, self.naive = text, aware, naive


#: ISO 8601, extended form: a date, optionally a time (minutes, seconds, fraction), optionally an offset.
_ISO_LOCAL = (
    r"^(?<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?<hour>\d{2}):(?<minute>\d{2})(?::(?<second>\d{2})(?:[.,](?<fraction>\d{1,9}))?)?)?"
)
_OFFSET = r"Z|z|[+-]\d{2}(?::?\d{2})?"
_ISO = _ISO_LOCAL + rf"\s*(?<offset>{_OFFSET})?$"
_ISO_AWARE = _ISO_LOCAL + rf"\s*(?:{_OFFSET})$"


def _parse_iso(text: pl.Series) -> pl.Series:
    """Parse ISO 8601 text into naive ``Datetime[us]`` (values with an offset converted to UTC).

    A mix of values with and without an offset raises :class:`_MixedZones`; anything that is not
    ISO 8601 becomes null (and is reported by the caller). Only values of the ISO shape reach the
    fast parser, so its format inference can never read ``01/02/2024`` one way or the other.
    """
    iso = text.str.contains(_ISO).fill_null(False)
    aware = text.str.contains(_ISO_AWARE).fill_null(False)
    naive = iso & ~aware
    if aware.any() and naive.any():
        raise _MixedZones(text, aware, naive)
    utc = bool(aware.any())
    shaped = pl.select(pl.when(iso).then(text)).to_series()
    fast = shaped.str.to_datetime(time_unit="us", strict=False, time_zone="UTC" if utc else None)
    if utc:
        fast = fast.dt.replace_time_zone(None)
    missed = fast.is_null() & iso
    if not missed.any():
        return fast.cast(pl.Datetime("us"))
    # Shapes the fast parser's inferred format did not cover (e.g. dates mixed with date-times).
    slow = _parse_iso_parts(pl.select(pl.when(missed).then(text)).to_series())
    return fast.cast(pl.Datetime("us")).fill_null(slow)


def _parse_iso_parts(text: pl.Series) -> pl.Series:
    """The general ISO parser: split into parts, rebuild one canonical form, parse that."""
    parts = text.str.extract_groups(_ISO).struct.unnest()
    canonical = pl.select(
        pl.concat_str(
            parts["date"],
            pl.lit(" "),
            parts["hour"].fill_null("00"),
            pl.lit(":"),
            parts["minute"].fill_null("00"),
            pl.lit(":"),
            parts["second"].fill_null("00"),
            pl.lit("."),
            parts["fraction"].fill_null("0"),
        )
    ).to_series()
    parsed = canonical.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False)
    offset = parts["offset"]
    if offset.is_null().all():
        return parsed
    shift = pl.select(pl.duration(minutes=pl.lit(_offset_minutes(offset).fill_null(0)))).to_series()
    return parsed - shift


def _offset_minutes(offset: pl.Series) -> pl.Series:
    """``Z`` -> 0, ``+02`` -> 120, ``-0530`` -> -330, ``+02:00`` -> 120."""
    digits = offset.str.replace(":", "", literal=True)
    hours = digits.str.slice(1, 2).cast(pl.Int64, strict=False).fill_null(0)
    minutes = digits.str.slice(3, 2).cast(pl.Int64, strict=False).fill_null(0)
    sign = pl.select(pl.when(digits.str.starts_with("-")).then(-1).otherwise(1)).to_series()
    return sign * (hours * 60 + minutes)


#: Text ids that are integers written plainly ("12346", "12346.0") -- not "0012", which is a code.
_INTEGER_TEXT = r"^-?(?:0|[1-9]\d*)(?:\.0*)?$"


def _unify_ids(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Give ``customer_id`` one type in every table: Int64 if all are whole numbers, else text."""
    out = {}
    for name, frame in tables.items():
        ids = frame["customer_id"]
        if ids.dtype == pl.String:
            ids = _integer_ids(ids)
        out[name] = frame.with_columns(ids.alias("customer_id"))
    if {frame["customer_id"].dtype for frame in out.values()} <= {pl.Int64}:
        return out
    return {n: f.with_columns(pl.col("customer_id").cast(pl.String)) for n, f in out.items()}


def _integer_ids(ids: pl.Series) -> pl.Series:
    """``ids`` as Int64 when every one is a plainly written whole number, else unchanged."""
    if not ids.drop_nulls().str.contains(_INTEGER_TEXT).all():
        return ids
    as_int = ids.str.replace(r"\.0*$", "").cast(pl.Int64, strict=False)  # overflow -> null
    return as_int if (as_int.is_null() == ids.is_null()).all() else ids
