"""Every option shared by more than one command, declared once (typer ``Annotated`` aliases).

Choices are ``Literal`` types, so typer checks them one way: a value outside the choices is a usage
error (exit code 2) naming the option and the value given.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from churnrisk.definition import DEFAULT_INACTIVITY_DAYS, Kind

__all__ = [
    "DATE_FORMATS",
    "DEFAULT_INACTIVITY_DAYS",
    "AsOfOpt",
    "ByOpt",
    "ConfigOpt",
    "CutoffOpt",
    "DataArg",
    "DataOpt",
    "DefinitionOpt",
    "EncodingOpt",
    "EndOpt",
    "EngineOpt",
    "FileFormatOpt",
    "GapOpt",
    "HorizonOpt",
    "InactivityOpt",
    "LabelDefinitionOpt",
    "LeadOpt",
    "LookbackOpt",
    "ModelArg",
    "OutputOpt",
    "OverwriteOpt",
    "Period",
    "PeriodOpt",
    "RatesFormat",
    "RatesFormatOpt",
    "RatesLookbackOpt",
    "ReportFormatOpt",
    "StartOpt",
    "TableOpt",
    "TextFormatOpt",
    "TrustOpt",
    "WindowsOpt",
    "date_option",
]

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]

#: Period lengths of the historical rates (the keys of :data:`churnrisk.rates.PERIODS`).
Period = Literal["day", "week", "month", "quarter", "year"]
#: Where the rates commands print their table: on screen, or as CSV or JSON on stdout.
RatesFormat = Literal["table", "csv", "json"]


def date_option(name: str, text: str) -> Any:
    """A YYYY-MM-DD option without a default shown."""
    return typer.Option(name, formats=DATE_FORMATS, help=text, show_default=False)


# ---------------------------------------------------------------------- the data and the model read
# Text, not Path: a database URL (postgresql://..., duckdb:///...) would lose its "//" in a Path.
DataArg = Annotated[
    str,
    typer.Argument(
        help="Folder of event tables (<table>.csv or <table>.parquet), or a database URL "
        "(postgresql://user@host:port/db, duckdb:///path/file.duckdb).",
        show_default=False,
    ),
]
DataOpt = Annotated[
    str | None, typer.Argument(help="Folder of event tables, or a database URL.", show_default=False)
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML file mapping your table and column names.")
]
EncodingOpt = Annotated[
    str | None, typer.Option("--encoding", help="Encoding of the CSV files (default UTF-8).")
]
ModelArg = Annotated[
    Path, typer.Argument(help="A model file written by `churnrisk train` (.skops).", show_default=False)
]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust-pickle", help="Load a pickle/joblib model file. It can run any code: only if you trust it."
    ),
]

# ---------------------------------------------------------------------- instants
AsOfOpt = Annotated[
    datetime | None,
    typer.Option("--as-of", formats=DATE_FORMATS, help="Date the data is as of (YYYY-MM-DD)."),
]
CutoffOpt = Annotated[
    datetime, date_option("--cutoff", "Features see events up to this instant (YYYY-MM-DD).")
]
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

# ---------------------------------------------------------------------- the churn definition
DefinitionOpt = Annotated[
    Kind | None,
    typer.Option(
        "--definition",
        help="Churn definition (default: subscription when there is a subscriptions table, else inactivity).",
    ),
]
LabelDefinitionOpt = Annotated[
    Kind, typer.Option("--definition", help="Churn definition.", show_default=False)
]
HorizonOpt = Annotated[int, typer.Option("--horizon", min=1, help="Days in which churn is looked for.")]
LookbackOpt = Annotated[
    int | None,
    typer.Option(
        "--lookback", min=1, help="inactivity: eligible if ordered this many days before (default: horizon)."
    ),
]
LeadOpt = Annotated[int, typer.Option("--lead-time", min=0, help="Days between the cutoff and the horizon.")]
GapOpt = Annotated[
    float,
    typer.Option("--reactivation-gap", min=0, help="Subscriptions apart by fewer days are one relationship."),
]
RatesLookbackOpt = Annotated[
    int, typer.Option("--lookback", min=1, help="Order data: no order for this many days means churned.")
]
#: The old name of the rates' --lookback, still accepted (not shown in the help).
InactivityOpt = Annotated[int | None, typer.Option("--inactivity-days", min=1, hidden=True)]
PeriodOpt = Annotated[Period, typer.Option("--period", help="Length of a period.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="A customers column: one row per value.")]

# ---------------------------------------------------------------------- features
WindowsOpt = Annotated[str, typer.Option("--windows", help="Look-back windows in days, comma-separated.")]
EngineOpt = Annotated[
    Literal["default", "spark"],
    typer.Option(
        "--engine",
        help="default: in-process. spark: the same definitions on Apache Spark "
        '(pip install "churnrisk[spark]"); output must be .parquet (a Parquet folder).',
    ),
]

# ---------------------------------------------------------------------- output
OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        help="Write the result to this file (.csv or .parquet), or to a database URL with --table.",
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace the output file if it exists.")]
TableOpt = Annotated[
    str | None,
    typer.Option("--table", help="With a database URL as --output: the table to write ([schema.]name)."),
]
TextFormatOpt = Annotated[Literal["text", "json"], typer.Option("--format", help="text or json.")]
ReportFormatOpt = Annotated[Literal["table", "json"], typer.Option("--format", help="table or json.")]
RatesFormatOpt = Annotated[
    RatesFormat,
    typer.Option("--format", help="table (on screen), csv or json (on stdout)."),
]
FileFormatOpt = Annotated[
    Literal["csv", "parquet"], typer.Option("--format", help="File format of the tables written.")
]
