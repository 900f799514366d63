"""Names from media are bytes: one U-Boot variable that is not UTF-8 breaks nothing.

A variable named ``bad\\xffname`` (settable from the bootloader console) used to
make GetManagedObjects fail with an internal UnicodeEncodeError, and
``cells --json``/``verify`` fail in the CLI.  Names are published with ``\\xNN``
escapes (records.printable), the raw bytes in ``Cell.NameBytes``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import StartDaemon
from .dbus_fixtures import direct_query, managed_objects
from .layouts.images import uboot_env

CELL = "org.nvmemd.Nvmem1.Cell"
ESCAPED = "bad\\xffname"


@pytest.fixture
def sysroot(demo_copy: Path) -> Path:
    image = uboot_env([b"bootcmd=run distro_bootcmd", b"bad\xffname=1",
                       b"serial#=NVD-2026-000042"], size=65536)
    for provider in ("u-boot-env0", "mtd3"):
        nvmem = demo_copy / "sys/bus/nvmem/devices" / provider / "nvmem"
        nvmem.write_bytes(image)
    return demo_copy


def test_cli_lists_the_escaped_name(sysroot: Path) -> None:
    r = direct_query(sysroot, "cells", "--json")
    assert r.returncode == 0, r.stderr
    names = [c["name"] for c in json.loads(r.stdout) if c["provider"] == "u-boot-env0"]
    assert ESCAPED in names
    r = direct_query(sysroot, "verify")
    assert r.returncode in (0, 1), r.stderr
    assert b"Traceback" not in r.stderr


@pytest.mark.integration
def test_dbus_publishes_the_escaped_name_and_the_bytes(start_daemon: StartDaemon,
                                                       sysroot: Path) -> None:
    daemon = start_daemon(["--sysroot", str(sysroot)])
    objects = managed_objects(daemon)
    cells = {p: i[CELL] for p, i in objects.items() if CELL in i}
    (path,) = [p for p, c in cells.items() if c["Name"] == ESCAPED]
    assert path.endswith("/cells/bad_ffname_40" + path.rsplit("_40", 1)[1])
    assert bytes(cells[path]["NameBytes"]) == b"bad\xffname"
    assert cells[path]["SysfsName"].startswith(ESCAPED + "@")
    (value,) = daemon.call(path, CELL, "Read")
    assert bytes(value) == b"1"
    over_bus = daemon.query("cells", "--json")
    assert over_bus.returncode == 0, over_bus.stderr
    assert over_bus.stdout == direct_query(sysroot, "cells", "--json").stdout
    assert "Traceback" not in daemon.log()
