"""The package's wings (docs/layout.md): imports point only downwards, and no module imports itself round a cycle."""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import trainlab

PACKAGE = Path(trainlab.__file__).parent
# Lower first: a module may import its own wing and the wings below it, never one above.
LAYERS = ("", "nn", "config", "run", "study")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else ""  # trainlab.errors, trainlab.stats: the bottom


def imports(path: Path) -> set[str]:
    """The trainlab modules a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trainlab"):
            for alias in node.names:  # `from trainlab.nn import data` imports the module trainlab.nn.data
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("trainlab")}
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path) - {name} for name, path in MODULES.items()}


def test_every_module_lives_in_a_known_wing():
    assert {wing(name) for name in MODULES if name.count(".") >= 1} <= {*LAYERS, "conf"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_only_downwards(name):
    upward = sorted(target for target in GRAPH[name]
                    if target != "trainlab" and LAYERS.index(wing(target)) > LAYERS.index(wing(name)))
    assert not upward, f"{name} ({wing(name) or 'bottom'}) imports from a wing above it: {upward}"


def test_no_import_cycles():
    graphlib.TopologicalSorter({name: targets & set(MODULES) for name, targets in GRAPH.items()}).prepare()


def test_the_checker_sees_an_upward_import_and_a_cycle():
    """The two checks above can fail: the run side importing the report side, and two modules importing each other."""
    assert LAYERS.index(wing("trainlab.study.report")) > LAYERS.index(wing("trainlab.run.job"))
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).prepare()
    assert "trainlab.nn.data" in GRAPH["trainlab.nn.tables"]  # imports are read, function-level ones too
    assert "trainlab.run.build" in GRAPH["trainlab.run.evaluate"]
