"""Draw the pictures of the README tour into ``docs/img/`` from the demo business.

Run from the project root::

    python docs/make_images.py            # writes docs/img/churn_rates.png, model_quality.png, at_risk.png

Everything comes from :func:`churnrisk.demo.make_demo_data` (seeded), so the pictures are reproducible
and need no data from outside the project. Takes about a minute.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the non-interactive backend

from churnrisk import EventStore, plots  # noqa: E402
from churnrisk.contract import TABLES  # noqa: E402
from churnrisk.demo import make_demo_data  # noqa: E402
from churnrisk.evaluation import baseline_scores  # noqa: E402
from churnrisk.rates import churn_rates  # noqa: E402
from churnrisk.scoring import score_store  # noqa: E402
from churnrisk.training import default_cutoffs  # noqa: E402
from churnrisk.workflow import (
    evaluate_model,  # noqa: E402
    train_model,  # noqa: E402
)

HORIZON = 60
DPI = 110


def demo_store(n_customers: int, seed: int) -> EventStore:
    tables = make_demo_data(n_customers, seed=seed)
    return EventStore.from_frames({name: frame for name, frame in tables.items() if name in TABLES})


def draw_rates(store: EventStore) -> plt.Figure:
    """Monthly customer and revenue churn since the business had a few months of customers."""
    rates = churn_rates(store, period="month", start="2023-04-01", definition="subscription")
    fig, ax = plt.subplots(figsize=(9, 3.6))
    plots.plot_churn_rates(rates, ax=ax)
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_title("Monthly churn of the demo business: customers and revenue")
    return fig


def draw_quality(model, store: EventStore) -> plt.Figure:
    """ROC and cumulative gain of the model against the baselines on the out-of-time test cutoff."""
    cutoff = model.metadata["cutoffs"]["test"][0]
    test = evaluate_model(model, store, cutoff=cutoff)["scores"]
    baselines = baseline_scores(store, test, cutoff=cutoff, definition="subscription", horizon=HORIZON)
    fig, (roc, gain) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, score in {"model": test["churn_probability"], **baselines}.items():
        plots.plot_roc(test["churned"], score, label=name, ax=roc)
        plots.plot_cumulative_gain(test["churned"], score, label=name, ax=gain)
    roc.set_title(f"ROC, out of time (cutoff {cutoff})")
    return fig


def draw_at_risk(scores) -> plt.Figure:
    """The most frequent reasons among the 100 riskiest customers and revenue at risk by segment."""
    fig, (reasons, revenue) = plt.subplots(1, 2, figsize=(13, 4.2), width_ratios=[3, 2])
    plots.plot_top_reasons(scores, n_customers=100, top=8, ax=reasons)
    reasons.set_title("Most frequent reasons among the 100 riskiest customers")
    reasons.set_xlabel("customers given this reason")
    plots.plot_revenue_at_risk(scores, by="segment", ax=revenue)
    revenue.tick_params(axis="x", labelrotation=30)
    return fig


def make_images(out: Path, *, n_customers: int = 4_000, seed: int = 0) -> list[Path]:
    """Draw the three pictures into ``out`` and return their paths."""
    store = demo_store(n_customers, seed)
    model = train_model(
        store,
        cutoffs=default_cutoffs(store, horizon=HORIZON, every="2M"),
        horizon=HORIZON,
        definition="subscription",
        random_state=seed,
    )
    figures = {
        "churn_rates.png": draw_rates(store),
        "model_quality.png": draw_quality(model, store),
        "at_risk.png": draw_at_risk(score_store(model, store)),
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        fig.tight_layout()
        fig.savefig(out / name, dpi=DPI)
        plt.close(fig)
        paths.append(out / name)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img")
    parser.add_argument("--n-customers", type=int, default=4_000)
    args = parser.parse_args(argv)
    for path in make_images(args.out, n_customers=args.n_customers):
        print(path)  # noqa: T201 - a script's output


if __name__ == "__main__":
    main()
