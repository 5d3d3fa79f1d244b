"""Importers for public churn datasets: raw files in, event-store tables (or a clean snapshot) out.

Three shapes of data are supported, each by one function that returns pandas frames:

* :func:`import_online_retail` -- the UCI "Online Retail" invoice lines (one row per product line)
  become ``customers``, ``orders`` (one row per invoice) and ``returns`` (cancelled invoices).
* :func:`import_saas` -- a multi-table SaaS export (accounts, subscriptions with MRR, support
  tickets with satisfaction, feature usage, churn events) becomes ``customers``, ``subscriptions``,
  ``tickets``, ``surveys`` and ``activity``, plus a side table ``churn_events``.
* :func:`import_snapshot` -- a one-row-per-customer table with a churn label (Telco, Orange,
  e-commerce) becomes a clean table: label as 0/1, numeric-looking text as numbers.

Nothing is dropped silently: every row an importer leaves out is counted by reason in the
:class:`ImportReport`, and what the importers produce passes :func:`churnrisk.validation.validate`.

Rules that are choices, not facts of the data:

* Online Retail: an invoice number starting with ``C`` is a cancellation (a ``refund`` return worth
  the positive refunded value); one made of digits is a sale; anything else (``A...`` bad-debt
  adjustments) is an adjustment and dropped. Sale lines with a quantity <= 0 or a negative price are
  dropped, so amounts are never negative; a sale invoice whose lines are all free is kept with amount 0
  (zero amounts are valid in the contract). An invoice whose lines carry several timestamps is dated
  by the first. A customer's ``signup_at`` is their first kept invoice (sale or cancellation) and
  ``country`` the country on most of their lines.
* SaaS: one account may hold several concurrent subscriptions, while the contract wants
  non-overlapping spells of constant MRR per customer. Subscriptions are therefore cut at every start
  and end date of the account; each piece gets the summed MRR of the subscriptions active in it and
  the plan of the largest of them, and adjacent pieces with the same MRR and plan are merged. A spell
  followed directly by another ends with ``upgrade``, ``downgrade`` or ``plan change``; a spell after
  which the account holds nothing takes the reason of the churn event nearest its end (within
  ``CHURN_MATCH_DAYS``), else ``ended``. A ticket is a complaint when it was escalated; its priority
  is its category; its satisfaction score becomes a ``csat`` survey answered when the ticket closed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import pandas as pd

from churnrisk._io import check_writable, write_table
from churnrisk.contract import SCORE_RANGES, TABLES
from churnrisk.errors import ChurnriskError

__all__ = [
    "CHURN_MATCH_DAYS",
    "ImportReport",
    "ImportResult",
    "import_online_retail",
    "import_saas",
    "import_snapshot",
    "split_concurrent_subscriptions",
]

#: A spell that ends with nothing after it takes the reason of a churn event at most this far away.
CHURN_MATCH_DAYS = 31

Source = str | os.PathLike[str]
FORMATS = ("csv", "parquet")


# ---------------------------------------------------------------------- results
@dataclass
class ImportReport:
    """What an import read, wrote and left out (rows dropped, by reason), and how long it took."""

    source: str
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_out: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def drop(self, reason: str, rows: int) -> None:
        """Count ``rows`` left out for ``reason`` (reasons with no rows are not listed)."""
        if rows:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(rows)

    def to_frame(self) -> pd.DataFrame:
        """One row per count: ``step`` (read / written / dropped / missing), ``what`` and ``rows``."""
        records = [
            *(("read", k, v) for k, v in self.rows_read.items()),
            *(("written", k, v) for k, v in self.rows_out.items()),
            *(("dropped", k, v) for k, v in self.dropped.items()),
            *(("missing", k, v) for k, v in self.missing.items() if v),
        ]
        return pd.DataFrame(records, columns=["step", "what", "rows"])


@dataclass
class ImportResult:
    """Event-store tables made by an importer, side tables that are not part of the contract, a report."""

    tables: dict[str, pd.DataFrame]
    report: ImportReport
    extras: dict[str, pd.DataFrame] = field(default_factory=dict)

    def write(
        self, folder: Source, *, overwrite: bool = False, fmt: Literal["csv", "parquet"] = "csv"
    ) -> list[Path]:
        """Write every table as ``<name>.<fmt>`` into ``folder`` (created if missing), atomically.

        Nothing is written when any target exists and ``overwrite`` is not set, or when the folder
        already holds the same table in the other format (the event store would not know which to read).
        """
        if fmt not in FORMATS:
            raise ChurnriskError(f"unknown format {fmt!r}. Suggestion: use one of {list(FORMATS)}.")
        folder = _make_folder(Path(folder))
        frames = {**self.tables, **self.extras}
        targets = {name: folder / f"{name}.{fmt}" for name in frames}
        for target in targets.values():
            _check_other_format(target)
            check_writable(target, overwrite=overwrite)
        return [write_table(frames[name], target, overwrite=overwrite) for name, target in targets.items()]


def _make_folder(folder: Path) -> Path:
    if folder.exists() and not folder.is_dir():
        raise ChurnriskError(f"{folder} is a file, not a folder. Suggestion: choose a folder for the tables.")
    if not folder.parent.exists():
        raise ChurnriskError(f"the folder {folder.parent} does not exist.")
    folder.mkdir(exist_ok=True)
    return folder


def _check_other_format(target: Path) -> None:
    other = [target.with_suffix(f".{f}") for f in FORMATS if f".{f}" != target.suffix]
    clash = [p for p in other if p.exists() and p.stem in TABLES]
    if clash:
        raise ChurnriskError(
            f"{clash[0]} already exists; writing {target.name} beside it would give the table two files. "
            "Suggestion: remove it, or write in the same format (--format)."
        )


def _finish(result: ImportResult, started: float) -> ImportResult:
    frames = {**result.tables, **result.extras}
    result.report.rows_out = {name: len(frame) for name, frame in frames.items()}
    result.report.seconds = time.perf_counter() - started
    return result


# ---------------------------------------------------------------------- reading raw data
def _read_raw(source: Source | pd.DataFrame, what: str) -> pd.DataFrame:
    """A raw table from a DataFrame, a CSV file or a Parquet file."""
    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    if not path.is_file():
        raise ChurnriskError(f"{path} is not a file. Suggestion: give the path of the {what} file.")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise ChurnriskError(f"{path} cannot be read as the {what} file: {exc}") from None
    raise ChurnriskError(f"cannot tell the format of {path}: use a .csv or .parquet file.")


def _require(frame: pd.DataFrame, columns: Mapping[str, str] | tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ChurnriskError(
            f"the {what} data has no column{'s' if len(missing) > 1 else ''} {missing}; "
            f"found {list(frame.columns)}. Suggestion: check that this is the {what} file."
        )


def _pick(
    frame: pd.DataFrame, columns: Mapping[str, str], what: str, *, required: tuple[str, ...]
) -> pd.DataFrame:
    """Rename raw columns to contract names, keeping the optional ones that are present."""
    _require(frame, required, what)
    present = {raw: ours for raw, ours in columns.items() if raw in frame.columns}
    return frame[list(present)].rename(columns=present)


def _times(values: pd.Series) -> pd.Series:
    """ISO 8601 timestamps (naive), unreadable or blank ones as NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = pd.to_datetime(_text(values), format="ISO8601", errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[us]")


def _text(values: pd.Series) -> pd.Series:
    """Text with surrounding blanks removed and empty strings as missing."""
    text = values.astype("str").str.strip()
    return text.mask(values.isna() | (text == ""))


def _numbers(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    return pd.to_numeric(_text(values), errors="coerce").astype("float64")


_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


def _flags(values: pd.Series) -> pd.Series:
    """True/False/missing from booleans, 0/1 or yes/no/true/false text (anything else is missing)."""
    text = _text(values.astype("object").map(str, na_action="ignore")).str.lower()
    flags = pd.Series(pd.NA, index=values.index, dtype="boolean")
    flags[text.isin(_TRUE)] = True
    flags[text.isin(_FALSE)] = False
    return flags


def _drop_missing(
    frame: pd.DataFrame, columns: Mapping[str, str] | list[str], what: str, report: ImportReport
) -> pd.DataFrame:
    """Leave out rows with a missing or unreadable value in ``columns``, counted per column.

    ``columns`` may map our column names to the names the user knows (the raw ones).
    """
    names = columns if isinstance(columns, Mapping) else {c: c for c in columns}
    for column, shown in names.items():
        bad = frame[column].isna()
        report.drop(f"{what} without a readable {shown}", int(bad.sum()))
        frame = frame[~bad]
    return frame


def _drop_repeated(frame: pd.DataFrame, column: str, what: str, report: ImportReport) -> pd.DataFrame:
    """Keep the first row of each id; later rows with the same id are left out (counted)."""
    if column not in frame.columns:
        return frame
    repeated = frame[column].notna() & frame[column].duplicated()
    report.drop(f"{what} whose {column} repeats an earlier row", int(repeated.sum()))
    return frame[~repeated]


def _customer_ids(values: pd.Series) -> pd.Series:
    """Whole-number ids as Int64 (``12346.0`` -> 12346); anything else as text."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() == values.notna().sum() and (numbers.dropna() % 1 == 0).all():
        return numbers.astype("Int64")
    return _text(values)


# ---------------------------------------------------------------------- Online Retail
RETAIL_COLUMNS = ("InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice", "CustomerID")


def import_online_retail(source: Source | pd.DataFrame) -> ImportResult:
    """Turn Online Retail invoice lines into ``customers``, ``orders`` and ``returns`` tables.

    Parameters
    ----------
    source : path or DataFrame
        The invoice lines (Parquet or CSV) with columns ``InvoiceNo``, ``InvoiceDate``,
        ``Quantity``, ``UnitPrice``, ``CustomerID`` and optionally ``Country``.

    Returns
    -------
    ImportResult
        ``tables`` holds ``customers`` (customer_id, signup_at, country), ``orders`` (one row per
        sale invoice: customer_id, order_id, ordered_at, amount, quantity) and ``returns`` (one row
        per cancelled invoice: customer_id, return_id, returned_at, amount, kind="refund");
        ``report`` counts the lines read and the lines and invoices left out, by reason.

    Examples
    --------
    >>> lines = pd.DataFrame({
    ...     "InvoiceNo": ["1", "1", "C2"], "Quantity": [2, 1, -1], "UnitPrice": [1.5, 4.0, 4.0],
    ...     "InvoiceDate": pd.to_datetime(["2011-01-03 10:00"] * 2 + ["2011-01-05 09:00"]),
    ...     "CustomerID": [17850.0, 17850.0, 17850.0], "Country": ["United Kingdom"] * 3})
    >>> result = import_online_retail(lines)
    >>> result.tables["orders"][["order_id", "amount", "quantity"]]
      order_id  amount  quantity
    0        1     7.0         3
    >>> result.tables["returns"][["return_id", "amount", "kind"]]
      return_id  amount    kind
    0        C2     4.0  refund
    """
    started = time.perf_counter()
    raw = _read_raw(source, "Online Retail")
    _require(raw, RETAIL_COLUMNS, "Online Retail")
    report = ImportReport(_describe(source), rows_read={"invoice lines": len(raw)})
    lines = _retail_lines(raw, report)
    invoices = _retail_invoices(lines, report)
    orders = _retail_orders(invoices[invoices["kind"] == "sale"], report)
    returns = _retail_returns(invoices[invoices["kind"] == "cancellation"], report)
    kept = lines[lines["invoice"].isin(pd.concat([orders["order_id"], returns["return_id"]]))]
    customers = _retail_customers(kept)
    tables = {"customers": customers, "orders": orders, "returns": returns}
    return _finish(ImportResult(tables, report), started)


def _describe(source: Any) -> str:
    return "DataFrame" if isinstance(source, pd.DataFrame) else str(source)


def _retail_lines(raw: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Typed invoice lines with a customer, each tagged sale / cancellation / adjustment."""
    invoice = _text(raw["InvoiceNo"])
    lines = pd.DataFrame(
        {
            "invoice": invoice,
            "kind": _invoice_kind(invoice),
            "at": _times(raw["InvoiceDate"]),
            "quantity": _numbers(raw["Quantity"]),
            "price": _numbers(raw["UnitPrice"]),
            "customer_id": _customer_ids(raw["CustomerID"]),
            "country": _text(raw["Country"]) if "Country" in raw.columns else pd.NA,
        }
    )
    report.drop("invoice lines without a CustomerID", int(lines["customer_id"].isna().sum()))
    lines = lines[lines["customer_id"].notna()]
    raw_names = {"invoice": "InvoiceNo", "at": "InvoiceDate", "quantity": "Quantity", "price": "UnitPrice"}
    lines = _drop_missing(lines, raw_names, "invoice lines", report)
    adjustment = lines["kind"] == "adjustment"
    report.drop("lines of adjustment invoices (neither a sale nor a 'C' cancellation)", int(adjustment.sum()))
    lines = lines[~adjustment]
    bad_sale = (lines["kind"] == "sale") & ((lines["quantity"] <= 0) | (lines["price"] < 0))
    report.drop("sale lines with a quantity <= 0 or a negative price", int(bad_sale.sum()))
    lines = lines[~bad_sale]
    return lines.assign(value=lines["quantity"] * lines["price"])


def _invoice_kind(invoice: pd.Series) -> pd.Series:
    upper = invoice.str.upper()
    kind = np.where(
        upper.str.startswith("C", na=False),
        "cancellation",
        np.where(upper.str.fullmatch(r"\d+", na=False), "sale", "adjustment"),
    )
    return pd.Series(kind, index=invoice.index, dtype="str")


def _retail_invoices(lines: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """One row per invoice: its customer, first timestamp, total value and quantity."""
    invoices = (
        lines.groupby("invoice", sort=False)
        .agg(
            kind=("kind", "first"),
            customer_id=("customer_id", "first"),
            customers=("customer_id", "nunique"),
            at=("at", "min"),
            times=("at", "nunique"),
            value=("value", "sum"),
            quantity=("quantity", "sum"),
            lines=("value", "size"),
        )
        .reset_index()
    )
    several = invoices["customers"] > 1
    report.drop("lines of invoices that carry several CustomerIDs", int(invoices.loc[several, "lines"].sum()))
    later = int((invoices["times"] > 1).sum())
    if later:
        report.notes.append(f"{later:,} invoices have lines at several timestamps: dated by the first")
    return invoices[~several].sort_values(["at", "invoice"], kind="stable").reset_index(drop=True)


def _retail_orders(sales: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    free = int((sales["value"] == 0).sum())
    if free:
        report.notes.append(f"{free:,} sale invoices have a total of 0 (free items): kept with amount 0")
    return pd.DataFrame(
        {
            "customer_id": sales["customer_id"],
            "order_id": sales["invoice"],
            "ordered_at": sales["at"],
            "amount": sales["value"].round(4),
            "quantity": sales["quantity"].astype("int64"),
        }
    ).reset_index(drop=True)


def _retail_returns(cancellations: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    refund = -cancellations["value"]
    negative = refund < 0
    report.drop("cancelled invoices with a negative refunded value", int(negative.sum()))
    kept = cancellations[~negative]
    return pd.DataFrame(
        {
            "customer_id": kept["customer_id"],
            "return_id": kept["invoice"],
            "returned_at": kept["at"],
            "amount": refund[~negative].round(4) + 0.0,  # + 0.0 turns -0.0 into 0.0
            "kind": "refund",
        }
    ).reset_index(drop=True)


def _retail_customers(lines: pd.DataFrame) -> pd.DataFrame:
    """Each customer's first invoice time and the country on most of their lines."""
    first = lines.groupby("customer_id")["at"].min().rename("signup_at")
    counts = lines.groupby(["customer_id", "country"]).size().rename("n").reset_index()
    country = (
        counts.sort_values(["customer_id", "n", "country"], ascending=[True, False, True])
        .drop_duplicates("customer_id")
        .set_index("customer_id")["country"]
    )
    customers = pd.concat([first, country], axis=1).reset_index()
    return customers[["customer_id", "signup_at", "country"]]


# ---------------------------------------------------------------------- SaaS
#: Raw SaaS tables: file-name stem (``ravenstack_<stem>.csv`` or ``<stem>.csv``) and whether required.
SAAS_TABLES = {
    "accounts": True,
    "subscriptions": True,
    "support_tickets": False,
    "feature_usage": False,
    "churn_events": False,
}

# Raw column -> our column, per raw table; the first entries are required.
_ACCOUNTS = {
    "account_id": "customer_id",
    "signup_date": "signup_at",
    "industry": "industry",
    "country": "country",
    "plan_tier": "plan",
    "referral_source": "channel",
    "seats": "seats",
    "is_trial": "is_trial",
}
_SUBSCRIPTIONS = {
    "subscription_id": "raw_id",
    "account_id": "customer_id",
    "start_date": "started_at",
    "mrr_amount": "mrr",
    "end_date": "ended_at",
    "plan_tier": "plan",
}
_TICKETS = {
    "account_id": "customer_id",
    "submitted_at": "opened_at",
    "ticket_id": "ticket_id",
    "closed_at": "resolved_at",
    "priority": "category",
    "escalation_flag": "is_complaint",
    "satisfaction_score": "score",
}
_USAGE = {
    "subscription_id": "raw_id",
    "usage_date": "occurred_at",
    "feature_name": "event",
    "usage_count": "value",
}
_CHURN_EVENTS = {
    "account_id": "customer_id",
    "churn_date": "churned_at",
    "churn_event_id": "churn_event_id",
    "reason_code": "reason",
    "refund_amount_usd": "refund_amount",
    "preceding_upgrade_flag": "preceding_upgrade",
    "preceding_downgrade_flag": "preceding_downgrade",
    "is_reactivation": "is_reactivation",
    "feedback_text": "feedback",
}


def import_saas(source: Source | Mapping[str, pd.DataFrame]) -> ImportResult:
    """Turn a multi-table SaaS export into an event store (see the module docstring for the rules).

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
    customers["customer_id"] = _text(customers["customer_id"])
    if "signup_at" in customers.columns:
        customers["signup_at"] = _times(customers["signup_at"])
    for column in ("seats",):
        if column in customers.columns:
            customers[column] = _numbers(customers[column])
    if "is_trial" in customers.columns:
        customers["is_trial"] = _flags(customers["is_trial"])
    customers = _drop_missing(customers, {"customer_id": "account_id"}, "accounts", report)
    return _drop_repeated(customers, "customer_id", "accounts", report).reset_index(drop=True)


def _saas_subscriptions(raw: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    required = ("subscription_id", "account_id", "start_date", "mrr_amount")
    subs = _pick(raw, _SUBSCRIPTIONS, "subscriptions", required=required)
    for column, dtype in (("ended_at", "datetime64[us]"), ("plan", "str")):
        if column not in subs.columns:
            subs[column] = pd.Series(None, index=subs.index, dtype=dtype)
    subs = subs.assign(
        raw_id=_text(subs["raw_id"]),
        customer_id=_text(subs["customer_id"]),
        started_at=_times(subs["started_at"]),
        ended_at=_times(subs["ended_at"]),
        mrr=_numbers(subs["mrr"]),
        plan=_text(subs["plan"]),
    )
    raw_names = {"customer_id": "account_id", "started_at": "start_date", "mrr": "mrr_amount"}
    subs = _drop_missing(subs, raw_names, "subscriptions", report)
    negative = subs["mrr"] < 0
    report.drop("subscriptions with a negative MRR", int(negative.sum()))
    backwards = subs["ended_at"] < subs["started_at"]
    report.drop("subscriptions that end before they start", int(backwards.sum()))
    return subs[~negative & ~backwards].reset_index(drop=True)


def split_concurrent_subscriptions(
    subscriptions: pd.DataFrame, *, churn_events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Cut possibly overlapping subscriptions into non-overlapping spells of constant total MRR.

    Parameters
    ----------
    subscriptions : DataFrame
        ``customer_id``, ``started_at``, ``ended_at`` (NaT = still active), ``mrr`` and ``plan``;
        one customer may hold several subscriptions at once.
    churn_events : DataFrame, optional
        ``customer_id``, ``churned_at``, ``reason``: a spell after which the customer holds nothing
        takes the reason of the nearest event within ``CHURN_MATCH_DAYS`` days of its end.

    Returns
    -------
    DataFrame
        One row per spell: ``customer_id``, ``subscription_id`` (``<customer_id>/<n>``),
        ``started_at``, ``ended_at``, ``mrr`` (summed over the active subscriptions), ``plan`` (that
        of the largest one), ``end_reason`` and ``n_subscriptions``.

    Examples
    --------
    >>> subs = pd.DataFrame({
    ...     "customer_id": ["a", "a"], "plan": ["Basic", "Pro"], "mrr": [10.0, 30.0],
    ...     "started_at": pd.to_datetime(["2024-01-01", "2024-02-01"]),
    ...     "ended_at": pd.to_datetime(["2024-03-01", None])})
    >>> split_concurrent_subscriptions(subs)[["started_at", "ended_at", "mrr", "plan", "end_reason"]]
      started_at   ended_at   mrr   plan end_reason
    0 2024-01-01 2024-02-01  10.0  Basic    upgrade
    1 2024-02-01 2024-03-01  40.0    Pro  downgrade
    2 2024-03-01        NaT  30.0    Pro        NaN
    """
    pieces = _spell_pieces(subscriptions)
    prev = pieces.groupby("customer_id", sort=False)[["until", "mrr", "plan"]].shift(1)
    new = (prev["until"] != pieces["at"]) | (prev["mrr"] != pieces["mrr"]) | (prev["plan"] != pieces["plan"])
    spell = new.astype("int64").groupby(pieces["customer_id"]).cumsum()
    spells = (
        pieces.groupby(["customer_id", spell], sort=False)
        .agg(
            started_at=("at", "first"),
            ended_at=("until", "last"),
            mrr=("mrr", "first"),
            plan=("plan", "first"),
            n_subscriptions=("n", "max"),
        )
        .reset_index(level=0)
        .reset_index(drop=True)
    )
    spells["plan"] = spells["plan"].replace("", pd.NA)
    spells["end_reason"] = _end_reasons(spells, churn_events)
    number = spells.groupby("customer_id").cumcount() + 1
    spells.insert(1, "subscription_id", spells["customer_id"].astype("str") + "/" + number.astype("str"))
    return spells[
        [
            "customer_id",
            "subscription_id",
            "started_at",
            "ended_at",
            "mrr",
            "plan",
            "end_reason",
            "n_subscriptions",
        ]
    ]


def _spell_pieces(subs: pd.DataFrame) -> pd.DataFrame:
    """The intervals between an account's successive start/end dates, with what is active in each."""
    subs = subs[["customer_id", "started_at", "ended_at", "mrr", "plan"]].assign(
        plan=lambda f: f["plan"].astype("str").fillna("")
    )
    points = (
        pd.concat(
            [
                subs[["customer_id", "started_at"]].set_axis(["customer_id", "at"], axis=1),
                subs[["customer_id", "ended_at"]].set_axis(["customer_id", "at"], axis=1).dropna(),
            ]
        )
        .drop_duplicates()
        .sort_values(["customer_id", "at"])
    )
    points["until"] = points.groupby("customer_id")["at"].shift(-1)
    pairs = points.merge(subs, on="customer_id")
    active = pairs[
        (pairs["started_at"] <= pairs["at"]) & (pairs["ended_at"].isna() | (pairs["ended_at"] > pairs["at"]))
    ]
    # the plan of a piece is that of its largest subscription (the latest one on a tie)
    active = active.sort_values(
        ["customer_id", "at", "mrr", "started_at"], ascending=[True, True, False, False]
    )
    return (
        active.groupby(["customer_id", "at"], sort=True)
        .agg(until=("until", "first"), mrr=("mrr", "sum"), plan=("plan", "first"), n=("mrr", "size"))
        .reset_index()
    )


def _end_reasons(spells: pd.DataFrame, churn_events: pd.DataFrame | None) -> pd.Series:
    following = spells.groupby("customer_id", sort=False)[["started_at", "mrr"]].shift(-1)
    direct = following["started_at"] == spells["ended_at"]
    change = np.select(
        [following["mrr"] > spells["mrr"], following["mrr"] < spells["mrr"]],
        ["upgrade", "downgrade"],
        default="plan change",
    )
    lapsed = spells["ended_at"].notna() & ~direct
    churned = _nearest_churn_reason(spells[lapsed], churn_events)
    reasons = pd.Series(pd.NA, index=spells.index, dtype="str")
    reasons[direct] = pd.Series(change, index=spells.index)[direct]
    reasons[lapsed] = churned
    return reasons


def _nearest_churn_reason(ended: pd.DataFrame, churn_events: pd.DataFrame | None) -> pd.Series:
    fallback = pd.Series("ended", index=ended.index, dtype="str")
    if churn_events is None or ended.empty or "reason" not in churn_events.columns:
        return fallback
    left = ended[["customer_id", "ended_at"]].reset_index().sort_values("ended_at")
    right = churn_events[["customer_id", "churned_at", "reason"]].dropna().sort_values("churned_at")
    matched = pd.merge_asof(
        left,
        right,
        left_on="ended_at",
        right_on="churned_at",
        by="customer_id",
        direction="nearest",
        tolerance=pd.Timedelta(days=CHURN_MATCH_DAYS),
    ).set_index("index")["reason"]
    return matched.reindex(ended.index).fillna(fallback).astype("str")


def _saas_tickets(raw: pd.DataFrame, report: ImportReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    tickets = _pick(raw, _TICKETS, "support tickets", required=("account_id", "submitted_at"))
    tickets["customer_id"] = _text(tickets["customer_id"])
    tickets["opened_at"] = _times(tickets["opened_at"])
    for column, convert in (("resolved_at", _times), ("ticket_id", _text), ("category", _text)):
        if column in tickets.columns:
            tickets[column] = convert(tickets[column])
    if "is_complaint" in tickets.columns:
        tickets["is_complaint"] = _flags(tickets["is_complaint"])
    raw_names = {"customer_id": "account_id", "opened_at": "submitted_at"}
    tickets = _drop_missing(tickets, raw_names, "support tickets", report)
    tickets = _drop_repeated(tickets, "ticket_id", "support tickets", report)
    if "resolved_at" in tickets.columns:
        backwards = tickets["resolved_at"] < tickets["opened_at"]
        report.drop("support tickets closed before they were opened", int(backwards.sum()))
        tickets = tickets[~backwards]
    surveys = _saas_surveys(tickets, report) if "score" in tickets.columns else None
    tickets = tickets.drop(columns=["score"], errors="ignore").reset_index(drop=True)
    return tickets, surveys if surveys is not None else _empty_surveys()


def _saas_surveys(tickets: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    low, high = SCORE_RANGES["csat"]
    answered = tickets["resolved_at"] if "resolved_at" in tickets.columns else tickets["opened_at"]
    surveys = pd.DataFrame(
        {
            "customer_id": tickets["customer_id"],
            "answered_at": answered.fillna(tickets["opened_at"]),
            "kind": "csat",
            "score": _numbers(tickets["score"]),
        }
    )
    missing = surveys["score"].isna()
    report.drop("support tickets without a satisfaction score (no survey)", int(missing.sum()))
    outside = ~missing & ~surveys["score"].between(low, high)
    report.drop(f"satisfaction scores outside {low:g}-{high:g} (no survey)", int(outside.sum()))
    return surveys[~missing & ~outside].reset_index(drop=True)


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
            "customer_id": _text(usage["raw_id"]).map(owners),
            "occurred_at": _times(usage["occurred_at"]),
            "event": _text(usage["event"]),
            "value": _numbers(usage["value"]) if "value" in usage.columns else np.nan,
        }
    )
    unknown = activity["customer_id"].isna()
    report.drop("feature-usage rows of an unknown subscription", int(unknown.sum()))
    raw_names = {"occurred_at": "usage_date", "event": "feature_name"}
    activity = _drop_missing(activity[~unknown], raw_names, "feature-usage rows", report)
    return activity.reset_index(drop=True)


def _saas_churn_events(raw: pd.DataFrame | None, report: ImportReport) -> pd.DataFrame | None:
    if raw is None:
        return None
    churn = _pick(raw, _CHURN_EVENTS, "churn events", required=("account_id", "churn_date"))
    churn["customer_id"] = _text(churn["customer_id"])
    churn["churned_at"] = _times(churn["churned_at"])
    for column in ("reason", "feedback", "churn_event_id"):
        if column in churn.columns:
            churn[column] = _text(churn[column])
    for column in ("preceding_upgrade", "preceding_downgrade", "is_reactivation"):
        if column in churn.columns:
            churn[column] = _flags(churn[column])
    if "refund_amount" in churn.columns:
        churn["refund_amount"] = _numbers(churn["refund_amount"])
    churn = _drop_missing(
        churn, {"customer_id": "account_id", "churned_at": "churn_date"}, "churn events", report
    )
    return churn.sort_values(["churned_at", "customer_id"], kind="stable").reset_index(drop=True)


def _known_customers(
    frame: pd.DataFrame, customers: pd.DataFrame, what: str, report: ImportReport
) -> pd.DataFrame:
    """Leave out rows of accounts missing from the accounts table (counted)."""
    unknown = ~frame["customer_id"].isin(customers["customer_id"])
    report.drop(f"{what}: rows of accounts missing from the accounts table", int(unknown.sum()))
    return frame[~unknown].reset_index(drop=True)


# ---------------------------------------------------------------------- customer snapshots
#: Label columns recognised without ``label=`` (compared in lower case).
KNOWN_LABELS = ("churn", "churned", "churn_flag", "exited")
_MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null"})


@overload
def import_snapshot(
    source: Source | pd.DataFrame,
    *,
    label: str | None = ...,
    id_col: str | None = ...,
    return_report: Literal[False] = ...,
) -> pd.DataFrame: ...


@overload
def import_snapshot(
    source: Source | pd.DataFrame,
    *,
    label: str | None = ...,
    id_col: str | None = ...,
    return_report: Literal[True],
) -> tuple[pd.DataFrame, ImportReport]: ...


def import_snapshot(
    source: Source | pd.DataFrame,
    *,
    label: str | None = None,
    id_col: str | None = None,
    return_report: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, ImportReport]:
    """Read a one-row-per-customer table with a churn label and clean it for training.

    Parameters
    ----------
    source : path or DataFrame
        A CSV or Parquet file (or a DataFrame), one row per customer.
    label : str, optional
        The label column. Default: the one column named ``Churn``, ``Churned``, ``churn_flag`` or
        ``Exited`` (in any case).
    id_col : str, optional
        The customer id column; checked to be present, complete and unique, and kept as text.
    return_report : bool, default False
        Also return an :class:`ImportReport` (rows read, rows without a label, blanks per column).

    Returns
    -------
    DataFrame
        The table with the label as 0/1 integers (yes/no, true/false and 1/0 are understood;
        rows without a label are left out and counted), and every text column whose non-blank
        values are all numbers converted to numbers (blanks become NaN, counted per column).

    Examples
    --------
    >>> raw = pd.DataFrame({"id": ["a", "b", "c"], "TotalCharges": ["29.85", " ", "108.15"],
    ...                     "Churn": ["No", "Yes", "no"]})
    >>> import_snapshot(raw, id_col="id")
      id  TotalCharges  Churn
    0  a         29.85      0
    1  b           NaN      1
    2  c        108.15      0
    """
    started = time.perf_counter()
    raw = _read_snapshot(source)
    report = ImportReport(_describe(source), rows_read={"rows": len(raw)})
    label = _snapshot_label(raw, label)
    if id_col is not None:
        raw[id_col] = _snapshot_ids(raw, id_col)
    frame = raw.apply(lambda col: col if col.name in (label, id_col) else _snapshot_column(col, report))
    frame[label] = _binary_label(frame[label], label)
    missing = frame[label].isna()
    report.drop(f"rows without a value in the label column {label!r}", int(missing.sum()))
    frame = frame[~missing].astype({label: "int64"}).reset_index(drop=True)
    report.rows_out = {"rows": len(frame), "churners": int(frame[label].sum())}
    report.seconds = time.perf_counter() - started
    return (frame, report) if return_report else frame


def _read_snapshot(source: Source | pd.DataFrame) -> pd.DataFrame:
    frame = _read_raw(source, "customer snapshot")
    if frame.empty:
        raise ChurnriskError(f"{_describe(source)} has no rows. Suggestion: check the file.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _snapshot_label(frame: pd.DataFrame, label: str | None) -> str:
    if label is not None:
        if label not in frame.columns:
            raise ChurnriskError(
                f"the label column {label!r} is not in the table; found {list(frame.columns)}. "
                "Suggestion: pass --label with one of these names."
            )
        return label
    found = [c for c in frame.columns if c.lower() in KNOWN_LABELS]
    if len(found) != 1:
        what = "no column" if not found else f"several columns {found}"
        raise ChurnriskError(
            f"cannot tell the label column: {what} named like {list(KNOWN_LABELS)}; found "
            f"{list(frame.columns)}. Suggestion: pass --label COLUMN."
        )
    return found[0]


def _snapshot_ids(frame: pd.DataFrame, id_col: str) -> pd.Series:
    if id_col not in frame.columns:
        raise ChurnriskError(
            f"the id column {id_col!r} is not in the table; found {list(frame.columns)}. "
            "Suggestion: pass --id with one of these names, or leave it out."
        )
    ids = _text(frame[id_col].astype("object").map(str, na_action="ignore"))
    problems = {"missing": int(ids.isna().sum()), "repeated": int(ids.dropna().duplicated().sum())}
    if any(problems.values()):
        examples = ids[ids.duplicated(keep=False) & ids.notna()].unique()[:5].tolist()
        raise ChurnriskError(
            f"the id column {id_col!r} has {problems['missing']:,} missing and {problems['repeated']:,} "
            f"repeated values (e.g. {examples}). Suggestion: ids must be unique; pass another --id."
        )
    return ids


def _snapshot_column(values: pd.Series, report: ImportReport) -> pd.Series:
    """Numbers from numeric-looking text (blanks as NaN, counted); other columns as they are."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        report.missing[str(values.name)] = int(values.isna().sum())
        return values
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values
    text = _text(values.astype("object").map(str, na_action="ignore"))
    blank = text.isna() | text.str.lower().isin(_MISSING_TEXT)
    numbers = pd.to_numeric(text.mask(blank), errors="coerce")
    if blank.all() or numbers.isna().sum() > blank.sum():
        report.missing[str(values.name)] = int(blank.sum())
        return text.mask(blank)
    report.missing[str(values.name)] = int(blank.sum())
    return numbers


def _binary_label(values: pd.Series, label: str) -> pd.Series:
    flags = _flags(values)
    text = _text(values.astype("object").map(str, na_action="ignore"))
    unknown = flags.isna() & text.notna()
    if unknown.any():
        raise ChurnriskError(
            f"the label column {label!r} has values that are not yes/no, true/false or 1/0: "
            f"{text[unknown].unique()[:5].tolist()} ({int(unknown.sum()):,} rows). "
            "Suggestion: pass the right column with --label."
        )
    return flags.astype("Int64")
