"""data/org.nvmemd.Nvmem1.conf on a real system-type dbus-daemon.

The bus configuration is Debian's own ``/usr/share/dbus-1/system.conf`` with
only what ties it to the machine changed: it listens on a socket in a
temporary directory, does not switch user, fork, log or activate services, and
its ``<includedir>`` is a temporary directory holding nothing but our policy.
A tiny dbus-fast service (Debian's ``/usr/bin/python3`` with
``python3-dbus-fast``, so that ``nobody`` can run it) stands in for the daemon:
the bus applies the policy before a message ever reaches the owner, so what is
checked here is the policy file, not the daemon.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .dbus_fixtures import SYSTEM_CONF, private_system_conf

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "data" / "org.nvmemd.Nvmem1.conf"
SYS_PYTHON = "/usr/bin/python3"
NAME = "org.nvmemd.Nvmem1"
ROOT_PATH = "/org/nvmemd/Nvmem1"
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

# The stand-in owner: requests the name, prints the outcome as one line, then
# serves until its stdin is closed.
OWNER = textwrap.dedent(
    """
    import asyncio, sys
    from dbus_fast import BusType, DBusError, RequestNameReply
    from dbus_fast.aio import MessageBus
    from dbus_fast.service import ServiceInterface, method

    class Manager(ServiceInterface):
        def __init__(self):
            super().__init__("org.nvmemd.Nvmem1.Manager")

        @method()
        def GetVersion(self) -> "s":
            return "stand-in"

    class Unlisted(ServiceInterface):
        def __init__(self):
            super().__init__("org.nvmemd.Nvmem1Internal.Debug")

        @method()
        def Dump(self) -> "s":
            return "secret"

    async def main():
        bus = await MessageBus(bus_address=sys.argv[1]).connect()
        bus.export("/org/nvmemd/Nvmem1", Manager())
        bus.export("/org/nvmemd/Nvmem1", Unlisted())
        try:
            reply = await bus.request_name("org.nvmemd.Nvmem1")
        except DBusError as e:
            print("ERROR", e.type, e.text, flush=True)
            return
        print("OWNED" if reply == RequestNameReply.PRIMARY_OWNER else f"REPLY {reply}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)

    asyncio.run(main())
    """
)


def _have_tools() -> str | None:
    for tool in ("dbus-daemon", "gdbus", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if not SYSTEM_CONF.exists():
        return f"{SYSTEM_CONF} missing (package dbus-daemon)"
    if subprocess.run([SYS_PYTHON, "-c", "import dbus_fast"], capture_output=True).returncode:
        return "Debian's python3-dbus-fast is not installed"
    if os.geteuid() != 0:
        return "needs root to switch to nobody"
    return None




@pytest.fixture(scope="module")
def bus() -> Iterator[str]:
    missing = _have_tools()
    if missing:
        pytest.skip(missing)
    # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700 and nobody
    # must reach the socket.
    tmp = Path(tempfile.mkdtemp(prefix="nvmemd-sysbus-"))
    tmp.chmod(0o755)
    includedir = tmp / "system.d"
    includedir.mkdir()
    shutil.copy(POLICY, includedir / POLICY.name)
    conf = tmp / "system.conf"
    conf.write_text(private_system_conf(tmp / "bus", includedir))
    daemon = subprocess.Popen(
        ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert daemon.stdout is not None
    address = daemon.stdout.readline().strip()
    if not address:
        daemon.kill()
        pytest.fail(f"dbus-daemon did not start: {daemon.communicate()[1]}")
    try:
        yield address
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


class Owner:
    def __init__(self, address: str, as_nobody: bool) -> None:
        prefix = AS_NOBODY if as_nobody else []
        self.proc = subprocess.Popen(
            [*prefix, SYS_PYTHON, "-c", OWNER, address],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd="/",
        )
        assert self.proc.stdout is not None
        self.status = self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def root_owner(bus: str) -> Iterator[Owner]:
    owner = Owner(bus, as_nobody=False)
    assert owner.status == "OWNED", owner.proc.stderr.read() if owner.proc.stderr else ""
    yield owner
    owner.close()


def gdbus_call(
    address: str, interface_method: str, *, as_nobody: bool
) -> subprocess.CompletedProcess[str]:
    prefix = AS_NOBODY if as_nobody else []
    return subprocess.run(
        [*prefix, "gdbus", "call", "--address", address, "--dest", NAME,
         "--object-path", ROOT_PATH, "--method", interface_method],
        capture_output=True, text=True, timeout=30, cwd="/",
    )


def test_policy_is_installed_where_dbus_reads_it() -> None:
    # /usr/share/dbus-1/system.d, never /etc (lintian: dbus-policy-in-etc).
    install = (REPO / "debian" / "nvmemd.install").read_text().split("\n")
    assert "data/org.nvmemd.Nvmem1.conf usr/share/dbus-1/system.d/" in install


def test_every_rule_names_our_destination_or_name() -> None:
    """No rule may be broader than org.nvmemd.Nvmem1 (lintian: dbus-policy-excessively-broad)."""
    rules = re.findall(r"<(allow|deny)\b([^>]*)/>", POLICY.read_text())
    assert rules
    for _kind, attrs in rules:
        assert f'own="{NAME}"' in attrs or f'send_destination="{NAME}"' in attrs, attrs
    assert "at_console" not in POLICY.read_text()


def test_policy_allows_exactly_the_api_interfaces() -> None:
    """The interfaces nvmemd exports (nvmemd/dbus_defs.py) are allowed, plus the standard ones."""
    from nvmemd.dbus import names as dbus_defs

    assert dbus_defs.BUS_NAME == NAME
    ours = {v for k, v in vars(dbus_defs).items()
            if k.endswith("_IFACE") and isinstance(v, str) and v.startswith(NAME + ".")}
    assert ours >= {f"{NAME}.Manager", f"{NAME}.Provider", f"{NAME}.Cell"}
    standard = {f"org.freedesktop.DBus.{i}" for i in
                ("Properties", "Introspectable", "Peer", "ObjectManager")}
    allowed = set(re.findall(r'send_interface="([^"]+)"', POLICY.read_text()))
    assert allowed == ours | standard


def test_polkit_action_matches_the_daemon() -> None:
    from nvmemd.dbus import names as dbus_defs

    action = (REPO / "data" / "org.nvmemd.Nvmem1.policy").read_text()
    assert f'<action id="{dbus_defs.POLKIT_ACTION_READ_PROTECTED}">' in action


def test_nobody_cannot_own_the_name(bus: str) -> None:
    owner = Owner(bus, as_nobody=True)
    try:
        denied = "ERROR org.freedesktop.DBus.Error.AccessDenied"
        assert owner.status.startswith(denied), owner.status
        assert "not allowed to own the service" in owner.status
    finally:
        owner.close()


def test_root_owns_the_name(root_owner: Owner) -> None:
    assert root_owner.status == "OWNED"


@pytest.mark.parametrize(
    "method",
    [
        "org.freedesktop.DBus.Peer.Ping",
        "org.freedesktop.DBus.Introspectable.Introspect",
        "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
        "org.nvmemd.Nvmem1.Manager.GetVersion",
    ],
)
def test_nobody_may_call_listed_interfaces(bus: str, root_owner: Owner, method: str) -> None:
    result = gdbus_call(bus, method, as_nobody=True)
    assert result.returncode == 0, result.stderr
    if method.endswith("Introspect"):
        assert "org.nvmemd.Nvmem1.Manager" in result.stdout
    if method.endswith("GetVersion"):
        assert "stand-in" in result.stdout


def test_nobody_is_denied_an_unlisted_interface(bus: str, root_owner: Owner) -> None:
    result = gdbus_call(bus, "org.nvmemd.Nvmem1Internal.Debug.Dump", as_nobody=True)
    assert result.returncode != 0
    assert "org.freedesktop.DBus.Error.AccessDenied" in result.stderr
    assert "Rejected send message" in result.stderr
    assert "secret" not in result.stdout


def test_owner_was_alive_throughout(root_owner: Owner) -> None:
    # A denial must come from the bus, not from a crashed stand-in.
    time.sleep(0.1)
    assert root_owner.proc.poll() is None
    assert sys.platform.startswith("linux")
