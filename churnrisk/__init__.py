"""churnrisk: predict which customers are about to leave, explain why, and measure past churn."""

from importlib.metadata import PackageNotFoundError, version

from churnrisk.contract import TABLES
from churnrisk.errors import ChurnriskError, DataError, Problem
from churnrisk.store import EventStore, StoreConfig, read_config
from churnrisk.validation import ValidationReport, load_store, validate

try:
    __version__ = version("churnrisk")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "TABLES",
    "ChurnriskError",
    "DataError",
    "EventStore",
    "Problem",
    "StoreConfig",
    "ValidationReport",
    "__version__",
    "load_store",
    "read_config",
    "validate",
]
