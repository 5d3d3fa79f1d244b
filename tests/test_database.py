"""Event stores in a database (DuckDB file, PostgreSQL server) and result tables written back.

The PostgreSQL tests need a server: ``CHURNRISK_TEST_POSTGRES`` names one whose user may create
databases (``.ci/run`` starts a throw-away one); without it they skip with a reason.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from churnrisk.cli import app
from churnrisk.database import (
    _connection,
    _read,
    copy_store,
    mask_url,
    read_database,
    write_database_table,
    write_output,
)
from churnrisk.errors import ChurnriskError, DataError
from churnrisk.features import build_features, feature_inputs
from churnrisk.labels import make_labels
from churnrisk.store import StoreConfig
from churnrisk.validation import load_store

duckdb = pytest.importorskip("duckdb")

runner = CliRunner()
POSTGRES = os.environ.get("CHURNRISK_TEST_POSTGRES")
needs_postgres = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not POSTGRES, reason="no PostgreSQL server: set CHURNRISK_TEST_POSTGRES (.ci/run does)"
    ),
]
MODEL = Path(__file__).resolve().parents[1] / "models" / "demo-subscription.skops"
CUTOFF = datetime(2024, 6, 30)


# ---------------------------------------------------------------------- servers and files
def _with_database(url: str, name: str) -> str:
    """``url`` (a server's) with its database replaced by ``name``."""
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def postgres_server():
    """A fresh database on the test server for this session, dropped at the end."""
    if not POSTGRES:
        pytest.skip("no PostgreSQL server: set CHURNRISK_TEST_POSTGRES (.ci/run does)")
    import adbc_driver_postgresql.dbapi as pg

    name = f"churnrisk_test_{secrets.token_hex(4)}"
    with pg.connect(POSTGRES, autocommit=True) as admin, admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(POSTGRES, name)
    with pg.connect(POSTGRES, autocommit=True) as admin, admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def demo_postgres(postgres_server, demo_store) -> str:
    copy_store(demo_store, postgres_server)
    return postgres_server


@pytest.fixture(scope="session")
def demo_duckdb(demo_store, tmp_path_factory) -> str:
    url = f"duckdb://{tmp_path_factory.mktemp('duck') / 'demo.duckdb'}"
    copy_store(demo_store, url)
    return url


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=needs_postgres)])
def demo_database(request) -> str:
    """The demo store in each kind of database."""
    return request.getfixturevalue(f"demo_{request.param}")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=needs_postgres)])
def empty_database(request, tmp_path) -> str:
    """A database to write into: a new DuckDB file, or the session's PostgreSQL database."""
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'out.duckdb'}"
    return request.getfixturevalue("postgres_server")


def _read_table(url: str, table: str) -> pd.DataFrame:
    """A table as pandas, read with the drivers directly (not through the code under test)."""
    if url.startswith("duckdb://"):
        with duckdb.connect(url.removeprefix("duckdb://"), read_only=True) as con:
            return con.sql(f'SELECT * FROM "{table}"').df()
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url) as con, con.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{table}"')
        return cursor.fetch_df()


def _execute(url: str, statements: list[str]) -> None:
    """Run ``statements`` with the drivers directly (not through the code under test)."""
    if url.startswith("duckdb://"):
        with duckdb.connect(url.removeprefix("duckdb://")) as con:
            for statement in statements:
                con.execute(statement)
        return
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url, autocommit=True) as con, con.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _tables(url: str) -> set[str]:
    if url.startswith("duckdb://"):
        if not Path(url.removeprefix("duckdb://")).exists():
            return set()
        with duckdb.connect(url.removeprefix("duckdb://"), read_only=True) as con:
            return {row[0] for row in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(url) as con, con.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        return {row[0] for row in cursor.fetchall()}


# ---------------------------------------------------------------------- the same store three ways
def test_tables_read_back_equal(demo_database, demo_store):
    store = load_store(demo_database)
    assert set(store.tables) == set(demo_store.tables)
    for name, frame in demo_store.tables.items():
        assert store[name].equals(frame), name
    assert store.time_span() == demo_store.time_span()


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server: set CHURNRISK_TEST_POSTGRES (.ci/run does)")
def test_large_tables_read_in_parts_come_back_whole(demo_postgres, demo_store, monkeypatch):
    monkeypatch.setattr(_read, "_PART_BLOCKS", 2)  # every table of more than 2 pages in parts
    monkeypatch.setattr(_read, "_PARALLEL", 3)
    with _connection._connect(demo_postgres, read_only=True) as db:
        assert len(_read._blocks(db, '"public"."activity"')) == 3
    opened = []
    connect = _read._connect
    monkeypatch.setattr(_read, "_connect", lambda *a, **k: opened.append(a) or connect(*a, **k))
    store = load_store(demo_postgres, until=CUTOFF)
    assert len(opened) == 3  # one per reader, not one per part
    assert store["activity"].equals(demo_store["activity"].filter(pl.col("occurred_at") <= CUTOFF))
    assert store.time_span() == demo_store.time_span()


@pytest.mark.parametrize(
    ("until", "literal"),
    [
        (datetime(2024, 6, 30), "TIMESTAMP '2024-06-30 00:00:00.000000'"),
        (datetime(987, 1, 2, 3, 4, 5, 60), "TIMESTAMP '0987-01-02 03:04:05.000060'"),
        (pd.Timestamp("2024-06-30 12:00:00.5"), "TIMESTAMP '2024-06-30 12:00:00.500000'"),
        (
            datetime(2024, 7, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            "TIMESTAMPTZ '2024-06-30 23:30:00.000000+00:00'",
        ),
    ],
)
def test_until_is_written_from_the_datetime_fields(until, literal):
    assert _read._timestamp(until) == literal


def test_until_must_be_a_datetime(demo_duckdb):
    with pytest.raises(
        ChurnriskError, match=r"'until' parameter of read_database must be a datetime. Got \"2024-06-30"
    ):
        read_database(demo_duckdb, until="2024-06-30' OR TRUE --")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "until", [datetime(2024, 3, 1), datetime(2024, 3, 1, 1, tzinfo=timezone(timedelta(hours=1)))]
)
def test_until_cuts_a_time_zone_aware_column_in_utc(empty_database, until):
    table = f"orders_{secrets.token_hex(3)}"
    rows = [
        (1, "2024-03-01 00:00:00+00"),  # at the cutoff: kept
        (2, "2024-03-01 00:00:00.000001+00"),  # a microsecond later: left on the server
        (3, "2024-02-29 23:00:00-02"),  # 01:00 UTC: later
        (4, None),  # no time: kept, for validation to report
        (5, "2024-02-29 23:30:00+00"),
    ]
    values = ", ".join(f"({i}, {'NULL' if t is None else repr(t)}::TIMESTAMPTZ, 1.0)" for i, t in rows)
    statements = [
        f'CREATE TABLE "{table}" (customer_id BIGINT, ordered_at TIMESTAMPTZ, amount DOUBLE PRECISION)',
        f'INSERT INTO "{table}" VALUES {values}',
    ]
    _execute(empty_database, statements)
    config = StoreConfig(tables={"orders": {"table": table}})
    store = read_database(empty_database, config=config, columns={"orders": None}, until=until)
    assert store["orders"].select("customer_id", "ordered_at").rows() == [
        (1, datetime(2024, 3, 1)),
        (4, None),
        (5, datetime(2024, 2, 29, 23, 30)),
    ]


def test_only_numeric_contract_numbers_are_cast_on_the_server():
    import pyarrow as pa

    numeric = pa.opaque(pa.string(), "numeric", "PostgreSQL")
    numbers = _read._numbers("orders", {"columns": {"amount": "Eur"}})
    assert numbers == {"Eur", "quantity"}
    assert _read._column("Eur", numeric, numbers) == 'CAST("Eur" AS double precision) AS "Eur"'
    assert _read._column("Eur", pa.float64(), numbers) == '"Eur"'
    assert _read._column("credit", numeric, numbers) == '"credit"'  # not a contract number: as read


def test_decimal_amounts_read_as_numbers(empty_database):
    """PostgreSQL's numeric (read as double precision) and DuckDB's DECIMAL, under a mapped name."""
    table = f"orders_{secrets.token_hex(3)}"
    _execute(
        empty_database,
        [
            f'CREATE TABLE "{table}" (customer_id BIGINT, ordered_at TIMESTAMP, eur NUMERIC(14, 4))',
            f"INSERT INTO \"{table}\" VALUES (1, '2024-01-01', 0.1), (2, '2024-01-02', 12345678.9123), "
            "(3, '2024-01-03', NULL), (4, '2024-01-04', 0)",
        ],
    )
    config = StoreConfig(tables={"orders": {"table": table, "columns": {"amount": "eur"}}})
    store = read_database(empty_database, config=config, columns={"orders": None})
    assert store["orders"]["amount"].to_list() == [0.1, 12345678.9123, None, 0.0]


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server: set CHURNRISK_TEST_POSTGRES (.ci/run does)")
def test_postgres_sessions_read_in_utc_from_the_first_page(demo_postgres):
    with _connection._connect(demo_postgres, read_only=True) as db:
        settings = db.arrow(
            "SELECT current_setting('TimeZone') AS zone, current_setting('synchronize_seqscans') AS sync"
        )
    assert settings.to_pylist() == [{"zone": "UTC", "sync": "off"}]


def test_features_equal_with_the_cutoff_pushed_down(demo_database, demo_folder):
    from_folder = load_store(demo_folder, columns=feature_inputs())
    from_db = load_store(demo_database, columns=feature_inputs(), until=CUTOFF)
    assert from_db["orders"]["ordered_at"].max() <= CUTOFF  # the server filtered
    assert from_db["orders"].height < from_folder["orders"].height
    pd.testing.assert_frame_equal(build_features(from_db, CUTOFF), build_features(from_folder, CUTOFF))


@pytest.mark.parametrize(
    ("cutoff", "definition", "horizon"),
    [
        (CUTOFF, "subscription", 60),
        (CUTOFF, "inactivity", 90),
        (datetime(2024, 11, 30), "subscription", 60),  # past the end of the data: censored
    ],
)
def test_labels_equal_and_censoring_kept(demo_database, demo_folder, cutoff, definition, horizon):
    end = cutoff + pd.Timedelta(days=horizon)
    from_db = load_store(demo_database, until=end)
    from_folder = load_store(demo_folder)
    # the end of the data is the source's, not that of the rows read
    assert from_db.time_span() == from_folder.time_span()
    ours = make_labels(from_db, cutoff, definition=definition, horizon=horizon)
    theirs = make_labels(from_folder, cutoff, definition=definition, horizon=horizon)
    pd.testing.assert_frame_equal(ours, theirs)
    assert ours.attrs["censored"] == theirs.attrs["censored"]
    assert (ours.attrs["censored"] > 0) == (end > from_folder.time_span()[1])


def test_rates_equal(demo_database, demo_folder):
    from churnrisk.rates import churn_rates

    pd.testing.assert_frame_equal(
        churn_rates(load_store(demo_database), period="month"),
        churn_rates(load_store(demo_folder), period="month"),
    )


@pytest.mark.skipif(not MODEL.is_file(), reason=f"the default model {MODEL} is not there")
@pytest.mark.parametrize("as_of", [None, CUTOFF])
def test_scores_equal(demo_database, demo_folder, as_of):
    from churnrisk.modelfile import ModelVersionWarning, load_model
    from churnrisk.scoring import score_store

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelVersionWarning)  # a model from other library versions warns
        model = load_model(MODEL)
    ours = score_store(model, load_store(demo_database, until=as_of), cutoff=as_of)
    theirs = score_store(model, load_store(demo_folder), cutoff=as_of)
    pd.testing.assert_frame_equal(ours, theirs)


# ---------------------------------------------------------------------- the mapping
def test_mapping_schema_view_query_and_columns(tmp_path):
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA crm")
        con.execute('CREATE TABLE crm."Clients" ("Client Id" BIGINT, region TEXT)')
        con.execute("INSERT INTO crm.\"Clients\" VALUES (1, 'north'), (2, 'south'), (3, 'north')")
        con.execute("CREATE TABLE sales (who BIGINT, paid_at TIMESTAMP, eur DOUBLE, void BOOLEAN)")
        con.execute(
            "INSERT INTO sales VALUES (1, '2024-01-05 10:00', 20, false), (1, '2024-03-01', 5, true), "
            "(2, '2024-02-10', 7.5, false), (3, '2024-04-01', 99, false)"
        )
    config = StoreConfig(
        schema="crm",
        tables={
            "customers": {"table": "Clients", "columns": {"customer_id": "Client Id"}},
            "orders": {
                "query": "SELECT who, paid_at, eur FROM main.sales WHERE NOT void",
                "columns": {"customer_id": "who", "ordered_at": "paid_at", "amount": "eur"},
            },
        },
    )
    store = read_database(f"duckdb://{path}", config=config, until=datetime(2024, 3, 15))
    assert store["customers"].to_dicts() == [
        {"customer_id": 1, "region": "north"},
        {"customer_id": 2, "region": "south"},
        {"customer_id": 3, "region": "north"},
    ]
    # the voided order goes by the query, the April one by the date; the span is the query's
    assert store["orders"].to_dicts() == [
        {"customer_id": 1, "ordered_at": datetime(2024, 1, 5, 10), "amount": 20.0},
        {"customer_id": 2, "ordered_at": datetime(2024, 2, 10), "amount": 7.5},
    ]
    assert store.time_span() == (datetime(2024, 1, 5, 10), datetime(2024, 4, 1))


def test_a_configured_table_that_is_not_there_is_an_error(demo_duckdb):
    config = StoreConfig(tables={"orders": {"table": "transactions"}})
    with pytest.raises(ChurnriskError, match=r"main\.transactions for table 'orders'.*no such table"):
        read_database(demo_duckdb, config=config)
    broken = StoreConfig(tables={"orders": {"query": "SELECT customer_id, FROM WHERE"}})
    with pytest.raises(ChurnriskError, match=r"reading table 'orders'.*failed: Parser Error"):
        read_database(demo_duckdb, config=broken)


def test_config_file_takes_one_place_per_table(tmp_path):
    from churnrisk.store import read_config

    path = tmp_path / "map.toml"
    path.write_text('[tables.orders]\ntable = "o"\nquery = "SELECT 1"\n', encoding="utf-8")
    with pytest.raises(ChurnriskError, match=r"\['table', 'query'\]"):
        read_config(path)
    path.write_text('schema = "crm"\n[tables.orders]\nschema = "sales"\ntable = "o"\n', encoding="utf-8")
    config = read_config(path)
    assert (config.schema, config.table("orders")["schema"]) == ("crm", "sales")


def test_problems_by_table_and_column_and_not_filtered_away(tmp_path):
    """A missing time stays in the rows read (and is reported); bad rows after `until` are not read."""
    path = tmp_path / "bad.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE customers AS SELECT * FROM range(1, 4) t(customer_id)")
        con.execute("CREATE TABLE orders (customer_id BIGINT, ordered_at TIMESTAMP, amount DOUBLE)")
        con.execute(
            "INSERT INTO orders VALUES (1, '2024-01-05', 10), (2, NULL, 5), (3, '2024-02-01', 7), "
            "(9, '2024-05-01', -1)"
        )
    with pytest.raises(DataError) as caught:
        load_store(f"duckdb://{path}", until=datetime(2024, 3, 1))
    assert [(p.table, p.column, p.rows) for p in caught.value.errors] == [("orders", "ordered_at", 1)]
    with pytest.raises(DataError) as caught:
        load_store(f"duckdb://{path}")
    assert sorted((p.table, p.column, p.rows) for p in caught.value.errors) == [
        ("orders", "amount", 1),
        ("orders", "customer_id", 1),
        ("orders", "ordered_at", 1),
    ]


def test_validate_a_database_by_table_and_column(tmp_path):
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE orders (customer_id BIGINT, ordered_at TEXT, amount DOUBLE)")
        con.execute("INSERT INTO orders VALUES (1, '2024-01-05', 10), (1, '05/01/2024', 5)")
    result = runner.invoke(app, ["validate", f"duckdb://{path}", "--format", "json"])
    assert result.exit_code == 1
    errors = [
        (e["table"], e["column"], e["rows"], e["examples"]) for e in json.loads(result.stdout)["errors"]
    ]
    assert errors == [
        ("orders", "ordered_at", 1, ["05/01/2024"]),
        ("customers", None, 0, []),
    ]
    assert "a customers table or view" in json.loads(result.stdout)["errors"][1]["message"]


def test_identifiers_are_quoted(empty_database):
    table = f'scores_{secrets.token_hex(3)}"; DROP TABLE y; --'
    frame = pd.DataFrame({'odd "name"; DROP TABLE x': [1, 2], "ok": ["a", "b"]})
    where = write_database_table(frame, empty_database, table, overwrite=True)
    assert where.split(".", 1)[1].startswith(table)
    written = _read_table(empty_database, table.replace('"', '""'))
    pd.testing.assert_frame_equal(written, frame, check_dtype=False)
    mapped = StoreConfig(tables={"customers": {"table": table, "columns": {"customer_id": frame.columns[0]}}})
    assert read_database(empty_database, config=mapped)["customers"]["customer_id"].to_list() == [1, 2]


# ---------------------------------------------------------------------- writing tables
def test_writing_twice_needs_overwrite_or_append(empty_database):
    table = f"scores_{secrets.token_hex(3)}"
    first = pd.DataFrame(
        {"customer_id": [1, 2], "as_of": pd.to_datetime(["2024-05-31"] * 2), "p": [0.1, 0.9]}
    )
    second = first.assign(as_of=pd.Timestamp("2024-06-30"), p=[0.2, 0.3])
    write_output(first, empty_database, table=table)
    with pytest.raises(ChurnriskError, match="already exists.*--overwrite"):
        write_output(second, empty_database, table=table)
    pd.testing.assert_frame_equal(_read_table(empty_database, table), first, check_dtype=False)
    write_output(second[["p", "as_of", "customer_id"]], empty_database, table=table, append=True)
    both = _read_table(empty_database, table).sort_values(["as_of", "customer_id"], ignore_index=True)
    pd.testing.assert_frame_equal(both, pd.concat([first, second], ignore_index=True), check_dtype=False)
    write_output(second, empty_database, table=table, overwrite=True)
    pd.testing.assert_frame_equal(_read_table(empty_database, table), second, check_dtype=False)
    with pytest.raises(ChurnriskError, match="cannot append.*columns"):
        write_output(second.drop(columns="p"), empty_database, table=table, append=True)


@pytest.mark.parametrize("existing", [False, True])
def test_a_write_killed_halfway_leaves_no_table(empty_database, monkeypatch, existing):
    table = f"killed_{secrets.token_hex(3)}"
    old = pd.DataFrame({"customer_id": [7], "p": [0.5]})
    if existing:
        write_output(old, empty_database, table=table)
    before = _tables(empty_database)
    ingest = _connection._Database.ingest

    def fill_then_die(self, *args, **kwargs):
        ingest(self, *args, **kwargs)  # the rows are in the new table...
        raise KeyboardInterrupt  # ...when the write is killed

    monkeypatch.setattr(_connection._Database, "ingest", fill_then_die)
    new = pd.DataFrame({"customer_id": [1, 2], "p": [0.1, 0.2]})
    with pytest.raises(KeyboardInterrupt):
        write_output(new, empty_database, table=table, overwrite=True)
    assert _tables(empty_database) == before  # no half table, no temporary table
    if existing:
        pd.testing.assert_frame_equal(_read_table(empty_database, table), old, check_dtype=False)


def test_output_options_are_checked(tmp_path):
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(ChurnriskError, match="needs a table name"):
        write_output(frame, f"duckdb://{tmp_path / 'x.duckdb'}")
    with pytest.raises(ChurnriskError, match="--table is for a database output"):
        write_output(frame, tmp_path / "x.csv", table="t")
    with pytest.raises(ChurnriskError, match="--append is for a database output"):
        write_output(frame, tmp_path / "x.csv", append=True)


@pytest.mark.slow
def test_cli_score_into_a_table_twice(demo_duckdb, empty_database):
    if not MODEL.is_file():
        pytest.skip(f"the default model {MODEL} is not there")
    table = f"churn_scores_{secrets.token_hex(3)}"
    args = [
        "score",
        str(MODEL),
        demo_duckdb,
        "--as-of",
        "2024-10-31",
        "-o",
        empty_database,
        "--table",
        table,
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a model from other library versions warns
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        again = runner.invoke(app, args)
        appended = runner.invoke(app, [*args[:4], "2024-11-30", *args[5:], "--append"])
    assert again.exit_code == 1 and "already exists" in again.output and "Traceback" not in again.output
    assert appended.exit_code == 0, appended.output
    written = _read_table(empty_database, table)
    assert written.groupby("as_of").size().index.tolist() == [
        pd.Timestamp("2024-10-31"),
        pd.Timestamp("2024-11-30"),
    ]
    assert set(written["model"]) == {"demo-subscription"}


# ---------------------------------------------------------------------- credentials and errors
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ana:s3cret@db:5432/crm", "postgresql://ana:***@db:5432/crm"),
        ("postgres://ana:p@ss:w@rd@db/crm", "postgres://ana:***@db/crm"),
        (
            "postgresql://db/crm?user=ana&password=s3cret&sslmode=require",
            "postgresql://db/crm?user=ana&password=***&sslmode=require",
        ),
        ("postgresql:///?service=crm", "postgresql:///?service=crm"),
        ("duckdb:///data/events.duckdb", "duckdb:///data/events.duckdb"),
    ],
)
def test_mask_url(url, shown):
    assert mask_url(url) == shown


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server: set CHURNRISK_TEST_POSTGRES (.ci/run does)")
def test_a_wrong_password_is_never_shown(demo_postgres):
    secret = f"not-the-password-{secrets.token_hex(4)}"
    parts = demo_postgres.split("://", 1)[1]
    user, host = parts.split("@", 1)[0].split(":")[0], parts.split("@", 1)[1]
    result = runner.invoke(app, ["validate", f"postgresql://{user}:{secret}@{host}"])
    assert result.exit_code == 1
    assert secret not in result.output and "Traceback" not in result.output
    assert "password authentication failed" in result.output and ":***@" in result.output


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server: set CHURNRISK_TEST_POSTGRES (.ci/run does)")
def test_a_bad_table_name_does_not_show_the_password(demo_postgres, tmp_path):
    secret = demo_postgres.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    config = tmp_path / "map.toml"
    config.write_text('[tables.orders]\ntable = "no_such_orders"\n', encoding="utf-8")
    result = runner.invoke(app, ["validate", demo_postgres, "--config", str(config)])
    assert result.exit_code == 1
    assert "no_such_orders" in result.output and "Traceback" not in result.output
    assert not secret or secret not in result.output
    query = tmp_path / "query.toml"
    query.write_text('[tables.orders]\nquery = "SELECT * FROM no_such_orders"\n', encoding="utf-8")
    result = runner.invoke(app, ["features", demo_postgres, "--cutoff", "2024-06-30", "--config", str(query)])
    assert (
        result.exit_code == 1
        and "no_such_orders" in result.output
        and "reading table 'orders'" in result.output
    )
    assert not secret or secret not in result.output


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server: set CHURNRISK_TEST_POSTGRES (.ci/run does)")
def test_passwords_from_the_environment_a_pgpass_and_a_service_file(
    demo_postgres, demo_store, tmp_path, monkeypatch
):
    from urllib.parse import urlsplit

    parts = urlsplit(demo_postgres)
    for name in ("PGPASSWORD", "PGPASSFILE", "PGSERVICEFILE", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    bare = f"postgresql://{parts.username}@{parts.hostname}:{parts.port}{parts.path}"
    monkeypatch.setenv("PGPASSWORD", parts.password or "")
    assert read_database(bare, columns={"customers": None}).customer_ids.equals(demo_store.customer_ids)
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(
        f"{parts.hostname}:{parts.port}:*:{parts.username}:{parts.password}\n", encoding="utf-8"
    )
    pgpass.chmod(0o600)
    services = tmp_path / "services.conf"
    services.write_text(
        f"[churn]\nhost={parts.hostname}\nport={parts.port}\nuser={parts.username}\ndbname={parts.path[1:]}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    store = read_database("postgresql:///?service=churn", columns={"customers": None})
    assert store.customer_ids.equals(demo_store.customer_ids)
    assert store.source == "postgresql:///?service=churn"


def test_a_server_that_cannot_be_reached(monkeypatch):
    pytest.importorskip("adbc_driver_postgresql")
    monkeypatch.delenv("PGSERVICE", raising=False)
    result = runner.invoke(app, ["validate", "postgresql://ana:s3cret@127.0.0.1:1/crm"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "host 127.0.0.1, port 1, database crm" in result.output and "refused" in result.output
    assert "s3cret" not in result.output


def test_a_missing_driver_says_what_to_install(monkeypatch, tmp_path):
    import importlib

    real = importlib.import_module
    monkeypatch.setattr(
        importlib,
        "import_module",
        lambda name, *a: (_ for _ in ()).throw(ImportError(name)) if name == "duckdb" else real(name, *a),
    )
    with pytest.raises(ChurnriskError, match=r'pip install "churnrisk\[duckdb\]"'):
        read_database(f"duckdb://{tmp_path / 'x.duckdb'}")


def test_cli_features_from_and_to_a_database(demo_duckdb, demo_folder, tmp_path):
    out = f"duckdb://{tmp_path / 'features.duckdb'}"
    result = runner.invoke(
        app,
        ["features", demo_duckdb, "--cutoff", "2024-06-30", "--windows", "30,90", "-o", out, "--table", "f"],
    )
    assert result.exit_code == 0, result.output
    folder = load_store(demo_folder, columns=feature_inputs())
    expected = build_features(folder, CUTOFF, windows=[30, 90]).reset_index()
    categories = expected.select_dtypes("category").columns  # a database keeps their text
    expected = expected.astype(dict.fromkeys(categories, "str"))
    pd.testing.assert_frame_equal(_read_table(out, "f"), expected, check_dtype=False)
    labels = runner.invoke(
        app,
        [
            "labels",
            demo_duckdb,
            "--cutoff",
            "2024-06-30",
            "--horizon",
            "60",
            "--definition",
            "subscription",
            "-o",
            out,
            "--table",
            "labels",
        ],
    )
    assert labels.exit_code == 0, labels.output
    theirs = make_labels(load_store(demo_folder), CUTOFF, definition="subscription", horizon=60).reset_index()
    pd.testing.assert_frame_equal(_read_table(out, "labels"), theirs, check_dtype=False)
    rates = runner.invoke(app, ["rates", demo_duckdb, "--format", "csv", "-o", out, "--table", "rates"])
    assert rates.exit_code == 0, rates.output
    from churnrisk.rates import churn_rates

    expected = churn_rates(load_store(demo_folder), period="month")
    pd.testing.assert_frame_equal(_read_table(out, "rates"), expected, check_dtype=False)


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(_connection)
    assert result.failed == 0 and result.attempted >= 3
    result = doctest.testmod(_read)
    assert result.failed == 0 and result.attempted >= 1
