"""``kubeboot.api`` keeps upstream apiserver's layering: server → endpoints → registry.

Walks every import (top-level and function-local) of every module under ``src/kubeboot/api``
and fails on one that points up a layer, or on a module left beside the three folders.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[3] / "src" / "kubeboot" / "api"
# Each layer and the layers it must not import.
FORBIDDEN = {
    "registry": ("kubeboot.api.endpoints", "kubeboot.api.server"),
    "endpoints": ("kubeboot.api.server",),
    "server": (),
}


def imported_modules(path: Path) -> list[str]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names, submodules included."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def upward_imports(layer: str, path: Path) -> list[str]:
    return [
        name
        for name in imported_modules(path)
        for banned in FORBIDDEN[layer]
        if name == banned or name.startswith(banned + ".")
    ]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_module_imports_a_higher_layer(layer: str) -> None:
    modules = sorted((API / layer).glob("*.py"))
    assert modules, f"no modules in {layer}/"
    offenders = {str(m.relative_to(API)): upward_imports(layer, m) for m in modules}
    assert {m: bad for m, bad in offenders.items() if bad} == {}


def test_only_the_three_layers_live_in_api() -> None:
    loose = sorted(p.name for p in API.glob("*.py") if p.name != "__init__.py")
    assert loose == []
    assert sorted(p.name for p in API.iterdir() if p.is_dir() and p.name != "__pycache__") == [
        "endpoints",
        "registry",
        "server",
    ]


def test_the_walker_sees_function_local_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from kubeboot.api.server import serve\n")
    assert upward_imports("registry", module) == [
        "kubeboot.api.server",
        "kubeboot.api.server.serve",
    ]
