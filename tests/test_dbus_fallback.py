"""Every object is served by the dispatcher (nvmemd.dbus.service), as sd-bus serves its own.

Standard errors as sd-bus answers them (UnknownObject, UnknownInterface,
UnknownMethod, UnknownProperty, PropertyReadOnly, InvalidArgs), Properties with
an empty interface name, ObjectManager on the root object only, introspection
with named arguments, and the parents of cells listing them (``busctl tree``).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from nvmemd.dbus.fallback import FallbackInterface

from .dbus_fixtures import NAME, ROOT, Daemon, managed_objects

pytestmark = pytest.mark.integration

CELL = "org.nvmemd.Nvmem1.Cell"
MANAGER = "org.nvmemd.Nvmem1.Manager"
PROPS = "org.freedesktop.DBus.Properties"
INTRO = "org.freedesktop.DBus.Introspectable"
PEER = "org.freedesktop.DBus.Peer"
OM = "org.freedesktop.DBus.ObjectManager"
E = "org.freedesktop.DBus.Error."
OCOTP = ROOT + "/providers/imx_2docotp0"
OCOTP_MAC = OCOTP + "/cells/mac_2daddress_4090_2c0"
MTD0 = ROOT + "/providers/mtd0"  # a provider without cells

#: (interface, member, signature, body) → the answer (error name, or the reply signature).
CALLS: list[tuple[str | None, str, str, list[Any], str]] = [
    (INTRO, "Introspect", "", [], "s"),
    (INTRO, "Introspect", "s", ["x"], E + "InvalidArgs"),
    (PEER, "Ping", "", [], ""),
    (PEER, "Nope", "", [], E + "UnknownMethod"),
    (PROPS, "Get", "ss", [CELL, "Nope"], E + "UnknownProperty"),
    (PROPS, "Get", "ss", ["", "Offset"], "v"),
    (PROPS, "Get", "ss", [PEER, "Offset"], E + "UnknownProperty"),
    (PROPS, "Get", "ss", ["org.example.Nope", "Offset"], E + "UnknownInterface"),
    (PROPS, "Get", "s", [CELL], E + "InvalidArgs"),
    (PROPS, "GetAll", "s", [PEER], "a{sv}"),
    (PROPS, "GetAll", "s", [OM], E + "UnknownInterface"),  # not on a cell
    (PROPS, "GetAll", "s", ["org.example.Nope"], E + "UnknownInterface"),
    (PROPS, "GetAll", "s", [""], "a{sv}"),
    (PROPS, "Set", "ssv", [CELL, "Offset", Variant("u", 1)], E + "PropertyReadOnly"),
    (PROPS, "Set", "ssv", [CELL, "Nope", Variant("u", 1)], E + "UnknownProperty"),
    (PROPS, "Set", "ss", [CELL, "Offset"], E + "InvalidArgs"),
    (PROPS, "Nope", "", [], E + "UnknownMethod"),
    (CELL, "Read", "s", ["x"], E + "InvalidArgs"),
    (CELL, "Nope", "", [], E + "UnknownMethod"),
    (OM, "GetManagedObjects", "", [], E + "UnknownInterface"),
]


def _answer(reply: Message | None) -> tuple[str, Any]:
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        return (reply.error_name or "", reply.body)
    return (reply.signature, reply.body)


async def _ask(address: str, path: str, calls: list[tuple[str | None, str, str, list[Any]]]
               ) -> list[tuple[str, Any]]:
    bus = await MessageBus(bus_address=address).connect()
    try:
        return [_answer(await bus.call(Message(destination=NAME, path=path, interface=i,
                                               member=m, signature=s, body=b)))
                for i, m, s, b in calls]
    finally:
        bus.disconnect()


@pytest.fixture
def sysroot(demo_board_sysroot: Path, tmp_path: Path) -> Path:
    out = tmp_path / "sysroot"
    shutil.copytree(demo_board_sysroot, out, symlinks=True)
    return out


def test_cell_answers_like_sd_bus(daemon: Daemon) -> None:
    got = asyncio.run(_ask(daemon.bus.address, OCOTP_MAC, [c[:4] for c in CALLS]))
    for call, (name, _body) in zip(CALLS, got, strict=True):
        assert name == call[4], call
    answers = asyncio.run(_ask(daemon.bus.address, OCOTP_MAC, [
        (CELL, "Read", "", []), (CELL, "ReadRecord", "", []),
        (PROPS, "Get", "ss", [CELL, "Offset"]), (PROPS, "GetAll", "s", [CELL]),
        (PROPS, "GetAll", "s", [""])]))
    assert answers[0] == ("ay", [bytes.fromhex("000f12345678")])
    assert answers[1][1][0]["value"] == Variant("ay", bytes.fromhex("000f12345678"))
    assert answers[2] == ("v", [Variant("u", 0x90)])
    props = answers[3][1][0]
    assert set(props) == {"Name", "NameBytes", "SysfsName", "Provider", "Offset", "BitOffset",
                          "NBits", "Bytes", "Source", "OfNode", "Consumers"}
    assert props["Consumers"].signature == "a(ssu)"
    assert answers[4][1][0] == props  # the empty interface name: every interface
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
    name, _ = daemon.call_error(MTD0 + "/cells", INTRO, "Introspect")
    assert name == E + "UnknownObject"
    assert not any(p.startswith(MTD0 + "/") for p in tree)


def test_introspection_names_every_argument(daemon: Daemon) -> None:
    import xml.etree.ElementTree as ET

    for path in (ROOT, OCOTP, OCOTP_MAC):
        node = ET.fromstring(_introspect(daemon, path).split("\n", 2)[2])
        for arg in node.iter("arg"):
            assert arg.get("name") and not arg.get("name", "").startswith("arg_"), path
        for prop in node.iter("property"):
            ann = {a.get("name"): a.get("value") for a in prop.findall("annotation")}
            assert ann["org.freedesktop.DBus.Property.EmitsChangedSignal"] in (
                "const", "true", "invalidates", "false")
        ifaces = {i.get("name") for i in node.findall("interface")}
        assert (OM in ifaces) == (path == ROOT), path


@pytest.mark.parametrize("path", [
    OCOTP + "/cells/nope_4090_2c0",
    OCOTP + "/cells/mac_2Daddress_4090_2c0",  # upper-case escape: not the cell's path
    OCOTP_MAC + "/below",
    ROOT + "/providers/nope/cells/x",
])
def test_unknown_paths(daemon: Daemon, path: str) -> None:
    for call in [(PROPS, "Get", "ss", CELL, "Offset"), (CELL, "Read"), (INTRO, "Introspect"),
                 (OM, "GetManagedObjects")]:
        name, message = daemon.call_error(path, *call)
        assert (name, message) == (E + "UnknownObject", f"Unknown object '{path}'."), call


def test_unknown_members(daemon: Daemon) -> None:
    name, message = daemon.call_error(OCOTP_MAC, CELL, "Write")
    assert (name, message) == (E + "UnknownMethod", f"Unknown method Write or interface {CELL}.")
    name, _ = daemon.call_error(OCOTP_MAC, PROPS, "Set", "ssv", CELL, "Offset", "<uint32 1>")
    assert name == E + "PropertyReadOnly"
    name, _ = daemon.call_error(ROOT, MANAGER, "FindCells")
    assert name == E + "InvalidArgs"


def test_object_manager_on_the_root_only(daemon: Daemon) -> None:
    everything = managed_objects(daemon)
    assert OCOTP_MAC in everything and ROOT not in everything
    for path in (OCOTP, OCOTP_MAC):
        name, _ = daemon.call_error(path, OM, "GetManagedObjects")
        assert name == E + "UnknownInterface"
    name, _ = daemon.call_error("/", OM, "GetManagedObjects")
    assert name == E + "UnknownObject"
    r = subprocess.run(["dbus-send", f"--bus={daemon.bus.address}", "--print-reply",
                        f"--dest={NAME}", ROOT, f"{OM}.GetManagedObjects", "string:x"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and E + "InvalidArgs" in r.stderr
    (props,) = daemon.call(ROOT, PROPS, "GetAll", "s", OM)
    assert props == {}


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
