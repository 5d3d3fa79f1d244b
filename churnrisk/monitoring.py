"""A model in use, checked (DESIGN §9): did past scores come true, are the inputs still what it learned from?

:func:`monitor` looks back at a model trained on an event store:

* **backtest** — at every past cutoff since the model's training data whose horizon has passed, the
  eligible customers are scored as of that date (features see only events up to it) and compared
  with what happened under the model's own churn definition (:func:`churnrisk.training.training_rows`):
  predicted against observed churn rate (overall, by risk tier, by segment), ROC AUC, average
  precision, calibration error, capture of the top 10 %. A cutoff whose horizon has not passed is
  listed as *pending* with the date its outcome will be known, never guessed;
* **drift** — at the as-of date, every feature against the bins recorded at training
  (:mod:`churnrisk.drift`), next to its *impact*: how much the predictions move, on average, when
  the feature is set to its typical training value;
* **freshness** — the last event of every table against the as-of date. A table that silently
  stopped filling is the most common failure in practice;
* **past score files** — the lists ``churnrisk score`` wrote, against what happened, without
  rescoring;
* **alerts** — :class:`Thresholds` on all of the above; every alert names the table or feature
  and says what to check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from churnrisk.definition import ChurnDefinition, data_end
from churnrisk.errors import ChurnriskError
from churnrisk.evaluation import calibration_table, score_metrics
from churnrisk.model import ChurnModel, prepare_features
from churnrisk.scoring import eligible_features, risk_tiers
from churnrisk.training import cutoff_range
from churnrisk.workflow import model_rows

__all__ = [
    "ALERT_COLUMNS",
    "MonitorResult",
    "Thresholds",
    "backtest",
    "cutoff_plan",
    "drift_effect",
    "feature_impact",
    "find_alerts",
    "input_drift",
    "monitor",
    "past_scores",
    "table_freshness",
]

ALERT_COLUMNS = ("kind", "table", "feature", "message", "value", "threshold")
#: A quiet table is only stale when this many events or more were expected in its silence.
MIN_EXPECTED_EVENTS = 10
#: Customers sampled (evenly, in customer-id order) to ask the model what-if questions.
WHAT_IF_SAMPLE = 1_000


@dataclass(frozen=True)
class Thresholds:
    """When :func:`monitor` raises an alert.

    Parameters
    ----------
    max_gap : float
        Predicted and observed churn rates, averaged over the ``recent`` latest backtested cutoffs,
        may differ by at most this much (0.03 = 3 percentage points).
    auc_margin : float
        ROC AUC averaged over the ``recent`` latest backtested cutoffs may fall at most this much
        below the AUC the model had in its out-of-time test at training.
    max_psi : float
        Population stability index above which a feature has drifted (0.25: a major shift)...
    min_effect : float
        ...provided the feature matters: its shift alone moves the average predicted churn by at
        least this much (0.02 = two percentage points; see :func:`drift_effect`).
    stale_days : int
        A table whose last event is more than this many days before the as-of date is stale, when
        it usually receives at least ``MIN_EXPECTED_EVENTS`` events in that time.
    recent : int
        How many of the latest backtested cutoffs the calibration and AUC checks average over.
    """

    max_gap: float = 0.03
    auc_margin: float = 0.05
    max_psi: float = 0.25
    min_effect: float = 0.02
    stale_days: int = 14
    recent: int = 3

    @classmethod
    def given(cls, **limits: Any) -> Thresholds:
        """The default thresholds, with the ``limits`` given instead (``None``: the default)."""
        return cls(**{name: value for name, value in limits.items() if value is not None})

    def __post_init__(self) -> None:
        for name in ("max_gap", "auc_margin", "max_psi", "min_effect"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0:
                raise ChurnriskError(f"The {name!r} threshold must be a number >= 0. Got {value!r} instead.")
        for name in ("stale_days", "recent"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (1 if name == "recent" else 0):
                raise ChurnriskError(f"The {name!r} threshold must be a whole number. Got {value!r} instead.")


@dataclass(frozen=True)
class MonitorResult:
    """Everything :func:`monitor` found; frames throughout, :meth:`to_dict` for JSON.

    Attributes
    ----------
    cutoffs : DataFrame
        One row per cutoff: ``cutoff, status`` ("backtested" or "pending"), ``known_on``, ``n``,
        ``predicted_rate, observed_rate, gap, roc_auc, average_precision, brier,
        calibration_error, capture_at_10pct, lift_at_10pct`` (NaN while pending).
    by_tier, by_segment : DataFrame
        ``cutoff, risk_tier`` (or the segment column), ``n, predicted_rate, observed_rate``.
    drift : DataFrame
        ``feature, family, table, psi, missing_train, missing_now, impact, effect``, most
        impactful first (empty when the model records no profile); see :func:`input_drift`.
    freshness : DataFrame
        ``table, last_event, days_behind, behind_newest, events_per_day, expected_events, stale``.
    past_scores : DataFrame
        One row per past score file (empty without ``scores``), see :func:`past_scores`.
    alerts : DataFrame
        ``kind`` ("freshness", "drift", "calibration", "discrimination"), ``table``, ``feature``,
        ``message``, ``value``, ``threshold``.
    """

    as_of: pd.Timestamp
    model_name: str
    cutoffs: pd.DataFrame
    by_tier: pd.DataFrame
    by_segment: pd.DataFrame
    drift: pd.DataFrame
    freshness: pd.DataFrame
    past_scores: pd.DataFrame
    alerts: pd.DataFrame
    thresholds: Thresholds = field(default_factory=Thresholds)
    notes: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.alerts.empty

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: dates as ISO text, NaN as ``None``; an alert has ``table`` or ``feature``."""
        frames = ("cutoffs", "by_tier", "by_segment", "drift", "freshness", "past_scores")
        alerts = [
            {k: v for k, v in alert.items() if v is not None or k not in ("table", "feature")}
            for alert in _records(self.alerts)
        ]
        return {
            "as_of": _plain(self.as_of),
            "model": self.model_name,
            "healthy": self.healthy,
            **{name: _records(getattr(self, name)) for name in frames},
            "alerts": alerts,
            "notes": list(self.notes),
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return (
            None if pd.isna(value) else value.isoformat() if value != value.normalize() else str(value.date())
        )
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    return value


def monitor(
    model: Any,
    store: Any,
    *,
    since: Any = None,
    every: str = "1M",
    as_of: Any = None,
    scores: str | os.PathLike[str] | None = None,
    thresholds: Thresholds | None = None,
    segment: str | None = "segment",
) -> MonitorResult:
    """Backtest, input drift, table freshness, past score files and alerts of a model on ``store``.

    Parameters
    ----------
    model : ChurnModel, str or path
        A model trained on an event store, or its file (loaded by :func:`churnrisk.load_model`).
    store : EventStore
        The event data up to the as-of date, validated.
    since : date, optional
        First backtest cutoff. Default: right after the last cutoff the model learned from.
    every : str, default "1M"
        Spacing of the backtest cutoffs, counted back from the as-of date (see
        :func:`churnrisk.make_cutoffs`).
    as_of : date, optional
        The date the data is as of. Default: the last instant in the data.
    scores : folder, optional
        Score files written by ``churnrisk score`` (see :func:`past_scores`).
    thresholds : Thresholds, optional
        When to raise an alert (default :class:`Thresholds`).
    segment : str or None, default "segment"
        Column of the customers table to break the backtest down by (skipped when absent).

    Returns
    -------
    MonitorResult
    """
    model = _events_model(model)
    limits = thresholds if thresholds is not None else Thresholds()
    known_until = pd.Timestamp(data_end(store))
    as_of = _timestamp(as_of, "as_of") if as_of is not None else known_until
    known_until = min(as_of, known_until)
    past = past_scores(model, store, scores, known_until=known_until) if scores is not None else _no_files()
    plan = cutoff_plan(model, as_of=as_of, known_until=known_until, since=since, every=every)
    cutoffs, by_tier, by_segment = backtest(model, store, plan, segment=segment)
    drift, notes = input_drift(model, store, as_of, min_psi=limits.max_psi)
    freshness = table_freshness(store, as_of, stale_days=limits.stale_days)
    if (cutoffs["status"] == "backtested").sum() == 0:
        notes = (*notes, "No cutoff since the training data has a known outcome yet: nothing to backtest.")
    return MonitorResult(
        as_of=as_of,
        model_name=model.name,
        cutoffs=cutoffs,
        by_tier=by_tier,
        by_segment=by_segment,
        drift=drift,
        freshness=freshness,
        past_scores=past,
        alerts=find_alerts(model, cutoffs, drift, freshness, limits),
        thresholds=limits,
        notes=notes,
    )


def _timestamp(value: Any, name: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise ChurnriskError(f"The {name!r} parameter of monitor must be a date. Got {value!r} instead.")
    return stamp


def _events_model(model: Any) -> ChurnModel:
    if not isinstance(model, ChurnModel):
        from churnrisk.modelfile import load_model

        model = load_model(model)
    if model.metadata.get("kind") != "events":
        raise ChurnriskError(
            "monitoring needs a model trained on an event store; this one was trained on a snapshot table. "
            "Suggestion: monitor a model from `churnrisk train DATA ...`."
        )
    return model


# --- backtest --------------------------------------------------------------------------------------------


def cutoff_plan(
    model: ChurnModel, *, as_of: pd.Timestamp, known_until: pd.Timestamp, since: Any = None, every: str = "1M"
) -> pd.DataFrame:
    """``cutoff, status, known_on``: the cutoffs to backtest, ``every`` apart back from ``as_of``.

    From ``since`` (default: the day after the last cutoff the model learned from, i.e. every
    cutoff in its metadata but the test one). A cutoff is ``backtested`` when its outcome window
    ends by ``known_until`` (the end of the data), else ``pending`` until ``known_on``.
    """
    meta = model.metadata
    first = _timestamp(since, "since") if since is not None else _learned_until(meta) + pd.Timedelta(days=1)
    last = as_of.normalize()
    dates = cutoff_range(first, last, every=every) if first <= last else []
    churn = ChurnDefinition.from_options(meta)  # the grace period delays a known outcome too
    known_on = [pd.Timestamp(churn.label_end(c)) for c in dates]
    status = ["backtested" if k <= known_until else "pending" for k in known_on]
    return pd.DataFrame(
        {"cutoff": pd.to_datetime(dates), "status": status, "known_on": pd.to_datetime(known_on)}
    )


def _learned_until(meta: dict[str, Any]) -> pd.Timestamp:
    recorded = meta.get("cutoffs") or {}
    learned = [pd.Timestamp(c) for key, values in recorded.items() if key != "test" for c in values]
    if not learned:
        raise ChurnriskError(
            "the model records no training cutoffs, so where to start the backtest is unknown. "
            "Suggestion: pass since=... (--since YYYY-MM-DD)."
        )
    return max(learned)


_METRICS = ("roc_auc", "average_precision", "brier", "calibration_error", "capture_at_10pct", "lift_at_10pct")
_RATES = ("n", "predicted_rate", "observed_rate")


def backtest(
    model: ChurnModel, store: Any, plan: pd.DataFrame, *, segment: str | None = "segment"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Score each backtested cutoff of ``plan`` as of its date and compare with what happened.

    Returns the cutoff table (``plan`` with ``n``, the rates, ``gap`` = predicted - observed and the
    metrics), and the rates by risk tier and by ``segment``. One cutoff at a time, so memory is
    that of one cutoff's features.
    """
    groups = _segments(store, segment)
    summaries, tiers, segments = [], [], []
    for cutoff in plan.loc[plan["status"] == "backtested", "cutoff"]:
        scored = model_rows(model, store, cutoff)
        y, p = scored["churned"].to_numpy(dtype=int), scored["churn_probability"].to_numpy(dtype=float)
        summaries.append({"cutoff": cutoff, **_cutoff_metrics(y, p)})
        tiers.append(_rates_by(scored, pd.Series(risk_tiers(p)), "risk_tier", cutoff))
        if groups is not None:
            keys = scored["customer_id"].map(groups).astype(str)
            segments.append(_rates_by(scored, keys, str(segment), cutoff))
    columns = ["cutoff", *_RATES, "gap", *_METRICS]
    table = plan.merge(pd.DataFrame(summaries, columns=columns), on="cutoff", how="left")
    table["n"] = table["n"].astype("Int64")
    by_tier = _concat(tiers, ["cutoff", "risk_tier", *_RATES])
    by_segment = _concat(segments, ["cutoff", str(segment or "segment"), *_RATES])
    return table, by_tier, by_segment


def _cutoff_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    if not len(y):
        return {"n": 0}
    metrics = score_metrics(y, p)
    bins = calibration_table(y, p)
    error = np.average((bins["mean_predicted"] - bins["observed_rate"]).abs(), weights=bins["n"])
    rates = {"n": len(y), "predicted_rate": float(p.mean()), "observed_rate": float(y.mean())}
    return {
        **rates,
        "gap": rates["predicted_rate"] - rates["observed_rate"],
        **{k: metrics[k] for k in _METRICS if k in metrics},
        "calibration_error": float(error),
    }


def _rates_by(scored: pd.DataFrame, keys: pd.Series, name: str, cutoff: pd.Timestamp) -> pd.DataFrame:
    grouped = scored.groupby(keys.set_axis(scored.index), sort=True, observed=True)
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "predicted_rate": grouped["churn_probability"].mean(),
            "observed_rate": grouped["churned"].mean(),
        }
    )
    return out.rename_axis(name).reset_index().assign(cutoff=cutoff)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _segments(store: Any, segment: str | None) -> pd.Series | None:
    customers = store["customers"]
    if segment is None or segment not in customers.columns:
        return None
    return customers.select("customer_id", segment).to_pandas().set_index("customer_id")[segment]


# --- inputs: drift and freshness ---------------------------------------------------------------------------


def input_drift(
    model: ChurnModel, store: Any, as_of: pd.Timestamp, *, min_psi: float = 0.25
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Drift of every feature at ``as_of`` against the training profile; and notes.

    ``impact`` (:func:`feature_impact`) says how much a feature matters to the predictions today,
    ``effect`` (:func:`drift_effect`, measured where the PSI is above ``min_psi``) how much its
    shift moved the average predicted churn. A model without a profile (saved before profiles were
    recorded) gives an empty table and a note.
    """
    from churnrisk.drift import drift_table
    from churnrisk.features import FAMILIES

    columns = ["feature", "family", "table", "psi", "missing_train", "missing_now", "impact", "effect"]
    profile = model.metadata.get("profile")
    if not profile:
        note = "The model records no training profile of its features: drift is not measured. Retrain it."
        return pd.DataFrame(columns=columns), (note,)
    prepared = prepare_features(eligible_features(model, store, as_of), model.schema)
    table = drift_table(prepared, {c: e for c, e in profile.items() if c in model.schema})
    families = model.metadata.get("families") or {}
    tables = {f.name: f.table for f in FAMILIES}
    table["family"] = table["feature"].map(lambda c: families.get(c, c))
    table["table"] = table["family"].map(tables)
    table["impact"] = feature_impact(model, prepared).reindex(table["feature"]).to_numpy()
    table["effect"] = [
        drift_effect(model, prepared, c, profile[c]) if psi > min_psi else np.nan
        for c, psi in zip(table["feature"], table["psi"], strict=True)
    ]
    ordered = table.sort_values(["impact", "psi"], ascending=False, kind="stable")[columns]
    return ordered.reset_index(drop=True), ()


def feature_impact(model: ChurnModel, prepared: pd.DataFrame, *, sample: int = WHAT_IF_SAMPLE) -> pd.Series:
    """Mean absolute change of the churn probability when one feature is set to its typical value.

    Measured on at most ``sample`` rows of ``prepared``, evenly spaced (deterministic). The typical
    value is the training median or most frequent category (``metadata["reference"]``).
    """
    if prepared.empty:
        return pd.Series(0.0, index=model.features)
    rows = _sample(prepared, sample)
    reference = model.metadata.get("reference") or {}
    changes = [(c, np.nan if reference.get(c) is None else reference[c]) for c in model.features]
    change = np.abs(_what_if(model, rows, changes) - model.predict_prepared(rows))
    return pd.Series(change.mean(axis=1), index=model.features)


def drift_effect(
    model: ChurnModel,
    prepared: pd.DataFrame,
    column: str,
    entry: dict[str, Any],
    *,
    sample: int = WHAT_IF_SAMPLE,
) -> float:
    """How much the shift of ``column`` alone moved the average predicted churn (signed).

    The model's mean prediction with the feature set to a value of each recorded bin (its partial
    dependence, on at most ``sample`` rows), weighted by today's bin shares minus the training
    shares. A feature that drifts where the model does not look moves nothing.
    """
    from churnrisk.drift import bin_shares, bin_values, profile_shares

    if prepared.empty:
        return 0.0
    values = bin_values(prepared[column], entry)
    dependence = _what_if(model, _sample(prepared, sample), [(column, v) for v in values]).mean(axis=1)
    return float((bin_shares(prepared[column], entry) - profile_shares(entry)) @ dependence)


def _sample(prepared: pd.DataFrame, size: int) -> pd.DataFrame:
    """At most ``size`` rows, evenly spaced (the same rows every run)."""
    return prepared.iloc[np.unique(np.linspace(0, len(prepared) - 1, min(size, len(prepared))).astype(int))]


def _what_if(model: ChurnModel, rows: pd.DataFrame, changes: list[tuple[str, Any]]) -> np.ndarray:
    """Probabilities of ``rows`` with one column set to one value, one row per change (one prediction
    over the stacked copies: the model's fixed cost per call is paid once)."""
    stacked = pd.concat([rows.assign(**{column: value}) for column, value in changes], ignore_index=True)
    return model.predict_prepared(stacked).reshape(len(changes), len(rows))


def table_freshness(store: Any, as_of: pd.Timestamp, *, stale_days: int = 14) -> pd.DataFrame:
    """``table, last_event, days_behind, behind_newest, events_per_day, expected_events, stale``.

    ``last_event`` is the latest time (at or before ``as_of``) in any of the table's time columns;
    ``days_behind`` counts from it to ``as_of``, ``behind_newest`` to the freshest table's last
    event. ``events_per_day`` is the table's rate over the year before its last event, so
    ``expected_events`` (rate × days behind) says how unusual the silence is: a table is ``stale``
    when it is more than ``stale_days`` behind and at least :data:`MIN_EXPECTED_EVENTS` events were
    expected in that time (a rarely used table may be quiet for weeks).
    """
    from churnrisk.contract import TABLES

    rows = []
    t = as_of.to_pydatetime()
    for name, frame in store.tables.items():
        times = [c.name for c in TABLES[name].columns if c.kind == "time" and c.name in frame.columns]
        lasts = [frame.filter(pl.col(c) <= t)[c].max() for c in times]
        lasts = [v for v in lasts if v is not None]
        if not lasts:
            continue
        last = pd.Timestamp(max(lasts))
        rows.append({"table": name, "last_event": last, **_rate(frame, TABLES[name].time or times[0], last)})
    out = pd.DataFrame(rows, columns=["table", "last_event", "events_per_day"])
    out["days_behind"] = (as_of - out["last_event"]).dt.total_seconds() / 86_400
    out["behind_newest"] = (out["last_event"].max() - out["last_event"]).dt.total_seconds() / 86_400
    out["expected_events"] = out["events_per_day"] * out["days_behind"]
    out["stale"] = _is_stale(out, stale_days)
    columns = [
        "table",
        "last_event",
        "days_behind",
        "behind_newest",
        "events_per_day",
        "expected_events",
        "stale",
    ]
    return out.sort_values(["days_behind", "table"], ascending=[False, True], kind="stable")[
        columns
    ].reset_index(drop=True)


def _rate(frame: pl.DataFrame, column: str, last: pd.Timestamp) -> dict[str, float]:
    start = last - pd.Timedelta(days=365)
    window = frame.filter((pl.col(column) > start.to_pydatetime()) & (pl.col(column) <= last.to_pydatetime()))
    first: Any = window[column].min()
    days = max((last - pd.Timestamp(first)).total_seconds() / 86_400, 1.0) if first is not None else 1.0
    return {"events_per_day": window.height / days}


# --- past score files ------------------------------------------------------------------------------------

_PAST_COLUMNS = (
    "file",
    "as_of",
    "status",
    "known_on",
    "listed",
    "labelled",
    "predicted_rate",
    "observed_rate",
    "hit_rate_top_10pct",
    "high_tier",
    "hit_rate_high_tier",
    "contacts",
    "hit_rate_contacts",
    "roc_auc",
)


def _no_files() -> pd.DataFrame:
    return pd.DataFrame(columns=list(_PAST_COLUMNS))


def past_scores(
    model: ChurnModel, store: Any, folder: str | os.PathLike[str], *, known_until: pd.Timestamp
) -> pd.DataFrame:
    """What happened to the customers of each score file in ``folder``, without rescoring them.

    Every ``.csv`` / ``.parquet`` file with ``customer_id``, ``churn_probability`` and ``as_of``
    (as ``churnrisk score`` writes them) is one past list. Once its outcome is known, the listed
    customers are labelled under the model's churn definition as of the file's ``as_of``:
    ``hit_rate_top_10pct`` is the share of churners among the top 10 % of the list (the customers a
    team contacts first; ties pro rata), ``hit_rate_high_tier`` among the ``high`` tier and
    ``hit_rate_contacts`` among the customers marked in a ``contact`` column (``churnrisk score
    --top``), when the file has one.
    ``labelled`` can be below ``listed``: customers who left during the lead time have no label.
    """
    path = Path(folder)
    if not path.is_dir():
        raise ChurnriskError(
            f"the scores folder {path} does not exist. Suggestion: give the folder of score files."
        )
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".parquet"))
    if not files:
        raise ChurnriskError(f"{path} holds no score files (.csv or .parquet). Suggestion: check the folder.")
    gap = pd.Timedelta(ChurnDefinition.from_options(model.metadata).label_delay)
    rows = [_past_list(model, store, f, gap, known_until) for f in files]
    return (
        pd.DataFrame(rows, columns=list(_PAST_COLUMNS))
        .sort_values(["as_of", "file"], kind="stable")
        .reset_index(drop=True)
    )


def _read_scores(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    missing = [c for c in ("customer_id", "churn_probability", "as_of") if c not in frame.columns]
    if missing:
        raise ChurnriskError(
            f"score file {path.name} lacks the column(s) {', '.join(missing)}. "
            "Suggestion: keep only files written by `churnrisk score` in the folder."
        )
    dates = pd.to_datetime(frame["as_of"]).unique()
    if len(dates) != 1:
        raise ChurnriskError(
            f"score file {path.name} should hold one as-of date; got {len(dates)}: "
            f"{', '.join(map(str, dates[:3]))}. Suggestion: keep one `churnrisk score` output per file."
        )
    return frame


def _past_list(
    model: ChurnModel, store: Any, path: Path, gap: pd.Timedelta, known_until: pd.Timestamp
) -> dict:
    from churnrisk.labels import make_labels

    frame = _read_scores(path)
    as_of = pd.Timestamp(pd.to_datetime(frame["as_of"]).iloc[0])
    row: dict[str, Any] = {"file": path.name, "as_of": as_of, "known_on": as_of + gap, "listed": len(frame)}
    if as_of + gap > known_until:
        return {**row, "status": "pending"}
    labels = make_labels(store, as_of, definition=ChurnDefinition.from_options(model.metadata))
    churned = frame["customer_id"].astype(str).map(labels["churned"].set_axis(labels.index.astype(str)))
    known = frame[churned.notna()]
    y, p = churned.dropna().to_numpy(dtype=int), known["churn_probability"].to_numpy(dtype=float)
    tiers = known["risk_tier"] if "risk_tier" in known else risk_tiers(p)
    high = np.asarray(tiers).astype(str) == "high"
    contacts = known["contact"].astype(bool).to_numpy() if "contact" in known else None
    metrics = score_metrics(y, p) if len(y) else {}
    return {
        **row,
        "status": "backtested",
        "labelled": len(y),
        "predicted_rate": float(p.mean()) if len(y) else np.nan,
        "observed_rate": metrics.get("base_rate", np.nan),
        "hit_rate_top_10pct": metrics.get("lift_at_10pct", np.nan) * metrics.get("base_rate", np.nan),
        "high_tier": int(high.sum()),
        "hit_rate_high_tier": _rate_of(y, high),
        "contacts": np.nan if contacts is None else int(contacts.sum()),
        "hit_rate_contacts": np.nan if contacts is None else _rate_of(y, contacts),
        "roc_auc": metrics.get("roc_auc", np.nan),
    }


def _rate_of(y: np.ndarray, chosen: np.ndarray) -> float:
    """Churn rate among the ``chosen`` rows (NaN when none)."""
    return float(y[chosen].mean()) if chosen.any() else np.nan


# --- alerts --------------------------------------------------------------------------------------------


def find_alerts(
    model: ChurnModel,
    cutoffs: pd.DataFrame,
    drift: pd.DataFrame,
    freshness: pd.DataFrame,
    limits: Thresholds,
) -> pd.DataFrame:
    """Every threshold crossed, stale tables first (the most common failure), then drift, then quality."""
    alerts = [
        *_freshness_alerts(freshness, limits),
        *_drift_alerts(drift, limits),
        *_quality_alerts(model, cutoffs, limits),
    ]
    return pd.DataFrame(alerts, columns=list(ALERT_COLUMNS))


def _is_stale(freshness: pd.DataFrame, stale_days: int) -> pd.Series:
    return (freshness["days_behind"] > stale_days) & (freshness["expected_events"] >= MIN_EXPECTED_EVENTS)


def _freshness_alerts(freshness: pd.DataFrame, limits: Thresholds) -> list[dict[str, Any]]:
    stale = freshness[_is_stale(freshness, limits.stale_days)]
    newest = freshness["last_event"].max() if len(freshness) else None
    return [
        {
            "kind": "freshness",
            "table": row["table"],
            "message": (
                f"table '{row['table']}' is stale: its last event is on {_day(row['last_event'])}, "
                f"{row['days_behind']:.0f} days before the as-of date (the freshest table runs to "
                f"{_day(newest)}); "
                f"about {row['expected_events']:,.0f} events were expected in that time. Check the export or "
                f"pipeline that fills {row['table']}: it may have stopped or changed its columns."
            ),
            "value": float(row["days_behind"]),
            "threshold": float(limits.stale_days),
        }
        for row in stale.to_dict(orient="records")
    ]


def _drift_alerts(drift: pd.DataFrame, limits: Thresholds) -> list[dict[str, Any]]:
    shifted = drift[(drift["psi"] > limits.max_psi) & (drift["effect"].abs() >= limits.min_effect)]
    return [
        {
            "kind": "drift",
            "table": row["table"],
            "feature": row["feature"],
            "message": (
                f"feature '{row['feature']}' (table {row['table']}) drifted from the training data: PSI "
                f"{row['psi']:.2f} > {limits.max_psi:g} (missing {row['missing_train']:.0%} in training, "
                f"{row['missing_now']:.0%} now), which alone moves the average predicted churn by "
                f"{100 * row['effect']:+.1f} points. Check how {row['table']} is filled (a stopped or "
                "changed export); if the change is real, retrain."
            ),
            "value": float(row["psi"]),
            "threshold": limits.max_psi,
        }
        for row in shifted.to_dict(orient="records")
    ]


def _quality_alerts(model: ChurnModel, cutoffs: pd.DataFrame, limits: Thresholds) -> list[dict[str, Any]]:
    done = cutoffs[(cutoffs["status"] == "backtested") & (cutoffs["n"] > 0)].tail(limits.recent)
    if done.empty:
        return []
    first, last = _day(done["cutoff"].iloc[0]), _day(done["cutoff"].iloc[-1])
    span = f"the last {len(done)} backtested cutoff(s), {first} to {last}"
    predicted, observed = float(done["predicted_rate"].mean()), float(done["observed_rate"].mean())
    alerts = []
    if abs(predicted - observed) > limits.max_gap:
        alerts.append(
            {
                "kind": "calibration",
                "message": (
                    f"predicted churn {predicted:.1%} against observed {observed:.1%} on average over "
                    f"{span}: more than {limits.max_gap:.1%} apart. Check those months' data "
                    "(drift, stale tables); if customers' behaviour changed, retrain the model."
                ),
                "value": abs(predicted - observed),
                "threshold": limits.max_gap,
            }
        )
    tested = (model.metadata.get("metrics") or {}).get("roc_auc")
    auc = float(done["roc_auc"].mean())
    if tested is not None and np.isfinite(auc) and auc < tested - limits.auc_margin:
        alerts.append(
            {
                "kind": "discrimination",
                "message": (
                    f"ROC AUC {auc:.3f} on average over {span}, below the {tested:.3f} of the model's "
                    f"test at training by more than {limits.auc_margin:g}: the ranking of customers got "
                    "worse. Check the drift of the top features; retrain on recent cutoffs."
                ),
                "value": auc,
                "threshold": tested - limits.auc_margin,
            }
        )
    return alerts


def _day(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else str(pd.Timestamp(value).date())
