"""Training sets on Spark (features and labels of many cutoffs), and one call per command."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnrisk._io import atomic_path
from churnrisk.definition import ChurnDefinition
from churnrisk.errors import ChurnriskError
from churnrisk.features._build import check_windows, to_cutoff
from churnrisk.features._spark import spark_feature_frame, timestamp
from churnrisk.features._spec import DEFAULT_WINDOWS
from churnrisk.labels import label_definition
from churnrisk.spark._features import build_features, to_pandas, write_parquet
from churnrisk.spark._labels import SparkSpells, data_end, label_frame, labels_with_censored
from churnrisk.spark._session import _url
from churnrisk.spark._store import SparkEventStore, _spark_store, read_store
from churnrisk.store import EventStore, StoreConfig
from churnrisk.training._storage import DATASET_META

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

ID = "customer_id"


def build_training_set(
    store: SparkEventStore | EventStore,
    cutoffs: Iterable[Any],
    *,
    definition: str | ChurnDefinition,
    horizon: int | None = None,
    lookback: int | None = None,
    lead_time: int | None = None,
    reactivation_gap_days: float | None = None,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    spark: SparkSession | None = None,
) -> DataFrame:
    """Features and labels of every eligible customer at every cutoff, on Spark.

    The rows and columns of :func:`churnrisk.training.build_training_set` (``customer_id``,
    ``cutoff``, the features, ``churned`` — null for a censored cutoff — and ``churn_type``),
    sorted by cutoff and customer, as a Spark DataFrame.
    """
    sstore = _spark_store(store, spark)
    churn = label_definition(sstore, definition, horizon, lookback, lead_time, reactivation_gap_days)
    windows_ = check_windows(windows)
    values = sorted({to_cutoff(c) for c in cutoffs})
    if not values:
        raise ChurnriskError("no cutoffs given. Suggestion: make_cutoffs('2024-01-31', '2024-12-31').")
    last_event = data_end(sstore)
    spells: SparkSpells = {}  # each source's spells planned once for all cutoffs
    frames = []
    for cutoff in values:
        labels = label_frame(sstore, cutoff, churn, last_event=last_event, spells=spells)
        features = spark_feature_frame(sstore.tables, cutoff, windows_)
        names = [c for c in features.columns if c != ID]
        frames.append(
            labels.join(features, on=ID, how="left").select(
                ID, timestamp(cutoff).alias("cutoff"), *names, "churned", "churn_type"
            )
        )
    return reduce(lambda a, b: a.unionByName(b), frames).orderBy("cutoff", ID)


def run(
    kind: str,
    data: str | os.PathLike[str],
    cutoffs: Any,
    *,
    output: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    config: str | os.PathLike[str] | StoreConfig | None = None,
    encoding: str | None = None,
    spark: SparkSession | None = None,
    **options: Any,
) -> pd.DataFrame | None:
    """What ``churnrisk features|labels|training-set --engine spark`` does, in one call.

    Reads ``data`` with :func:`read_store`, computes ``kind`` (``"features"``, ``"labels"`` or
    ``"training"``; ``cutoffs`` is one cutoff, or several for ``"training"``) with ``options``
    passed on, then writes a Parquet folder to ``output`` (returns ``None``) or collects the result
    like the default engine returns it (labels with ``.attrs["censored"]``).
    """
    from pyspark.sql import functions as F

    if output is not None and not _url(output).lower().endswith(".parquet"):
        raise ChurnriskError(
            f"the Spark engine writes Parquet; got {output}. Suggestion: -o {Path(str(output)).stem}.parquet"
        )
    store = read_store(data, spark=spark, config=config, encoding=encoding)
    censored = 0
    if kind == "features":
        frame = build_features(store, cutoffs, **options)
    elif kind == "labels":
        frame, churn = labels_with_censored(store, cutoffs, options)
        censored = frame.filter(F.col("churned").isNull()).count()
        frame = frame.filter(F.col("churned").isNotNull()).orderBy(ID)
    elif kind == "training":
        frame = build_training_set(store, cutoffs, **options)
    else:
        raise ChurnriskError(
            f"The 'kind' parameter must be features, labels or training. Got {kind!r} instead."
        )
    if output is not None:
        write_parquet(frame, output, overwrite=overwrite)
        if kind == "training":
            _record_options(output, store, options)
        return None
    out = to_pandas(frame, kind=kind)
    if kind == "labels":
        out.attrs = {"censored": censored, "cutoff": to_cutoff(cutoffs)}
        out.attrs.update(churn.options())
    return out


def _record_options(output: str | os.PathLike[str], store: SparkEventStore, options: dict[str, Any]) -> None:
    """The label options beside a training set written to a local folder, so that ``churnrisk train
    --training-set`` reads them (:func:`churnrisk.training.read_training_set`)."""
    folder = Path(str(output))
    if "://" in str(output) or not folder.is_dir():
        return  # a cluster path: train is told the options
    churn = label_definition(
        store,
        options.get("definition"),
        options.get("horizon"),
        options.get("lookback"),
        options.get("lead_time"),
        options.get("reactivation_gap_days"),
    )
    windows = list(check_windows(options.get("windows", DEFAULT_WINDOWS)))
    with atomic_path(folder / DATASET_META) as tmp:
        tmp.write_text(json.dumps({**churn.options(), "windows": windows}, indent=2) + "\n", encoding="utf-8")
