"""The board's identity (nvmemd.identity): directly, over D-Bus, and on real-kernel sysroots."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from nvmemd.config import Config
from nvmemd.identity import board_identity
from nvmemd.query import Query
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

from .conftest import StartDaemon
from .dbus_fixtures import direct_query
from .sysroots import break_sysroot, query_as_nobody

REALKERNEL = Path(__file__).resolve().parent / "fixtures" / "realkernel"


def _identity(sysroot: Path, may_read_protected: bool = True) -> dict[str, object]:
    registry = scan(Sysroot(str(sysroot)), Config())
    return board_identity(Query(registry, may_read_protected=may_read_protected))


def test_demo_board(demo_board_sysroot: Path) -> None:
    ident = _identity(demo_board_sysroot)
    assert ident["serial_number"] == {"value": "NVD-2026-000042",
                                      "source": "board-eeprom1:serial-number@0,0"}
    eth0 = next(i for i in ident["interfaces"] if i["name"] == "eth0")  # type: ignore[attr-defined]
    assert eth0["mac_address"] == "00:0f:12:34:56:78"
    assert eth0["source"] == "imx-ocotp0:mac-address@90,0"
    assert ident["model"] == {"value": "nvmemd demo board", "source": "device-tree:/model"}
    assert ident["protected"] == []
    # the same serial number in the U-Boot env is no conflict; other MAC cells are
    conflicts = ident["conflicts"]
    assert not [c for c in conflicts if c["field"] == "serial_number"]  # type: ignore[attr-defined]
    assert {c["source"] for c in conflicts} >= {"u-boot-env0:ethaddr@27,0"}  # type: ignore[attr-defined]


def test_unprivileged_caller_gets_nothing_from_root_only_providers(
        demo_board_sysroot: Path) -> None:
    ident = _identity(demo_board_sysroot, may_read_protected=False)
    text = json.dumps(ident)
    for root_only in ("board-eeprom1:", "mtd1:", "mtd2:"):
        assert all(not s.startswith(root_only) for s in _sources(ident)), root_only
    assert "board-eeprom1:serial-number@0,0" in ident["protected"]  # type: ignore[operator]
    assert ident["serial_number"] == {"value": "NVD-2026-000042",
                                      "source": "u-boot-env0:serial#@41,0"}
    assert "rev B" not in text  # the product name lives only in the root-only EEPROM


def _sources(ident: dict[str, object]) -> list[str]:
    out = [v["source"] for v in ident.values() if isinstance(v, dict)]
    for key in ("interfaces", "conflicts"):
        out += [v["source"] for v in ident[key]]  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize("case, field, value, source", [
    ("mtd-u-boot-env", "serial_number", "SN-4711", "u-boot-env0:serial#@3f,0"),
    ("rmem-dynamic-layouts", "serial_number", "TLV-SN-0001", "rmem0:serial-number@1a,0"),
    ("rmem-dynamic-layouts", "base_mac", "00:a0:a5:12:34:56",
     "rmem1:base-mac-address@11,0"),
    ("rmem-dynamic-layouts", "mac_count", "2", "rmem0:num-macs@44,0"),
])
def test_real_kernel_sysroots(tmp_path: Path, case: str, field: str, value: str,
                              source: str) -> None:
    with tarfile.open(REALKERNEL / case / "sysroot.tar.gz") as tf:
        tf.extractall(tmp_path, filter="tar")
    ident = _identity(tmp_path)
    assert ident[field] == {"value": value, "source": source}


@pytest.mark.integration
def test_cli_direct_and_dbus_are_identical(start_daemon: StartDaemon, demo_copy: Path) -> None:
    daemon = start_daemon(["--sysroot", str(demo_copy)])
    for args in (["identity", "--json"], ["identity"]):
        direct = direct_query(demo_copy, *args)
        over_bus = daemon.query(*args)
        assert direct.returncode == over_bus.returncode == 0, over_bus.stderr
        assert direct.stdout == over_bus.stdout
    nobody = json.loads(daemon.query("identity", "--json", nobody=True).stdout)
    assert nobody["serial_number"]["source"] == "u-boot-env0:serial#@41,0"
    assert "board-eeprom1:serial-number@0,0" in nobody["protected"]
    (ident,) = daemon.call("/org/nvmemd/Nvmem1", "org.nvmemd.Nvmem1.Manager", "GetIdentity")
    assert ident["serial_number"]["data"]["value"]["data"] == "NVD-2026-000042"


def test_unreadable_interfaces_are_said_not_taken_for_none(demo_copy: Path) -> None:
    """/sys/class/net at mode 000 (as nobody): an error of the identity, not "no netdevs"."""
    break_sysroot(demo_copy, "000:sys/class/net")
    proc = query_as_nobody(demo_copy, "identity", "--json")
    assert proc.returncode == 0, proc.stderr
    ident = json.loads(proc.stdout)
    assert ident["interfaces"] == []
    assert "/sys/class/net: permission denied" in ident["errors"]
