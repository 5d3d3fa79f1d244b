"""Database URLs, masked passwords, quoted names, and one connection to PostgreSQL or DuckDB."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from churnrisk.errors import ChurnriskError

if TYPE_CHECKING:
    import pyarrow as pa

_POSTGRES = ("postgresql", "postgres")
_SCHEMES = (*_POSTGRES, "duckdb")
_MASK = "***"


def is_database_url(source: object) -> bool:
    """Whether ``source`` names a database (``postgresql://``, ``postgres://``, ``duckdb://``)."""
    return isinstance(source, str) and source.split("://", 1)[0].lower() in _SCHEMES and "://" in source


def mask_url(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) replaced by ``***``.

    Examples
    --------
    >>> mask_url("postgresql://ana:s3cret@db.local:5432/crm?sslmode=require&password=x")
    'postgresql://ana:***@db.local:5432/crm?sslmode=require&password=***'
    >>> mask_url("duckdb:///data/events.duckdb")
    'duckdb:///data/events.duckdb'
    """
    masked = _USER_PASSWORD.sub(rf"\g<1>{_MASK}@", url, count=1)
    return _PASSWORD_PARAMETER.sub(rf"\g<1>{_MASK}", masked)


#: ``scheme://user:password@`` and ``password=...`` in the query string.
_USER_PASSWORD = re.compile(r"^([a-zA-Z][\w+.-]*://[^/?#@:]*:)[^/?#]*@")
_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def _secrets_of(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return found + [unquote(secret) for secret in found]  # as written, and as the server got it


def _masked_text(text: str, url: str) -> str:
    """A driver's message with any password of ``url`` masked (drivers may echo the URL)."""
    text = text.replace(url, mask_url(url))
    for secret in _secrets_of(url):
        text = text.replace(secret, _MASK)
    return text


def quote(identifier: str) -> str:
    """An SQL identifier, double-quoted (``"`` doubled), as PostgreSQL and DuckDB read it.

    >>> quote('my "odd" table')
    '"my ""odd"" table"'
    """
    return '"' + identifier.replace('"', '""') + '"'


# ---------------------------------------------------------------------- connections
class _Database:
    """One open connection (PostgreSQL through ADBC, or DuckDB) with the few operations we need."""

    def __init__(self, url: str, *, read_only: bool) -> None:
        self.url = url
        self.shown = mask_url(url)
        self.postgres = url.split("://", 1)[0].lower() in _POSTGRES
        self._con: Any = None
        self._cursor: Any = None  # PostgreSQL: one cursor for the connection's statements
        if self.postgres:
            self._connect_postgres()
        else:
            self._open_duckdb(read_only=read_only)

    def _connect_postgres(self) -> None:
        dbapi = _driver("adbc_driver_postgresql.dbapi", "postgres")
        uri = "postgresql://" + self.url.split("://", 1)[1]  # libpq reads both spellings; ADBC one
        try:
            self._con = dbapi.connect(uri)
        except Exception as exc:  # the driver's own error types come with the optional import
            raise ChurnriskError(self._unreachable(exc)) from None
        self._cursor = self._con.cursor()
        # Times compare and come back in UTC, as the store keeps them (timestamptz -> UTC).
        self._cursor.execute("SET TIME ZONE 'UTC'")
        # A large table's scan starts at its first page, not where a concurrent scan is: the rows
        # of an unchanged table come in the same order every time (sums do not drift by a bit).
        self._cursor.execute("SET synchronize_seqscans = off")
        self._con.commit()

    def _unreachable(self, exc: Exception) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or os.environ.get("PGHOST", "localhost")
        port = (
            parts.netloc.rpartition("@")[2].rpartition(":")[2]
            if ":" in parts.netloc.rpartition("@")[2]
            else ""
        )
        port = port or os.environ.get("PGPORT", "5432")
        database = parts.path.lstrip("/") or os.environ.get("PGDATABASE", "(default)")
        reason = " ".join(str(exc).replace("IO: [libpq] Failed to connect: ", "").split()).rstrip(".")
        return _masked_text(
            f"cannot connect to PostgreSQL at host {host}, port {port}, database {database} "
            f"({self.shown}): {reason}. Suggestion: check that the server runs and the URL; a password "
            "can come from the URL, PGPASSWORD, ~/.pgpass or a service file.",
            self.url,
        )

    def _open_duckdb(self, *, read_only: bool) -> None:
        duckdb = _driver("duckdb", "duckdb")
        path = Path(self.url.split("://", 1)[1])
        if read_only and not path.is_file():
            raise ChurnriskError(
                f"the DuckDB file {path} does not exist. Suggestion: check the path after duckdb:// "
                "(duckdb:///abs/path.duckdb, duckdb://relative/path.duckdb)."
            )
        try:
            self._con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            raise ChurnriskError(f"cannot open the DuckDB file {path}: {exc}") from None
        self._con.execute("SET TimeZone = 'UTC'")

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        if self.postgres:
            self._cursor.execute(sql, parameters=tuple(params) or None)
            return self._cursor.fetch_arrow_table()
        return self._con.sql(sql, params=list(params) or None).to_arrow_table()

    def execute(self, sql: str) -> None:
        if self.postgres:
            self._cursor.execute(sql)
        else:
            self._con.execute(sql)

    def begin(self) -> None:
        if not self.postgres:  # ADBC connections are always inside a transaction
            self._con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        self._con.commit()

    def rollback(self) -> None:
        self._con.rollback()

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
        self._con.close()

    def current_schema(self) -> str:
        return str(self.arrow("SELECT current_schema() AS s").column(0)[0].as_py())

    def relations(self, schema: str) -> set[str]:
        """Names of the tables and views in ``schema``."""
        found = self.arrow(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", [schema]
        )
        return {str(name) for name in found.column(0).to_pylist()}

    def ingest(self, schema: str, name: str, table: pa.Table, *, create: bool) -> None:
        """Create table ``schema.name`` holding ``table``, or append ``table`` to it (no commit)."""
        if self.postgres:
            mode = "create" if create else "append"
            self._cursor.adbc_ingest(name, table, mode=mode, db_schema_name=schema)
            return
        target = f"{quote(schema)}.{quote(name)}"
        columns = ", ".join(quote(c) for c in table.column_names)
        self._con.register("churnrisk_rows", table)
        try:
            if create:
                self._con.execute(f"CREATE TABLE {target} AS SELECT * FROM churnrisk_rows")
            else:
                self._con.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM churnrisk_rows")
        finally:
            self._con.unregister("churnrisk_rows")


def _driver(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ChurnriskError(
            f"this database needs the {module.split('.')[0]} package. "
            f'Suggestion: pip install "churnrisk[{extra}]"'
        ) from None


@contextmanager
def _connect(url: str, *, read_only: bool) -> Iterator[_Database]:
    db = _Database(url, read_only=read_only)
    try:
        yield db
    finally:
        db.close()


@contextmanager
def _database_errors(db: _Database, what: str) -> Iterator[None]:
    """Turn a driver's error (a bad query, a missing privilege, a lost server) into a
    ChurnriskError about ``what``, the password masked."""
    try:
        yield
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("adbc_driver_manager", "_duckdb", "duckdb"):
            raise
        # the driver repeats the statement after "Query was:"; the reason is what helps
        reason = " ".join(str(exc).split("Query was:")[0].split()).rstrip(".")
        raise ChurnriskError(_masked_text(f"{what} in {db.shown} failed: {reason}", db.url)) from None
