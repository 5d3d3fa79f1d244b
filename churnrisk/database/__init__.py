"""Event stores in a database, and result tables written back to it (DESIGN §1, §7).

A database is named by a URL:

* ``postgresql://user@host:port/db`` (or ``postgres://``; PostgreSQL 13+): read and written through
  the ADBC PostgreSQL driver (``pip install "churnrisk[postgres]"``). Its rows travel in
  PostgreSQL's binary ``COPY`` format straight into Arrow columns, and it runs on libpq, so the
  password can come from the URL, ``PGPASSWORD``, ``~/.pgpass`` or a service file
  (``postgresql:///?service=crm``) exactly as for ``psql``.
* ``duckdb://path/to/file.duckdb`` (everything after ``duckdb://`` is the path, so
  ``duckdb:///data/events.duckdb`` is absolute): an embedded DuckDB file, no server
  (``pip install "churnrisk[duckdb]"``), whose results are Arrow tables too.

The contract tables are found by name (``customers``, ``orders``, ...) in the default schema; the
TOML config can name another ``schema`` (for every table, or per table), a ``table`` or view, or a
``query`` per contract table, and maps columns as for files. Only the columns a command uses are
selected, and events after ``until`` are filtered by the server. Identifiers are always quoted and
the user's values (schema and table names looked up in the catalog) bound as parameters: nothing
the user gives becomes SQL text, except the ``query`` they write themselves. The one value written
into the text is ``until``, rendered by our code from a ``datetime``'s integer fields, because a
statement without parameters is read through PostgreSQL's binary ``COPY`` (streamed, and about a
third cheaper than a prepared statement's rows). Every message shows the URL with its password masked.

Written tables are atomic: a new table is filled and renamed in one transaction, so a reader sees
the old table or the new one, never part of it, and a write that fails half-way leaves nothing.
"""

from churnrisk.database._connection import is_database_url, mask_url, quote
from churnrisk.database._read import read_database, read_store
from churnrisk.database._write import copy_store, write_database_table, write_output

__all__ = [
    "copy_store",
    "is_database_url",
    "mask_url",
    "quote",
    "read_database",
    "read_store",
    "write_database_table",
    "write_output",
]
