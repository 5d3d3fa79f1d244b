"""The whole toolkit in one run on the demo business: data → rates → train → evaluate → score.

``churnrisk quickstart`` calls :func:`run_quickstart`; ``python -m churnrisk.quickstart
--write-default-model`` regenerates the default model shipped in ``models/``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churnrisk.errors import ChurnriskError

__all__ = ["QuickstartResult", "run_quickstart", "train_demo_model"]

#: The demo model's settings (also those of the default model in ``models/``).
DEMO_SETTINGS: dict[str, Any] = {"definition": "subscription", "horizon": 60, "model": "auto", "every": "1M"}


@dataclass
class QuickstartResult:
    """What the quickstart produced: files written and the figures shown."""

    folder: Path
    model_path: Path
    scores_path: Path
    rates: pd.DataFrame
    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    scores: pd.DataFrame
    summary: pd.DataFrame
    reasons_agreement: dict[str, Any] = field(default_factory=dict)


def _out_folder(out: str | os.PathLike[str] | None) -> Path:
    if out is None:
        return Path(tempfile.mkdtemp(prefix="churnrisk-quickstart-"))
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        raise ChurnriskError(
            f"{folder} is not empty; the quickstart never overwrites. Suggestion: give a new --out."
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def train_demo_model(store: Any, *, random_state: int = 0) -> Any:
    """The demo model: subscription churn within 60 days, monthly cutoffs over the demo's history."""
    from churnrisk.training import default_cutoffs
    from churnrisk.workflow import train_model

    cutoffs = default_cutoffs(store, horizon=DEMO_SETTINGS["horizon"], every=DEMO_SETTINGS["every"])
    return train_model(
        store,
        cutoffs=cutoffs,
        horizon=DEMO_SETTINGS["horizon"],
        definition=DEMO_SETTINGS["definition"],
        model=DEMO_SETTINGS["model"],
        random_state=random_state,
    )


def run_quickstart(
    *, n_customers: int = 5_000, seed: int = 0, out: str | os.PathLike[str] | None = None
) -> QuickstartResult:
    """Generate the demo business, measure past churn, train, evaluate and score it.

    Writes into ``out`` (a new or empty folder; default a new temporary folder): ``data/`` (the
    event tables), ``model.skops`` + ``model.json`` and ``scores.csv``.
    """
    from churnrisk._io import write_table
    from churnrisk.demo import write_demo_data
    from churnrisk.modelfile import save_model
    from churnrisk.rates import churn_rates
    from churnrisk.scoring import score_store, summarize
    from churnrisk.validation import load_store

    folder = _out_folder(out)
    write_demo_data(folder / "data", n_customers=n_customers, seed=seed)
    truth = pd.read_parquet(folder / "data" / "ground_truth.parquet")
    store = load_store(folder / "data")
    rates = churn_rates(store, period="quarter", definition=DEMO_SETTINGS["definition"])
    model = train_demo_model(store, random_state=seed)
    model_path = save_model(model, folder / "model.skops")
    scores = score_store(model, store, keep_families=True)
    scores_path = write_table(scores.drop(columns="reason_families"), folder / "scores.csv")
    return QuickstartResult(
        folder=folder,
        model_path=model_path,
        scores_path=scores_path,
        rates=rates,
        metrics=model.metadata["metrics"],
        baselines=model.metadata["baselines"],
        scores=scores,
        summary=summarize(scores),
        reasons_agreement=reasons_agreement(model, store, truth),
    )


def reasons_agreement(model: Any, store: Any, truth: pd.DataFrame, *, top: float = 0.1) -> dict[str, Any]:
    """Share of correctly flagged churners at the test cutoff whose reasons name their true cause."""
    from churnrisk.model import feature_part
    from churnrisk.reasons import cause_agreement
    from churnrisk.scoring import score_features
    from churnrisk.training import training_rows

    meta = model.metadata
    cutoff = pd.Timestamp(meta["cutoffs"]["test"][0])
    rows = training_rows(store, [cutoff], definition=meta["definition"], horizon=meta["horizon"])
    features = feature_part(rows).set_axis(pd.Index(rows["customer_id"], name="customer_id"), axis=0)
    scored = score_features(model, features, keep_families=True)
    scored = scored.merge(rows[["customer_id", "churned"]], on="customer_id")
    return cause_agreement(scored, truth, top=top)


def write_default_model(folder: str | os.PathLike[str], *, n_customers: int = 20_000, seed: int = 0) -> Path:
    """Train the default demo model and save it as ``demo-subscription.skops`` (+ ``.json``) in ``folder``."""
    from churnrisk.contract import TABLES
    from churnrisk.demo import make_demo_data
    from churnrisk.modelfile import save_model
    from churnrisk.store import EventStore

    tables = make_demo_data(n_customers, seed=seed)
    store = EventStore.from_frames({k: v for k, v in tables.items() if k in TABLES})
    model = train_demo_model(store, random_state=seed)
    model.metadata["name"] = "demo-subscription"
    model.metadata["training_data"] = f"churnrisk.demo.make_demo_data({n_customers}, seed={seed})"
    model.metadata["reasons_agreement"] = reasons_agreement(model, store, tables["ground_truth"])
    return save_model(model, Path(folder) / "demo-subscription.skops", overwrite=True)


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a maintenance script
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-default-model", metavar="FOLDER", default="models")
    args = parser.parse_args(argv)
    write_default_model(args.write_default_model)


if __name__ == "__main__":  # pragma: no cover
    main()
