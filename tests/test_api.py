"""The public API: every exported name resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import churnrisk


@pytest.mark.parametrize("name", churnrisk.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(churnrisk, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        churnrisk.nope  # noqa: B018


def test_import_does_not_load_the_model_stack():
    code = "import sys, churnrisk; print('sklearn' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
