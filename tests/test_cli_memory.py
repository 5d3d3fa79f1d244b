"""The command line hands freed memory back to the system (glibc's mapping threshold, Polars' allocator)."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from churnrisk._memory import return_freed_memory
from churnrisk.cli import _app, app


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_setting_is_made_on_linux():
    assert return_freed_memory() is True


def test_every_command_makes_it(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(_app, "return_freed_memory", lambda: calls.append(True))
    result = CliRunner().invoke(app, ["features", str(tmp_path / "nope"), "--cutoff", "2024-03-31"])
    assert result.exit_code == 1 and calls == [True]


def test_training_keeps_the_c_librarys_own_threshold(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(_app, "return_freed_memory", lambda: calls.append(True))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "nope")])
    assert result.exit_code != 0 and calls == []


def test_the_command_line_has_polars_return_freed_memory_unless_the_user_set_it():
    import os
    import subprocess

    code = "import os, churnrisk.cli, polars; print(os.environ['_RJEM_MALLOC_CONF'])"
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    ours = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    # Polars puts its defaults first; jemalloc takes the last value of each setting: ours
    assert ours.stdout.strip().endswith("dirty_decay_ms:0,muzzy_decay_ms:0")
    # started by a process that had imported Polars: Polars' own default is no choice of the user's
    env["_RJEM_MALLOC_CONF"] = "dirty_decay_ms:500,muzzy_decay_ms:1000"
    inherited = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert inherited.stdout.strip().endswith("dirty_decay_ms:0,muzzy_decay_ms:0")
    env["_RJEM_MALLOC_CONF"] = "dirty_decay_ms:2000"
    theirs = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert theirs.stdout.strip().endswith("dirty_decay_ms:2000")
