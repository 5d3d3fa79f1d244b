"""Training and the out-of-time backtest: the steps above the estimator, the training sets and the metrics."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnrisk.candidates import candidate_pipelines, sample_notes, select_model
from churnrisk.candidates import refit as refit_winner
from churnrisk.definition import ChurnDefinition
from churnrisk.drift import feature_profile
from churnrisk.errors import ChurnriskError, OptionError
from churnrisk.evaluation import (
    base_rates,
    baseline_scores,
    calibration_table,
    compare_scores,
    metrics_to_plain,
    plain_metrics,
)
from churnrisk.horizons import train_horizons
from churnrisk.labels import label_definition
from churnrisk.model import (
    ChurnModel,
    feature_families,
    feature_part,
    input_schema,
    reference_values,
    risk_sides,
    sample_rows,
    spread_values,
    training_matrix,
)
from churnrisk.snapshot import read_snapshot, train_snapshot
from churnrisk.training import check_label_window, cutoff_range, default_cutoffs, split_cutoffs, training_rows
from churnrisk.training._cutoffs import _dates, _final_split
from churnrisk.training._rows import _stored_rows
from churnrisk.validation import load_store

#: Training rows the model's summaries of its data (typical values, spreads, risk sides, the drift
#: profile) are computed from at most: a seeded sample beyond. A decile of 100,000 rows is within
#: a tenth of a percentile point (one standard error); the summaries take a second, not tens of
#: seconds, at a million customers.
SUMMARY_ROWS = 100_000


def train_model(
    store: Any,
    *,
    cutoffs: Sequence[Any] | None = None,
    horizon: int | None = None,
    definition: str | None = None,
    lookback: int | None = None,
    lead_time: int | None = None,
    reactivation_gap_days: float | None = None,
    model: str = "auto",
    windows: Sequence[int] | None = None,
    random_state: int | None = 0,
    training_set: pd.DataFrame | str | os.PathLike[str] | None = None,
    test_cutoff: Any = None,
    refit: bool = True,
    release_store: bool = False,
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

    ``release_store``: empty ``store`` once it is read, before the fits (for a caller that loaded it
    for this call alone, as :func:`train_from_source` does: the fits then have its memory).
    """
    given = {
        "definition": definition,
        "horizon": horizon,
        "lookback": lookback,
        "lead_time": lead_time,
        "reactivation_gap_days": reactivation_gap_days,
    }
    stored, cutoffs, options = _stored_rows(training_set, cutoffs, {**given, "windows": windows})
    churn = label_definition(store, *(options[k] for k in given))  # checked once, as the labels do
    definition, horizon, lookback = churn.kind, churn.needs_horizon("train_model"), churn.lookback
    lead_time, gap, windows = churn.lead_time, churn.gap / pd.Timedelta(days=1), options["windows"]
    train_c, cal_c, test_c = split_cutoffs(
        cutoffs, horizon=horizon, lead_time=lead_time, test_cutoff=test_cutoff
    )
    every_c = sorted({*(pd.Timestamp(c) for c in cutoffs), *test_c}) if refit else [*train_c, *cal_c, *test_c]
    check_label_window(store, max(every_c), horizon=horizon, lead_time=lead_time, reactivation_gap_days=gap)
    rows = training_rows(
        store,
        every_c,
        definition=definition,
        horizon=horizon,
        lookback=lookback,
        lead_time=lead_time,
        reactivation_gap_days=churn.reactivation_gap_days,
        windows=windows,
        training_set=stored,
    )
    rows["cutoff"] = pd.to_datetime(rows["cutoff"])
    features = feature_part(rows)
    # a feature never observed before the test cutoff (e.g. no CES survey yet) cannot be learned from
    empty = [c for c in features.columns if features.loc[rows["cutoff"].isin(train_c), c].isna().all()]
    features = features.drop(columns=empty)
    schema = input_schema(features)
    X = training_matrix(features, schema)  # noqa: N806
    # X holds the feature columns it fits on: the others (and any copied to a float) are let go
    del features
    rows = rows[["customer_id", "cutoff", "churned"]]
    y = rows["churned"].to_numpy(dtype=int)
    part = {
        name: rows["cutoff"].isin(cs).to_numpy()
        for name, cs in (("train", train_c), ("cal", cal_c), ("test", test_c))
    }
    final = _final_split(rows["cutoff"], refit=refit, tested=(train_c, cal_c))
    # the last reads of the store: the baselines of the test rows and the rates the model saw
    baselines = baseline_scores(
        store,
        rows[part["test"]],
        cutoff=test_c[0],
        definition=definition,
        horizon=horizon,
        lookback=lookback,
        base_rates=base_rates(store, rows[part["train"] | part["cal"]]),
    )
    seen_rates = base_rates(store, rows[final["train"] | final["cal"]])
    if release_store:
        store.tables = {}
    pipelines = candidate_pipelines(schema, model=model, random_state=random_state)
    estimator, selection = select_model(pipelines, X, y, part["train"], part["cal"])
    proba = ChurnModel(estimator, {}).predict_prepared(X[part["test"]])
    table = compare_scores(y[part["test"]], {"model": proba, **baselines})
    if refit:
        estimator = refit_winner(selection, pipelines, X, y, final["train"], final["cal"])
    notes = sample_notes(selection.parts, pipelines, final["train"])
    if empty:
        notes.insert(
            0, f"left out {len(empty)} feature(s) never observed in the training rows: {', '.join(empty)}"
        )
    fit_rows = sample_rows(final["train"], SUMMARY_ROWS)
    fitted = X[fit_rows]
    result = ChurnModel(estimator, {})
    result.metadata = {
        "kind": "events",
        "name": f"{definition}-{horizon}d-{selection.winner}",
        "definition": definition,
        "horizon": horizon,
        "lookback": lookback,
        "lead_time": lead_time,
        "reactivation_gap_days": churn.reactivation_gap_days,
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
        "notes": notes,
        "schema": schema,
        "reference": reference_values(fitted, schema),
        "spread": spread_values(fitted, schema),
        "risk_side": risk_sides(fitted, y[fit_rows], schema),
        "profile": feature_profile(fitted, schema),
        "families": feature_families(list(schema)),
        "selection": selection.summary(),
        "base_rates": seen_rates,
        "metrics": plain_metrics(table.loc["model"].to_dict()),
        "baselines": {name: plain_metrics(table.loc[name].to_dict()) for name in baselines},
        "calibration": calibration_table(y[part["test"]], proba).to_dict(orient="list"),
    }
    return result


def outcomes_seen_until(meta: Mapping[str, Any]) -> pd.Timestamp | None:
    """The last day whose churn outcomes the model learned from (its fitted cutoffs + horizon + lead time).

    Counts the tested fit's cutoffs and, for a refit model, those of the final fit. An evaluation at
    a cutoff before this day measures rows the model (partly) saw: it is optimistic.
    """
    cutoffs = meta.get("cutoffs") or {}
    keys = ("train", "calibration", "final_train", "final_calibration")
    fitted = [pd.Timestamp(c) for key in keys for c in cutoffs.get(key, [])]
    if not fitted or "horizon" not in meta:
        return None
    return max(fitted) + pd.Timedelta(ChurnDefinition.from_options(meta).label_delay)


def evaluate_model(model: Any, store: Any, *, cutoff: Any) -> dict[str, Any]:
    """Metrics of an event-store model at one ``cutoff`` whose outcome is known, with the baselines.

    The historical-rate baseline is the churn rate the model saw in its training rows (metadata
    ``base_rates``); a model file without them is compared with the other baselines only.

    Returns ``{"cutoff", "notes", "metrics", "baselines": {name: metrics}, "calibration": [rows],
    "scores", "baseline_scores"}``, ``scores`` being the frame ``customer_id, churn_probability,
    churned`` of the evaluated rows and ``baseline_scores`` each baseline's scores of the same rows.
    """
    meta = model.metadata
    if meta.get("kind") != "events":
        raise ChurnriskError(
            "evaluate needs a model trained on an event store; a snapshot model's hold-out metrics are in "
            "its metadata. Suggestion: see the model's .json file."
        )
    cutoff = pd.Timestamp(cutoff)
    churn = ChurnDefinition.from_options(meta)
    check_label_window(
        store,
        cutoff,
        horizon=churn.needs_horizon("evaluate"),
        lead_time=churn.lead_time,
        reactivation_gap_days=churn.gap / pd.Timedelta(days=1),
    )
    rows = model_rows(model, store, cutoff)
    y = rows["churned"].to_numpy(dtype=int)
    proba = rows["churn_probability"].to_numpy()
    baselines = baseline_scores(
        store,
        rows,
        cutoff=cutoff,
        definition=meta["definition"],
        horizon=meta["horizon"],
        lookback=meta.get("lookback"),
        base_rates=meta.get("base_rates"),
    )
    table = compare_scores(y, {"model": proba, **baselines})
    seen = outcomes_seen_until(meta)
    notes = (
        [
            f"the model learned from outcomes up to {seen.date()}, after this cutoff: these figures are "
            "optimistic. Suggestion: evaluate at a later cutoff for an out-of-time measure."
        ]
        if seen is not None and seen > cutoff
        else []
    )
    return {
        "cutoff": str(cutoff.date()),
        "notes": notes,
        "metrics": metrics_to_plain(table.loc["model"].to_dict()),
        "baselines": {name: metrics_to_plain(table.loc[name].to_dict()) for name in baselines},
        "calibration": calibration_table(y, proba).to_dict(orient="records"),
        "scores": rows[["customer_id", "churn_probability", "churned"]],
        "baseline_scores": baselines,
    }


def model_rows(model: ChurnModel, store: Any, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The model's labelled rows at ``cutoff`` (its own churn definition and windows), with
    ``churn_probability`` beside the features: what evaluation and monitoring compare."""
    meta = model.metadata
    rows = training_rows(
        store,
        [cutoff],
        definition=meta["definition"],
        horizon=meta["horizon"],
        lookback=meta.get("lookback"),
        lead_time=meta.get("lead_time") or 0,
        reactivation_gap_days=meta.get("reactivation_gap_days") or 0,
        windows=meta.get("windows"),
    )
    proba = model.predict_proba(feature_part(rows)) if len(rows) else np.empty(0)
    return pd.concat([rows, pd.Series(proba, index=rows.index, name="churn_probability")], axis=1)


#: The horizon ``churnrisk train`` labels with when none is given (and no stored training set).
DEFAULT_HORIZON = 90


def train_from_source(
    data: str | os.PathLike[str] | None = None,
    *,
    table: str | os.PathLike[str] | None = None,
    label: str | None = None,
    customer_col: str | None = None,
    cutoffs: Sequence[Any] | None = None,
    first_cutoff: Any = None,
    last_cutoff: Any = None,
    every: str = "1M",
    horizons: Sequence[int] | None = None,
    config: Any = None,
    encoding: str | None = None,
    **options: Any,
) -> Any:
    """Train what ``churnrisk train`` is given, with its defaults; ``options`` as in :func:`train_model`.

    * ``table``: snapshot mode, one row per customer with a ``label`` column and an optional
      ``customer_col`` (:func:`churnrisk.snapshot.train_snapshot`; ``model="auto"`` is boosting);
    * ``data`` (a folder or database URL) with ``horizons``: one hazard model over several horizons
      (:func:`churnrisk.horizons.train_horizons`);
    * ``data``: :func:`train_model`, with ``horizon`` :data:`DEFAULT_HORIZON` and no lead time
      unless given, on ``cutoffs``: given, or from ``first_cutoff`` to ``last_cutoff`` ``every``
      apart, or as many as the history allows (:func:`churnrisk.training.default_cutoffs`). A
      stored ``training_set`` brings its own options and cutoffs instead.
    """
    _check_source(data, table, label, options.get("training_set"), horizons)
    if table is not None:
        model = options.get("model", "auto")
        return train_snapshot(
            read_snapshot(table),
            label=str(label),
            customer_col=customer_col,
            model="gbm" if model == "auto" else model,
            random_state=options.get("random_state", 0),
        )
    store = load_store(data, config=config, encoding=encoding)  # type: ignore[arg-type]
    if cutoffs is None and first_cutoff is not None and last_cutoff is not None:
        cutoffs = cutoff_range(first_cutoff, last_cutoff, every=every)
    if horizons is not None:
        return train_horizons(store, horizons=horizons, cutoffs=cutoffs, every=every, **options)
    if options.get("training_set") is None:
        horizon, lead_time = options.get("horizon") or DEFAULT_HORIZON, options.get("lead_time") or 0
        options = {**options, "horizon": horizon, "lead_time": lead_time}
        if cutoffs is None:
            cutoffs = default_cutoffs(store, horizon=horizon, lead_time=lead_time, every=every)
    return train_model(store, cutoffs=cutoffs, release_store=True, **options)


def _check_source(data: Any, table: Any, label: Any, training_set: Any, horizons: Any) -> None:
    """Either an event store or a snapshot table, with the options that go with it."""
    if (table is None) == (data is None):
        raise OptionError("give either DATA (an event-store folder) or --table FILE", option="DATA")
    if table is not None and training_set is not None:
        raise OptionError("--training-set goes with DATA, not --table", option="--training-set")
    if table is not None and horizons is not None:
        raise OptionError("--horizons goes with DATA, not --table", option="--horizons")
    if table is not None and label is None:
        raise OptionError("snapshot mode needs --label COLUMN", option="--label")
    if data is not None and "://" not in str(data) and Path(data).is_file():
        raise ChurnriskError(
            f"{data} is a file; DATA is a folder of event tables. Suggestion: to train on one row per "
            f"customer with a label column, use snapshot mode: churnrisk train --table {data} --label COLUMN."
        )
