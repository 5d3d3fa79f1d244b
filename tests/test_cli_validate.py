"""Tests for `churnrisk validate` through typer's CliRunner: exit codes, messages, no traceback."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from churnrisk.cli import app

runner = CliRunner()

CLEAN = {
    "customers.csv": "customer_id,signup_at,segment\n1,2024-01-01,smb\n2,2024-01-02,enterprise\n",
    # Two identical purchases on one day, no order_id: genuine, so only a warning.
    "orders.csv": "customer_id,ordered_at,amount\n1,2024-02-01,0\n1,2024-02-01,9.5\n1,2024-02-01,9.5\n",
    "subscriptions.csv": (
        "customer_id,started_at,ended_at,mrr\n2,2024-01-02,2024-03-01,50\n2,2024-03-01,,40\n"  # touching
    ),
}

# Every problem the validation knows, in one store; activity.csv is written in latin-1 below.
BAD = {
    "customers.csv": "customer_id,signup_at\n1,2024-01-01\n2,soon\n2,2024-01-03\n3,2024-01-04\n",
    "orders.csv": (
        "customer_id,ordered_at,amount,order_id\n"
        "1,2024-02-01,10,A\n"
        "1,2024-02-02,-5,A\n"
        "99,2024-02-03,,B\n"
        "3,2025-06-01,1,C\n"
        "3,2024-02-05,ten,D\n"
        "3,2024-02-06,inf,E\n"
    ),
    "returns.csv": "",
    "subscriptions.csv": (
        "customer_id,started_at,ended_at,mrr,subscription_id\n"
        "1,2024-01-01,2024-06-01,10,s1\n"
        "1,2024-03-01,,10,s2\n"
        "3,2024-05-01,2024-04-01,10,s2\n"
    ),
    "tickets.csv": (
        "customer_id,opened_at,is_complaint,ticket_id\n"
        "1,2024-02-01 10:00,yes,t1\n"
        "1,2024-02-01T10:00:00+01:00,maybe,t1\n"
    ),
    "surveys.csv": (
        "customer_id,answered_at,kind,score\n"
        "1,2024-02-01,csat,6\n"
        "1,2024-02-01,nps,11\n"
        "1,2024-02-01,ces,8\n"
        "1,2024-02-01,smiley,3\n"
        "3,2024-02-01,nps,9\n"
        "3,2024-02-01,nps,9\n"
    ),
    "payments.csv": (
        "customer_id,attempted_at,status,payment_id\n1,2024-02-01,failed,p1\n1,2024-02-02,bounced,p1\n"
    ),
}

# (table, column, words in the message) for every error expected in BAD.
BAD_ERRORS = [
    ("customers", "customer_id", "repeated id"),
    ("customers", "signup_at", "not ISO 8601 timestamps"),
    ("orders", "order_id", "repeated id"),
    ("orders", "amount", "negative values"),
    ("orders", "amount", "missing values"),
    ("orders", "amount", "not numbers"),
    ("orders", "amount", "infinite values"),
    ("orders", "customer_id", "not in the customers table"),
    ("orders", "ordered_at", "after the as-of date"),
    ("returns", None, "is empty"),
    ("subscriptions", "customer_id", "overlapping subscription spells"),
    ("subscriptions", "ended_at", "earlier than started_at"),
    ("subscriptions", "subscription_id", "repeated id"),
    ("tickets", "ticket_id", "repeated id"),
    ("tickets", "is_complaint", "not true/false"),
    ("tickets", "opened_at", "mixes time-zone-aware"),
    ("surveys", "kind", "unknown values"),
    ("surveys", "score", "csat scores outside 1-5"),
    ("surveys", "score", "nps scores outside 0-10"),
    ("surveys", "score", "ces scores outside 1-7"),
    ("payments", "status", "unknown values"),
    ("payments", "payment_id", "repeated id"),
    ("activity", None, "not UTF-8"),
]


def make_store(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def make_bad_store(folder: Path) -> Path:
    make_store(folder, BAD)
    (folder / "activity.csv").write_bytes(
        "customer_id,occurred_at,event\n1,2024-02-01,connexión\n".encode("latin-1")
    )
    return folder


def test_clean_store_exits_0_with_warnings(tmp_path):
    result = runner.invoke(app, ["validate", str(make_store(tmp_path / "data", CLEAN))])
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout and "1 warning" in result.stdout
    assert "orders.customer_id: rows that repeat exactly" in result.stderr
    assert "error" not in result.stderr


def test_clean_store_json(tmp_path):
    result = runner.invoke(app, ["validate", str(make_store(tmp_path / "data", CLEAN)), "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["errors"] == []
    assert data["tables"] == {"customers": 2, "orders": 3, "subscriptions": 2}
    [warning] = data["warnings"]
    assert (warning["table"], warning["rows"]) == ("orders", 2)


def test_every_problem_is_named_in_one_run_text(tmp_path):
    result = runner.invoke(app, ["validate", str(make_bad_store(tmp_path / "data")), "--as-of", "2024-12-31"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    for table, column, words in BAD_ERRORS:
        where = table if column is None else f"{table}.{column}"
        assert any(f" {where}: " in line and words in line for line in lines), (where, words)
    assert len(lines) == len(BAD_ERRORS)
    assert f"{len(BAD_ERRORS)} errors, 1 warning" in result.stderr
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert "surveys.customer_id: rows that repeat exactly" in warning and "(2 rows); e.g. 3" in warning
    assert "--encoding latin-1" in result.stderr


def test_every_problem_is_named_in_one_run_json(tmp_path):
    folder = make_bad_store(tmp_path / "data")
    result = runner.invoke(app, ["validate", str(folder), "--as-of", "2024-12-31", "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    got = sorted((e["table"], e["column"], e["message"]) for e in data["errors"])
    assert len(got) == len(BAD_ERRORS)
    for table, column, words in BAD_ERRORS:
        assert any(t == table and c == column and words in m for t, c, m in got), (table, column, words)
    by_where = {(e["table"], e["column"], e["message"].split(" ")[0]): e for e in data["errors"]}
    negative = by_where["orders", "amount", "negative"]
    assert (negative["rows"], negative["examples"]) == (1, [-5.0])
    unknown = by_where["orders", "customer_id", "customer"]
    assert (unknown["rows"], unknown["examples"]) == (1, [99])
    overlap = by_where["subscriptions", "customer_id", "overlapping"]
    assert (overlap["rows"], overlap["examples"]) == (1, [1])
    assert [w["table"] for w in data["warnings"]] == ["surveys"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {
                "customers.csv": "customer_id\n",
                "orders.csv": "customer_id,ordered_at,amount\n1,2024-01-01,1\n",
            },
            "customers: customers.csv has a header but no rows",
        ),
        (
            {"customers.csv": "", "orders.csv": "customer_id,ordered_at,amount\n1,2024-01-01,1\n"},
            "customers: customers.csv is empty",
        ),
        (
            {"orders.csv": "customer_id,ordered_at,amount\n1,2024-01-01,1\n"},
            "customers: missing table (customers.csv or customers.parquet); found tables: ['orders']",
        ),
        (
            {"customers.csv": "customer_id\n1\n", "orders.csv": "customer_id,date,amount\n1,2024-01-01,1\n"},
            "orders.ordered_at: missing required column; found columns ['customer_id', 'date', 'amount']",
        ),
        ({"customers.csv": "customer_id\n1\n"}, "no activity table"),
        (
            {
                "customers.csv": "customer_id\n1\n",
                "orders.csv": "customer_id;ordered_at;amount\n1;2024-01-01;1\n",
            },
            "orders: orders.csv is not separated by commas: its header reads "
            "'customer_id;ordered_at;amount'. "
            'Suggestion: name its separator in a --config TOML file: [tables.orders] separator = ";"',
        ),
        (
            {"customers.csv": "customer_id\n1\n", "orders.xlsx": "a spreadsheet"},
            "orders: orders.xlsx is not read: tables are CSV or Parquet files. "
            "Suggestion: save it as orders.csv (CSV UTF-8) or orders.parquet",
        ),
    ],
)
def test_file_level_problems(tmp_path, files, message):
    result = runner.invoke(app, ["validate", str(make_store(tmp_path / "data", files))])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_one_row_table_is_shown_vertically():
    import pandas as pd
    from rich.console import Console

    from churnrisk.cli._app import frame_table

    frame = pd.DataFrame(
        {"average_order_value": [51.5], "expected_lifetime_periods": [31.5], "segment": ["[vip]"]}
    )
    console = Console(width=80, file=io.StringIO())
    console.print(frame_table(frame, title="CLV"))
    lines = console.file.getvalue().splitlines()
    assert max(map(len, lines)) <= 80
    rows = [re.split("[│┃]", line)[1:-1] for line in lines if line[0] in "│┃"]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["name", "value"],
        ["average_order_value", "51.50"],
        ["expected_lifetime_periods", "31.50"],
        ["segment", "[vip]"],  # text from the data, not markup
    ]


def test_csv_and_parquet_for_one_table(tmp_path):
    folder = make_store(tmp_path / "data", CLEAN)
    pl.read_csv(folder / "orders.csv").write_parquet(folder / "orders.parquet")
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 1
    assert "both orders.parquet and orders.csv" in result.stderr


def test_encoding_option_reads_latin1(tmp_path):
    folder = make_store(tmp_path / "data", CLEAN)
    (folder / "activity.csv").write_bytes(
        "customer_id,occurred_at,event\n1,2024-02-01,connexión\n".encode("latin-1")
    )
    assert runner.invoke(app, ["validate", str(folder)]).exit_code == 1
    result = runner.invoke(app, ["validate", str(folder), "--encoding", "latin-1"])
    assert result.exit_code == 0, result.output


def test_config_maps_names(tmp_path):
    folder = make_store(
        tmp_path / "data",
        {
            "clients.csv": "CustomerID,Country\n12346,UK\n",
            "invoices.csv": "InvoiceNo,InvoiceDate,CustomerID,Revenue\n536365,01/12/2010 08:26,12346,15.3\n",
        },
    )
    config = tmp_path / "map.toml"
    config.write_text(
        '[tables.customers]\nfile = "clients.csv"\ncolumns = {customer_id = "CustomerID"}\n'
        '[tables.orders]\nfile = "invoices.csv"\ntime_format = "%d/%m/%Y %H:%M"\n'
        "[tables.orders.columns]\n"
        'customer_id = "CustomerID"\nordered_at = "InvoiceDate"\namount = "Revenue"\norder_id = "InvoiceNo"\n'
    )
    result = runner.invoke(app, ["validate", str(folder), "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tables"] == {"customers": 1, "orders": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "{tmp}/missing.toml"], "missing.toml does not exist"),
        (["--encoding", "latin-99"], "unknown encoding 'latin-99'"),
    ],
)
def test_unusable_options_exit_1_with_a_message(tmp_path, args, message):
    folder = make_store(tmp_path / "data", CLEAN)
    args = [a.format(tmp=tmp_path) for a in args]
    result = runner.invoke(app, ["validate", str(folder), *args])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_bad_format_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["validate", str(make_store(tmp_path / "data", CLEAN)), "--format", "xml"])
    assert result.exit_code == 2
    assert "xml" in result.stderr


def test_bad_as_of_is_a_usage_error(tmp_path):
    result = runner.invoke(
        app, ["validate", str(make_store(tmp_path / "data", CLEAN)), "--as-of", "tomorrow"]
    )
    assert result.exit_code == 2


def test_missing_folder_exits_1_without_traceback(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "nowhere does not exist" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
