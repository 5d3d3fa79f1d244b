"""The command line hands freed memory back to the system (glibc's fixed mapping threshold)."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from churnrisk.cli import _app, app
from churnrisk.cli._memory import return_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_setting_is_made_on_linux():
    assert return_freed_memory() is True


def test_every_command_makes_it(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(_app, "return_freed_memory", lambda: calls.append(True))
    result = CliRunner().invoke(app, ["features", str(tmp_path / "nope"), "--cutoff", "2024-03-31"])
    assert result.exit_code == 1 and calls == [True]
