"""nvmemd.client against nvmemd on a private system-like bus (a real dbus-daemon)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from nvmemd.client import AsyncClient, Client, NotRunningError
from nvmemd.dbus import wire
from nvmemd.errors import AccessDeniedError, InvalidArgumentError, NotFoundError

from .dbus_fixtures import AS_NOBODY, REPO, TIMEOUT, Daemon, PrivateBus

pytestmark = pytest.mark.integration

SERIAL = b"NVD-2026-000042\0"


def test_blocking_client_reads_the_demo_board(daemon: Daemon) -> None:
    with Client(daemon.bus.address) as c:
        assert c.is_running()
        names = [p.name for p in c.providers()]
        assert "board-eeprom1" in names and names == sorted(names)
        cells = c.cells("board-eeprom1")
        assert [x.name for x in cells][:1] == ["serial-number"]
        assert cells[0].offset == 0 and cells[0].bytes == 16
        assert c.read_cell("board-eeprom1:serial-number") == SERIAL
        assert c.read_netdev_cell("eth0", "mac-address").hex(":") == "00:0f:12:34:56:78"
        assert c.read_provider("mtd1", 0, 6) == bytes.fromhex("02000000aa02")
        assert len(c.read_provider("mtd1")) == 65536
        assert c.wait_for_cell("serial-number", 1.0)
        assert not c.wait_for_cell("no-such-cell", 0.2)
        with pytest.raises(InvalidArgumentError, match="ambiguous"):
            c.read_cell("mac-address")
        with pytest.raises(NotFoundError):
            c.read_cell("no-such-cell")
        with pytest.raises(NotFoundError):
            c.cells("no-such-provider")


def test_blocking_client_as_nobody_gets_access_denied(daemon: Daemon) -> None:
    code = ("import sys; from nvmemd.client import Client; from nvmemd.errors import "
            "AccessDeniedError\nc = Client(sys.argv[1])\n"
            "print(c.read_cell('imx-ocotp0:mac-address').hex())\n"
            "try:\n  c.read_cell('board-eeprom1:serial-number')\n"
            "except AccessDeniedError as e:\n  print('denied', e)\n")
    r = subprocess.run([*AS_NOBODY, sys.executable, "-c", code, daemon.bus.address],
                       capture_output=True, text=True, timeout=TIMEOUT, cwd=REPO,
                       env={"PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "000f12345678", "denied board-eeprom1: permission denied (root-only provider)"]
    assert AccessDeniedError  # the class the client raised above


def test_blocking_client_does_not_import_dbus_fast(daemon: Daemon) -> None:
    code = ("import sys; from nvmemd.client import Client\n"
            "Client(sys.argv[1]).read_cell('imx-ocotp0:mac-address')\n"
            "assert not [m for m in sys.modules if m.startswith('dbus_fast')]\n")
    r = subprocess.run([sys.executable, "-c", code, daemon.bus.address], capture_output=True,
                       text=True, timeout=TIMEOUT, cwd=REPO)
    assert r.returncode == 0, r.stderr


def test_async_client(daemon: Daemon) -> None:
    async def run() -> None:
        c = await AsyncClient.connect(daemon.bus.address)
        try:
            assert await c.read_cell("board-eeprom1:serial-number") == SERIAL
            mac = await c.read_netdev_cell("eth0")
            assert mac.hex(":") == "00:0f:12:34:56:78"
            assert len(await c.cells()) >= 11
            assert await c.wait_for_cell("serial-number", 1.0)
            with pytest.raises(NotFoundError):
                await c.read_cell("nope")
        finally:
            c.disconnect()

    asyncio.run(run())


def test_not_running(private_bus: PrivateBus, tmp_path: Path) -> None:
    with Client(private_bus.address) as c:
        assert not c.is_running()
        with pytest.raises(NotRunningError):
            c.read_cell("serial-number")
    with pytest.raises(NotRunningError):
        Client(f"unix:path={tmp_path}/no-bus")


# --- the wire format, without a bus ----------------------------------------------------

@pytest.mark.parametrize(("sig", "value"), [
    ("s", "héllo"), ("o", "/a/b"), ("g", "a{sv}"), ("b", True), ("y", 255), ("u", 2**32 - 1),
    ("t", 2**64 - 1), ("i", -5), ("x", -(2**63)), ("d", 1.5), ("ay", b"\0\1\xff"),
    ("as", ["a", "", "c"]), ("ao", []), ("(sayu)", ("x", b"", 7)), ("a(ssu)", [("a", "b", 1)]),
    ("a{ss}", {"k": "v"}),
])
def test_wire_round_trip(sig: str, value: object) -> None:
    msg = wire.Message(wire.METHOD_RETURN, serial=3, reply_serial=2, signature=sig,
                       body=[value])
    assert wire.unmarshal(wire.marshal(msg)).body == [value]


def test_wire_variants_unwrap() -> None:
    inner = [{"c": wire.Variant("s", "d")}]
    body = [{"a": wire.Variant("t", 5), "b": wire.Variant("aa{sv}", inner)}]
    msg = wire.Message(wire.METHOD_RETURN, serial=1, reply_serial=1, signature="a{sv}", body=body)
    assert wire.unmarshal(wire.marshal(msg)).body == [{"a": 5, "b": [{"c": "d"}]}]


def test_wire_refuses_oversized_and_garbage() -> None:
    msg = wire.marshal(wire.Message(wire.METHOD_RETURN, serial=1, reply_serial=1,
                                    signature="ay", body=[b"abc"]))
    huge = msg[:4] + (wire.MAX_MESSAGE + 1).to_bytes(4, "little") + msg[8:]
    with pytest.raises(wire.WireError):
        wire.unmarshal(huge)
    with pytest.raises(wire.WireError):
        wire.unmarshal(msg[:-2])
    with pytest.raises(wire.WireError):
        wire.split_signature("a{sv")
    with pytest.raises(wire.WireError):
        wire.split_signature("a" * 100 + "y")
