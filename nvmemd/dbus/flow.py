"""Backpressure: bounded work per caller and in total, and a write path that survives EAGAIN.

Two parts:

- :class:`CallLimiter` admits a method call only while its caller has fewer
  than ``per_sender + per_sender_queue`` calls admitted and everyone together
  fewer than ``total + total_queue``; beyond that the call is answered at once
  with ``org.freedesktop.DBus.Error.LimitsExceeded``.  Admitted calls run at
  most ``per_sender`` at a time per caller (a semaphore each) and ``total`` at a
  time overall, and none starts while more than :data:`WRITE_HIGH_WATER` bytes
  of replies are waiting for the socket: a flood slows itself down instead of
  growing the daemon's queues.
- :func:`install_safe_writer`: dbus-fast's ``_MessageWriter.write_callback``
  (1.84.2 in Debian bookworm up to at least 5.2 on PyPI) catches *every*
  exception of ``socket.send()`` — ``BlockingIOError`` (EAGAIN) included, which
  only means "the socket buffer is full" — and tears the connection down:
  nvmemd would exit with "lost the bus connection" whenever its replies come
  faster than the bus daemon reads them.  The writer instance gets a subclass
  whose ``write_callback`` waits for the socket to become writable again; it
  also takes messages first in, first out (1.84.2 pops the newest first),
  counts the bytes queued, and answers a reply too large for the bus with an
  error instead of sending it (:data:`MAX_REPLY_BYTES`).  The subclass is
  installed only when the writer has the attributes it relies on; otherwise a
  warning is logged and dbus-fast's writer stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any, Final

from dbus_fast import DBusError, Message, MessageType

from ..limits import MAX_REPLY_BYTES

log = logging.getLogger(__name__)

ERROR_LIMITS_EXCEEDED: Final = "org.freedesktop.DBus.Error.LimitsExceeded"

#: Calls of one caller running at once, and waiting behind them.
PER_SENDER: Final = 4
PER_SENDER_QUEUE: Final = 16
#: Calls of all callers running at once, and waiting behind them.
TOTAL: Final = 16
TOTAL_QUEUE: Final = 256
#: No new call starts while more reply bytes than this wait for the socket ...
WRITE_HIGH_WATER: Final = 4 * 1024 * 1024
#: ... and calls start again once the queue is below this.
WRITE_LOW_WATER: Final = 1024 * 1024

#: What the safe writer relies on in dbus-fast's ``_MessageWriter``.
_WRITER_ATTRS: Final = ("messages", "buf", "offset", "unix_fds", "fut", "sock", "loop", "fd",
                        "bus", "negotiate_unix_fd", "write_callback", "buffer_message")


class CallLimiter:
    """Per-caller and global bounds on method calls (see the module docstring)."""

    def __init__(self, per_sender: int = PER_SENDER, per_sender_queue: int = PER_SENDER_QUEUE,
                 total: int = TOTAL, total_queue: int = TOTAL_QUEUE) -> None:
        self.per_sender = per_sender
        self.per_sender_max = per_sender + per_sender_queue
        self.total_max = total + total_queue
        self._global: asyncio.Semaphore | None = None
        self._total = total
        self._admitted = 0
        self._per: dict[str, tuple[int, asyncio.Semaphore]] = {}
        #: The bus whose write queue paces the calls (set by install_safe_writer).
        self.writer: Any = None
        self.rejected = 0

    @contextlib.asynccontextmanager
    async def slot(self, sender: str | None) -> AsyncIterator[None]:
        key = sender or ""
        known = self._per.get(key)
        count, sem = known if known is not None else (0, None)
        if count >= self.per_sender_max or self._admitted >= self.total_max:
            self.rejected += 1
            raise DBusError(ERROR_LIMITS_EXCEEDED,
                            "too many calls in progress; retry later")
        if sem is None:
            sem = asyncio.Semaphore(self.per_sender)
        if self._global is None:
            self._global = asyncio.Semaphore(self._total)
        self._per[key] = (count + 1, sem)
        self._admitted += 1
        try:
            async with sem, self._global:
                writer = self.writer
                if writer is not None and writer.pending_bytes > WRITE_HIGH_WATER:
                    await writer.drained()
                yield
        finally:
            self._admitted -= 1
            left = self._per[key][0] - 1
            if left:
                self._per[key] = (left, sem)
            else:
                del self._per[key]


#: The one limiter of the daemon (one bus connection).
LIMITER = CallLimiter()


def _error_for(msg: Message, text: str) -> Message:
    return Message(message_type=MessageType.ERROR, destination=msg.destination,
                   reply_serial=msg.reply_serial, serial=msg.serial,
                   error_name=ERROR_LIMITS_EXCEEDED, signature="s", body=[text])


def _safe_writer_class(base: Any) -> type:
    class SafeWriter(base):  # type: ignore[misc]
        """dbus-fast's writer, patient with a full socket (see the module docstring)."""

        buf: memoryview | None
        pending_bytes = 0
        _drain_waiters: list[asyncio.Future[None]] | None = None

        def drained(self) -> asyncio.Future[None]:
            fut: asyncio.Future[None] = self.loop.create_future()
            if self._drain_waiters is None:
                self._drain_waiters = []
            self._drain_waiters.append(fut)
            return fut

        def _wake(self) -> None:
            waiters, self._drain_waiters = self._drain_waiters, None
            for fut in waiters or ():
                if not fut.done():
                    fut.set_result(None)

        def schedule_write(self, msg: Message | None = None, future: Any = None) -> None:
            if msg is not None and not self.bus.connected:
                # A call answered after the connection closed (shutdown): drop the reply.
                if future is not None and not future.done():
                    future.set_result(None)
                return
            super().schedule_write(msg, future)

        def buffer_message(self, msg: Message, future: Any = None) -> None:
            buf = msg._marshall(self.negotiate_unix_fd)
            if len(buf) > MAX_REPLY_BYTES:
                what = f"{msg.message_type.name} {msg.member or ''}".strip()
                log.warning("not sending a %s of %d bytes (limit %d)", what, len(buf),
                            MAX_REPLY_BYTES)
                if msg.message_type is not MessageType.METHOD_RETURN:
                    if future is not None and not future.done():
                        future.set_result(None)
                    return
                buf = _error_for(msg, f"the reply would be {len(buf)} bytes, over the limit "
                                      f"of {MAX_REPLY_BYTES} bytes").\
                    _marshall(self.negotiate_unix_fd)
                fds = None
            else:
                fds = list(msg.unix_fds) if msg.unix_fds else None
            self.messages.append((buf, fds, future))
            self.pending_bytes += len(buf)

        def write_callback(self, remove_writer: bool = True) -> None:
            sock = self.sock
            try:
                while True:
                    if self.buf is None:
                        if not self.messages:
                            if remove_writer:
                                self.loop.remove_writer(self.fd)
                            return
                        buf, unix_fds, fut = self.messages.popleft()
                        self.unix_fds = unix_fds
                        self.buf = memoryview(buf)
                        self.offset = 0
                        self.fut = fut
                    try:
                        if self.unix_fds and self.negotiate_unix_fd:
                            import array

                            ancdata = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                        array.array("i", self.unix_fds))]
                            self.offset += sock.sendmsg([self.buf[self.offset:]], ancdata)
                            self.unix_fds = None
                        else:
                            self.offset += sock.send(self.buf[self.offset:])
                    except (BlockingIOError, InterruptedError):
                        # The socket buffer is full: wait until it is writable.
                        self.loop.add_writer(self.fd, self.write_callback)
                        return
                    if self.offset < len(self.buf):
                        self.loop.add_writer(self.fd, self.write_callback)
                        return
                    self.pending_bytes = max(0, self.pending_bytes - len(self.buf))
                    self.buf = None
                    if self.fut is not None and not self.fut.done():
                        self.fut.set_result(None)
                    if self._drain_waiters and self.pending_bytes < WRITE_LOW_WATER:
                        self._wake()
            except Exception as e:
                if self.bus._user_disconnect:
                    if self.fut is not None and not self.fut.done():
                        self.fut.set_result(None)
                elif self.fut is not None and not self.fut.done():
                    self.fut.set_exception(e)
                self._wake()
                self.bus._finalize(e)

    return SafeWriter


def install_safe_writer(bus: Any, limiter: CallLimiter = LIMITER) -> bool:
    """Give *bus*'s dbus-fast writer the safe write path; False if it does not fit."""
    writer = getattr(bus, "_writer", None)
    try:
        import dbus_fast

        version = getattr(dbus_fast, "__version__", "?")
    except Exception:  # pragma: no cover
        version = "?"
    if writer is None or not all(hasattr(writer, a) for a in _WRITER_ATTRS) \
            or not hasattr(writer.messages, "popleft"):
        log.warning("dbus-fast %s: unknown message writer, keeping its write path "
                    "(a full socket will drop the bus connection)", version)
        return False
    if type(writer).__name__ != "SafeWriter":
        writer.__class__ = _safe_writer_class(type(writer))
        writer.pending_bytes = sum(len(m[0]) for m in writer.messages)
    limiter.writer = writer
    return True


#: Where the machine ID lives (machine-id(5)); D-Bus's own copy as a fallback.
MACHINE_ID_FILES: Final = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def answer_machine_id(msg: Message) -> Message | bool | None:
    """Message handler: ``org.freedesktop.DBus.Peer.GetMachineId`` answered here.

    dbus-fast asks the bus daemon and, when the bus refuses, forwards the bus's
    error text — which names nvmemd's pid and command line — to the caller.
    nvmemd answers from machine-id(5) instead, or with a plain error.
    """
    if (msg.message_type is not MessageType.METHOD_CALL or msg.member != "GetMachineId"
            or msg.interface != "org.freedesktop.DBus.Peer" or msg.signature != ""):
        return None
    for path in MACHINE_ID_FILES:
        try:
            with open(path, encoding="ascii") as f:
                machine_id = f.read(64).strip()
        except (OSError, ValueError):
            continue
        if len(machine_id) == 32 and all(c in "0123456789abcdef" for c in machine_id):
            return Message.new_method_return(msg, "s", [machine_id])
    return Message.new_error(msg, "org.freedesktop.DBus.Error.Failed",
                             "the machine ID is not available")
