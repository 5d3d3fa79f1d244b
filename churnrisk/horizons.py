"""When customers leave: churn over several horizons from one hazard model (DESIGN §5).

:func:`train_horizons` trains one discrete-time hazard model (:mod:`churnrisk.hazard`) on the
point-in-time features of stacked cutoffs, for subscription or inactivity churn, and tests it out of
time beside Kaplan-Meier (:mod:`churnrisk.survival`, whose anchors are re-exported here);
:func:`churn_curves` gives each customer's probability of churning within every horizon
(non-decreasing) and the expected remaining lifetime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from churnrisk.errors import ChurnriskError
from churnrisk.survival import (
    expected_active_days,
    kaplan_meier,
    relationships,
    survival_at,
    survival_curves,
)

__all__ = [
    "churn_curves",
    "expected_active_days",
    "horizon_summary",
    "kaplan_meier",
    "relationships",
    "restricted_lifetime",
    "survival_at",
    "survival_curves",
    "train_horizons",
]

ID = "customer_id"


# --- churn over several horizons: one discrete-time hazard model ----------------------------------------

#: Expected remaining lifetime is restricted to this many days (about two years).
LIFETIME_DAYS = 730


def train_horizons(
    store: Any,
    *,
    horizons: Sequence[int],
    horizon: int | None = None,
    cutoffs: Sequence[Any] | None = None,
    every: str = "1M",
    definition: str | None = None,
    lookback: int | None = None,
    lead_time: int | None = None,
    reactivation_gap_days: float | None = None,
    model: str = "auto",
    windows: Sequence[int] | None = None,
    random_state: int | None = 0,
    training_set: Any = None,
    test_cutoff: Any = None,
    refit: bool = True,
) -> Any:
    """One discrete-time hazard model for churn within every horizon, tested out of time.

    The rows are the customers eligible at each cutoff (default: as many monthly cutoffs as the
    shortest horizon allows), with the training set's point-in-time features; the label part is
    each row's time to churn (:func:`churnrisk.hazard.time_to_churn`, subscription or inactivity
    churn, ``lookback`` days of inactivity defaulting to the shortest horizon), expanded into one
    row per interval between horizons (:func:`churnrisk.hazard.person_periods`). One classifier
    (``model``: ``gbm``, the default, or ``logistic``) learns the hazard, calibrated on the latest
    quarter of the cutoffs; the probability of churning within ``h`` is ``1 - prod(1 - hazard)``
    over the intervals up to ``h``, non-decreasing by construction. Rows whose outcome is not known
    for the longest horizon still teach the intervals their outcome has reached, where separate
    per-horizon models would drop them (``benchmarks/bench_horizons.py`` compares both, with
    Kaplan-Meier and a Cox model).

    Out of time: the test cutoff is ``test_cutoff`` (default: the latest cutoff whose longest
    horizon has passed); the tested model learns from the earlier cutoffs with their outcomes as
    known at the test cutoff, and is scored at every horizon beside Kaplan-Meier on the same rows
    (``horizon_metrics`` in the metadata). With ``refit`` the shipped model then learns from every
    cutoff, outcomes up to the end of the data.

    The shortest horizon is the primary one (``horizon``, if given, must be it): the model's
    ``churn_probability``, tiers and reasons are churn within it, the hazard of the first interval.
    """
    from churnrisk.spells import resolve_definition

    definition = resolve_definition(store, definition)
    wanted = _horizon_list(horizons, horizon)
    if lead_time or reactivation_gap_days or training_set is not None:
        raise ChurnriskError(
            "several horizons count from the cutoff and build their own rows: a lead time, a grace period "
            "or a stored training set is not supported. Suggestion: leave out --lead-time, "
            "--reactivation-gap and --training-set."
        )
    options = {
        "definition": definition,
        "lookback": (lookback or wanted[0]) if definition == "inactivity" else None,
        "windows": None if windows is None else tuple(windows),
    }
    return _train_hazard(
        store,
        wanted,
        _cutoff_plan(store, wanted, cutoffs, every, test_cutoff),
        options,
        kind="gbm" if model == "auto" else model,
        random_state=random_state,
        refit=refit,
    )


def _horizon_list(horizons: Sequence[int], horizon: int | None) -> list[int]:
    from churnrisk.definition import check_days

    given = [*horizons, *([] if horizon is None else [horizon])]
    wanted = sorted({check_days(h, "horizon") for h in given})
    if not wanted:
        raise ChurnriskError(
            "The 'horizons' parameter needs at least one horizon in days, e.g. [30, 90, 180]."
        )
    if horizon is not None and check_days(horizon, "horizon") != wanted[0]:
        raise ChurnriskError(
            f"the tiers and reasons of a several-horizon model are those of its shortest horizon, "
            f"{wanted[0]} days; got horizon {horizon}. Suggestion: leave out --horizon, or make it the "
            "shortest of --horizons."
        )
    return wanted


def _cutoff_plan(
    store: Any, wanted: list[int], cutoffs: Sequence[Any] | None, every: str, test_cutoff: Any
) -> dict[str, list[pd.Timestamp]]:
    """All cutoffs, the test cutoff, and the earlier ones the tested model trains and calibrates on."""
    from churnrisk.labels import data_end
    from churnrisk.training import default_cutoffs, split_cutoffs

    given = cutoffs if cutoffs is not None else default_cutoffs(store, horizon=wanted[0], every=every)
    dates = sorted({pd.Timestamp(c) for c in given})
    end, longest = pd.Timestamp(data_end(store)), pd.Timedelta(days=wanted[-1])
    passed = [c for c in dates if c + longest <= end]
    test = pd.Timestamp(test_cutoff) if test_cutoff is not None else (passed[-1] if passed else None)
    if test is None or test + longest > end:
        raise ChurnriskError(
            f"an out-of-time test needs a cutoff whose longest horizon ({wanted[-1]} days) has passed by the "
            f"end of the data ({end.date()}); got {'none' if test is None else test.date()}. "
            "Suggestion: use shorter horizons, earlier cutoffs or a longer history."
        )
    train, calibration, _ = split_cutoffs(dates, horizon=wanted[0], test_cutoff=test)
    return {"all": sorted({*dates, test}), "test": [test], "train": train, "calibration": calibration}


def _feature_rows(
    store: Any, cutoffs: list[pd.Timestamp], primary: int, options: dict[str, Any]
) -> pd.DataFrame:
    """``customer_id, cutoff`` and the training set's point-in-time features of every eligible customer."""
    from churnrisk.features._spec import DEFAULT_WINDOWS
    from churnrisk.training import build_training_set, uses_repeat_buying, with_repeat_buying

    definition, lookback = options["definition"], options["lookback"]
    rows = build_training_set(
        store,
        cutoffs,
        definition=definition,
        horizon=primary,
        lookback=lookback,
        windows=options["windows"] or DEFAULT_WINDOWS,
    )
    # one block per dtype again (the stacked builder leaves many), before per-cutoff columns are added
    rows = rows.drop(columns=["churned", "churn_type"]).assign(cutoff=pd.to_datetime(rows["cutoff"])).copy()
    if not uses_repeat_buying(store, definition):
        return rows
    parts = [
        with_repeat_buying(store, part.set_index(ID), pd.Timestamp(str(c)), horizon=primary).reset_index()
        for c, part in rows.groupby("cutoff", sort=True)
    ]
    return pd.concat(parts, ignore_index=True)


def _observed(store: Any, rows: pd.DataFrame, options: dict[str, Any], until: pd.Timestamp) -> pd.DataFrame:
    """:func:`~churnrisk.hazard.time_to_churn` of ``rows`` (same order), outcomes as known at ``until``."""
    from churnrisk.hazard import time_to_churn

    spans = time_to_churn(
        store,
        sorted(rows["cutoff"].unique()),
        definition=options["definition"],
        lookback=options["lookback"] or 0,
        until=until.to_pydatetime(),
    )
    spans["cutoff"] = pd.to_datetime(spans["cutoff"]).astype(rows["cutoff"].dtype)
    return rows[[ID, "cutoff"]].merge(spans, on=[ID, "cutoff"], how="left", validate="one_to_one")


def _train_hazard(
    store: Any,
    wanted: list[int],
    plan: dict[str, list[pd.Timestamp]],
    options: dict[str, Any],
    *,
    kind: str,
    random_state: int | None,
    refit: bool,
) -> Any:
    from churnrisk.hazard import fit_hazard
    from churnrisk.labels import data_end
    from churnrisk.model import ChurnModel, feature_part, input_schema, prepare_features
    from churnrisk.training._cutoffs import _dates, _final_split

    rows = _feature_rows(store, plan["all"], wanted[0], options)
    at = {name: rows["cutoff"].isin(plan[name]).to_numpy() for name in ("train", "calibration", "test")}
    features = feature_part(rows)
    # a feature never observed in the tested training rows cannot be learned from
    empty = [c for c in features.columns if features.loc[at["train"], c].isna().all()]
    schema = input_schema(features.drop(columns=empty))
    X = prepare_features(features, schema)  # noqa: N806
    end = pd.Timestamp(data_end(store))
    known = at["train"] | at["calibration"]
    before = _observed(store, rows[known], options, plan["test"][0])  # as known at the test cutoff
    fit: dict[str, Any] = {"model": kind, "random_state": random_state}
    tested = fit_hazard(
        X[known], before, wanted, train=at["train"][known], calibrate=at["calibration"][known], **fit
    )
    outcome = _observed(store, rows, options, end)
    evaluation = _test(tested, X[at["test"]], outcome[at["test"]], before, wanted)
    split = _final_split(rows["cutoff"], refit=refit, tested=(plan["train"], plan["calibration"]))
    final_at = {"train": split["train"], "calibration": split["cal"]}
    final = (
        fit_hazard(X, outcome, wanted, train=split["train"], calibrate=split["cal"], **fit)
        if refit
        else tested
    )
    metadata = {
        "kind": "events",
        "name": f"{options['definition']}-hazard-{'-'.join(str(h) for h in wanted)}d-{kind}",
        "definition": options["definition"],
        "horizon": wanted[0],
        "horizons": wanted,
        "lookback": options["lookback"],
        "lead_time": 0,
        "windows": None if options["windows"] is None else list(options["windows"]),
        "model": f"hazard-{kind}",
        "random_state": random_state,
        "refit": refit,
        "cutoffs": {
            **{k: [str(c.date()) for c in plan[k]] for k in ("train", "calibration", "test")},
            **{f"final_{k}": _dates(rows["cutoff"][v]) for k, v in final_at.items()},
        },
        "rows": {
            **{k: int(v.sum()) for k, v in at.items()},
            **{f"final_{k}": int(v.sum()) for k, v in final_at.items()},
        },
        "notes": [f"left out {len(empty)} feature(s) never observed in the training rows: {', '.join(empty)}"]
        if empty
        else [],
        **evaluation,
        **_reference(store, rows, X, outcome, final_at["train"], schema, wanted[0]),
    }
    return ChurnModel(final, metadata)


def churned_within(outcome: pd.DataFrame, days: int) -> np.ndarray:
    """0/1: churned within ``days`` of the cutoff (``time_to_churn`` rows)."""
    return ((outcome["churned"] == 1) & (outcome["time"] <= days)).to_numpy(dtype=int)


def _test(
    model: Any,
    X: pd.DataFrame,  # noqa: N803
    outcome: pd.DataFrame,
    before: pd.DataFrame,
    wanted: list[int],
) -> dict[str, Any]:
    """Out-of-time metrics at every horizon, beside Kaplan-Meier of the earlier rows (as known then)."""
    from churnrisk.evaluation import calibration_table, compare_scores, plain_metrics

    proba = model.churn_probabilities(X)
    curve = kaplan_meier(before["time"], before["churned"])
    tables = {}
    for j, h in enumerate(wanted):
        anchor = np.full(len(X), 1.0 - survival_at(curve, h))
        table = compare_scores(churned_within(outcome, h), {"model": proba[:, j], "kaplan_meier": anchor})
        tables[h] = {name: plain_metrics(table.loc[name].to_dict()) for name in ("model", "kaplan_meier")}
    by_horizon = {
        str(h): {**t["model"], "brier_kaplan_meier": t["kaplan_meier"]["brier"]} for h, t in tables.items()
    }
    y = churned_within(outcome, wanted[0])
    return {
        "metrics": tables[wanted[0]]["model"],
        "baselines": {"kaplan_meier": tables[wanted[0]]["kaplan_meier"]},
        "calibration": calibration_table(y, proba[:, 0]).to_dict(orient="list"),
        "horizon_metrics": by_horizon,
        # the mean Brier score over the horizons: the integrated Brier score on this grid
        "integrated_brier": {
            name: float(np.mean([t[name]["brier"] for t in tables.values()]))
            for name in ("model", "kaplan_meier")
        },
    }


def _reference(
    store: Any,
    rows: pd.DataFrame,
    X: pd.DataFrame,  # noqa: N803
    outcome: pd.DataFrame,
    fitted: np.ndarray,
    schema: dict[str, str],
    primary: int,
) -> dict[str, Any]:
    """What reasons, drift checks and baselines read: the fitted rows' typical values and churn rate."""
    from churnrisk.drift import feature_profile
    from churnrisk.evaluation import base_rates
    from churnrisk.model import feature_families, reference_values, risk_sides, spread_values

    mask = fitted & (outcome["observed"] >= primary).to_numpy()
    y = churned_within(outcome[mask], primary)
    labelled = rows.loc[mask, [ID]].assign(churned=y)
    with np.errstate(divide="ignore", invalid="ignore"):  # a feature seen only beside one label: no side
        sides = risk_sides(X[mask], y, schema)
    return {
        "schema": schema,
        "reference": reference_values(X[mask], schema),
        "spread": spread_values(X[mask], schema),
        "risk_side": sides,
        "profile": feature_profile(X[mask], schema),
        "families": feature_families(list(schema)),
        "base_rates": base_rates(store, labelled),
    }


def churn_curves(model: Any, features: pd.DataFrame) -> pd.DataFrame:
    """``p_churn_<h>d`` for every horizon of a :func:`train_horizons` model, and the expected lifetime.

    The probabilities come from the hazard of each interval (non-decreasing in the horizon);
    ``expected_lifetime_days`` is the expected time to churn restricted to :data:`LIFETIME_DAYS`:
    the area under the survival curve ``1 - p``, linear between the horizons and, beyond the last,
    falling at the constant hazard of the last interval (see :func:`restricted_lifetime`).
    """
    from churnrisk.hazard import HazardModel
    from churnrisk.model import prepare_features

    hazard = model.estimator
    if not isinstance(hazard, HazardModel):
        raise ChurnriskError(
            f"model {model.name!r} has one horizon. Suggestion: train it with several, e.g. "
            "churnrisk train DATA --horizons 30,90,180."
        )
    proba = hazard.churn_probabilities(prepare_features(features, model.schema))
    out = pd.DataFrame(proba, index=features.index, columns=[f"p_churn_{h}d" for h in hazard.horizons])
    out["expected_lifetime_days"] = restricted_lifetime(hazard.horizons, 1.0 - proba)
    return out


def restricted_lifetime(
    horizons: Sequence[int], survival: np.ndarray, limit: float = LIFETIME_DAYS
) -> np.ndarray:
    """Area under survival curves known at ``horizons`` (one row per customer), from 0 to ``limit``.

    Linear between ``(0, 1)`` and the known points; after the last one, exponential at the hazard
    of the last interval.

    Examples
    --------
    >>> restricted_lifetime([100], np.array([[0.5]]), limit=50).tolist()
    [43.75]
    """
    knots = np.concatenate([[0.0], np.asarray(horizons, dtype=float)])
    s = np.column_stack([np.ones(len(survival)), np.clip(survival, 0.0, 1.0)])
    t0, t1 = knots[:-1], knots[1:]
    end = np.clip(limit, t0, t1)  # each interval's part before the limit: [t0, end]
    s_end = s[:, :-1] + (s[:, 1:] - s[:, :-1]) * (end - t0) / (t1 - t0)
    area = (0.5 * (s[:, :-1] + s_end) * (end - t0)).sum(axis=1)
    rest = max(limit - knots[-1], 0.0)
    last = s[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.log(s[:, -2] / last) / (knots[-1] - knots[-2])
        tail = np.where(hazard > 0, last * -np.expm1(-hazard * rest) / hazard, last * rest)
    return area + np.where(last > 0, tail, 0.0)


def horizon_summary(metadata: dict[str, Any]) -> pd.DataFrame:
    """One row per horizon of a :func:`train_horizons` model: its out-of-time metrics beside Kaplan-Meier."""
    rows = {int(h): part for h, part in metadata.get("horizon_metrics", {}).items()}
    columns = ["roc_auc", "average_precision", "brier", "brier_kaplan_meier", "base_rate", "n"]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.reindex(columns=columns).rename_axis("horizon_days").reset_index()
