"""Issue 11, follow-up: a reply that cannot be marshalled never reaches the bus as a
traceback, never drops the connection.

nvmemd's bus connection (``flow.connect()``, with nvmemd.dbus.flow's writer) on a real
private dbus-daemon, in this process; a message handler and an exported
interface answer with a ``str`` that is not encodable (a surrogate-escaped name
from media, ``"\\udcff"``).  The caller gets ``org.nvmemd.Nvmem1.Error.Failed``
with a plain message; the log has one short line; the connection keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method

from nvmemd.dbus import flow
from nvmemd.dbus.flow import LIMITER
from nvmemd.dbus.names import ERROR_FAILED

from ..dbus_fixtures import NAME, PrivateBus

pytestmark = pytest.mark.integration

HOSTILE = "eth\udcff\x1b[2Jaddr"  # bytes b"eth\xff..." from media, surrogate-escaped
UTF8 = "caf\u00e9-\u00b5"  # valid, not ASCII


class Hostile(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.nvmemd.Nvmem1.Cell")  # a name the bus policy lets through

    @method(name="Name")
    def name_(self) -> s:  # noqa: F821  (a D-Bus signature; annotations are strings here)
        return HOSTILE


def _answer(msg: Message) -> Message | None:
    if msg.path == "/raw" and msg.message_type is MessageType.METHOD_CALL:
        return Message.new_method_return(msg, "as", [["ok", HOSTILE]])
    if msg.path == "/utf8" and msg.message_type is MessageType.METHOD_CALL:
        return Message.new_method_return(msg, "as", [["ok", UTF8]])
    return None


async def _scenario(address: str) -> dict[str, Any]:
    server = await flow.connect(MessageBus(bus_address=address))
    # installed, not fallen back (a warning) on whichever dbus-fast runs this
    assert type(server._writer).__name__ == "SafeWriter"
    assert server._user_message_handlers[0] == LIMITER.gate
    server.add_message_handler(_answer)
    server.export("/exported", Hostile())
    await server.request_name(NAME)
    client = await MessageBus(bus_address=address).connect()
    out: dict[str, Any] = {}
    for path, iface, member in (("/utf8", "org.nvmemd.Nvmem1.Cell", "Anything"),
                                ("/raw", "org.nvmemd.Nvmem1.Cell", "Anything"),
                                ("/exported", "org.nvmemd.Nvmem1.Cell", "Name")):
        reply = await asyncio.wait_for(client.call(Message(
            destination=NAME, path=path, interface=iface, member=member)), 10)
        assert reply is not None
        out[path] = (reply.message_type, reply.error_name, reply.body)
    # the connection still serves: Peer.Ping answered by dbus-fast
    ping = await asyncio.wait_for(client.call(Message(
        destination=NAME, path="/", interface="org.freedesktop.DBus.Peer",
        member="Ping")), 10)
    out["ping"] = ping.message_type if ping is not None else None
    out["connected"] = server.connected
    client.disconnect()
    server.disconnect()
    return out


def test_unencodable_reply_is_a_clean_error(private_bus: PrivateBus,
                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        out = asyncio.run(_scenario(private_bus.address))
    def escaped(text: str) -> str:
        return text.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")

    if flow._marshals_utf8_lengths():
        # A str that is not UTF-8 (a surrogate-escaped name) cannot be marshalled: the
        # caller gets a plain error, one short log line each.
        assert out["/utf8"][2] == [["ok", UTF8]], out
        for path in ("/raw", "/exported"):
            assert out[path] == (MessageType.ERROR, ERROR_FAILED,
                                 ["the reply could not be encoded"]), out
        expected_lines = 2
    else:
        # dbus-fast 1.84.2 (Debian bookworm) writes a str's length in characters: a
        # non-ASCII string would make a malformed message and the bus would drop nvmemd,
        # so every string goes out with its non-ASCII bytes as \xNN escapes.
        assert out["/utf8"][2] == [["ok", escaped(UTF8)]], out
        assert out["/raw"][2] == [["ok", escaped(HOSTILE)]], out
        assert out["/exported"][2] == [escaped(HOSTILE)], out
        expected_lines = 0
    assert out["ping"] is MessageType.METHOD_RETURN and out["connected"], out
    lines = [r for r in caplog.records if "encode" in r.getMessage()]
    assert len(lines) == expected_lines, [r.getMessage() for r in caplog.records]
    for r in caplog.records:
        assert r.exc_info is None, r.getMessage()
        assert "Traceback" not in r.getMessage()
        assert len(r.getMessage()) < 400, r.getMessage()
