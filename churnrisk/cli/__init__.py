"""The ``churnrisk`` command line. Each module registers its commands on the one shared app."""

from churnrisk._memory import return_polars_memory

return_polars_memory()  # before any command module loads Polars, which reads the setting then

from churnrisk.cli import (  # noqa: E402, F401  (importing a module registers its commands)
    _data,
    _demo,
    _features,
    _import,
    _model,
    _monitor,
    _rates,
    _report,
)
from churnrisk.cli._app import app, main  # noqa: E402

__all__ = ["app", "main"]
