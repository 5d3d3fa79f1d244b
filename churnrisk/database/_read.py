"""Reading the contract tables of a database into an event store: only the columns used, only
the events up to a date, as Arrow columns (PostgreSQL over parallel connections)."""

from __future__ import annotations

import contextlib
import os
import queue
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import polars as pl

from churnrisk.contract import TABLES
from churnrisk.database._connection import (
    _connect,
    _Database,
    _database_errors,
    is_database_url,
    mask_url,
    quote,
)
from churnrisk.errors import ChurnriskError
from churnrisk.store import EventStore, StoreConfig, _build, _wanted

if TYPE_CHECKING:
    import pyarrow as pa


def read_store(
    source: str | os.PathLike[str],
    *,
    config: StoreConfig | None = None,
    encoding: str | None = None,
    columns: Mapping[str, Collection[str] | None] | None = None,
    until: datetime | None = None,
) -> EventStore:
    """Read an event store from a folder or a database URL (without validating it).

    ``columns`` and ``until`` as for :meth:`EventStore.from_folder` (Parquet files are read up to
    ``until``, CSV files whole) and :func:`read_database` (the events after it stay on the server).
    """
    if is_database_url(source):
        return read_database(str(source), config=config, columns=columns, until=until)
    return EventStore.from_folder(source, config=config, encoding=encoding, columns=columns, until=until)


def read_database(
    url: str,
    *,
    config: StoreConfig | None = None,
    columns: Mapping[str, Collection[str] | None] | None = None,
    until: datetime | None = None,
) -> EventStore:
    """Read the contract tables of a database into an :class:`EventStore`.

    Parameters
    ----------
    url : str
        ``postgresql://user@host:port/db`` or ``duckdb://path/to/file.duckdb``.
    config : StoreConfig, optional
        ``schema`` (for every table, or per table), ``table`` (a table or view) or ``query`` (SQL)
        per contract table, and the column mapping.
    columns : mapping, optional
        Read only these tables and, of each, these contract columns and the required ones.
    until : datetime, optional
        Read only events at or before ``until`` (and those without a time, which validation
        reports); the store's :meth:`~EventStore.time_span` still covers every event of the
        database, so the end of the data (and so censoring) does not change.

    Returns
    -------
    EventStore
        Typed exactly like a folder of the same tables; ``source`` is the URL, password masked.
    """
    if until is not None and not isinstance(until, datetime):
        raise ChurnriskError(
            f"The 'until' parameter of read_database must be a datetime. Got {until!r} instead."
        )
    config = config or StoreConfig()
    names = list(TABLES) if columns is None else [t for t in TABLES if t in columns]
    with _connect(url, read_only=True) as db:
        with _database_errors(db, "listing the tables"):
            default_schema = config.schema or db.current_schema()
            found = {schema: db.relations(schema) for schema in _schemas(config, names, default_schema)}
        queries = []
        for name in names:
            relation = _relation(db, name, config.table(name), default_schema, found)
            if relation is not None:
                with _database_errors(db, f"reading table '{name}' ({relation})"):
                    queries.append(_plan(db, name, relation, config.table(name), columns, until))
        raw = _fetch_all(db, queries)
    store = _build(raw, config, problems=[], source=mask_url(url))
    spans = [query.span for query in queries if query.span]
    if spans:  # asked for only when someone needs the end of the data (labels do, features do not)
        store.span = partial(_source_span, url, spans)
    return store


@dataclass(frozen=True)
class _Query:
    """How to read one contract table: its rows, and the time span of the whole relation if the
    rows are only those up to a date."""

    name: str
    parts: tuple[str, ...]  # statements whose rows, one after the other, are the table's
    span: str | None = None


def _plan(
    db: _Database,
    name: str,
    relation: str,
    table_config: Mapping[str, Any],
    columns: Mapping[str, Collection[str] | None] | None,
    until: datetime | None,
) -> _Query:
    """The wanted columns of one table; with ``until``, the later events are left on the server."""
    schema = db.arrow(f"SELECT * FROM {relation} LIMIT 0").schema
    wanted = None if columns is None else _wanted(name, columns[name], table_config)
    keep = [c for c in schema.names if wanted is None or c in wanted]
    numbers = _numbers(name, table_config)
    select = f"SELECT {', '.join(_column(c, schema.field(c).type, numbers) for c in keep)} FROM {relation}"
    spec_time = TABLES[name].time
    time = table_config.get("columns", {}).get(spec_time, spec_time) if spec_time else None
    blocks = _blocks(db, relation) if "query" not in table_config else []
    if until is None or time is None or time not in keep or not _is_temporal(schema.field(time).type):
        return _Query(name, tuple(_parts(select, None, blocks)))
    # Rows without a time stay: a missing required time is a problem to report, not to drop.
    where = f"({quote(time)} <= {_timestamp(until)} OR {quote(time)} IS NULL)"
    span = f"SELECT min({quote(time)}), max({quote(time)}) FROM {relation}"
    return _Query(name, tuple(_parts(select, where, blocks)), span)


def _numbers(name: str, table_config: Mapping[str, Any]) -> set[str]:
    """The names in the database of the contract's number columns of table ``name``."""
    mapping = table_config.get("columns", {})
    return {mapping.get(c.name, c.name) for c in TABLES[name].columns if c.kind == "number"}


def _column(column: str, dtype: pa.DataType, numbers: set[str]) -> str:
    """One column of the SELECT list. A PostgreSQL ``numeric`` contract number comes as
    ``double precision``: the store makes it a float anyway, and ``numeric`` travels as text,
    which doubles the time to read the table."""
    import pyarrow as pa

    numeric = isinstance(dtype, pa.OpaqueType) and dtype.type_name == "numeric"
    return (
        f"CAST({quote(column)} AS double precision) AS {quote(column)}"
        if numeric and column in numbers
        else quote(column)
    )


def _timestamp(moment: datetime) -> str:
    """``moment`` as an SQL timestamp literal that PostgreSQL and DuckDB read alike.

    Why a literal and not a bound parameter: the PostgreSQL driver reads a statement without
    parameters through ``COPY (...) TO STDOUT (FORMAT binary)``, streamed into Arrow while the
    server still sends; with a parameter it runs a prepared statement whose whole result is
    buffered by libpq and converted row by row (slower, and the rows are held twice). The rule
    "user values never become SQL text" still holds: the text is built here from the integer
    fields of a ``datetime`` (digits and separators only), never from text the user typed; an
    aware time is compared in UTC, a naive one as it is (the session's time zone is UTC).

    >>> _timestamp(datetime(2024, 6, 30, 23, 59, 59, 5))
    "TIMESTAMP '2024-06-30 23:59:59.000005'"
    """
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    fields = (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond)
    text = "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}.{:06d}".format(*fields)
    return f"TIMESTAMPTZ '{text}+00:00'" if moment.tzinfo is not None else f"TIMESTAMP '{text}'"


#: A PostgreSQL table of more blocks (8 KiB pages) than this is read in parts, over parallel connections.
_PART_BLOCKS = 8192


def _blocks(db: _Database, relation: str) -> list[tuple[int, int | None]]:
    """Block ranges splitting a large PostgreSQL table (14+: TID range scans) for parallel reads;
    the last range is open, so rows added meanwhile are not lost."""
    if not db.postgres:
        return []
    found = db.arrow(
        "SELECT current_setting('server_version_num')::int >= 140000 AND c.relkind IN ('r', 'm') AS split, "
        "pg_relation_size(c.oid) / current_setting('block_size')::int AS pages "
        "FROM pg_class c WHERE c.oid = to_regclass($1)",
        [relation],
    ).to_pylist()
    if not found or not found[0]["split"]:
        return []
    pages = int(found[0]["pages"])
    n = min(_PARALLEL, -(-pages // _PART_BLOCKS))
    starts = [pages * i // n for i in range(n)]
    return list(zip(starts, [*starts[1:], None], strict=True)) if n > 1 else []


def _parts(select: str, where: str | None, blocks: list[tuple[int, int | None]]) -> list[str]:
    """``select`` filtered by ``where``, split by the ``blocks`` (the last one open-ended)."""
    if not blocks:
        return [select + (f" WHERE {where}" if where else "")]
    statements = []
    for low, high in blocks:
        # the row's page (ctid) in a range of ours: whole numbers, never the user's text
        ranges = [f"ctid >= '({low},0)'::tid"] + ([f"ctid < '({high},0)'::tid"] if high is not None else [])
        statements.append(f"{select} WHERE {' AND '.join([*ranges, *([where] if where else [])])}")
    return statements


#: PostgreSQL reads tables over up to this many connections at once (a server process each); the
#: rows are decoded on our side, so more connections than cores only compete for them.
_PARALLEL = min(4, os.cpu_count() or 1)


def _fetch_all(db: _Database, queries: list[_Query]) -> dict[str, pl.DataFrame]:
    """Every table's rows. PostgreSQL reads the parts over ``db`` and up to ``_PARALLEL - 1``
    more connections, each opened once and kept busy (the largest tables first): opening a
    connection costs about as much as reading 100,000 rows."""
    tasks = [(query, sql) for query in queries for sql in query.parts]
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in sorted(range(len(tasks)), key=lambda i: len(tasks[i][0].parts), reverse=True):
        todo.put(i)
    frames: dict[int, pl.DataFrame] = {}

    def drain(con: _Database) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                i = todo.get_nowait()
                frames[i] = _fetch(con, *tasks[i])

    def drain_over_own_connection() -> None:
        with _connect(db.url, read_only=True) as con:
            drain(con)

    helpers = min(_PARALLEL, len(tasks)) - 1 if db.postgres else 0
    with ThreadPoolExecutor(max_workers=max(helpers, 1)) as pool:
        running = [pool.submit(drain_over_own_connection) for _ in range(helpers)]
        try:
            drain(db)
        finally:  # after an error, the helpers stop once the part they read is done
            with contextlib.suppress(queue.Empty):
                while True:
                    todo.get_nowait()
        for helper in running:
            helper.result()
    return {
        query.name: _concat([frames[i] for i, (owner, _) in enumerate(tasks) if owner is query])
        for query in queries
    }


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical", rechunk=False)


def _fetch(db: _Database, query: _Query, sql: str) -> pl.DataFrame:
    with _database_errors(db, f"reading table '{query.name}'"):
        return _to_polars(db.arrow(sql))


def _source_span(url: str, queries: list[str]) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest event time over the given span queries."""
    with _connect(url, read_only=True) as db, _database_errors(db, "reading the time span"):
        bounds = [_to_polars(db.arrow(sql)) for sql in queries]
    return _overall([(_naive_utc(span[:, 0]), _naive_utc(span[:, 1])) for span in bounds])


def _schemas(config: StoreConfig, names: list[str], default: str) -> set[str]:
    return {str(config.table(n).get("schema", default)) for n in names if "query" not in config.table(n)}


def _relation(
    db: _Database, name: str, table_config: Mapping[str, Any], default_schema: str, found: dict[str, set[str]]
) -> str | None:
    """The FROM clause of contract table ``name``; ``None`` when it is absent (and not configured)."""
    if "query" in table_config:
        return f"({table_config['query']}) AS {quote(name)}"
    schema = str(table_config.get("schema", default_schema))
    table = str(table_config.get("table", name))
    if table in found[schema]:
        return f"{quote(schema)}.{quote(table)}"
    if "table" in table_config or "schema" in table_config:
        raise ChurnriskError(
            f"the config names {schema}.{table} for table '{name}', but {db.shown} has no such table "
            f"or view; {schema} has {sorted(found[schema])[:20]}. Suggestion: check [tables.{name}]."
        )
    return None


def _is_temporal(dtype: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_timestamp(dtype) or pa.types.is_date(dtype))


def _naive_utc(value: pl.Series) -> datetime | None:
    if isinstance(value.dtype, pl.Datetime) and value.dtype.time_zone is not None:
        value = value.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    result = value.cast(pl.Datetime("us"))[0]
    return None if result is None else result  # type: ignore[no-any-return]


def _overall(
    bounds: list[tuple[datetime | None, datetime | None]],
) -> tuple[datetime | None, datetime | None]:
    lows = [lo for lo, _ in bounds if lo is not None]
    highs = [hi for _, hi in bounds if hi is not None]
    return (min(lows) if lows else None, max(highs) if highs else None)


def _to_polars(table: pa.Table) -> pl.DataFrame:
    """Arrow to Polars; driver-specific extension types (PostgreSQL ``numeric``) as their text."""
    import pyarrow as pa

    plain = [
        pa.chunked_array([chunk.storage for chunk in column.chunks], column.type.storage_type)
        if isinstance(column.type, pa.BaseExtensionType)
        else column
        for column in table.columns
    ]
    frame = pl.from_arrow(pa.table(plain, names=table.column_names))
    assert isinstance(frame, pl.DataFrame)
    return frame
