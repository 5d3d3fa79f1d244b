"""The point-in-time rule: nothing after the cutoff changes a feature, bit for bit.

Appending events after the cutoff (with extreme values, in every table), changing the future end
of a spell that is open at the cutoff, or the future resolution of a ticket, must leave every
feature exactly as it was.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from churnrisk.features import build_features
from churnrisk.store import EventStore

T = pd.Timestamp
CUTOFF = T("2024-03-31")
IDS = [1, 2, 3, 4]


def _base() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 60

    def times(k: int) -> list[pd.Timestamp]:
        # spread over the year before the cutoff, some exactly on it
        days = rng.integers(0, 400, k)
        return [CUTOFF - pd.Timedelta(days=int(d)) for d in days]

    ids = lambda k: rng.choice(IDS, k).tolist()  # noqa: E731
    return {
        "customers": pd.DataFrame(
            {"customer_id": IDS, "signup_at": [T("2022-01-01")] * 4, "segment": ["a", "b", "a", "b"]}
        ),
        "orders": pd.DataFrame(
            {"customer_id": ids(n), "ordered_at": times(n), "amount": rng.gamma(2, 20, n)}
        ),
        "returns": pd.DataFrame(
            {
                "customer_id": ids(10),
                "returned_at": times(10),
                "amount": rng.gamma(2, 5, 10),
                "kind": rng.choice(["refund", "exchange"], 10),
            }  # fmt: skip
        ),
        "subscriptions": pd.DataFrame(
            {
                "customer_id": [1, 1, 2, 3],
                "started_at": [T("2023-01-01"), T("2024-01-01"), T("2023-05-01"), T("2023-02-01")],
                # 2's spell is open at the cutoff but has a (future) end date
                "ended_at": [T("2024-01-01"), None, T("2024-08-01"), T("2024-02-01")],
                "mrr": [50.0, 30.0, 20.0, 40.0],
                "plan": ["pro", "basic", "pro", "team"],
            }
        ),
        "tickets": pd.DataFrame(
            {
                "customer_id": [1, 2, 3, 4],
                "opened_at": [T("2024-03-01"), T("2024-03-20"), CUTOFF, T("2023-12-01")],
                "is_complaint": [True, False, True, True],
                # 2's ticket is resolved after the cutoff
                "resolved_at": [T("2024-03-02"), T("2024-04-10"), None, T("2023-12-05")],
            }
        ),
        "surveys": pd.DataFrame(
            {
                "customer_id": ids(20),
                "answered_at": times(20),
                "kind": rng.choice(["csat", "nps"], 20),
                "score": rng.integers(1, 6, 20).astype(float),
            }  # fmt: skip
        ),
        "payments": pd.DataFrame(
            {
                "customer_id": ids(30),
                "attempted_at": times(30),
                "status": rng.choice(["failed", "succeeded"], 30),
            }  # fmt: skip
        ),
        "activity": pd.DataFrame({"customer_id": ids(30), "occurred_at": times(30), "event": ["login"] * 30}),
    }


def _features(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return build_features(EventStore.from_frames(tables), CUTOFF, windows=(7, 30, 90, 365))


BASE = _base()


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _features(BASE)


later = st.builds(
    lambda us: CUTOFF + timedelta(microseconds=us),
    st.integers(min_value=1, max_value=10 * 365 * 86_400 * 10**6),
)
extreme = st.sampled_from([0.0, 1e-9, 1e12, 123.45])


def _event(table: str) -> st.SearchStrategy[dict]:
    customer = st.sampled_from(IDS)
    rows = {
        "orders": st.fixed_dictionaries({"customer_id": customer, "ordered_at": later, "amount": extreme}),
        "returns": st.fixed_dictionaries(
            {
                "customer_id": customer,
                "returned_at": later,
                "amount": extreme,
                "kind": st.sampled_from(["refund", "exchange"]),
            }  # fmt: skip
        ),
        "subscriptions": st.fixed_dictionaries(
            {
                "customer_id": customer,
                "started_at": later,
                "ended_at": st.none() | later,
                "mrr": extreme,
                "plan": st.sampled_from(["pro", "zzz"]),
            }  # fmt: skip
        ),
        "tickets": st.fixed_dictionaries(
            {
                "customer_id": customer,
                "opened_at": later,
                "is_complaint": st.booleans(),
                "resolved_at": st.none() | later,
            }  # fmt: skip
        ),
        "surveys": st.fixed_dictionaries(
            {
                "customer_id": customer,
                "answered_at": later,
                "kind": st.sampled_from(["csat", "nps"]),
                "score": st.sampled_from([0.0, 1.0, 5.0, 10.0]),
            }  # fmt: skip
        ),
        "payments": st.fixed_dictionaries(
            {
                "customer_id": customer,
                "attempted_at": later,
                "status": st.sampled_from(["failed", "succeeded"]),
            }
        ),
        "activity": st.fixed_dictionaries(
            {"customer_id": customer, "occurred_at": later, "event": st.just("login")}
        ),
        "customers": st.fixed_dictionaries(
            {"customer_id": st.integers(100, 200), "signup_at": later, "segment": st.just("new")}
        ),
    }
    return rows[table]


appended = st.lists(
    st.sampled_from(list(BASE)).flatmap(lambda table: st.tuples(st.just(table), _event(table))),
    min_size=1,
    max_size=12,
)


def _append(tables: dict[str, pd.DataFrame], events: list[tuple[str, dict]]) -> dict[str, pd.DataFrame]:
    out = dict(tables)
    for table, row in events:
        if table == "customers" and row["customer_id"] in set(out["customers"]["customer_id"]):
            continue
        out[table] = pd.concat([out[table], pd.DataFrame([row])], ignore_index=True)
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=appended)
def test_events_after_the_cutoff_change_nothing(reference, events):
    assert_frame_equal(_features(_append(BASE, events)), reference, check_exact=True)


@pytest.mark.parametrize("table", [t for t in BASE if t != "customers"])
def test_extreme_events_in_every_table_change_nothing(reference, table):
    # one event per customer, one microsecond after the cutoff, with the largest values
    rows = [
        {**_extreme_row(table), "customer_id": customer, _time(table): CUTOFF + pd.Timedelta(microseconds=1)}
        for customer in IDS
    ]
    changed = dict(BASE)
    changed[table] = pd.concat([BASE[table], pd.DataFrame(rows)], ignore_index=True)
    assert_frame_equal(_features(changed), reference, check_exact=True)


def _time(table: str) -> str:
    from churnrisk.contract import TABLES

    return TABLES[table].time  # type: ignore[return-value]


def _extreme_row(table: str) -> dict:
    return {
        "orders": {"amount": 1e15},
        "returns": {"amount": 1e15, "kind": "refund"},
        "subscriptions": {"ended_at": None, "mrr": 1e15, "plan": "zzz"},
        "tickets": {"is_complaint": True, "resolved_at": None},
        "surveys": {"kind": "csat", "score": 0.0},
        "payments": {"status": "failed"},
        "activity": {"event": "login"},
    }[table]


@pytest.mark.parametrize("ended_at", [None, T("2024-03-31 00:00:01"), T("2024-04-01"), T("2030-01-01")])
def test_future_end_of_an_open_spell_changes_nothing(reference, ended_at):
    changed = dict(BASE)
    subscriptions = BASE["subscriptions"].copy()
    subscriptions["ended_at"] = subscriptions["ended_at"].astype("datetime64[us]")
    subscriptions.loc[2, "ended_at"] = ended_at
    changed["subscriptions"] = subscriptions
    assert_frame_equal(_features(changed), reference, check_exact=True)


@pytest.mark.parametrize("resolved_at", [None, T("2024-03-31 00:00:01"), T("2025-01-01")])
def test_future_resolution_of_a_ticket_changes_nothing(reference, resolved_at):
    changed = dict(BASE)
    tickets = BASE["tickets"].copy()
    tickets["resolved_at"] = tickets["resolved_at"].astype("datetime64[us]")
    tickets.loc[[1, 2], "resolved_at"] = resolved_at
    changed["tickets"] = tickets
    assert_frame_equal(_features(changed), reference, check_exact=True)


def test_an_end_at_the_cutoff_is_known(reference):
    """The control: a spell ending at the cutoff is over at the cutoff, so features do change."""
    changed = dict(BASE)
    subscriptions = BASE["subscriptions"].copy()
    subscriptions.loc[2, "ended_at"] = CUTOFF
    changed["subscriptions"] = subscriptions
    out = _features(changed)
    assert out.loc[2, "subscription_mrr"] == 0.0
    assert reference.loc[2, "subscription_mrr"] == 20.0
