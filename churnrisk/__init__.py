"""churnrisk: predict which customers are about to leave, explain why, and measure past churn.

The public API, by step of the data flow (events -> validation -> labels and features -> model ->
scores, rates and reports). Names are imported on first use, so ``import churnrisk`` and the
command line start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "churnrisk.errors": ("ChurnriskError", "DataError", "Problem"),
    "churnrisk.contract": ("TABLES",),
    "churnrisk.store": ("EventStore", "StoreConfig", "read_config"),
    "churnrisk.validation": ("ValidationReport", "load_store", "validate"),
    "churnrisk.demo": ("make_demo_data", "write_demo_data", "demo_store"),
    "churnrisk.importers": (
        "import_online_retail",
        "import_saas",
        "import_snapshot",
        "ImportReport",
        "ImportResult",
    ),
    "churnrisk.definition": ("ChurnDefinition",),
    "churnrisk.spells": ("subscription_spells", "order_spells", "active_at", "churn_type"),
    "churnrisk.rates": (
        "churn_rates",
        "annualise",
        "repeat_rates",
        "category_benchmarks",
        "customer_lifetime_value",
        "cohort_retention",
        "churn_by_type",
        "winback_list",
    ),
    "churnrisk.labels": ("make_labels",),
    "churnrisk.features": (
        "build_features",
        "build_features_partitioned",
        "describe_feature",
        "explain",
        "feature_columns",
        "feature_inputs",
    ),
    "churnrisk.training": (
        "make_cutoffs",
        "build_training_set",
        "update_training_set",
        "write_training_set",
        "append_training_set",
        "read_training_set",
        "training_inputs",
        "default_cutoffs",
        "cutoff_range",
        "TrainingSetSummary",
    ),
    "churnrisk.model": ("ChurnModel", "make_pipeline"),
    "churnrisk.workflow": ("train_model", "evaluate_model"),
    "churnrisk.snapshot": ("train_snapshot",),
    "churnrisk.evaluation": ("score_metrics", "calibration_table", "baseline_scores"),
    "churnrisk.bgnbd": ("BGNBD",),
    "churnrisk.gammagamma": ("GammaGamma",),
    "churnrisk.value": ("predict_value", "ValueForecast"),
    "churnrisk.horizons": ("train_horizons", "churn_curves", "survival_curves", "kaplan_meier"),
    "churnrisk.reasons": ("top_reasons",),
    "churnrisk.scoring": ("score_store", "score_table", "summarize"),
    "churnrisk.modelfile": ("save_model", "load_model", "ModelVersionWarning"),
    "churnrisk.monitoring": ("monitor", "MonitorResult", "Thresholds"),
    "churnrisk.report": ("build_report", "write_report"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'churnrisk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def _version() -> str:
    """The installed version (read on first use: looking it up costs part of the start-up time)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("churnrisk")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0+unknown"
