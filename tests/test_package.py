"""The installed package and pyproject.toml agree on what nvmemd is."""

import tomllib
from pathlib import Path

import nvmemd


def test_version_matches_pyproject() -> None:
    meta = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert meta["project"]["version"] == nvmemd.__version__
