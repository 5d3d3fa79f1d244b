"""``churnrisk import ...``: public churn datasets into an event store or a clean training table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from churnrisk._io import write_table
from churnrisk.cli._app import app, console, frame_table, user_errors
from churnrisk.cli._options import FileFormatOpt, OverwriteOpt

if TYPE_CHECKING:  # the importers are loaded only when an import command runs
    from churnrisk.importers import ImportReport, ImportResult

import_app = typer.Typer(
    name="import",
    help="Import public churn datasets: an event store from raw records, or a clean customer table.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")

OutDirArg = Annotated[
    Path,
    typer.Argument(help="Folder to write the event tables into (created if missing).", show_default=False),
]


@import_app.command("online-retail")
def online_retail_command(
    src: Annotated[Path, typer.Argument(help="The Online Retail invoice lines (.parquet or .csv).")],
    out_dir: OutDirArg,
    overwrite: OverwriteOpt = False,
    fmt: FileFormatOpt = "csv",
) -> None:
    """Online Retail invoice lines -> customers, orders (per invoice) and returns (cancellations)."""
    from churnrisk.importers import import_online_retail

    _import_store(lambda: import_online_retail(src), out_dir, overwrite=overwrite, fmt=fmt)


@import_app.command("saas")
def saas_command(
    src_dir: Annotated[
        Path, typer.Argument(help="Folder of the SaaS CSV files (accounts, subscriptions, ...).")
    ],
    out_dir: OutDirArg,
    overwrite: OverwriteOpt = False,
    fmt: FileFormatOpt = "csv",
) -> None:
    """SaaS accounts, subscriptions, tickets, feature usage and churn events -> an event store."""
    from churnrisk.importers import import_saas

    _import_store(lambda: import_saas(src_dir), out_dir, overwrite=overwrite, fmt=fmt)


@import_app.command("snapshot")
def snapshot_command(
    src: Annotated[Path, typer.Argument(help="One row per customer with a churn label (.csv or .parquet).")],
    out_file: Annotated[Path, typer.Argument(help="The clean table to write (.csv or .parquet).")],
    label: Annotated[
        str | None, typer.Option("--label", help="The label column (default: a column named Churn).")
    ] = None,
    id_col: Annotated[
        str | None, typer.Option("--id", help="The customer id column (checked unique).")
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """A customer snapshot -> a clean table: label as 0/1, numeric text as numbers, blanks as missing."""
    from churnrisk.importers import import_snapshot

    with user_errors():
        frame, report = import_snapshot(src, label=label, customer_col=id_col, return_report=True)
        write_table(frame, out_file, overwrite=overwrite)
    _render(report, f"Wrote {out_file}")


def _import_store(
    run: Callable[[], ImportResult], out_dir: Path, *, overwrite: bool, fmt: Literal["csv", "parquet"]
) -> None:
    with user_errors():
        result = run()
        result.write(out_dir, overwrite=overwrite, fmt=fmt)
    _render(result.report, f"Wrote the event store {out_dir}")


def _render(report: ImportReport, done: str) -> None:
    console.print(frame_table(report.to_frame(), title=f"Import of {Path(report.source).name}", max_rows=100))
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"[green]{done}[/green] (import took {report.seconds:.1f} s).", highlight=False)
