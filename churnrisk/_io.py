"""Writing output files: by extension, atomically, never over a user's file without permission."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from churnrisk.errors import ChurnriskError

__all__ = ["atomic_path", "check_writable", "write_table"]

TABLE_FORMATS = (".csv", ".parquet")


def check_writable(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Refuse to replace an existing file unless ``overwrite`` is set; return the path."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ChurnriskError(
            f"{path} already exists. Suggestion: pass --overwrite to replace it, or choose another path."
        )
    if not path.parent.exists():
        raise ChurnriskError(f"the folder {path.parent} does not exist.")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A failure half-way leaves no half-written file and the previous file (if any) untouched.
    """
    target = check_writable(path, overwrite=overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``frame`` as CSV or Parquet, chosen by the file extension, atomically."""
    path = Path(path)
    writers: dict[str, Callable[[Path], object]] = {
        ".csv": lambda p: frame.to_csv(p, index=False),
        ".parquet": lambda p: frame.to_parquet(p, index=False),
    }
    writer = writers.get(path.suffix.lower())
    if writer is None:
        raise ChurnriskError(f"cannot tell the format of {path}: use a .csv or .parquet extension.")
    with atomic_path(path, overwrite=overwrite) as tmp:
        writer(tmp)
    return path
