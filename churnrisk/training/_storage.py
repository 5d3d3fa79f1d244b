"""Training sets on disk: one file, or a folder of per-cutoff parts that grows with ``--append``."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from pandas.api.types import union_categoricals

from churnrisk._io import TABLE_FORMATS, atomic_path, check_writable, polars_parquet, write_table
from churnrisk.definition import ChurnDefinition
from churnrisk.errors import ChurnriskError
from churnrisk.features._build import (
    check_windows,
    promoted,
    to_cutoff,
)
from churnrisk.features._spec import DEFAULT_WINDOWS
from churnrisk.labels import Definition, SpellCache, check_label_options, label_frame
from churnrisk.store import EventStore
from churnrisk.training._cutoffs import _cutoff_list
from churnrisk.training._sets import (
    ID,
    KEY,
    META,
    Progress,
    _check_options,
    _cutoff_rows,
    _stacked,
    _typed,
    build_training_set,
)


def _read_existing(existing: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(existing, pd.DataFrame):
        return existing.copy(deep=False)  # columns are taken out of it, never changed
    return read_training_set(existing)


def update_training_set(
    existing: pd.DataFrame | str | os.PathLike[str],
    store: EventStore,
    new_cutoffs: Iterable[Any],
    *,
    definition: Definition,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    reactivation_gap_days: float = 0,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Add new cutoffs to a training set, and fill in labels that were censored and are now known.

    Costs about one cutoff per new cutoff: earlier rows keep their features (they only ever saw
    events up to their own cutoff); only their missing labels are computed. The options must be
    those the existing set was built with; the result equals :func:`build_training_set` over all
    cutoffs. Cutoffs already in ``existing`` are not recomputed.

    ``existing`` is a frame or a stored training set (see :func:`read_training_set`); nothing is
    written. To update a stored set in place, use :func:`append_training_set`.
    """
    options = check_label_options(store, definition, horizon, lookback, lead_time, reactivation_gap_days)
    windows_ = check_windows(windows)
    old = _read_existing(existing)
    _check_same_options(old, options, windows_)
    known = set(pd.to_datetime(old["cutoff"].unique()).to_pydatetime()) if len(old) else set()
    new = [c for c in _cutoff_list(new_cutoffs) if c not in known]
    old = _fill_censored(store, old, options)
    if new:
        total, frames = _cutoff_rows(store, new, windows_, options, progress, spells={})
        old = _append(old, _typed(_stacked(total, frames), options, windows_))
        if known and min(new) < max(known):
            old = old.sort_values(["cutoff", ID], kind="stable", ignore_index=True)
    return _typed(old, options, windows_)


def _append(old: pd.DataFrame, added: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``old`` then those of ``added``, column by column (``old`` is consumed: each of
    its columns is released once copied, so the peak holds the result and one column more).

    A count that is whole numbers in one part and has missing values in the other (``int32`` /
    ``float32``) stays 32-bit; text categories are merged and kept sorted.
    """
    columns = {}
    for name in list(old.columns):
        a, b = old.pop(name), added.pop(name)
        if isinstance(a.dtype, pd.CategoricalDtype) or isinstance(b.dtype, pd.CategoricalDtype):
            both = union_categoricals([_category(a), _category(b)], sort_categories=True)
            columns[name] = pd.Series(both, copy=False)
        elif isinstance(a.dtype, np.dtype) and isinstance(b.dtype, np.dtype) and a.dtype.kind in "iuf":
            dtype = promoted(a.dtype, b.dtype)
            columns[name] = pd.Series(np.concatenate([a.to_numpy(dtype), b.to_numpy(dtype)]), copy=False)
        else:
            columns[name] = pd.concat([a, b], ignore_index=True)
        del a
    return pd.DataFrame(columns, copy=False)


def _category(values: pd.Series) -> pd.Series:
    """``values`` as a categorical with ``str`` categories (text of any pandas string dtype)."""
    out = values.astype("category")
    return out.cat.set_categories(pd.Index(out.cat.categories.astype(object), dtype="str"))


def _fill_censored(store: EventStore, old: pd.DataFrame, options: dict[str, Any]) -> pd.DataFrame:
    """Labels of rows whose cutoff was censored when they were built, if now observable (only
    those rows are touched)."""
    missing = old["churned"].isna().to_numpy()
    if not missing.any():
        return old
    open_cutoffs = sorted(pd.to_datetime(old.loc[missing, "cutoff"].unique()).to_pydatetime())
    spells: SpellCache = {}
    labels = pl.concat(
        label_frame(store, c, spells=spells, **options).with_columns(cutoff=pl.lit(c, pl.Datetime("us")))
        for c in open_cutoffs
    ).select(*KEY, "churned", "churn_type")
    asked = pl.from_pandas(old.loc[missing, KEY]).with_columns(pl.col("cutoff").cast(pl.Datetime("us")))
    found = asked.join(labels, on=KEY, how="left", maintain_order="left")
    churned = old["churned"].astype("Int64").to_numpy(dtype="float64", na_value=np.nan, copy=True)
    churned[missing] = found["churned"].cast(pl.Float64).to_numpy()
    churn_type = old["churn_type"].to_numpy(dtype=object, copy=True)
    churn_type[missing] = found["churn_type"].to_numpy()
    return old.assign(churned=pd.array(churned).astype("Int64"), churn_type=churn_type)


def _check_same_options(old: pd.DataFrame, options: dict[str, Any], windows: tuple[int, ...]) -> None:
    _check_options(old.attrs, options, windows)
    missing = {ID, "cutoff", "churned", "churn_type"} - set(old.columns)
    if missing:
        raise ChurnriskError(f"the existing training set lacks the columns {sorted(missing)}.")


_LOCK = ".lock"  # see _one_writer


_KIND = "churnrisk training set"


_STAMP = r"cutoff=(\d{4}-\d{2}-\d{2}(?:T\d{2}-\d{2}-\d{2})?)"


_PART = re.compile(_STAMP + r"\.parquet")


_LABELS_FILE = re.compile(_STAMP + r"\.labels\.parquet")


@dataclass(frozen=True)
class TrainingSetSummary:
    """What a stored training set holds after :func:`write_training_set` / :func:`append_training_set`.

    ``added`` are the cutoffs computed by this call; ``relabelled`` those whose censored labels
    were filled in (a folder rewrites only their files).
    """

    path: Path
    cutoffs: int
    rows: int
    labelled: int
    churned: int
    added: tuple[datetime, ...] = ()
    relabelled: tuple[datetime, ...] = ()

    @property
    def censored(self) -> int:
        """Rows whose horizon runs past the end of the data (no label yet)."""
        return self.rows - self.labelled

    @property
    def churn_rate(self) -> float:
        """Share of the labelled rows that churned (NaN when none is labelled)."""
        return self.churned / self.labelled if self.labelled else float("nan")


def is_folder_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` names a folder training set: an existing folder, or any path not ending in
    ``.csv`` or ``.parquet``."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() not in TABLE_FORMATS


def read_training_set(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A stored training set: a ``.parquet`` / ``.csv`` file, or a folder of per-cutoff files.

    A folder reads into exactly the frame :func:`build_training_set` gives over its cutoffs: 32-bit
    features, text as categoricals with sorted categories shared by all cutoffs, ``churned`` Int64,
    ``churn_type`` string, rows sorted by cutoff and customer, ``.attrs`` holding the label options
    and windows. Each part is converted as it is read: the peak holds the result and one part.
    """
    path = Path(path)
    if not path.exists():
        raise ChurnriskError(f"{path} does not exist. Suggestion: build it first with build_training_set.")
    if path.is_dir():
        return _read_dataset(path) if _is_dataset(path) else _read_folder(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        # one block per column, Arrow buffers released while converting: no second copy
        return pq.read_table(path).to_pandas(split_blocks=True, self_destruct=True)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, parse_dates=["cutoff"])
    raise ChurnriskError(
        f"cannot tell the format of {path}. "
        "Suggestion: use a .csv or .parquet file, or a training-set folder."
    )


#: The label options beside a Parquet dataset written by Spark (the underscore hides it from Spark's readers).
DATASET_META = "_churnrisk.json"


def _is_dataset(folder: Path) -> bool:
    """A folder of Parquet part files (``part-00000-….parquet``, as Spark writes) and no META."""
    return not (folder / META).exists() and any(_dataset_files(folder))


def _dataset_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(("_", ".")))


def _read_dataset(folder: Path) -> pd.DataFrame:
    """A training set stored as a Parquet dataset (``training-set --engine spark``), one row group at
    a time: each numeric column is allocated once and filled row group by row group, so the peak
    holds the result and one row group. Part files are in Spark's order (sorted by cutoff and
    customer when written sorted). The label options come from :data:`DATASET_META` when present."""
    import pyarrow.parquet as pq

    readers = [pq.ParquetFile(p) for p in _dataset_files(folder)]
    total = sum(r.metadata.num_rows for r in readers)
    frames = (
        pl.DataFrame(pl.from_arrow(r.read_row_group(i))) for r in readers for i in range(r.num_row_groups)
    )
    out = _stacked(total, frames)
    try:
        recorded = json.loads((folder / DATASET_META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        recorded = {}
    options = {k: v for k, v in recorded.items() if k != "windows"}
    out = _typed(out, options, tuple(recorded.get("windows", ())))
    if "windows" not in recorded:
        del out.attrs["windows"]
    return out


def _read_folder(folder: Path) -> pd.DataFrame:
    recorded = _read_meta(folder)
    parts = _parts(folder)
    if not parts:
        raise ChurnriskError(
            f"the training-set folder {folder} holds no cutoffs yet. Suggestion: append some."
        )
    total = sum(pl.scan_parquet(p).select(pl.len()).collect().item() for p in parts.values())
    frames = (pl.read_parquet(p).hstack(pl.read_parquet(_labels_path(p))) for p in parts.values())
    options = ChurnDefinition.from_options(recorded).options()  # a folder from before the grace period: 0
    return _typed(_stacked(total, frames), options, tuple(recorded["windows"]))


def write_training_set(
    path: str | os.PathLike[str],
    store: EventStore,
    cutoffs: Iterable[Any],
    *,
    definition: Definition,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    reactivation_gap_days: float = 0,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> TrainingSetSummary:
    """Build a training set (see :func:`build_training_set`) and store it at ``path``.

    A path ending in ``.csv`` or ``.parquet`` is written as one file; any other path is a folder of
    one Parquet file of features per cutoff (``cutoff=2024-06-30.parquet``, or
    ``cutoff=2024-06-30T12-00-00.parquet`` for a cutoff with a time of day; each written atomically
    as soon as it is computed, so that only one cutoff is held in memory), its labels beside it
    (``cutoff=2024-06-30.labels.parquet``) and ``training-set.json`` (the options). An existing file or
    training-set folder is replaced only with ``overwrite`` (a folder holding other files never is).

    Returns
    -------
    TrainingSetSummary
        Cutoffs, rows, labelled and churned rows of the stored set.
    """
    options = check_label_options(store, definition, horizon, lookback, lead_time, reactivation_gap_days)
    windows_, cutoffs_ = check_windows(windows), _cutoff_list(cutoffs)
    if not is_folder_path(path):
        check_writable(path, overwrite=overwrite)  # before the work, not after it
        frame = build_training_set(store, cutoffs_, progress=progress, windows=windows_, **options)
        return _summary(write_table(frame, path, overwrite=overwrite), frame, added=cutoffs_)
    with _one_writer(Path(path)) as folder:
        _new_folder(folder, options, windows_, overwrite=overwrite)
        added = _add_parts(folder, store, cutoffs_, options, windows_, progress, spells={})
    return _folder_summary(folder, added=added)


def append_training_set(
    path: str | os.PathLike[str],
    store: EventStore,
    cutoffs: Iterable[Any],
    *,
    definition: Definition,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    reactivation_gap_days: float = 0,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    progress: Progress | None = None,
) -> TrainingSetSummary:
    """Add the cutoffs not yet stored at ``path`` and fill in labels that were censored, in place.

    On a folder (see :func:`write_training_set`) this costs about one cutoff per new cutoff: only
    the new cutoffs are computed, each written as new files; the labels files of cutoffs whose
    labels were censored and are now known are rewritten (a few bytes per row); every other file
    is left untouched. A single file is read, updated with
    :func:`update_training_set` and rewritten whole. A path that does not exist yet is built. The
    options must be those the set was built with.

    Returns
    -------
    TrainingSetSummary
        The whole stored set, with the cutoffs ``added`` and ``relabelled`` by this call.

    Examples
    --------
    >>> from churnrisk.demo import make_demo_data
    >>> store = EventStore.from_frames(
    ...     {k: v for k, v in make_demo_data(n_customers=200, seed=0).items() if k != "ground_truth"}
    ... )
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "train"
    >>> options = dict(definition="subscription", horizon=30, windows=(30,))
    >>> _ = append_training_set(folder, store, ["2024-03-31", "2024-04-30"], **options)
    >>> summary = append_training_set(folder, store, ["2024-04-30", "2024-05-31"], **options)
    >>> summary.cutoffs, [c.date().isoformat() for c in summary.added]
    (3, ['2024-05-31'])
    >>> sorted(p.name for p in folder.glob("cutoff=*[0-9].parquet"))  # features; labels beside them
    ['cutoff=2024-03-31.parquet', 'cutoff=2024-04-30.parquet', 'cutoff=2024-05-31.parquet']
    """
    options = check_label_options(store, definition, horizon, lookback, lead_time, reactivation_gap_days)
    windows_, cutoffs_ = check_windows(windows), _cutoff_list(cutoffs)
    target = Path(path)
    if not target.exists() or (target.is_dir() and all(p.name.startswith(".") for p in target.iterdir())):
        return write_training_set(target, store, cutoffs_, progress=progress, windows=windows_, **options)
    if not target.is_dir():
        frame = update_training_set(target, store, cutoffs_, progress=progress, windows=windows_, **options)
        added = [c for c in cutoffs_ if c not in _file_cutoffs(target)]  # before rewriting
        return _summary(write_table(frame, target, overwrite=True), frame, added=added)
    with _one_writer(target):
        _check_options(_read_meta(target), options, windows_)
        censored = _censored_parts(target)  # before adding: new parts are labelled as well as they can be
        new = [c for c in cutoffs_ if c not in _parts(target)]
        spells: SpellCache = {}  # each source's spells built once for both
        added = _add_parts(target, store, new, options, windows_, progress, spells)
        relabelled = _relabel_parts(censored, store, options, spells)
    return _folder_summary(target, added=added, relabelled=relabelled)


def _file_cutoffs(path: Path) -> set[datetime]:
    """The cutoffs of a training-set file (only that column read)."""
    if path.suffix.lower() == ".csv":
        column = pd.read_csv(path, usecols=["cutoff"], parse_dates=["cutoff"])["cutoff"]
    else:
        column = pd.read_parquet(path, columns=["cutoff"])["cutoff"]
    return {to_cutoff(c) for c in column.unique()}


def _summary(path: Path, frame: pd.DataFrame, *, added: Sequence[datetime]) -> TrainingSetSummary:
    labelled = frame["churned"].notna()
    return TrainingSetSummary(
        path=path,
        cutoffs=int(frame["cutoff"].nunique()),
        rows=len(frame),
        labelled=int(labelled.sum()),
        churned=int(frame.loc[labelled, "churned"].sum()),
        added=tuple(added),
    )


def _folder_summary(
    folder: Path, *, added: Sequence[datetime] = (), relabelled: Sequence[datetime] = ()
) -> TrainingSetSummary:
    """Counts from the ``churned`` column of every part (a few bytes per row to read)."""
    parts = _parts(folder).values()
    labels = [pl.read_parquet(_labels_path(p), columns=["churned"])["churned"] for p in parts]
    return TrainingSetSummary(
        path=folder,
        cutoffs=len(labels),
        rows=sum(len(s) for s in labels),
        labelled=sum(len(s) - s.null_count() for s in labels),
        churned=int(sum(s.sum() for s in labels)),
        added=tuple(added),
        relabelled=tuple(relabelled),
    )


def _part_name(cutoff: datetime) -> str:
    stamp = cutoff.strftime(
        "%Y-%m-%d" if cutoff == datetime.combine(cutoff, datetime.min.time()) else "%Y-%m-%dT%H-%M-%S"
    )
    return f"cutoff={stamp}.parquet"


def _parts(folder: Path) -> dict[datetime, Path]:
    """The part files of a training-set folder by cutoff, in cutoff order."""
    found = {}
    for path in folder.iterdir():
        match = _PART.fullmatch(path.name)
        if match is not None:
            text = match.group(1)
            found[datetime.strptime(text, "%Y-%m-%dT%H-%M-%S" if "T" in text else "%Y-%m-%d")] = path
    return dict(sorted(found.items()))


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        recorded = None
    if not isinstance(recorded, dict) or recorded.get("kind") != _KIND:
        raise ChurnriskError(
            f"{folder} is not a training-set folder (no readable {META}). "
            "Suggestion: give a folder written by `churnrisk training-set`, or a .csv/.parquet file."
        )
    return recorded


@contextlib.contextmanager
def _one_writer(folder: Path) -> Iterator[Path]:
    """The training-set ``folder`` (made if missing), held by this process alone while it writes:
    a second append or rebuild of the same folder at the same time is refused rather than mixing
    its files with ours. The hold is an advisory lock on ``folder/.lock``, released when the
    process ends however it ends, so a crash leaves nothing to clean up."""
    if folder.exists() and not folder.is_dir():
        raise ChurnriskError(
            f"{folder} is a file. Suggestion: give a .csv or .parquet name, or a path for a new folder."
        )
    if not folder.parent.is_dir():
        raise ChurnriskError(
            f"the folder {folder.parent} does not exist. Suggestion: create it first, or choose another path."
        )
    if folder.is_dir():
        _ours(folder)  # nothing of ours, not even the lock, goes into a folder of other files
    folder.mkdir(exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no advisory locks on this system (Windows): one writer is up to the user
        yield folder
        return
    with open(folder / _LOCK, "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ChurnriskError(
                f"another churnrisk process is writing the training set in {folder}. "
                "Suggestion: wait until it has finished, then run this again."
            ) from None
        yield folder


def _ours(folder: Path) -> list[Path]:
    """A training-set folder's own files: parts, labels files (also one left without its part by
    an interrupted write) and the options file. A folder holding any other (visible) file is not
    ours to write in."""
    ours = [p for p in folder.iterdir() if _PART.fullmatch(p.name) or _LABELS_FILE.fullmatch(p.name)]
    ours.append(folder / META)
    others = [p for p in folder.iterdir() if p not in ours and not p.name.startswith(".")]
    if others:
        raise ChurnriskError(
            f"{folder} holds other files ({others[0].name}, ...). Suggestion: choose a new or empty folder."
        )
    return ours


def _new_folder(folder: Path, options: dict[str, Any], windows: tuple[int, ...], *, overwrite: bool) -> None:
    """Make the existing ``folder`` an empty training set with its options file (an old set's
    files removed with ``overwrite``; a folder holding anything else is refused)."""
    ours = _ours(folder)
    if (folder / META).exists():
        if not overwrite:
            raise ChurnriskError(
                f"{folder} already holds a training set. Suggestion: pass --append to add cutoffs, "
                "--overwrite to rebuild it, or choose another path."
            )
        for path in ours:
            path.unlink(missing_ok=True)
    with atomic_path(folder / META) as tmp:
        recorded = {"kind": _KIND, "version": 1, **options, "windows": list(windows)}
        tmp.write_text(json.dumps(recorded, indent=2) + "\n", encoding="utf-8")


def _add_parts(
    folder: Path,
    store: EventStore,
    cutoffs: Sequence[datetime],
    options: dict[str, Any],
    windows: tuple[int, ...],
    progress: Progress | None,
    spells: SpellCache,
) -> list[datetime]:
    """Compute each cutoff and write it as its own file as soon as it is done (one cutoff in memory)."""
    if not cutoffs:
        return []
    stored = next(iter(_parts(folder).values()), None)
    columns = None if stored is None else [*pl.read_parquet_schema(stored), *_LABELS]
    _, frames = _cutoff_rows(store, cutoffs, windows, options, progress, spells)
    for cutoff, frame in zip(cutoffs, frames, strict=True):
        _check_columns(frame.columns, columns or frame.columns, cutoff)
        _write_part(frame, folder / _part_name(cutoff), overwrite=False)
    return list(cutoffs)


def _check_columns(new: list[str], stored: list[str], cutoff: datetime) -> None:
    """Refuse a cutoff whose columns differ from the stored ones (e.g. a table since added or removed)."""
    if new != stored:
        added, lost = sorted(set(new) - set(stored)), sorted(set(stored) - set(new))
        raise ChurnriskError(
            f"the rows of cutoff {cutoff:%Y-%m-%d} have other columns than the stored ones "
            f"(new: {added or 'none'}, no longer made: {lost or 'none'}; the order may differ). "
            "Suggestion: the event tables changed since the set was built: rebuild it with --overwrite."
        )


_LABELS = ["churned", "churn_type"]


def _labels_path(part: Path) -> Path:
    """The labels of a part, in a file of their own beside it (``cutoff=2024-06-30.labels.parquet``)."""
    return part.with_name(part.name.removesuffix(".parquet") + ".labels.parquet")


def _write_part(frame: pl.DataFrame, path: Path, *, overwrite: bool) -> None:
    """One cutoff as two files, rows in the same order: its labels (small; rewritten alone when
    censored labels become known), then its features (the file that makes the part: a labels
    file left without one by an interrupted write is replaced)."""
    _write_labels(frame.select(_LABELS), path, overwrite=True)
    with atomic_path(path, overwrite=overwrite) as tmp:
        polars_parquet(frame.drop(_LABELS), tmp)


def _write_labels(labels: pl.DataFrame, path: Path, *, overwrite: bool) -> None:
    with atomic_path(_labels_path(path), overwrite=overwrite) as tmp:
        polars_parquet(labels, tmp)


def _censored_parts(folder: Path) -> dict[datetime, Path]:
    """The parts with missing labels (only their labels file is read)."""
    return {
        cutoff: path
        for cutoff, path in _parts(folder).items()
        if pl.read_parquet(_labels_path(path), columns=["churned"])["churned"].has_nulls()
    }


def _relabel_parts(
    censored: dict[datetime, Path], store: EventStore, options: dict[str, Any], spells: SpellCache
) -> list[datetime]:
    """Fill in the labels of the ``censored`` parts that are now observable; only their labels
    files are rewritten, every other file is not opened for writing."""
    if not censored:
        return []
    done = []
    for cutoff, path in censored.items():
        labels = label_frame(store, cutoff, spells=spells, **options)
        if labels["churned"].null_count() == labels.height:  # still censored
            continue
        rows = pl.read_parquet(path, columns=[ID])
        known = rows.join(labels.select(ID, *_LABELS), on=ID, how="left", maintain_order="left")
        _write_labels(known.select(_LABELS), path, overwrite=True)
        done.append(cutoff)
    return done
