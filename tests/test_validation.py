"""Tests for churnrisk.validation: every check, reported all at once, with counts and examples."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnrisk.errors import ChurnriskError, DataError
from churnrisk.store import EventStore
from churnrisk.validation import check_overlapping_spells, load_store, validate

CUSTOMERS = pd.DataFrame({"customer_id": [1, 2, 3], "signup_at": ["2024-01-01", "2024-01-02", "2024-01-03"]})


def store_of(**tables: pd.DataFrame) -> EventStore:
    tables.setdefault("customers", CUSTOMERS)
    return EventStore.from_frames(tables)


def orders(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"customer_id": [1] * n, "ordered_at": ["2024-02-01"] * n, "amount": [1.0] * n}
    return pd.DataFrame(base | columns)


def found(report, severity: str = "error") -> dict[tuple[str, str | None], object]:
    items = report.errors if severity == "error" else report.warnings
    return {(p.table, p.column): p for p in items}


def test_clean_store_is_ok():
    report = validate(store_of(orders=orders(amount=[0.0, 5.0])))  # zero is a free item, not a problem
    assert report.ok and report.problems == []
    assert report.rows == {"customers": 3, "orders": 2}


def test_missing_tables():
    report = validate(
        EventStore.from_frames({"returns": pd.DataFrame({"customer_id": [1], "returned_at": ["2024-01-01"]})})
    )
    problems = found(report)
    assert "found tables: ['returns']" in problems["customers", None].message
    assert "no activity table" in problems["orders/subscriptions/activity", None].message


def test_missing_required_values_give_row_numbers():
    report = validate(store_of(orders=orders(amount=[1.0, None, 2.0, None])))
    [problem] = report.errors
    assert (problem.table, problem.column, problem.rows) == ("orders", "amount", 2)
    assert problem.examples == ("row 2", "row 4")


def test_negative_amounts_and_mrr():
    subscriptions = pd.DataFrame(
        {"customer_id": [1, 2], "started_at": ["2024-01-01", "2024-01-01"], "mrr": [-10.0, 0.0]}
    )
    report = validate(store_of(orders=orders(amount=[-1.0, 0.0, -1.0, -2.5]), subscriptions=subscriptions))
    problems = found(report)
    assert set(problems) == {("orders", "amount"), ("subscriptions", "mrr")}
    assert (problems["orders", "amount"].rows, problems["orders", "amount"].examples) == (3, (-1.0, -2.5))
    assert problems["subscriptions", "mrr"].rows == 1


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [("csat", [1, 5, 3], [0, 6]), ("nps", [0, 10, 7], [-1, 11]), ("ces", [1, 7], [0, 8, 7.5])],
)
def test_survey_scores_out_of_range_for_their_kind(kind, good, bad):
    scores = good + bad
    surveys = pd.DataFrame(
        {
            "customer_id": [1] * len(scores),
            "answered_at": ["2024-01-05"] * len(scores),
            "kind": [kind.upper()] * len(scores),
            "score": scores,
        }
    )
    report = validate(store_of(orders=orders(amount=[1.0]), surveys=surveys))
    [problem] = report.errors
    assert (problem.table, problem.column, problem.rows) == ("surveys", "score", len(bad))
    assert list(problem.examples) == [float(b) for b in bad]
    assert kind in problem.message


def test_nps_ten_is_fine_but_csat_ten_is_not():
    surveys = pd.DataFrame(
        {"customer_id": [1, 1], "answered_at": ["2024-01-05"] * 2, "kind": ["nps", "csat"], "score": [10, 10]}
    )
    [problem] = validate(store_of(orders=orders(amount=[1.0]), surveys=surveys)).errors
    assert "csat" in problem.message and problem.rows == 1


def test_unknown_status_and_kind_values():
    payments = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "attempted_at": ["2024-01-05"] * 3,
            "status": ["succeeded", "bounced", "FAILED"],
        }
    )
    surveys = pd.DataFrame({"customer_id": [1], "answered_at": ["2024-01-05"], "kind": ["ces"], "score": [3]})
    returns = pd.DataFrame({"customer_id": [1], "returned_at": ["2024-01-05"], "kind": ["store credit"]})
    report = validate(
        store_of(orders=orders(amount=[1.0]), payments=payments, surveys=surveys, returns=returns)
    )
    problems = found(report)
    assert set(problems) == {("payments", "status"), ("returns", "kind")}
    assert problems["payments", "status"].examples == ("bounced",)
    assert problems["returns", "kind"].examples == ("store credit",)


def test_category_spelling_blanks_and_unknown_values_together():
    surveys = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 1, 2],
            "answered_at": ["2024-01-05"] * 5,
            "kind": [" CSAT ", "bogus ", " ", None, "Nps"],
            "score": [5, 4, 3, 2, 9],
        }
    )
    store = store_of(orders=orders(amount=[1.0]), surveys=surveys)
    assert store["surveys"]["kind"].to_list() == ["csat", "bogus", None, None, "nps"]
    problems = validate(store).errors
    assert [(p.column, p.rows, p.examples) for p in problems] == [
        ("kind", 1, ("bogus ",)),
        ("kind", 2, ("row 3", "row 4")),
    ]


def test_unknown_customer_ids():
    report = validate(store_of(orders=orders(customer_id=[1, 7, 7, 8], amount=[1.0] * 4)))
    [problem] = report.errors
    assert (problem.table, problem.column, problem.rows, problem.examples) == (
        "orders",
        "customer_id",
        3,
        (7, 8),
    )


def test_events_after_as_of_in_every_time_column():
    subscriptions = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "started_at": ["2024-01-01", "2024-03-01"],
            "ended_at": ["2024-06-01", None],
            "mrr": [1, 1],
        }
    )
    store = store_of(
        orders=orders(ordered_at=["2024-01-31", "2024-02-01 00:00:01", "2024-02-01"]),
        subscriptions=subscriptions,
    )
    problems = found(validate(store, as_of="2024-02-01"))
    assert set(problems) == {
        ("orders", "ordered_at"),
        ("subscriptions", "started_at"),
        ("subscriptions", "ended_at"),
    }
    assert problems["orders", "ordered_at"].rows == 1  # an event at the as-of moment itself is fine
    assert validate(store).ok  # no as-of, no check


def test_aware_as_of_is_compared_in_utc():
    store = store_of(orders=orders(ordered_at=["2024-02-01 10:30"]))
    cet = timezone(timedelta(hours=1))
    assert validate(store, as_of=datetime(2024, 2, 1, 11, 30, tzinfo=cet)).ok  # 10:30 UTC
    assert not validate(store, as_of=datetime(2024, 2, 1, 11, 29, tzinfo=cet)).ok


def test_bad_as_of_is_a_clear_error():
    with pytest.raises(ChurnriskError, match="'as_of' parameter of validate must be a date. Got 'soon'"):
        validate(store_of(orders=orders(amount=[1.0])), as_of="soon")


@pytest.mark.parametrize(
    ("table", "key", "frame"),
    [
        ("orders", "order_id", orders(order_id=["a", "b", "a", None, None])),
        (
            "tickets",
            "ticket_id",
            pd.DataFrame(
                {
                    "customer_id": [1] * 5,
                    "opened_at": ["2024-01-01"] * 5,
                    "ticket_id": ["a", "b", "a", None, None],
                }
            ),
        ),
        (
            "payments",
            "payment_id",
            pd.DataFrame(
                {
                    "customer_id": [1] * 5,
                    "attempted_at": ["2024-01-01"] * 5,
                    "status": ["failed"] * 5,
                    "payment_id": ["a", "b", "a", None, None],
                }
            ),
        ),
        (
            "subscriptions",
            "subscription_id",
            pd.DataFrame(
                {
                    "customer_id": [1, 2, 3, 1, 2],
                    "started_at": ["2024-01-01", "2024-01-01", "2024-01-01", "2024-03-01", "2024-03-01"],
                    "mrr": [1] * 5,
                    "ended_at": ["2024-02-01", "2024-02-01", None, None, None],
                    "subscription_id": ["a", "b", "a", None, None],
                }
            ),
        ),
    ],
)
def test_repeated_ids(table, key, frame):
    report = validate(
        store_of(**{table: frame}, orders=orders(amount=[1.0]))
        if table != "orders"
        else store_of(orders=frame)
    )
    problems = found(report)
    assert set(problems) == {(table, key)}
    assert (problems[table, key].rows, problems[table, key].examples) == (2, ("a",))
    assert "repeated id" in problems[table, key].message


def test_repeated_customer_ids():
    customers = pd.DataFrame({"customer_id": [1, 2, 2, 3, 3, 3]})
    [problem] = validate(store_of(customers=customers, orders=orders(amount=[1.0]))).errors
    assert (problem.table, problem.column, problem.rows, problem.examples) == (
        "customers",
        "customer_id",
        5,
        (2, 3),
    )


def test_exact_repeats_without_an_id_are_a_warning_only():
    frame = orders(amount=[5.0, 5.0, 6.0, 5.0], category=["a", "a", "a", "b"])
    report = validate(store_of(orders=frame))
    assert report.ok
    [warning] = report.warnings
    assert (warning.table, warning.rows, warning.severity) == ("orders", 2, "warning")


def test_ended_before_started_and_resolved_before_opened():
    subscriptions = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "started_at": ["2024-03-01", "2024-03-01"],
            "ended_at": ["2024-02-01", "2024-03-01"],
            "mrr": [1, 1],
        }
    )
    tickets = pd.DataFrame(
        {"customer_id": [1], "opened_at": ["2024-03-01 10:00"], "resolved_at": ["2024-03-01 09:00"]}
    )
    problems = found(validate(store_of(subscriptions=subscriptions, tickets=tickets)))
    assert set(problems) == {("subscriptions", "ended_at"), ("tickets", "resolved_at")}
    assert problems["subscriptions", "ended_at"].rows == 1
    assert "earlier than started_at" in problems["subscriptions", "ended_at"].message


def test_overlapping_spells_but_touching_is_fine():
    subscriptions = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 3, 3, 3],
            "started_at": [
                "2024-01-01",
                "2024-02-01",
                "2024-01-01",
                "2024-02-01",
                "2024-01-01",
                "2024-02-01",
                "2024-05-01",
            ],
            "ended_at": ["2024-02-01", None, "2024-03-01", "2024-04-01", None, "2024-03-01", None],
            "mrr": [1] * 7,
        }
    )
    # 1 touches (plan change); 2 overlaps by a month; 3 keeps an open spell while two more start.
    [problem] = validate(store_of(subscriptions=subscriptions)).errors
    assert (problem.table, problem.column, problem.rows, problem.examples) == (
        "subscriptions",
        "customer_id",
        3,
        (2, 3),
    )


spell = st.tuples(st.integers(0, 3), st.integers(0, 30), st.one_of(st.none(), st.integers(0, 30)))


@settings(max_examples=50, deadline=None)
@given(st.lists(spell, min_size=1, max_size=12))
def test_overlap_check_agrees_with_pairwise_comparison(spells):
    day = datetime(2024, 1, 1)
    rows = [(c, s, None if length is None else s + length) for c, s, length in spells]
    frame = pd.DataFrame(
        {
            "customer_id": [c for c, _, _ in rows],
            "started_at": [day + timedelta(days=s) for _, s, _ in rows],
            "ended_at": pd.Series(
                [None if e is None else day + timedelta(days=e) for _, _, e in rows], dtype="datetime64[us]"
            ),
            "mrr": 1.0,
        }
    )
    customers = pd.DataFrame({"customer_id": range(4)})

    def overlaps(a, b):  # [start, end) intervals; an open spell never ends
        end_a, end_b = (x[2] if x[2] is not None else 10**9 for x in (a, b))
        return a[1] < end_b and b[1] < end_a

    expected = {a[0] for i, a in enumerate(rows) for b in rows[i + 1 :] if a[0] == b[0] and overlaps(a, b)}
    problems = check_overlapping_spells(store_of(customers=customers, subscriptions=frame), None)
    flagged = {e for p in problems for e in p.examples}
    assert flagged == expected


def test_all_problems_in_one_run():
    frame = orders(customer_id=[1, 9], amount=[-1.0, None], order_id=["x", "x"])
    surveys = pd.DataFrame(
        {"customer_id": [1], "answered_at": ["2024-01-05"], "kind": ["csat"], "score": [9]}
    )
    report = validate(store_of(orders=frame, surveys=surveys), as_of="2024-01-31")
    assert set(found(report)) == {
        ("orders", "amount"),  # negative, and missing
        ("orders", "customer_id"),
        ("orders", "order_id"),
        ("orders", "ordered_at"),
        ("surveys", "score"),
    }
    assert len(report.errors) == 6


def test_load_store_raises_with_every_problem(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id\n1\n")
    (tmp_path / "orders.csv").write_text("customer_id,ordered_at,amount\n1,2024-01-01,-3\n2,2024-01-02,x\n")
    with pytest.raises(DataError) as info:
        load_store(tmp_path)
    messages = [str(p) for p in info.value.errors]
    assert len(messages) == 3
    assert any("orders.amount: values that are not numbers (1 row); e.g. 'x'" in m for m in messages)
    assert any("orders.amount: negative values" in m for m in messages)
    assert any("orders.customer_id: customer ids that are not in the customers table" in m for m in messages)


def test_load_store_passes_warnings_and_takes_a_store_or_a_config(tmp_path):
    (tmp_path / "clients.csv").write_text("id\n1\n")
    (tmp_path / "orders.csv").write_text("customer_id,ordered_at,amount\n1,2024-01-01,3\n1,2024-01-01,3\n")
    (tmp_path / "map.toml").write_text(
        '[tables.customers]\nfile = "clients.csv"\ncolumns = {customer_id = "id"}\n'
    )
    store = load_store(tmp_path, config=tmp_path / "map.toml", as_of="2024-12-31")
    assert store["orders"].height == 2
    assert load_store(store) is store


def test_report_to_dict():
    report = validate(store_of(orders=orders(amount=[-1.0])))
    data = report.to_dict()
    assert data["ok"] is False and data["tables"] == {"customers": 3, "orders": 1}
    assert data["errors"] == [
        {
            "severity": "error",
            "table": "orders",
            "column": "amount",
            "message": "negative values",
            "rows": 1,
            "examples": [-1.0],
            "suggestion": None,
        }
    ]
    assert data["warnings"] == []


def test_missing_customers_lists_the_files_found(tmp_path):
    (tmp_path / "clients.csv").write_text("customer_id\n1\n")
    (tmp_path / "orders.csv").write_text("customer_id,ordered_at,amount\n1,2024-01-01,3\n")
    [problem] = validate(EventStore.from_folder(tmp_path)).errors
    assert problem.table == "customers"
    assert "found tables: ['orders']" in problem.message
    assert "['clients.csv', 'orders.csv']" in problem.message


@pytest.mark.parametrize("module", ["churnrisk.store", "churnrisk.validation", "churnrisk._io"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


# ------------------------------------------------ fast paths give the same answers as the slow ones
row = st.tuples(
    st.integers(1, 3), st.integers(0, 4), st.sampled_from([1.0, 2.0]), st.sampled_from(["a", "b"])
)


@settings(max_examples=60, deadline=None)
@given(st.lists(row, min_size=1, max_size=30), st.sampled_from(["time", "customer_time", "shuffled"]))
def test_exact_repeats_are_found_however_the_table_is_ordered(rows, order):
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "amount", "category"])
    frame["ordered_at"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame.pop("day"), unit="D")
    if order != "shuffled":  # sorted tables take the neighbour path, the rest the hash path
        frame = frame.sort_values(["ordered_at"] if order == "time" else ["customer_id", "ordered_at"])
    frame = frame.reset_index(drop=True)
    repeats = frame.duplicated(keep=False)  # pandas as the independent oracle
    warnings = validate(store_of(orders=frame)).warnings
    if not repeats.any():
        assert warnings == []
    else:
        [warning] = warnings
        assert warning.rows == int(repeats.sum())
        assert warning.examples == tuple(frame.loc[repeats, "customer_id"].drop_duplicates())[:5]


@pytest.mark.parametrize(
    "ids", [["a", "a", "b", "c", "c", "c"], ["c", "c", "c", "b", "a", "a"], ["a", "c", "b", "c", "a", "c"]]
)
def test_repeated_ids_whether_sorted_or_not(ids):
    frame = orders(order_id=ids, amount=[1.0] * 6)
    [problem] = validate(store_of(orders=frame)).errors
    assert (problem.column, problem.rows) == ("order_id", 5)
    assert set(problem.examples) == {"a", "c"}


def test_sorted_table_with_ties_but_no_repeats_is_clean():
    frame = orders(
        customer_id=[1, 2, 1, 1],
        ordered_at=["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-02"],
        amount=[1.0, 1.0, 2.0, 1.0],
    )
    assert validate(store_of(orders=frame)).problems == []


@pytest.mark.parametrize(
    ("known", "used", "unknown"),
    [
        ([1, 2, 3], [0, 1, 3, 4], (0, 4)),  # an unbroken range of ids: checked by its ends
        ([1, 2, 4], [1, 3, 4], (3,)),  # a gap: checked one by one
        ([3, 2, 1], [2, 5], (5,)),  # not in order
        ([1, 1, 3], [2, 3], (2,)),  # as many ids as the range is long, but not the range
        ([1, 2, 3], [1, 2, 3, 3], ()),
    ],
)
def test_unknown_customer_ids_with_and_without_a_range_of_ids(known, used, unknown):
    customers = pd.DataFrame({"customer_id": known})
    frame = orders(customer_id=used, amount=[1.0] * len(used))
    report = validate(store_of(customers=customers, orders=frame))
    problems = [p for p in report.errors if p.table == "orders"]
    assert tuple(e for p in problems for e in p.examples) == unknown


def test_infinite_numbers_are_errors_once():
    subscriptions = pd.DataFrame(
        {"customer_id": [1, 2], "started_at": ["2024-01-01", "2024-01-01"], "mrr": [np.inf, 10.0]}
    )
    surveys = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "answered_at": ["2024-01-01"] * 2,
            "kind": ["csat"] * 2,
            "score": [np.inf, 4.0],
        }
    )
    frame = orders(customer_id=[1, 2, 3], amount=[np.inf, -np.inf, -1.0])
    report = validate(store_of(orders=frame, subscriptions=subscriptions, surveys=surveys))
    problems = {(p.table, p.column, p.message): (p.rows, p.examples) for p in report.errors}
    assert problems == {
        ("orders", "amount", "infinite values"): (2, (np.inf, -np.inf)),
        ("orders", "amount", "negative values"): (1, (-1.0,)),  # -inf is said once, as infinite
        ("subscriptions", "mrr", "infinite values"): (1, (np.inf,)),
        ("surveys", "score", "infinite values"): (1, (np.inf,)),  # not again as out of range
    }


def test_infinite_text_in_a_csv_is_an_error(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id\n1\n")
    (tmp_path / "orders.csv").write_text("customer_id,ordered_at,amount\n1,2024-01-01,inf\n1,2024-01-02,3\n")
    with pytest.raises(DataError, match=r"orders.amount: infinite values \(1 row\); e.g. inf"):
        load_store(tmp_path)


def test_negative_values_next_to_missing_ones():
    frame = orders(customer_id=[1, 2, 3], amount=[None, -1.0, 2.0], quantity=[None, 1.0, -2.0])
    problems = {(p.column, p.message): (p.rows, p.examples) for p in validate(store_of(orders=frame)).errors}
    assert problems == {
        ("amount", "missing values in a required column"): (1, ("row 1",)),
        ("amount", "negative values"): (1, (-1.0,)),
        ("quantity", "negative values"): (1, (-2.0,)),
    }


spell_any = st.tuples(st.integers(0, 2), st.integers(0, 20), st.one_of(st.none(), st.integers(-5, 20)))


@settings(max_examples=80, deadline=None)
@given(st.lists(spell_any, min_size=1, max_size=10))
def test_overlap_shortcut_agrees_with_the_latest_earlier_end(spells):
    """Also with spells that end before they start (reported elsewhere, but not to break this)."""
    import polars as pl

    from churnrisk.validation import _starts_before_earlier_end

    day = datetime(2024, 1, 1)
    rows = sorted(
        (c, day + timedelta(days=s), datetime.max if n is None else day + timedelta(days=s + n))
        for c, s, n in spells
    )
    frame = pl.DataFrame(rows, schema=["customer_id", "started_at", "ended_at"], orient="row").cast(
        {"started_at": pl.Datetime("us"), "ended_at": pl.Datetime("us")}
    )
    expected = [any(e > start for c0, _, e in rows[:i] if c0 == c) for i, (c, start, _) in enumerate(rows)]
    assert _starts_before_earlier_end(frame).to_list() == expected
