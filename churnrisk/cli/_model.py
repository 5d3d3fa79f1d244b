"""Commands about the churn model: train, evaluate, score, quickstart (DESIGN §5-6)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
import typer

from churnrisk._io import atomic_path
from churnrisk.cli._app import app, console, frame_table, print_json, user_errors
from churnrisk.cli._options import (
    DATE_FORMATS,
    AsOfOpt,
    ConfigOpt,
    DataOpt,
    DefinitionOpt,
    EncodingOpt,
    LookbackOpt,
    ModelArg,
    OverwriteOpt,
    ReportFormatOpt,
    TableOpt,
    TrustOpt,
)
from churnrisk.database import write_output


def _metrics_frame(metrics: dict, baselines: dict) -> pd.DataFrame:
    """One row per metric shown on screen (the --metrics file has them all), one column per score
    (the model, then each baseline)."""
    from churnrisk.evaluation import METRIC_KEYS

    shown = [k for k in METRIC_KEYS if not k.endswith("20pct")]
    scores = {"model": metrics, **baselines}
    frame = pd.DataFrame({name: [m.get(k) for k in shown] for name, m in scores.items()}, dtype=float)
    return frame.set_axis(shown).rename_axis("metric").reset_index()


def _write_json(data: dict, path: Path, overwrite: bool) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def _parse_cutoffs(text: str | None) -> list[pd.Timestamp] | None:
    if text is None:
        return None
    try:
        return [
            pd.Timestamp(datetime.strptime(part.strip(), "%Y-%m-%d"))
            for part in text.split(",")
            if part.strip()
        ]
    except ValueError:
        raise typer.BadParameter(
            f"dates must be YYYY-MM-DD separated by commas, got {text!r}", param_hint="--cutoffs"
        ) from None


def _parse_horizons(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        days = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        days = []
    if not days or min(days) < 1:
        raise typer.BadParameter(
            f"horizons are whole days separated by commas, e.g. 30,90,180; got {text!r}",
            param_hint="--horizons",
        )
    return days


@app.command("train")
def train_command(
    data: DataOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Model file to write (.skops).")] = Path(
        "model.skops"
    ),
    definition: DefinitionOpt = None,
    horizon: Annotated[
        int | None,
        typer.Option(
            "--horizon",
            min=1,
            help="Days after the cutoff the label looks at (default 90, or the --training-set's).",
            show_default=False,
        ),
    ] = None,
    horizons: Annotated[
        str | None,
        typer.Option(
            "--horizons",
            help="Several horizons in days, e.g. 30,90,180,365: one discrete-time hazard model, tested out "
            "of time at each, probabilities non-decreasing in the horizon (subscription or inactivity churn; "
            "--lookback: days without an order that mean churn, default the shortest horizon); score then "
            "adds p_churn_<h>d and the expected lifetime. The shortest is the one the tiers and reasons use.",
            show_default=False,
        ),
    ] = None,
    lookback: LookbackOpt = None,
    lead_time: Annotated[
        int | None,
        typer.Option(
            "--lead-time",
            min=0,
            help="Days between cutoff and label window (default 0, or the --training-set's).",
            show_default=False,
        ),
    ] = None,
    reactivation_gap: Annotated[
        float | None,
        typer.Option(
            "--reactivation-gap",
            min=0,
            help="Subscriptions apart by fewer days are one relationship: a renewal within this grace "
            "period is not churn (default 0, or the --training-set's).",
            show_default=False,
        ),
    ] = None,
    training_set: Annotated[
        Path | None,
        typer.Option(
            "--training-set",
            help="Train on this stored training set (file or folder from `churnrisk training-set`) "
            "instead of computing the rows; DATA is still read for the baselines.",
            show_default=False,
        ),
    ] = None,
    cutoffs: Annotated[
        str | None, typer.Option("--cutoffs", help="Cutoff dates D1,D2,... (YYYY-MM-DD).")
    ] = None,
    first_cutoff: Annotated[datetime | None, typer.Option("--first-cutoff", formats=DATE_FORMATS)] = None,
    last_cutoff: Annotated[datetime | None, typer.Option("--last-cutoff", formats=DATE_FORMATS)] = None,
    every: Annotated[
        str,
        typer.Option("--every", help="Cutoff spacing, counted back from --last-cutoff: 1M, 2W, 30D, 1Q, 1Y."),
    ] = "1M",
    model: Annotated[
        Literal["auto", "gbm", "logistic"],
        typer.Option(
            "--model",
            help="auto: compare gradient boosting, logistic regression, the baselines and blends on a "
            "validation slice and keep the best; gbm or logistic: that one alone.",
        ),
    ] = "auto",
    test_cutoff: Annotated[
        datetime | None,
        typer.Option(
            "--test-cutoff",
            formats=DATE_FORMATS,
            help="The out-of-time test cutoff (default: the last cutoff).",
            show_default=False,
        ),
    ] = None,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit/--no-refit",
            help="After the test, fit the winner again through the latest labelled cutoff (--no-refit "
            "ships the tested fit).",
        ),
    ] = True,
    table: Annotated[
        Path | None, typer.Option("--table", help="Snapshot mode: one row per customer.")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Snapshot mode: the label column.")] = None,
    customer_col: Annotated[
        str | None, typer.Option("--id", help="Snapshot mode: the customer id column.")
    ] = None,
    metrics: Annotated[
        Path | None, typer.Option("--metrics", help="Also write the test metrics as JSON.")
    ] = None,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
    random_state: Annotated[int, typer.Option("--random-state")] = 0,
) -> None:
    """Train a calibrated churn model and report its out-of-time (or hold-out) test metrics.

    Event store: churnrisk train DATA --definition inactivity --horizon 90 -o model.skops.
    Snapshot table: churnrisk train --table customers.csv --label Churn --id customerID -o model.skops.
    """
    from churnrisk.candidates import selection_frame, training_summary
    from churnrisk.modelfile import check_model_paths, save_model
    from churnrisk.workflow import train_from_source

    dates, horizon_list = _parse_cutoffs(cutoffs), _parse_horizons(horizons)
    with user_errors():
        check_model_paths(output, metrics, overwrite=overwrite)
        fitted = train_from_source(
            data,
            table=table,
            label=label,
            customer_col=customer_col,
            cutoffs=dates,
            first_cutoff=first_cutoff,
            last_cutoff=last_cutoff,
            every=every,
            horizons=horizon_list,
            config=config,
            encoding=encoding,
            definition=definition,
            horizon=horizon,
            lookback=lookback,
            lead_time=lead_time,
            reactivation_gap_days=reactivation_gap,
            model=model,
            random_state=random_state,
            training_set=training_set,
            test_cutoff=test_cutoff,
            refit=refit,
        )
        path = save_model(fitted, output, overwrite=overwrite)
        if metrics is not None:
            _write_json(
                {**fitted.metadata["metrics"], "baselines": fitted.metadata.get("baselines", {})},
                metrics,
                overwrite,
            )
    meta = fitted.metadata
    for note in meta.get("notes", []):
        console.print(f"[yellow]note[/yellow] {note}", highlight=False)
    if "selection" in meta:
        console.print(
            frame_table(selection_frame(meta["selection"]), title="Candidates on the validation slice")
        )
    console.print(
        frame_table(_metrics_frame(meta["metrics"], meta.get("baselines", {})), title="Out-of-time test")
    )
    if "horizon_metrics" in meta:
        from churnrisk.horizons import horizon_summary

        console.print(frame_table(horizon_summary(meta), title="Out-of-time test by horizon"))
    for line in training_summary(meta):
        console.print(line, highlight=False)
    console.print(f"Model written to {path} (metadata in {path.with_suffix('.json')}).")


def _load(path: Path, trust_pickle: bool):
    from churnrisk.modelfile import load_model

    return load_model(path, trust_pickle=trust_pickle)


@app.command("evaluate")
def evaluate_command(
    model_path: ModelArg,
    data: Annotated[
        str, typer.Argument(help="Folder of event tables, or a database URL.", show_default=False)
    ],
    cutoff: Annotated[
        datetime, typer.Option("--cutoff", formats=DATE_FORMATS, help="Cutoff whose outcome is known.")
    ],
    fmt: ReportFormatOpt = "table",
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Write ROC, PR, calibration, lift/gain, risk PNGs here.")
    ] = None,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    trust_pickle: TrustOpt = False,
) -> None:
    """Metrics of a model at one past cutoff, next to the baselines on the same customers."""
    from churnrisk.plots import write_plots
    from churnrisk.store import read_config
    from churnrisk.validation import load_store
    from churnrisk.workflow import evaluate_model

    with user_errors():
        fitted = _load(model_path, trust_pickle)
        store = load_store(data, config=read_config(config), encoding=encoding)
        result = evaluate_model(fitted, store, cutoff=cutoff)
        written = (
            write_plots(result["scores"]["churned"], result["scores"]["churn_probability"], plots)
            if plots
            else []
        )
    if fmt == "json":
        print_json({k: v for k, v in result.items() if k != "scores"})
        return
    for note in result["notes"]:
        console.print(f"[yellow]note[/yellow] {note}", highlight=False)
    console.print(
        frame_table(
            _metrics_frame(result["metrics"], result["baselines"]), title=f"Cutoff {result['cutoff']}"
        )
    )
    console.print(frame_table(pd.DataFrame(result["calibration"]), title="Calibration"))
    for path in written:
        console.print(f"wrote {path}", highlight=False)


@app.command("score")
def score_command(
    model_path: ModelArg,
    data: Annotated[
        str, typer.Argument(help="Event-store folder or database URL, or a snapshot table (.csv/.parquet).")
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="Scored list (.csv or .parquet), or a database URL with --table."
        ),
    ],
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    encoding: EncodingOpt = None,
    overwrite: OverwriteOpt = False,
    table: TableOpt = None,
    append: Annotated[
        bool, typer.Option("--append", help="Add the scores to the --table (monthly history: as_of, model).")
    ] = False,
    trust_pickle: TrustOpt = False,
    medium: Annotated[
        float, typer.Option("--medium", min=0, max=1, help="Churn probability from which the tier is medium.")
    ] = 0.2,
    high: Annotated[
        float, typer.Option("--high", min=0, max=1, help="Churn probability from which the tier is high.")
    ] = 0.5,
    top: Annotated[
        int | None, typer.Option("--top", min=1, help="Mark the first N customers as the contact list.")
    ] = None,
    top_percent: Annotated[
        float | None,
        typer.Option("--top-percent", min=0, max=100, help="Mark the first P % as the contact list."),
    ] = None,
    revenue: Annotated[
        Literal["recent", "expected"],
        typer.Option(
            "--revenue",
            help="What revenue_at_risk weighs: recent (last year's revenue) or expected (the next year's "
            "expected revenue from `churnrisk clv --per-customer`'s value model).",
        ),
    ] = "recent",
) -> None:
    """Score every eligible customer: probability, risk tier, revenue at risk and top reasons.

    revenue_at_risk is per year: probability x yearly revenue (default: last 365 days of orders + 12 x MRR).

    --top or --top-percent add a `contact` column and say what the contact list is expected to hold.
    """
    from churnrisk.scoring import contact_summary, score_data, summarize

    options: dict[str, object] = {"thresholds": (medium, high), "top": top, "top_percent": top_percent}
    with user_errors():
        fitted = _load(model_path, trust_pickle)
        scores = score_data(
            fitted, data, cutoff=as_of, config=config, encoding=encoding, revenue=revenue, **options
        )
        where = write_output(scores, output, table=table, overwrite=overwrite, append=append)
    title = f"{len(scores):,} customers scored (revenue at risk per year)"
    console.print(frame_table(summarize(scores), title=title))
    if "contact" in scores.columns:
        held = contact_summary(scores)
        at_stake = (
            f" and {held['revenue_at_risk']:,.0f} of revenue at risk per year ({held['revenue_share']:.0%})"
            if held["revenue_at_risk"] == held["revenue_at_risk"]  # NaN: no revenue known
            else ""
        )
        console.print(
            f"Contact list: {held['customers']:,} customers, expected to hold "
            f"{held['expected_churners']:,.1f} churners ({held['churner_share']:.0%} of all expected)"
            f"{at_stake}.",
            highlight=False,
        )
    console.print(f"Scores written to {where}.", highlight=False)


@app.command("quickstart")
def quickstart_command(
    customers: Annotated[int, typer.Option("--customers", min=200, help="Demo customers.")] = 5_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="New or empty folder (default: a temp folder).")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="At-risk customers to show.")] = 10,
) -> None:
    """Demo data → churn rates → train → evaluate → score, and the top at-risk customers with reasons."""
    from churnrisk.quickstart import run_quickstart

    with user_errors():
        result = run_quickstart(n_customers=customers, seed=seed, out=out)
    rates = result.rates[["period_start", "customers_start", "customers_lost", "lost_churn_rate"]].tail(4)
    console.print(frame_table(rates, title="Subscription churn by quarter (history)"))
    console.print(frame_table(_metrics_frame(result.metrics, result.baselines), title="Out-of-time test"))
    shown = result.scores.head(top)[
        ["customer_id", "churn_probability", "risk_tier", "revenue_at_risk", "reasons"]
    ]
    console.print(frame_table(shown, title="Top customers at risk"))
    console.print(frame_table(result.summary, title="At risk by tier and segment"))
    agree = result.reasons_agreement
    if agree.get("flagged_churners"):
        console.print(
            f"Reasons name the true cause for {agree['named_cause']} of {agree['flagged_churners']} "
            f"correctly flagged churners ({agree['share']:.0%}).",
            highlight=False,
        )
    console.print(
        f"Files in {result.folder}: data/, {result.model_path.name}, {result.scores_path.name}",
        highlight=False,
    )
