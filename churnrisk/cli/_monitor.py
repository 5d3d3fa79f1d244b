"""``churnrisk monitor``: did past scores come true, are the inputs still what the model learned from?

Exit codes a scheduler can act on: 0 healthy, 3 when an alert fires, 1 for errors, 2 for usage.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from churnrisk.cli._app import app, console, frame_table, print_json, user_errors
from churnrisk.cli._options import (
    DATE_FORMATS,
    AsOfOpt,
    ConfigOpt,
    DataArg,
    EncodingOpt,
    ModelArg,
    OverwriteOpt,
    ReportFormatOpt,
    TrustOpt,
)

#: Exit code when at least one alert fires (1 and 2 are errors and usage).
ALERT_EXIT = 3


@app.command("monitor")
def monitor_command(
    model_path: ModelArg,
    data: DataArg,
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since", formats=DATE_FORMATS, help="First backtest cutoff (default: after training)."
        ),
    ] = None,
    every: Annotated[
        str, typer.Option("--every", help="Spacing of the backtest cutoffs (e.g. 1M, 2W).")
    ] = "1M",
    scores: Annotated[
        Path | None, typer.Option("--scores", help="Folder of past `churnrisk score` files to check.")
    ] = None,
    fmt: ReportFormatOpt = "table",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write an HTML monitoring page (e.g. monitor.html)."),
    ] = None,
    max_gap: Annotated[
        float | None,
        typer.Option("--max-gap", min=0, help="Alert: |predicted - observed| churn rate above this [0.03]."),
    ] = None,
    auc_margin: Annotated[
        float | None,
        typer.Option("--auc-margin", min=0, help="Alert: ROC AUC this far below the tested AUC [0.05]."),
    ] = None,
    max_psi: Annotated[
        float | None, typer.Option("--max-psi", min=0, help="Alert: a feature's PSI above this [0.25]...")
    ] = None,
    min_effect: Annotated[
        float | None,
        typer.Option(
            "--min-effect", min=0, help="...when its shift moves the mean predicted churn this much [0.02]."
        ),
    ] = None,
    stale_days: Annotated[
        int | None,
        typer.Option("--stale-days", min=0, help="Alert: a table's last event this many days old [14]."),
    ] = None,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
    trust_pickle: TrustOpt = False,
) -> None:
    """Backtest past cutoffs, check input drift and table freshness, raise alerts.

    Exit code 0 when healthy, 3 when an alert fires (1: an error, 2: bad usage).
    """
    from churnrisk._io import check_writable
    from churnrisk.modelfile import load_model
    from churnrisk.monitoring import Thresholds, monitor
    from churnrisk.report import write_monitoring
    from churnrisk.validation import load_store

    with user_errors():
        if output is not None:
            check_writable(output, overwrite=overwrite)  # before the work, not after it
        limits = Thresholds.given(
            max_gap=max_gap,
            auc_margin=auc_margin,
            max_psi=max_psi,
            min_effect=min_effect,
            stale_days=stale_days,
        )
        store = load_store(data, config=config, as_of=as_of, encoding=encoding)
        result = monitor(
            load_model(model_path, trust_pickle=trust_pickle),
            store,
            since=since,
            every=every,
            as_of=as_of,
            scores=scores,
            thresholds=limits,
        )
        if output is not None:
            write_monitoring(result, output, overwrite=overwrite)
    if fmt == "json":
        print_json(result.to_dict())
    else:
        _print(result)
    if output is not None and fmt == "table":
        console.print(f"Monitoring page written to [bold]{output}[/bold]", highlight=False)
    if not result.healthy:
        raise typer.Exit(code=ALERT_EXIT)


def _print(result) -> None:
    backtest = result.cutoffs.drop(columns=["brier", "lift_at_10pct"], errors="ignore")
    backtest["n"] = backtest["n"].astype(object).where(backtest["n"].notna(), None)  # pending: blank
    console.print(
        frame_table(backtest, title=f"Backtest of {result.model_name}, as of {result.as_of.date()}")
    )
    if not result.drift.empty:
        top = result.drift.drop(columns=["family"]).head(15)
        console.print(frame_table(top, title="Input drift of the most influential features"))
    console.print(frame_table(result.freshness, title="Table freshness"))
    if not result.past_scores.empty:
        console.print(frame_table(result.past_scores, title="Past score files"))
    for note in result.notes:
        console.print(f"[dim]{note}[/dim]", highlight=False)
    if result.healthy:
        console.print("[green]Healthy:[/green] no alert.", highlight=False)
        return
    for alert in result.alerts.itertuples(index=False):
        console.print(
            f"[yellow]alert[/yellow] {alert.kind}: {alert.message}", highlight=False, soft_wrap=True
        )
    console.print(f"[yellow]{len(result.alerts)} alert(s)[/yellow]", highlight=False)
