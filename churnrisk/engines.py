"""Run a step on the engine asked for: in process, bucket by bucket, or on Apache Spark.

One function per step that the command line runs on a folder of event tables or a database
(``churnrisk features``, ``labels``, ``training-set``): read the store, compute, then write the
result or return it. Every engine executes the same declarations (the signal families of
:mod:`churnrisk.features`, the label steps of :mod:`churnrisk.definition`); this module only chooses
the engine, checks that the options fit it, and reads no more of the store than the step needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pandas as pd

from churnrisk._io import keyed
from churnrisk.database import is_database_url, write_output
from churnrisk.definition import ChurnDefinition, Kind
from churnrisk.errors import OptionError
from churnrisk.features import (
    DEFAULT_WINDOWS,
    build_features,
    build_features_partitioned,
    feature_inputs,
    feature_table,
)
from churnrisk.features._build import to_cutoff
from churnrisk.labels import make_labels
from churnrisk.training import (
    TrainingSetSummary,
    append_training_set,
    make_cutoffs,
    training_inputs,
    write_training_set,
)
from churnrisk.validation import load_store

__all__ = ["ENGINES", "StepRun", "features_at", "labels_at", "training_set_over"]

Engine = Literal["default", "spark"]
#: ``default``: Polars in this process; ``spark``: the same declarations on Apache Spark.
ENGINES: tuple[Engine, ...] = ("default", "spark")
Source = str | os.PathLike[str]
#: Called with (cutoffs done, cutoffs in all) while a training set is built.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class StepRun:
    """What a step computed and where it went.

    ``frame`` is the result when it was computed in this process (``None`` when Spark or the
    out-of-core path wrote it without collecting it); ``written`` is where it was written (fit to
    print, a database URL's password masked), with its ``rows`` and ``columns`` when known, and the
    number of customer ``buckets`` of an out-of-core run.
    """

    frame: pd.DataFrame | None = None
    written: str | None = None
    rows: int | None = None
    columns: int | None = None
    buckets: int | None = None


def features_at(
    data: Source,
    cutoff: Any,
    *,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    engine: Engine = "default",
    out_of_core: bool = False,
    partitions: int | None = None,
    output: Source | None = None,
    table: str | None = None,
    overwrite: bool = False,
    config: Any = None,
    encoding: str | None = None,
) -> StepRun:
    """Point-in-time features per customer at ``cutoff`` (``churnrisk features``).

    ``out_of_core`` (implied by ``partitions``) computes one bucket of customers at a time and
    needs a ``.parquet`` ``output``; ``engine="spark"`` writes a Parquet folder. Without ``output``
    the features are returned in ``frame``; with it they are written straight from Polars (no
    pandas table is made, and ``frame`` is ``None``).
    """
    _check_engine(data, engine, out_of_core=out_of_core or partitions is not None)
    cutoff = to_cutoff(cutoff)
    if out_of_core or partitions is not None:
        if output is None or engine == "spark":
            raise OptionError("needs --output FILE.parquet and the default engine", option="--out-of-core")
        options = {"partitions": partitions, "overwrite": overwrite, "config": config, "encoding": encoding}
        done = build_features_partitioned(data, cutoff, output=output, windows=windows, **options)
        return StepRun(written=str(done.path), rows=done.rows, columns=done.columns, buckets=done.partitions)
    if engine == "spark":
        options = {"windows": list(windows)}
        return _on_spark("features", data, cutoff, output, overwrite, config, encoding, options)
    store = load_store(data, config=config, encoding=encoding, columns=feature_inputs(), until=cutoff)
    if output is None:
        return StepRun(build_features(store, cutoff, windows=windows))
    # written as Polars computed it (no pandas copy on the way); each table freed once it is used
    features = feature_table(store, cutoff, windows=windows, release=True)
    where = write_output(features, output, table=table, overwrite=overwrite)
    return StepRun(written=where, rows=features.height, columns=features.width)


def labels_at(
    data: Source,
    cutoff: Any,
    *,
    engine: Engine = "default",
    output: Source | None = None,
    table: str | None = None,
    overwrite: bool = False,
    config: Any = None,
    encoding: str | None = None,
    definition: Kind | ChurnDefinition,
    **options: Any,
) -> StepRun:
    """Churn labels at ``cutoff`` (``churnrisk labels``); ``definition`` and ``options`` are those
    of :func:`churnrisk.labels.make_labels` (``horizon``, ``lookback``, ``lead_time``, ...).

    The store is read up to the end of the label window only (the end of the data is still known).
    The labels are returned in ``frame`` (``.attrs["censored"]`` counts the customers whose
    outcome is not known yet) unless Spark wrote them.
    """
    _check_engine(data, engine)
    if engine == "spark":
        spark_options = {"definition": definition, **options}
        return _on_spark("labels", data, cutoff, output, overwrite, config, encoding, spark_options)
    until = _label_end(to_cutoff(cutoff), definition, options)
    store = load_store(data, config=config, encoding=encoding, until=until)
    return _written(make_labels(store, cutoff, definition=definition, **options), output, table, overwrite)


def training_set_over(
    data: Source,
    first_cutoff: Any,
    last_cutoff: Any,
    *,
    output: Source,
    every: str = "1M",
    append: bool = False,
    engine: Engine = "default",
    overwrite: bool = False,
    config: Any = None,
    encoding: str | None = None,
    progress: Progress | None = None,
    definition: Kind,
    **options: Any,
) -> TrainingSetSummary | None:
    """Features and labels stacked over the cutoffs from ``first_cutoff`` to ``last_cutoff``,
    ``every`` apart, written to ``output`` (``churnrisk training-set``).

    ``definition`` and ``options`` are those of :func:`churnrisk.training.write_training_set` (the
    churn definition's ``horizon``, ``lookback``, ``lead_time``, ..., and ``windows``). ``append``
    adds the cutoffs not yet stored (default engine only). Returns what was written, or ``None``
    when Spark wrote it.
    """
    _check_engine(data, engine)
    if engine == "spark" and append:
        raise OptionError("--append is not available on the Spark engine", option="--append")
    cutoffs = make_cutoffs(first_cutoff, last_cutoff, every=every)
    if engine == "spark":
        spark_options = {"definition": definition, **options}
        _on_spark("training", data, cutoffs, output, overwrite, config, encoding, spark_options)
        return None
    until = _label_end(cutoffs[-1], definition, options)
    store = load_store(data, config=config, encoding=encoding, columns=training_inputs(), until=until)
    if append:
        return append_training_set(
            output, store, cutoffs, definition=definition, progress=progress, **options
        )
    return write_training_set(
        output, store, cutoffs, definition=definition, overwrite=overwrite, progress=progress, **options
    )


def _check_engine(data: Source, engine: Engine, *, out_of_core: bool = False) -> None:
    """The Spark engine and the out-of-core path read files; a database is read in process."""
    if engine not in ENGINES:
        raise OptionError(
            f"the engine must be one of {list(ENGINES)}. Got {engine!r} instead.", option="--engine"
        )
    if is_database_url(data) and (engine == "spark" or out_of_core):
        option = "--engine spark" if engine == "spark" else "--out-of-core"
        raise OptionError(
            f"{option} reads a folder of files; a database URL works with the default engine "
            "(which leaves the events after the cutoff on the server)",
            option="DATA",
        )


def _label_end(cutoff: datetime, definition: str | ChurnDefinition, options: Mapping[str, Any]) -> datetime:
    """The last instant the labels read: nothing after it is loaded (the end of the data is known)."""
    if not isinstance(definition, ChurnDefinition):
        definition = ChurnDefinition.from_options({**options, "definition": definition})
    return definition.label_end(cutoff)


def _written(frame: pd.DataFrame, output: Source | None, table: str | None, overwrite: bool) -> StepRun:
    if output is None:
        return StepRun(frame)
    rows = keyed(frame)  # the customer id (and cutoff) as columns
    where = write_output(rows, output, table=table, overwrite=overwrite)
    return StepRun(frame, where, rows=len(rows), columns=rows.shape[1])


def _on_spark(
    kind: str,
    data: Source,
    cutoffs: Any,
    output: Source | None,
    overwrite: bool,
    config: Any,
    encoding: str | None,
    options: dict[str, Any],
) -> StepRun:
    from churnrisk.spark import run  # PySpark is an extra: loaded only when asked for

    frame = run(
        kind, data, cutoffs, output=output, overwrite=overwrite, config=config, encoding=encoding, **options
    )
    return StepRun(written=str(output)) if frame is None else StepRun(frame)
