"""The typer application and what every command shares: error handling and output.

Commands hold no logic: they parse arguments, call one library function and render its result.
The options shared by several commands are declared once, in :mod:`churnrisk.cli._options`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from churnrisk._memory import return_freed_memory
from churnrisk.errors import ChurnriskError, DataError, OptionError

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

app = typer.Typer(
    name="churnrisk",
    help="Predict which customers are about to leave, explain why, and measure past churn.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold customer data
    add_completion=False,
)

console = Console()
err_console = Console(stderr=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the package's own errors into a red message on stderr and exit code 1 (no traceback).

    Options that do not go together are a usage error: typer's message and exit code 2.
    """
    try:
        yield
    except OptionError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None
    except DataError as exc:
        render_problems(exc.problems)
        raise typer.Exit(code=1) from None
    except ChurnriskError as exc:
        err_console.print(f"[red]Error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None


def render_problems(problems: list[Any]) -> None:
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    # escaped: a problem quotes the user's data and config ("[tables.orders]"), never markup
    for problem in errors:
        err_console.print(f"[red]error[/red]   {escape(str(problem))}", highlight=False, soft_wrap=True)
    for problem in warnings:
        err_console.print(f"[yellow]warning[/yellow] {escape(str(problem))}", highlight=False, soft_wrap=True)
    if errors:
        err_console.print(
            f"[red]{len(errors)} error{'s' if len(errors) != 1 else ''}[/red], "
            f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}",
            highlight=False,
        )


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else on it."""
    typer.echo(json.dumps(data, indent=2, default=str))


def frame_table(frame: pd.DataFrame, *, title: str | None = None, max_rows: int = 40) -> Table:
    """A rich table of a DataFrame, numbers right-aligned and rates shown with 4 decimals.

    A one-row frame (e.g. the CLV) is shown vertically, one line per column, so that it stays
    readable in an 80-column terminal.
    """
    import pandas as pd
    from rich.table import Table

    if len(frame) == 1 and len(frame.columns) > 1:
        vertical = Table(title=title, show_lines=False)
        vertical.add_column("name", justify="left")
        vertical.add_column("value", justify="right")
        for name, value in frame.iloc[0].items():
            vertical.add_row(escape(str(name)), _cell(value))
        return vertical
    table = Table(title=title, show_lines=False)
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(escape(str(column)), justify="right" if numeric else "left")
    for row in frame.head(max_rows).itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    if len(frame) > max_rows:
        table.caption = f"{max_rows} of {len(frame):,} rows shown"
    return table


def _cell(value: Any) -> str:
    """A value as table text; text from the data is escaped (a segment "[vip]" is not markup)."""
    import pandas as pd

    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else str(value)
    return escape(str(value))


def _show_version(value: bool) -> None:
    if value:
        from churnrisk import __version__

        typer.echo(f"churnrisk {__version__}")
        raise typer.Exit()


#: Commands that keep glibc's own mapping threshold: training makes and drops the same arrays fit
#: after fit, 15% faster when the heap reuses them, and trims the heap before each fit instead.
REUSES_MEMORY = frozenset({"train"})


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Predict which customers are about to leave, explain why, and measure past churn."""
    if ctx.invoked_subcommand not in REUSES_MEMORY:
        return_freed_memory()  # the peak memory of a command is what it uses, not what it once freed


def main() -> None:
    app()
