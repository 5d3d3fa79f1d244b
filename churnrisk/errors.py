"""The package's own exceptions.

The library raises these; the CLI turns them into a red message on stderr and a non-zero exit code,
never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ChurnriskError", "DataError", "OptionError", "Problem"]


class ChurnriskError(Exception):
    """An error the user can cause and fix: bad arguments, unreadable files, refused models."""


class OptionError(ChurnriskError):
    """Options that do not go together (or one that is missing); the CLI reports a usage error
    (exit code 2) naming ``option``, the command-line flag to fix."""

    def __init__(self, message: str, *, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Problem:
    """One finding about the input data: which table and column, how many rows, a few examples."""

    table: str
    column: str | None
    message: str
    rows: int = 0
    examples: tuple[Any, ...] = ()
    severity: Literal["error", "warning"] = "error"
    suggestion: str | None = None

    def __str__(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        text = f"{where}: {self.message}"
        if self.rows:
            text += f" ({self.rows:,} row{'s' if self.rows != 1 else ''})"
        if self.examples:
            text += "; e.g. " + ", ".join(repr(_plain(v)) for v in self.examples)
        if self.suggestion:
            text += f". Suggestion: {self.suggestion}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "table": self.table,
            "column": self.column,
            "message": self.message,
            "rows": self.rows,
            "examples": [_plain(v) for v in self.examples],
            "suggestion": self.suggestion,
        }


def _plain(value: Any) -> Any:
    """A JSON- and repr-friendly version of a value taken from a frame."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass
class DataError(ChurnriskError):
    """The input data has problems; ``problems`` lists every one of them, not just the first."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def __str__(self) -> str:
        errors = self.errors
        head = f"the data has {len(errors)} problem{'s' if len(errors) != 1 else ''}:"
        return "\n".join([head, *(f"  - {p}" for p in errors)])
