"""Commands about the event store itself: validate, demo data, importers."""

from __future__ import annotations

import typer
from rich.table import Table

from churnrisk.cli._app import app, console, print_json, render_problems, user_errors
from churnrisk.cli._options import AsOfOpt, ConfigOpt, DataArg, EncodingOpt, TextFormatOpt
from churnrisk.database import read_store
from churnrisk.store import read_config
from churnrisk.validation import validate


@app.command("validate")
def validate_command(
    data: DataArg,
    config: ConfigOpt = None,
    as_of: AsOfOpt = None,
    encoding: EncodingOpt = None,
    fmt: TextFormatOpt = "text",
) -> None:
    """Check an event store against the data contract and report every problem at once.

    Exit code 0 when clean (warnings allowed), 1 when there are errors, 2 for usage errors.
    """
    with user_errors():
        store = read_store(data, config=read_config(config), encoding=encoding)
        report = validate(store, as_of=as_of)
    if fmt == "json":
        print_json(report.to_dict())
    else:
        table = Table("table", "rows", title=f"Event store {store.source}")
        for name, rows in report.rows.items():
            table.add_row(name, f"{rows:,}")
        console.print(table)
        render_problems(report.problems)
        if report.ok:
            console.print(f"[green]OK[/green]: no errors, {len(report.warnings)} warning(s).")
    if not report.ok:
        raise typer.Exit(code=1)
