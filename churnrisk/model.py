"""The churn model: a scikit-learn pipeline, trained on earlier data and calibrated on later data (DESIGN §5).

:func:`make_pipeline` builds the estimator (a ``ColumnTransformer`` then gradient boosting, or a scaled
logistic regression). :func:`fit_calibrated` trains it on one slice of rows and calibrates its
probabilities on a later slice with ``CalibratedClassifierCV(FrozenEstimator(...))``.
:class:`ChurnModel` carries the fitted estimator together with everything needed to use it safely
later: the feature list and input schema, the churn definition, the cutoffs, the metrics.

For event stores, :func:`train_model` (in :mod:`churnrisk.training`-style, here) stacks several cutoffs,
keeps the last ones for an out-of-time test at least one horizon after the training cutoffs, and
reports the model and the baselines on the same test rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
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

from churnrisk.errors import ChurnriskError

__all__ = [
    "MODEL_KINDS",
    "ChurnModel",
    "EncodedRows",
    "fit_calibrated",
    "fit_cross_calibrated",
    "input_schema",
    "make_pipeline",
    "prepare_features",
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
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ChurnriskError(
            f"the data lacks {len(missing)} column(s) the model needs: {', '.join(missing[:20])}"
            f"{' ...' if len(missing) > 20 else ''}. Suggestion: score data of the same shape as the "
            "training data (same tables and columns)."
        )
    out = {}
    for column, kind in schema.items():
        values = frame[column]
        if kind == "number":
            out[column] = _as_float(values, column)
        else:
            out[column] = values.astype("object").where(values.notna(), np.nan).astype("str")
            out[column] = out[column].where(values.notna(), np.nan)
    return pd.DataFrame(out, index=frame.index)


def _as_float(values: pd.Series, column: str) -> pd.Series:
    try:
        return values.astype("float64")
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
    trees learn where missing values belong). ``logistic``: median imputation with missing-value
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
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
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
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
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
    if len(np.unique(y_train)) < 2 or len(np.unique(y_calibrate)) < 2:
        raise ChurnriskError(
            "both the training and the calibration rows need churners and non-churners. "
            "Suggestion: use more cutoffs or a longer history."
        )
    pipeline.fit(X_train, np.asarray(y_train, dtype=int))
    calibrated = CalibratedClassifierCV(FrozenEstimator(pipeline), method=method)
    return calibrated.fit(X_calibrate, np.asarray(y_calibrate, dtype=int))


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
        return self.estimator.predict_proba(prepared)[:, 1]


class EncodedRows:
    """The customers once through the pipeline's encoding, for many what-if predictions.

    For a calibrated ``Pipeline(ColumnTransformer, HistGradientBoostingClassifier)`` (one
    calibrated classifier, as :func:`churnrisk.model.fit_calibrated` makes), text categories are
    encoded once; a what-if sets the family's encoded columns to the encoded typical values and sums
    the trees' outputs over a column-major copy (about three times faster for the trees than the
    row-major array ``predict_proba`` builds), then applies the model's own sigmoid calibrator.
    The result is the ``predict_proba`` of the what-if frame, with the same summation order (a test
    checks it). It reads scikit-learn's fitted trees (``_predictors``): any other layout returns
    ``None`` from :meth:`of` and the caller re-predicts whole frames.
    """

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
        self.bitsets = self.booster._bin_mapper.make_known_categories_bitsets()
        self.X = self._encode(prepared)
        self.typical = None if model is None else self._encode(_typical_row(model))[0]

    @classmethod
    def of(cls, model: ChurnModel, prepared: pd.DataFrame, *, what_if: bool = True) -> EncodedRows | None:
        """The encoded customers, or None when the estimator is not such a pipeline."""
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.frozen import FrozenEstimator
        from sklearn.pipeline import Pipeline

        calibrated = getattr(model.estimator, "calibrated_classifiers_", None)
        if calibrated is None or len(calibrated) != 1 or len(prepared) == 0:
            return None
        pipeline = calibrated[0].estimator
        pipeline = pipeline.estimator if isinstance(pipeline, FrozenEstimator) else pipeline
        if (
            not isinstance(pipeline, Pipeline)
            or not isinstance(pipeline[-1], HistGradientBoostingClassifier)
            or pipeline[-1].n_trees_per_iteration_ != 1
            or calibrated[0].method != "sigmoid"
            or len(calibrated[0].calibrators) != 1
        ):
            return None
        try:
            return cls(model if what_if else None, pipeline, calibrated[0].calibrators[0], prepared)
        except (AttributeError, TypeError, ValueError):  # another scikit-learn's internals
            return None

    def _encode(self, frame: pd.DataFrame) -> np.ndarray:
        encoded = self.booster._preprocess_X(self.prepare.transform(frame), reset=False)
        return np.asfortranarray(encoded, dtype=np.float64)

    def _raw(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        raw = np.zeros(len(X)) + self.booster._baseline_prediction.ravel()[0]
        known, index_map = self.bitsets
        for (tree,) in self.booster._predictors:
            raw += tree.predict(X, known_cat_bitsets=known, f_idx_map=index_map, n_threads=self.threads)
        return raw

    def proba(self) -> np.ndarray:
        """Calibrated churn probability of every encoded row."""
        return np.asarray(self.calibrator.predict(self._raw(self.X)), dtype=float)

    def predict_typical(self, rows: np.ndarray, columns: list[str]) -> np.ndarray:
        """Calibrated probability of ``rows`` with ``columns`` set to their typical values."""
        if self.typical is None:
            raise ValueError("encoded without the model's typical values (what_if=False)")
        index = [self.names.index(c) for c in columns]
        X = np.asfortranarray(self.X[rows])  # noqa: N806
        X[:, index] = self.typical[index]
        return np.asarray(self.calibrator.predict(self._raw(X)), dtype=float)


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


def split_cutoffs(
    cutoffs: Sequence[pd.Timestamp], *, horizon: int, lead_time: int = 0, test_cutoff: Any = None
) -> tuple[list[pd.Timestamp], list[pd.Timestamp], list[pd.Timestamp]]:
    """Train, validation (calibration) and test cutoffs for an out-of-time evaluation.

    The test cutoff is ``test_cutoff`` (default: the last cutoff). The cutoffs whose label window
    ends by the test cutoff (at least ``horizon + lead_time`` days earlier) are fit cutoffs: the
    latest quarter of them (at least one) validates and calibrates, the rest train. Nothing the test
    labels see was known when training.
    """
    ordered = sorted(pd.Timestamp(c) for c in set(cutoffs))
    test = ordered[-1] if test_cutoff is None else pd.Timestamp(test_cutoff)
    gap = pd.Timedelta(days=horizon + lead_time)
    fit = [c for c in ordered if c + gap <= test]
    if len(fit) < 2:
        raise ChurnriskError(
            f"an out-of-time evaluation needs at least two cutoffs {horizon + lead_time} days or more before "
            f"the test cutoff ({test.date()}); got {len(fit)} of {len(ordered)} cutoff(s) from "
            f"{ordered[0].date()}. Suggestion: give more or earlier cutoffs (e.g. --every 1M over a longer "
            "period), or leave the cutoffs out to let churnrisk choose them."
        )
    n_cal = max(1, len(fit) // 4)
    return fit[:-n_cal], fit[-n_cal:], [test]


# --- event stores: stacked cutoffs, out-of-time split ------------------------------------------------


def training_rows(
    store: Any,
    cutoffs: Sequence[Any],
    *,
    definition: str,
    horizon: int,
    lookback: int | None = None,
    lead_time: int = 0,
    windows: Sequence[int] | None = None,
    training_set: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``customer_id, cutoff, <features>, churned`` for every eligible customer at every cutoff.

    With ``training_set`` (a frame of :func:`churnrisk.training.build_training_set`, built with
    these options) its rows at ``cutoffs`` are used instead of being computed; else
    :func:`churnrisk.training.build_training_set` computes them. Rows whose outcome is not known
    yet are dropped.
    """
    from churnrisk.features import DEFAULT_WINDOWS
    from churnrisk.training import build_training_set

    rows: Any
    if training_set is not None:
        rows = _at_cutoffs(training_set, cutoffs)
    else:
        rows = build_training_set(
            store,
            cutoffs,
            definition=definition,  # type: ignore[arg-type]  # checked by resolve_definition
            horizon=horizon,
            lookback=lookback,
            lead_time=lead_time,
            windows=DEFAULT_WINDOWS if windows is None else tuple(windows),
        )
    # censored rows (the horizon runs past the data) have no label yet: nothing to learn or test on
    rows = rows[rows["churned"].notna()].reset_index(drop=True)
    rows["churned"] = rows["churned"].astype(int)
    if not uses_repeat_buying(store, definition):
        return rows
    extra = [
        repeat_buying(store, part["customer_id"], pd.Timestamp(c), horizon=horizon).set_axis(part.index)
        for c, part in rows.groupby("cutoff", sort=True)
    ]
    return pd.concat([rows, pd.concat(extra)], axis=1)


def _at_cutoffs(training_set: pd.DataFrame, cutoffs: Sequence[Any]) -> pd.DataFrame:
    wanted = pd.to_datetime(list(cutoffs))
    missing = wanted.difference(pd.to_datetime(training_set["cutoff"].unique()))
    if len(missing):
        raise ChurnriskError(
            f"the training set has no rows at the cutoff(s) {', '.join(str(c.date()) for c in missing)}. "
            "Suggestion: append them to it (churnrisk training-set ... --append), or leave the cutoffs out."
        )
    return training_set[training_set["cutoff"].isin(wanted)].reset_index(drop=True)


#: Extra order-data features: the BG/NBD model's view of each customer at the cutoff.
REPEAT_BUYING = ("purchases_bgnbd_quiet", "purchases_bgnbd_alive")


def uses_repeat_buying(store: Any, definition: str) -> bool:
    """Order data under the inactivity definition get the BG/NBD features."""
    return definition == "inactivity" and "orders" in store


def with_repeat_buying(
    store: Any, features: pd.DataFrame, cutoff: pd.Timestamp, *, horizon: int
) -> pd.DataFrame:
    """``features`` (indexed by customer) with the :func:`repeat_buying` columns beside them."""
    extra = repeat_buying(store, features.index.to_series(), cutoff, horizon=horizon)
    return pd.concat([features, extra.set_axis(features.index)], axis=1)  # one concatenation


def repeat_buying(store: Any, ids: pd.Series, cutoff: pd.Timestamp, *, horizon: int) -> pd.DataFrame:
    """BG/NBD P(no purchase within the horizon) and P(alive) of ``ids``, fitted on orders up to ``cutoff``.

    The model is refitted at every cutoff on the history known then, so the features stay point in
    time. BG/NBD is a strong baseline on order data; as features it lets the model start from it.
    """
    from churnrisk.bgnbd import BGNBD, rfm_summary

    summary = rfm_summary(store["orders"], cutoff.to_pydatetime())
    fitted = BGNBD().fit(summary["frequency"], summary["recency"], summary["T"])
    args = (summary["frequency"], summary["recency"], summary["T"])
    quiet = pd.Series(fitted.prob_no_purchase(horizon / 7.0, *args), index=summary.index)
    alive = pd.Series(fitted.prob_alive(*args), index=summary.index)
    values = {
        name: ids.map(p).to_numpy(dtype=float) for name, p in zip(REPEAT_BUYING, (quiet, alive), strict=True)
    }
    return pd.DataFrame(values, index=ids.index)


def eligible_customers(
    store: Any, cutoff: pd.Timestamp, *, definition: str, lookback: int | None, horizon: int
) -> pd.Index:
    """Customers at risk at ``cutoff``: an open subscription, or (inactivity) an order in the look-back."""
    from churnrisk.spells import active_at, order_spells, subscription_spells

    if definition == "subscription":
        spells = subscription_spells(store["subscriptions"])
    else:
        spells = order_spells(_activity(store), inactivity_days=lookback or horizon)
    ids = active_at(spells, cutoff.to_pydatetime())["customer_id"].unique().sort()
    return pd.Index(ids.to_list(), name="customer_id")


def _activity(store: Any) -> Any:
    import polars as pl

    if "orders" in store:
        return store["orders"].select("customer_id", "ordered_at")
    return store["activity"].select("customer_id", pl.col("occurred_at").alias("ordered_at"))


_NOT_FEATURES = ("customer_id", "cutoff", "churned", "churn_type")


def feature_part(rows: pd.DataFrame) -> pd.DataFrame:
    """The feature columns of a training-set frame."""
    return rows.drop(columns=[c for c in _NOT_FEATURES if c in rows.columns])


def train_model(
    store: Any,
    *,
    cutoffs: Sequence[Any] | None = None,
    horizon: int | None = None,
    definition: str | None = None,
    lookback: int | None = None,
    lead_time: int | None = None,
    model: str = "auto",
    windows: Sequence[int] | None = None,
    random_state: int | None = 0,
    training_set: pd.DataFrame | str | os.PathLike[str] | None = None,
    test_cutoff: Any = None,
    refit: bool = True,
) -> ChurnModel:
    """Choose a model on a validation slice, test it out of time, then refit it on the newest data.

    See :func:`split_cutoffs` for the split: the candidates (:mod:`churnrisk.candidates`; ``model``
    ``"auto"`` compares the learned models, the baselines and their blends, ``"gbm"`` or
    ``"logistic"`` trains that one) are fitted on the training cutoffs and calibrated on the
    validation cutoffs, where the lowest log loss wins. The winner is tested at ``test_cutoff``
    (default: the last cutoff), beside every baseline on the same rows
    (:func:`churnrisk.evaluation.baseline_scores`). With ``refit`` (the default) the winner's recipe
    is then fitted again through the latest labelled cutoff (calibrated on the latest quarter of
    the cutoffs), so the model that scores today has learned from the newest behaviour; the metadata
    keep the tested metrics and both sets of cutoffs.

    ``cutoffs`` and ``horizon`` are required (``lead_time`` defaults to 0) unless ``training_set``
    is given: a stored training set (file or folder, see
    :func:`churnrisk.training.read_training_set`) or its frame, whose rows are used instead of
    being computed; the label options then default to those it was built with (others are
    refused) and ``cutoffs`` to its labelled cutoffs.
    """
    from churnrisk.candidates import candidate_pipelines, select_model
    from churnrisk.drift import feature_profile
    from churnrisk.evaluation import base_rates, baseline_scores, calibration_table, compare_scores
    from churnrisk.spells import resolve_definition

    given = {"definition": definition, "horizon": horizon, "lookback": lookback, "lead_time": lead_time}
    stored, cutoffs, options = _stored_rows(training_set, cutoffs, {**given, "windows": windows})
    definition, horizon, lookback = options["definition"], options["horizon"], options["lookback"]
    lead_time, windows = options["lead_time"] or 0, options["windows"]
    definition = resolve_definition(store, definition)
    _check_days(horizon, "horizon")
    train_c, cal_c, test_c = split_cutoffs(
        cutoffs, horizon=horizon, lead_time=lead_time, test_cutoff=test_cutoff
    )
    every_c = sorted({*(pd.Timestamp(c) for c in cutoffs), *test_c}) if refit else [*train_c, *cal_c, *test_c]
    check_label_window(store, max(every_c), horizon=horizon, lead_time=lead_time)
    rows = training_rows(
        store,
        every_c,
        definition=definition,
        horizon=horizon,
        lookback=lookback,
        lead_time=lead_time,
        windows=windows,
        training_set=stored,
    )
    rows["cutoff"] = pd.to_datetime(rows["cutoff"])
    features = feature_part(rows)
    # a feature never observed before the test cutoff (e.g. no CES survey yet) cannot be learned from
    empty = [c for c in features.columns if features.loc[rows["cutoff"].isin(train_c), c].isna().all()]
    features = features.drop(columns=empty)
    schema = input_schema(features)
    X = prepare_features(features, schema)  # noqa: N806
    y = rows["churned"].to_numpy(dtype=int)
    part = {
        name: rows["cutoff"].isin(cs).to_numpy()
        for name, cs in (("train", train_c), ("cal", cal_c), ("test", test_c))
    }
    pipelines = candidate_pipelines(schema, model=model, random_state=random_state)
    estimator, selection = select_model(pipelines, X, y, part["train"], part["cal"])
    test_rows = rows[part["test"]]
    proba = ChurnModel(estimator, {}).predict_prepared(X[part["test"]])
    known = part["train"] | part["cal"]
    baselines = baseline_scores(
        store,
        test_rows,
        cutoff=test_c[0],
        definition=definition,
        horizon=horizon,
        lookback=lookback,
        base_rates=base_rates(store, rows[known]),
    )
    table = compare_scores(y[part["test"]], {"model": proba, **baselines})
    final = _final_split(rows["cutoff"], refit=refit, tested=(train_c, cal_c))
    if refit:
        from churnrisk.candidates import refit as refit_winner

        estimator = refit_winner(selection, pipelines, X, y, final["train"], final["cal"])
    fit_rows = final["train"]
    result = ChurnModel(estimator, {})
    result.metadata = {
        "kind": "events",
        "name": f"{definition}-{horizon}d-{selection.winner}",
        "definition": definition,
        "horizon": horizon,
        "lookback": lookback,
        "lead_time": lead_time,
        "windows": list(windows) if windows is not None else None,
        "model": selection.winner,
        "random_state": random_state,
        "refit": refit,
        "cutoffs": {
            **{
                k: [str(c.date()) for c in v]
                for k, v in (("train", train_c), ("calibration", cal_c), ("test", test_c))
            },
            "final_train": _dates(rows["cutoff"][final["train"]]),
            "final_calibration": _dates(rows["cutoff"][final["cal"]]),
        },
        "rows": {
            **{k: int(v.sum()) for k, v in part.items()},
            "final_train": int(final["train"].sum()),
            "final_calibration": int(final["cal"].sum()),
        },
        "notes": [f"left out {len(empty)} feature(s) never observed in the training rows: {', '.join(empty)}"]
        if empty
        else [],
        "schema": schema,
        "reference": reference_values(X[fit_rows], schema),
        "spread": spread_values(X[fit_rows], schema),
        "risk_side": risk_sides(X[fit_rows], y[fit_rows], schema),
        "profile": feature_profile(X[fit_rows], schema),
        "families": feature_families(list(schema)),
        "selection": selection.summary(),
        "base_rates": base_rates(store, rows[final["train"] | final["cal"]]),
        "metrics": _plain(table.loc["model"].to_dict()),
        "baselines": {name: _plain(table.loc[name].to_dict()) for name in baselines},
        "calibration": calibration_table(y[part["test"]], proba).to_dict(orient="list"),
    }
    return result


def _final_split(
    cutoffs: pd.Series, *, refit: bool, tested: tuple[list[pd.Timestamp], list[pd.Timestamp]]
) -> dict[str, np.ndarray]:
    """Rows of the shipped fit: every labelled cutoff (latest quarter calibrates), or the tested split."""
    if not refit:
        return {"train": cutoffs.isin(tested[0]).to_numpy(), "cal": cutoffs.isin(tested[1]).to_numpy()}
    ordered = sorted(cutoffs.unique())
    n_cal = max(1, len(ordered) // 4)
    calibrate = cutoffs.isin(ordered[-n_cal:]).to_numpy()
    return {"train": ~calibrate, "cal": calibrate}


def _dates(cutoffs: pd.Series) -> list[str]:
    return [str(pd.Timestamp(c).date()) for c in sorted(cutoffs.unique())]


def _stored_rows(
    training_set: pd.DataFrame | str | os.PathLike[str] | None,
    cutoffs: Sequence[Any] | None,
    given: dict[str, Any],
) -> tuple[pd.DataFrame | None, Sequence[Any], dict[str, Any]]:
    """The stored training set (if any), the cutoffs and the label options to train with."""
    if training_set is None:
        if cutoffs is None or given["horizon"] is None:
            raise ChurnriskError(
                "train_model needs cutoffs and a horizon, or a training_set. "
                "Suggestion: train_model(store, cutoffs=[...], horizon=90)."
            )
        return None, cutoffs, given
    from churnrisk.training import read_training_set

    rows = training_set if isinstance(training_set, pd.DataFrame) else read_training_set(training_set)
    recorded = {k: rows.attrs[k] for k in given if k in rows.attrs}  # none from a CSV file
    plain = {k: list(v) if k == "windows" and v is not None else v for k, v in given.items()}
    different = {k: (recorded[k], v) for k, v in plain.items() if v is not None and recorded.get(k, v) != v}
    if different:
        detail = ", ".join(f"{k}: {a!r} there, {b!r} given" for k, (a, b) in different.items())
        raise ChurnriskError(
            f"the training set was built with other options ({detail}). "
            "Suggestion: leave those options out to use the training set's, or rebuild it."
        )
    options = {k: plain[k] if plain[k] is not None else recorded.get(k) for k in given}
    labelled = sorted(pd.to_datetime(rows.loc[rows["churned"].notna(), "cutoff"].unique()))
    return rows, labelled if cutoffs is None else cutoffs, options


def check_label_window(store: Any, cutoff: pd.Timestamp, *, horizon: int, lead_time: int = 0) -> None:
    """Refuse a cutoff whose label window runs past the end of the data (its labels would be wrong)."""
    from churnrisk.rates._periods import data_span

    _, last = data_span(store)
    end = cutoff + pd.Timedelta(days=lead_time + horizon)
    if end > pd.Timestamp(last):
        latest = pd.Timestamp(last) - pd.Timedelta(days=lead_time + horizon)
        raise ChurnriskError(
            f"cutoff {cutoff.date()} needs data up to {end.date()} to know who churned within "
            f"{horizon} days, "
            f"but the data end on {pd.Timestamp(last).date()}. Suggestion: use cutoffs up to {latest.date()}."
        )


def _plain(metrics: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): (int(v) if k == "n" else None if pd.isna(v) else float(v)) for k, v in metrics.items()}


def _check_days(value: Any, name: str) -> None:
    if not isinstance(value, int | np.integer) or value <= 0:
        raise ChurnriskError(
            f"The {name!r} parameter must be a positive number of days. Got {value!r} instead."
        )


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


def cutoff_range(first: Any, last: Any, *, every: str = "1M") -> list[pd.Timestamp]:
    """Cutoffs from ``first`` to ``last``, ``every`` apart (e.g. ``30D``, ``2W``, ``1M``, ``1Q``),
    counted back from ``last``, so the latest cutoff is always ``last`` itself (see
    :func:`churnrisk.training.make_cutoffs`).

    Examples
    --------
    >>> [c.strftime("%Y-%m-%d") for c in cutoff_range("2024-01-15", "2024-04-01", every="1M")]
    ['2024-02-01', '2024-03-01', '2024-04-01']
    """
    from churnrisk.training import make_cutoffs

    return [pd.Timestamp(c) for c in make_cutoffs(first, last, every, anchor="last")]


#: Days of history before the first default cutoff, so the first features have something to read.
WARM_UP = 90


def default_cutoffs(store: Any, *, horizon: int, lead_time: int = 0, every: str = "1M") -> list[pd.Timestamp]:
    """As many cutoffs as the history allows: ``every`` apart, counted back from the last cutoff whose
    outcome is known, down to :data:`WARM_UP` days after the first event.

    Refuses a history too short for an out-of-time test (two fit cutoffs, a gap of ``horizon +
    lead_time`` days and the test cutoff), saying how many more days of data it needs.
    """
    from churnrisk.rates._periods import data_span
    from churnrisk.training import cutoff_step

    first, last = (pd.Timestamp(t) for t in data_span(store))
    gap = pd.Timedelta(days=horizon + lead_time)
    latest = (last - gap).normalize()
    earliest = first + pd.Timedelta(days=WARM_UP)
    cutoffs = cutoff_range(earliest, latest, every=every) if earliest <= latest else []
    if sum(c <= latest - gap for c in cutoffs) >= 2:
        return cutoffs
    # the second fit cutoff counted back from the test cutoff must leave the warm-up before it
    step, k = cutoff_step(every), 1
    while latest - step * k > latest - gap:
        k += 1
    second = latest - step * (k + 1)
    needed = -((second - pd.Timedelta(days=WARM_UP) - last) // pd.Timedelta(days=1))
    have = (last - first).days
    raise ChurnriskError(
        f"the history is too short to train and test a model with a {horizon}-day horizon"
        f"{f' and a {lead_time}-day lead time' if lead_time else ''}: the data cover {have} days "
        f"({first.date()} to {last.date()}), and an out-of-time test needs at least {needed} "
        f"({WARM_UP} days of history before the first cutoff, two cutoffs {every} apart, "
        f"{horizon + lead_time} days between them and the test cutoff, and {horizon + lead_time} days "
        f"after it to see who churned). Suggestion: add {needed - have} more days of data, or use a "
        "shorter --horizon."
    )
