"""GetManagedObjects from the body cached per generation of the object tree (nvmemd.dbus.managed).

On the bus (busctl, gdbus): the cached reply is what a fresh build gives — every
object's properties as ``Properties.GetAll`` builds them on each call —, one build
serves every call of a generation, and a rescan (Reload) drops the body so that the
next reply shows the new state.  In process: the reply is byte for byte what
dbus-fast marshals for the whole dictionary at once, whatever the slicing; a build
that sees the tree change between two slices answers with the new tree; every call
that waits for one build gets the same answer; a body over the reply limit is not
kept.  (What unprivileged callers get from the cache: tests/test_dbus_redaction.py.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType

from nvmemd.config import Config
from nvmemd.consumers import consumer_index
from nvmemd.dbus import managed
from nvmemd.dbus.flow import PremarshalledReply
from nvmemd.dbus.service import Service
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

from .dbus_fixtures import (
    NAME,
    REPO,
    ROOT,
    SYS_PYTHON,
    TIMEOUT,
    Daemon,
    StaticState,
    managed_objects,
)

MANAGER = "org.nvmemd.Nvmem1.Manager"
PROVIDER = "org.nvmemd.Nvmem1.Provider"
PROPERTIES = "org.freedesktop.DBus.Properties"
ENV0 = ROOT + "/providers/u_2dboot_2denv0"
BUILT = "GetManagedObjects: built the reply"


# --- on the bus -------------------------------------------------------------------------


def _builds(daemon: Daemon) -> int:
    return daemon.log().count(BUILT)


def _fresh(daemon: Daemon, objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every object's properties built anew: Properties.GetAll of each of its interfaces."""
    out: dict[str, dict[str, Any]] = {}
    for path, ifaces in objects.items():
        out[path] = {}
        for iface in ifaces:
            (props,) = daemon.call(path, PROPERTIES, "GetAll", "s", iface)
            out[path][iface] = {k: v["data"] for k, v in props.items()}
    return out


def _gdbus_managed_objects(daemon: Daemon) -> str:
    r = subprocess.run(["gdbus", "call", "--address", daemon.bus.address, "--dest", NAME,
                        "--object-path", ROOT, "--method",
                        "org.freedesktop.DBus.ObjectManager.GetManagedObjects"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr  # GLib checks every byte of the message
    return r.stdout


@pytest.mark.integration
def test_cached_reply_is_a_fresh_build_and_a_rescan_drops_it(daemon: Daemon,
                                                              sysroot: Path) -> None:
    first = managed_objects(daemon)
    assert _builds(daemon) == 1
    assert managed_objects(daemon) == first  # from the cache
    gdbus_text = _gdbus_managed_objects(daemon)
    assert _builds(daemon) == 1, "one build serves every call of a generation"
    assert ENV0 + "/cells/ethaddr_4027_2c0" in gdbus_text
    assert first == _fresh(daemon, first)
    env0 = first[ENV0][PROVIDER]
    assert [v["status"]["data"] for v in env0["Validity"]] == ["valid"] and env0["Cells"]

    # A rescan that changes a provider: the next reply shows it (and equals a fresh build).
    nvmem = (sysroot / "sys/bus/nvmem/devices/u-boot-env0/nvmem").resolve()
    data = bytearray(nvmem.read_bytes())
    data[10] ^= 0xFF  # the environment's CRC no longer matches: no cells
    nvmem.write_bytes(bytes(data))
    daemon.call(ROOT, MANAGER, "Reload")
    after = managed_objects(daemon)
    env0 = after[ENV0][PROVIDER]
    assert [v["status"]["data"] for v in env0["Validity"]] == ["invalid"]
    assert env0["Cells"] == [] and not [p for p in after if p.startswith(ENV0 + "/")]
    assert after == _fresh(daemon, after)
    assert set(first) - set(after) == {p for p in first if p.startswith(ENV0 + "/")}
    assert _builds(daemon) == 2

    # Any swap drops the body, one that changes nothing included.
    daemon.call(ROOT, MANAGER, "Reload")
    assert managed_objects(daemon) == after
    assert _builds(daemon) == 3


# --- in process -------------------------------------------------------------------------


class _Bus:
    """What Service needs of a bus without one: messages sent are kept."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def add_message_handler(self, _handler: object) -> None:
        pass

    def send(self, msg: Message) -> None:
        self.sent.append(msg)


def _service(sysroot: Path) -> tuple[Service, _Bus, StaticState]:
    registry = scan(Sysroot.from_arg(str(sysroot)), Config())
    bus, state = _Bus(), StaticState(registry)
    service = Service(bus, state, consumer_index(registry.tree))  # type: ignore[arg-type]
    service.start()
    return service, bus, state


def _call(serial: int) -> Message:
    msg = Message(destination=NAME, path=ROOT, interface="org.freedesktop.DBus.ObjectManager",
                  member="GetManagedObjects", serial=serial)
    msg.sender = ":1.42"
    return msg


def _reference(service: Service, call: Message) -> bytes:
    """The whole reply as dbus-fast marshals it in one go (what nvmemd sent before)."""
    result = {p: service.properties_of(o) for p, o in service.objects.items() if p != ROOT}
    reply = Message.new_method_return(call, "a{oa{sa{sv}}}", [result])
    reply.serial = 7
    return bytes(reply._marshall(False))


def _wire(reply: Message) -> bytes:
    assert isinstance(reply, PremarshalledReply), reply.body
    reply.serial = 7
    return bytes(reply._marshall(False))


@pytest.mark.parametrize("slice_", [1, 3, managed.SLICE])
def test_reply_is_byte_identical_to_one_marshalled_whole(
        demo_board_sysroot: Path, monkeypatch: pytest.MonkeyPatch, slice_: int) -> None:
    monkeypatch.setattr(managed, "SLICE", slice_)
    service, bus, _ = _service(demo_board_sysroot)

    async def run() -> None:
        for serial in (5, 6, 7):  # all three wait for one build
            service.managed.answer(_call(serial), bus.send)
        await asyncio.wait_for(_sent(bus, 3), 10)
        service.managed.answer(_call(8), bus.send)  # from the cache, at once
        assert [m.reply_serial for m in bus.sent] == [5, 6, 7, 8]
        for reply in bus.sent:
            assert _wire(reply) == _reference(service, _call(reply.reply_serial))

    asyncio.run(run())
    assert service.managed.builds == 1


async def _sent(bus: _Bus, n: int) -> None:
    while len(bus.sent) < n:
        await asyncio.sleep(0.001)


def test_a_rescan_during_the_build_restarts_it(demo_board_sysroot: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The tree changes between two slices of a build: every waiting caller gets the new
    tree, never a mix (the signals of the change left before the reply)."""
    monkeypatch.setattr(managed, "SLICE", 2)
    service, bus, state = _service(demo_board_sysroot)

    async def run() -> None:
        service.managed.answer(_call(5), bus.send)
        service.managed.answer(_call(6), bus.send)  # waits for the same build
        await asyncio.sleep(0)  # the build's first slices
        await asyncio.sleep(0)
        assert not bus.sent
        state.registry = state.registry.with_provider("mtd2", None)  # as the daemon swaps
        service.sync()
        signals = len(bus.sent)
        assert signals and all(m.message_type is MessageType.SIGNAL for m in bus.sent)
        await asyncio.wait_for(_sent(bus, signals + 2), 10)
        replies = [m for m in bus.sent if m.message_type is MessageType.METHOD_RETURN]
        assert [r.reply_serial for r in replies] == [5, 6]
        for r in replies:
            assert _wire(r) == _reference(service, _call(r.reply_serial))
            assert b"/providers/mtd2" not in _wire(r)

    asyncio.run(run())
    assert service.managed.builds == 1


def test_a_tree_that_keeps_changing_is_built_in_one_go(demo_board_sysroot: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that restarted RESTARTS times builds without yielding: the caller is
    answered, with the tree as it is when the reply leaves."""
    monkeypatch.setattr(managed, "SLICE", 1)
    service, bus, state = _service(demo_board_sysroot)
    full = state.registry
    expected: list[bytes] = []

    def send(msg: Message) -> None:
        bus.sent.append(msg)
        if msg.message_type is MessageType.METHOD_RETURN:
            expected.append(_reference(service, _call(msg.reply_serial)))

    async def churn() -> None:
        for i in range(200):  # swaps between every two slices, for longer than any build
            state.registry = full.with_provider("mtd2", None) if i % 2 else full
            service.sync()
            await asyncio.sleep(0)

    async def run() -> None:
        service.managed.answer(_call(5), send)
        churner = asyncio.create_task(churn())
        await asyncio.wait_for(_replied(bus), 10)
        assert not churner.done()  # answered while the tree still changed
        churner.cancel()

    asyncio.run(run())
    (reply,) = [m for m in bus.sent if m.message_type is MessageType.METHOD_RETURN]
    assert _wire(reply) == expected[0]


async def _replied(bus: _Bus) -> None:
    while not any(m.message_type is MessageType.METHOD_RETURN for m in bus.sent):
        await asyncio.sleep(0)


def test_a_body_over_the_reply_limit_is_not_kept(demo_board_sysroot: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(managed, "MAX_REPLY_BYTES", 4096)
    service, bus, _ = _service(demo_board_sysroot)

    async def run() -> None:
        service.managed.answer(_call(5), bus.send)
        await asyncio.wait_for(_sent(bus, 1), 10)

    asyncio.run(run())
    (reply,) = bus.sent
    assert reply.message_type is MessageType.ERROR
    assert reply.error_name == "org.freedesktop.DBus.Error.LimitsExceeded"
    assert "over the limit of 4096 bytes" in reply.body[0]
    cached = service.managed.cached()
    assert isinstance(cached, managed.TooLarge) and cached.size > 4096


#: The byte-identity check of test_reply_is_byte_identical_to_one_marshalled_whole, run by
#: another interpreter: Debian's python3 with its python3-dbus-fast (1.84 in bookworm,
#: what the Debian package runs on), whose marshaller differs (string lengths, below).
_CHECK_WITH = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from dbus_fast import Message
from nvmemd.config import Config
from nvmemd.dbus import flow, managed
from nvmemd.dbus.service import Service
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot
class Bus:
    sent = []
    def add_message_handler(self, handler): pass
    def send(self, msg): self.sent.append(msg)
class State:
    access = None
managed.SLICE = 3
state = State()
state.registry = scan(Sysroot.from_arg(sys.argv[1]), Config())
bus = Bus()
service = Service(bus, state, {})
service.start()
call = Message(destination="org.nvmemd.Nvmem1", path="/org/nvmemd/Nvmem1",
               interface="org.freedesktop.DBus.ObjectManager", member="GetManagedObjects",
               serial=5)
call.sender = ":1.42"
async def run():
    service.managed.answer(call, bus.send)
    while not bus.sent:
        await asyncio.sleep(0)
asyncio.run(run())
result = {p: service.properties_of(o) for p, o in service.objects.items()
          if p != "/org/nvmemd/Nvmem1"}
whole = Message.new_method_return(call, "a{oa{sa{sv}}}", [result])
if not flow._marshaller_counts_bytes():
    whole = flow._with_ascii_strings(whole)  # as the safe writer sends it there
whole.serial = bus.sent[0].serial = 7
assert bytes(bus.sent[0]._marshall(False)) == bytes(whole._marshall(False))
print("identical", len(bus.sent[0].marshalled_body))
"""


@pytest.mark.parametrize("python", [sys.executable, SYS_PYTHON])
def test_byte_identical_with_either_dbus_fast(demo_board_sysroot: Path, python: str) -> None:
    probe = subprocess.run([python, "-c", "import dbus_fast, libfdt"], capture_output=True)
    if probe.returncode:
        pytest.skip(f"{python}: no dbus_fast or libfdt (python3-dbus-fast, python3-libfdt)")
    r = subprocess.run([python, "-c", _CHECK_WITH, str(demo_board_sysroot), str(REPO)],
                       capture_output=True, text=True, timeout=TIMEOUT * 3, cwd=REPO)
    assert r.returncode == 0 and r.stdout.startswith("identical"), r.stderr
