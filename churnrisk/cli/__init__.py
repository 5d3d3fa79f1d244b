"""The ``churnrisk`` command line. Each module registers its commands on the one shared app."""

from churnrisk.cli import _data, _features, _model, _rates, _report  # noqa: F401  (registers commands)
from churnrisk.cli._app import app, main

__all__ = ["app", "main"]
