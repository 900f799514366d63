"""Real-kernel recordings through the daemon: D-Bus shows what direct mode shows.

For every ``tests/fixtures/realkernel/<case>/sysroot.tar.gz`` (see
tests/test_realkernel_replay.py) nvmemd serves the recording on a private
bus; ``nvmemd-query`` over D-Bus must print byte for byte what ``--direct``
prints, and busctl must see one Cell object per listed cell, with its value.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from nvmemd.dbus.paths import cell_path

from .conftest import StartDaemon
from .dbus_fixtures import direct_query, managed_objects

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "realkernel"
CASES = sorted(p for p in FIXTURES.glob("*") if (p / "sysroot.tar.gz").is_file())


def _unpack(case: Path, dest: Path) -> Path:
    with tarfile.open(case / "sysroot.tar.gz") as tf:
        tf.extractall(dest, filter="tar")
    return dest


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_replay_over_dbus(case: Path, start_daemon: StartDaemon, tmp_path: Path) -> None:
    sysroot = _unpack(case, tmp_path / "sysroot")
    daemon = start_daemon(["--sysroot", str(sysroot)])
    for args in (["providers", "--json"], ["cells", "--json"], ["cells"]):
        over_bus, direct = daemon.query(*args), direct_query(sysroot, *args)
        assert (over_bus.returncode, over_bus.stdout, over_bus.stderr) == (
            direct.returncode, direct.stdout, direct.stderr), args
    direct_cells = json.loads(direct_query(sysroot, "cells", "--json").stdout)
    objects = managed_objects(daemon)
    cells = {p for p, ifaces in objects.items() if "org.nvmemd.Nvmem1.Cell" in ifaces}
    assert cells == {cell_path(c["provider"], c["sysfs_name"]) for c in direct_cells}
    for rec in direct_cells[:8]:
        path = cell_path(rec["provider"], rec["sysfs_name"])
        r = daemon.busctl("--json=short", "call", "org.nvmemd.Nvmem1", path,
                          "org.nvmemd.Nvmem1.Cell", "Read", check=False)
        if rec.get("value") is None:
            assert r.returncode != 0
        else:
            assert bytes(json.loads(r.stdout)["data"][0]).hex() == rec["value"]
