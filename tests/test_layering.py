"""Imports run one way: the layers HACKING.md draws, checked on the source.

Every ``import`` of an ``nvmemd`` module counts, lazy ones inside functions
included (they are real dependencies, only deferred); imports under
``if TYPE_CHECKING:`` are annotations and do not.  The check reads the source
with :mod:`ast`, so it holds for code paths no test happens to run.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nvmemd"

#: Lowest first.  A module may import modules of its own layer or below.
#: Subpackages count as one unit ("dbus", "cli", "layouts").
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "values", "logs"),  # no internal imports at all
    ("specs", "kernel_version"),
    ("model", "limits"),  # limits: caller-supplied sizes, names, paths
    ("sysroot", "crc", "records"),
    ("devicetree",),
    ("providers", "macaddr"),
    ("kernel_rules", "config"),
    ("cells", "reader", "read_bounds"),
    ("layouts",),  # the layout parsers: bytes and a node in, cells out
    ("registration",),  # nvmem_register()'s steps
    ("registry",),  # lookups and reads
    ("consumers",),
    ("query", "snapshot", "identity", "findings"),  # what every front end answers
    ("dbus", "cli", "client"),  # front ends
    ("notify", "udev"),
    ("daemon",),  # glues udev, systemd, the bus and the loop
)

#: Modules that scan sysfs or build the registry: the D-Bus client side must
#: not load them (a D-Bus `nvmemd-query get` pays only for the bus).
SCANNERS = frozenset({"nvmemd.providers", "nvmemd.registration", "nvmemd.registry",
                      "nvmemd.query", "nvmemd.devicetree", "nvmemd.layouts"})
CLIENT_SIDE = ("nvmemd.client", "nvmemd.dbus.client", "nvmemd.dbus.wire")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(path: Path, name: str | None = None) -> Iterator[str]:
    """The nvmemd modules *path* (module *name*) imports, relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    me = (name or module_name(path)).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "nvmemd":
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "nvmemd":
                continue
            for alias in node.names:  # `from . import x` may name a submodule
                sub = f"{target}.{alias.name}"
                yield sub if _exists(sub) else target


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return ((PACKAGE.parent / rel).with_suffix(".py").exists()
            or (PACKAGE.parent / rel / "__init__.py").exists())


@functools.cache
def graph() -> dict[str, set[str]]:
    return {module_name(p): set(imports_of(p)) - {module_name(p)}
            for p in sorted(PACKAGE.rglob("*.py"))}


def unit(module: str) -> str:
    """The layer unit of a module: nvmemd.dbus.service → dbus."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(module: str) -> int:
    name = unit(module)
    if name in ("", "__main__"):
        return len(LAYERS)  # the package itself: nothing imports it
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and HACKING.md")


def test_every_module_has_a_layer() -> None:
    for module in graph():
        if module != "nvmemd":
            layer_of(module)


def test_imports_point_down() -> None:
    wrong = [f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
             for m, targets in graph().items() if m != "nvmemd"
             for t in targets if t != "nvmemd" and layer_of(t) > layer_of(m)]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target):], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(edges.get(module, ()))
        parent = module.rpartition(".")[0]  # importing a.b runs a/__init__.py
        if parent and parent != "nvmemd":
            todo.append(parent)
    return seen


@pytest.mark.parametrize("module", CLIENT_SIDE)
def test_dbus_client_side_loads_no_sysfs_scanner(module: str) -> None:
    edges = graph()
    assert module in edges, f"{module} is gone: update CLIENT_SIDE"
    loaded = closure(module, edges)
    assert not loaded & SCANNERS, sorted(loaded & SCANNERS)


def test_front_ends_do_not_import_each_other() -> None:
    edges = graph()
    for module, targets in edges.items():
        if unit(module) == "dbus":
            assert not [t for t in targets if unit(t) == "cli"], module
        if unit(module) == "cli":
            service_side = [t for t in targets if unit(t) == "dbus"
                            and t not in ("nvmemd.dbus", "nvmemd.dbus.client", "nvmemd.dbus.names",
                                          "nvmemd.dbus.paths", "nvmemd.dbus.wire")]
            assert not service_side, f"{module} imports the service side: {service_side}"


def test_layout_parsers_are_pure() -> None:
    """Bytes and a node in, cells and a validity out: no registry, no registration."""
    edges = graph()
    for module, targets in edges.items():
        if unit(module) == "layouts":
            assert not targets & {"nvmemd.registry", "nvmemd.registration", "nvmemd.query"}, \
                module


def test_the_check_sees_a_lazy_backward_import(tmp_path: Path) -> None:
    """The checker itself: an upward import inside a function is found and placed."""
    source = tmp_path / "cells.py"
    source.write_text("from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from .query import Query\n"
                      "def f():\n    from .registry import Registry\n    return Registry\n")
    found = set(imports_of(source, "nvmemd.cells"))
    assert found == {"nvmemd.registry"}  # the TYPE_CHECKING import is not a dependency
    assert layer_of("nvmemd.registry") > layer_of("nvmemd.cells")
