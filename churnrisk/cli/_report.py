"""``churnrisk report``: one self-contained HTML file to hand to people who do not run Python."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnrisk.cli._app import app, console, user_errors
from churnrisk.cli._options import AsOfOpt, ConfigOpt, DataArg, EncodingOpt, ModelArg, OverwriteOpt, TrustOpt
from churnrisk.validation import load_store

HtmlOpt = Annotated[
    Path,
    typer.Option("--output", "-o", help="The HTML file to write (e.g. report.html).", show_default=False),
]
TopOpt = Annotated[int, typer.Option("--top", min=1, help="Customers listed in the at-risk table.")]


@app.command("report")
def report_command(
    model: ModelArg,
    data: DataArg,
    output: HtmlOpt,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    top: TopOpt = 50,
    overwrite: OverwriteOpt = False,
    trust_pickle: TrustOpt = False,
) -> None:
    """Write an HTML report: churn-rate history, model quality against baselines, the customers at
    risk with their reasons, and the revenue at stake by segment.

    The file has its pictures and style inside it: it opens offline, in any browser.
    """
    from churnrisk.modelfile import load_model  # scikit-learn: loaded only when a command needs it
    from churnrisk.report import write_report

    with user_errors():
        fitted = load_model(model, trust_pickle=trust_pickle)
        store = load_store(data, config=config, as_of=as_of, encoding=encoding)
        path = write_report(fitted, store, output, as_of=as_of, top_n=top, overwrite=overwrite)
    console.print(f"Report written to [bold]{path}[/bold]", highlight=False)
