"""The ``churnrisk`` command line. Each module registers its commands on the one shared app."""

from churnrisk.cli import (  # noqa: F401  (importing a module registers its commands)
    _data,
    _demo,
    _features,
    _import,
    _model,
    _monitor,
    _rates,
    _report,
)
from churnrisk.cli._app import app, main

__all__ = ["app", "main"]
