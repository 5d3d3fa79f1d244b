"""The layer rule of docs/ARCHITECTURE.md: a module imports only from its own layer or the layers below
it, and the import graph has no cycles. Imports inside functions count (they are parsed, not run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "churnrisk"

#: Lowest layer first; a name is a module or a package (every module inside it).
LAYERS: list[tuple[str, ...]] = [
    ("errors", "contract", "_io", "_deprecation", "_memory"),
    ("store", "database", "validation", "importers", "demo"),
    ("definition", "spells", "rates", "labels", "features", "bgnbd", "gammagamma", "survival", "drift"),
    ("training",),
    ("model", "evaluation", "candidates", "hazard", "modelfile", "reasons"),
    ("workflow", "horizons", "value", "snapshot"),
    ("scoring", "monitoring", "engines", "spark"),
    ("plots", "report", "quickstart"),
    ("cli", "__init__", "__main__"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every churnrisk module ``name`` imports, at any depth of the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        found.update(t for t in targets if t in known)
    # the package's own __init__ holds only lazy re-exports and __version__: importing it pulls in nothing
    found -= {name, "churnrisk"}
    return found


def _layer(module: str) -> int:
    """Index in LAYERS of ``churnrisk.<first part>`` (``churnrisk`` itself: the package's ``__init__``)."""
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(LAYERS):
        if first in names:
            return index
    raise AssertionError(f"{module} has no layer: add it to LAYERS here and to docs/ARCHITECTURE.md")


GRAPH = {name: _imports(name, path, set(_modules())) for name, path in _modules().items()}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_only_its_own_layer_or_below(module: str) -> None:
    above = sorted(
        target
        for target in GRAPH[module]
        if _layer(target) > _layer(module) and target.split(".")[:2] != module.split(".")[:2]
    )
    assert above == [], f"{module} (layer {_layer(module)}) imports from a layer above it: {above}"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a package's parts importing its ``__init__`` excepted), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(t for t in graph[module] if not module.startswith(f"{t}.")):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_import_graph_has_no_cycles() -> None:
    assert _cycle(GRAPH) is None


def test_the_checks_see_function_level_imports_and_cycles(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text("import os\n\ndef f():\n    from churnrisk.scoring import score_store\n")
    known = {"churnrisk.scoring", "churnrisk.model"}
    assert _imports("churnrisk.model", module, known) == {"churnrisk.scoring"}
    assert _layer("churnrisk.scoring") > _layer("churnrisk.model")
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "a.x": {"a"}}) is None
