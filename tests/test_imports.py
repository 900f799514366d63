"""Every module imports at run time, not only under a type checker.

The modules below the front ends keep type-only names (``Literal`` aliases,
``TypedDict`` records) in ``if TYPE_CHECKING:`` blocks so that ``nvmemd-query get``
does not import ``typing`` (issue 12); mypy sees those blocks as always taken, so
an import of such a name at run time is caught only here.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import nvmemd

#: ``__main__`` modules run the program when imported.
MODULES = sorted(m.name for m in pkgutil.walk_packages(nvmemd.__path__, "nvmemd.")
                 if not m.name.endswith(".__main__"))


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module: str) -> None:
    """In a fresh interpreter, so that nothing another module loaded hides a missing name."""
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_module_is_listed() -> None:
    assert {"nvmemd.values", "nvmemd.records", "nvmemd.cli.fast", "nvmemd.daemon"} <= set(MODULES)
    for module in MODULES:
        importlib.import_module(module)
