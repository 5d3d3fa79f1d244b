"""Writing result tables to a database atomically: a new table filled and renamed in one transaction."""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import TYPE_CHECKING

import pandas as pd
import polars as pl

from churnrisk._io import write_table
from churnrisk.database._connection import (
    _connect,
    _Database,
    _database_errors,
    is_database_url,
    mask_url,
    quote,
)
from churnrisk.errors import ChurnriskError
from churnrisk.store import EventStore

if TYPE_CHECKING:
    import pyarrow as pa


def write_output(
    frame: pd.DataFrame | pl.DataFrame,
    output: str | os.PathLike[str],
    *,
    table: str | None = None,
    overwrite: bool = False,
    append: bool = False,
) -> str:
    """Write a result to a file (``.csv``/``.parquet``) or, for a database URL, to ``table``.

    Returns where it went, fit to print (a URL's password masked).
    """
    if is_database_url(output):
        if not table:
            raise ChurnriskError(
                f"writing to {mask_url(str(output))} needs a table name. "
                "Suggestion: add --table churn_scores."
            )
        return write_database_table(frame, str(output), table, overwrite=overwrite, append=append)
    if table is not None or append:
        option = "--table" if table is not None else "--append"
        raise ChurnriskError(
            f"{option} is for a database output, but {output} is a file. "
            "Suggestion: give -o postgresql://... or -o duckdb://..., or leave out the option."
        )
    return str(write_table(frame, output, overwrite=overwrite))


def write_database_table(
    frame: pd.DataFrame | pl.DataFrame,
    url: str,
    table: str,
    *,
    overwrite: bool = False,
    append: bool = False,
) -> str:
    """Write ``frame`` to ``table`` (``name`` or ``schema.name``) of the database at ``url``, atomically.

    A new table is created under a temporary name, filled, and renamed to ``table`` in the same
    transaction (``overwrite`` drops the old one in it too): readers see the old table or the
    whole new one, and a failure leaves the database as it was. An existing table is an error
    unless ``overwrite`` (replace it) or ``append`` (add the rows, in one transaction; the columns
    must be the table's) is set.

    Returns
    -------
    str
        ``schema.table in URL``, the password masked.
    """
    if overwrite and append:
        raise ChurnriskError("--overwrite and --append exclude each other. Suggestion: choose one.")
    schema, name = _split_table(table)
    rows = _arrow_rows(frame)
    with _connect(url, read_only=False) as db:
        db.begin()
        try:
            with _database_errors(db, f"writing table {table}"):
                schema = schema or db.current_schema()
                where = f"{schema}.{name} in {db.shown}"
                exists = name in db.relations(schema)
                if exists and append:
                    columns = _same_columns(db, schema, name, rows.column_names, where)
                    db.ingest(schema, name, rows.select(columns), create=False)
                elif exists and not overwrite:
                    raise ChurnriskError(
                        f"table {where} already exists. Suggestion: pass --overwrite to replace it, "
                        "or choose another --table."
                    )
                else:
                    _replace(db, schema, name, rows, exists=exists)
                db.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # a lost connection has rolled back already
                db.rollback()
            raise
    return where


def _split_table(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    if not name:
        raise ChurnriskError(f"{table!r} is not a table name. Suggestion: --table churn_scores.")
    return schema or None, name


def _replace(db: _Database, schema: str, name: str, rows: pa.Table, *, exists: bool) -> None:
    """Fill a new table and give it ``name`` (the caller commits, or rolls everything back)."""
    temporary = f"{name}__new_{secrets.token_hex(4)}"
    db.ingest(schema, temporary, rows, create=True)
    if exists:
        db.execute(f"DROP TABLE {quote(schema)}.{quote(name)}")
    db.execute(f"ALTER TABLE {quote(schema)}.{quote(temporary)} RENAME TO {quote(name)}")


def _same_columns(db: _Database, schema: str, name: str, columns: list[str], where: str) -> list[str]:
    """The columns of table ``name`` in their order, if they are ``columns``; else an error."""
    existing = db.arrow(f"SELECT * FROM {quote(schema)}.{quote(name)} LIMIT 0").column_names
    if sorted(existing) != sorted(columns):
        raise ChurnriskError(
            f"cannot append to {where}: its columns are {existing}, the rows have {columns}. "
            "Suggestion: write to a new --table, or --overwrite this one."
        )
    return list(existing)


def _arrow_rows(frame: pd.DataFrame | pl.DataFrame) -> pa.Table:
    """``frame`` as Arrow columns a database takes: categories as their values, no index."""
    import pyarrow as pa

    if isinstance(frame, pl.DataFrame):
        table = frame.to_arrow()
    else:
        frame = frame.copy(deep=False)
        frame.attrs = {}  # e.g. a cutoff: not a column (and pyarrow warns on values JSON cannot hold)
        table = pa.Table.from_pandas(frame, preserve_index=False)
    columns = [
        column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
        for column in table.columns
    ]
    return pa.table(columns, names=table.column_names)


def copy_store(store: EventStore, url: str, *, overwrite: bool = False) -> list[str]:
    """Write every table of ``store`` to the database at ``url`` under its contract name.

    Useful to move a folder of files into a database (or to build one for tests and benchmarks).
    Each table is written atomically by :func:`write_database_table`.
    """
    return [
        write_database_table(frame, url, name, overwrite=overwrite) for name, frame in store.tables.items()
    ]
