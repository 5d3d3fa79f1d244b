"""``churnrisk demo-data``: write the synthetic demo business (with its ground truth) to a folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from churnrisk.cli._app import app, console, frame_table, user_errors
from churnrisk.cli._options import DATE_FORMATS, FileFormatOpt


@app.command("demo-data")
def demo_data_command(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder to write the tables into (new or empty).", show_default=False)
    ],
    customers: Annotated[int, typer.Option("--customers", min=1, help="Number of customers.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 0,
    start: Annotated[
        datetime, typer.Option("--start", formats=DATE_FORMATS, help="First day of the data (YYYY-MM-DD).")
    ] = datetime(2023, 1, 1),
    end: Annotated[
        datetime,
        typer.Option(
            "--end", formats=DATE_FORMATS, help="Every event happens before this date (YYYY-MM-DD)."
        ),
    ] = datetime(2024, 12, 31),
    fmt: FileFormatOpt = "parquet",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into a folder that is not empty, replacing the tables.")
    ] = False,
) -> None:
    """Write a synthetic business (subscribers and buyers) whose churn is caused by known signals.

    Every contract table is written, plus ground_truth with each customer's true churn date and cause.
    """
    from rich.table import Table

    from churnrisk.demo import write_demo_data  # loaded only when this command runs

    with user_errors():
        result = write_demo_data(
            out_dir,
            n_customers=customers,
            seed=seed,
            start=start,
            end=end,
            fmt=fmt,
            overwrite=overwrite,
        )
    table = Table("table", "file", "rows", title=f"Demo data in {out_dir}")
    for name, path in result.files.items():
        table.add_row(name, path.name, f"{result.rows[name]:,}")
    console.print(table)
    console.print(frame_table(result.churners, title="Churners by cause (ground truth)"))
