"""Property tests: churn_rates against a brute-force reference, and invariants that must hold."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnrisk.rates import churn_rates
from churnrisk.store import EventStore

BASE = datetime(2023, 12, 20)
BOUNDS = [datetime(2024, m, 1) for m in range(1, 7)]  # January to May 2024: five periods
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# one customer: blocks of touching rows (a plan change is a new row), blocks apart by a pause
row_st = st.tuples(st.integers(1, 45), st.sampled_from([0.0, 10.0, 20.0, 35.0]))
block_st = st.tuples(st.integers(0, 40), st.lists(row_st, min_size=1, max_size=3))
customer_st = st.tuples(st.lists(block_st, min_size=1, max_size=3), st.booleans())


def _rows(customers):
    rows = []
    for cid, (blocks, last_open) in enumerate(customers, start=1):
        t = BASE
        for pause, pieces in blocks:
            t += timedelta(days=pause, hours=12 * (pause % 2))
            for length, mrr in pieces:
                rows.append([cid, t, t + timedelta(days=length), mrr])
                t += timedelta(days=length)
            t += timedelta(days=1)  # blocks never touch
        if last_open:
            rows[-1][2] = None
    return pd.DataFrame(rows, columns=["customer_id", "started_at", "ended_at", "mrr"])


subs_st = st.lists(customer_st, min_size=1, max_size=6).map(_rows)


def _rates(subs, **options):
    customers = pd.DataFrame({"customer_id": sorted(subs["customer_id"].unique())})
    store = EventStore.from_frames({"customers": customers, "subscriptions": subs})
    return churn_rates(store, period="month", start=BOUNDS[0], end=BOUNDS[-1], **options)


# ---------------------------------------------------------------------- brute-force reference
def _spells(subs, gap):
    spells = {}
    for cid, rows in subs.sort_values("started_at").groupby("customer_id"):
        merged = []
        for start, end in zip(rows["started_at"], rows["ended_at"], strict=True):
            end = None if pd.isna(end) else end
            last = merged[-1] if merged else None
            if last and last[1] is not None and (start <= last[1] or start - last[1] < gap):
                last[1] = end
            else:
                merged.append([start, end])
        spells[cid] = merged
    return spells


def _active(spells, t):
    return any(s <= t and (e is None or t < e) for s, e in spells)


def _mrr(rows, spells, t):
    if not _active(spells, t):
        return 0.0
    running = rows[(rows["started_at"] <= t) & (rows["ended_at"].isna() | (rows["ended_at"] > t))]
    if len(running):
        return float(running["mrr"].sum())
    return float(rows[rows["started_at"] <= t].sort_values("started_at")["mrr"].iloc[-1])  # bridged pause


def _reference(subs, gap_days=0.0):
    spells = _spells(subs, timedelta(days=gap_days))
    out = []
    for b0, b1 in zip(BOUNDS[:-1], BOUNDS[1:], strict=True):
        row = dict.fromkeys(["start", "end", "lost", "new", "react", "churned", "days"], 0)
        row |= dict.fromkeys(["mrr_start", "churn", "contr", "exp", "mrr_new", "mrr_react"], 0.0)
        for cid, sp in spells.items():
            rows = subs[subs["customer_id"] == cid]
            at0, at1 = _active(sp, b0), _active(sp, b1)
            new = b0 < sp[0][0] <= b1
            row["start"] += at0
            row["end"] += at1
            row["lost"] += at0 and not at1
            row["new"] += new
            row["react"] += not new and any(b0 < s <= b1 for s, _ in sp[1:])
            row["churned"] += any(e is not None and b0 < e <= b1 for _, e in sp) and not at1
            for s, e in sp:
                lo, hi = max(s, b0), min(e or b1, b1)
                row["days"] += max((hi - lo).total_seconds(), 0) / 86400
            m0, m1 = _mrr(rows, sp, b0), _mrr(rows, sp, b1)
            row["mrr_start"] += m0
            if at0 and not at1:
                row["churn"] += m0
            elif at0 and at1:
                row["contr"] += max(m0 - m1, 0)
                row["exp"] += max(m1 - m0, 0)
            elif at1:
                row["mrr_new" if new else "mrr_react"] += m1
        out.append(row)
    return pd.DataFrame(out)


COMPARED = {
    "customers_start": "start",
    "customers_end": "end",
    "customers_lost": "lost",
    "customers_new": "new",
    "customers_reactivated": "react",
    "churned_in_period": "churned",
    "customer_days": "days",
    "mrr_start": "mrr_start",
    "mrr_churned": "churn",
    "mrr_contraction": "contr",
    "mrr_expansion": "exp",
    "mrr_new": "mrr_new",
    "mrr_reactivated": "mrr_react",
}


@SETTINGS
@given(subs=subs_st, gap=st.sampled_from([0.0, 1.0, 10.0]))
def test_matches_brute_force_reference(subs, gap):
    table = _rates(subs, reactivation_gap_days=gap)
    reference = _reference(subs, gap)
    for column, ref in COMPARED.items():
        assert table[column].tolist() == pytest.approx(reference[ref].tolist()), column


@SETTINGS
@given(subs=subs_st)
def test_rates_that_are_shares_lie_in_0_1(subs):
    table = _rates(subs)
    for column in (
        "lost_churn_rate",
        "annualised_churn_rate",
        "gross_revenue_churn",
        "gross_revenue_retention",
    ):
        values = table[column].dropna()
        assert values.between(0, 1).all(), column
    assert (table["customers_lost"] <= table["customers_start"]).all()
    assert (table["customers_lost"] <= table["churned_in_period"]).all()
    movement = (
        table["mrr_start"]
        - table["mrr_churned"]
        - table["mrr_contraction"]
        + table["mrr_expansion"]
        + table["mrr_new"]
        + table["mrr_reactivated"]
    )
    assert movement.tolist() == pytest.approx(table["mrr_end"].tolist())
    assert table["mrr_end"].iloc[:-1].tolist() == pytest.approx(table["mrr_start"].iloc[1:].tolist())


@SETTINGS
@given(subs=subs_st, seed=st.integers(0, 2**16))
def test_row_order_does_not_matter(subs, seed):
    shuffled = subs.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    pd.testing.assert_frame_equal(_rates(shuffled), _rates(subs))


@SETTINGS
@given(subs=subs_st, which=st.integers(0, 100), cut=st.floats(0.05, 0.95))
def test_splitting_a_row_into_touching_pieces_changes_nothing(subs, which, cut):
    i = which % len(subs)
    row = subs.iloc[i]
    end = row["ended_at"] if pd.notna(row["ended_at"]) else row["started_at"] + timedelta(days=30)
    middle = row["started_at"] + (end - row["started_at"]) * cut
    first = row.copy()
    first["ended_at"] = middle
    second = row.copy()
    second["started_at"] = middle
    split = pd.concat(
        [subs.drop(index=subs.index[i]), first.to_frame().T, second.to_frame().T], ignore_index=True
    )
    split = split.astype(subs.dtypes.to_dict())
    pd.testing.assert_frame_equal(_rates(split), _rates(subs))


# ---------------------------------------------------------------------- order data
order_st = st.lists(
    st.tuples(st.integers(1, 5), st.integers(0, 200), st.sampled_from([0, 6, 12]), st.integers(1, 50)),
    min_size=1,
    max_size=25,
)


def _orders(raw):
    rows = [(cid, BASE + timedelta(days=day, hours=hours), float(amount)) for cid, day, hours, amount in raw]
    return pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount"])


def _order_reference(orders, window_days):
    window = timedelta(days=window_days)
    out = []
    for k, (b0, b1) in enumerate(zip(BOUNDS[:-1], BOUNDS[1:], strict=True)):
        before = BOUNDS[k - 1] if k else datetime(2023, 12, 1)
        row = dict.fromkeys(["start", "end", "lost", "new", "react", "churned"], 0)
        row |= {"previous": 0.0, "existing": 0.0}
        for _, group in orders.groupby("customer_id"):
            times = sorted(group["ordered_at"])
            starts = [t for i, t in enumerate(times) if i == 0 or t - times[i - 1] > window]
            ends = [
                t + window for i, t in enumerate(times) if i + 1 == len(times) or times[i + 1] - t > window
            ]
            at0 = any(b0 - window < t <= b0 for t in times)
            at1 = any(b1 - window < t <= b1 for t in times)
            row["start"] += at0
            row["end"] += at1
            row["lost"] += at0 and not at1
            row["new"] += b0 < starts[0] <= b1
            row["react"] += not b0 < starts[0] <= b1 and any(b0 < s <= b1 for s in starts[1:])
            row["churned"] += any(b0 < e <= b1 for e in ends) and not at1
            if at0:
                amounts = group.set_index("ordered_at")["amount"]
                row["previous"] += amounts[(amounts.index > before) & (amounts.index <= b0)].sum()
                row["existing"] += amounts[(amounts.index > b0) & (amounts.index <= b1)].sum()
        out.append(row)
    return pd.DataFrame(out)


ORDER_COMPARED = {
    "customers_start": "start",
    "customers_end": "end",
    "customers_lost": "lost",
    "customers_new": "new",
    "customers_reactivated": "react",
    "churned_in_period": "churned",
    "revenue_existing": "existing",
}


@SETTINGS
@given(raw=order_st, window=st.sampled_from([10, 30, 45]))
def test_order_data_matches_brute_force_reference(raw, window):
    orders = _orders(raw)
    customers = pd.DataFrame({"customer_id": sorted(orders["customer_id"].unique())})
    store = EventStore.from_frames({"customers": customers, "orders": orders})
    table = churn_rates(store, period="month", start=BOUNDS[0], end=BOUNDS[-1], lookback=window)
    reference = _order_reference(orders, window)
    for column, ref in ORDER_COMPARED.items():
        assert table[column].tolist() == pytest.approx(reference[ref].tolist()), column
    # revenue_previous: the calendar month before (January's previous period is December)
    assert table["revenue_previous"].iloc[1:].tolist() == pytest.approx(
        reference["previous"].iloc[1:].tolist()
    )
