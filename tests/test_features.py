"""Features on a small inline store, every value worked out by hand.

Cutoff 2024-03-31 00:00, windows 30 and 90 days: the 30-day window is (2024-03-01, 2024-03-31],
the 90-day window (2024-01-01, 2024-03-31]; the windows before them (for trends) are
(2024-01-31, 2024-03-01] and (2023-10-03, 2024-01-01]. Events placed exactly on a window start
must be out of that window, events exactly at the cutoff in.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from churnrisk.cli import app
from churnrisk.errors import ChurnriskError
from churnrisk.features import FAMILIES, build_features, describe_feature, explain, feature_columns
from churnrisk.store import EventStore

T = pd.Timestamp
CUTOFF = T("2024-03-31")
NAN = np.nan


def _tables() -> dict[str, pd.DataFrame]:
    return {
        "customers": pd.DataFrame(
            {
                "customer_id": [1, 2, 3, 4, 5],
                # 4 signs up after the cutoff; 3 and 5 have no signup time: 3 ordered before the
                # cutoff, 5 only after it
                "signup_at": [T("2023-01-01"), T("2023-06-01"), None, T("2024-06-01"), None],
                "segment": ["a", "b", "a", "c", "c"],
            }
        ),
        "orders": pd.DataFrame(
            {
                "customer_id": [1, 1, 1, 2, 2, 3, 5, 4],
                "ordered_at": [
                    T("2024-01-01"),  # on the 90-day window start: out of it, in the 90-day prior window
                    T("2024-03-01"),  # on the 30-day window start: out of it, in the 30-day prior window
                    CUTOFF,  # at the cutoff: in
                    T("2024-03-15"),
                    T("2024-04-02"),  # after the cutoff
                    T("2024-02-01"),
                    T("2024-05-01"),
                    T("2024-03-20"),  # 4 orders before signing up: not in the population all the same
                ],
                "amount": [10.0, 20.0, 5.0, 8.0, 100.0, 7.0, 1.0, 2.0],
            }
        ),
        "returns": pd.DataFrame(
            {
                "customer_id": [1, 2, 2],
                "returned_at": [CUTOFF, T("2024-03-01"), T("2024-02-15")],
                "amount": [3.0, 4.0, 6.0],
                "kind": ["exchange", "refund", "refund"],
            }
        ),
        "subscriptions": pd.DataFrame(
            {
                "customer_id": [1, 1, 2, 3, 3],
                "started_at": [
                    T("2023-01-01"),
                    T("2024-02-15"),
                    T("2023-06-01"),
                    T("2023-03-01"),
                    T("2024-04-10"),
                ],
                # 2's end lies after the cutoff: open at the cutoff; 3's is exactly at the cutoff: closed
                "ended_at": [T("2024-02-15"), None, T("2024-12-01"), CUTOFF, None],
                "mrr": [50.0, 30.0, 20.0, 40.0, 99.0],
                "plan": ["pro", "basic", "pro", "team", "pro"],
            }
        ),
        "tickets": pd.DataFrame(
            {
                "customer_id": [1, 1, 2],
                "opened_at": [CUTOFF, T("2024-02-01"), T("2024-03-01")],
                "is_complaint": [True, False, True],
                # 2's ticket is resolved after the cutoff: unresolved at the cutoff
                "resolved_at": [None, T("2024-02-03"), T("2024-04-05")],
            }
        ),
        "surveys": pd.DataFrame(
            {
                "customer_id": [1, 1, 1, 2, 2],
                # not in time order: the latest CSAT of customer 1 is 2, the one before it 5
                "answered_at": [T("2024-03-20"), T("2024-01-10"), T("2024-03-25"), CUTOFF, T("2024-02-01")],
                "kind": ["csat", "csat", "nps", "nps", "csat"],
                "score": [2.0, 5.0, 9.0, 6.0, 4.0],
            }
        ),
        "payments": pd.DataFrame(
            {
                "customer_id": [1, 1, 1, 1, 2],
                "attempted_at": [T("2024-01-15"), T("2024-02-01"), T("2024-03-10"), CUTOFF, T("2024-03-01")],
                "status": ["failed", "succeeded", "failed", "failed", "failed"],
            }
        ),
        "activity": pd.DataFrame(
            {
                "customer_id": [1, 1, 1],
                "occurred_at": [CUTOFF, T("2024-03-01"), T("2024-02-20")],
                "event": ["login", "login", "export"],
            }
        ),
    }


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_features(EventStore.from_frames(_tables()), CUTOFF, windows=(30, 90))


def _expected(data: dict[str, list]) -> pd.DataFrame:
    return pd.DataFrame(data, index=pd.Index([1, 2, 3], name="customer_id"))


def _check(features: pd.DataFrame, expected: pd.DataFrame) -> None:
    actual = features[expected.columns]
    assert_frame_equal(actual, expected, check_dtype=False, check_categorical=False)


def test_population_is_signed_up_or_active_by_the_cutoff(features):
    assert features.index.tolist() == [1, 2, 3]


def test_purchases(features):
    expected = _expected(
        {
            "purchases_frequency_30d": [1, 1, 0],
            "purchases_frequency_90d": [2, 1, 1],
            "purchases_monetary_30d": [5.0, 8.0, 0.0],
            "purchases_monetary_90d": [25.0, 8.0, 7.0],
            "purchases_frequency_trend_30d": [0, 1, -1],
            "purchases_frequency_trend_90d": [1, 1, 1],
            "purchases_spend_trend_30d": [-15.0, 8.0, -7.0],
            "purchases_spend_trend_90d": [15.0, 8.0, 7.0],
            "purchases_aov_30d": [5.0, 8.0, NAN],
            "purchases_aov_90d": [12.5, 8.0, 7.0],
            "purchases_aov_trend_30d": [-15.0, NAN, NAN],
            "purchases_aov_trend_90d": [2.5, NAN, NAN],
            "purchases_recency": [0.0, 16.0, 59.0],
            "purchases_orders": [3, 1, 1],
            "purchases_spend": [35.0, 8.0, 7.0],
            "purchases_first_order": [90.0, 16.0, 59.0],
            "purchases_usual_gap": [45.0, NAN, NAN],
            "purchases_gap_ratio": [0.0, NAN, NAN],
        }
    )
    _check(features, expected)


def test_returns(features):
    expected = _expected(
        {
            "returns_count_30d": [1, 0, 0],
            "returns_count_90d": [1, 2, 0],
            "returns_amount_30d": [3.0, 0.0, 0.0],
            "returns_amount_90d": [3.0, 10.0, 0.0],
            "returns_refunds_30d": [0, 0, 0],
            "returns_refunds_90d": [0, 2, 0],
            "returns_exchanges_90d": [1, 0, 0],
            "returns_refund_share": [0.0, 1.0, NAN],
            "returns_recency": [0.0, 30.0, NAN],
        }
    )
    _check(features, expected)


def test_subscription(features):
    expected = _expected(
        {
            "subscription_tenure": [455.0, 304.0, 396.0],
            "subscription_mrr": [30.0, 20.0, 0.0],
            "subscription_open": [1, 1, 0],
            "subscription_mrr_change_30d": [0.0, 0.0, -40.0],
            "subscription_mrr_change_90d": [-20.0, 0.0, -40.0],
            "subscription_downgrades_30d": [0, 0, 0],
            "subscription_downgrades_90d": [1, 0, 0],
            "subscription_upgrades_90d": [0, 0, 0],
            "subscription_plan": ["basic", "pro", "team"],
        }
    )
    _check(features, expected)


def test_support(features):
    expected = _expected(
        {
            "support_tickets_30d": [1, 0, 0],
            "support_tickets_90d": [2, 1, 0],
            "support_complaints_30d": [1, 0, 0],
            "support_complaints_90d": [1, 1, 0],
            "support_unresolved": [1, 1, 0],
            "support_complaint_recency": [0.0, 30.0, NAN],
            "support_resolution_days_30d": [NAN, NAN, NAN],
            "support_resolution_days_90d": [2.0, NAN, NAN],
        }
    )
    _check(features, expected)


def test_surveys(features):
    expected = _expected(
        {
            "surveys_csat_last": [2.0, 4.0, NAN],
            "surveys_csat_prev": [5.0, NAN, NAN],
            "surveys_csat_trend": [-3.0, NAN, NAN],
            "surveys_csat_mean_30d": [2.0, NAN, NAN],
            "surveys_csat_mean_90d": [3.5, 4.0, NAN],
            "surveys_nps_last": [9.0, 6.0, NAN],
            "surveys_nps_group": ["promoter", "detractor", NAN],
            "surveys_ces_last": [NAN, NAN, NAN],
            "surveys_recency": [6.0, 0.0, NAN],
        }
    )
    _check(features, expected)


def test_payments(features):
    expected = _expected(
        {
            "payments_failed_30d": [2, 0, 0],
            "payments_failed_90d": [3, 1, 0],
            "payments_consecutive_failures": [2, 1, 0],
            "payments_failure_recency": [0.0, 30.0, NAN],
            "payments_recovered_30d": [0, 0, 0],
            "payments_recovered_90d": [1, 0, 0],
            "payments_unrecovered_30d": [2, 0, 0],
            "payments_unrecovered_90d": [2, 1, 0],
        }
    )
    _check(features, expected)


def test_activity_and_customer_attributes(features):
    expected = _expected(
        {
            "activity_events_30d": [1, 0, 0],
            "activity_events_90d": [3, 0, 0],
            "activity_events_trend_30d": [-1, 0, 0],
            "activity_events_trend_90d": [3, 0, 0],
            "activity_recency": [0.0, NAN, NAN],
            "customer_tenure": [455.0, 304.0, NAN],
            "customer_segment": ["a", "b", "a"],
        }
    )
    _check(features, expected)


def test_dtypes(features):
    # 32-bit numbers: counts int32, everything else float32
    assert features["payments_failed_30d"].dtype == "int32"
    assert features["purchases_recency"].dtype == "float32"
    assert features["purchases_monetary_30d"].dtype == "float32"
    assert isinstance(features["customer_segment"].dtype, pd.CategoricalDtype)
    assert isinstance(features["surveys_nps_group"].dtype, pd.CategoricalDtype)


def test_columns_are_the_declared_ones_in_order(features):
    tables = _tables()
    declared = feature_columns(
        {name: list(frame.columns) for name, frame in tables.items()}, windows=(30, 90)
    )
    assert list(features.columns) == declared
    assert all(c.startswith(tuple(f"{f.name}_" for f in FAMILIES)) for c in features.columns)


def test_a_family_switches_on_with_its_table():
    tables = _tables()
    del tables["returns"], tables["payments"]
    out = build_features(EventStore.from_frames(tables), CUTOFF, windows=(30,))
    assert not any(c.startswith(("returns_", "payments_")) for c in out.columns)
    assert "purchases_frequency_30d" in out.columns


def test_missing_optional_columns_drop_only_their_features():
    tables = _tables()
    tables["tickets"] = tables["tickets"].drop(columns=["is_complaint", "resolved_at"])
    out = build_features(EventStore.from_frames(tables), CUTOFF, windows=(30,))
    assert "support_tickets_30d" in out.columns
    assert not any(c in out.columns for c in ("support_complaints_30d", "support_unresolved"))


def test_without_signup_times_the_population_is_customers_with_events():
    tables = _tables()
    tables["customers"] = tables["customers"].drop(columns=["signup_at"])
    out = build_features(EventStore.from_frames(tables), CUTOFF, windows=(30,))
    assert out.index.tolist() == [1, 2, 3, 4]  # 4 ordered before the cutoff; 5 only after it


def test_default_windows():
    out = build_features(EventStore.from_frames(_tables()), CUTOFF)
    assert {
        "payments_failed_30d",
        "payments_failed_90d",
        "payments_failed_180d",
        "payments_failed_365d",
    } <= set(out.columns)


@pytest.mark.parametrize("windows", [(), (0, 30), (-5,), ("a",), (1.5,)])
def test_bad_windows_are_refused(windows):
    with pytest.raises(ChurnriskError, match="windows"):
        build_features(EventStore.from_frames(_tables()), CUTOFF, windows=windows)


@pytest.mark.parametrize("cutoff", ["not a date", None, "2024-03-31T00:00:00+02:00"])
def test_bad_cutoffs_are_refused(cutoff):
    with pytest.raises(ChurnriskError, match="cutoff"):
        build_features(EventStore.from_frames(_tables()), cutoff)


# ---------------------------------------------------------------------- words
@pytest.mark.parametrize(
    ("column", "row", "text"),
    [
        ("payments_failed_30d", {"payments_failed_30d": 3}, "3 failed payments in the last 30 days"),
        (
            "surveys_csat_trend",
            {"surveys_csat_trend": -3.0, "surveys_csat_last": 2.0},
            "CSAT fell from 5 to 2",
        ),
        (
            "purchases_gap_ratio",
            {"purchases_gap_ratio": 140 / 30, "purchases_recency": 140.0},
            "no order for 140 days, usual gap 30",
        ),
        ("support_complaint_recency", {"support_complaint_recency": NAN}, "no complaint on record"),
        ("surveys_nps_group", {"surveys_nps_group": "detractor"}, "NPS group: detractor"),
        ("customer_segment", {"customer_segment": "smb"}, "last segment: smb"),
        (
            "purchases_frequency_trend_90d",
            {"purchases_frequency_trend_90d": -2, "purchases_frequency_90d": 1},
            "orders fell from 3 to 1 (last 90 days vs the 90 before)",
        ),
        (
            "subscription_mrr_change_30d",
            {"subscription_mrr_change_30d": -40.0, "subscription_mrr": 60.0},
            "MRR fell from 100 to 60 over the last 30 days",
        ),
        ("returns_refund_share", {"returns_refund_share": 0.5}, "50% of returns that were refunds"),
    ],
)
def test_explain(column, row, text):
    assert explain(column, row) == text


def test_explain_reads_a_row_of_build_features(features):
    assert explain("payments_failed_90d", features.loc[1]) == "3 failed payments in the last 90 days"
    assert explain("surveys_csat_trend", features.loc[1]) == "CSAT fell from 5 to 2"


def test_describe_every_column(features):
    for column in features.columns:
        text = describe_feature(column)
        assert text.endswith(".") and text[0].isupper(), column
    assert describe_feature("payments_failed_30d") == (
        "Number of failed payments in the last 30 days (events in (cutoff - 30 days, cutoff])."
    )
    assert describe_feature("purchases_recency") == "Days from the last order to the cutoff."


@pytest.mark.parametrize(
    "column", ["nonsense", "payments_failed", "payments_failed_x", "purchases_recency_30d"]
)
def test_unknown_columns_are_refused(column):
    with pytest.raises(ChurnriskError, match="not a feature column"):
        describe_feature(column)


def test_days_are_fractional():
    tables = _tables()
    tables["orders"].loc[5, "ordered_at"] = T("2024-03-30 12:00")
    out = build_features(EventStore.from_frames(tables), CUTOFF, windows=(30,))
    assert math.isclose(out.loc[3, "purchases_recency"], 0.5)


# ---------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    for name, frame in _tables().items():
        frame.to_parquet(path / f"{name}.parquet", index=False)
    return path


def test_cli_features_summary(folder):
    result = CliRunner().invoke(
        app, ["features", str(folder), "--cutoff", "2024-03-31", "--windows", "30,90"]
    )
    assert result.exit_code == 0, result.output
    assert "3 customers" in result.stdout and "payments_failed_30d" in result.stdout


def test_cli_features_writes_the_table(folder, tmp_path, features):
    out = tmp_path / "features.parquet"
    args = ["features", str(folder), "--cutoff", "2024-03-31", "--windows", "30,90", "-o", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    written = pd.read_parquet(out).set_index("customer_id")
    assert_frame_equal(written, features, check_categorical=False)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "--overwrite" in again.stderr and "Traceback" not in again.output
    assert CliRunner().invoke(app, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--cutoff", "31/03/2024"], 2),
        (["--cutoff", "2024-03-31", "--windows", "thirty"], 2),
    ],
)
def test_cli_features_usage_errors(folder, args, code):
    result = CliRunner().invoke(app, ["features", str(folder), *args])
    assert result.exit_code == code
    assert "Traceback" not in result.output


def test_cli_features_missing_folder(tmp_path):
    result = CliRunner().invoke(app, ["features", str(tmp_path / "nope"), "--cutoff", "2024-03-31"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_compact_keeps_values_in_32_bits_only_where_they_fit():
    import polars as pl

    from churnrisk.features._polars import compact

    part = pl.DataFrame(
        {
            "counts": [0, 3, 2**31 - 1],
            "big": [0, 1, 2**31],
            "missing": pl.Series([1, None, 16_777_216], dtype=pl.Int64),
            "money": [0.1, 46.13, 1e6 + 0.25],
            "text": ["a", "b", None],
        }
    )
    out = compact(part)
    assert out.schema == pl.Schema(
        {"counts": pl.Int32, "big": pl.Int64, "missing": pl.Float32, "money": pl.Float32, "text": pl.String}
    )
    assert out["counts"].to_list() == [0, 3, 2**31 - 1]
    assert out["missing"].to_list() == [1.0, None, 16_777_216.0]  # whole numbers exact up to 2**24
    # float32 keeps about 7 significant digits: each value is the nearest float32
    assert out["money"].to_list() == [float(np.float32(v)) for v in (0.1, 46.13, 1e6 + 0.25)]


def test_rows_asked_for_outside_the_population_are_missing(features):
    """``customers=`` (training sets, score lists) gives exactly those rows: customers outside the
    population (4 signs up after the cutoff, 5 has no event by then, 99 is unknown) get missing
    values in every column, counts included; the others equal build_features."""
    import polars as pl

    from churnrisk.features._build import to_pandas_features
    from churnrisk.features._polars import feature_frame

    store = EventStore.from_frames(_tables())
    asked = pl.Series("customer_id", [1, 3, 4, 5, 99])
    got = to_pandas_features(feature_frame(store.tables, CUTOFF.to_pydatetime(), (30, 90), customers=asked))
    assert got.index.tolist() == [1, 3, 4, 5, 99]
    assert got.loc[[4, 5, 99]].isna().all().all()
    assert got["purchases_frequency_30d"].dtype == "float32"  # a count with missing values
    inside = got.loc[[1, 3]].astype(features.dtypes.to_dict())
    assert_frame_equal(inside, features.loc[[1, 3]])


@pytest.mark.parametrize("asked", [[1, 3], [2], [3, 4, 5, 99], []])
def test_features_of_some_customers_are_read_from_their_events_alone(features, asked):
    """``customers=`` (scoring a store block by block) picks their events out first: the rows of
    those of them in the population (4 signs up after the cutoff, 5 has no event by then, 99 is
    unknown), with the values the whole store gives; text is said the same (its categories are
    those present)."""
    got = build_features(EventStore.from_frames(_tables()), CUTOFF, windows=(30, 90), customers=asked)
    inside = [i for i in asked if i in features.index]
    assert got.index.tolist() == inside
    assert list(got.columns) == list(features.columns)
    assert_frame_equal(got, features.loc[inside], check_categorical=False)


def test_text_customer_ids_give_the_same_features(features):
    tables = {
        name: frame.assign(customer_id=frame["customer_id"].map(lambda i: f"c{i:02d}"))
        for name, frame in _tables().items()
    }
    got = build_features(EventStore.from_frames(tables), CUTOFF, windows=(30, 90))
    assert got.index.tolist() == [f"c{i:02d}" for i in features.index]
    assert_frame_equal(got.reset_index(drop=True), features.reset_index(drop=True))


@pytest.mark.parametrize(
    "relabel",
    [
        lambda i: i + 3_000_000_000,  # a compact range far from zero: slots are id - low
        lambda i: i * 10_000_019,  # sparse: slots are positions among the customers' ids
        lambda i: i - 1,  # starting at zero: the ids are their own slots
    ],
    ids=["offset", "sparse", "from-zero"],
)
def test_integer_ids_of_any_range_give_the_same_features(features, relabel):
    """Every way of mapping ids to slots gives the same values, and events of an id that is no
    customer's (7, within the range of the others; 10**12, beyond it) are never counted."""
    tables = {
        name: frame.assign(customer_id=frame["customer_id"].map(relabel)) for name, frame in _tables().items()
    }
    strangers = pd.DataFrame(
        {"customer_id": [relabel(7), 10**12], "ordered_at": [CUTOFF, CUTOFF], "amount": [1e6, 1e6]}
    )
    tables["orders"] = pd.concat([tables["orders"], strangers], ignore_index=True)
    got = build_features(EventStore.from_frames(tables), CUTOFF, windows=(30, 90))
    assert got.index.tolist() == [relabel(i) for i in features.index]
    assert_frame_equal(got.reset_index(drop=True), features.reset_index(drop=True))


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from(["b", "a", "Zeta", "é", "a b", ""])), max_size=30),
    kind=st.sampled_from(["text", "categorical", "enum"]),
)
def test_text_columns_become_categoricals_with_sorted_categories(values, kind):
    """Text (or a Polars categorical, whose codes follow first appearance, or an enum, whose
    codes follow its declared order) becomes a pandas categorical whose categories are the
    distinct values in sorted order; missing stays missing."""
    import polars as pl

    from churnrisk.features._build import to_pandas_column

    column = pl.Series(values, dtype=pl.String)
    declared = ["é", "b", "a b", "Zeta", "a", ""]  # not sorted
    typed = {"text": pl.String, "categorical": pl.Categorical, "enum": pl.Enum(declared)}[kind]
    got = to_pandas_column(column.cast(typed))
    categories = pd.Index(sorted({v for v in values if v is not None}), dtype="str")
    expected = pd.Series(pd.Categorical(values, categories=categories))
    pd.testing.assert_series_equal(got, expected)


def test_cli_features_reads_and_checks_only_the_columns_it_uses(tmp_path, features):
    """An unreadable ``quantity`` (no feature reads it) does not stop ``features``; ``validate``
    still reports it; an unreadable ``amount`` (read by the features) stops both."""
    tables = _tables()
    orders = tables["orders"].assign(quantity="many")
    for name, frame in {**tables, "orders": orders}.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    out = tmp_path / "features.parquet"
    args = ["features", str(tmp_path), "--cutoff", "2024-03-31", "--windows", "30,90", "-o", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    written = pd.read_parquet(out).set_index("customer_id")
    assert_frame_equal(written, features, check_categorical=False, check_dtype=False)
    checked = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert checked.exit_code == 1 and "quantity" in checked.output
    orders.assign(amount="lots").to_csv(tmp_path / "orders.csv", index=False)
    stopped = CliRunner().invoke(app, [*args, "--overwrite"])
    assert stopped.exit_code == 1 and "amount" in stopped.output and "Traceback" not in stopped.output


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), by_customer=st.booleans())
def test_subscription_changes_do_not_depend_on_the_row_order(seed, by_customer):
    """Downgrades and upgrades compare each row with the customer's previous one in time: the
    same whether the table is sorted by customer and time (read in one pass) or shuffled."""
    rng = np.random.default_rng(seed)
    n = 30
    subscriptions = pd.DataFrame(
        {
            "customer_id": rng.integers(1, 6, n),
            "started_at": T("2024-01-01") + pd.to_timedelta(rng.integers(0, 20, n), unit="D"),
            "mrr": rng.choice([10.0, 20.0, 30.0], n),
        }
    )
    ordered = subscriptions.sort_values(["customer_id", "started_at"], kind="stable", ignore_index=True)
    shuffled = ordered.sample(frac=1, random_state=seed % 2**31, ignore_index=True)
    customers = pd.DataFrame({"customer_id": range(1, 6)})

    def features(table: pd.DataFrame) -> pd.DataFrame:
        store = EventStore.from_frames({"customers": customers, "subscriptions": table})
        return build_features(store, "2024-02-01", windows=(60,))  # every row in the window

    expected = features(ordered)
    # ties in start time keep their table order: compare with a shuffle only where there are none
    if by_customer or not ordered.duplicated(["customer_id", "started_at"]).any():
        assert_frame_equal(features(ordered if by_customer else shuffled), expected)
    changes = ordered.groupby("customer_id")["mrr"].diff()
    assert expected["subscription_downgrades_60d"].sum() == int((changes < 0).sum())
    assert expected["subscription_upgrades_60d"].sum() == int((changes > 0).sum())


@pytest.mark.parametrize(
    ("score", "group"),
    [(0.0, "detractor"), (6.0, "detractor"), (6.5, "passive"), (8.0, "passive"), (10.0, "promoter"),
     (11.0, None), (NAN, None)],
)  # fmt: skip
def test_nps_groups_at_the_bin_edges(score, group):
    """A value belongs to the first bin whose upper bound it does not exceed; beyond the last
    bound, or missing, it has no group."""
    from churnrisk.features._polars import _derived_values
    from churnrisk.features._spec import Derived

    bins = Derived("g", "bins", "x", bins=((6, "detractor"), (8, "passive"), (10, "promoter")))
    assert _derived_values(bins, np.array([score]), None).to_list() == [group]
    unordered = Derived("g", "bins", "x", bins=((8, "passive"), (6, "detractor"), (10, "promoter")))
    expected = "passive" if group == "detractor" else group  # declaration order decides
    assert _derived_values(unordered, np.array([score]), None).to_list() == [expected]
