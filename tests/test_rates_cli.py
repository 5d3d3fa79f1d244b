"""The rates commands: rates, repeat, cohorts, clv, involuntary."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnrisk.cli import app

runner = CliRunner()


@pytest.fixture
def subs_folder(tmp_path):
    pd.DataFrame({"customer_id": [1, 2, 3], "plan": ["pro", "basic", "pro"]}).to_csv(
        tmp_path / "customers.csv", index=False
    )
    pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 3],
            "started_at": ["2023-12-01", "2023-12-01", "2023-12-01", "2024-02-01"],
            "ended_at": ["2024-01-15", "", "2024-02-01", ""],
            "mrr": [10, 5, 10, 20],
            "end_reason": ["payment_failed", "", "", ""],
        }
    ).to_csv(tmp_path / "subscriptions.csv", index=False)
    return tmp_path


@pytest.fixture
def orders_folder(tmp_path):
    pd.DataFrame({"customer_id": [1, 2, 3]}).to_csv(tmp_path / "customers.csv", index=False)
    pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "ordered_at": ["2023-01-05", "2023-02-05", "2023-01-20", "2024-03-01"],
            "amount": [10, 20, 5, 7],
        }
    ).to_csv(tmp_path / "orders.csv", index=False)
    return tmp_path


def _ok(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def test_rates_csv(subs_folder):
    result = _ok(
        ["rates", str(subs_folder), "--start", "2024-01-01", "--end", "2024-03-01", "--format", "csv"]
    )
    table = pd.read_csv(io.StringIO(result.stdout))
    assert table["customers_start"].tolist() == [3, 2]
    assert table["customers_lost"].tolist() == [1, 0]
    assert table["mrr_expansion"].tolist() == [10.0, 0.0]  # the upgrade on Feb 1 belongs to January


def test_rates_json_by_segment(subs_folder):
    args = ["rates", str(subs_folder), "--start", "2024-01-01", "--end", "2024-02-01", "--by", "plan"]
    records = json.loads(_ok([*args, "--format", "json"]).stdout)
    assert [r["plan"] for r in records] == ["basic", "pro"]
    assert [r["lost_churn_rate"] for r in records] == [0.0, 0.5]


def test_rates_table_and_output_file(subs_folder, tmp_path):
    out = tmp_path / "rates.csv"
    result = _ok(["rates", str(subs_folder), "--period", "quarter", "--start", "2023-10-01", "-o", str(out)])
    assert "Churn per quarter" in result.stdout
    assert len(pd.read_csv(out)) == 1
    again = runner.invoke(app, ["rates", str(subs_folder), "--start", "2023-10-01", "-o", str(out)])
    assert again.exit_code == 1
    assert "--overwrite" in again.stderr and "Traceback" not in again.output
    _ok(["rates", str(subs_folder), "--start", "2023-10-01", "-o", str(out), "--overwrite"])


def test_rates_user_errors(subs_folder):
    bad_period = runner.invoke(app, ["rates", str(subs_folder), "--period", "fortnight"])
    assert bad_period.exit_code == 2
    bad_by = runner.invoke(app, ["rates", str(subs_folder), "--by", "country"])
    assert bad_by.exit_code == 1
    assert "country" in bad_by.stderr and "Traceback" not in bad_by.output
    wrong = runner.invoke(app, ["rates", str(subs_folder), "--definition", "inactivity"])
    assert wrong.exit_code == 1 and "orders" in wrong.stderr


def test_rates_invalid_data_is_reported(tmp_path):
    pd.DataFrame({"customer_id": [1]}).to_csv(tmp_path / "customers.csv", index=False)
    pd.DataFrame({"customer_id": [1], "started_at": ["soon"], "mrr": [1]}).to_csv(
        tmp_path / "subscriptions.csv", index=False
    )
    result = runner.invoke(app, ["rates", str(tmp_path)])
    assert result.exit_code == 1
    assert "started_at" in result.stderr and "Traceback" not in result.output


def test_repeat_with_category(orders_folder):
    result = _ok(["repeat", str(orders_folder), "--category", "shoes"])
    assert "benchmark_non_repeat_rate" in result.stdout and "0.78" in result.stdout
    unknown = runner.invoke(app, ["repeat", str(orders_folder), "--category", "shooes"])
    assert unknown.exit_code == 1 and "did you mean 'shoes'" in unknown.stderr


def test_repeat_csv(orders_folder):
    table = pd.read_csv(io.StringIO(_ok(["repeat", str(orders_folder), "--format", "csv"]).stdout))
    assert table.loc[0, "repeat_purchase_rate"] == pytest.approx(1 / 3)
    assert table.loc[0, "non_repeat_rate"] == pytest.approx(1 / 2)  # 1 and 2 followed, 2 never back


def test_cohorts_and_clv(subs_folder):
    result = _ok(["cohorts", str(subs_folder), "--counts", "--start", "2023-11-01", "--format", "csv"])
    table = pd.read_csv(io.StringIO(result.stdout))
    assert table.loc[0, "customers"] == 3
    assert table.loc[0, ["0", "1", "2"]].tolist() == [3, 3, 2]
    clv = _ok(["clv", str(subs_folder), "--margin", "0.5", "--start", "2024-01-01", "--format", "json"])
    assert json.loads(clv.stdout)[0]["margin"] == 0.5


def test_involuntary_writes_the_winback_list(subs_folder, tmp_path):
    out = tmp_path / "winback.csv"
    result = _ok(["involuntary", str(subs_folder), "--start", "2024-01-01", "-o", str(out)])
    assert "Voluntary and involuntary churn" in result.stdout
    winback = pd.read_csv(out)
    assert winback["customer_id"].tolist() == [1]
    assert winback["churn_type"].tolist() == ["involuntary"]


@pytest.mark.parametrize("command", ["rates", "cohorts", "clv", "involuntary"])
def test_lookback_keeps_its_old_name_inactivity_days_out_of_the_help(orders_folder, command):
    csv = [command, str(orders_folder), "--format", "csv"]
    shorter = _ok([*csv, "--lookback", "20"]).output
    assert _ok([*csv, "--inactivity-days", "20"]).output == shorter
    if command == "rates":
        assert _ok(csv).output != shorter  # the default 90 days count other customers as lost
    shown = " ".join(_ok([command, "--help"]).output.split())
    assert "--lookback" in shown and "--inactivity-days" not in shown


def test_the_command_line_choices_are_the_library_ones():
    from typing import get_args

    from churnrisk.cli._options import Kind, Period
    from churnrisk.definition import KINDS
    from churnrisk.rates import PERIODS

    assert get_args(Period) == tuple(PERIODS)
    assert get_args(Kind) == KINDS
