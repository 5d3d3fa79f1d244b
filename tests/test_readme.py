"""The README's two set-up commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The shell commands in the README's 'Set up' section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh|console)?\n(.+?)\n```", section, flags=re.S)


def test_readme_leads_with_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    demo, tests = commands
    assert "pip install" in demo and "churnrisk quickstart" in demo
    assert "pip install" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command_as_written():
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert readme_commands()[1] in ci_lines
