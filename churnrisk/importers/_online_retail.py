"""The UCI "Online Retail" invoice lines as ``customers``, ``orders`` and ``returns``
(the rules: see the package docstring)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from churnrisk.importers._common import (
    ImportReport,
    ImportResult,
    Source,
    _customer_ids,
    _describe,
    _drop_missing,
    _finish,
    _leave_out,
    _numbers,
    _read_raw,
    _require,
    _text,
    _times,
)

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
    lines = _leave_out(lines, lines["customer_id"].isna(), "invoice lines without a CustomerID", report)
    raw_names = {"invoice": "InvoiceNo", "at": "InvoiceDate", "quantity": "Quantity", "price": "UnitPrice"}
    lines = _drop_missing(lines, raw_names, "invoice lines", report)
    adjustment = lines["kind"] == "adjustment"
    lines = _leave_out(
        lines, adjustment, "lines of adjustment invoices (neither a sale nor a 'C' cancellation)", report
    )
    bad_sale = (lines["kind"] == "sale") & ((lines["quantity"] <= 0) | (lines["price"] < 0))
    lines = _leave_out(lines, bad_sale, "sale lines with a quantity <= 0 or a negative price", report)
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
    refunds = cancellations.assign(refund=-cancellations["value"])
    negative = refunds["refund"] < 0
    kept = _leave_out(refunds, negative, "cancelled invoices with a negative refunded value", report)
    return pd.DataFrame(
        {
            "customer_id": kept["customer_id"],
            "return_id": kept["invoice"],
            "returned_at": kept["at"],
            "amount": kept["refund"].round(4) + 0.0,  # + 0.0 turns -0.0 into 0.0
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
