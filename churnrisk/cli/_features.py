"""Commands about point-in-time data for models: features, labels, training sets (DESIGN §3-4)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from churnrisk.cli._app import app, console, err_console, frame_table, user_errors
from churnrisk.cli._options import (
    ConfigOpt,
    CutoffOpt,
    DataArg,
    EncodingOpt,
    EngineOpt,
    GapOpt,
    HorizonOpt,
    LabelDefinitionOpt,
    LeadOpt,
    LookbackOpt,
    OutputOpt,
    OverwriteOpt,
    TableOpt,
    WindowsOpt,
    date_option,
)
from churnrisk.engines import StepRun, features_at, labels_at, training_set_over
from churnrisk.features import DEFAULT_WINDOWS
from churnrisk.training import TrainingSetSummary

OutOfCoreOpt = Annotated[
    bool,
    typer.Option(
        "--out-of-core",
        help="For stores bigger than memory: compute one bucket of customers at a time "
        "(needs --output .parquet).",
    ),
]
PartitionsOpt = Annotated[
    int | None,
    typer.Option(
        "--partitions", min=1, help="Number of customer buckets (implies --out-of-core).", show_default=False
    ),
]
DEFAULT_WINDOWS_TEXT = ",".join(str(w) for w in DEFAULT_WINDOWS)


def _windows(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise typer.BadParameter(
            f"must be positive whole days like 30,90,180,365; got {text!r}", param_hint="--windows"
        )
    return values


def _print_written(run: StepRun) -> None:
    if run.rows is None:
        err_console.print(f"Wrote a Parquet folder to {run.written}", highlight=False)
        return
    buckets = f" ({run.buckets} customer buckets)" if run.buckets else ""
    err_console.print(
        f"Wrote {run.rows:,} rows x {run.columns} columns to {run.written}{buckets}", highlight=False
    )


@app.command("features")
def features_command(
    data: DataArg,
    cutoff: CutoffOpt,
    windows: WindowsOpt = DEFAULT_WINDOWS_TEXT,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    table: TableOpt = None,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    engine: EngineOpt = "default",
    out_of_core: OutOfCoreOpt = False,
    partitions: PartitionsOpt = None,
) -> None:
    """Point-in-time features per customer at a cutoff (summary on screen, or the table with -o)."""
    window_list = _windows(windows)
    bucketed = out_of_core or partitions is not None
    with user_errors(), err_console.status(f"Building features{' bucket by bucket' if bucketed else ''}..."):
        run = features_at(
            data,
            cutoff,
            windows=window_list,
            engine=engine,
            out_of_core=out_of_core,
            partitions=partitions,
            output=output,
            table=table,
            overwrite=overwrite,
            config=config,
            encoding=encoding,
        )
    if run.frame is None or run.written is not None:
        _print_written(run)
        return
    console.print(f"{len(run.frame):,} customers, {run.frame.shape[1]} features at {cutoff:%Y-%m-%d}")
    console.print(frame_table(_summary(run.frame), max_rows=200))


def _summary(frame: pd.DataFrame) -> pd.DataFrame:
    numeric = frame.select_dtypes("number")
    return pd.DataFrame(
        {
            "feature": frame.columns,
            "missing": frame.isna().mean().to_numpy(),
            "mean": numeric.mean().reindex(frame.columns).to_numpy(),
            "max": numeric.max().reindex(frame.columns).to_numpy(),
        }
    )


@app.command("labels")
def labels_command(
    data: DataArg,
    cutoff: CutoffOpt,
    horizon: HorizonOpt,
    definition: LabelDefinitionOpt,
    lookback: LookbackOpt = None,
    lead_time: LeadOpt = 0,
    reactivation_gap: GapOpt = 0,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    table: TableOpt = None,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    engine: EngineOpt = "default",
) -> None:
    """Churn labels at a cutoff: churn rate, counts, and how many customers are censored."""
    with user_errors():
        run = labels_at(
            data,
            cutoff,
            definition=definition,
            horizon=horizon,
            lookback=lookback,
            lead_time=lead_time,
            reactivation_gap_days=reactivation_gap,
            engine=engine,
            output=output,
            table=table,
            overwrite=overwrite,
            config=config,
            encoding=encoding,
        )
    if run.written is not None:
        _print_written(run)
    labels = run.frame
    if labels is None:  # written by Spark, not collected
        return
    churned = int(labels["churned"].sum())
    rate = f"{churned / len(labels):.2%}" if len(labels) else "n/a"
    console.print(
        f"cutoff {cutoff:%Y-%m-%d}, {definition}, horizon {horizon} days: "
        f"{len(labels):,} customers labelled, {churned:,} churned (rate {rate}), "
        f"{labels.attrs['censored']:,} censored",
        highlight=False,
    )
    kinds = labels["churn_type"].value_counts()
    if len(kinds):
        console.print(", ".join(f"{k}: {v:,}" for k, v in kinds.items()), highlight=False)


@app.command("training-set")
def training_set_command(
    data: DataArg,
    first_cutoff: Annotated[datetime, date_option("--first-cutoff", "First cutoff (YYYY-MM-DD).")],
    last_cutoff: Annotated[datetime, date_option("--last-cutoff", "Last cutoff (YYYY-MM-DD).")],
    horizon: HorizonOpt,
    definition: LabelDefinitionOpt,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="A .csv or .parquet file, or any other path: a folder of Parquet files per cutoff, "
            "which --append extends by the new cutoffs only.",
        ),
    ],
    every: Annotated[str, typer.Option("--every", help="Cutoff spacing: 1M, 2W, 7D, 1Q, 1Y.")] = "1M",
    lookback: LookbackOpt = None,
    lead_time: LeadOpt = 0,
    reactivation_gap: GapOpt = 0,
    windows: WindowsOpt = DEFAULT_WINDOWS_TEXT,
    append: Annotated[
        bool,
        typer.Option(
            "--append", help="Add the cutoffs not yet stored and fill in censored labels now known."
        ),
    ] = False,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    engine: EngineOpt = "default",
) -> None:
    """Features and labels stacked over many cutoffs, keyed by (customer_id, cutoff)."""
    window_list = _windows(windows)
    with user_errors(), _progress() as bar:
        task = bar.add_task("cutoffs", total=None)
        summary = training_set_over(
            data,
            first_cutoff,
            last_cutoff,
            output=output,
            every=every,
            append=append,
            engine=engine,
            overwrite=overwrite,
            config=config,
            encoding=encoding,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            definition=definition,
            horizon=horizon,
            lookback=lookback,
            lead_time=lead_time,
            reactivation_gap_days=reactivation_gap,
            windows=window_list,
        )
    if summary is None:
        _print_written(StepRun(written=str(output)))
    else:
        _print_summary(summary)


def _print_summary(summary: TrainingSetSummary) -> None:
    changed = f"{len(summary.added)} cutoff(s) computed"
    if summary.relabelled:
        changed += f", {len(summary.relabelled)} relabelled"
    err_console.print(f"Wrote {summary.path} ({changed})", highlight=False)
    console.print(
        f"{summary.cutoffs} cutoffs, {summary.rows:,} rows, {summary.labelled:,} labelled "
        f"(churn rate {summary.churn_rate:.2%}), {summary.censored:,} censored",
        highlight=False,
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
