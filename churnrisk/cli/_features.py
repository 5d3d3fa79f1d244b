"""Commands about point-in-time data for models: features, labels, training sets (DESIGN §3-4)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from churnrisk._io import keyed
from churnrisk.cli._app import (
    DATE_FORMATS,
    ConfigOpt,
    DataArg,
    EncodingOpt,
    OutputOpt,
    OverwriteOpt,
    TableOpt,
    app,
    console,
    err_console,
    frame_table,
    user_errors,
)
from churnrisk.database import is_database_url, write_output
from churnrisk.features import DEFAULT_WINDOWS, build_features, build_features_partitioned, feature_inputs
from churnrisk.labels import label_end, make_labels
from churnrisk.training import (
    TrainingSetSummary,
    append_training_set,
    make_cutoffs,
    training_inputs,
    write_training_set,
)
from churnrisk.validation import load_store


class Definition(StrEnum):
    subscription = "subscription"
    inactivity = "inactivity"


class Engine(StrEnum):
    default = "default"
    spark = "spark"


EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="default: in-process. spark: the same definitions on Apache Spark "
        '(pip install "churnrisk[spark]"); output must be .parquet (a Parquet folder).',
    ),
]


def _on_spark(kind: str, data: str, cutoffs: object, output: str | Path | None, **options: Any) -> None:
    """Run one command on the Spark engine: write ``output`` (a Parquet folder) or show the result."""
    from churnrisk.spark import run

    frame = run(kind, data, cutoffs, output=output, **options)
    if frame is None:
        err_console.print(f"Wrote a Parquet folder to {output}", highlight=False)
        return
    console.print(frame_table(frame.reset_index() if kind != "training" else frame))


def _folder_engine(data: str, engine: Engine, out_of_core: bool = False) -> None:
    """The Spark engine and --out-of-core read files; a database is read by the default engine."""
    if is_database_url(data) and (engine is Engine.spark or out_of_core):
        option = "--engine spark" if engine is Engine.spark else "--out-of-core"
        raise typer.BadParameter(
            f"{option} reads a folder of files; a database URL works with the default engine "
            "(which leaves the events after the cutoff on the server)",
            param_hint="DATA",
        )


def _date_option(name: str, text: str) -> object:
    return typer.Option(name, formats=DATE_FORMATS, help=text, show_default=False)


CutoffOpt = Annotated[
    datetime, _date_option("--cutoff", "Features see events up to this instant (YYYY-MM-DD).")
]
WindowsOpt = Annotated[
    str,
    typer.Option("--windows", help="Look-back windows in days, comma-separated."),
]
DefinitionOpt = Annotated[
    Definition, typer.Option("--definition", help="Churn definition.", show_default=False)
]
HorizonOpt = Annotated[int, typer.Option("--horizon", min=1, help="Days in which churn is looked for.")]
LookbackOpt = Annotated[
    int | None,
    typer.Option(
        "--lookback", min=1, help="inactivity: eligible if ordered this many days before (default: horizon)."
    ),
]
LeadOpt = Annotated[int, typer.Option("--lead-time", min=0, help="Days between the cutoff and the horizon.")]
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


def _write_or_show(frame: pd.DataFrame, output: str | None, overwrite: bool, table: str | None) -> None:
    if output is not None:
        where = write_output(frame, output, table=table, overwrite=overwrite)
        err_console.print(f"Wrote {len(frame):,} rows x {frame.shape[1]} columns to {where}", highlight=False)


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
    engine: EngineOpt = Engine.default,
    out_of_core: OutOfCoreOpt = False,
    partitions: PartitionsOpt = None,
) -> None:
    """Point-in-time features per customer at a cutoff (summary on screen, or the table with -o)."""
    window_list = _windows(windows)
    _folder_engine(data, engine, out_of_core or partitions is not None)
    if out_of_core or partitions is not None:
        if output is None or engine is Engine.spark:
            raise typer.BadParameter(
                "needs --output FILE.parquet and the default engine", param_hint="--out-of-core"
            )
        with user_errors(), err_console.status("Building features bucket by bucket..."):
            result = build_features_partitioned(
                data,
                cutoff,
                output=output,
                windows=window_list,
                partitions=partitions,
                overwrite=overwrite,
                config=config,
                encoding=encoding,
            )
        err_console.print(
            f"Wrote {result.rows:,} rows x {result.columns} columns to {result.path} "
            f"({result.partitions} customer buckets)",
            highlight=False,
        )
        return
    if engine is Engine.spark:
        with user_errors():
            _on_spark(
                "features",
                data,
                cutoff,
                output,
                overwrite=overwrite,
                config=config,
                encoding=encoding,
                windows=window_list,
            )
        return
    with user_errors(), err_console.status("Building features..."):
        store = load_store(data, config=config, encoding=encoding, columns=feature_inputs(), until=cutoff)
        frame = build_features(store, cutoff, windows=window_list)
    if output is not None:
        with user_errors():
            _write_or_show(keyed(frame), output, overwrite, table)
        return
    console.print(f"{len(frame):,} customers, {frame.shape[1]} features at {cutoff:%Y-%m-%d}")
    console.print(frame_table(_summary(frame), max_rows=200))


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
    definition: DefinitionOpt,
    lookback: LookbackOpt = None,
    lead_time: LeadOpt = 0,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    table: TableOpt = None,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    engine: EngineOpt = Engine.default,
) -> None:
    """Churn labels at a cutoff: churn rate, counts, and how many customers are censored."""
    _folder_engine(data, engine)
    if engine is Engine.spark:
        with user_errors():
            _on_spark(
                "labels",
                data,
                cutoff,
                output,
                overwrite=overwrite,
                config=config,
                encoding=encoding,
                definition=definition.value,
                horizon=horizon,
                lookback=lookback,
                lead_time=lead_time,
            )
        return
    with user_errors():
        # the labels read nothing after the horizon's end (the end of the data is still known)
        until = label_end(cutoff, horizon=horizon, lead_time=lead_time)
        store = load_store(data, config=config, encoding=encoding, until=until)
        labels = make_labels(
            store,
            cutoff,
            definition=definition.value,
            horizon=horizon,
            lookback=lookback,
            lead_time=lead_time,
        )
        _write_or_show(keyed(labels), output, overwrite, table)
    churned = int(labels["churned"].sum())
    rate = f"{churned / len(labels):.2%}" if len(labels) else "n/a"
    console.print(
        f"cutoff {cutoff:%Y-%m-%d}, {definition.value}, horizon {horizon} days: "
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
    first_cutoff: Annotated[datetime, _date_option("--first-cutoff", "First cutoff (YYYY-MM-DD).")],
    last_cutoff: Annotated[datetime, _date_option("--last-cutoff", "Last cutoff (YYYY-MM-DD).")],
    horizon: HorizonOpt,
    definition: DefinitionOpt,
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
    engine: EngineOpt = Engine.default,
) -> None:
    """Features and labels stacked over many cutoffs, keyed by (customer_id, cutoff)."""
    _folder_engine(data, engine)
    options = {
        "definition": definition.value,
        "horizon": horizon,
        "lookback": lookback,
        "lead_time": lead_time,
        "windows": _windows(windows),
    }
    if engine is Engine.spark:
        if append:
            raise typer.BadParameter("--append is not available on the Spark engine", param_hint="--append")
        with user_errors():
            cutoffs = make_cutoffs(first_cutoff, last_cutoff, every=every)
            _on_spark(
                "training",
                data,
                cutoffs,
                output,
                overwrite=overwrite,
                config=config,
                encoding=encoding,
                **options,
            )
        return
    with user_errors():
        until = label_end(last_cutoff, horizon=horizon, lead_time=lead_time)
        store = load_store(data, config=config, encoding=encoding, columns=training_inputs(), until=until)
        cutoffs = make_cutoffs(first_cutoff, last_cutoff, every=every)
        with _progress() as bar:
            task = bar.add_task("cutoffs", total=len(cutoffs))
            progress = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
            if append:
                summary = append_training_set(output, store, cutoffs, progress=progress, **options)  # type: ignore[arg-type]
            else:
                summary = write_training_set(
                    output,
                    store,
                    cutoffs,
                    overwrite=overwrite,
                    progress=progress,
                    **options,  # type: ignore[arg-type]
                )
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
