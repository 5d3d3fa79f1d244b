"""A shareable churn report: one self-contained HTML file for people who will not run Python.

Two steps, kept apart so each can be tested on its own:

* :func:`collect_report` gathers the numbers by calling the toolkit's public functions (historical
  rates, evaluation against baselines, scoring) and returns a :class:`ReportResults`;
* :func:`render_report` turns a :class:`ReportResults` into HTML. It is a pure function: no data
  store, no model, no file system.

The HTML has everything inside it: pictures are PNG images embedded as ``data:`` URIs, the style
sheet is inline, there is no JavaScript and no address outside the file, so it opens the same
offline, in a mail attachment or from a shared drive. Every value that comes from the user's data
(customer ids, segment names, reasons) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnrisk import plots
from churnrisk._io import atomic_path, check_writable

__all__ = [
    "MONITOR_SECTIONS",
    "SECTIONS",
    "ReportResults",
    "build_report",
    "collect_report",
    "metrics_frame",
    "render_monitoring",
    "render_report",
    "segment_column",
    "write_monitoring",
    "write_report",
]

#: Section headings, in order; every report shows all of them (with a note when data is missing).
SECTIONS = (
    "Churn-rate history",
    "Model quality against baselines",
    "Customers at risk",
    "Revenue at stake by segment",
)

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "average_precision": "average precision",
    "brier": "Brier score",
    "log_loss": "log loss",
    "lift_at_10pct": "lift, top 10 %",
    "capture_at_10pct": "capture, top 10 %",
    "lift_at_20pct": "lift, top 20 %",
    "capture_at_20pct": "capture, top 20 %",
    "base_rate": "base rate",
    "n": "rows",
}
RATE_COLUMNS = (
    "period_start",
    "customers_start",
    "customers_new",
    "customers_lost",
    "customers_end",
    "customer_churn_rate",
    "lost_churn_rate",
    "adjusted_churn_rate",
    "gross_revenue_churn",
    "net_revenue_churn",
    "revenue_churn",
)
AT_RISK_COLUMNS = ("customer_id", "churn_probability", "risk_tier", "revenue_at_risk", "reasons")
#: Columns whose names end so hold fractions, shown as percentages.
_FRACTION_ENDINGS = ("rate", "churn", "probability", "share")


@dataclass(frozen=True)
class ReportResults:
    """Everything a report shows, already computed.

    Parameters
    ----------
    as_of : date or datetime
        The date the data is as of.
    model_name : str
        Name of the model that produced the scores (e.g. its file name).
    version : str
        churnrisk version that made the report.
    rates : DataFrame, optional
        Historical churn rates, one row per period (columns of :func:`churnrisk.rates`).
    metrics : DataFrame, optional
        One row per scorer (``model`` first, then baselines), one column per metric key.
    y_true : array-like, optional
        0/1 outcomes of the evaluation rows.
    y_scores : mapping of str to array-like
        Scores of the same rows per scorer (``model`` and baselines) for the ROC and gain curves;
        the calibration plot uses the ``model`` scores.
    scores : DataFrame, optional
        The scored customer list, sorted by priority (columns of :func:`churnrisk.scoring`).
    segment_col : str, optional
        Column of ``scores`` holding the segment. Without one, revenue is shown by risk tier.
    top_n : int
        Number of customers listed in the at-risk table.
    notes : sequence of str
        Short remarks shown under the title (e.g. the evaluation cutoff).
    """

    as_of: date | datetime
    model_name: str
    version: str
    rates: pd.DataFrame | None = None
    metrics: pd.DataFrame | None = None
    y_true: Any = None
    y_scores: Mapping[str, Any] = field(default_factory=dict)
    scores: pd.DataFrame | None = None
    segment_col: str | None = None
    top_n: int = 50
    notes: Sequence[str] = ()


# --- rendering: a pure function of ReportResults ------------------------------------------------------


def render_report(results: ReportResults) -> str:
    """The report as one self-contained HTML document.

    Parameters
    ----------
    results : ReportResults

    Returns
    -------
    str
        HTML with inline CSS and embedded PNG images, no script and no external address.
    """
    body = [
        _header(results),
        _section(SECTIONS[0], _rates_section(results)),
        _section(SECTIONS[1], _quality_section(results)),
        _section(SECTIONS[2], _at_risk_section(results)),
        _section(SECTIONS[3], _revenue_section(results)),
        _footer(results),
    ]
    return _PAGE.format(
        title=_esc(f"Churn risk report, {_date(results.as_of)}"), css=_CSS, body="\n".join(body)
    )


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _date(value: Any) -> str:
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.strftime("%Y-%m-%d %H:%M")


def _section(title: str, content: str) -> str:
    anchor = title.lower().replace(" ", "-")
    return f'<section id="{_esc(anchor)}">\n<h2>{_esc(title)}</h2>\n{content}\n</section>'


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


def _header(results: ReportResults) -> str:
    facts = [f"Data as of <b>{_esc(_date(results.as_of))}</b>", f"model <b>{_esc(results.model_name)}</b>"]
    if results.scores is not None and len(results.scores):
        scores = results.scores
        facts.append(f"<b>{len(scores):,}</b> customers scored")
        facts.append(f"expected churners <b>{_number(scores['churn_probability'].sum())}</b>")
        if "revenue_at_risk" in scores.columns:
            facts.append(f"revenue at risk <b>{_number(scores['revenue_at_risk'].sum())}</b>")
    notes = "".join(_note(n) for n in results.notes)
    return f"<header>\n<h1>Churn risk report</h1>\n<p>{' · '.join(facts)}</p>\n{notes}\n</header>"


def _footer(results: ReportResults) -> str:
    return (
        f"<footer>As of {_esc(_date(results.as_of))} · model {_esc(results.model_name)} · "
        f"churnrisk {_esc(results.version)}</footer>"
    )


def _rates_section(results: ReportResults) -> str:
    rates = results.rates
    if rates is None or rates.empty:
        return _note("No churn-rate history: the data holds no complete period.")
    parts = [_image(plots.plot_churn_rates, rates, alt="Churn rate by period", size=(9, 3.6))]
    shown = [c for c in RATE_COLUMNS if c in rates.columns and rates[c].notna().any()]
    recent = rates.sort_values("period_start").tail(12)[shown]
    parts.append(_table(recent, caption=f"Last {len(recent)} periods"))
    parts.append(_note(_RATES_NOTE))
    if "gross_revenue_churn" in shown:
        parts.append(_note(_REVENUE_NOTE))
    return "\n".join(parts)


_RATES_NOTE = (
    "Customer churn (lost / start): customers active at a period's start who had left by its end. "
    "Adjusted churn: every customer who left, over the customers exposed during the period (those at "
    "the start plus half the new ones). Net change (start − end) / start is negative whenever the "
    "customer base grew."
)
_REVENUE_NOTE = (
    "Gross revenue churn: MRR lost to churn and downgrades over the MRR at the start; net revenue churn "
    "also counts expansion, so it can be negative."
)


def _quality_section(results: ReportResults) -> str:
    parts = []
    if results.metrics is not None and not results.metrics.empty:
        metrics = results.metrics.rename(columns=METRIC_LABELS)
        parts.append(
            _table(
                metrics.reset_index(names="scorer"),
                caption="Model and baselines on the same customers",
                highlight="model",
            )
        )
    else:
        parts.append(_note("No evaluation metrics were recorded for this model."))
    outcomes = np.asarray(results.y_true if results.y_true is not None else [], dtype=float)
    if "model" not in results.y_scores or len(outcomes) == 0:
        parts.append(_note("No labelled evaluation rows: curves are not available."))
    elif not 0 < outcomes.sum() < len(outcomes):
        parts.append(_note("Every evaluation row has the same outcome: curves are not defined."))
    else:
        parts.append('<div class="row">')
        parts.append(_image(_roc_all, results.y_true, results.y_scores, alt="ROC curves", size=(3.7, 3.6)))
        model_scores = results.y_scores["model"]
        parts.append(
            _image(plots.plot_calibration, results.y_true, model_scores, alt="Calibration", size=(3.7, 3.6))
        )
        parts.append(
            _image(_gain_all, results.y_true, results.y_scores, alt="Cumulative gain", size=(3.7, 3.6))
        )
        parts.append("</div>")
    return "\n".join(parts)


def _roc_all(y_true: Any, y_scores: Mapping[str, Any], *, ax: Any) -> Any:
    for name, score in y_scores.items():
        plots.plot_roc(y_true, score, label=name, ax=ax)
    return ax


def _gain_all(y_true: Any, y_scores: Mapping[str, Any], *, ax: Any) -> Any:
    for name, score in y_scores.items():
        plots.plot_cumulative_gain(y_true, score, label=name, ax=ax)
    return ax


def _at_risk_section(results: ReportResults) -> str:
    scores = results.scores
    if scores is None or scores.empty:
        return _note("No customers were scored.")
    parts = []
    if "risk_tier" in scores.columns:
        parts.append(_image(plots.plot_risk_distribution, scores, alt="Risk scores by tier", size=(6, 3.6)))
    if "reasons" in scores.columns:
        # the reasons of the customers listed below: the ones a retention team will call first
        counts = plots.reason_counts(scores, n_customers=results.top_n)
        if len(counts):
            size = (10.5, 1.3 + 0.3 * min(len(counts), 10))
            parts.append(
                _image(
                    plots.plot_top_reasons,
                    scores,
                    n_customers=results.top_n,
                    alt="Most frequent reasons",
                    size=size,
                )
            )
    extra = [results.segment_col] if results.segment_col else []
    columns = [c for c in (*AT_RISK_COLUMNS, *extra) if c in scores.columns]
    top = scores.head(results.top_n)[columns]
    parts.append(_table(top, caption=f"The {len(top):,} customers at highest risk (of {len(scores):,})"))
    return "\n".join(parts)


def _revenue_section(results: ReportResults) -> str:
    scores = results.scores
    if scores is None or scores.empty or "revenue_at_risk" not in scores.columns:
        return _note("No revenue at risk: the scored list has no revenue column.")
    by = results.segment_col if results.segment_col and results.segment_col in scores.columns else "risk_tier"
    parts = []
    if by != results.segment_col:
        parts.append(_note("The customers have no segment: revenue at risk is shown by risk tier."))
    table = plots.revenue_by_segment(scores, by=by)
    height = 1.2 + 0.32 * min(len(table), 20)
    parts.append(_image(plots.plot_revenue_at_risk, scores, by=by, alt="Revenue at risk", size=(7, height)))
    parts.append(_table(table.head(20), caption=f"Revenue at risk by {by}"))
    return "\n".join(parts)


def _image(draw: Callable[..., Any], *args: Any, alt: str, size: tuple[float, float], **kwargs: Any) -> str:
    """Draw on a figure of its own (no pyplot state) and embed it as a base64 PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    draw(*args, ax=figure.add_subplot(), **kwargs)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{data}"></figure>'


def _table(frame: pd.DataFrame, *, caption: str, highlight: str | None = None) -> str:
    head = "".join(f"<th>{_esc(str(c).replace('_', ' '))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = "".join(_cell(column, value) for column, value in zip(frame.columns, row, strict=True))
        marked = ' class="highlight"' if highlight is not None and str(row[0]) == highlight else ""
        rows.append(f"<tr{marked}>{cells}</tr>")
    return (
        f'<div class="scroll"><table>\n<caption>{_esc(caption)}</caption>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{chr(10).join(rows)}\n</tbody>\n</table></div>"
    )


def _cell(column: Any, value: Any) -> str:
    text, kind = _format(str(column), value)
    return f'<td class="{kind}">{_esc(text)}</td>' if kind else f"<td>{_esc(text)}</td>"


def _format(column: str, value: Any) -> tuple[str, str]:
    """Display text of a cell and its CSS class: "num" (right-aligned), "date" or "" (text)."""
    if isinstance(value, list | tuple | np.ndarray):
        return "; ".join(str(v) for v in value), ""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "", ""
    if isinstance(value, datetime | date | pd.Timestamp):
        return _date(value), "date"
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        return str(value), ""
    if column.lower() == "id" or column.lower().endswith("_id"):
        return str(value), ""  # an identifier, not a quantity: no thousands separator
    if column.lower().endswith(_FRACTION_ENDINGS) or column.lower().startswith("capture"):
        return f"{float(value):.1%}", "num"
    return _number(value), "num"


def _number(value: Any) -> str:
    """Whole numbers with thousands separators; other values with 2 decimals, 3 below 1."""
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    value = float(value)
    return f"{value:,.3f}" if abs(value) < 1 else f"{value:,.2f}"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}
</body>
</html>
"""

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1240px; padding: 1.5rem 2rem; color: #1f2328; background: #fff; }
h1 { margin: 0 0 .3rem; font-size: 1.8rem; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; margin-top: 2.2rem; }
header p { margin: .3rem 0; }
.note { color: #57606a; font-size: .92rem; }
.scroll { overflow-x: auto; }
.row { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: .6rem 0; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .88rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border-bottom: 1px solid #d8dee4; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.date { white-space: nowrap; }
tr.highlight td { background: #fff8c5; font-weight: 600; }
footer { margin-top: 2.5rem; padding-top: .6rem; border-top: 1px solid #d0d7de; color: #57606a;
         font-size: .85rem; }
"""


# --- collecting the numbers from the toolkit ------------------------------------------------------------

#: Columns every scored list has; any other column of it is a segment column.
SCORE_COLUMNS = (
    "customer_id",
    "churn_probability",
    "risk_tier",
    "revenue_at_risk",
    "reasons",
    "as_of",
    "model",
)


def metrics_frame(
    metrics: Mapping[str, Any] | None, baselines: Mapping[str, Mapping[str, Any]] | None = None
) -> pd.DataFrame | None:
    """The model's metrics and its baselines' (same keys, same rows) as one table.

    Rows: ``model`` first, then each baseline; columns: the metric keys present, in the order of
    :data:`METRIC_LABELS`, then any others. Missing values (``None``) become NaN.
    """
    if not metrics:
        return None
    rows = {"model": dict(metrics), **{str(name): dict(values) for name, values in (baselines or {}).items()}}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    order = [k for k in METRIC_LABELS if k in frame.columns]
    frame = frame[order + [c for c in frame.columns if c not in order]]
    frame = frame.apply(pd.to_numeric, errors="coerce").astype(float)
    if "n" in frame.columns:
        frame["n"] = frame["n"].astype("Int64")
    return frame


def segment_column(scores: pd.DataFrame) -> str | None:
    """The segment column of a scored list: ``segment`` when present, else the first extra column."""
    extra = [c for c in scores.columns if c not in SCORE_COLUMNS]
    if "segment" in extra:
        return "segment"
    return extra[0] if extra else None


def collect_report(
    model: Any, store: Any, *, as_of: datetime | None = None, top_n: int = 50
) -> ReportResults:
    """Compute what the report shows, by calling the toolkit's public functions.

    * the scored list: :func:`churnrisk.scoring.score_store` at ``as_of``;
    * the churn-rate history: :func:`churnrisk.rates.churn_rates`, monthly, up to ``as_of``, under
      the model's churn definition;
    * model quality: :func:`churnrisk.workflow.evaluate_model` at the latest cutoff whose outcome
      is known by ``as_of`` (``as_of`` − lead time − horizon), and
      :func:`churnrisk.evaluation.baseline_scores` on the same rows for the baselines' curves. When the
      data are too short for that, the metrics recorded in the model at training are shown instead.

    Parameters
    ----------
    model : str, path or ChurnModel
        A model file (loaded safely by :func:`churnrisk.modelfile.load_model`) or a model object
        trained on an event store.
    store : EventStore
        The event data, validated (:func:`churnrisk.load_store`).
    as_of : datetime, optional
        The date the data is as of. Default: the last instant in the data.
    top_n : int
        Number of customers listed in the at-risk table.

    Returns
    -------
    ReportResults
    """
    from churnrisk import __version__
    from churnrisk.model import ChurnModel
    from churnrisk.modelfile import load_model
    from churnrisk.rates._periods import data_span
    from churnrisk.scoring import score_store

    if not isinstance(model, ChurnModel):
        model = load_model(model)
    as_of_ts = pd.Timestamp(as_of if as_of is not None else data_span(store)[1])
    scores = score_store(model, store, cutoff=as_of_ts)
    quality, notes = _quality(model, store, as_of_ts)
    return ReportResults(
        as_of=as_of_ts,
        model_name=model.name,
        version=__version__,
        rates=_history(model, store, as_of_ts),
        scores=scores,
        segment_col=segment_column(scores),
        top_n=top_n,
        notes=notes,
        **quality,
    )


def _history(model: Any, store: Any, as_of: pd.Timestamp) -> pd.DataFrame | None:
    from churnrisk.definition import ChurnDefinition
    from churnrisk.errors import ChurnriskError
    from churnrisk.rates import churn_rates

    try:  # the model's own definition: its look-back (else horizon) and grace period
        churn = ChurnDefinition.from_options(model.metadata)
        return churn_rates(store, period="month", end=as_of, definition=churn)
    except ChurnriskError:  # e.g. less than one complete month of data: the section says so
        return None


def _quality(model: Any, store: Any, as_of: pd.Timestamp) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Metrics table and evaluation curves, fresh at the latest known cutoff, else from training."""
    from churnrisk.errors import ChurnriskError
    from churnrisk.workflow import evaluate_model

    meta = model.metadata
    gap = pd.Timedelta(days=meta["horizon"] + (meta.get("lead_time") or 0))
    cutoff = (as_of - gap).normalize()
    try:
        evaluated = evaluate_model(model, store, cutoff=cutoff)
    except ChurnriskError as exc:
        recorded = metrics_frame(meta.get("metrics"), meta.get("baselines"))
        note = f"Model quality as recorded at training (no fresh evaluation: {exc})"
        return {"metrics": recorded}, (note,)
    rows = evaluated["scores"]
    quality = {
        "metrics": metrics_frame(evaluated["metrics"], evaluated["baselines"]),
        "y_true": rows["churned"].to_numpy(dtype=int),
        "y_scores": {
            "model": rows["churn_probability"].to_numpy(dtype=float),
            **evaluated["baseline_scores"],
        },
    }
    return quality, (_evaluation_note(meta, cutoff),)


def _evaluation_note(meta: Mapping[str, Any], cutoff: pd.Timestamp) -> str:
    """Say which rows the quality section measures, and whether the model could have seen them."""
    text = (
        f"Model quality is measured on the customers at the cutoff {cutoff.date()}, whose churn within "
        f"{meta['horizon']} days is known by the as-of date."
    )
    from churnrisk.workflow import outcomes_seen_until

    seen = outcomes_seen_until(meta)
    if seen is not None and seen > cutoff:
        return text + (
            f" The model learned from outcomes up to {seen.date()}, after this cutoff: "
            "these figures are optimistic. Report on later data for an out-of-time measure."
        )
    return text + " The model never saw these outcomes (out of time)."


def build_report(model: Any, store: Any, *, as_of: datetime | None = None, top_n: int = 50) -> str:
    """The HTML report for ``model`` on ``store``: :func:`collect_report` then :func:`render_report`."""
    return render_report(collect_report(model, store, as_of=as_of, top_n=top_n))


def write_report(
    model: Any,
    store: Any,
    path: str | os.PathLike[str],
    *,
    as_of: datetime | None = None,
    top_n: int = 50,
    overwrite: bool = False,
) -> Path:
    """Build the report and write it to ``path`` atomically; refuse to replace a file unless asked."""
    check_writable(path, overwrite=overwrite)  # before the work, not after it
    text = build_report(model, store, as_of=as_of, top_n=top_n)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


# --- the monitoring page ---------------------------------------------------------------------------------

#: Section headings of the monitoring page, in order; every page shows all of them.
MONITOR_SECTIONS = (
    "Alerts",
    "Predicted vs observed churn",
    "Input drift",
    "Table freshness",
    "Past score lists",
)
_BACKTEST_COLUMNS = (
    "cutoff",
    "status",
    "known_on",
    "n",
    "predicted_rate",
    "observed_rate",
    "roc_auc",
    "average_precision",
    "calibration_error",
    "capture_at_10pct",
)


def render_monitoring(result: Any) -> str:
    """A :class:`churnrisk.monitoring.MonitorResult` as one self-contained HTML page (a pure function).

    Alerts first, then one section per check, each with its picture above its table.
    """
    body = [
        f"<header>\n<h1>Model monitoring</h1>\n<p>Data as of <b>{_esc(_date(result.as_of))}</b> · model "
        f"<b>{_esc(result.model_name)}</b></p>\n{''.join(_note(n) for n in result.notes)}\n</header>",
        _section(MONITOR_SECTIONS[0], _alerts_section(result)),
        _section(MONITOR_SECTIONS[1], _backtest_section(result)),
        _section(MONITOR_SECTIONS[2], _drift_section(result)),
        _section(MONITOR_SECTIONS[3], _freshness_section(result)),
        _section(MONITOR_SECTIONS[4], _past_section(result)),
        f"<footer>As of {_esc(_date(result.as_of))} · model {_esc(result.model_name)}</footer>",
    ]
    title = _esc(f"Model monitoring, {_date(result.as_of)}")
    return _PAGE.format(title=title, css=_CSS, body="\n".join(body))


def _alerts_section(result: Any) -> str:
    if result.alerts.empty:
        return _note("No alert: the model and its inputs look healthy.")
    items = "".join(
        f"<li><b>{_esc(alert.kind)}</b>: {_esc(alert.message)}</li>" for alert in result.alerts.itertuples()
    )
    return f'<ul class="alerts">{items}</ul>'


def _backtest_section(result: Any) -> str:
    cutoffs = result.cutoffs
    done = cutoffs[cutoffs["status"] == "backtested"]
    parts = []
    if done.empty:
        parts.append(_note("No cutoff has a known outcome yet: nothing to compare."))
    else:
        parts.append(_image(plots.plot_backtest, cutoffs, alt="Predicted vs observed churn", size=(8, 3.4)))
    if len(cutoffs):
        shown = cutoffs[[c for c in _BACKTEST_COLUMNS if c in cutoffs.columns]]
        parts.append(_table(shown, caption="Backtest by cutoff (pending: the outcome is not known yet)"))
    latest = done["cutoff"].max() if len(done) else None
    for frame, key in ((result.by_tier, "risk tier"), (result.by_segment, "segment")):
        if latest is not None and len(frame):
            rows = frame[frame["cutoff"] == latest].drop(columns=["cutoff"])
            parts.append(_table(rows, caption=f"By {key} at the latest backtested cutoff, {_date(latest)}"))
    return "\n".join(parts)


def _drift_section(result: Any) -> str:
    drift = result.drift
    if drift.empty:
        return _note("Drift is not measured: the model records no training profile of its features.")
    limit = result.thresholds.max_psi
    top = drift.head(15)
    return "\n".join(
        [
            _image(plots.plot_drift, top, threshold=limit, alt="Drift of the top features", size=(8, 4.6)),
            _table(top.drop(columns=["family"]), caption="The 15 most influential features"),
            _note(
                "PSI: population stability index against the training rows (above 0.1 a moderate, above "
                "0.25 a major shift). Impact: mean change of the churn probability when the feature is set "
                "to its typical training value. Effect: how much the feature's shift alone moved the average "
                "predicted churn."
            ),
        ]
    )


def _freshness_section(result: Any) -> str:
    freshness = result.freshness
    if freshness.empty:
        return _note("No dated table.")
    size = (8, 1.2 + 0.35 * len(freshness))
    stale = result.thresholds.stale_days
    return "\n".join(
        [
            _image(plots.plot_freshness, freshness, stale_days=stale, alt="Table freshness", size=size),
            _table(freshness, caption="Last event of each table"),
        ]
    )


def _past_section(result: Any) -> str:
    if result.past_scores.empty:
        return _note("No past score lists were given (churnrisk monitor --scores DIR).")
    return _table(result.past_scores, caption="What happened to the customers of each past list")


def write_monitoring(result: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write :func:`render_monitoring` of ``result`` to ``path`` atomically."""
    text = render_monitoring(result)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
