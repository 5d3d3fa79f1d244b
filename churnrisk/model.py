"""The churn model: a scikit-learn pipeline, trained on earlier data and calibrated on later data (DESIGN §5).

:func:`make_pipeline` builds the estimator (a ``ColumnTransformer`` then gradient boosting, or a scaled
logistic regression). :func:`fit_calibrated` trains it on one slice of rows and calibrates its
probabilities on a later slice with ``CalibratedClassifierCV(FrozenEstimator(...))``.
:class:`ChurnModel` carries the fitted estimator together with everything needed to use it safely
later: the feature list and input schema, the churn definition, the cutoffs, the metrics.

This module is the estimator only: it knows nothing of stores, cutoffs or labels. The rows it learns
from are built by :mod:`churnrisk.training`; :func:`churnrisk.workflow.train_model` runs the training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.pipeline import make_pipeline as _chain
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from churnrisk._memory import trim_freed_memory
from churnrisk.errors import ChurnriskError

__all__ = [
    "MODEL_KINDS",
    "ChurnModel",
    "EncodedRows",
    "calibrate",
    "decision_values",
    "fit_calibrated",
    "fit_calibrated_rows",
    "fit_cross_calibrated",
    "input_schema",
    "make_pipeline",
    "prepare_features",
    "sample_rows",
    "training_matrix",
]

ModelKind = Literal["gbm", "logistic"]
MODEL_KINDS: tuple[str, ...] = ("gbm", "logistic")


def input_schema(frame: pd.DataFrame) -> dict[str, str]:
    """``{column: "number" | "category"}``: how each feature column is read (bools count as numbers)."""
    schema = {}
    for column in frame.columns:
        dtype = frame[column].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        schema[str(column)] = "number" if numeric else "category"
    return schema


def prepare_features(frame: pd.DataFrame, schema: Mapping[str, str]) -> pd.DataFrame:
    """The columns of ``schema`` in its order and types: numbers as float, categories as text.

    Raises :class:`ChurnriskError` naming every column the model needs that the data lacks.
    """
    _check_columns(frame, schema)
    out = {}
    for column, kind in schema.items():
        values = frame[column]
        out[column] = _as_float(values, column) if kind == "number" else _as_text(values)
    return pd.DataFrame(out, index=frame.index)


def training_matrix(frame: pd.DataFrame, schema: Mapping[str, str]) -> pd.DataFrame:
    """The columns of ``schema`` to fit on: what :func:`prepare_features` gives, without the copies.

    A training set holds millions of rows of 32-bit numbers and categorical text; those columns are
    kept as they are (the pipelines encode a categorical as its text, and a 32-bit number has the
    same value in 64 bits), whole numbers become floats (32-bit when exact), other text becomes text.
    """
    _check_columns(frame, schema)
    out = {}
    for column, kind in schema.items():
        values = frame[column]
        if kind == "category":
            out[column] = values if _text_categories(values) else _as_text(values)
        elif values.dtype.kind == "f":
            out[column] = values
        else:
            out[column] = _as_float(values, column, np.float32 if _exact32(values) else np.float64)
    return pd.DataFrame(out, copy=False)


def _check_columns(frame: pd.DataFrame, schema: Mapping[str, str]) -> None:
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ChurnriskError(
            f"the data lacks {len(missing)} column(s) the model needs: {', '.join(missing[:20])}"
            f"{' ...' if len(missing) > 20 else ''}. Suggestion: score data of the same shape as the "
            "training data (same tables and columns)."
        )


def _as_text(values: pd.Series) -> pd.Series:
    text = values.astype("object").where(values.notna(), np.nan).astype("str")
    return text.where(values.notna(), np.nan)


def _text_categories(values: pd.Series) -> bool:
    dtype = values.dtype
    return isinstance(dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(dtype.categories.dtype)


def _exact32(values: pd.Series) -> bool:
    """Whole numbers a 32-bit float holds exactly (up to 2**24 in size)."""
    if values.dtype.kind not in "biu":
        return False
    if values.dtype.kind == "b":
        return True
    low, high = values.min(), values.max()  # no copy, unlike abs()
    return bool(pd.isna(high) or max(-int(low), int(high)) <= 2**24)


def _as_float(values: pd.Series, column: str, dtype: Any = np.float64) -> pd.Series:
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values[numbers.isna() & values.notna()]
        raise ChurnriskError(
            f"column {column!r} must be numeric; got values such as {bad.iloc[:3].tolist()}. "
            "Suggestion: fix or remove those values."
        ) from None


#: Gradient-boosting settings for event stores: few, 15-leaf trees (scoring a million customers with
#: reasons stays fast). Snapshot tables, small and scored once, use :data:`FINE_GBM`.
FAST_GBM: dict[str, Any] = {
    "learning_rate": 0.1,
    "max_iter": 150,
    "max_leaf_nodes": 15,
    "n_iter_no_change": 10,
}
FINE_GBM: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 300,
    "max_leaf_nodes": 7,
    "n_iter_no_change": 20,
}


def make_pipeline(
    schema: Mapping[str, str],
    *,
    model: str = "gbm",
    random_state: int | None = 0,
    gbm_options: Mapping[str, Any] | None = None,
) -> Pipeline:
    """The unfitted estimator for feature columns described by ``schema`` (see :func:`input_schema`).

    ``gbm``: categories ordinal-encoded (unknown or missing → NaN) and handed to
    ``HistGradientBoostingClassifier`` as categorical features; NaN numbers go in as they are (the
    trees learn where missing values belong). ``logistic``: mean imputation with missing-value
    indicators and scaling for numbers, one-hot encoding for categories, then ``LogisticRegression``.
    """
    if model == "gbm":
        return _gbm(schema, random_state, {**FAST_GBM, **(gbm_options or {})})
    if model == "logistic":
        return _logistic(schema)
    raise ChurnriskError(f"The 'model' parameter must be one of {MODEL_KINDS}. Got {model!r} instead.")


def tree_inputs(schema: Mapping[str, str]) -> tuple[ColumnTransformer, list[int] | None]:
    """The preparation for gradient boosting (numbers as they are, then categories ordinal-encoded,
    unknown or missing → NaN) and the positions of the categorical columns it outputs."""
    numeric = [c for c, k in schema.items() if k == "number"]
    categorical = [c for c, k in schema.items() if k == "category"]
    # 32-bit codes: beside 32-bit numbers the encoded matrix stays 32-bit (half the memory)
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        dtype=np.float32,
    )
    prep = ColumnTransformer(
        [("number", "passthrough", numeric), ("category", encoder, categorical)],
        verbose_feature_names_out=False,
    )
    return prep, list(range(len(numeric), len(numeric) + len(categorical))) or None


def _gbm(schema: Mapping[str, str], random_state: int | None, options: Mapping[str, Any]) -> Pipeline:
    prep, categories = tree_inputs(schema)
    booster = HistGradientBoostingClassifier(
        min_samples_leaf=40,
        l2_regularization=1.0,
        categorical_features=categories,
        early_stopping=True,
        validation_fraction=0.15,
        random_state=random_state,
        **options,
    )
    return Pipeline([("prepare", prep), ("model", booster)])


def _logistic(schema: Mapping[str, str]) -> Pipeline:
    numeric = [c for c, k in schema.items() if k == "number"]
    categorical = [c for c, k in schema.items() if k == "category"]
    numbers = _chain(
        # the mean, not the median: the indicator carries "missing", and scikit-learn's median over
        # NaNs goes through masked arrays (the whole preparation: 5.1 s, not 1.9 s, at 250,000 rows)
        SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )
    categories = _chain(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", min_frequency=5),
    )
    prep = ColumnTransformer([("number", numbers, numeric), ("category", categories, categorical)])
    # Newton-Cholesky: exact and fast for many rows and a few hundred columns (lbfgs took 10× longer)
    model = LogisticRegression(C=0.5, solver="newton-cholesky", max_iter=100)
    return Pipeline([("prepare", prep), ("model", model)])


def fit_calibrated(
    pipeline: Pipeline,
    X_train: pd.DataFrame,  # noqa: N803
    y_train: Any,
    X_calibrate: pd.DataFrame,  # noqa: N803
    y_calibrate: Any,
    *,
    method: str = "sigmoid",
) -> CalibratedClassifierCV:
    """Fit ``pipeline`` on the training slice, then calibrate its probabilities on the (later) slice.

    Sigmoid (Platt) calibration by default: it is monotone, so calibration never reorders customers,
    and it is stable on the few thousand rows a calibration slice usually has.
    """
    _check_classes(y_train, y_calibrate)
    _fit_steps(pipeline, X_train, np.asarray(y_train, dtype=int))
    return calibrate(pipeline, X_calibrate, np.asarray(y_calibrate, dtype=int), method=method)[0]


def fit_calibrated_rows(
    pipeline: Pipeline,
    X: pd.DataFrame,  # noqa: N803
    y: Any,
    fit: np.ndarray,
    calibration: np.ndarray,
    *,
    method: str = "sigmoid",
) -> tuple[CalibratedClassifierCV, np.ndarray]:
    """:func:`fit_calibrated` on the rows ``fit`` and ``calibration`` (boolean masks) of ``X``, and
    the calibrated probabilities of the calibration rows (see :func:`calibrate`).

    Each slice is made when its step needs it and let go after it: the fit holds neither the
    calibration rows nor, once encoded, its own (the estimator's copies need the room).
    """
    y = np.asarray(y, dtype=int)
    _check_classes(y[fit], y[calibration])
    _fit_steps(pipeline, X[fit], y[fit])
    return calibrate(pipeline, X[calibration], y[calibration], method=method)


def calibrate(
    pipeline: Pipeline,
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    *,
    method: str = "sigmoid",
) -> tuple[CalibratedClassifierCV, np.ndarray]:
    """``CalibratedClassifierCV(FrozenEstimator(pipeline), method=method).fit(X, y)`` and its
    probabilities of ``X``, from one pass of the fitted pipeline over ``X``
    (:func:`decision_values`); fitting, then predicting, would take two, each slower.

    The calibrator is fitted by the step ``CalibratedClassifierCV.fit`` runs on a frozen estimator's
    scores (``_fit_calibrator``), so the object is the one scikit-learn makes (a test checks it).
    """
    from sklearn.calibration import _fit_calibrator

    scores = decision_values(pipeline, X)
    frozen = FrozenEstimator(pipeline)
    calibrated = CalibratedClassifierCV(frozen, method=method)
    calibrated.classes_ = np.unique(y)
    pair = _fit_calibrator(frozen, scores.reshape(-1, 1), y, calibrated.classes_, method, xp=np)
    calibrated.calibrated_classifiers_ = [pair]
    for name in ("n_features_in_", "feature_names_in_"):
        if hasattr(pipeline, name):
            setattr(calibrated, name, getattr(pipeline, name))
    return calibrated, np.asarray(pair.calibrators[0].predict(scores), dtype=float)


def decision_values(pipeline: Pipeline, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
    """``pipeline.decision_function(X)``; a :func:`tree_inputs` booster's through its own bins
    (:class:`EncodedRows`: the same numbers, several times faster on many rows)."""
    encoded = EncodedRows.of_pipeline(pipeline, X)
    return encoded.raw() if encoded is not None else in_blocks(pipeline.decision_function, X)


#: Rows an estimator without a binned path predicts at a time: its encoded copy (a dense float64
#: matrix with indicator and one-hot columns: 1 GiB for a million rows) stays small.
BLOCK_ROWS = 100_000


def in_blocks(predict: Callable[[pd.DataFrame], Any], X: pd.DataFrame) -> np.ndarray:  # noqa: N803
    """``predict(X)`` as floats, :data:`BLOCK_ROWS` rows at a time (each row's result is its own)."""
    starts = range(0, max(len(X), 1), BLOCK_ROWS)
    return np.concatenate([np.asarray(predict(X.iloc[s : s + BLOCK_ROWS]), dtype=float) for s in starts])


def sample_rows(rows: np.ndarray, at_most: int, *, seed: int = 0) -> np.ndarray:
    """``rows`` (a boolean mask) as it is, or a seeded sample of ``at_most`` of its rows."""
    if rows.sum() <= at_most:
        return rows
    keep = np.random.default_rng(seed).choice(np.flatnonzero(rows), at_most, replace=False)
    thinned = np.zeros_like(rows)
    thinned[keep] = True
    return thinned


def _check_classes(y_train: Any, y_calibrate: Any) -> None:
    if len(np.unique(y_train)) < 2 or len(np.unique(y_calibrate)) < 2:
        raise ChurnriskError(
            "both the training and the calibration rows need churners and non-churners. "
            "Suggestion: use more cutoffs or a longer history."
        )


def _fit_steps(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray) -> None:  # noqa: N803
    """``pipeline.fit(X, y)`` step by step, letting go of ``X`` once encoded: a slice the caller
    made for the call (``X[fit]``) is freed before the estimator makes its own copies."""
    encoded = pipeline[:-1].fit_transform(X, y)
    del X
    trim_freed_memory()  # what the caller's slice and the encoding freed, before the fit's copies
    pipeline[-1].fit(encoded, y)


def fit_cross_calibrated(
    pipeline: Pipeline,
    X: pd.DataFrame,  # noqa: N803
    y: Any,
    *,
    method: str = "sigmoid",
    random_state: int | None = 0,
) -> CalibratedClassifierCV:
    """Fit and calibrate by stratified 5-fold cross-validation (for data without a time order)."""
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=random_state)
    return CalibratedClassifierCV(pipeline, method=method, cv=folds).fit(X, np.asarray(y, dtype=int))


@dataclass
class ChurnModel:
    """A fitted, calibrated churn model and its metadata.

    Attributes
    ----------
    estimator : fitted classifier
        ``predict_proba`` on the prepared feature frame.
    metadata : dict
        ``kind`` ("events" or "snapshot"), ``schema`` (feature → "number"/"category"), ``reference``
        (the population's typical value of each feature, for reasons), ``families`` (feature → family),
        ``definition``, ``horizon``, ``lookback``, ``lead_time``, ``cutoffs``, ``metrics`` and more.
        Everything in it is plain JSON.
    """

    estimator: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def schema(self) -> dict[str, str]:
        return dict(self.metadata["schema"])

    @property
    def features(self) -> list[str]:
        return list(self.metadata["schema"])

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "churnrisk-model"))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Churn probability per row of a feature frame (columns checked and ordered by the schema)."""
        return self.predict_prepared(prepare_features(features, self.schema))

    def predict_prepared(self, prepared: pd.DataFrame) -> np.ndarray:
        """Churn probability per row of a frame already passed through :func:`prepare_features`."""
        if len(prepared) == 0:
            return np.empty(0)
        encoded = EncodedRows.of(self, prepared, what_if=False)
        if encoded is not None:
            return encoded.proba()
        return in_blocks(lambda rows: self.estimator.predict_proba(rows)[:, 1], prepared)


class EncodedRows:
    """The customers once through the pipeline's encoding, for many what-if predictions.

    For a calibrated ``Pipeline(ColumnTransformer, HistGradientBoostingClassifier)`` (one
    calibrated classifier, as :func:`churnrisk.model.fit_calibrated` makes), the rows are encoded
    once and binned as the booster binned its training data: one byte per value, a number the
    index of its bin between the booster's thresholds, a category its own bin, a missing value or
    an unknown category the missing-value bin. A tree reads bins exactly as it reads values (a
    split at bin ``b`` sends ``x <= threshold[b]`` left, unknown categories go where missing values
    go), so the sum of the trees' outputs is the one ``predict_proba`` computes, in the same order
    (a test checks equality); on bytes it is faster and eight times smaller. A what-if sets a
    family's bins to the typical values' bins; :meth:`what_ifs` stacks the what-ifs of every
    family into one array, so the trees run once. Then the model's own sigmoid calibrator. It reads
    scikit-learn's fitted trees and bins (``_predictors``, ``_bin_mapper``): any other layout
    returns ``None`` from :meth:`of` and the caller re-predicts whole frames.
    """

    #: Rows encoded at a time: the transient float64 matrix is that of one chunk.
    CHUNK = 16_384
    #: Rows that go through all the trees at a time (1.6 MiB of bins at 100 features).
    TREE_ROWS = 16_384

    def __init__(
        self, model: ChurnModel | None, pipeline: Any, calibrator: Any, prepared: pd.DataFrame
    ) -> None:
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        self.prepare, self.booster, self.calibrator = pipeline[:-1], pipeline[-1], calibrator
        names = np.array([str(n) for n in self.prepare.get_feature_names_out()])
        categorical = self.booster.is_categorical_
        if categorical is not None:  # the booster puts its categorical features first
            names = np.concatenate([names[categorical], names[~categorical]])
        self.names = names.tolist()
        self.threads = _openmp_effective_n_threads()
        self.bins = self.booster._bin_mapper
        self.layout = self._layout()
        chunks = range(0, len(prepared), self.CHUNK)
        self.X = np.concatenate([self._binned(prepared.iloc[s : s + self.CHUNK]) for s in chunks])
        self.typical = None if model is None else self._binned(_typical_row(model))[0]

    @classmethod
    def of(cls, model: ChurnModel, prepared: pd.DataFrame, *, what_if: bool = True) -> EncodedRows | None:
        """The encoded customers, or None when the estimator is not such a pipeline."""
        from sklearn.frozen import FrozenEstimator

        calibrated = getattr(model.estimator, "calibrated_classifiers_", None)
        if calibrated is None or len(calibrated) != 1:
            return None
        pipeline = calibrated[0].estimator
        pipeline = pipeline.estimator if isinstance(pipeline, FrozenEstimator) else pipeline
        if calibrated[0].method != "sigmoid" or len(calibrated[0].calibrators) != 1:
            return None
        return cls._make(model if what_if else None, pipeline, calibrated[0].calibrators[0], prepared)

    @classmethod
    def of_pipeline(cls, pipeline: Any, prepared: pd.DataFrame) -> EncodedRows | None:
        """The rows encoded for a fitted (uncalibrated) pipeline, for :meth:`raw`; or None."""
        return cls._make(None, pipeline, None, prepared)

    @classmethod
    def _make(
        cls, model: ChurnModel | None, pipeline: Any, calibrator: Any, prepared: pd.DataFrame
    ) -> EncodedRows | None:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.pipeline import Pipeline

        if (
            len(prepared) == 0
            or not isinstance(pipeline, Pipeline)
            or not isinstance(pipeline[-1], HistGradientBoostingClassifier)
            or pipeline[-1].n_trees_per_iteration_ != 1
        ):
            return None
        try:
            return cls(model, pipeline, calibrator, prepared)
        except (AttributeError, TypeError, ValueError):  # another scikit-learn's internals
            return None

    def _layout(self) -> tuple[list[str], list[str], Callable[[pd.DataFrame], np.ndarray]] | None:
        """``(numbers, categories, encode)`` for :func:`tree_inputs`' preparation (numbers passed
        through, categories ordinal-encoded, then by the booster's own encoder): the columns can be
        encoded one at a time, a category once per distinct value. ``None`` for any other."""
        steps = self.prepare.steps
        if len(steps) != 1 or not isinstance(steps[0][1], ColumnTransformer):
            return None
        numbers, categories, encoders = [], [], []  # type: list[str], list[str], list[Any]
        for _, transformer, columns in steps[0][1].transformers_:
            if isinstance(transformer, str) and transformer == "drop":
                continue
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                return None
            if _passes_through(transformer):
                numbers += columns
            elif isinstance(transformer, OrdinalEncoder) and not encoders:
                categories, encoders = columns, [transformer]
            else:
                return None
        if categories:
            encoders.append(self.booster._preprocessor.named_transformers_["encoder"])
        if self.names != [*categories, *numbers] or len(encoders) not in (0, 2):
            return None
        return numbers, categories, lambda frame: encoders[1].transform(encoders[0].transform(frame))

    def _binned(self, frame: pd.DataFrame) -> np.ndarray:
        """The rows as bins (row-major bytes), as the booster's ``_bin_mapper`` bins them."""
        out = np.empty((len(frame), len(self.names)), dtype=np.uint8)
        if self.layout is None:  # the whole frame through the preparation
            X = self.booster._preprocess_X(self.prepare.transform(frame), reset=False)  # noqa: N806
            for j in range(X.shape[1]):
                out[:, j] = self._bin(j, X[:, j])
            return out
        numbers, categories, encode = self.layout
        for name in numbers:
            j = self.names.index(name)
            out[:, j] = self._bin(j, frame[name].to_numpy(dtype=np.float64))
        if categories:  # each distinct value through the encoders once, then gathered
            factorized = [pd.factorize(frame[c], use_na_sentinel=False) for c in categories]
            size = max(len(distinct) for _, distinct in factorized)
            padded = {
                c: np.resize(np.asarray(d, dtype=object), size)
                for c, (_, d) in zip(categories, factorized, strict=True)
            }
            values = encode(pd.DataFrame(padded))
            for k, (name, (codes, _)) in enumerate(zip(categories, factorized, strict=True)):
                j = self.names.index(name)
                out[:, j] = self._bin(j, values[:, k])[codes]
        return out

    def _bin(self, j: int, x: np.ndarray) -> np.ndarray:
        """Column ``j``'s values as bins: the first bin whose edge is >= x; a category's edges are
        the known categories, and any other value goes where missing values go."""
        edges, missing = self.bins.bin_thresholds_[j], self.bins.missing_values_bin_idx_
        out = np.searchsorted(edges, x, side="left").astype(np.uint8)
        out[~np.isin(x, edges) if self.bins.is_categorical_[j] else np.isnan(x)] = missing
        return out

    def _raw(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        from concurrent.futures import ThreadPoolExecutor

        raw = np.zeros(len(X)) + self.booster._baseline_prediction.ravel()[0]

        def through_the_trees(rows: slice) -> None:
            part, out = X[rows], raw[rows]
            for (tree,) in self.booster._predictors:
                out += tree.predict_binned(part, self.bins.missing_values_bin_idx_, 1)

        # Row blocks that stay in cache through every tree, one thread each (the trees release the
        # GIL): no thread waits for another after each tree, as one parallel call per tree would.
        blocks = [slice(start, start + self.TREE_ROWS) for start in range(0, len(X), self.TREE_ROWS)]
        with ThreadPoolExecutor(max(1, min(self.threads, len(blocks)))) as pool:
            list(pool.map(through_the_trees, blocks))
        return raw

    def _proba(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.asarray(self.calibrator.predict(self._raw(X)), dtype=float)

    def raw(self) -> np.ndarray:
        """The booster's decision function (its raw, uncalibrated score) of every encoded row."""
        return self._raw(self.X)

    def proba(self) -> np.ndarray:
        """Calibrated churn probability of every encoded row."""
        return self._proba(self.X)

    def what_ifs(self, cases: Sequence[tuple[np.ndarray, Sequence[str]]]) -> list[np.ndarray]:
        """Per ``(rows, columns)`` case, the calibrated probability of ``rows`` with ``columns`` set
        to their typical values; all cases in one pass over the trees."""
        if self.typical is None:
            raise ValueError("encoded without the model's typical values (what_if=False)")
        if not cases:
            return []
        ends = np.cumsum([len(rows) for rows, _ in cases])
        stacked = np.empty((ends[-1], self.X.shape[1]), dtype=self.X.dtype)
        for (rows, columns), end in zip(cases, ends, strict=True):
            index = [self.names.index(c) for c in columns]
            part = stacked[end - len(rows) : end]
            np.take(self.X, rows, axis=0, out=part)
            part[:, index] = self.typical[index]
        proba = self._proba(stacked) if len(stacked) else np.empty(0)
        return np.split(proba, ends[:-1])


def _passes_through(transformer: Any) -> bool:
    """``"passthrough"``, which a fitted ``ColumnTransformer`` holds as an identity function."""
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(transformer, str):
        return transformer == "passthrough"
    return isinstance(transformer, FunctionTransformer) and transformer.func is None


def _typical_row(model: ChurnModel) -> pd.DataFrame:
    reference = model.metadata["reference"]
    typical = pd.DataFrame({c: [np.nan if reference.get(c) is None else reference[c]] for c in model.schema})
    return prepare_features(typical, model.schema)


def reference_values(frame: pd.DataFrame, schema: Mapping[str, str]) -> dict[str, Any]:
    """The population's typical value per feature (median, or most frequent category); JSON-safe."""
    out: dict[str, Any] = {}
    for column, kind in schema.items():
        values = frame[column].dropna()
        if values.empty:
            out[column] = None
        elif kind == "number":
            out[column] = float(values.median())
        else:
            out[column] = str(values.astype(str).value_counts().sort_index().idxmax())
    return out


# --- event stores: stacked cutoffs, out-of-time split ------------------------------------------------


_NOT_FEATURES = ("customer_id", "cutoff", "churned", "churn_type")


def feature_part(rows: pd.DataFrame) -> pd.DataFrame:
    """The feature columns of a training-set frame."""
    return rows.drop(columns=[c for c in _NOT_FEATURES if c in rows.columns])


def spread_values(frame: pd.DataFrame, schema: Mapping[str, str]) -> dict[str, float | None]:
    """Interquartile range of each numeric feature (standard deviation when it is 0), for reasons."""
    out: dict[str, float | None] = {}
    for column, kind in schema.items():
        values = frame[column].dropna()
        if kind != "number" or values.empty:
            out[column] = None
            continue
        iqr = float(values.quantile(0.75) - values.quantile(0.25))
        out[column] = iqr if iqr > 0 else float(values.std()) if len(values) > 1 else None
    return out


def risk_sides(frame: pd.DataFrame, y: Any, schema: Mapping[str, str]) -> dict[str, Any]:
    """Which side of each numeric feature goes with more churn in the training rows, for reasons.

    ``{column: {"sign": +1 | -1 | 0, "edge": value}}``: ``sign`` is the sign of the rank correlation
    between the feature and the label (0 when below 0.02 in size, or for categories), ``edge`` the
    75th (sign +1) or 25th (sign -1) percentile: a customer's value beyond the edge is on the risky
    side. Only such values are offered as reasons (a reason must raise the risk).
    """
    labels = pd.Series(np.asarray(y, dtype=float), index=frame.index)
    out: dict[str, Any] = {}
    for column, kind in schema.items():
        values = frame[column]
        known = values.notna()
        if kind != "number" or known.sum() < 10 or values[known].nunique() < 2:
            out[column] = {"sign": 0, "edge": None}
            continue
        rho = values[known].rank().corr(labels[known].rank())
        sign = 0 if not np.isfinite(rho) or abs(rho) < 0.02 else int(np.sign(rho))
        edge = float(values[known].quantile(0.75 if sign > 0 else 0.25)) if sign else None
        out[column] = {"sign": sign, "edge": edge}
    return out


def feature_families(columns: Sequence[str]) -> dict[str, str]:
    """Feature column → signal family (``purchases_frequency_30d`` → ``purchases``); else the column."""
    from churnrisk.features import FAMILIES

    names = sorted((f.name for f in FAMILIES), key=len, reverse=True)
    return {c: next((n for n in names if c.startswith(f"{n}_")), c) for c in columns}
