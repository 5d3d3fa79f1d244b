"""Commands about past churn: rates, repeat purchases, cohorts, CLV, involuntary churn (DESIGN §2)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from churnrisk._io import write_table
from churnrisk.cli._app import (
    DATE_FORMATS,
    AsOfOpt,
    ConfigOpt,
    DataArg,
    EncodingOpt,
    OutputOpt,
    OverwriteOpt,
    TableOpt,
    _cell,
    app,
    console,
    err_console,
    frame_table,
    user_errors,
)
from churnrisk.database import write_output
from churnrisk.spells import DEFAULT_INACTIVITY_DAYS
from churnrisk.validation import load_store


class Period(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


class Definition(StrEnum):
    subscription = "subscription"
    inactivity = "inactivity"


class ValueModel(StrEnum):
    auto = "auto"
    bgnbd = "bgnbd"
    features = "features"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


PeriodOpt = Annotated[Period, typer.Option("--period", help="Length of a period.")]
StartOpt = Annotated[
    datetime | None,
    typer.Option("--start", formats=DATE_FORMATS, help="First period boundary (default: start of the data)."),
]
EndOpt = Annotated[
    datetime | None,
    typer.Option(
        "--end", formats=DATE_FORMATS, help="Last instant to measure to (default: end of the data)."
    ),
]
ByOpt = Annotated[str | None, typer.Option("--by", help="A customers column: one row per value.")]
DefinitionOpt = Annotated[
    Definition | None,
    typer.Option(
        "--definition",
        help="Churn definition (default: subscription when there is a subscriptions table, else inactivity).",
    ),
]
GapOpt = Annotated[
    float,
    typer.Option("--reactivation-gap", min=0, help="Subscriptions apart by fewer days are one relationship."),
]
InactivityOpt = Annotated[
    int,
    typer.Option("--inactivity-days", min=1, help="Order data: no order for this many days means churned."),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="table (on screen), csv or json (on stdout).")]

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


def _show(
    frame: pd.DataFrame,
    fmt: Format,
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
    if fmt is Format.csv:
        typer.echo(frame.to_csv(index=False), nl=False)
    elif fmt is Format.json:
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
    period: PeriodOpt = Period.month,
    start: StartOpt = None,
    end: EndOpt = None,
    by: ByOpt = None,
    definition: DefinitionOpt = None,
    reactivation_gap: GapOpt = 0,
    inactivity_days: InactivityOpt = DEFAULT_INACTIVITY_DAYS,
    fmt: FormatOpt = Format.table,
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

    with user_errors():
        store = load_store(data, config=config, encoding=encoding)
        table = churn_rates(
            store,
            period=period.value,
            start=start,
            end=end,
            by=by,
            definition=definition.value if definition else None,
            reactivation_gap_days=reactivation_gap,
            inactivity_days=inactivity_days,
        )
    _show(
        table,
        fmt,
        output,
        overwrite,
        title=f"Churn per {period.value}",
        screen=[*SCREEN_COLUMNS, by or ""],
        table_name=table_name,
    )


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
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Repeat-purchase rate, repeat-customer shares and the one-year non-repeat rate (order data)."""
    from churnrisk.rates import repeat_rates  # loaded only when this command runs

    with user_errors():
        store = load_store(data, config=config, encoding=encoding)
        table = repeat_rates(store, start=start, end=end, within_days=within_days, by=by, category=category)
    if fmt is Format.table and by is None:
        # one row: show it as metric / value pairs, formatted like any table cell
        table = pd.DataFrame({"metric": table.columns, "value": [_cell(v) for v in table.iloc[0]]})
    _show(table, fmt, output, overwrite, title="Repeat purchases")


@app.command("cohorts")
def cohorts_command(
    data: DataArg,
    period: PeriodOpt = Period.month,
    start: StartOpt = None,
    end: EndOpt = None,
    counts: Annotated[bool, typer.Option("--counts", help="Customer counts instead of shares.")] = False,
    definition: DefinitionOpt = None,
    reactivation_gap: GapOpt = 0,
    inactivity_days: InactivityOpt = DEFAULT_INACTIVITY_DAYS,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Cohort retention: acquisition cohort (rows) x periods since acquisition (columns)."""
    from churnrisk.rates import cohort_retention  # loaded only when this command runs

    with user_errors():
        store = load_store(data, config=config, encoding=encoding)
        table = cohort_retention(
            store,
            period=period.value,
            start=start,
            end=end,
            definition=definition.value if definition else None,
            values="count" if counts else "share",
            reactivation_gap_days=reactivation_gap,
            inactivity_days=inactivity_days,
        )
    _show(table, fmt, output, overwrite, title=f"Retention by {period.value} of acquisition")


@app.command("clv")
def clv_command(
    data: DataArg,
    margin: Annotated[
        float | None, typer.Option("--margin", min=0, max=1, help="Gross margin as a fraction, e.g. 0.3.")
    ] = None,
    period: PeriodOpt = Period.month,
    start: StartOpt = None,
    end: EndOpt = None,
    by: ByOpt = None,
    definition: DefinitionOpt = None,
    reactivation_gap: GapOpt = 0,
    inactivity_days: InactivityOpt = DEFAULT_INACTIVITY_DAYS,
    fmt: FormatOpt = Format.table,
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
        ValueModel,
        typer.Option(
            "--value-model",
            help="With --per-customer, order data: bgnbd (BG/NBD + Gamma-Gamma), features, or auto "
            "(the one with the lower out-of-time error).",
        ),
    ] = ValueModel.auto,
) -> None:
    """Customer lifetime value: value per period x expected lifetime (1 / churn rate).

    With --per-customer: each customer's expected value over the next --horizon days, validated out
    of time on the horizon that ends at --as-of (the test is printed on stderr).
    """
    from churnrisk.rates import customer_lifetime_value  # loaded only when this command runs

    if per_customer:
        if horizon is None:
            raise typer.BadParameter("--per-customer needs --horizon DAYS.", param_hint="--horizon")
        _customer_value(
            data,
            horizon=horizon,
            as_of=as_of,
            margin=margin,
            method=value_model.value,
            definition=definition.value if definition else None,
            show=(fmt, output, overwrite),
            config=config,
            encoding=encoding,
        )
        return
    with user_errors():
        store = load_store(data, config=config, encoding=encoding)
        table = customer_lifetime_value(
            store,
            period=period.value,
            start=start,
            end=end,
            by=by,
            margin=margin,
            definition=definition.value if definition else None,
            reactivation_gap_days=reactivation_gap,
            inactivity_days=inactivity_days,
        )
    _show(
        table.dropna(axis=1, how="all") if fmt is Format.table else table, fmt, output, overwrite, title="CLV"
    )


def _customer_value(
    data: Any, *, show: tuple[Format, Any, bool], config: Any, encoding: Any, **options: Any
) -> None:
    from churnrisk.value import predict_value  # loaded only when this command runs

    with user_errors():
        store = load_store(data, config=config, encoding=encoding)
        forecast = predict_value(store, **options)
    fmt, output, overwrite = show
    _show(forecast.table, fmt, output, overwrite, title=f"Value over the next {options['horizon']} days")
    err_console.print(f"Expected revenue from the {forecast.method} model.", highlight=False)
    if forecast.evaluation is not None:
        title = "Out-of-time check: the horizon ending at the as-of date"
        err_console.print(frame_table(forecast.evaluation.reset_index(), title=title))


@app.command("involuntary")
def involuntary_command(
    data: DataArg,
    period: PeriodOpt = Period.month,
    start: StartOpt = None,
    end: EndOpt = None,
    by: ByOpt = None,
    window_days: Annotated[
        float,
        typer.Option("--window-days", min=0, help="A failed payment this close before churn caused it."),
    ] = 30,
    definition: DefinitionOpt = None,
    reactivation_gap: GapOpt = 0,
    inactivity_days: InactivityOpt = DEFAULT_INACTIVITY_DAYS,
    fmt: FormatOpt = Format.table,
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

    options: dict[str, Any] = {
        "definition": definition.value if definition else None,
        "window_days": window_days,
        "reactivation_gap_days": reactivation_gap,
        "inactivity_days": inactivity_days,
    }
    with user_errors():
        store = load_store(data, config=config, encoding=encoding)
        summary = churn_by_type(store, period=period.value, start=start, end=end, by=by, **options)
        winback = winback_list(store, start=start, end=end, **options) if output is not None else None
    if winback is not None and output is not None:
        with user_errors():
            write_table(winback, output, overwrite=overwrite)
        err_console.print(
            f"Wrote {len(winback):,} involuntarily churned customers to {output}", highlight=False
        )
    _show(summary, fmt, None, overwrite, title=f"Voluntary and involuntary churn per {period.value}")
