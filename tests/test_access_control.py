"""Who may read root-only providers through nvmemd: root, [access] groups, polkit.

Clients run as ``nobody`` (``setpriv --reuid=nobody --regid=nogroup
--clear-groups``); polkit is python-dbusmock's ``polkitd`` template on the
private bus, with a CheckAuthorization that challenges for the interactive
authorization test (see there).  Metadata stays visible to everyone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import StartDaemon
from .dbus_fixtures import (
    AS_NOBODY,
    NAME,
    REPO,
    ROOT,
    SYS_PYTHON,
    TIMEOUT,
    Daemon,
    PrivateBus,
    assert_no_internals,
    managed_objects,
)

pytestmark = pytest.mark.integration

CELL = "org.nvmemd.Nvmem1.Cell"
MANAGER = "org.nvmemd.Nvmem1.Manager"
PROVIDER = "org.nvmemd.Nvmem1.Provider"
DENIED = "org.nvmemd.Nvmem1.Error.AccessDenied"
OCOTP_MAC = ROOT + "/providers/imx_2docotp0/cells/mac_2daddress_4090_2c0"  # 0644
SERIAL = ROOT + "/providers/board_2deeprom1/cells/serial_2dnumber_400_2c0"  # 0400
MTD1 = ROOT + "/providers/mtd1"  # 0400
GROUP = "audio"  # exists on every Debian system


@pytest.fixture(autouse=True)
def _root_and_setpriv() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")


@pytest.fixture
def sysroot(demo_board_sysroot: Path) -> Path:
    return demo_board_sysroot


def _config(tmp_path: Path, groups: list[str]) -> Path:
    path = tmp_path / "nvmemd.toml"
    path.write_text(f"[access]\ngroups = {json.dumps(groups)}\n")
    return path


@pytest.fixture
def daemon(start_daemon: StartDaemon, sysroot: Path, tmp_path: Path) -> Daemon:
    return start_daemon(["--sysroot", str(sysroot), "--config", str(_config(tmp_path, [GROUP]))])


def nobody_query(bus: PrivateBus, *args: str, groups: str | None = None
                 ) -> subprocess.CompletedProcess[bytes]:
    """nvmemd-query as nobody, with Debian's python3 (python3-dbus-fast 1.84)."""
    prefix = list(AS_NOBODY)
    if groups:
        prefix[prefix.index("--clear-groups")] = f"--groups={groups}"
    return subprocess.run([*prefix, SYS_PYTHON, "-m", "nvmemd.cli", "--address", bus.address,
                           *args], capture_output=True, timeout=TIMEOUT * 3, cwd="/",
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})


def test_nobody_reads_world_readable_but_not_root_only(daemon: Daemon) -> None:
    (value,) = daemon.call(OCOTP_MAC, CELL, "Read", nobody=True)
    assert bytes(value) == bytes.fromhex("000f12345678")
    for call in [(SERIAL, CELL, "Read", ""),
                 (ROOT, MANAGER, "ReadCellByName", "s", "board-eeprom1:serial-number"),
                 (MTD1, PROVIDER, "Read", "tu", "0", "16")]:
        name, message = daemon.call_error(*call, nobody=True)
        assert name == DENIED, message
        assert "root-only" in message
    # root may
    (value,) = daemon.call(SERIAL, CELL, "Read")
    assert bytes(value).startswith(b"NVD-2026")


def test_metadata_is_visible_to_everyone(daemon: Daemon) -> None:
    assert managed_objects(daemon, nobody=True) == managed_objects(daemon)
    r = daemon.busctl("get-property", NAME, SERIAL, CELL, "Bytes", nobody=True)
    assert r.stdout.split() == ["u", "16"]


def test_cli_as_nobody(daemon: Daemon) -> None:
    r = nobody_query(daemon.bus, "cells", "--json")
    assert r.returncode == 0, r.stderr
    cells = {(c["provider"], c["name"]): c for c in json.loads(r.stdout)}
    assert cells[("imx-ocotp0", "mac-address")]["value"] == "000f12345678"
    serial = cells[("board-eeprom1", "serial-number")]
    assert serial["value"] is None
    assert serial["error"] == "board-eeprom1: permission denied (root-only provider)"
    r = nobody_query(daemon.bus, "get", "board-eeprom1:serial-number")
    assert r.returncode == 4, r.stderr
    assert b"permission denied" in r.stderr
    assert nobody_query(daemon.bus, "dump", "mtd1", "--length", "4").returncode == 4


def test_member_of_an_access_group_may_read(daemon: Daemon) -> None:
    r = nobody_query(daemon.bus, "get", "board-eeprom1:serial-number", "--format", "string",
                     groups=GROUP)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"NVD-2026-000042\n"


def test_access_group_does_not_grant_reload(daemon: Daemon) -> None:
    """Reload is org.nvmemd.Nvmem1.reload (auth_admin): a reader group reads, never rescans."""
    member = list(AS_NOBODY)
    member[member.index("--clear-groups")] = f"--groups={GROUP}"
    r = subprocess.run([*member, "gdbus", "call", "--address", daemon.bus.address, "--dest",
                        NAME, "--object-path", ROOT, "--method", f"{MANAGER}.Reload"],
                       capture_output=True, text=True, timeout=TIMEOUT, cwd="/")
    assert r.returncode != 0 and DENIED in r.stderr, (r.stdout, r.stderr)
    assert "rescanned" not in daemon.log()


@pytest.fixture
def polkit(private_bus: PrivateBus) -> Iterator[PrivateBus]:
    probe = subprocess.run([SYS_PYTHON, "-c", "import dbusmock"], capture_output=True)
    if probe.returncode:
        pytest.skip("python3-dbusmock is not installed")
    mock = subprocess.Popen([SYS_PYTHON, "-m", "dbusmock", "--system", "--template", "polkitd"],
                            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": private_bus.address},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        private_bus.wait_owner("org.freedesktop.PolicyKit1", proc=mock)
        yield private_bus
    finally:
        mock.terminate()
        mock.wait(timeout=TIMEOUT)
        private_bus.wait_owner("org.freedesktop.PolicyKit1", present=False)


def _set_allowed(bus: PrivateBus, actions: list[str]) -> None:
    r = subprocess.run(["gdbus", "call", "--address", bus.address, "--dest",
                        "org.freedesktop.PolicyKit1", "--object-path",
                        "/org/freedesktop/PolicyKit1/Authority", "--method",
                        "org.freedesktop.DBus.Mock.SetAllowed", json.dumps(actions)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr


def test_polkit_allows_and_denies(polkit: PrivateBus, start_daemon: StartDaemon, sysroot: Path,
                                  tmp_path: Path) -> None:
    daemon = start_daemon(["--sysroot", str(sysroot), "--config", str(_config(tmp_path, []))])
    _set_allowed(polkit, [])
    name, _ = daemon.call_error(SERIAL, CELL, "Read", nobody=True)
    assert name == DENIED
    _set_allowed(polkit, ["org.nvmemd.Nvmem1.read-protected"])
    (value,) = daemon.call(SERIAL, CELL, "Read", nobody=True)
    assert bytes(value).startswith(b"NVD-2026")
    _set_allowed(polkit, ["org.example.other-action"])
    name, _ = daemon.call_error(MTD1, PROVIDER, "Read", "tu", "0", "4", nobody=True)
    assert name == DENIED


# --- polkit asks for a password: InteractiveAuthorizationRequired ---------------------
#
# python-dbusmock's polkitd template answers CheckAuthorization with
# is_challenge=False always (its template cannot express "would ask"), but
# ``org.freedesktop.DBus.Mock.AddMethod`` replaces a template method: the mock's
# method lookup takes AddMethod's table first.  The replacement below behaves as
# polkitd does for an auth_admin/auth_self action: without AllowUserInteraction
# (flag 0x1) it answers (authorized=false, challenge=true); with it, it asks the
# authentication agent, here an answer the test sets (SetAgentAllows); every call
# is in the mock's call log (GetCalls) with its flags.

CHALLENGING_CHECK = """
interactive = bool(args[3] & 1)
allowed = interactive and args[1] in getattr(self, "agent_allows", [])
ret = (allowed, not interactive, {"polkit.mock": "challenge"})
"""
INTERACTIVE = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
READ_PROTECTED = "org.nvmemd.Nvmem1.read-protected"
RELOAD = "org.nvmemd.Nvmem1.reload"
POLKIT = ["org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority"]


def _mock(bus: PrivateBus, method: str, sig: str, *args: str) -> Any:
    r = subprocess.run(["busctl", f"--address={bus.address}", "--json=short", "call", *POLKIT,
                        "org.freedesktop.DBus.Mock", method, sig, *args],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["data"] if r.stdout.strip() else None


@pytest.fixture
def challenging_polkit(polkit: PrivateBus) -> PrivateBus:
    _mock(polkit, "AddMethod", "sssss", "org.freedesktop.PolicyKit1.Authority",
          "CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})", CHALLENGING_CHECK)
    _mock(polkit, "AddMethod", "sssss", "org.freedesktop.DBus.Mock", "SetAgentAllows",
          "as", "", "self.agent_allows = list(args[0])")
    _mock(polkit, "ClearCalls", "")
    return polkit


def _agent_allows(bus: PrivateBus, actions: list[str]) -> None:
    _mock(bus, "SetAgentAllows", "as", str(len(actions)), *actions)


def _polkit_checks(bus: PrivateBus) -> list[tuple[str, int]]:
    """(action, flags) of every CheckAuthorization since the last ClearCalls."""
    (calls,) = _mock(bus, "GetCalls", "")
    out = []
    for _time, method, args in calls:
        if method == "CheckAuthorization":
            out.append((args[1]["data"], args[3]["data"]))
    _mock(bus, "ClearCalls", "")
    return out


def _gdbus_as_nobody(daemon: Daemon, path: str, method: str, *args: str,
                     interactive: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AS_NOBODY, "gdbus", "call", "--address", daemon.bus.address,
                           "--dest", NAME, "--object-path", path, "--method", method,
                           *(["--interactive"] if interactive else []), *args],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd="/")


def _busctl_as_nobody(daemon: Daemon, path: str, iface: str, method: str,
                      interactive: bool) -> subprocess.CompletedProcess[str]:
    flag = "yes" if interactive else "no"
    return subprocess.run([*AS_NOBODY, "busctl", f"--address={daemon.bus.address}",
                           f"--allow-interactive-authorization={flag}", "--json=short",
                           "call", NAME, path, iface, method],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd="/")


def test_polkit_challenge_needs_interactive_authorization(
        challenging_polkit: PrivateBus, start_daemon: StartDaemon, sysroot: Path,
        tmp_path: Path) -> None:
    """A protected read as nobody while polkit would ask for a password: without the
    ALLOW_INTERACTIVE_AUTHORIZATION flag the standard InteractiveAuthorizationRequired
    (gdbus, dbus-send, busctl --allow-interactive-authorization=no), and polkit was
    asked without AllowUserInteraction; with the flag (gdbus --interactive, busctl's
    default) polkit is asked with it and its agent decides: the value, or nvmemd's
    AccessDenied when the user is not authorized (nvmemd(8), ERRORS)."""
    bus = challenging_polkit
    daemon = start_daemon(["--sysroot", str(sysroot), "--config", str(_config(tmp_path, []))])
    read = [SERIAL, f"{CELL}.Read"]

    # Without the flag: the challenge is the caller's to take up.
    r = _gdbus_as_nobody(daemon, *read, interactive=False)
    assert r.returncode != 0 and f"GDBus.Error:{INTERACTIVE}: " in r.stderr, r.stderr
    message = r.stderr.split(f"{INTERACTIVE}: ", 1)[1].strip()
    assert "polkit needs to authenticate" in message and "interactive" in message
    assert_no_internals(message, sysroot)
    r = subprocess.run([*AS_NOBODY, "dbus-send", f"--bus={daemon.bus.address}",
                        f"--dest={NAME}", "--print-reply", SERIAL, f"{CELL}.Read"],
                       capture_output=True, text=True, timeout=TIMEOUT, cwd="/")
    assert r.returncode != 0 and f"Error {INTERACTIVE}: " in r.stderr, r.stderr
    r = _busctl_as_nobody(daemon, SERIAL, CELL, "Read", interactive=False)
    assert r.returncode != 0 and "polkit needs to authenticate" in r.stderr, r.stderr
    assert _polkit_checks(bus) == [(READ_PROTECTED, 0)] * 3

    # With the flag: polkit asks (AllowUserInteraction), the agent authorizes.
    _agent_allows(bus, [READ_PROTECTED])
    r = _gdbus_as_nobody(daemon, *read, interactive=True)
    assert r.returncode == 0, r.stderr
    assert "b'NVD-2026-000042'" in r.stdout or "0x4e, 0x56, 0x44" in r.stdout, r.stdout
    r = _busctl_as_nobody(daemon, SERIAL, CELL, "Read", interactive=True)
    assert r.returncode == 0, r.stderr
    assert bytes(json.loads(r.stdout)["data"][0]) == b"NVD-2026-000042\0"
    assert _polkit_checks(bus) == [(READ_PROTECTED, 1)] * 2

    # With the flag, the user is not authorized (wrong password, dialog dismissed).
    _agent_allows(bus, [])
    r = _gdbus_as_nobody(daemon, *read, interactive=True)
    assert r.returncode != 0 and f"GDBus.Error:{DENIED}: " in r.stderr, r.stderr
    assert _polkit_checks(bus) == [(READ_PROTECTED, 1)]

    # Reload (org.nvmemd.Nvmem1.reload, auth_admin) the same way.
    r = _gdbus_as_nobody(daemon, ROOT, f"{MANAGER}.Reload", interactive=False)
    assert r.returncode != 0 and f"GDBus.Error:{INTERACTIVE}: " in r.stderr, r.stderr
    _agent_allows(bus, [RELOAD])
    r = _gdbus_as_nobody(daemon, ROOT, f"{MANAGER}.Reload", interactive=True)
    assert r.returncode == 0, r.stderr
    assert _polkit_checks(bus) == [(RELOAD, 0), (RELOAD, 1)]
    assert "rescanned" in daemon.log()
