"""Tests for churnrisk.store: reading folders and frames, typing, the TOML mapping."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_series_equal

from churnrisk.errors import ChurnriskError
from churnrisk.store import EventStore, StoreConfig, read_config

CUSTOMERS = "customer_id,signup_at\n1,2024-01-01\n2,2024-01-02\n"


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_text(text, encoding=encoding)
    return path


def problems_of(store: EventStore) -> dict[tuple[str, str | None], str]:
    return {(p.table, p.column): str(p) for p in store.load_problems}


def times(*values: str | None) -> pl.Series:
    return pl.Series(
        [None if v is None else datetime.fromisoformat(v) for v in values], dtype=pl.Datetime("us")
    )


# ---------------------------------------------------------------------- timestamps
def test_csv_iso_timestamps_with_offsets_become_utc_naive(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    write(
        tmp_path,
        "orders.csv",
        "customer_id,ordered_at,amount\n"
        "1,2024-03-01T14:05:00+02:00,1\n"
        "1,2024-03-01 10:00Z,1\n"
        "2,2024-03-01T23:30:00.5-0530,1\n"
        "2,2024-03-02 00:00:00+01,1\n",
    )
    store = EventStore.from_folder(tmp_path)
    assert store.load_problems == []
    expected = times(
        "2024-03-01T12:05:00", "2024-03-01T10:00:00", "2024-03-02T05:00:00.5", "2024-03-01T23:00:00"
    )
    assert_series_equal(store["orders"]["ordered_at"], expected.alias("ordered_at"))


def test_csv_naive_timestamps_are_kept_as_written(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    write(
        tmp_path,
        "orders.csv",
        "customer_id,ordered_at,amount\n"
        "1,2024-03-01,1\n1,2024-03-01 10:00,1\n2,2024-03-01T23:30:15,1\n2,,1\n",
    )
    store = EventStore.from_folder(tmp_path)
    expected = times("2024-03-01T00:00:00", "2024-03-01T10:00:00", "2024-03-01T23:30:15", None)
    assert_series_equal(store["orders"]["ordered_at"], expected.alias("ordered_at"))
    assert store["customers"]["signup_at"].dtype == pl.Datetime("us")


def test_csv_mixing_naive_and_aware_timestamps_is_an_error(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    write(
        tmp_path,
        "orders.csv",
        "customer_id,ordered_at,amount\n"
        "1,2024-03-01 10:00,1\n1,2024-03-01T10:00:00+00:00,1\n2,2024-03-02,1\n",
    )
    [problem] = EventStore.from_folder(tmp_path).load_problems
    assert (problem.table, problem.column) == ("orders", "ordered_at")
    assert "aware (1 rows) and naive (2 rows)" in problem.message
    assert problem.rows == 3
    assert set(problem.examples) == {"2024-03-01T10:00:00+00:00", "2024-03-01 10:00", "2024-03-02"}


def test_csv_timestamps_that_are_not_iso_are_reported_not_guessed(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    # 01/02/2024 could be January or February: it is reported, never read as either.
    write(
        tmp_path,
        "orders.csv",
        "customer_id,ordered_at,amount\n1,01/02/2024,1\n1,2024-02-30,1\n2,2024-03-01,1\n2,yesterday,1\n",
    )
    store = EventStore.from_folder(tmp_path)
    [problem] = store.load_problems
    assert (problem.table, problem.column, problem.rows) == ("orders", "ordered_at", 3)
    assert problem.examples == ("01/02/2024", "2024-02-30", "yesterday")
    assert "ISO 8601" in problem.message and "time_format" in (problem.suggestion or "")
    assert store["orders"]["ordered_at"].to_list() == [None, None, datetime(2024, 3, 1), None]


def test_time_format_from_config(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    write(
        tmp_path, "orders.csv", "customer_id,ordered_at,amount\n1,01/02/2024 10:30,1\n2,31/12/2024 23:59,1\n"
    )
    config = StoreConfig(tables={"orders": {"time_format": "%d/%m/%Y %H:%M"}})
    store = EventStore.from_folder(tmp_path, config=config)
    assert store.load_problems == []
    assert store["orders"]["ordered_at"].to_list() == [
        datetime(2024, 2, 1, 10, 30),
        datetime(2024, 12, 31, 23, 59),
    ]


def test_parquet_timestamps_aware_become_utc_naive_and_dates_become_datetimes(tmp_path):
    pl.DataFrame({"customer_id": [1, 2], "signup_at": [datetime(2024, 1, 1).date(), None]}).write_parquet(
        tmp_path / "customers.parquet"
    )
    orders = pl.DataFrame(
        {
            "customer_id": [1, 2],
            "ordered_at": [datetime(2024, 3, 1, 12), datetime(2024, 7, 1, 12)],
            "amount": [1, 2],
        }
    ).with_columns(pl.col("ordered_at").dt.replace_time_zone("Europe/Prague"))
    orders.write_parquet(tmp_path / "orders.parquet")
    store = EventStore.from_folder(tmp_path)
    assert store.load_problems == []
    # Prague is UTC+1 in winter, UTC+2 in summer.
    assert_series_equal(
        store["orders"]["ordered_at"], times("2024-03-01T11:00:00", "2024-07-01T10:00:00").alias("ordered_at")
    )
    assert_series_equal(
        store["customers"]["signup_at"], times("2024-01-01T00:00:00", None).alias("signup_at")
    )
    assert store["orders"]["amount"].dtype == pl.Float64


def test_pandas_object_column_mixing_naive_and_aware_timestamps_is_an_error():
    orders = pd.DataFrame(
        {
            "customer_id": [1, 2, 2],
            "ordered_at": [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-01", tz="UTC"), None],
            "amount": [1.0, 2.0, 3.0],
        }
    )
    assert orders["ordered_at"].dtype == object
    store = EventStore.from_frames({"customers": pd.DataFrame({"customer_id": [1, 2]}), "orders": orders})
    mixed, missing = store.load_problems
    assert (mixed.table, mixed.column, mixed.rows) == ("orders", "ordered_at", 2)
    assert "mixes time-zone-aware (1 rows) and naive (1 rows)" in mixed.message
    assert (missing.column, missing.rows, missing.examples) == ("ordered_at", 1, ("row 3",))


def test_pandas_aware_column_becomes_utc_naive_and_naive_stays():
    orders = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "ordered_at": pd.to_datetime(["2024-01-15 09:00", "2024-06-15 09:00"]).tz_localize(
                "America/New_York"
            ),
            "amount": [1.0, 2.0],
        }
    )
    customers = pd.DataFrame(
        {"customer_id": [1, 2], "signup_at": pd.to_datetime(["2023-01-01", "2023-05-06"])}
    )
    store = EventStore.from_frames({"customers": customers, "orders": orders})
    assert store.load_problems == []
    assert store["orders"]["ordered_at"].to_list() == [datetime(2024, 1, 15, 14), datetime(2024, 6, 15, 13)]
    assert store["customers"]["signup_at"].to_list() == [datetime(2023, 1, 1), datetime(2023, 5, 6)]


# ---------------------------------------------------------------------- other types
def test_bad_numbers_bools_and_categories_are_reported_with_examples(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    write(
        tmp_path,
        "orders.csv",
        "customer_id,ordered_at,amount\n1,2024-01-01,12.5\n1,2024-01-02,1 234\n2,2024-01-03,\n",
    )
    write(
        tmp_path,
        "tickets.csv",
        "customer_id,opened_at,is_complaint\n1,2024-01-01,Yes\n1,2024-01-01,maybe\n2,2024-01-01,0\n2,2024-01-01,\n",
    )
    write(
        tmp_path,
        "payments.csv",
        "customer_id,attempted_at,status\n1,2024-01-01,Failed\n2,2024-01-01,bounced\n",
    )
    store = EventStore.from_folder(tmp_path)
    found = {(p.table, p.column, p.message.split()[0]): p for p in store.load_problems}
    assert set(found) == {
        ("orders", "amount", "values"),
        ("orders", "amount", "missing"),  # the blank one; the unreadable one is not counted twice
        ("tickets", "is_complaint", "values"),
        ("payments", "status", "unknown"),
    }
    assert (found["orders", "amount", "values"].rows, found["orders", "amount", "values"].examples) == (
        1,
        ("1 234",),
    )
    assert (found["orders", "amount", "missing"].rows, found["orders", "amount", "missing"].examples) == (
        1,
        ("row 3",),
    )
    complaint = found["tickets", "is_complaint", "values"]
    assert (complaint.rows, complaint.examples) == (1, ("maybe",))
    assert found["payments", "status", "unknown"].examples == ("bounced",)
    assert "allowed are ['succeeded', 'failed']" in found["payments", "status", "unknown"].message
    assert store["orders"]["amount"].to_list() == [12.5, None, None]
    assert store["tickets"]["is_complaint"].to_list() == [True, None, False, None]
    assert store["payments"]["status"].to_list() == ["failed", "bounced"]


def test_nan_amounts_count_as_missing():
    orders = pd.DataFrame(
        {"customer_id": [1, 1], "ordered_at": ["2024-01-01", "2024-01-02"], "amount": [float("nan"), 0.0]}
    )
    store = EventStore.from_frames({"orders": orders})
    assert store["orders"]["amount"].to_list() == [None, 0.0]


@pytest.mark.parametrize(
    ("customer_ids", "order_ids", "dtype", "expected"),
    [
        ("1\n2", "1\n2", pl.Int64, [1, 2]),
        ("1\n2", "1.0\n2.0", pl.Int64, [1, 2]),  # ids read as floats elsewhere
        ("A1\n2", "A1\n2", pl.String, ["A1", "2"]),
        ("0012\n12", "0012\n12", pl.String, ["0012", "12"]),  # a code with leading zeros stays text
    ],
)
def test_customer_ids_share_one_type(tmp_path, customer_ids, order_ids, dtype, expected):
    write(tmp_path, "customers.csv", "customer_id\n" + customer_ids + "\n")
    rows = "".join(f"{i},2024-01-01,1\n" for i in order_ids.split("\n"))
    write(tmp_path, "orders.csv", "customer_id,ordered_at,amount\n" + rows)
    store = EventStore.from_folder(tmp_path)
    assert store["customers"]["customer_id"].dtype == dtype
    assert store["orders"]["customer_id"].dtype == dtype
    assert store["orders"]["customer_id"].to_list() == expected


def test_float_ids_in_parquet_match_integer_text_ids_in_csv(tmp_path):
    write(tmp_path, "customers.csv", "customer_id\n12346\n12347\n")
    pl.DataFrame(
        {"customer_id": [12346.0, None], "ordered_at": [datetime(2024, 1, 1)] * 2, "amount": [1.0, 2.0]}
    ).write_parquet(tmp_path / "orders.parquet")
    store = EventStore.from_folder(tmp_path)
    assert store["orders"]["customer_id"].to_list() == [12346, None]
    assert store["orders"]["customer_id"].dtype == pl.Int64


def test_attribute_columns_are_kept(tmp_path):
    write(tmp_path, "customers.csv", "customer_id,segment,country\n1,smb,CZ\n")
    store = EventStore.from_folder(tmp_path)
    assert store["customers"].columns == ["customer_id", "segment", "country"]
    assert store["customers"]["segment"].to_list() == ["smb"]


# ---------------------------------------------------------------------- files
def test_empty_header_only_and_blank_files_are_problems(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    write(tmp_path, "orders.csv", "")
    write(tmp_path, "returns.csv", "customer_id,returned_at\n")
    write(tmp_path, "tickets.csv", "\n\n")
    found = problems_of(EventStore.from_folder(tmp_path))
    assert "is empty" in found["orders", None]
    assert "header but no rows" in found["returns", None]
    assert "is empty" in found["tickets", None]


def test_header_only_parquet_is_a_problem(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    pl.DataFrame(
        schema={"customer_id": pl.Int64, "ordered_at": pl.Datetime, "amount": pl.Float64}
    ).write_parquet(tmp_path / "orders.parquet")
    store = EventStore.from_folder(tmp_path)
    assert "header but no rows" in problems_of(store)["orders", None]
    assert "orders" not in store


def test_non_utf8_file_names_the_line_and_suggests_encoding(tmp_path):
    write(tmp_path, "customers.csv", "customer_id,city\n1,Praha\n2,Zürich\n3,Köln\n", encoding="latin-1")
    store = EventStore.from_folder(tmp_path)
    [problem] = store.load_problems
    assert "customers.csv is not UTF-8" in problem.message
    assert "line 3" in problem.message
    assert problem.examples == ("2,Z\ufffdrich",)
    assert "--encoding latin-1" in (problem.suggestion or "")
    assert "customers" not in store


def test_non_utf8_byte_found_across_chunks(tmp_path):
    from churnrisk.store import _first_non_utf8_line

    path = tmp_path / "x.csv"
    path.write_bytes(b"a\n" * 10 + "é\n".encode() + b"bb\xe9b\n" + b"c\n")
    assert _first_non_utf8_line(path, chunk_size=3) == (12, "bb\ufffdb")
    path.write_bytes("ok\né\n".encode() * 5)
    assert _first_non_utf8_line(path, chunk_size=4) is None


def test_encoding_latin1_reads_the_file(tmp_path):
    write(tmp_path, "customers.csv", "customer_id,city\n1,Zürich\n2,Köln\n", encoding="latin-1")
    store = EventStore.from_folder(tmp_path, encoding="latin-1")
    assert store.load_problems == []
    assert store["customers"]["city"].to_list() == ["Zürich", "Köln"]


def test_unknown_encoding_is_a_clear_error(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    with pytest.raises(ChurnriskError, match="unknown encoding 'latin-99'"):
        EventStore.from_folder(tmp_path, encoding="latin-99")


def test_csv_and_parquet_for_one_table_is_a_problem(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    pl.read_csv(tmp_path / "customers.csv").write_parquet(tmp_path / "customers.parquet")
    store = EventStore.from_folder(tmp_path)
    [problem] = store.load_problems
    assert problem.table == "customers"
    assert "both customers.parquet and customers.csv" in problem.message
    assert "customers" not in store


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ChurnriskError, match="does not exist"):
        EventStore.from_folder(tmp_path / "nope")
    write(tmp_path, "file.csv", "a\n1\n")
    with pytest.raises(ChurnriskError, match="is not a folder"):
        EventStore.from_folder(tmp_path / "file.csv")


def test_missing_required_column_lists_found_columns(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    write(tmp_path, "orders.csv", "customer_id,date,price\n1,2024-01-01,3\n")
    store = EventStore.from_folder(tmp_path)
    found = {p.column: p.message for p in store.load_problems if p.table == "orders"}
    assert set(found) == {"ordered_at", "amount"}
    assert "found columns ['customer_id', 'date', 'price']" in found["ordered_at"]
    assert "orders" not in store


@pytest.mark.parametrize(
    ("separator", "toml"), [(";", 'separator = ";"'), ("\t", 'separator = "\\t"'), ("|", 'separator = "|"')]
)
def test_a_file_separated_otherwise_is_named_with_the_fix(tmp_path, separator, toml):
    write(tmp_path, "customers.csv", CUSTOMERS)
    header = separator.join(["customer_id", "ordered_at", "amount"])
    write(tmp_path, "orders.csv", f"{header}\n1{separator}2024-01-01{separator}3\n")
    store = EventStore.from_folder(tmp_path)
    [problem] = store.load_problems
    assert (problem.table, problem.column) == ("orders", None)
    assert f"orders.csv is not separated by commas: its header reads {header!r}" in problem.message
    assert problem.suggestion.endswith(f"[tables.orders] {toml}")
    assert "orders" not in store
    # with the separator named, the same file reads
    config = StoreConfig(tables={"orders": {"separator": separator}})
    read = EventStore.from_folder(tmp_path, config=config)
    assert read.load_problems == [] and read["orders"]["amount"].to_list() == [3.0]


def test_a_one_column_csv_is_read(tmp_path):
    write(tmp_path, "customers.csv", "customer_id\n1\n2\n")
    store = EventStore.from_folder(tmp_path)
    assert store.load_problems == [] and store["customers"].height == 2


def test_a_table_in_another_format_is_named_not_skipped(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    (tmp_path / "orders.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / "orders.json").write_text("[]")
    store = EventStore.from_folder(tmp_path)
    [problem] = store.load_problems
    assert (problem.table, problem.message) == (
        "orders",
        "orders.json is not read: tables are CSV or Parquet files",
    )
    assert problem.examples == ("orders.xlsx",)
    assert problem.suggestion == "save it as orders.csv (CSV UTF-8) or orders.parquet"
    # beside a CSV file of the table, another format is not a problem
    write(tmp_path, "orders.csv", "customer_id,ordered_at,amount\n1,2024-01-01,3\n")
    assert EventStore.from_folder(tmp_path).load_problems == []


# ---------------------------------------------------------------------- frames
def test_from_frames_accepts_pandas_and_polars():
    store = EventStore.from_frames(
        {
            "customers": pl.DataFrame({"customer_id": ["a", "b"]}),
            "orders": pd.DataFrame({"customer_id": ["a"], "ordered_at": ["2024-01-01"], "amount": [1]}),
        }
    )
    assert store.load_problems == []
    assert store["orders"].schema == pl.Schema(
        {"customer_id": pl.String, "ordered_at": pl.Datetime("us"), "amount": pl.Float64}
    )
    assert "orders" in store and "returns" not in store and store.get("returns") is None


def test_from_frames_refuses_unknown_tables_and_non_frames():
    with pytest.raises(ChurnriskError, match=r"unknown tables \['purchases'\]"):
        EventStore.from_frames({"purchases": pd.DataFrame()})
    with pytest.raises(ChurnriskError, match="must be a pandas or Polars DataFrame, got dict"):
        EventStore.from_frames({"customers": {"customer_id": [1]}})  # type: ignore[dict-item]


def test_missing_table_lookup_is_a_clear_error():
    store = EventStore.from_frames({"customers": pd.DataFrame({"customer_id": [1]})})
    with pytest.raises(ChurnriskError, match="no 'orders' table; it has \\['customers'\\]"):
        store["orders"]


def test_time_span():
    store = EventStore.from_frames(
        {
            "customers": pd.DataFrame({"customer_id": [1]}),
            "orders": pd.DataFrame(
                {"customer_id": [1, 1], "ordered_at": ["2024-01-03", "2024-02-01"], "amount": [1, 1]}
            ),
            "activity": pd.DataFrame({"customer_id": [1], "occurred_at": ["2023-12-31"], "event": ["login"]}),
        }
    )
    assert store.time_span() == (datetime(2023, 12, 31), datetime(2024, 2, 1))


# ---------------------------------------------------------------------- TOML mapping
RETAIL_CONFIG = """
[tables.customers]
file = "retail_customers.csv"
[tables.customers.columns]
customer_id = "CustomerID"

[tables.orders]
file = "transactions.csv"
time_format = "%d/%m/%Y %H:%M"
[tables.orders.columns]
customer_id = "CustomerID"
ordered_at = "InvoiceDate"
amount = "Revenue"
order_id = "InvoiceNo"
"""


def test_toml_maps_files_and_columns(tmp_path):
    write(tmp_path, "retail_customers.csv", "CustomerID,Country\n12346,United Kingdom\n12347,Iceland\n")
    write(
        tmp_path,
        "transactions.csv",
        "InvoiceNo,InvoiceDate,CustomerID,Revenue\n"
        "536365,01/12/2010 08:26,12346,15.3\n536366,01/12/2010 08:28,12347,0\n",
    )
    config = read_config(write(tmp_path, "map.toml", RETAIL_CONFIG))
    store = EventStore.from_folder(tmp_path, config=config)
    assert store.load_problems == []
    expected = pl.DataFrame(
        {
            "order_id": ["536365", "536366"],
            "ordered_at": [datetime(2010, 12, 1, 8, 26), datetime(2010, 12, 1, 8, 28)],
            "customer_id": [12346, 12347],
            "amount": [15.3, 0.0],
        },
        schema_overrides={"ordered_at": pl.Datetime("us")},
    )
    assert store["orders"].equals(expected)
    assert store["customers"].columns == ["customer_id", "Country"]


def test_toml_mapping_a_column_that_is_not_there_says_so(tmp_path):
    write(tmp_path, "customers.csv", "id\n1\n")
    config = read_config(
        write(tmp_path, "map.toml", '[tables.customers.columns]\ncustomer_id = "CustomerID"\n')
    )
    [problem] = EventStore.from_folder(tmp_path, config=config).load_problems
    assert (problem.table, problem.column) == ("customers", "customer_id")
    assert (
        "the config maps it to 'CustomerID'" in problem.message and "found columns ['id']" in problem.message
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tables.purchases]\nfile = 'x.csv'\n", r"unknown tables \['purchases'\]"),
        ("[tables.orders.columns]\ncustmer_id = 'CustomerID'\n", r"maps unknown columns \['custmer_id'\]"),
        ("[tables.orders]\nfiel = 'x.csv'\n", r"unknown settings \['fiel'\] for table 'orders'"),
        ("delimiter = ';'\n", r"unknown settings \['delimiter'\]"),
        ("encoding = 'klingon'\n", "unknown encoding 'klingon'"),
        ("[tables.orders\n", "is not valid TOML"),
        ("[tables.orders.columns]\namount = 3\n", "is not 'contract_name"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    with pytest.raises(ChurnriskError, match=message):
        read_config(write(tmp_path, "map.toml", text))


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ChurnriskError, match="config file .*nope.toml does not exist"):
        read_config(tmp_path / "nope.toml")


def test_config_naming_a_missing_file_is_a_clear_error(tmp_path):
    config = StoreConfig(tables={"orders": {"file": "transactions.csv"}})
    with pytest.raises(
        ChurnriskError, match="names .*transactions.csv for table 'orders', but it does not exist"
    ):
        EventStore.from_folder(tmp_path, config=config)


def test_config_encoding_and_separator_per_table(tmp_path):
    write(tmp_path, "customers.csv", "customer_id;city\n1;Zürich\n", encoding="cp1252")
    config = StoreConfig(tables={"customers": {"encoding": "cp1252", "separator": ";"}})
    store = EventStore.from_folder(tmp_path, config=config)
    assert store["customers"]["city"].to_list() == ["Zürich"]


# ---------------------------------------------------------------------- ISO 8601, property-based
def _iso_text(
    moment: datetime, sep: str, precision: str, offset_minutes: int | None, offset_style: str
) -> str:
    text = moment.strftime(f"%Y-%m-%d{sep}%H:%M")
    if precision in ("seconds", "fraction"):
        text += moment.strftime(":%S")
    if precision == "fraction":
        text += f".{moment.microsecond:06d}"
    if precision == "date":
        text = moment.strftime("%Y-%m-%d")
    if offset_minutes is None:
        return text
    if offset_minutes == 0 and offset_style == "Z":
        return text + "Z"
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return text + (
        f"{sign}{hours:02d}{minutes:02d}" if offset_style == "compact" else f"{sign}{hours:02d}:{minutes:02d}"
    )


def _truncate(moment: datetime, precision: str) -> datetime:
    if precision == "date":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if precision == "minutes":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0) if precision == "seconds" else moment


iso_value = st.tuples(
    st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(["T", " "]),
    st.sampled_from(["date", "minutes", "seconds", "fraction"]),
    st.sampled_from(["Z", "compact", "colon"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(iso_value, min_size=1, max_size=8), st.one_of(st.none(), st.integers(-12 * 60, 14 * 60)))
def test_iso_parsing_matches_python(values, offset):
    from churnrisk.store import _parse_iso

    # One offset for the whole column (a mix of aware and naive values is an error, tested above).
    texts = [_iso_text(m, sep, precision, offset, style) for m, sep, precision, style in values]
    shift = timedelta(minutes=offset or 0)
    expected = [_truncate(m, precision) - shift for m, _, precision, _ in values]
    assert _parse_iso(pl.Series(texts)).to_list() == expected


def test_columns_reads_only_the_named_tables_and_columns(tmp_path):
    """``columns=``: tables not named are not read; of the others, the named contract columns (by
    the config's names for them) and the required ones; columns outside the contract only when
    asked for all (``None``)."""
    write(tmp_path, "customers.csv", "customer_id,segment\n1,a\n2,b\n")
    pl.DataFrame(
        {
            "CustomerID": [1, 2],
            "When": times("2024-01-01", "2024-01-02"),
            "Revenue": [3.0, 4.0],
            "category": ["x", "y"],
            "note": ["n1", "n2"],
        }
    ).write_parquet(tmp_path / "orders.parquet", row_group_size=1)
    write(tmp_path, "tickets.csv", "customer_id,opened_at,category\n1,2024-01-01,a\n")
    write(tmp_path, "payments.csv", "customer_id,attempted_at,status,amount\n1,2024-01-01,failed,5\n")
    config = StoreConfig(
        tables={
            "orders": {"columns": {"customer_id": "CustomerID", "ordered_at": "When", "amount": "Revenue"}}
        }
    )
    store = EventStore.from_folder(
        tmp_path,
        config=config,
        columns={"customers": None, "orders": {"customer_id"}, "payments": {"amount"}},
    )
    assert sorted(store.tables) == ["customers", "orders", "payments"]
    assert store["customers"].columns == ["customer_id", "segment"]
    assert store["orders"].columns == ["customer_id", "ordered_at", "amount"]  # the required ones
    assert store["orders"]["amount"].to_list() == [3.0, 4.0]
    assert store["payments"].columns == ["customer_id", "attempted_at", "status", "amount"]
    assert not store.load_problems


def test_columns_still_reports_a_missing_required_column(tmp_path):
    write(tmp_path, "customers.csv", CUSTOMERS)
    pl.DataFrame({"customer_id": [1], "amount": [1.0]}).write_parquet(tmp_path / "orders.parquet")
    store = EventStore.from_folder(tmp_path, columns={"customers": None, "orders": {"amount"}})
    assert "missing required column" in problems_of(store)[("orders", "ordered_at")]
