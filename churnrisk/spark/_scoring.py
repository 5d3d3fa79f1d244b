"""Scoring on Spark: a saved model applied to a Spark DataFrame of features on the executors."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnrisk.errors import ChurnriskError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


#: Models loaded in this Python process, by content hash: a Spark Python worker loads each model once.
_MODELS: dict[str, Any] = {}


def score(
    features: DataFrame,
    model: str | os.PathLike[str],
    *,
    customer_col: str = "customer_id",
    revenue_col: str | None = None,
    n_reasons: int = 3,
    trust_pickle: bool = False,
) -> DataFrame:
    """Churn scores for a Spark DataFrame of per-customer features, computed on the executors.

    The model files are read once on the driver (loaded there too, so that a refused or broken
    model fails before any task runs) and shipped to the executors as a broadcast variable; each
    Python worker loads the model once, through the same safe loader
    (:func:`churnrisk.modelfile.load_model`), and scores Arrow batches of rows (``mapInArrow``,
    the Arrow twin of ``mapInPandas``: batches reach pandas through PyArrow, not through PySpark's
    pandas conversion). Each batch goes through the in-process scorer
    (:func:`churnrisk.scoring.score_features`), so the columns and their meaning are the same.

    Parameters
    ----------
    features : pyspark.sql.DataFrame
        One row per customer with ``customer_col`` and every feature the model was trained on
        (e.g. from :func:`build_features`).
    model : path
        A model saved by :func:`churnrisk.modelfile.save_model` (``NAME.skops`` beside ``NAME.json``).
    customer_col : str, default "customer_id"
    revenue_col : str, optional
        A column of yearly revenue per customer; ``revenue_at_risk`` is NaN without it.
    n_reasons : int, default 3
        Reasons given per customer.
    trust_pickle : bool, default False
        As in :func:`~churnrisk.modelfile.load_model`.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_col``, ``churn_probability``, ``risk_tier`` (low/medium/high),
        ``revenue_at_risk`` and ``reasons``, as from :func:`churnrisk.scoring.score_features`
        (ordered by probability within each Arrow batch).
    """
    from pyspark.sql import types as T

    from churnrisk.modelfile import load_model

    loaded = load_model(model, trust_pickle=trust_pickle)
    needed = [customer_col, *loaded.features, *([revenue_col] if revenue_col else [])]
    missing = [c for c in needed if c not in features.columns]
    if missing:
        raise ChurnriskError(
            f"the feature table lacks {len(missing)} column(s) the model needs: {', '.join(missing[:20])}. "
            f"Suggestion: {_fix_for(missing)}"
        )
    files = _model_files(model)
    payload = features.sparkSession.sparkContext.broadcast(files)
    schema = T.StructType(
        [
            features.schema[customer_col],
            T.StructField("churn_probability", T.DoubleType(), nullable=True),
            T.StructField("risk_tier", T.StringType(), nullable=True),
            T.StructField("revenue_at_risk", T.DoubleType(), nullable=True),
            T.StructField("reasons", T.StringType(), nullable=True),
        ]
    )

    def batches(stream: Iterator[Any]) -> Iterator[Any]:
        return _score_batches(
            stream,
            payload.value,
            trust_pickle,
            customer_col=customer_col,
            revenue_col=revenue_col,
            n_reasons=n_reasons,
        )

    with warnings.catch_warnings():
        # PySpark warns about pandas >= 3 for every Python UDF; batches here reach pandas through
        # PyArrow's own conversion, not PySpark's, which is what the warning is about.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
        # every feature column: reasons may quote columns the model does not use
        return features.mapInArrow(batches, schema)


def _fix_for(missing: list[str]) -> str:
    from churnrisk.spark._features import REPEAT_BUYING

    if set(REPEAT_BUYING) & set(missing):  # an order-data model learned from BG/NBD columns
        return (
            "this model was trained on order data with the BG/NBD columns; add them with "
            "churnrisk.spark.with_repeat_buying(features, store, cutoff, horizon=<the model's horizon>)."
        )
    return "score features built with the same tables and windows as the training data."


def _model_files(model: str | os.PathLike[str]) -> dict[str, bytes]:
    """The model file and its metadata beside it, as bytes by file name."""
    path = Path(model)
    if path.suffix != ".skops" and not path.is_file():
        path = path.with_name(path.name + ".skops")
    files = {path.name: path.read_bytes()}
    meta = path.with_suffix(".json")
    if meta.is_file():
        files[meta.name] = meta.read_bytes()
    return files


def _worker_model(files: Mapping[str, bytes], trust_pickle: bool) -> Any:
    """Load the model once per Python process, from a private temporary copy of its files."""
    import hashlib
    import tempfile

    from churnrisk.modelfile import load_model

    key = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()
    if key not in _MODELS:
        with tempfile.TemporaryDirectory(prefix="churnrisk-model-") as folder:
            for name, content in files.items():
                Path(folder, name).write_bytes(content)
            model_name = next(n for n in files if not n.endswith(".json"))
            _MODELS[key] = load_model(Path(folder, model_name), trust_pickle=trust_pickle)
    return _MODELS[key]


def _score_batches(
    stream: Iterator[Any],
    files: Mapping[str, bytes],
    trust_pickle: bool,
    *,
    customer_col: str,
    revenue_col: str | None,
    n_reasons: int,
) -> Iterator[Any]:
    import pyarrow as pa

    from churnrisk.scoring import score_features

    model = _worker_model(files, trust_pickle)
    for batch in stream:
        if batch.num_rows == 0:
            continue
        frame = batch.to_pandas().set_index(customer_col)
        revenue = frame.pop(revenue_col).astype(float) if revenue_col else None
        scores = score_features(model, frame, revenue=revenue, n_reasons=n_reasons)
        id_type = batch.schema.field(customer_col).type
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(scores["customer_id"].to_numpy(), type=id_type),
                pa.array(scores["churn_probability"].to_numpy(), type=pa.float64()),
                pa.array(scores["risk_tier"].astype(str).to_numpy(), type=pa.string()),
                pa.array(scores["revenue_at_risk"].to_numpy(dtype=float), type=pa.float64()),
                pa.array(scores["reasons"].to_numpy(), type=pa.string()),
            ],
            names=[customer_col, "churn_probability", "risk_tier", "revenue_at_risk", "reasons"],
        )
