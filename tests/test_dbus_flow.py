"""The call limiter's deferred calls (nvmemd.dbus.flow), in process, without a bus.

While more than WRITE_HIGH_WATER bytes of replies wait for the socket, admitted
calls are deferred; they then go one at a time, the caller whose replies took the
fewest bytes first.  A caller of small calls behind a caller whose every reply is
megabytes (a GetManagedObjects flood) waits for the reply being written, not for
a round of them.  (The whole path on a real bus: tests/robustness/test_hostile.py,
benchmarks/flood.py.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from dbus_fast import Message

from nvmemd.dbus.flow import SERVED_MAX, WRITE_HIGH_WATER, CallLimiter


class _Writer:
    def __init__(self) -> None:
        self.pending_bytes = WRITE_HIGH_WATER + 1
        self._waiters: list[asyncio.Future[None]] = []

    def drained(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return fut

    def drain(self) -> None:
        self.pending_bytes = 0
        for fut in self._waiters:
            fut.set_result(None)
        self._waiters.clear()


class _Bus:
    """Dispatching a call "answers" it: a reply of the caller's size is queued."""

    connected = True

    def __init__(self, limiter: CallLimiter, sizes: dict[str, int]) -> None:
        self.limiter = limiter
        self.sizes = sizes
        self.order: list[str] = []

    def _process_message(self, msg: Message) -> None:
        assert self.limiter.gate(msg) is None  # admitted already: dispatched now
        sender = msg.sender or ""
        self.order.append(f"{sender}{msg.serial}")
        self.limiter.queued_reply(sender, self.sizes[sender])
        self.limiter.release((sender, msg.serial))


def _call(sender: str, serial: int) -> Message:
    msg = Message(destination="org.nvmemd.Nvmem1", path="/org/nvmemd/Nvmem1",
                  interface="org.freedesktop.DBus.ObjectManager", member="GetManagedObjects",
                  serial=serial)
    msg.sender = sender
    return msg


def _run(calls: list[tuple[str, int]], sizes: dict[str, int],
         served_before: dict[str, int] | None = None) -> list[str]:
    limiter = CallLimiter()
    writer = _Writer()
    bus = _Bus(limiter, sizes)
    limiter.writer, limiter.bus = writer, bus

    async def scenario() -> Any:
        for sender, serial in calls:
            assert limiter.gate(_call(sender, serial)) is True  # deferred
        for sender, size in (served_before or {}).items():
            limiter.queued_reply(sender, size)  # replies written while they waited
        writer.drain()
        for _ in range(100):
            await asyncio.sleep(0)
        assert limiter.in_progress() == 0
        return bus.order

    order: list[str] = asyncio.run(scenario())
    return order


def test_small_callers_go_before_large_ones() -> None:
    """A bystander's calls (100-byte replies) pass a flooder's (10 MB replies) as soon as
    the flooder has had one: it waits for one large reply, not for each of them."""
    sizes = {":1.flood": 10_000_000, ":1.by": 100}
    order = _run([(":1.flood", 1), (":1.flood", 2), (":1.flood", 3), (":1.by", 1),
                  (":1.by", 2)], sizes)
    assert order == [":1.flood1", ":1.by1", ":1.by2", ":1.flood2", ":1.flood3"]


def test_bytes_already_served_count() -> None:
    sizes = {":1.a": 5000, ":1.b": 5000}
    order = _run([(":1.a", 1), (":1.b", 1), (":1.a", 2), (":1.b", 2)], sizes,
                 served_before={":1.a": 20_000})
    assert order == [":1.b1", ":1.b2", ":1.a1", ":1.a2"]


def test_equal_callers_alternate() -> None:
    """Callers whose replies are alike take turns (the round robin as before)."""
    sizes = {":1.a": 1000, ":1.b": 1000, ":1.c": 1000}
    order = _run([(":1.a", 1), (":1.a", 2), (":1.b", 1), (":1.b", 2), (":1.c", 1)], sizes)
    assert order == [":1.a1", ":1.b1", ":1.c1", ":1.a2", ":1.b2"]


def test_byte_counts_stay_bounded() -> None:
    """Thousands of short-lived callers answered during one long deferral: the counts of
    those without a call in progress are forgotten beyond SERVED_MAX."""
    limiter = CallLimiter()
    limiter.writer = _Writer()

    async def scenario() -> None:
        assert limiter.gate(_call(":1.flood", 1)) is True
        for i in range(3 * SERVED_MAX):
            limiter.queued_reply(f":1.gone{i}", 100)
        limiter.queued_reply(":1.flood", 100)
        assert len(limiter._served) <= SERVED_MAX
        assert limiter._served[":1.flood"] == 100  # a caller with a call in progress stays
        limiter._pump.cancel()  # type: ignore[union-attr]

    asyncio.run(scenario())
