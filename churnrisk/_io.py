"""Writing output files: by extension, atomically, never over a user's file without permission."""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import polars as pl

from churnrisk.errors import ChurnriskError

__all__ = ["atomic_path", "check_writable", "keyed", "polars_parquet", "write_table"]

TABLE_FORMATS = (".csv", ".parquet")
# Fast to write and to read, and smaller than the usual snappy.
PARQUET_COMPRESSION: Final = "lz4"


def keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its index as the first column(s), for writing.

    Unlike ``reset_index`` this never inserts into the frame: a feature table built column by
    column stays as it is (no copy, no fragmentation warning).
    """
    ids = frame.index.to_frame(index=False)
    return pd.concat([ids, frame.reset_index(drop=True)], axis=1)


def check_writable(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Refuse to replace an existing file unless ``overwrite`` is set; return the path."""
    path = Path(path)
    if path.is_dir():
        raise ChurnriskError(f"{path} is a folder. Suggestion: give a file name, e.g. {path / 'scores.csv'}.")
    if path.exists() and not overwrite:
        raise ChurnriskError(
            f"{path} already exists. Suggestion: pass --overwrite to replace it, or choose another path."
        )
    if not path.parent.is_dir():
        raise ChurnriskError(
            f"the folder {path.parent} does not exist. Suggestion: create it first, or choose another path."
        )
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A failure half-way leaves no half-written file and the previous file (if any) untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    """
    target = check_writable(path, overwrite=overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give the result the permissions of a normal new file.
        os.chmod(tmp, 0o666 & ~_umask())
        if not overwrite and target.exists():  # appeared while we were writing
            raise ChurnriskError(f"{target} was created by something else while writing; nothing replaced.")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_table(
    frame: pd.DataFrame | pl.DataFrame, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write ``frame`` (pandas or Polars) as CSV or Parquet, chosen by the file extension, atomically.

    Parameters
    ----------
    frame : pandas.DataFrame or polars.DataFrame
        The table; a pandas index is not written.
    path : path
        Where to write; the extension (``.csv`` or ``.parquet``) picks the format.
    overwrite : bool, default False
        Replace an existing file. Without it an existing file is an error and stays untouched.

    Returns
    -------
    Path
        The path written.

    Notes
    -----
    Tables of plain columns (numbers, booleans, text, categoricals, times) are written by Polars'
    multi-threaded writers, Parquet with LZ4 compression and no row-group statistics; pandas,
    pyarrow and Polars read them back with the same dtypes (a categorical keeps its categories and
    their order). Other pandas tables are written by pandas itself.
    """
    path = Path(path)
    writer = _writer(frame, path.suffix.lower())
    if writer is None:
        raise ChurnriskError(
            f"cannot tell the format of {path}: got the extension {path.suffix or '(none)'!r}. "
            f"Suggestion: use one of {list(TABLE_FORMATS)}."
        )
    with atomic_path(path, overwrite=overwrite) as tmp:
        writer(tmp)
    return path


def _writer(frame: pd.DataFrame | pl.DataFrame, suffix: str) -> Callable[[Path], object] | None:
    if suffix not in TABLE_FORMATS:
        return None
    if isinstance(frame, pd.DataFrame) and not _own_writer(frame, suffix):
        fast = _to_polars(frame, csv=suffix == ".csv")
        if fast is not None:
            frame = fast
    if isinstance(frame, pl.DataFrame):
        polars_writers: dict[str, Callable[[Path], object]] = {
            ".csv": frame.write_csv,
            ".parquet": lambda p: polars_parquet(frame, p),
        }
        return polars_writers[suffix]
    pandas_writers: dict[str, Callable[[Path], object]] = {
        ".csv": lambda p: frame.to_csv(p, index=False),
        ".parquet": lambda p: _pandas_parquet(frame, p),
    }
    return pandas_writers[suffix]


def _own_writer(frame: pd.DataFrame, suffix: str) -> bool:
    """A DataFrame subclass with its own writer (e.g. one that adds metadata) keeps it."""
    method = "to_csv" if suffix == ".csv" else "to_parquet"
    return getattr(type(frame), method) is not getattr(pd.DataFrame, method)


def _to_polars(frame: pd.DataFrame, *, csv: bool) -> pl.DataFrame | None:
    """``frame`` as Polars, whose writers use every core, if it reads back the same; else ``None``.

    Taken as they are: numpy numbers and booleans (without a copy; NaN becomes missing, as pandas
    writes it), text of the default ``str`` dtype, unordered categoricals of text (as an ``Enum``:
    the categories and their order come back), and for Parquet times, naive or with a time zone.
    Anything else (object columns, nullable extension types, ordered categoricals, names that are
    not distinct text; times in CSV, which pandas formats its own way) is written by pandas, which
    records how to restore it.
    """
    names = list(frame.columns)
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    columns = []
    for name in names:
        column = _polars_column(frame[name], csv=csv)
        if column is None:
            return None
        columns.append(column.alias(name))
    out = pl.DataFrame(columns)
    floats = [c for c, dtype in out.schema.items() if dtype.is_float()]
    return out.with_columns(pl.col(floats).fill_nan(None)) if floats else out


def _polars_column(column: pd.Series, *, csv: bool) -> pl.Series | None:
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and (dtype.kind in "iu" or (dtype.kind == "f" and dtype.itemsize >= 4)):
        return pl.Series(column.to_numpy())
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        values = pl.Series(column.to_numpy())
        # pandas writes True/False in a CSV file, Polars true/false
        return values.replace_strict({True: "True", False: "False"}) if csv else values
    if isinstance(dtype, pd.StringDtype) and dtype.na_value is not pd.NA:  # the default str dtype
        return pl.from_pandas(column)
    if isinstance(dtype, pd.CategoricalDtype) and not dtype.ordered and _is_text(dtype.categories):
        return _enum(column)
    if not csv and isinstance(dtype, (np.dtype, pd.DatetimeTZDtype)) and dtype.kind == "M":
        return pl.from_pandas(column)
    return None


def _enum(column: pd.Series) -> pl.Series:
    """A pandas categorical as a Polars ``Enum`` of the same categories, from its codes."""
    categories = column.cat.categories.tolist()
    codes = pl.Series(column.cat.codes.to_numpy())
    rows = pl.select(pl.when(codes >= 0).then(codes)).to_series()  # -1 (missing) -> null
    return pl.Series(categories, dtype=pl.Enum(categories)).gather(rows)


def _is_text(index: pd.Index) -> bool:
    return isinstance(index.dtype, pd.StringDtype) or (
        index.dtype == object and all(isinstance(v, str) for v in index)
    )


def polars_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Write a Polars frame as Parquet the fast way (LZ4, no statistics; see :func:`write_table`)."""
    enums = any(isinstance(dtype, pl.Enum) for dtype in frame.dtypes)
    frame.write_parquet(
        path,
        compression=PARQUET_COMPRESSION,
        statistics=False,  # tables read whole: row-group min/max would cost a fifth of the time
        metadata=_unordered_enums if enums else None,
    )


def _unordered_enums(context: Any) -> dict[str, str]:
    """The Arrow schema Polars writes, with ``Enum`` columns as *unordered* dictionaries.

    Polars marks an ``Enum`` as an ordered dictionary, which pandas reads as an ordered
    categorical; unordered, pandas gets back the categorical it gave (same categories, same
    order) and Polars still reads an ``Enum`` (from the field metadata).
    """
    import pyarrow as pa

    schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(context.arrow_schema)))
    fields = [
        field.with_type(pa.dictionary(field.type.index_type, field.type.value_type, ordered=False))
        if pa.types.is_dictionary(field.type)
        else field
        for field in schema
    ]
    unordered = pa.schema(fields, metadata=schema.metadata)
    return {"ARROW:schema": base64.b64encode(unordered.serialize().to_pybytes()).decode("ascii")}


def _pandas_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet with the pandas dtypes kept; dictionary encoding only where it pays (text and
    categories), which makes wide numeric tables (features, training sets) about twice as fast to
    write."""
    text = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c].dtype)]
    frame.to_parquet(path, index=False, use_dictionary=text)
