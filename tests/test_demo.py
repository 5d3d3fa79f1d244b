"""Tests for the synthetic demo business: contract, validation, churn levels, causes, CLI.

Levels and signals are measured here independently of the generator, with plain pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from churnrisk.cli import app
from churnrisk.contract import TABLES
from churnrisk.demo import CAUSES, demo_store, make_demo_data, write_demo_data
from churnrisk.errors import ChurnriskError
from churnrisk.store import EventStore
from churnrisk.validation import validate

START, END = pd.Timestamp("2023-01-01"), pd.Timestamp("2024-12-31")
DAY = pd.Timedelta(days=1)
EVENT_TIMES = {name: spec.time for name, spec in TABLES.items() if spec.time}


@pytest.fixture(scope="module")
def large():
    """Enough customers for the statistical checks to be stable (takes well under a second)."""
    return make_demo_data(20_000, seed=7)


def _churners(tables, cause=None):
    truth = tables["ground_truth"]
    rows = truth[truth["churned"] & (truth["cause"] == cause if cause else truth["churned"])]
    return rows[["customer_id", "customer_type", "churned_at", "cause", "churn_type"]]


# ---------------------------------------------------------------------- contract and validation
def test_tables_follow_the_contract(demo_tables):
    assert set(demo_tables) == set(TABLES) | {"ground_truth"}
    for name, spec in TABLES.items():
        contract = {column.name for column in spec.columns}
        columns = set(demo_tables[name].columns)
        assert set(spec.required) <= columns
        if name != "customers":  # customers carries attribute columns on top
            assert columns == contract, name
    assert {"segment", "country", "channel", "plan", "category"} <= set(demo_tables["customers"].columns)
    assert list(demo_tables["ground_truth"].columns) == [
        "customer_id",
        "customer_type",
        "churned",
        "churned_at",
        "cause",
        "churn_type",
    ]


def test_demo_data_passes_validation_as_of_the_end(demo_store):
    report = validate(demo_store, as_of=END.to_pydatetime())
    assert report.errors == []
    assert report.ok


def test_every_event_is_inside_the_window(demo_tables):
    for name, column in EVENT_TIMES.items():
        times = demo_tables[name][column]
        assert times.min() >= START, name
        assert times.max() < END, name
    signup = demo_tables["customers"]["signup_at"]
    assert signup.between(START, END, inclusive="left").all()


def test_ids_are_unique_and_amounts_and_scores_in_range(demo_tables):
    for name, column in [("orders", "order_id"), ("tickets", "ticket_id"), ("payments", "payment_id")]:
        assert demo_tables[name][column].is_unique, name
    assert demo_tables["subscriptions"]["subscription_id"].is_unique
    for name in ("orders", "returns", "payments"):
        assert (demo_tables[name]["amount"] >= 0).all()
    surveys = demo_tables["surveys"]
    csat = surveys.loc[surveys["kind"] == "csat", "score"]
    nps = surveys.loc[surveys["kind"] == "nps", "score"]
    assert csat.between(1, 5).all() and nps.between(0, 10).all()
    assert set(csat.unique()) == {1, 2, 3, 4, 5}
    assert nps.min() <= 2 and nps.max() == 10 and nps.nunique() >= 9


def test_spells_touch_and_never_overlap(demo_tables):
    spells = demo_tables["subscriptions"].sort_values(["customer_id", "started_at"])
    previous_end = spells.groupby("customer_id")["ended_at"].shift(1)
    later = previous_end.notna() | spells.duplicated("customer_id")
    # a plan change starts exactly where the previous spell ended
    assert (spells.loc[later, "started_at"] == previous_end[later]).all()
    assert later.any()


def test_signup_is_the_first_spell_or_the_first_order(demo_tables):
    signup = demo_tables["customers"].set_index("customer_id")["signup_at"]
    first_spell = demo_tables["subscriptions"].groupby("customer_id")["started_at"].min()
    first_order = demo_tables["orders"].groupby("customer_id")["ordered_at"].min()
    assert (signup[first_spell.index] == first_spell).all()
    assert (signup[first_order.index] == first_order).all()
    assert len(first_spell) + len(first_order) == len(signup)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 150), seed=st.integers(0, 2**32 - 1), days=st.integers(90, 1500))
def test_any_size_seed_and_window_validates(n, seed, days):
    end = START + days * DAY
    tables = make_demo_data(n, seed=seed, start=START, end=end)
    store = EventStore.from_frames({name: frame for name, frame in tables.items() if name in TABLES})
    report = validate(store, as_of=end.to_pydatetime())
    assert report.errors == []
    assert len(tables["customers"]) == len(tables["ground_truth"]) == n
    assert (tables["ground_truth"]["churned_at"].dropna() < end).all()


# ---------------------------------------------------------------------- determinism and arguments
def test_same_seed_gives_identical_frames():
    first, second = make_demo_data(300, seed=3), make_demo_data(300, seed=3)
    assert first.keys() == second.keys()
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name])


def test_another_seed_gives_other_data():
    first, second = make_demo_data(300, seed=3), make_demo_data(300, seed=4)
    assert not first["orders"].equals(second["orders"])


def test_window_is_respected_for_other_dates():
    tables = make_demo_data(300, seed=1, start="2020-06-01", end="2021-06-01")
    assert tables["customers"]["signup_at"].min() >= pd.Timestamp("2020-06-01")
    assert tables["activity"]["occurred_at"].max() < pd.Timestamp("2021-06-01")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_customers": 0}, "n_customers"),
        ({"n_customers": 2.5}, "n_customers"),
        ({"start": "2024-01-01", "end": "2023-01-01"}, "at least 90 days"),
        ({"start": "not a date"}, "cannot read the dates"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ChurnriskError, match=message):
        make_demo_data(**{"n_customers": 100, **kwargs})


def test_demo_store_is_an_event_store():
    store = demo_store(200, seed=2)
    assert isinstance(store, EventStore)
    assert set(store.tables) == set(TABLES)
    assert store["customers"].height == 200


# ---------------------------------------------------------------------- realistic levels
def _monthly_subscription_churn(tables) -> pd.Series:
    """Lost subscribers in a month / subscribers active at its start, spells merged per customer."""
    spells = tables["subscriptions"]
    by_customer = spells.groupby("customer_id")
    per_customer = pd.DataFrame(
        {
            "first": by_customer["started_at"].min(),
            "open": spells["ended_at"].isna().groupby(spells["customer_id"]).any(),
            "last": by_customer["ended_at"].max(),
        }
    )
    left_at = per_customer["last"].where(~per_customer["open"])
    rates = {}
    for month in pd.date_range("2023-07-01", "2024-11-01", freq="MS"):
        following = month + pd.offsets.MonthBegin(1)
        active = (per_customer["first"] <= month) & (left_at.isna() | (left_at > month))
        lost = active & (left_at < following)
        rates[month] = lost.sum() / active.sum()
    return pd.Series(rates)


def _one_year_non_repeat(tables) -> pd.Series:
    """Per buyer whose first order is at least a year before the end: no second order within 365 days."""
    orders = tables["orders"]
    first = orders.groupby("customer_id")["ordered_at"].min()
    eligible = first[first <= END - 365 * DAY]
    joined = orders.join(first.rename("first"), on="customer_id")
    again = joined[
        (joined["ordered_at"] > joined["first"]) & (joined["ordered_at"] <= joined["first"] + 365 * DAY)
    ]
    return pd.Series(~eligible.index.isin(again["customer_id"]), index=eligible.index)


def test_monthly_subscription_churn_is_a_few_percent(large):
    rates = _monthly_subscription_churn(large)
    assert 0.02 <= rates.mean() <= 0.05
    assert rates.between(0.01, 0.07).all()


def test_one_year_non_repeat_rate_of_buyers(large):
    non_repeat = _one_year_non_repeat(large)
    assert len(non_repeat) > 3000
    assert 0.60 <= non_repeat.mean() <= 0.80


def test_non_repeat_follows_the_category_benchmarks(large):
    non_repeat = _one_year_non_repeat(large)
    category = large["customers"].set_index("customer_id")["category"].reindex(non_repeat.index)
    by_category = non_repeat.groupby(category).mean()
    # the seed's extremes: beauty & fitness 62 %, consumer electronics 82 %
    assert by_category["beauty & fitness"] < by_category["consumer electronics"] - 0.08
    assert by_category.between(0.5, 0.9).all()


def test_attributes_carry_their_documented_risk(large):
    truth = large["ground_truth"].merge(large["customers"], on="customer_id")
    by_channel = truth.groupby("channel")["churned"].mean()
    assert by_channel["paid_search"] > by_channel["referral"] + 0.05  # ATTRIBUTE_RISK: 1.3 vs 0.7
    by_segment = truth.groupby("segment")["churned"].mean()
    assert by_segment["smb"] > by_segment["enterprise"] + 0.05  # 1.0 vs 0.6


# ---------------------------------------------------------------------- ground truth
def test_every_cause_appears_with_its_churn_type(demo_tables):
    truth = demo_tables["ground_truth"]
    churned = truth[truth["churned"]]
    assert set(churned["cause"]) == set(CAUSES)
    assert churned["churned_at"].notna().all()
    expected_type = churned["cause"].map({name: cause.churn_type for name, cause in CAUSES.items()})
    assert (churned["churn_type"] == expected_type).all()
    stayed = truth[~truth["churned"]]
    assert stayed[["churned_at", "cause", "churn_type"]].isna().all().all()
    assert set(truth["customer_type"]) == {"subscriber", "buyer"}
    buyers = truth.loc[truth["customer_type"] == "buyer", "customer_id"]
    subscribers = truth.loc[truth["customer_type"] == "subscriber", "customer_id"]
    assert set(demo_tables["orders"]["customer_id"]) == set(buyers)  # every buyer has a first order
    assert set(demo_tables["subscriptions"]["customer_id"]) == set(subscribers)


def test_churned_subscribers_have_no_spell_or_event_after_churn(demo_tables):
    churners = _churners(demo_tables).query("customer_type == 'subscriber'").set_index("customer_id")
    spells = demo_tables["subscriptions"]
    last = pd.DataFrame(
        {
            "last_end": spells.groupby("customer_id")["ended_at"].max(),
            "open": spells["ended_at"].isna().groupby(spells["customer_id"]).any(),
        }
    )
    assert not last.loc[churners.index, "open"].any()
    assert (last.loc[churners.index, "last_end"] == churners["churned_at"]).all()
    stayed = last.index.difference(churners.index)
    assert last.loc[stayed, "open"].all()
    for name in ("subscriptions", "payments", "activity", "tickets", "surveys"):
        events = demo_tables[name].join(churners["churned_at"], on="customer_id", how="inner")
        assert (events[EVENT_TIMES[name]] <= events["churned_at"]).all(), name


def test_churned_buyers_stop_ordering(demo_tables):
    churners = _churners(demo_tables).query("customer_type == 'buyer'").set_index("customer_id")
    for name in ("orders", "returns", "tickets", "surveys"):
        events = demo_tables[name].join(churners["churned_at"], on="customer_id", how="inner")
        assert (events[EVENT_TIMES[name]] <= events["churned_at"]).all(), name


def test_involuntary_churners_end_on_unrecovered_failed_payments(demo_tables):
    churners = _churners(demo_tables, "failed_payments").set_index("customer_id")
    assert len(churners) > 10
    payments = demo_tables["payments"].join(churners["churned_at"], on="customer_id", how="inner")
    recent = payments[payments["attempted_at"] >= payments["churned_at"] - 30 * DAY]
    failures = recent[recent["status"] == "failed"].groupby("customer_id").size()
    assert (failures.reindex(churners.index, fill_value=0) >= 2).all()
    last_attempt = payments.sort_values("attempted_at").groupby("customer_id").last()
    assert (last_attempt["status"] == "failed").all()
    assert (last_attempt["attempted_at"] == last_attempt["churned_at"]).all()
    reasons = demo_tables["subscriptions"].dropna(subset=["end_reason"])
    involuntary = reasons.loc[reasons["end_reason"] == "payment_failed", "customer_id"]
    assert set(involuntary) == set(churners.index)


def test_payments_are_monthly_with_retries_never_two_at_once(demo_tables):
    payments = demo_tables["payments"]
    assert not payments.duplicated(["customer_id", "attempted_at"]).any()
    gaps = payments.groupby("customer_id")["attempted_at"].diff().dropna() / DAY
    # a retry 4 days after a failure (and the next charge the rest of the month later), the
    # dunning retries 4 days apart, otherwise a month (365.25 / 12 days)
    assert gaps.between(3.99, 30.44).all()
    assert (gaps > 30.43).mean() > 0.8


def test_voluntary_churners_have_paid_their_last_charge(demo_tables):
    churners = _churners(demo_tables).query("customer_type == 'subscriber' and churn_type == 'voluntary'")
    payments = demo_tables["payments"][demo_tables["payments"]["customer_id"].isin(churners["customer_id"])]
    last_attempt = payments.sort_values("attempted_at").groupby("customer_id")["status"].last()
    assert (last_attempt == "succeeded").all()


# ---------------------------------------------------------------------- signals come before churn
def _count_before(tables, name, churners, days, *, where=None):
    """Events of table ``name`` per churner in the ``days`` before their churn."""
    events = tables[name] if where is None else tables[name].query(where)
    joined = events.join(churners.set_index("customer_id")["churned_at"], on="customer_id", how="inner")
    time = joined[EVENT_TIMES[name]]
    inside = joined[(time <= joined["churned_at"]) & (time > joined["churned_at"] - days * DAY)]
    return inside.groupby("customer_id").size().reindex(churners["customer_id"], fill_value=0)


def _complaints(tables, churners):
    return _count_before(tables, "tickets", churners, 90, where="is_complaint")


def _failed_payments(tables, churners):
    return _count_before(tables, "payments", churners, 60, where="status == 'failed'")


def _low_scores(tables, churners):
    """Share of CSAT answers of 1-2 and NPS answers of 0-6 in the 120 days before churn."""
    surveys = tables["surveys"].assign(
        low=lambda s: np.where(s["kind"] == "csat", s["score"] <= 2, s["score"] <= 6).astype(float)
    )
    joined = surveys.join(churners.set_index("customer_id")["churned_at"], on="customer_id", how="inner")
    inside = joined[(joined["answered_at"] > joined["churned_at"] - 120 * DAY)]
    return inside.groupby("customer_id")["low"].mean()


def _downgraded(tables, churners):
    """1 when the last spell's MRR is below the previous (touching) spell's."""
    spells = tables["subscriptions"].sort_values(["customer_id", "started_at"])
    drop = spells.groupby("customer_id")["mrr"].diff() < 0
    last = spells.assign(drop=drop).groupby("customer_id")["drop"].last()
    return last.reindex(churners["customer_id"]).astype(float)


def _activity_fall(tables, churners):
    """1 minus activity in the last 45 days before churn over activity in the 45 days before those."""
    recent = _count_before(tables, "activity", churners, 45)
    both = _count_before(tables, "activity", churners, 90)
    earlier = (both - recent).clip(lower=1)
    return 1 - recent / earlier


def _order_fall(tables, churners):
    """1 when no order came in the 120 days before churn although the buyer had ordered before."""
    recent = _count_before(tables, "orders", churners, 120)
    ever = _count_before(tables, "orders", churners, 10_000)
    repeat = ever >= 2
    return (recent[repeat] == 0).astype(float)


SIGNALS = {
    "complaints": (_complaints, "subscriber|buyer"),
    "failed_payments": (_failed_payments, "subscriber"),
    "low_satisfaction": (_low_scores, "subscriber|buyer"),
    "downgrade": (_downgraded, "subscriber"),
    "fading_activity": (_activity_fall, "subscriber"),
    "purchase_decline": (_order_fall, "buyer"),
}


@pytest.mark.parametrize("cause", sorted(SIGNALS))
def test_each_cause_shows_up_in_its_signal_before_churn(large, cause):
    statistic, types = SIGNALS[cause]
    churners = _churners(large).query(f"customer_type.str.fullmatch('{types}')")
    own = statistic(large, churners[churners["cause"] == cause])
    others = statistic(large, churners[churners["cause"] != cause])
    assert len(own.dropna()) > 50 and len(others.dropna()) > 50
    # the signal is much stronger before churn from its own cause than before churn from other causes
    assert own.mean() > others.mean() + 0.2 * max(own.mean(), 0.5)


def test_signals_also_appear_without_churn(large):
    """Noise: customers who stay also complain, fail a payment and answer low scores."""
    stayed = large["ground_truth"].query("not churned")["customer_id"]
    tickets = large["tickets"][large["tickets"]["customer_id"].isin(stayed)]
    payments = large["payments"][large["payments"]["customer_id"].isin(stayed)]
    surveys = large["surveys"][large["surveys"]["customer_id"].isin(stayed)]
    assert tickets["is_complaint"].sum() > 100
    assert (payments["status"] == "failed").sum() > 100
    assert (surveys.query("kind == 'csat'")["score"] <= 2).sum() > 100
    drops = (
        large["subscriptions"].sort_values(["customer_id", "started_at"]).groupby("customer_id")["mrr"].diff()
    )
    assert large["subscriptions"].loc[drops < 0, "customer_id"].isin(stayed).sum() > 50


# ---------------------------------------------------------------------- writing
def test_write_demo_data_writes_every_table(tmp_path):
    result = write_demo_data(tmp_path / "demo", n_customers=200, seed=1, fmt="csv")
    names = sorted(path.name for path in (tmp_path / "demo").iterdir())
    assert names == sorted(f"{name}.csv" for name in [*TABLES, "ground_truth"])
    assert result.rows["customers"] == 200
    store = EventStore.from_folder(tmp_path / "demo")
    assert validate(store, as_of=END.to_pydatetime()).ok
    written = pd.read_csv(tmp_path / "demo" / "ground_truth.csv")
    assert written["churned"].sum() == result.churners["churners"].sum()


def test_write_demo_data_never_clobbers_a_users_files(tmp_path):
    (tmp_path / "orders.csv").write_text("mine\n")
    with pytest.raises(ChurnriskError, match="not empty"):
        write_demo_data(tmp_path, n_customers=100)
    assert (tmp_path / "orders.csv").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv"]


def test_a_failed_write_leaves_no_folder_behind(tmp_path):
    with pytest.raises(ChurnriskError, match="90 days"):
        write_demo_data(tmp_path / "new", n_customers=100, start="2024-06-01", end="2024-01-01")
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ChurnriskError, match="not a folder"):
        write_demo_data(tmp_path / "file", n_customers=100, overwrite=True)


def test_overwrite_replaces_only_the_demo_tables(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    write_demo_data(tmp_path, n_customers=100, fmt="csv", overwrite=True)
    write_demo_data(tmp_path, n_customers=100, fmt="parquet", overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert not list(tmp_path.glob("*.csv"))  # the other format is gone, or the store would refuse
    assert EventStore.from_folder(tmp_path)["customers"].height == 100


# ---------------------------------------------------------------------- CLI
def test_cli_writes_demo_data_and_summarises(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo-data", str(out), "--customers", "300", "--seed", "5", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert "customers.csv" in result.stdout and "300" in result.stdout
    assert "failed_payments" in result.stdout  # churners by cause
    assert (out / "ground_truth.csv").exists()
    check = CliRunner().invoke(app, ["validate", str(out), "--as-of", "2024-12-31"])
    assert check.exit_code == 0, check.output


def test_cli_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id\n1\n")
    result = CliRunner().invoke(app, ["demo-data", str(tmp_path), "--customers", "100"])
    assert result.exit_code == 1
    assert "not empty" in result.stderr and "--overwrite" in result.stderr
    assert "Traceback" not in result.output
    assert (tmp_path / "customers.csv").read_text() == "customer_id\n1\n"
    again = CliRunner().invoke(app, ["demo-data", str(tmp_path), "--customers", "100", "--overwrite"])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("args", [["--format", "xlsx"], ["--customers", "0"], ["--start", "tomorrow"]])
def test_cli_usage_errors_exit_2(tmp_path, args):
    result = CliRunner().invoke(app, ["demo-data", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert not (tmp_path / "x").exists()
