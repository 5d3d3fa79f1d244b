"""Commands about past churn: rates, repeat purchases, cohorts, CLV, involuntary churn (DESIGN §2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import pandas as pd
import typer

from churnrisk._io import write_table
from churnrisk.cli._app import _cell, app, console, err_console, frame_table, user_errors
from churnrisk.cli._options import (
    DEFAULT_INACTIVITY_DAYS,
    AsOfOpt,
    ByOpt,
    ConfigOpt,
    DataArg,
    DefinitionOpt,
    EncodingOpt,
    EndOpt,
    GapOpt,
    InactivityOpt,
    OutputOpt,
    OverwriteOpt,
    PeriodOpt,
    RatesFormat,
    RatesFormatOpt,
    RatesLookbackOpt,
    StartOpt,
    TableOpt,
)
from churnrisk.database import write_output
from churnrisk.validation import load_store

#: Columns shown on screen by ``churnrisk rates``; --format csv / json and -o carry all of them.
SCREEN_COLUMNS = [
    "period_start",
    "customers_start",
    "customers_new",
    "customers_lost",
    "customers_end",
    "lost_churn_rate",
    "gross_revenue_churn",
    "revenue_churn",
]


T = TypeVar("T")


def _measure(data: str, config: Any, encoding: str | None, measure: Callable[[Any], T]) -> T:
    """The one path of every command here: read and validate the store, then measure it."""
    with user_errors():
        return measure(load_store(data, config=config, encoding=encoding))


def _churn(
    definition: str | None, reactivation_gap: float, lookback: int, inactivity_days: int | None
) -> dict[str, Any]:
    """The churn definition options, as every rates function takes them (``--inactivity-days`` is
    the old name of ``--lookback``)."""
    return {
        "definition": definition,
        "reactivation_gap_days": reactivation_gap,
        "lookback": lookback if inactivity_days is None else inactivity_days,
    }


def _show(
    frame: pd.DataFrame,
    fmt: RatesFormat,
    output: str | None,
    overwrite: bool,
    *,
    title: str,
    screen: list[str] | None = None,
    table_name: str | None = None,
) -> None:
    """Write ``frame`` to ``output`` (a file, or ``table_name`` of a database) if given, and render it."""
    if output is not None:
        with user_errors():
            where = write_output(frame, output, table=table_name, overwrite=overwrite)
        err_console.print(f"Wrote {len(frame):,} rows to {where}", highlight=False)
    if fmt == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        typer.echo(json.dumps(json.loads(frame.to_json(orient="records", date_format="iso")), indent=2))
    else:
        shown = [c for c in frame.columns if screen is None or c in screen or c not in _known()]
        table = frame_table(frame[shown], title=title)
        hidden = len(frame.columns) - len(shown)
        if hidden:
            table.caption = f"{hidden} more columns with --format csv or -o FILE"
        console.print(table)


def _known() -> set[str]:
    from churnrisk.rates._churn import CUSTOMER_COLUMNS
    from churnrisk.rates._revenue import MRR_COLUMNS, ORDER_REVENUE_COLUMNS

    return {*CUSTOMER_COLUMNS, *MRR_COLUMNS, *ORDER_REVENUE_COLUMNS}


@app.command("rates")
def rates_command(
    data: DataArg,
    period: PeriodOpt = "month",
    start: StartOpt = None,
    end: EndOpt = None,
    by: ByOpt = None,
    definition: DefinitionOpt = None,
    reactivation_gap: GapOpt = 0,
    lookback: RatesLookbackOpt = DEFAULT_INACTIVITY_DAYS,
    inactivity_days: InactivityOpt = None,
    fmt: RatesFormatOpt = "table",
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    table_name: TableOpt = None,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Customer and revenue churn per period, with the counts behind every rate.

    A change at instant t counts in the period with period_start < t <= period_end. Rates are
    fractions; customer_churn_rate is the net change and may be negative.
    """
    from churnrisk.rates import churn_rates  # loaded only when this command runs

    churn = _churn(definition, reactivation_gap, lookback, inactivity_days)
    measure = partial(churn_rates, period=period, start=start, end=end, by=by, **churn)
    table = _measure(data, config, encoding, measure)
    screen = [*SCREEN_COLUMNS, by or ""]
    _show(table, fmt, output, overwrite, title=f"Churn per {period}", screen=screen, table_name=table_name)


@app.command("repeat")
def repeat_command(
    data: DataArg,
    category: Annotated[
        str | None, typer.Option("--category", help="Compare with this store category's benchmark.")
    ] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    within_days: Annotated[float, typer.Option("--within-days", min=1, help="Non-repeat horizon.")] = 365,
    by: ByOpt = None,
    fmt: RatesFormatOpt = "table",
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Repeat-purchase rate, repeat-customer shares and the one-year non-repeat rate (order data)."""
    from churnrisk.rates import repeat_rates  # loaded only when this command runs

    measure = partial(repeat_rates, start=start, end=end, within_days=within_days, by=by, category=category)
    table = _measure(data, config, encoding, measure)
    if fmt == "table" and by is None:
        # one row: show it as metric / value pairs, formatted like any table cell
        table = pd.DataFrame({"metric": table.columns, "value": [_cell(v) for v in table.iloc[0]]})
    _show(table, fmt, output, overwrite, title="Repeat purchases")


@app.command("cohorts")
def cohorts_command(
    data: DataArg,
    period: PeriodOpt = "month",
    start: StartOpt = None,
    end: EndOpt = None,
    counts: Annotated[bool, typer.Option("--counts", help="Customer counts instead of shares.")] = False,
    definition: DefinitionOpt = None,
    reactivation_gap: GapOpt = 0,
    lookback: RatesLookbackOpt = DEFAULT_INACTIVITY_DAYS,
    inactivity_days: InactivityOpt = None,
    fmt: RatesFormatOpt = "table",
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Cohort retention: acquisition cohort (rows) x periods since acquisition (columns)."""
    from churnrisk.rates import cohort_retention  # loaded only when this command runs

    churn = _churn(definition, reactivation_gap, lookback, inactivity_days)
    values = "count" if counts else "share"
    measure = partial(cohort_retention, period=period, start=start, end=end, values=values, **churn)
    table = _measure(data, config, encoding, measure)
    _show(table, fmt, output, overwrite, title=f"Retention by {period} of acquisition")


@app.command("clv")
def clv_command(
    data: DataArg,
    margin: Annotated[
        float | None, typer.Option("--margin", min=0, max=1, help="Gross margin as a fraction, e.g. 0.3.")
    ] = None,
    period: PeriodOpt = "month",
    start: StartOpt = None,
    end: EndOpt = None,
    by: ByOpt = None,
    definition: DefinitionOpt = None,
    reactivation_gap: GapOpt = 0,
    lookback: RatesLookbackOpt = DEFAULT_INACTIVITY_DAYS,
    inactivity_days: InactivityOpt = None,
    fmt: RatesFormatOpt = "table",
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    per_customer: Annotated[
        bool,
        typer.Option(
            "--per-customer",
            help="One row per customer: expected orders, revenue and P(alive) over the --horizon "
            "days after --as-of.",
        ),
    ] = False,
    as_of: AsOfOpt = None,
    horizon: Annotated[
        int | None, typer.Option("--horizon", min=1, help="With --per-customer: days ahead.")
    ] = None,
    value_model: Annotated[
        Literal["auto", "bgnbd", "features"],
        typer.Option(
            "--value-model",
            help="With --per-customer, order data: bgnbd (BG/NBD + Gamma-Gamma), features, or auto "
            "(the one with the lower out-of-time error).",
        ),
    ] = "auto",
) -> None:
    """Customer lifetime value: value per period x expected lifetime (1 / churn rate).

    With --per-customer: each customer's expected value over the next --horizon days, validated out
    of time on the horizon that ends at --as-of (the test is printed on stderr).
    """
    from churnrisk.rates import customer_lifetime_value  # loaded only when this command runs

    if per_customer:
        if horizon is None:
            raise typer.BadParameter("--per-customer needs --horizon DAYS.", param_hint="--horizon")
        from churnrisk.value import predict_value

        value = partial(
            predict_value,
            horizon=horizon,
            cutoff=as_of,
            margin=margin,
            method=value_model,
            definition=definition,
        )
        forecast = _measure(data, config, encoding, value)
        _show(forecast.table, fmt, output, overwrite, title=f"Value over the next {horizon} days")
        err_console.print(f"Expected revenue from the {forecast.method} model.", highlight=False)
        if forecast.evaluation is not None:
            title = "Out-of-time check: the horizon ending at the as-of date"
            err_console.print(frame_table(forecast.evaluation.reset_index(), title=title))
        return
    churn = _churn(definition, reactivation_gap, lookback, inactivity_days)
    measure = partial(
        customer_lifetime_value, period=period, start=start, end=end, by=by, margin=margin, **churn
    )
    table = _measure(data, config, encoding, measure)
    _show(table.dropna(axis=1, how="all") if fmt == "table" else table, fmt, output, overwrite, title="CLV")


@app.command("involuntary")
def involuntary_command(
    data: DataArg,
    period: PeriodOpt = "month",
    start: StartOpt = None,
    end: EndOpt = None,
    by: ByOpt = None,
    window_days: Annotated[
        float,
        typer.Option("--window-days", min=0, help="A failed payment this close before churn caused it."),
    ] = 30,
    definition: DefinitionOpt = None,
    reactivation_gap: GapOpt = 0,
    lookback: RatesLookbackOpt = DEFAULT_INACTIVITY_DAYS,
    inactivity_days: InactivityOpt = None,
    fmt: RatesFormatOpt = "table",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the win-back list (involuntary, not back) to this file."),
    ] = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Voluntary vs involuntary churn per period; -o writes the involuntarily churned customers."""
    from churnrisk.rates import churn_by_type, winback_list  # loaded only when this command runs

    churn = {**_churn(definition, reactivation_gap, lookback, inactivity_days), "window_days": window_days}
    summary, winback = _measure(
        data,
        config,
        encoding,
        lambda store: (
            churn_by_type(store, period=period, start=start, end=end, by=by, **churn),
            None if output is None else winback_list(store, start=start, end=end, **churn),
        ),
    )
    if winback is not None and output is not None:
        with user_errors():
            write_table(winback, output, overwrite=overwrite)
        err_console.print(
            f"Wrote {len(winback):,} involuntarily churned customers to {output}", highlight=False
        )
    _show(summary, fmt, None, overwrite, title=f"Voluntary and involuntary churn per {period}")
