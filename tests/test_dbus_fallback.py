"""Cells are served by a fallback dispatcher, not exported: clients must not notice.

The reference is dbus-fast itself: a :class:`CellInterface` instance exported
the ordinary way (on a connection that owns ``org.nvmemd.Nvmem1`` for a
moment) must answer every call the way the daemon answers it for a cell —
errors, their messages, introspection.  Then the parents of cells must list
them (``busctl tree``), unknown paths and members get dbus-fast's errors,
and ``GetManagedObjects`` on any path lists the cells below it.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, NameFlag, RequestNameReply, Variant
from dbus_fast.aio import MessageBus

from nvmemd.dbus.fallback import FallbackInterface
from nvmemd.dbus.service import CellInterface, ProviderInterface

from .conftest import StartDaemon
from .dbus_fixtures import NAME, ROOT, Daemon, PrivateBus, managed_objects

pytestmark = pytest.mark.integration

CELL = "org.nvmemd.Nvmem1.Cell"
PROPS = "org.freedesktop.DBus.Properties"
INTRO = "org.freedesktop.DBus.Introspectable"
PEER = "org.freedesktop.DBus.Peer"
OM = "org.freedesktop.DBus.ObjectManager"
OCOTP = ROOT + "/providers/imx_2docotp0"
OCOTP_MAC = OCOTP + "/cells/mac_2daddress_4090_2c0"
MTD0 = ROOT + "/providers/mtd0"  # a provider without cells

#: (interface, member, signature, body): calls whose answer needs no cell data.
CALLS: list[tuple[str, str, str, list[Any]]] = [
    (INTRO, "Introspect", "", []),
    (INTRO, "Introspect", "s", ["x"]),
    (PEER, "Ping", "", []),
    (PEER, "Nope", "", []),
    (PROPS, "Get", "ss", [CELL, "Nope"]),
    (PROPS, "Get", "ss", ["", "Offset"]),
    (PROPS, "Get", "ss", [PEER, "Offset"]),
    (PROPS, "Get", "ss", ["org.example.Nope", "Offset"]),
    (PROPS, "Get", "s", [CELL]),
    (PROPS, "GetAll", "s", [PEER]),
    (PROPS, "GetAll", "s", [OM]),
    (PROPS, "GetAll", "s", ["org.example.Nope"]),
    (PROPS, "GetAll", "s", [""]),
    (PROPS, "Set", "ssv", [CELL, "Offset", Variant("u", 1)]),
    (PROPS, "Set", "ssv", [CELL, "Nope", Variant("u", 1)]),
    (PROPS, "Set", "ssv", [PROPS, "Nope", Variant("u", 1)]),
    (PROPS, "Set", "ss", [CELL, "Offset"]),
    (PROPS, "Nope", "", []),
    (CELL, "Read", "s", ["x"]),
    (CELL, "Nope", "", []),
    (OM, "GetManagedObjects", "", []),
]


def _answer(reply: Message | None) -> tuple[str, str, Any]:
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        return ("error", reply.error_name or "", reply.body)
    return ("return", reply.signature, reply.body)


async def _ask(address: str, path: str, calls: list[tuple[str, str, str, list[Any]]]
               ) -> list[tuple[str, str, Any]]:
    bus = await MessageBus(bus_address=address).connect()
    try:
        return [_answer(await bus.call(Message(destination=NAME, path=path, interface=i,
                                               member=m, signature=s, body=b)))
                for i, m, s, b in calls]
    finally:
        bus.disconnect()


async def _reference(address: str, path: str) -> list[tuple[str, str, Any]]:
    """dbus-fast's own answers for a CellInterface exported at *path*."""
    owner = await MessageBus(bus_address=address).connect()
    try:
        owner.export(path, CellInterface())
        reply = await owner.request_name(NAME, NameFlag.DO_NOT_QUEUE)
        assert reply == RequestNameReply.PRIMARY_OWNER
        return await _ask(address, path, CALLS)
    finally:
        owner.disconnect()


@pytest.fixture
def sysroot(demo_board_sysroot: Path, tmp_path: Path) -> Path:
    out = tmp_path / "sysroot"
    shutil.copytree(demo_board_sysroot, out, symlinks=True)
    return out


@pytest.fixture
def daemon(start_daemon: StartDaemon, sysroot: Path) -> Daemon:
    return start_daemon(["--sysroot", str(sysroot)])


def test_cell_answers_like_an_exported_instance(private_bus: PrivateBus,
                                                 start_daemon: StartDaemon,
                                                 sysroot: Path) -> None:
    expected = asyncio.run(_reference(private_bus.address, OCOTP_MAC))
    private_bus.wait_owner(present=False)
    daemon = start_daemon(["--sysroot", str(sysroot)])
    got = asyncio.run(_ask(daemon.bus.address, OCOTP_MAC, CALLS))
    for call, want, have in zip(CALLS, expected, got, strict=True):
        assert have == want, call
    # and the calls that read the cell
    answers = asyncio.run(_ask(daemon.bus.address, OCOTP_MAC, [
        (CELL, "Read", "", []), (CELL, "ReadRecord", "", []),
        (PROPS, "Get", "ss", [CELL, "Offset"]), (PROPS, "GetAll", "s", [CELL])]))
    assert answers[0] == ("return", "ay", [bytes.fromhex("000f12345678")])
    assert answers[1][2][0]["value"] == Variant("ay", bytes.fromhex("000f12345678"))
    assert answers[2] == ("return", "v", [Variant("u", 0x90)])
    props = answers[3][2][0]
    assert set(props) == {"Name", "SysfsName", "Provider", "Offset", "BitOffset", "NBits",
                          "Bytes", "Source", "OfNode", "Consumers"}
    assert props["Consumers"].signature == "a(ssu)"
    assert managed_objects(daemon)[OCOTP_MAC][CELL]["SysfsName"] == "mac-address@90,0"


def _introspect(daemon: Daemon, path: str) -> str:
    (xml,) = daemon.call(path, INTRO, "Introspect")
    assert isinstance(xml, str)
    return xml


def _children(xml: str) -> set[str]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml.split("\n", 2)[2])
    return {n.attrib["name"] for n in root.findall("node")}


def test_parents_list_their_cells(daemon: Daemon) -> None:
    objects = managed_objects(daemon)
    cells = sorted(p for p in objects if CELL in objects[p])
    tree = daemon.busctl("tree", "--list", NAME).stdout.split()
    assert set(cells) <= set(tree)
    for ppath in {p.rsplit("/cells/", 1)[0] for p in cells}:
        assert _children(_introspect(daemon, ppath)) == {"cells"}
        assert ppath + "/cells" in tree
        labels = {p.rsplit("/", 1)[1] for p in cells if p.startswith(ppath + "/cells/")}
        assert _children(_introspect(daemon, ppath + "/cells")) == labels
        provider_xml = _introspect(daemon, ppath)
        assert '<interface name="org.nvmemd.Nvmem1.Provider">' in provider_xml
    assert _children(_introspect(daemon, MTD0)) == set()
    assert _children(_introspect(daemon, MTD0 + "/cells")) == set()
    assert not any(p.startswith(MTD0 + "/") for p in tree)


def test_cell_introspection_is_dbus_fast_s(daemon: Daemon) -> None:
    from dbus_fast import introspection as intr

    node = intr.Node.default(OCOTP_MAC)
    node.interfaces.append(CellInterface().introspect())
    assert _introspect(daemon, OCOTP_MAC) == node.tostring()


@pytest.mark.parametrize("path", [
    OCOTP + "/cells/nope_4090_2c0",
    OCOTP + "/cells/mac_2Daddress_4090_2c0",  # upper-case escape: not the cell's path
    OCOTP_MAC + "/below",
    ROOT + "/providers/nope/cells/x",
])
def test_unknown_paths(daemon: Daemon, path: str) -> None:
    name, message = daemon.call_error(path, PROPS, "Get", "ss", CELL, "Offset")
    assert (name, message) == ("org.freedesktop.DBus.Error.UnknownObject",
                               f'no interfaces at path: "{path}"')
    name, message = daemon.call_error(path, CELL, "Read")
    assert (name, message) == ("org.freedesktop.DBus.Error.UnknownMethod",
                               f'{CELL}.Read with signature "" could not be found')
    assert _children(_introspect(daemon, path)) == set()
    assert daemon.call(path, OM, "GetManagedObjects") == [{}]


def test_unknown_members(daemon: Daemon) -> None:
    name, message = daemon.call_error(OCOTP_MAC, CELL, "Write")
    assert (name, message) == ("org.freedesktop.DBus.Error.UnknownMethod",
                               f'{CELL}.Write with signature "" could not be found')
    name, _ = daemon.call_error(OCOTP_MAC, PROPS, "Set", "ssv", CELL, "Offset", "<uint32 1>")
    assert name == "org.freedesktop.DBus.Error.PropertyReadOnly"


def test_managed_objects_below_any_path(daemon: Daemon) -> None:
    everything = managed_objects(daemon)
    (below,) = daemon.call(OCOTP, OM, "GetManagedObjects")
    assert set(below) == {p for p in everything if p.startswith(OCOTP + "/")}
    assert OCOTP_MAC in below
    (whole,) = daemon.call("/", OM, "GetManagedObjects")
    assert set(whole) == set(everything) | {ROOT}
    assert daemon.call(OCOTP_MAC, OM, "GetManagedObjects") == [{}]


def test_fallback_interface_refuses_writable_properties() -> None:
    from dbus_fast.constants import PropertyAccess
    from dbus_fast.service import ServiceInterface, dbus_property

    class Writable(ServiceInterface):
        def __init__(self) -> None:
            super().__init__("org.example.Writable")
            self._v = 0

        @dbus_property(access=PropertyAccess.READWRITE, name="V")
        def v(self) -> "u":  # noqa: F821, UP037
            return self._v

        @v.setter
        def v(self, value: "u") -> None:  # noqa: F821, UP037
            self._v = value

    with pytest.raises(ValueError, match="read-only"):
        FallbackInterface(Writable(), lambda _msg: None)
    assert ProviderInterface.__name__  # providers stay exported ServiceInterfaces
