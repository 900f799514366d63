"""A D-Bus load client for the robustness tests (dbus-fast, one connection per process).

``python -m tests.robustness.dbus_load ADDRESS N PATH...`` makes N calls, a
mix of ``Cell.Read`` on the given cell paths, ``Properties.GetAll`` and
``Manager.ReadCellByName``, with up to 4 in flight, and prints one JSON line:
``{"ok": n, "failed": n, "errors": {name: count}, "values": {path: hex}}``.
A failed call is any error reply or a value that differs from the first one
read for that path.

``python -m tests.robustness.dbus_load --loop ADDRESS PATH...`` reads the
cells round-robin until its standard input closes, then prints
``{"ok": n, "errors": {name: count}, "values": {path: [hex, ...]}}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

NAME = "org.nvmemd.Nvmem1"
ROOT = "/org/nvmemd/Nvmem1"
CELL = "org.nvmemd.Nvmem1.Cell"


async def run(address: str, n: int, paths: list[str], in_flight: int = 4) -> dict[str, Any]:
    bus = await MessageBus(bus_address=address).connect()
    ok = failed = 0
    errors: dict[str, int] = {}
    values: dict[str, str] = {}
    sem = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        nonlocal ok, failed
        path = paths[i % len(paths)]
        kind = i % 5
        if kind == 3:
            msg = Message(destination=NAME, path=path,
                          interface="org.freedesktop.DBus.Properties", member="GetAll",
                          signature="s", body=[CELL])
        elif kind == 4:
            msg = Message(destination=NAME, path=ROOT, interface=NAME + ".Manager",
                          member="FindCells", signature="s", body=["mac-address"])
        else:
            msg = Message(destination=NAME, path=path, interface=CELL, member="Read")
        async with sem:
            reply = await bus.call(msg)
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            failed += 1
            key = reply.error_name if reply is not None else "no reply"
            errors[str(key)] = errors.get(str(key), 0) + 1
            return
        if kind in (0, 1, 2):
            value = bytes(reply.body[0]).hex()
            if values.setdefault(path, value) != value:
                failed += 1
                errors["value changed"] = errors.get("value changed", 0) + 1
                return
        ok += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    bus.disconnect()
    return {"ok": ok, "failed": failed, "errors": errors, "values": values}


async def loop(address: str, paths: list[str]) -> dict[str, Any]:
    """Cell.Read round-robin over *paths* until standard input closes."""
    bus = await MessageBus(bus_address=address).connect()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
    ok = 0
    errors: dict[str, int] = {}
    values: dict[str, list[str]] = {}
    messages: list[str] = []
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        reply = await bus.call(Message(destination=NAME, path=path, interface=CELL,
                                       member="Read"))
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            key = str(reply.error_name) if reply is not None else "no reply"
            errors[key] = errors.get(key, 0) + 1
            if reply is not None and reply.body and errors[key] <= 5:
                messages.append(f"{key}: {reply.body[0]}")  # the first few of each kind
            continue
        ok += 1
        value = bytes(reply.body[0]).hex()
        seen = values.setdefault(path, [])
        if value not in seen:
            seen.append(value)
    bus.disconnect()
    return {"ok": ok, "errors": errors, "values": values, "messages": messages}


def main() -> int:
    if sys.argv[1] == "--loop":
        address, *paths = sys.argv[2:]
        print(json.dumps(asyncio.run(loop(address, paths))), flush=True)
        return 0
    address, n, *paths = sys.argv[1:]
    print(json.dumps(asyncio.run(run(address, int(n), paths))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
