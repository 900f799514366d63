"""A hostile D-Bus client: floods nvmemd with concurrent calls (one connection).

``python -m tests.robustness.flood ADDRESS SECONDS CONCURRENCY PATH OFFSET LENGTH``
keeps CONCURRENCY ``Provider.Read(OFFSET, LENGTH)`` calls in flight on PATH for
SECONDS and prints one JSON line: ``{"ok": n, "errors": {name: count}, "calls_per_s": x}``.

``python -m tests.robustness.flood --flood ADDRESS SECONDS CONCURRENCY PATH IFACE MEMBER
SIG JSON-ARGS`` does the same with any call (``GetManagedObjects``, ``Properties.GetAll``…);
its line also has ``"messages": {name: first error text}``.

``python -m tests.robustness.flood --vanish ADDRESS N BATCH PATH`` opens N connections,
BATCH at a time; each sends ``Provider.Read(0, 16)`` on PATH and disconnects at once,
before nvmemd can look its caller up.  Prints ``{"sent": n}``.

``python -m tests.robustness.flood --bystander ADDRESS SECONDS PATH`` calls
``Cell.Read`` on PATH one at a time for SECONDS and prints
``{"ok": n, "errors": {...}, "latencies_ms": [...]}`` (one per call).

``python -m tests.robustness.flood --call ADDRESS PATH IFACE MEMBER SIG JSON-ARGS``
makes one call (arguments as a JSON list, ``-``: read from standard input) and
prints its error or reply size.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

NAME = "org.nvmemd.Nvmem1"
PROVIDER = "org.nvmemd.Nvmem1.Provider"
CELL = "org.nvmemd.Nvmem1.Cell"


async def flood(address: str, seconds: float, concurrency: int, path: str, offset: int,
                length: int, iface: str = PROVIDER, member: str = "Read", signature: str = "tu",
                args: list[Any] | None = None) -> dict[str, Any]:
    bus = await MessageBus(bus_address=address).connect()
    ok = 0
    errors: dict[str, int] = {}
    messages: dict[str, str] = {}
    body = [offset, length] if args is None else args
    deadline = time.monotonic() + seconds
    start = time.monotonic()

    async def worker() -> None:
        nonlocal ok
        while time.monotonic() < deadline:
            try:
                reply = await asyncio.wait_for(bus.call(Message(
                    destination=NAME, path=path, interface=iface, member=member,
                    signature=signature, body=body)), 30)
            except Exception as e:  # the daemon went away, a timeout
                key = type(e).__name__
                errors[key] = errors.get(key, 0) + 1
                await asyncio.sleep(0.05)
                continue
            if reply is None or reply.message_type != MessageType.METHOD_RETURN:
                key = str(reply.error_name) if reply is not None else "no reply"
                errors[key] = errors.get(key, 0) + 1
                if reply is not None and reply.body:
                    messages.setdefault(key, str(reply.body[0])[:200])
            else:
                ok += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - start
    bus.disconnect()
    return {"ok": ok, "errors": errors, "calls_per_s": round(ok / elapsed, 1),
            "messages": messages}


async def bystander(address: str, seconds: float, path: str) -> dict[str, Any]:
    bus = await MessageBus(bus_address=address).connect()
    ok = 0
    errors: dict[str, int] = {}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            reply = await asyncio.wait_for(bus.call(Message(
                destination=NAME, path=path, interface=CELL, member="Read")), 30)
        except Exception as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            latencies.append((time.monotonic() - t0) * 1000)
            continue
        latencies.append((time.monotonic() - t0) * 1000)
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            key = str(reply.error_name) if reply is not None else "no reply"
            errors[key] = errors.get(key, 0) + 1
        else:
            ok += 1
        await asyncio.sleep(0.02)
    bus.disconnect()
    return {"ok": ok, "errors": errors, "latencies_ms": [round(x, 2) for x in latencies]}


async def call(address: str, path: str, iface: str, member: str, signature: str,
               args: list[Any]) -> dict[str, Any]:
    """One call: the error name and message, or the reply's size; and how long it took."""
    bus = await MessageBus(bus_address=address).connect()
    t0 = time.monotonic()
    reply = await asyncio.wait_for(bus.call(Message(
        destination=NAME, path=path, interface=iface, member=member, signature=signature,
        body=args)), 60)
    elapsed = time.monotonic() - t0
    bus.disconnect()
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        return {"error": reply.error_name, "message": reply.body[0] if reply.body else "",
                "seconds": elapsed}
    return {"error": None, "size": len(repr(reply.body)), "seconds": elapsed}


async def vanish(address: str, n: int, batch: int, path: str) -> dict[str, Any]:
    sent = 0

    async def one() -> None:
        nonlocal sent
        bus = await MessageBus(bus_address=address).connect()
        bus.send(Message(destination=NAME, path=path, interface=PROVIDER, member="Read",
                         signature="tu", body=[0, 16]))
        await asyncio.sleep(0)  # written, not answered
        bus.disconnect()
        sent += 1

    for start in range(0, n, batch):
        await asyncio.gather(*(one() for _ in range(min(batch, n - start))),
                             return_exceptions=True)
    return {"sent": sent}


def main() -> int:
    if sys.argv[1] == "--call":
        address, path, iface, member, signature, args = sys.argv[2:8]
        if args == "-":  # too long for a command line
            args = sys.stdin.read()
        print(json.dumps(asyncio.run(call(address, path, iface, member, signature,
                                          json.loads(args)))), flush=True)
        return 0
    if sys.argv[1] == "--vanish":
        address, n, batch, path = sys.argv[2:6]
        out = asyncio.run(vanish(address, int(n), int(batch), path))
    elif sys.argv[1] == "--flood":
        address, seconds, conc, path, iface, member, signature, args = sys.argv[2:10]
        out = asyncio.run(flood(address, float(seconds), int(conc), path, 0, 0, iface, member,
                                signature, json.loads(args)))
    elif sys.argv[1] == "--bystander":
        address, seconds, path = sys.argv[2:5]
        out = asyncio.run(bystander(address, float(seconds), path))
    else:
        address, seconds, conc, path, offset, length = sys.argv[1:7]
        out = asyncio.run(flood(address, float(seconds), int(conc), path, int(offset),
                                int(length)))
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
