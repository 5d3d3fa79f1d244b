"""A folder's Parquet files read up to a date, as a database is: later events are not read."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import polars as pl
import pytest

from churnrisk.errors import DataError
from churnrisk.store import EventStore
from churnrisk.validation import load_store

UNTIL = datetime(2024, 3, 31)


def _write(folder, suffix: str, orders: pd.DataFrame) -> None:
    customers = pd.DataFrame(
        {"customer_id": [1, 2, 3], "signup_at": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-05-01"])}
    )
    for name, frame in {"customers": customers, "orders": orders}.items():
        if suffix == ".parquet":
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)


ORDERS = pd.DataFrame(
    {
        "customer_id": [1, 2, 1, 3, 2],
        "ordered_at": pd.to_datetime(["2024-01-05", "2024-03-31", "2024-04-01", "2024-03-20", "2024-06-30"]),
        "amount": [10.0, 20.0, -5.0, 7.0, 1.0],  # the negative one is after UNTIL
    }
)


def test_parquet_rows_after_until_are_not_read_but_the_span_is_all_of_them(tmp_path):
    _write(tmp_path, ".parquet", ORDERS)
    store = EventStore.from_folder(tmp_path, until=UNTIL)
    # at the date itself: read; customer 3 signed up later, yet the customers are all read
    assert store["orders"]["ordered_at"].to_list() == [datetime(2024, 1, 5), UNTIL, datetime(2024, 3, 20)]
    assert store["customers"]["customer_id"].to_list() == [1, 2, 3]
    assert store.time_span() == (datetime(2024, 1, 5), datetime(2024, 6, 30))  # of every event
    assert load_store(tmp_path, until=UNTIL) is not None  # the bad row comes later: not checked
    with pytest.raises(DataError, match="negative values"):
        load_store(tmp_path)


def test_the_same_rows_as_a_whole_read_cut_at_the_date(tmp_path):
    _write(tmp_path, ".parquet", ORDERS)
    whole = EventStore.from_folder(tmp_path)["orders"].filter(pl.col("ordered_at") <= UNTIL)
    assert EventStore.from_folder(tmp_path, until=UNTIL)["orders"].equals(whole)


def test_csv_files_are_read_whole(tmp_path):
    _write(tmp_path, ".csv", ORDERS)
    assert EventStore.from_folder(tmp_path, until=UNTIL)["orders"].height == 5


def test_a_file_of_later_events_only_is_an_empty_table_not_a_problem(tmp_path):
    _write(tmp_path, ".parquet", ORDERS.iloc[[2, 4]])
    store = EventStore.from_folder(tmp_path, until=UNTIL)
    assert store["orders"].height == 0 and store.load_problems == []
    assert store.time_span() == (datetime(2024, 4, 1), datetime(2024, 6, 30))
