"""nvmemd on a private system-like bus, serving a sysroot; checked with real clients."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import StartDaemon
from .dbus_fixtures import (
    NAME,
    ROOT,
    TIMEOUT,
    Daemon,
    assert_no_internals,
    direct_query,
    managed_objects,
)

pytestmark = pytest.mark.integration

MANAGER = "org.nvmemd.Nvmem1.Manager"
PROVIDER = "org.nvmemd.Nvmem1.Provider"
CELL = "org.nvmemd.Nvmem1.Cell"
ERR = "org.nvmemd.Nvmem1.Error."
OCOTP = ROOT + "/providers/imx_2docotp0"
MTD1 = ROOT + "/providers/mtd1"
OCOTP_MAC = OCOTP + "/cells/mac_2daddress_4090_2c0"


def test_objects_match_direct_mode(daemon: Daemon, sysroot: Path) -> None:
    direct = json.loads(direct_query(sysroot, "cells", "--json").stdout)
    objects = managed_objects(daemon)
    cells = {p: i[CELL] for p, i in objects.items() if CELL in i}
    assert len(cells) == len(direct) >= 11
    for rec in direct:
        matches = [(p, c) for p, c in cells.items()
                   if c["SysfsName"] == rec["sysfs_name"]
                   and objects[c["Provider"]][PROVIDER]["Name"] == rec["provider"]]
        assert len(matches) == 1, rec
        path, props = matches[0]
        assert (props["Name"], props["Offset"], props["BitOffset"], props["NBits"],
                props["Bytes"], props["Source"], props["OfNode"] or None) == (
            rec["name"], rec["offset"], rec["bit_offset"], rec["nbits"], rec["bytes"],
            rec["source"], rec["of_node"])
        (value,) = daemon.call(path, CELL, "Read")
        assert bytes(value).hex() == rec["value"]


def test_tree_introspect_with_busctl_and_gdbus(daemon: Daemon) -> None:
    tree = daemon.busctl("tree", NAME).stdout
    assert OCOTP_MAC in tree
    intro = daemon.busctl("introspect", NAME, OCOTP_MAC).stdout
    for member in (".Read", ".Name", ".Provider", ".Offset", ".BitOffset", ".NBits", ".Bytes",
                   ".Source", ".OfNode"):
        assert member in intro
    for path in (ROOT, OCOTP, OCOTP_MAC):
        r = subprocess.run(["gdbus", "introspect", "--address", daemon.bus.address, "--dest",
                            NAME, "--object-path", path, "--xml"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert "<interface name=\"org.nvmemd.Nvmem1." in r.stdout
        lint = subprocess.run(["xmllint", "--noout", "-"], input=r.stdout, text=True,
                              capture_output=True, timeout=TIMEOUT) if shutil.which(
                                  "xmllint") else None
        assert lint is None or lint.returncode == 0, lint.stderr
    (version,) = daemon.busctl("get-property", NAME, ROOT, MANAGER, "Version").stdout.split()[1:]
    assert version.strip('"')


def test_manager_methods(daemon: Daemon) -> None:
    (paths,) = daemon.call(ROOT, MANAGER, "ListProviders")
    assert OCOTP in paths and MTD1 in paths and paths == sorted(paths)
    (found,) = daemon.call(ROOT, MANAGER, "FindCells", "s", "mac-address")
    assert len(found) == 3
    assert daemon.call(ROOT, MANAGER, "FindCells", "s", "imx-ocotp0:mac-address") == [[OCOTP_MAC]]
    assert daemon.call(ROOT, MANAGER, "FindCells", "s", "mac-address@90,0") == [[OCOTP_MAC]]
    assert daemon.call(ROOT, MANAGER, "FindCells", "s",
                       "/soc@0/efuse@30350000/mac-address@90") == [[OCOTP_MAC]]
    (wifi,) = daemon.call(ROOT, MANAGER, "FindCells", "s", "&wifi_mac")
    assert daemon.call(ROOT, MANAGER, "FindCells", "s", "wifi_mac") == [wifi]
    (value,) = daemon.call(ROOT, MANAGER, "ReadCellByName", "s", "imx-ocotp0:mac-address")
    assert bytes(value) == bytes.fromhex("000f12345678")


def test_dbus_send_and_provider_read(daemon: Daemon) -> None:
    r = subprocess.run(["dbus-send", f"--bus={daemon.bus.address}", "--print-reply",
                        f"--dest={NAME}", MTD1, f"{PROVIDER}.Read", "uint64:4096",
                        "uint32:4"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert re.search(r"00 01 02 03", r.stdout), r.stdout
    (size,) = daemon.busctl("get-property", NAME, MTD1, PROVIDER, "Size").stdout.split()[1:]
    assert int(size) == 65536
    (data,) = daemon.call(MTD1, PROVIDER, "Read", "tu", "65530", "100")
    assert len(data) == 6  # clamped at the end, like direct mode


def test_properties_are_read_only(daemon: Daemon) -> None:
    r = daemon.busctl("set-property", NAME, OCOTP_MAC, CELL, "Offset", "u", "1", check=False)
    assert r.returncode != 0
    (offset,) = daemon.call(OCOTP_MAC, "org.freedesktop.DBus.Properties", "Get", "ss", CELL,
                            "Offset")
    assert offset["data"] == 0x90


@pytest.mark.parametrize(("path", "iface", "method", "sig", "args", "error"), [
    (ROOT, MANAGER, "FindCells", "s", [""], "InvalidArgument"),
    (ROOT, MANAGER, "ReadCellByName", "s", ["no-such-cell"], "NotFound"),
    (ROOT, MANAGER, "ReadCellByName", "s", ["mac-address"], "InvalidArgument"),  # ambiguous
    (ROOT, MANAGER, "ReadCellByName", "s", ["nope:mac-address"], "NotFound"),
    (ROOT, MANAGER, "GetProvider", "s", ["nope"], "NotFound"),
    (MTD1, PROVIDER, "Read", "tu", ["0", "65537"], "InvalidArgument"),
    (MTD1, PROVIDER, "Read", "tu", ["70000", "1"], "InvalidArgument"),
], ids=["empty-spec", "no-cell", "ambiguous", "no-provider", "get-provider", "too-long",
        "past-end"])
def test_bad_input(daemon: Daemon, sysroot: Path, path: str, iface: str, method: str, sig: str,
                   args: list[str], error: str) -> None:
    name, message = daemon.call_error(path, iface, method, sig, *args)
    assert name == ERR + error, message
    assert_no_internals(message, sysroot)


def test_provider_gone_mid_read(daemon: Daemon, sysroot: Path) -> None:
    # The provider vanishes between listing and reading (no udev for a sysroot).
    device = os.path.realpath(sysroot / "sys/bus/nvmem/devices/imx-ocotp0")
    shutil.rmtree(device)
    for call in [(OCOTP_MAC, CELL, "Read", ""), (OCOTP, PROVIDER, "Read", "tu", "0", "4")]:
        name, message = daemon.call_error(*call)
        assert name == ERR + "ProviderGone", message
        assert_no_internals(message, sysroot)
    # Everything else is still served.
    (value,) = daemon.call(ROOT, MANAGER, "ReadCellByName", "s", "mtd1:region-code")
    assert bytes(value) == b"\x05"


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_io_error(daemon: Daemon, sysroot: Path, kind: str) -> None:
    nvmem = sysroot / "sys/bus/nvmem/devices/imx-ocotp0/nvmem"
    nvmem.unlink()
    if kind == "directory":
        nvmem.mkdir()
    else:
        os.mkfifo(nvmem)
    name, message = daemon.call_error(OCOTP_MAC, CELL, "Read")
    assert name == ERR + "IOError", message
    assert message.startswith("imx-ocotp0:")
    assert_no_internals(message, sysroot)
    (value,) = daemon.call(ROOT, MANAGER, "ReadCellByName", "s", "mtd1:region-code")
    assert bytes(value) == b"\x05"


def test_malformed_provider_is_skipped(start_daemon: StartDaemon, sysroot: Path) -> None:
    nvmem = sysroot / "sys/bus/nvmem/devices/mtd2/nvmem"
    nvmem.unlink()
    nvmem.mkdir()
    daemon = start_daemon(["--sysroot", str(sysroot)])
    (broken,) = daemon.call(ROOT, "org.freedesktop.DBus.Properties", "Get", "ss", MANAGER,
                            "BrokenProviders")
    assert list(broken["data"]) == ["mtd2"]
    objects = managed_objects(daemon)
    assert ROOT + "/providers/mtd2" not in objects
    assert OCOTP_MAC in objects
    assert daemon.log().count("mtd2: skipped") == 1
    for args in (["providers", "--json"], ["cells", "--json"], ["cells", "mtd2"]):
        over_bus, direct = daemon.query(*args), direct_query(sysroot, *args)
        assert (over_bus.returncode, over_bus.stdout, over_bus.stderr) == (
            direct.returncode, direct.stdout, direct.stderr), args


CLI_CASES = [
    ["providers", "--json"],
    ["providers"],
    ["cells", "--json"],
    ["cells"],
    ["cells", "imx-ocotp0", "--json"],
    ["cells", "nope"],
    ["get", "mac-address"],
    ["get", "mac-address", "--provider", "imx-ocotp0", "--format", "mac"],
    ["get", "board-eeprom1:serial-number", "--format", "string", "--json"],
    ["get", "&wifi_mac", "--format", "mac"],
    ["get", "hw-revision", "--format", "u8"],
    ["get", "no-such-cell"],
    ["get", ""],
    ["dump", "mtd1", "--length", "32"],
    ["dump", "mtd1", "--offset", "65536"],
    ["dump", "mtd1", "--offset", "70000"],
    ["dump", "nope"],
    ["dump", "mtd0", "--json"],
    ["verify", "--json"],
]


def test_cli_over_dbus_is_byte_identical(daemon: Daemon, sysroot: Path) -> None:
    for args in CLI_CASES:
        over_bus, direct = daemon.query(*args), direct_query(sysroot, *args)
        assert (over_bus.returncode, over_bus.stdout, over_bus.stderr) == (
            direct.returncode, direct.stdout, direct.stderr), args


def test_cli_exit_codes_over_dbus(daemon: Daemon, sysroot: Path) -> None:
    shutil.rmtree(os.path.realpath(sysroot / "sys/bus/nvmem/devices/imx-ocotp0"))
    assert daemon.query("get", "imx-ocotp0:mac-address").returncode == 6
    nvmem = sysroot / "sys/bus/nvmem/devices/mtd1/nvmem"
    nvmem.unlink()
    nvmem.mkdir()
    assert daemon.query("get", "mtd1:region-code").returncode == 5
    assert daemon.query("get", "nothing").returncode == 3


def test_cli_wait(daemon: Daemon, sysroot: Path) -> None:
    assert daemon.query("wait", "&wifi_mac", "--timeout", "5").returncode == 0
    r = daemon.query("wait", "no-such-cell", "--timeout", "0.5")
    assert r.returncode == 7, r.stderr
    # Without the daemon (direct mode) the same answers.
    assert direct_query(sysroot, "wait", "&wifi_mac", "--timeout", "1").returncode == 0
    assert direct_query(sysroot, "wait", "no-such-cell", "--timeout", "0.3").returncode == 7


def test_cli_without_daemon_on_explicit_bus(private_bus: object) -> None:
    from .dbus_fixtures import PrivateBus

    assert isinstance(private_bus, PrivateBus)
    r = subprocess.run([sys.executable, "-m", "nvmemd.cli", "--address", private_bus.address,
                        "providers"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 1
    assert "not running" in r.stderr


def test_reload_and_object_manager_signals(daemon: Daemon, sysroot: Path) -> None:
    """Hot-unplug via Reload: InterfacesRemoved from the manager path only."""
    mon = subprocess.Popen(["dbus-monitor", "--address", daemon.bus.address,
                            "type='signal',interface='org.freedesktop.DBus.ObjectManager'"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        import time

        time.sleep(0.5)
        mtd2 = ROOT + "/providers/mtd2"
        mtd2_cells = [p for p in managed_objects(daemon) if p.startswith(mtd2 + "/")]
        (sysroot / "sys/bus/nvmem/devices/mtd2").unlink()
        daemon.call(ROOT, MANAGER, "Reload")
        assert ROOT + "/providers/mtd2" not in managed_objects(daemon)
        time.sleep(0.5)
    finally:
        mon.terminate()
        out = mon.communicate(timeout=TIMEOUT)[0]
    paths = re.findall(r"path=(\S+); interface=org.freedesktop.DBus.ObjectManager; "
                       r"member=(\w+)", out)
    assert ("/org/nvmemd/Nvmem1", "InterfacesRemoved") in [(p.rstrip(";"), m) for p, m in paths]
    assert all(p.rstrip(";") == ROOT for p, _ in paths), paths
    assert out.count("member=InterfacesRemoved") == len(mtd2_cells) + 1  # cells, then provider
    assert "InterfacesAdded" not in out
