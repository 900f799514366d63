"""Backpressure: bounded work per caller and in total, and a write path that survives EAGAIN.

Three parts:

- :meth:`CallLimiter.gate` is the first message handler of the bus: *every*
  incoming method call — nvmemd's own methods, the cells served by the
  fallback dispatcher, ``GetManagedObjects``, ``Properties.Get``/``GetAll``,
  ``Introspect``, ``Peer`` — is admitted only while its caller has fewer than
  ``per_sender + per_sender_queue`` calls whose reply has not yet left for the
  bus, and everyone together fewer than ``total + total_queue``; beyond that
  the call is answered at once with ``org.freedesktop.DBus.Error.LimitsExceeded``.
  While more than :data:`WRITE_HIGH_WATER` bytes of replies wait for the
  socket, admitted calls wait instead of being answered, and then go one at a
  time, the caller whose replies took the fewest bytes first: a flood slows
  itself down instead of growing the reply queue, and a caller of small calls
  waits for the reply being written, not for a round of megabyte replies.
- :meth:`CallLimiter.slot` (coroutine methods, through ``FallbackInterface.call``): at most
  ``per_sender`` of a caller's methods run at once and ``total`` overall.
- :func:`install_safe_writer`: dbus-fast's ``_MessageWriter.write_callback``
  (1.84.2 in Debian bookworm up to at least 5.2 on PyPI) catches *every*
  exception of ``socket.send()`` — ``BlockingIOError`` (EAGAIN) included, which
  only means "the socket buffer is full" — and tears the connection down:
  nvmemd would exit with "lost the bus connection" whenever its replies come
  faster than the bus daemon reads them.  The writer instance gets a subclass
  whose ``write_callback`` waits for the socket to become writable again; it
  also takes messages first in, first out (1.84.2 pops the newest first),
  counts the bytes queued, releases a call's admission once its reply is
  written, answers a reply too large for the bus (:data:`MAX_REPLY_BYTES`) or
  one that cannot be marshalled (a ``str`` that is not UTF-8, a wrong type)
  with a plain error instead of sending it.  The subclass is installed only
  when the writer has the attributes it relies on; otherwise a warning is
  logged and dbus-fast's writer stays.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from dbus_fast import DBusError, Message, MessageFlag, MessageType, Variant

from ..limits import MAX_REPLY_BYTES, RateLimitedLog, quote
from .names import ERROR_FAILED

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


#: Callers whose reply bytes are counted while calls are deferred, beyond which those
#: without a call in progress are forgotten.
SERVED_MAX: Final = 1024

#: A call is "admitted" from its arrival until its reply is written; one whose
#: reply never came (a handler that hung past any client's timeout) stops
#: counting after this many seconds, so a leak cannot lock callers out for good.
CALL_TTL: Final = 120.0

#: (caller's unique name, serial of its call)
CallKey = tuple[str, int]



def expects_reply(msg: Message) -> bool:
    """The caller wants an answer (no ``NO_REPLY_EXPECTED`` flag)."""
    return not msg.flags & MessageFlag.NO_REPLY_EXPECTED


class CallLimiter:
    """Per-caller and global bounds on incoming calls (see the module docstring)."""

    def __init__(self, per_sender: int = PER_SENDER, per_sender_queue: int = PER_SENDER_QUEUE,
                 total: int = TOTAL, total_queue: int = TOTAL_QUEUE) -> None:
        self.per_sender = per_sender
        self.per_sender_max = per_sender + per_sender_queue
        self.total_max = total + total_queue
        self._global: asyncio.Semaphore | None = None
        self._total = total
        self._admitted = 0
        self._per: dict[str, tuple[int, asyncio.Semaphore]] = {}
        #: Calls admitted by gate() and not answered yet: key → (count, since).
        self._calls: dict[CallKey, tuple[int, float]] = {}
        self._calls_per: dict[str, int] = {}
        self._calls_total = 0
        #: Admitted calls waiting for the reply queue to drain, per caller.
        self._deferred: dict[str, collections.deque[Message]] = {}
        #: Reply bytes queued for each caller since the deferred calls last ran out:
        #: the deferred caller with the fewest goes next (see _run_deferred).
        self._served: dict[str, int] = {}
        self._redispatch: CallKey | None = None
        self._pump: asyncio.Task[None] | None = None
        #: The bus whose write queue paces the calls (set by install_safe_writer).
        self.writer: Any = None
        self.bus: Any = None
        self.rejected = 0

    # --- every call: admission until the reply is written -------------------------------

    def gate(self, msg: Message) -> Message | bool | None:
        """Message handler, first in the chain: admit, defer or refuse a method call."""
        if msg.message_type is not MessageType.METHOD_CALL:
            return None
        sender = msg.sender or ""
        key = (sender, msg.serial)
        if key == self._redispatch:
            return None  # a deferred call, admitted already: dispatch it now
        if not self._admit(key):
            self.rejected += 1
            if not expects_reply(msg):
                return True
            return Message.new_error(msg, ERROR_LIMITS_EXCEEDED,
                                     "too many calls in progress; retry later")
        if not expects_reply(msg):
            # No reply will release it: it counts until it has been dispatched.
            asyncio.get_running_loop().call_soon(self.release, key)
        writer = self.writer
        if self._deferred or (writer is not None and writer.pending_bytes > WRITE_HIGH_WATER):
            self._deferred.setdefault(sender, collections.deque()).append(msg)
            if self._pump is None or self._pump.done():
                self._pump = asyncio.get_running_loop().create_task(self._run_deferred())
            return True
        return None

    def _admit(self, key: CallKey) -> bool:
        sender = key[0]
        if self._calls_per.get(sender, 0) >= self.per_sender_max:
            return False
        if self._calls_total >= self.total_max:
            self._expire()
            if self._calls_total >= self.total_max:
                return False
        count, since = self._calls.get(key, (0, time.monotonic()))
        self._calls[key] = (count + 1, since)
        self._calls_per[sender] = self._calls_per.get(sender, 0) + 1
        self._calls_total += 1
        return True

    def release(self, key: CallKey | None) -> None:
        """The reply to *key* has been written (or none will be): it stops counting."""
        if key is None:
            return
        known = self._calls.get(key)
        if known is None:
            return
        count, since = known
        if count > 1:
            self._calls[key] = (count - 1, since)
        else:
            del self._calls[key]
        self._calls_total -= 1
        left = self._calls_per.get(key[0], 1) - 1
        if left > 0:
            self._calls_per[key[0]] = left
        else:
            self._calls_per.pop(key[0], None)

    def requeue(self, msg: Message) -> None:
        """Dispatch an admitted call again later, as a deferred call: in its caller's turn,
        once the reply queue is below the high-water mark.  For the ``GetManagedObjects``
        calls that waited for one build: answered all at once, they would fill the queue
        with one copy of the reply each and hold up every other caller until it drained."""
        self._deferred.setdefault(msg.sender or "", collections.deque()).append(msg)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run_deferred())

    def _expire(self) -> None:
        deadline = time.monotonic() - CALL_TTL
        for key, (count, since) in list(self._calls.items()):
            if since > deadline:
                break  # insertion order: the rest are newer
            for _ in range(count):
                self.release(key)

    def in_progress(self, sender: str | None = None) -> int:
        """Admitted calls not answered yet (of *sender*, or of everybody)."""
        if sender is None:
            return self._calls_total
        return self._calls_per.get(sender, 0)

    def queued_reply(self, destination: str, size: int) -> None:
        """The writer queued a reply of *size* bytes for *destination* (while calls
        are deferred: what decides whose deferred call goes next)."""
        if self._deferred:
            self._served[destination] = self._served.get(destination, 0) + size
            if len(self._served) > SERVED_MAX:  # callers come and go during a long deferral
                self._served = {s: n for s, n in self._served.items() if s in self._calls_per}

    async def _run_deferred(self) -> None:
        """Dispatch deferred calls one at a time, each once the reply queue is below the
        high-water mark: next the caller whose replies took the fewest bytes since the
        deferral began, the first deferred among equals — fair by bytes, so a caller of
        small calls is not held up by one whose every reply is megabytes (a
        ``GetManagedObjects`` flood) for more than the reply being written."""
        while self._deferred:
            writer = self.writer
            if writer is not None and writer.pending_bytes > WRITE_HIGH_WATER:
                await writer.drained()
                continue
            served = self._served
            sender = min(self._deferred, key=lambda s: served.get(s, 0))
            queue = self._deferred.pop(sender)
            msg = queue.popleft()
            if queue:
                self._deferred[sender] = queue  # behind the others with as few bytes
            if self.bus is None or not self.bus.connected:
                continue
            self._redispatch = (msg.sender or "", msg.serial)
            try:
                self.bus._process_message(msg)
            except Exception:
                log.exception("dispatching a deferred call failed")
            finally:
                self._redispatch = None
            await asyncio.sleep(0)
        self._served.clear()  # the next deferral starts even

    # --- methods: how many run at once --------------------------------------------------

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


def _error_for(msg: Message, name: str, text: str) -> Message:
    """An error in place of reply *msg* (same destination and reply serial)."""
    return Message(message_type=MessageType.ERROR, destination=msg.destination,
                   reply_serial=msg.reply_serial, serial=msg.serial,
                   error_name=name, signature="s", body=[text])


_unsendable = RateLimitedLog(log)


def _log_unsendable(msg: Message, e: Exception) -> None:
    """One short line: which message, and the exception's class (no traceback, no value)."""
    what = f"{msg.message_type.name} {msg.member or msg.error_name or ''}".strip()
    _unsendable.warning("cannot encode a %s to %s: %s: %s", what, quote(msg.destination or "-"),
                        type(e).__name__, quote(str(e), 120))


def _marshals_utf8_lengths() -> bool:
    """False for dbus-fast's marshallers that write a string's length in characters
    instead of bytes (1.84.2, Debian bookworm): any non-ASCII ``str`` then makes a
    malformed message, and the bus drops the connection that sent it."""
    msg = Message(message_type=MessageType.SIGNAL, path="/", interface="a.b", member="C",
                  signature="s", body=["\u00e9"])
    return b"\x02\x00\x00\x00\xc3\xa9\x00" in msg._marshall(False)


def _ascii_body(value: Any) -> Any:
    """*value* with every non-ASCII character of every string written as the ``\\xNN``
    escapes of its UTF-8 bytes (as nvmemd prints names that are not UTF-8)."""
    if isinstance(value, str):
        if value.isascii():
            return value
        return value.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
    if isinstance(value, list):
        return [_ascii_body(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_ascii_body(v) for v in value)
    if isinstance(value, dict):
        return {_ascii_body(k): _ascii_body(v) for k, v in value.items()}
    if isinstance(value, Variant):
        return Variant(value.signature, _ascii_body(value.value))
    return value


def _with_ascii_strings(msg: Message) -> Message:
    """*msg* with ASCII-only strings, for marshallers that count characters (1.84.2):
    names from media stay readable and lossless (their raw bytes are published as ``ay``
    too, e.g. ``Cell.NameBytes``), and the message stays well-formed."""
    return Message(destination=msg.destination, path=msg.path, interface=msg.interface,
                   member=msg.member, message_type=msg.message_type, flags=msg.flags,
                   error_name=msg.error_name, reply_serial=msg.reply_serial,
                   sender=msg.sender, unix_fds=msg.unix_fds, signature=msg.signature,
                   body=_ascii_body(msg.body), serial=msg.serial)


def _all_ascii(value: Any) -> bool:
    """Whether every string in a message body is ASCII (for the marshallers above)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not v.isascii():
                return False
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, Variant):
            stack.append(v.value)
    return True


#: Whether this dbus-fast marshals string lengths in bytes (:func:`_marshals_utf8_lengths`),
#: found out on first use.
_utf8_lengths: bool | None = None


def _marshaller_counts_bytes() -> bool:
    global _utf8_lengths
    if _utf8_lengths is None:
        _utf8_lengths = _marshals_utf8_lengths()
    return _utf8_lengths


def _body_bytes(signature: str, body: list[Any]) -> bytes:
    """The marshalled body of a message with *signature* and *body*, as it starts at an
    8-aligned offset (where every message body starts)."""
    if not _marshaller_counts_bytes() and not _all_ascii(body):
        body = _ascii_body(body)  # lossless \xNN escapes, as for every message (see there)
    buf = Message(message_type=MessageType.METHOD_RETURN, reply_serial=1, signature=signature,
                  body=body)._marshall(False)
    (length,) = struct.unpack_from("<I", buf, 4)
    return bytes(buf[len(buf) - length:])


def marshal_elements(element: str, values: list[Any]) -> bytes:
    """The elements of an array of *element* (a struct or dict entry signature, 8-aligned)
    marshalled without the array's length: placed at an 8-aligned offset of a message
    body they are the bytes dbus-fast writes there, so an array can be built slice by slice
    (:class:`ArrayBodyBuilder`).  A dict entry ``{kv}`` is marshalled as the struct
    ``(kv)``, whose layout is the same."""
    if element[0] not in "({":
        raise ValueError(f"{element!r}: not an 8-aligned element")
    struct_sig = "(" + element[1:-1] + ")"
    return _body_bytes("a" + struct_sig, [values])[8:]  # length, padding to 8


class ArrayBodyBuilder:
    """The body of a message whose signature is one array of 8-aligned elements, from
    slices of elements (:func:`marshal_elements`), in one buffer that grows by the slices:
    byte for byte what dbus-fast marshals for the whole array at once."""

    def __init__(self, element: str) -> None:
        self.element = element
        self._buf = bytearray(8)  # the array's length, padding to the first element

    def add(self, values: list[Any]) -> None:
        if not values:
            return
        self._buf.extend(b"\0" * (-len(self._buf) % 8))
        self._buf.extend(marshal_elements(self.element, values))

    def __len__(self) -> int:
        return len(self._buf)

    def finish(self) -> memoryview:
        """The body (read-only; the builder is done)."""
        struct.pack_into("<I", self._buf, 0, len(self._buf) - 8)
        return memoryview(self._buf).toreadonly()


class PremarshalledReply(Message):
    """A method return whose body is marshalled already (a cached GetManagedObjects body,
    nvmemd.dbus.managed): only the header is marshalled for each reply, and the safe
    writer queues the body itself, shared by every reply, without a copy."""

    def __init__(self, call: Message, signature: str, body: bytes | memoryview) -> None:
        from .wire import split_signature

        if not signature.startswith("a") or len(split_signature(signature)) != 1:
            raise ValueError(f"{signature!r}: one array only")
        empty: Any = {} if signature.startswith("a{") else []
        super().__init__(message_type=MessageType.METHOD_RETURN, reply_serial=call.serial,
                         destination=call.sender, signature=signature, body=[empty])
        self.marshalled_body = body

    def header(self, negotiate_unix_fd: bool) -> bytes:
        """The header of this reply (padded to 8), with the body length of the real body."""
        empty = super()._marshall(negotiate_unix_fd)  # the header and an empty array
        (empty_len,) = struct.unpack_from("<I", empty, 4)
        head = bytearray(empty[:len(empty) - empty_len])
        struct.pack_into("<I", head, 4, len(self.marshalled_body))
        return bytes(head)

    def _marshall(self, negotiate_unix_fd: bool) -> bytearray:
        """The whole message (dbus-fast's own writer, when the safe writer is not installed)."""
        return bytearray(self.header(negotiate_unix_fd)) + self.marshalled_body


def _safe_writer_class(base: Any, limiter: CallLimiter) -> type:
    utf8_lengths = _marshaller_counts_bytes()

    class SafeWriter(base):  # type: ignore[misc]
        """dbus-fast's writer, patient with a full socket (see the module docstring)."""

        buf: memoryview | None
        key: CallKey | None = None
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
            reply = msg.message_type in (MessageType.METHOD_RETURN, MessageType.ERROR)
            key = (msg.destination or "", msg.reply_serial) if reply else None
            if isinstance(msg, PremarshalledReply):
                # The header, then the shared body (no copy): nothing is queued between
                # them, and the call counts until the body is written.
                head = msg.header(self.negotiate_unix_fd)
                size = len(head) + len(msg.marshalled_body)
                if size <= MAX_REPLY_BYTES:
                    self.messages.append((head, None, None, None))
                    self.messages.append((msg.marshalled_body, None, future, key))
                    self.pending_bytes += size
                    limiter.queued_reply(msg.destination or "", size)
                    return
            fds = list(msg.unix_fds) if msg.unix_fds else None
            try:
                if not utf8_lengths and not _all_ascii(msg.body):
                    msg = _with_ascii_strings(msg)  # lossless \xNN escapes (see there)
                buf = msg._marshall(self.negotiate_unix_fd)
            except Exception as e:
                _log_unsendable(msg, e)
                if msg.message_type is MessageType.METHOD_CALL:
                    raise  # nvmemd's own call (credentials, polkit): its caller sees it
                if not reply:  # a signal: dropped
                    if future is not None and not future.done():
                        future.set_result(None)
                    return
                buf = _error_for(msg, ERROR_FAILED, "the reply could not be encoded")._marshall(
                    self.negotiate_unix_fd)
                fds = None
            if len(buf) > MAX_REPLY_BYTES:
                what = f"{msg.message_type.name} {msg.member or ''}".strip()
                log.warning("not sending a %s of %d bytes (limit %d)", what, len(buf),
                            MAX_REPLY_BYTES)
                if not reply:
                    if future is not None and not future.done():
                        future.set_result(None)
                    return
                buf = _error_for(msg, ERROR_LIMITS_EXCEEDED,
                                 f"the reply would be {len(buf)} bytes, over the limit "
                                 f"of {MAX_REPLY_BYTES} bytes")._marshall(self.negotiate_unix_fd)
                fds = None
            self.messages.append((buf, fds, future, key))
            self.pending_bytes += len(buf)
            if key is not None:
                limiter.queued_reply(key[0], len(buf))

        def write_callback(self, remove_writer: bool = True) -> None:
            sock = self.sock
            try:
                while True:
                    if self.buf is None:
                        if not self.messages:
                            if remove_writer:
                                self.loop.remove_writer(self.fd)
                            return
                        buf, unix_fds, fut, key = self.messages.popleft()
                        self.unix_fds = unix_fds
                        self.buf = memoryview(buf)
                        self.offset = 0
                        self.fut = fut
                        self.key = key
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
                    limiter.release(self.key)
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
    """Give *bus*'s dbus-fast writer the safe write path and put *limiter*'s gate
    first among its message handlers; False (and a warning) if the writer does not fit."""
    writer = getattr(bus, "_writer", None)
    if writer is None or not all(hasattr(writer, a) for a in _WRITER_ATTRS) \
            or not hasattr(writer.messages, "popleft") \
            or not callable(getattr(bus, "_process_message", None)) \
            or not isinstance(getattr(bus, "_user_message_handlers", None), list):
        log.warning("dbus-fast %s: unknown message writer, keeping its write path "
                    "(a full socket will drop the bus connection)", dbus_fast_version())
        return False
    if type(writer).__name__ != "SafeWriter":
        writer.__class__ = _safe_writer_class(type(writer), limiter)
        writer.messages = collections.deque((*m[:3], None) for m in writer.messages)
        writer.pending_bytes = sum(len(m[0]) for m in writer.messages)
    limiter.writer = writer
    limiter.bus = bus
    handlers: list[Any] = bus._user_message_handlers
    if limiter.gate not in handlers:
        handlers.insert(0, limiter.gate)
    return True


def dbus_fast_version() -> str:
    try:
        from importlib.metadata import version

        return version("dbus-fast")
    except Exception:
        return "?"


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


async def connect(bus: Any) -> Any:
    """Connect *bus* (a dbus-fast ``MessageBus``) the way nvmemd's connection must be:
    a full socket makes replies wait instead of dropping the bus (:func:`install_safe_writer`,
    whose gate is the first message handler), and ``Peer.GetMachineId`` is answered by
    nvmemd rather than refused with the bus's internals (:func:`answer_machine_id`)."""
    await bus.connect()
    install_safe_writer(bus)
    bus.add_message_handler(answer_machine_id)
    return bus
