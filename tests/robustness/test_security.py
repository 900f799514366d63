"""What a D-Bus caller can learn: error messages, and root-only bytes.

- Across every error path (bad input, malformed specs and paths, missing
  objects, vanished / unreadable / truncated providers, unprivileged callers),
  the error name is one of the documented ``org.nvmemd.Nvmem1.Error.*`` (or the
  bus library's own ``org.freedesktop.DBus.Error.*`` for an unknown object or
  bad signature) and the message holds no traceback, no Python exception name
  and no host path (the sysroot, /tmp, the source tree).
- A non-root caller (``setpriv --reuid=nobody``) gets no byte of a root-only
  provider from any method, property or ObjectManager reply, while the
  metadata stays visible.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from ..conftest import StartDaemon
from ..dbus_fixtures import ROOT, Daemon, assert_no_internals, managed_objects

pytestmark = pytest.mark.integration

MANAGER = "org.nvmemd.Nvmem1.Manager"
PROVIDER = "org.nvmemd.Nvmem1.Provider"
CELL = "org.nvmemd.Nvmem1.Cell"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"
ERR = "org.nvmemd.Nvmem1.Error."
DOCUMENTED = {ERR + e for e in ("NotFound", "AccessDenied", "ProviderGone", "IOError",
                                "InvalidArgument")}
BUS_LEVEL = {"org.freedesktop.DBus.Error.UnknownObject",
             "org.freedesktop.DBus.Error.UnknownMethod",
             "org.freedesktop.DBus.Error.UnknownInterface",
             "org.freedesktop.DBus.Error.UnknownProperty",
             "org.freedesktop.DBus.Error.PropertyReadOnly",
             "org.freedesktop.DBus.Error.InvalidArgs"}
OCOTP = ROOT + "/providers/imx_2docotp0"
OCOTP_MAC = OCOTP + "/cells/mac_2daddress_4090_2c0"
MTD1 = ROOT + "/providers/mtd1"


@pytest.fixture(autouse=True)
def _root_and_setpriv() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run clients as nobody")


def clean(name: str, message: str, sysroot: Path) -> None:
    assert name in DOCUMENTED | BUS_LEVEL, (name, message)
    assert_no_internals(message, sysroot)


BAD_CALLS: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    (ROOT, MANAGER, "FindCells", "s", ("",)),
    (ROOT, MANAGER, "FindCells", "s", ("x" * 5000,)),
    (ROOT, MANAGER, "ReadCellByName", "s", ("",)),
    (ROOT, MANAGER, "ReadCellByName", "s", ("no-such-cell",)),
    (ROOT, MANAGER, "ReadCellByName", "s", ("mac-address",)),  # ambiguous
    (ROOT, MANAGER, "ReadCellByName", "s", ("nope:mac-address",)),
    (ROOT, MANAGER, "ReadCellByName", "s", ("/no/such/node",)),
    (ROOT, MANAGER, "ReadCellByName", "s", ("/../../../etc/shadow",)),
    (ROOT, MANAGER, "ReadCellByName", "s", ("../../../../etc/passwd",)),
    (ROOT, MANAGER, "ReadCellByName", "s", ("&no_such_label",)),
    (ROOT, MANAGER, "ReadCellByName", "s", ("x@zz,zz",)),
    (ROOT, MANAGER, "ReadCellByName", "s", ("caf\u00e9\u2603@1,0",)),
    (ROOT, MANAGER, "GetProvider", "s", ("../../etc",)),
    (ROOT, MANAGER, "GetProvider", "s", ("",)),
    (ROOT, MANAGER, "ResolveCell", "ss", ("mac-address", "nope")),
    (ROOT, MANAGER, "ReadCellRecord", "ss", ("nope", "")),
    (ROOT, MANAGER, "ReadCellRecord", "ss", ("mac-address", "../../..")),
    (ROOT, MANAGER, "ReadConsumerCell", "ss", ("/nonexistent", "mac-address")),
    (ROOT, MANAGER, "ReadConsumerCell", "ss", ("&nolabel", "x")),
    (ROOT, MANAGER, "ReadConsumerCell", "ss", ("", "")),
    (ROOT, MANAGER, "ReadConsumerCell", "ss", ("/../../etc", "passwd")),
    (MTD1, PROVIDER, "Read", "tu", ("18446744073709551615", "4")),
    (MTD1, PROVIDER, "Read", "tu", ("0", "4294967295")),
    (ROOT + "/providers/nope", PROVIDER, "Read", "tu", ("0", "4")),
    (ROOT + "/providers/nope/cells/x", CELL, "Read", "", ()),
    (OCOTP_MAC, CELL, "NoSuchMethod", "", ()),
    (OCOTP_MAC, PROPS, "Get", "ss", (CELL, "NoSuchProperty")),
    (OCOTP_MAC, PROPS, "Set", "ssv", (CELL, "Offset", "<uint32 0>")),
]


def _errors(daemon: Daemon, sysroot: Path, calls: list[Any], nobody: bool = False
            ) -> list[tuple[str, str]]:
    seen = []
    for path, iface, method, sig, args in calls:
        name, message = daemon.call_error(path, iface, method, sig, *args, nobody=nobody)
        clean(name, message, sysroot)
        seen.append((name, message))
    return seen


def test_error_messages_are_clean(daemon: Daemon, sysroot: Path) -> None:
    seen = _errors(daemon, sysroot, BAD_CALLS)
    seen += _errors(daemon, sysroot, BAD_CALLS[:12], nobody=True)
    names = {n for n, _ in seen}
    assert {ERR + "InvalidArgument", ERR + "NotFound"} <= names

    # Now the faults: a FIFO, a directory, a truncated file, a vanished provider.
    ocotp = Path(os.path.realpath(sysroot / "sys/bus/nvmem/devices/imx-ocotp0"))
    mtd1 = Path(os.path.realpath(sysroot / "sys/bus/nvmem/devices/mtd1"))
    fault_calls = [(OCOTP_MAC, CELL, "Read", "", ()),
                   (OCOTP_MAC, CELL, "ReadRecord", "", ()),
                   (OCOTP, PROVIDER, "Read", "tu", ("0", "16")),
                   (ROOT, MANAGER, "ReadCellByName", "s", ("imx-ocotp0:mac-address",)),
                   (ROOT, MANAGER, "ReadCellRecord", "ss", ("mac-address", "imx-ocotp0"))]
    (ocotp / "nvmem").unlink()
    os.mkfifo(ocotp / "nvmem")
    faults = [_fault_error(daemon, sysroot, c) for c in fault_calls]
    (ocotp / "nvmem").unlink()
    (ocotp / "nvmem").mkdir()
    faults += [_fault_error(daemon, sysroot, c) for c in fault_calls]
    os.truncate(mtd1 / "nvmem", 2)
    faults.append(_fault_error(daemon, sysroot, (ROOT, MANAGER, "ReadCellByName", "s",
                                                 ("mtd1:region-code",))))
    shutil.rmtree(ocotp)
    faults += [_fault_error(daemon, sysroot, c) for c in fault_calls]
    assert {ERR + "IOError", ERR + "ProviderGone"} <= {n for n, _ in faults if n}
    assert "Traceback" not in daemon.log()


def _fault_error(daemon: Daemon, sysroot: Path, call: Any) -> tuple[str | None, str]:
    """The error of *call* (ReadRecord answers with a record that carries the error)."""
    path, iface, method, sig, args = call
    if method == "ReadRecord":
        (record,) = daemon.call(path, iface, method)
        rec = {k: v["data"] for k, v in record.items()}  # a{sv}: "value" absent, "error" set
        assert rec.get("value") is None
        clean(ERR + "IOError", rec["error"], sysroot)
        return None, rec["error"]
    name, message = daemon.call_error(path, iface, method, sig, *args)
    clean(name, message, sysroot)
    return name, message


# --- root-only bytes ----------------------------------------------------------------


def _secrets(daemon: Daemon, objects: dict[str, dict[str, Any]]
             ) -> dict[str, tuple[str, bytes]]:
    """cell path → (provider path, value) of every cell of a root-only provider (as root)."""
    out = {}
    for path, ifaces in objects.items():
        if CELL not in ifaces:
            continue
        provider = ifaces[CELL]["Provider"]
        if objects[provider][PROVIDER]["RootOnly"]:
            (value,) = daemon.call(path, CELL, "Read")
            out[path] = (provider, bytes(value))
    return out


def _leaks(blob: str, secrets: dict[str, tuple[str, bytes]]) -> list[str]:
    """Secret values (3 bytes or more, not all 00/ff) found in *blob*, as hex or byte lists."""
    found = []
    for path, (_p, value) in secrets.items():
        if len(value) < 3 or set(value) <= {0, 0xFF}:
            continue
        text = blob.lower()
        if value.hex() in text or json.dumps(list(value)).replace(" ", "") in \
                text.replace(" ", ""):
            found.append(path)
    return found


def test_root_only_bytes_never_reach_nobody(start_daemon: StartDaemon, sysroot: Path) -> None:
    # imx-ocotp0 root-only too: its MAC cell has a DT consumer (the FEC), so the
    # consumer methods meet a root-only cell.
    (Path(os.path.realpath(sysroot / "sys/bus/nvmem/devices/imx-ocotp0")) / "nvmem").chmod(0o400)
    daemon = start_daemon(["--sysroot", str(sysroot)])
    objects = managed_objects(daemon)
    secrets = _secrets(daemon, objects)
    root_only = {p for p, i in objects.items() if PROVIDER in i and i[PROVIDER]["RootOnly"]}
    assert len(secrets) >= 5 and len(root_only) >= 3, (secrets, root_only)
    assert _leaks(json.dumps(secrets and {p: v.hex() for p, (_, v) in secrets.items()}),
                  secrets), "the leak detector finds nothing: broken test"

    # Metadata: the same objects and properties as root sees.
    seen_objects = managed_objects(daemon, nobody=True)
    assert seen_objects == objects
    assert not _leaks(json.dumps(seen_objects), secrets)
    for path, ifaces in objects.items():
        for iface in ifaces:
            props = daemon.busctl_json("call", "org.nvmemd.Nvmem1", path, PROPS, "GetAll", "s",
                                       iface, nobody=True)
            assert not _leaks(json.dumps(props), secrets), (path, iface)

    denied = []
    consumers_checked = 0
    for cell, (provider, _value) in secrets.items():
        props = objects[cell][CELL]
        pname = objects[provider][PROVIDER]["Name"]
        spec = f"{pname}:{props['SysfsName']}"
        denied.append(daemon.call_error(cell, CELL, "Read", nobody=True))
        denied.append(daemon.call_error(ROOT, MANAGER, "ReadCellByName", "s", spec,
                                        nobody=True))
        denied.append(daemon.call_error(ROOT, MANAGER, "ReadCellRecord", "ss",
                                        props["SysfsName"], pname, nobody=True))
        (record,) = daemon.call(cell, CELL, "ReadRecord", nobody=True)
        rec = {k: v["data"] for k, v in record.items()}
        assert rec.get("value") is None and "permission denied" in rec["error"], rec
        assert not _leaks(json.dumps(record), secrets)
        for node, name, _index in props.get("Consumers", []):
            denied.append(daemon.call_error(ROOT, MANAGER, "ReadConsumerCell", "ss", node,
                                            name or props["Name"], nobody=True))
            r = daemon.busctl("call", "org.nvmemd.Nvmem1", ROOT, MANAGER,
                              "ReadConsumerCellRecord", "ss", node, name or props["Name"],
                              nobody=True, check=False)
            assert not _leaks(r.stdout + r.stderr, secrets), (node, r.stdout)
            consumers_checked += 1
    assert consumers_checked >= 1  # the demo board's FEC/EQOS take MACs from root-only cells
    for provider in root_only:
        size = objects[provider][PROVIDER]["Size"]
        denied.append(daemon.call_error(provider, PROVIDER, "Read", "tu", "0",
                                        str(min(size, 65536)), nobody=True))
    denied.append(daemon.call_error(ROOT, MANAGER, "Reload", nobody=True))
    for name, message in denied:
        assert name == ERR + "AccessDenied", (name, message)
        clean(name, message, sysroot)
        assert not _leaks(message, secrets)
    r = daemon.busctl("call", "org.nvmemd.Nvmem1", ROOT, MANAGER, "Verify", nobody=True,
                      check=False)
    assert not _leaks(r.stdout + r.stderr, secrets)
    # The CLI over the bus, as nobody, shows no secret either.
    for args in (["cells", "--json"], ["providers", "--json"], ["verify"]):
        q = daemon.query(*args, nobody=True)
        assert not _leaks(q.stdout.decode(errors="replace") + q.stderr.decode(errors="replace"),
                          secrets), args
    # And root still reads them all: the denials were about the caller.
    assert _secrets(daemon, objects) == secrets
