"""Start-up cost: the command line loads what a command needs when that command runs."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

import churnrisk

LOADED_BY_THEIR_COMMANDS = [
    "sklearn",
    "scipy",
    "matplotlib",
    "skops",
    "pyspark",
    "churnrisk.demo",
    "churnrisk.importers",
    "churnrisk.model",
    "churnrisk.plots",
    "churnrisk.rates",
    "churnrisk.report",
]


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(json.loads(out.stdout))


def test_the_command_line_loads_no_command_specific_module():
    loaded = loaded_after("from churnrisk.cli import app")
    assert "churnrisk.cli._features" in loaded  # the commands are registered...
    assert sorted(m for m in LOADED_BY_THEIR_COMMANDS if m in loaded) == []  # ...their work is not loaded


def test_version_is_read_on_first_use():
    from churnrisk import __version__

    assert isinstance(__version__, str) and __version__
    assert churnrisk.__version__ == __version__
    assert "__version__" in dir(churnrisk)
    from churnrisk.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"churnrisk {__version__}\n"
