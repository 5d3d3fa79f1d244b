"""Importers: tiny raw frames shaped like each source with hand-worked expectations, then the real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from churnrisk.errors import ChurnriskError
from churnrisk.importers import (
    import_online_retail,
    import_saas,
    import_snapshot,
    split_concurrent_subscriptions,
)
from churnrisk.store import EventStore
from churnrisk.validation import validate

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"the shared datasets are not at {SHARED_DATA}"
)

T = pd.Timestamp


def _ts(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[us]")


# ---------------------------------------------------------------------- Online Retail
@pytest.fixture
def retail_lines() -> pd.DataFrame:
    rows = [
        # invoice, quantity, price, time, customer, country
        ("536365", 6, 2.55, "2010-12-01 08:26", 17850.0, "United Kingdom"),
        ("536365", 2, 3.39, "2010-12-01 08:26", 17850.0, "United Kingdom"),
        ("536365", 1, 0.0, "2010-12-01 08:27", 17850.0, "United Kingdom"),  # same invoice, later stamp
        ("536366", 1, 1.00, "2010-12-01 08:28", None, "United Kingdom"),  # no customer
        ("536367", 3, 1.00, "2010-12-01 09:00", 14527.0, "EIRE"),
        ("536367", -2, 1.00, "2010-12-01 09:00", 14527.0, "EIRE"),  # negative line in a sale
        ("C536379", -1, 27.50, "2010-12-01 09:41", 14527.0, "EIRE"),
        ("C536380", -4, 0.50, "2010-12-02 10:00", 14527.0, "United Kingdom"),
        ("A563185", 1, -11062.06, "2011-08-12 14:50", 12346.0, "United Kingdom"),  # bad-debt adjustment
        ("536368", 5, 0.0, "2010-12-03 11:00", 12347.0, "Iceland"),  # free items
        ("536369", 1, 1.00, "2010-12-03 12:00", None, "France"),  # no customer
    ]
    frame = pd.DataFrame(
        rows, columns=["InvoiceNo", "Quantity", "UnitPrice", "InvoiceDate", "CustomerID", "Country"]
    )
    return frame.assign(InvoiceDate=pd.to_datetime(frame["InvoiceDate"]).astype("datetime64[us]"))


def test_online_retail_orders_are_one_row_per_invoice(retail_lines):
    orders = import_online_retail(retail_lines).tables["orders"]
    expected = pd.DataFrame(
        {
            "customer_id": pd.array([17850, 14527, 12347], dtype="Int64"),
            "order_id": pd.Series(["536365", "536367", "536368"], dtype="str"),
            "ordered_at": _ts("2010-12-01 08:26", "2010-12-01 09:00", "2010-12-03 11:00"),
            "amount": [6 * 2.55 + 2 * 3.39, 3.0, 0.0],
            "quantity": np.array([9, 3, 5], dtype="int64"),
        }
    )
    assert_frame_equal(orders, expected)


def test_online_retail_cancellations_become_refunds(retail_lines):
    returns = import_online_retail(retail_lines).tables["returns"]
    expected = pd.DataFrame(
        {
            "customer_id": pd.array([14527, 14527], dtype="Int64"),
            "return_id": pd.Series(["C536379", "C536380"], dtype="str"),
            "returned_at": _ts("2010-12-01 09:41", "2010-12-02 10:00"),
            "amount": [27.5, 2.0],
            "kind": pd.Series(["refund", "refund"], dtype="str"),
        }
    )
    assert_frame_equal(returns, expected)


def test_online_retail_customers_first_invoice_and_main_country(retail_lines):
    customers = import_online_retail(retail_lines).tables["customers"]
    expected = pd.DataFrame(
        {
            "customer_id": pd.array([12347, 14527, 17850], dtype="Int64"),
            "signup_at": _ts("2010-12-03 11:00", "2010-12-01 09:00", "2010-12-01 08:26"),
            # 14527: three kept lines in EIRE, one in the United Kingdom; 12346 had only an adjustment
            "country": pd.Series(["Iceland", "EIRE", "United Kingdom"], dtype="str"),
        }
    )
    assert_frame_equal(customers, expected)


def test_online_retail_report_counts_every_dropped_line(retail_lines):
    report = import_online_retail(retail_lines).report
    assert report.rows_read == {"invoice lines": 11}
    assert report.dropped == {
        "invoice lines without a CustomerID": 2,
        "lines of adjustment invoices (neither a sale nor a 'C' cancellation)": 1,
        "sale lines with a quantity <= 0 or a negative price": 1,
    }
    assert report.rows_out == {"customers": 3, "orders": 3, "returns": 2}
    assert any("1 invoices have lines at several timestamps" in note for note in report.notes)
    assert any("1 sale invoices have a total of 0" in note for note in report.notes)


def test_online_retail_refund_with_net_negative_value_is_dropped():
    lines = pd.DataFrame(
        {
            "InvoiceNo": ["C1", "C1"],
            "Quantity": [-1, 3],
            "UnitPrice": [1.0, 1.0],
            "InvoiceDate": ["2011-01-01 10:00", "2011-01-01 10:00"],
            "CustomerID": ["12", "12"],
        }
    )
    result = import_online_retail(lines)
    assert result.tables["returns"].empty
    assert result.report.dropped == {"cancelled invoices with a negative refunded value": 1}


def test_online_retail_unreadable_values_are_counted_by_raw_name():
    lines = pd.DataFrame(
        {
            "InvoiceNo": ["1", "2", "3"],
            "Quantity": ["1", "two", "3"],
            "UnitPrice": ["1.0", "1.0", "1.0"],
            "InvoiceDate": ["2011-01-01 10:00", "2011-01-02 10:00", "not a date"],
            "CustomerID": ["12", "12", "12"],
        }
    )
    result = import_online_retail(lines)
    assert result.tables["orders"]["order_id"].tolist() == ["1"]
    assert result.report.dropped == {
        "invoice lines without a readable InvoiceDate": 1,
        "invoice lines without a readable Quantity": 1,
    }


def test_online_retail_output_passes_validation(retail_lines, tmp_path):
    result = import_online_retail(retail_lines)
    assert validate(EventStore.from_frames(result.tables)).ok
    result.write(tmp_path / "store")
    report = validate(EventStore.from_folder(tmp_path / "store"))
    assert report.ok, [str(p) for p in report.errors]
    assert report.rows == {"customers": 3, "orders": 3, "returns": 2}


def test_online_retail_missing_column_is_a_user_error(retail_lines):
    with pytest.raises(ChurnriskError, match=r"no column.*CustomerID.*found"):
        import_online_retail(retail_lines.drop(columns="CustomerID"))


def test_write_refuses_existing_tables_without_overwrite(retail_lines, tmp_path):
    result = import_online_retail(retail_lines)
    result.write(tmp_path)
    before = (tmp_path / "orders.csv").read_text()
    with pytest.raises(ChurnriskError, match="already exists"):
        result.write(tmp_path)
    with pytest.raises(ChurnriskError, match="two files"):
        result.write(tmp_path, fmt="parquet", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "orders.csv", "returns.csv"]
    result.write(tmp_path, overwrite=True)
    assert (tmp_path / "orders.csv").read_text() == before


# ---------------------------------------------------------------------- SaaS
def _saas_raw() -> dict[str, pd.DataFrame]:
    accounts = pd.DataFrame(
        {
            "account_id": ["A-1", "A-2"],
            "account_name": ["Company_0", "Company_1"],
            "industry": ["EdTech", "FinTech"],
            "country": ["US", "IN"],
            "signup_date": ["2023-12-15", "2023-12-20"],
            "referral_source": ["partner", "organic"],
            "plan_tier": ["Basic", "Pro"],
            "seats": [9, 18],
            "is_trial": ["FALSE", "TRUE"],
            "churn_flag": ["FALSE", "TRUE"],
        }
    )
    subscriptions = pd.DataFrame(
        {
            "subscription_id": ["S-1", "S-2", "S-3", "S-4", "S-5"],
            "account_id": ["A-1", "A-1", "A-2", "A-2", "A-2"],
            "start_date": ["2024-01-01", "2024-02-01", "2024-01-01", "2024-02-01", "2024-06-01"],
            "end_date": ["2024-03-01", "", "2024-02-01", "2024-04-01", ""],
            "plan_tier": ["Basic", "Pro", "Pro", "Pro", "Enterprise"],
            "mrr_amount": [10, 30, 50, 50, 0],
        }
    )
    tickets = pd.DataFrame(
        {
            "ticket_id": ["T-1", "T-2", "T-3"],
            "account_id": ["A-1", "A-2", "A-2"],
            "submitted_at": ["2024-01-05", "2024-02-01", "2024-03-01"],
            "closed_at": ["2024-01-06 3:00", "2024-02-02 10:00", ""],
            "priority": ["high", "urgent", "low"],
            "satisfaction_score": [None, 4.0, 7.0],
            "escalation_flag": ["FALSE", "TRUE", "FALSE"],
        }
    )
    usage = pd.DataFrame(
        {
            "usage_id": ["U-1", "U-2", "U-3"],
            "subscription_id": ["S-1", "S-4", "S-x"],
            "usage_date": ["2024-01-10", "2024-02-10", "2024-02-11"],
            "feature_name": ["feature_1", "feature_2", "feature_3"],
            "usage_count": [3, 5, 1],
        }
    )
    churn = pd.DataFrame(
        {
            "churn_event_id": ["C-1", "C-2"],
            "account_id": ["A-2", "A-zz"],
            "churn_date": ["2024-04-05", "2024-05-01"],
            "reason_code": ["pricing", "budget"],
            "refund_amount_usd": [4.03, 0.0],
            "feedback_text": ["too expensive", None],
        }
    )
    return {
        "accounts": accounts,
        "subscriptions": subscriptions,
        "support_tickets": tickets,
        "feature_usage": usage,
        "churn_events": churn,
    }


def test_saas_overlapping_subscriptions_become_spells():
    spells = import_saas(_saas_raw()).tables["subscriptions"]
    expected = pd.DataFrame(
        {
            "customer_id": pd.Series(["A-1"] * 3 + ["A-2"] * 2, dtype="str"),
            "subscription_id": pd.Series(["A-1/1", "A-1/2", "A-1/3", "A-2/1", "A-2/2"], dtype="str"),
            "started_at": _ts("2024-01-01", "2024-02-01", "2024-03-01", "2024-01-01", "2024-06-01"),
            "ended_at": _ts("2024-02-01", "2024-03-01", None, "2024-04-01", None),
            # 10 alone, then 10 + 30 together, then 30; A-2: two touching 50s merge into one spell
            "mrr": [10.0, 40.0, 30.0, 50.0, 0.0],
            "plan": pd.Series(["Basic", "Pro", "Pro", "Pro", "Enterprise"], dtype="str"),
            # A-2 holds nothing after 2024-04-01: the churn event four days later names the reason
            "end_reason": pd.Series(["upgrade", "downgrade", None, "pricing", None], dtype="str"),
            "n_subscriptions": np.array([1, 2, 1, 1, 1], dtype="int64"),
        }
    )
    assert_frame_equal(spells, expected)


@pytest.mark.parametrize(
    ("ended", "event", "reason"),
    [
        ("2024-03-01", "2024-03-31", "budget"),  # 30 days after: matched
        ("2024-03-01", "2024-02-01", "budget"),  # 29 days before: matched
        ("2024-03-01", "2024-04-15", "ended"),  # 45 days after: too far
    ],
)
def test_spell_end_takes_nearby_churn_reason(ended, event, reason):
    subs = pd.DataFrame(
        {
            "customer_id": ["a"],
            "started_at": _ts("2024-01-01"),
            "ended_at": _ts(ended),
            "mrr": [5.0],
            "plan": ["Basic"],
        }
    )
    churn = pd.DataFrame({"customer_id": ["a"], "churned_at": _ts(event), "reason": ["budget"]})
    spells = split_concurrent_subscriptions(subs, churn_events=churn)
    assert spells["end_reason"].tolist() == [reason]


def test_saas_spells_never_overlap():
    rng = np.random.default_rng(0)
    starts = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, 60), unit="D")
    length = pd.to_timedelta(rng.integers(1, 120, 60), unit="D")
    subs = pd.DataFrame(
        {
            "customer_id": rng.choice(["a", "b", "c"], 60),
            "started_at": starts.astype("datetime64[us]"),
            "ended_at": pd.Series(starts + length).where(rng.random(60) < 0.7).astype("datetime64[us]"),
            "mrr": rng.integers(0, 4, 60).astype(float) * 10,
            "plan": rng.choice(["Basic", "Pro"], 60),
        }
    )
    spells = split_concurrent_subscriptions(subs)
    ordered = spells.sort_values(["customer_id", "started_at"])
    previous_end = ordered.groupby("customer_id")["ended_at"].shift(1)
    first = ~ordered["customer_id"].duplicated()
    assert (first | (previous_end.notna() & (ordered["started_at"] >= previous_end))).all()
    # the total MRR at any day equals the sum over the raw subscriptions active that day
    for day in pd.date_range("2024-01-01", "2025-01-01", freq="7D"):
        raw = subs[(subs.started_at <= day) & (subs.ended_at.isna() | (subs.ended_at > day))]
        cut = spells[(spells.started_at <= day) & (spells.ended_at.isna() | (spells.ended_at > day))]
        assert (
            raw.groupby("customer_id")["mrr"].sum().to_dict() == cut.set_index("customer_id")["mrr"].to_dict()
        )


def test_saas_customers_tickets_surveys_activity():
    result = import_saas(_saas_raw())
    tables = result.tables
    assert_frame_equal(
        tables["customers"],
        pd.DataFrame(
            {
                "customer_id": pd.Series(["A-1", "A-2"], dtype="str"),
                "signup_at": _ts("2023-12-15", "2023-12-20"),
                "industry": pd.Series(["EdTech", "FinTech"], dtype="str"),
                "country": pd.Series(["US", "IN"], dtype="str"),
                "plan": pd.Series(["Basic", "Pro"], dtype="str"),
                "channel": pd.Series(["partner", "organic"], dtype="str"),
                "seats": [9.0, 18.0],
                "is_trial": pd.array([False, True], dtype="boolean"),
            }
        ),
    )
    tickets = tables["tickets"]
    assert tickets["ticket_id"].tolist() == ["T-1", "T-2", "T-3"]
    assert tickets["resolved_at"].tolist()[:2] == [T("2024-01-06 03:00"), T("2024-02-02 10:00")]
    assert tickets["resolved_at"].isna().tolist() == [False, False, True]
    assert tickets["is_complaint"].tolist() == [False, True, False]
    assert tickets["category"].tolist() == ["high", "urgent", "low"]
    assert_frame_equal(
        tables["surveys"],
        pd.DataFrame(
            {
                "customer_id": pd.Series(["A-2"], dtype="str"),
                "answered_at": _ts("2024-02-02 10:00"),
                "kind": pd.Series(["csat"], dtype="str"),
                "score": [4.0],
            }
        ),
    )
    assert_frame_equal(
        tables["activity"],
        pd.DataFrame(
            {
                "customer_id": pd.Series(["A-1", "A-2"], dtype="str"),
                "occurred_at": _ts("2024-01-10", "2024-02-10"),
                "event": pd.Series(["feature_1", "feature_2"], dtype="str"),
                "value": [3.0, 5.0],
            }
        ),
    )
    churn = result.extras["churn_events"]
    assert churn[["customer_id", "reason", "refund_amount"]].values.tolist() == [["A-2", "pricing", 4.03]]
    assert result.report.dropped == {
        "support tickets without a satisfaction score (no survey)": 1,
        "satisfaction scores outside 1-5 (no survey)": 1,
        "feature-usage rows of an unknown subscription": 1,
        "churn_events: rows of accounts missing from the accounts table": 1,
    }


def test_saas_repeated_ticket_id_is_dropped_and_counted():
    raw = _saas_raw()
    raw["support_tickets"].loc[2, "ticket_id"] = "T-1"
    result = import_saas(raw)
    assert result.tables["tickets"]["ticket_id"].tolist() == ["T-1", "T-2"]
    assert result.report.dropped["support tickets whose ticket_id repeats an earlier row"] == 1
    assert validate(EventStore.from_frames(result.tables)).ok


def test_saas_folder_round_trip_passes_validation(tmp_path):
    source = tmp_path / "raw"
    source.mkdir()
    for name, frame in _saas_raw().items():
        frame.to_csv(source / f"ravenstack_{name}.csv", index=False)
    result = import_saas(source)
    result.write(tmp_path / "store", fmt="parquet")
    report = validate(EventStore.from_folder(tmp_path / "store"))
    assert report.ok, [str(p) for p in report.errors]
    assert report.rows == {"customers": 2, "subscriptions": 5, "tickets": 3, "surveys": 1, "activity": 2}
    assert (tmp_path / "store" / "churn_events.parquet").exists()


def test_saas_without_accounts_is_a_user_error(tmp_path):
    raw = _saas_raw()
    del raw["accounts"]
    with pytest.raises(ChurnriskError, match="no accounts table"):
        import_saas(raw)
    with pytest.raises(ChurnriskError, match="is not a folder"):
        import_saas(tmp_path / "nowhere")


# ---------------------------------------------------------------------- snapshots
@pytest.mark.parametrize(
    "values",
    [
        ["Yes", "No", "no"],
        ["True", "False", "FALSE"],
        [True, False, False],
        [1, 0, 0],
        ["1", "0", "0"],
        [" yes", "NO ", "n"],
        [1.0, 0.0, 0.0],
    ],
)
def test_snapshot_label_becomes_zero_one(values):
    frame = import_snapshot(pd.DataFrame({"x": [1, 2, 3], "Churn": values}))
    assert frame["Churn"].dtype == "int64"
    assert frame["Churn"].tolist() == [1, 0, 0]


def test_snapshot_numeric_text_and_blanks(tmp_path):
    path = tmp_path / "telco.csv"
    path.write_text(
        "customerID,tenure,TotalCharges,Contract,Churn\n"
        "7590-VHVEG,1,29.85,Month-to-month,No\n"
        "4472-LVYGI,0, ,Two year,No\n"
        "3668-QPYBK,2,108.15,,Yes\n"
    )
    frame, report = import_snapshot(path, customer_col="customerID", return_report=True)
    expected = pd.DataFrame(
        {
            "customerID": pd.Series(["7590-VHVEG", "4472-LVYGI", "3668-QPYBK"], dtype="str"),
            "tenure": [1, 0, 2],
            "TotalCharges": [29.85, np.nan, 108.15],
            "Contract": pd.Series(["Month-to-month", "Two year", None], dtype="str"),
            "Churn": [0, 0, 1],
        }
    )
    assert_frame_equal(frame, expected, check_dtype=False)
    assert frame["TotalCharges"].dtype == "float64"
    assert report.missing == {"tenure": 0, "TotalCharges": 1, "Contract": 1}
    assert report.rows_out == {"rows": 3, "churners": 1}


def test_snapshot_old_id_col_warns_and_still_works():
    raw = pd.DataFrame({"id": [1, 2], "Churn": ["yes", "no"]})
    with pytest.warns(DeprecationWarning, match="'id_col'.*'customer_col'"):
        frame = import_snapshot(raw, id_col="id")
    assert frame.to_dict("list") == {"id": ["1", "2"], "Churn": [1, 0]}  # ids kept as text


def test_snapshot_rows_without_label_are_dropped_and_counted():
    raw = pd.DataFrame({"x": ["1", "2", "3"], "churned": ["yes", "", "no"]})
    frame, report = import_snapshot(raw, return_report=True)
    assert frame.to_dict("list") == {"x": [1, 3], "churned": [1, 0]}
    assert report.dropped == {"rows without a value in the label column 'churned'": 1}


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"x": [1], "y": [0]}), {}, r"cannot tell the label column: no column"),
        (pd.DataFrame({"Churn": [1], "exited": [0]}), {}, r"several columns \['Churn', 'exited'\]"),
        (pd.DataFrame({"Churn": [1]}), {"label": "Exited"}, r"label column 'Exited' is not in the table"),
        (pd.DataFrame({"Churn": ["yes", "maybe"]}), {}, r"not yes/no.*'maybe'.*1 rows"),
        (pd.DataFrame({"id": ["a", "a"], "Churn": [1, 0]}), {"customer_col": "id"}, r"1 repeated values"),
        (
            pd.DataFrame({"id": ["a", "b"], "Churn": [1, 0]}),
            {"customer_col": "key"},
            r"id column 'key' is not",
        ),
    ],
)
def test_snapshot_user_errors(frame, kwargs, message):
    with pytest.raises(ChurnriskError, match=message):
        import_snapshot(frame, **kwargs)


# ---------------------------------------------------------------------- CLI
@pytest.fixture
def cli():
    import churnrisk.cli._import  # noqa: F401  (registers the commands)
    from churnrisk.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_cli_online_retail(cli, retail_lines, tmp_path):
    source = tmp_path / "retail.parquet"
    retail_lines.to_parquet(source)
    result = cli("import", "online-retail", source, tmp_path / "store")
    assert result.exit_code == 0, result.output
    assert "invoice lines without a CustomerID" in result.stdout
    assert (tmp_path / "store" / "orders.csv").exists()
    again = cli("import", "online-retail", source, tmp_path / "store")
    assert again.exit_code == 1
    assert "already exists" in again.stderr and "--overwrite" in again.stderr
    assert "Traceback" not in again.output
    assert cli("import", "online-retail", source, tmp_path / "store", "--overwrite").exit_code == 0
    assert cli("validate", tmp_path / "store").exit_code == 0


def test_cli_saas(cli, tmp_path):
    source = tmp_path / "raw"
    source.mkdir()
    for name, frame in _saas_raw().items():
        frame.to_csv(source / f"{name}.csv", index=False)
    result = cli("import", "saas", source, tmp_path / "store", "--format", "parquet")
    assert result.exit_code == 0, result.output
    assert "satisfaction scores outside 1-5" in result.stdout
    assert cli("validate", tmp_path / "store").exit_code == 0


def test_cli_snapshot(cli, tmp_path):
    source = tmp_path / "snap.csv"
    source.write_text("id,TotalCharges,Churn\na,1.5,Yes\nb, ,No\n")
    result = cli("import", "snapshot", source, tmp_path / "clean.parquet", "--id", "id")
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(tmp_path / "clean.parquet")["Churn"].tolist() == [1, 0]
    bad = cli("import", "snapshot", source, tmp_path / "other.csv", "--label", "Exited")
    assert bad.exit_code == 1
    assert "label column 'Exited' is not in the table" in bad.stderr
    assert "Traceback" not in bad.output
    assert not (tmp_path / "other.csv").exists()


def test_cli_missing_source(cli, tmp_path):
    result = cli("import", "online-retail", tmp_path / "nope.parquet", tmp_path / "store")
    assert result.exit_code == 1
    assert "is not a file" in result.stderr
    assert not (tmp_path / "store").exists()


# ---------------------------------------------------------------------- the real datasets
@pytest.mark.slow
@pytest.mark.realdata
@needs_shared_data
def test_real_online_retail(tmp_path):
    result = import_online_retail(SHARED_DATA / "online_retail" / "online_retail.parquet")
    assert result.report.rows_read == {"invoice lines": 541_909}
    assert result.report.dropped["invoice lines without a CustomerID"] == 135_080
    assert len(result.tables["customers"]) == 4_372
    assert (result.tables["orders"]["amount"] >= 0).all()
    assert (result.tables["returns"]["amount"] >= 0).all()
    result.write(tmp_path)
    report = validate(EventStore.from_folder(tmp_path))
    assert report.ok, [str(p) for p in report.errors]


@pytest.mark.realdata
@needs_shared_data
def test_real_saas(tmp_path):
    result = import_saas(SHARED_DATA / "ravenstack_saas")
    assert len(result.tables["customers"]) == 500
    assert len(result.tables["activity"]) == 25_000
    # 2,000 tickets, 825 without a satisfaction score
    assert len(result.tables["surveys"]) == 2_000 - 825
    assert len(result.extras["churn_events"]) == 600
    result.write(tmp_path)
    report = validate(EventStore.from_folder(tmp_path))
    assert report.ok, [str(p) for p in report.errors]


@pytest.mark.realdata
@needs_shared_data
@pytest.mark.parametrize(
    ("path", "rows", "churners"),
    [
        ("telco/Telco-Customer-Churn.csv", 7_043, 1_869),
        ("orange_telecom/churn-bigml-80.csv", 2_666, 388),
        ("orange_telecom/churn-bigml-20.csv", 667, 95),
        ("ecommerce_snapshot/ecommerce_churn.csv", 5_630, 948),
    ],
)
def test_real_snapshots(path, rows, churners):
    frame, report = import_snapshot(SHARED_DATA / path, return_report=True)
    assert len(frame) == rows
    assert frame["Churn"].sum() == churners
    assert set(frame["Churn"]) == {0, 1}
    if path.startswith("telco"):
        assert report.missing["TotalCharges"] == 11
        assert frame["TotalCharges"].dtype == "float64"
