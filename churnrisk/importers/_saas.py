"""A multi-table SaaS export (RavenStack-shaped) as an event store (rules: see the package)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from churnrisk.contract import SCORE_RANGES
from churnrisk.errors import ChurnriskError
from churnrisk.importers._common import (
    Column,
    ImportReport,
    ImportResult,
    Source,
    _as_is,
    _describe,
    _drop_missing,
    _drop_repeated,
    _finish,
    _flags,
    _leave_out,
    _numbers,
    _pick,
    _read_raw,
    _text,
    _times,
)
from churnrisk.importers._concurrent import split_concurrent_subscriptions

#: Raw SaaS tables: file-name stem (``ravenstack_<stem>.csv`` or ``<stem>.csv``) and whether required.
SAAS_TABLES = {
    "accounts": True,
    "subscriptions": True,
    "support_tickets": False,
    "feature_usage": False,
    "churn_events": False,
}

# Raw column -> our column and its type, per raw table.
_ACCOUNTS: dict[str, Column] = {
    "account_id": ("customer_id", _text),
    "signup_date": ("signup_at", _times),
    "industry": ("industry", _as_is),
    "country": ("country", _as_is),
    "plan_tier": ("plan", _as_is),
    "referral_source": ("channel", _as_is),
    "seats": ("seats", _numbers),
    "is_trial": ("is_trial", _flags),
}
_SUBSCRIPTIONS: dict[str, Column] = {
    "subscription_id": ("raw_id", _text),
    "account_id": ("customer_id", _text),
    "start_date": ("started_at", _times),
    "mrr_amount": ("mrr", _numbers),
    "end_date": ("ended_at", _times),
    "plan_tier": ("plan", _text),
}
_TICKETS: dict[str, Column] = {
    "account_id": ("customer_id", _text),
    "submitted_at": ("opened_at", _times),
    "ticket_id": ("ticket_id", _text),
    "closed_at": ("resolved_at", _times),
    "priority": ("category", _text),
    "escalation_flag": ("is_complaint", _flags),
    "satisfaction_score": ("score", _numbers),
}
_USAGE: dict[str, Column] = {
    "subscription_id": ("raw_id", _text),
    "usage_date": ("occurred_at", _times),
    "feature_name": ("event", _text),
    "usage_count": ("value", _numbers),
}
_CHURN_EVENTS: dict[str, Column] = {
    "account_id": ("customer_id", _text),
    "churn_date": ("churned_at", _times),
    "churn_event_id": ("churn_event_id", _text),
    "reason_code": ("reason", _text),
    "refund_amount_usd": ("refund_amount", _numbers),
    "preceding_upgrade_flag": ("preceding_upgrade", _flags),
    "preceding_downgrade_flag": ("preceding_downgrade", _flags),
    "is_reactivation": ("is_reactivation", _flags),
    "feedback_text": ("feedback", _text),
}


def import_saas(source: Source | Mapping[str, pd.DataFrame]) -> ImportResult:
    """Turn a multi-table SaaS export into an event store (see :mod:`churnrisk.importers` for the rules).

    Parameters
    ----------
    source : path or mapping
        A folder with ``accounts``, ``subscriptions`` and optionally ``support_tickets``,
        ``feature_usage`` and ``churn_events`` CSV files (named ``<name>.csv`` or
        ``<anything>_<name>.csv``, as in the RavenStack set), or the same raw tables as DataFrames
        keyed by those names.

    Returns
    -------
    ImportResult
        ``tables``: ``customers``, ``subscriptions`` (non-overlapping spells), and when their sources
        are present ``tickets``, ``surveys`` and ``activity``; ``extras``: ``churn_events``
        (customer_id, churned_at, reason, ...). ``report`` counts what was left out.
    """
    started = time.perf_counter()
    raw = _saas_raw(source)
    report = ImportReport(_describe(source), rows_read={k: len(v) for k, v in raw.items()})
    customers = _saas_customers(raw["accounts"], report)
    churn = _saas_churn_events(raw.get("churn_events"), report)
    subs = _saas_subscriptions(raw["subscriptions"], report)
    tables = {
        "customers": customers,
        "subscriptions": split_concurrent_subscriptions(subs, churn_events=churn),
    }
    if "support_tickets" in raw:
        tables["tickets"], tables["surveys"] = _saas_tickets(raw["support_tickets"], report)
    if "feature_usage" in raw:
        tables["activity"] = _saas_activity(raw["feature_usage"], subs, report)
    tables = {name: _known_customers(frame, customers, name, report) for name, frame in tables.items()}
    extras = (
        {} if churn is None else {"churn_events": _known_customers(churn, customers, "churn_events", report)}
    )
    return _finish(ImportResult(tables, report, extras), started)


def _saas_raw(source: Source | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    if isinstance(source, Mapping):
        unknown = sorted(set(source) - set(SAAS_TABLES))
        if unknown:
            raise ChurnriskError(f"unknown SaaS tables {unknown}. Known tables: {list(SAAS_TABLES)}.")
        raw = {name: frame.copy() for name, frame in source.items()}
    else:
        raw = _saas_files(Path(source))
    missing = [name for name, required in SAAS_TABLES.items() if required and name not in raw]
    if missing:
        raise ChurnriskError(
            f"the SaaS data has no {' or '.join(missing)} table; found {sorted(raw)}. "
            "Suggestion: name the files accounts.csv and subscriptions.csv (any prefix_ is fine)."
        )
    return raw


def _saas_files(folder: Path) -> dict[str, pd.DataFrame]:
    if not folder.is_dir():
        raise ChurnriskError(f"{folder} is not a folder. Suggestion: give the folder of the SaaS CSV files.")
    raw = {}
    for name in SAAS_TABLES:
        found = sorted({*folder.glob(f"{name}.csv"), *folder.glob(f"*_{name}.csv")})
        if len(found) > 1:
            raise ChurnriskError(
                f"several files for the {name} table in {folder}: {[p.name for p in found]}."
            )
        if found:
            raw[name] = _read_raw(found[0], f"SaaS {name}")
    return raw


def _saas_customers(accounts: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    customers = _pick(accounts, _ACCOUNTS, "accounts", required=("account_id",))
    customers = _drop_missing(customers, {"customer_id": "account_id"}, "accounts", report)
    return _drop_repeated(customers, "customer_id", "accounts", report).reset_index(drop=True)


def _saas_subscriptions(raw: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    required = ("subscription_id", "account_id", "start_date", "mrr_amount")
    subs = _pick(raw, _SUBSCRIPTIONS, "subscriptions", required=required)
    for column, dtype in (("ended_at", "datetime64[us]"), ("plan", "str")):
        if column not in subs.columns:
            subs[column] = pd.Series(None, index=subs.index, dtype=dtype)
    raw_names = {"customer_id": "account_id", "started_at": "start_date", "mrr": "mrr_amount"}
    subs = _drop_missing(subs, raw_names, "subscriptions", report)
    # both reasons are counted on the same rows: a row can be wrong in both ways
    negative = subs["mrr"] < 0
    report.drop("subscriptions with a negative MRR", int(negative.sum()))
    backwards = subs["ended_at"] < subs["started_at"]
    report.drop("subscriptions that end before they start", int(backwards.sum()))
    return subs[~negative & ~backwards].reset_index(drop=True)


def _saas_tickets(raw: pd.DataFrame, report: ImportReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    tickets = _pick(raw, _TICKETS, "support tickets", required=("account_id", "submitted_at"))
    raw_names = {"customer_id": "account_id", "opened_at": "submitted_at"}
    tickets = _drop_missing(tickets, raw_names, "support tickets", report)
    tickets = _drop_repeated(tickets, "ticket_id", "support tickets", report)
    if "resolved_at" in tickets.columns:
        backwards = tickets["resolved_at"] < tickets["opened_at"]
        tickets = _leave_out(tickets, backwards, "support tickets closed before they were opened", report)
    surveys = _saas_surveys(tickets, report) if "score" in tickets.columns else _empty_surveys()
    return tickets.drop(columns=["score"], errors="ignore").reset_index(drop=True), surveys


def _saas_surveys(tickets: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    low, high = SCORE_RANGES["csat"]
    answered = tickets["resolved_at"] if "resolved_at" in tickets.columns else tickets["opened_at"]
    surveys = pd.DataFrame(
        {
            "customer_id": tickets["customer_id"],
            "answered_at": answered.fillna(tickets["opened_at"]),
            "kind": "csat",
            "score": tickets["score"],
        }
    )
    missing = surveys["score"].isna()
    surveys = _leave_out(surveys, missing, "support tickets without a satisfaction score (no survey)", report)
    outside = ~surveys["score"].between(low, high)
    surveys = _leave_out(
        surveys, outside, f"satisfaction scores outside {low:g}-{high:g} (no survey)", report
    )
    return surveys.reset_index(drop=True)


def _empty_surveys() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series(dtype="str"),
            "answered_at": pd.Series(dtype="datetime64[us]"),
            "kind": pd.Series(dtype="str"),
            "score": pd.Series(dtype="float64"),
        }
    )


def _saas_activity(raw: pd.DataFrame, subs: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    usage = _pick(raw, _USAGE, "feature usage", required=("subscription_id", "usage_date", "feature_name"))
    owners = subs.drop_duplicates("raw_id").set_index("raw_id")["customer_id"]
    activity = pd.DataFrame(
        {
            "customer_id": usage["raw_id"].map(owners),
            "occurred_at": usage["occurred_at"],
            "event": usage["event"],
            "value": usage["value"] if "value" in usage.columns else np.nan,
        }
    )
    unknown = activity["customer_id"].isna()
    activity = _leave_out(activity, unknown, "feature-usage rows of an unknown subscription", report)
    raw_names = {"occurred_at": "usage_date", "event": "feature_name"}
    return _drop_missing(activity, raw_names, "feature-usage rows", report).reset_index(drop=True)


def _saas_churn_events(raw: pd.DataFrame | None, report: ImportReport) -> pd.DataFrame | None:
    if raw is None:
        return None
    churn = _pick(raw, _CHURN_EVENTS, "churn events", required=("account_id", "churn_date"))
    churn = _drop_missing(
        churn, {"customer_id": "account_id", "churned_at": "churn_date"}, "churn events", report
    )
    return churn.sort_values(["churned_at", "customer_id"], kind="stable").reset_index(drop=True)


def _known_customers(
    frame: pd.DataFrame, customers: pd.DataFrame, what: str, report: ImportReport
) -> pd.DataFrame:
    """Leave out rows of accounts missing from the accounts table (counted)."""
    unknown = ~frame["customer_id"].isin(customers["customer_id"])
    reason = f"{what}: rows of accounts missing from the accounts table"
    return _leave_out(frame, unknown, reason, report).reset_index(drop=True)
