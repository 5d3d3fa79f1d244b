"""Point-in-time features of an event store bigger than memory: the same executor, bucket by bucket.

Every feature is computed per customer, so the store can be split by customer and each piece
computed on its own, exactly. :func:`build_features_partitioned` scans the tables lazily, drops
the events after the cutoff while reading, writes the remaining rows once into temporary Parquet
buckets chosen by a hash of ``customer_id`` (one streaming pass per table), then types, validates
and computes one bucket at a time with the executor of :func:`build_features`. The peak memory is
that of one bucket, whatever the size of the store.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from churnrisk._io import atomic_path, check_writable
from churnrisk.contract import TABLES
from churnrisk.errors import ChurnriskError, DataError, Problem
from churnrisk.features._build import check_windows, to_cutoff
from churnrisk.features._polars import feature_frame
from churnrisk.features._spec import DEFAULT_WINDOWS
from churnrisk.store import N_EXAMPLES, EventStore, StoreConfig, _check_encoding, read_config
from churnrisk.validation import validate

__all__ = ["PartitionedFeatures", "build_features_partitioned"]

ID = "customer_id"
_BUCKET = "__churnrisk_bucket"
_SEED = 0x5EED
#: Peak bytes of the executor per event row in memory (measured: ~160; with a margin).
_BYTES_PER_ROW = 400
#: Rows per byte of a file on disk, to size the buckets from file sizes (Parquet compresses ~4x).
_CSV_BYTES_PER_ROW = 40
_PARQUET_BYTES_PER_ROW = 10


@dataclass(frozen=True)
class PartitionedFeatures:
    """What :func:`build_features_partitioned` wrote: the file, its size and the buckets used."""

    path: Path
    rows: int
    columns: int
    partitions: int


@dataclass(frozen=True)
class _Source:
    name: str
    scan: pl.LazyFrame
    id_column: str
    time_column: str | None
    disk_bytes: int
    rows_per_byte: float


def build_features_partitioned(
    source: str | os.PathLike[str],
    cutoff: Any,
    *,
    output: str | os.PathLike[str],
    windows: Sequence[int] = DEFAULT_WINDOWS,
    partitions: int | None = None,
    overwrite: bool = False,
    config: str | os.PathLike[str] | StoreConfig | None = None,
    encoding: str | None = None,
    memory_budget: int = 2 * 2**30,
) -> PartitionedFeatures:
    """Features at ``cutoff`` of a store too big for memory, written to a Parquet file.

    The result equals ``build_features(load_store(source), cutoff)``: the same declarations run
    on one bucket of customers at a time (a customer's rows of every table land in one bucket).

    Parameters
    ----------
    source : path
        A folder with the store's tables: ``<table>.parquet``, ``<table>.csv`` (UTF-8), or a
        folder ``<table>/`` of Parquet part files; a ``--config`` mapping may name the file,
        folder or glob (``file = "orders/*.parquet"``) and the columns.
    cutoff : date, datetime or str
        Features see only events at or before this instant.
    output : path
        The Parquet file to write (atomically: nothing is left behind if anything fails).
    windows : sequence of int, default (30, 90, 180, 365)
        Look-back windows in days.
    partitions : int, optional
        Number of customer buckets; by default chosen so that one bucket fits ``memory_budget``.
    overwrite : bool, default False
        Replace ``output`` if it exists.
    config : path or StoreConfig, optional
        The TOML mapping of table files and column names onto the contract.
    encoding : str, optional
        Encoding of the CSV files (overrides the config's); only UTF-8 can be read out of core.
    memory_budget : int, default 2 GiB
        Bytes one bucket may use while computed, when ``partitions`` is not given.

    Returns
    -------
    PartitionedFeatures
        The path written, its numbers of rows and columns and the number of buckets. Rows are
        sorted by ``customer_id`` within a bucket, not overall.

    Raises
    ------
    DataError
        With the problems of every bucket, when the data has errors; nothing is written.
    ChurnriskError
        When ``output`` exists (without ``overwrite``) or the tables cannot be found.

    Notes
    -----
    Events after the cutoff are dropped while reading (when their time column is typed, as in
    Parquet), so they are not validated. Uniqueness of ``order_id`` is checked within a bucket.
    """
    when = to_cutoff(cutoff)
    window_days = check_windows(windows)
    target = check_writable(output, overwrite=overwrite)
    if target.suffix.lower() != ".parquet":
        raise ChurnriskError(
            f"The 'output' parameter must be a .parquet file. Got {str(output)!r} instead. "
            f"Suggestion: {target.with_suffix('.parquet').name}."
        )
    cfg = config if isinstance(config, StoreConfig) else read_config(config)
    sources = _sources(Path(source), cfg, encoding)
    count = _partitions(sources, partitions, memory_budget)
    scans = {name: _early_filter(src, when) for name, src in sources.items()}
    keys = _bucket_keys(sources, count)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".parts", dir=target.parent))
    try:
        with atomic_path(target, overwrite=overwrite) as tmp:
            written = _compute(_split(scans, keys, count, work), cfg, when, window_days, tmp)
        return PartitionedFeatures(target, written[0], written[1], count)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _compute(
    buckets: Iterator[dict[str, pl.DataFrame]],
    cfg: StoreConfig,
    cutoff: datetime,
    windows: Sequence[int],
    path: Path,
) -> tuple[int, int]:
    """Type, validate and compute each bucket, appending its rows to ``path``; (rows, columns)."""
    problems: dict[tuple[Any, ...], Problem] = {}
    writer: pq.ParquetWriter | None = None
    schema: pl.Schema | None = None
    rows = 0
    try:
        for frames in buckets:
            store = EventStore.from_frames(frames, config=cfg)
            del frames
            _merge(problems, validate(store).problems)
            if any(p.severity == "error" for p in problems.values()):
                continue  # keep validating the other buckets, compute nothing more
            features = feature_frame(store.tables, cutoff, windows)
            del store
            if schema is None:
                schema = features.schema
                writer = pq.ParquetWriter(path, features.to_arrow().schema, compression="zstd")
            features = _conform(features, schema)
            assert writer is not None
            writer.write_table(features.to_arrow(), row_group_size=1 << 20)
            rows += features.height
            del features
    finally:
        if writer is not None:
            writer.close()
    if any(p.severity == "error" for p in problems.values()):
        raise DataError(list(problems.values()))
    return rows, len(schema or {})


def _conform(features: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """One bucket's table in the first bucket's column types (a column may be all null in one)."""
    if features.schema == schema:
        return features
    try:
        return features.cast(schema, strict=True)
    except pl.exceptions.PolarsError:
        raise ChurnriskError(
            "customer ids are whole numbers in some customer buckets and text in others, so the "
            "buckets cannot be stacked. Suggestion: use build_features, or give every id as text."
        ) from None


# ---------------------------------------------------------------------- finding the tables
def _sources(folder: Path, cfg: StoreConfig, encoding: str | None) -> dict[str, _Source]:
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise ChurnriskError(
            f"{folder} {what}. Suggestion: give the folder that holds customers.parquet "
            "(or .csv, or a customers/ folder of Parquet parts) and the event tables."
        )
    sources = {}
    for name in TABLES:
        table_config = cfg.table(name)
        paths = _table_paths(folder, name, table_config)
        if paths is None:
            continue
        sources[name] = _scan(
            name, paths, table_config, encoding or table_config.get("encoding") or cfg.encoding
        )
    if "customers" not in sources:
        missing = f"missing table (customers.parquet, customers.csv or customers/) in {folder}"
        raise DataError([Problem("customers", None, missing)])
    return sources


def _table_paths(folder: Path, name: str, table_config: Mapping[str, Any]) -> list[Path] | None:
    if "file" in table_config:
        given = str(table_config["file"])
        found = sorted(folder.glob(given)) if any(c in given for c in "*?[") else [folder / given]
        found = [p for q in found for p in (_parts(q) if q.is_dir() else [q]) if p.is_file()]
        if not found:
            raise ChurnriskError(
                f"the config names {folder / given} for table '{name}', but it does not exist. "
                f"Suggestion: the path is relative to {folder}."
            )
        return found
    candidates = [folder / f"{name}.parquet", folder / f"{name}.csv", folder / name]
    present = [p for p in candidates if p.exists()]
    if len(present) > 1:
        raise ChurnriskError(
            f"table '{name}' is in more than one place: {[p.name for p in present]}. "
            f"Suggestion: keep one, or name it in the config ([tables.{name}] file)."
        )
    if not present:
        return None
    return _parts(present[0]) if present[0].is_dir() else present


def _parts(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in (".parquet", ".csv"))


def _scan(name: str, paths: list[Path], table_config: Mapping[str, Any], encoding: str) -> _Source:
    suffixes = {p.suffix.lower() for p in paths}
    if suffixes == {".parquet"}:
        scan = pl.scan_parquet(paths)
        rows_per_byte = 1 / _PARQUET_BYTES_PER_ROW
    elif suffixes == {".csv"}:
        if _check_encoding(encoding) not in ("utf-8", "utf-8-sig"):
            raise ChurnriskError(
                f"table '{name}' is a CSV file in {encoding!r}; out-of-core reading needs UTF-8. "
                "Suggestion: convert it to UTF-8 or Parquet, or use build_features."
            )
        separator = str(table_config.get("separator", ","))
        scan = pl.concat(
            [pl.scan_csv(p, infer_schema=False, separator=separator) for p in paths], how="diagonal"
        )
        rows_per_byte = 1 / _CSV_BYTES_PER_ROW
    else:
        raise ChurnriskError(
            f"table '{name}' mixes file types {sorted(suffixes)}. Suggestion: use Parquet or CSV, not both."
        )
    mapping = table_config.get("columns", {})
    spec = TABLES[name]
    return _Source(
        name,
        scan,
        mapping.get(ID, ID),
        mapping.get(spec.time, spec.time) if spec.time else None,
        sum(p.stat().st_size for p in paths),
        rows_per_byte,
    )


# ---------------------------------------------------------------------- splitting
def _partitions(sources: Mapping[str, _Source], partitions: int | None, memory_budget: int) -> int:
    if partitions is not None:
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ChurnriskError(
                f"The 'partitions' parameter must be a positive whole number. Got {partitions!r} instead. "
                "Suggestion: partitions=8, or leave it out to choose from the data size."
            )
        return partitions
    rows = sum(s.disk_bytes * s.rows_per_byte for s in sources.values())
    return max(1, math.ceil(rows * _BYTES_PER_ROW / max(memory_budget, 1)))


def _early_filter(source: _Source, cutoff: datetime) -> pl.LazyFrame:
    """Drop events after the cutoff while reading, when the time column is already typed."""
    scan = source.scan
    if source.name == "customers" or source.time_column is None:
        return scan
    dtype = scan.collect_schema().get(source.time_column)
    time = pl.col(source.time_column)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            time = time.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        keep = time.is_null() | (time <= cutoff)
    elif dtype == pl.Date:
        keep = time.is_null() | (time <= cutoff.date())
    else:
        return scan  # text: parsed (and filtered) per bucket
    return scan.filter(keep)


def _bucket_keys(sources: Mapping[str, _Source], count: int) -> dict[str, pl.Expr]:
    """One hash of ``customer_id`` for every table, equal wherever the store sees one customer.

    Integer ids hash as Int64; otherwise every table's ids hash as trimmed text with ``.0``
    endings removed (the store reads ``12346.0`` and ``12346`` as one id).
    """
    dtypes = {}
    for name, src in sources.items():
        dtype = src.scan.collect_schema().get(src.id_column)
        if dtype is not None:
            dtypes[name] = dtype
    integer = all(d.is_integer() for d in dtypes.values())
    keys = {}
    for name, src in sources.items():
        ids = pl.col(src.id_column)
        if name not in dtypes:
            keys[name] = pl.lit(0, dtype=pl.UInt64)  # missing column: reported by the first bucket
            continue
        if integer:
            text = ids.cast(pl.Int64)
        else:
            text = ids.cast(pl.String).str.strip_chars().str.replace(r"^(-?\d+)\.0*$", "$1")
        keys[name] = text.hash(_SEED) % count
    return keys


def _split(
    scans: Mapping[str, pl.LazyFrame], keys: Mapping[str, pl.Expr], count: int, work: Path
) -> Iterator[dict[str, pl.DataFrame]]:
    """The tables of each bucket in turn; with one bucket, the filtered tables themselves."""
    if count == 1:
        yield {name: scan.collect() for name, scan in scans.items()}
        return
    empty = {name: scan.clear().collect() for name, scan in scans.items()}
    for name, scan in scans.items():
        # order kept: rows tied in time keep the order they have in the store, as in build_features
        scan.with_columns(keys[name].alias(_BUCKET)).sink_parquet(
            pl.PartitionBy(work / name, key=_BUCKET, include_key=False),
            compression="lz4",
            mkdir=True,
        )
    for k in range(count):
        frames = {}
        for name in scans:
            files = sorted((work / name / f"{_BUCKET}={k}").glob("*.parquet"))
            frames[name] = pl.read_parquet(files) if files else empty[name]
        yield frames


# ---------------------------------------------------------------------- results
def _merge(problems: dict[tuple[Any, ...], Problem], found: Sequence[Problem]) -> None:
    """Add one bucket's problems: the same finding in many buckets becomes one, rows summed.

    Row numbers within a bucket mean nothing to the user, so they are not kept as examples.
    """
    for p in found:
        examples = tuple(e for e in p.examples if not (isinstance(e, str) and e.startswith("row ")))
        key = (p.table, p.column, p.message, p.severity, p.suggestion)
        old = problems.get(key)
        if old is None:
            problems[key] = Problem(p.table, p.column, p.message, p.rows, examples, p.severity, p.suggestion)
            continue
        merged = tuple(dict.fromkeys(map(_hashable, (*old.examples, *examples))))[:N_EXAMPLES]
        problems[key] = Problem(
            p.table, p.column, p.message, old.rows + p.rows, merged, p.severity, p.suggestion
        )


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return str(value)
    return value
