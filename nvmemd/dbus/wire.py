"""A minimal blocking D-Bus connection, standard library only.

Why not dbus-fast: ``import dbus_fast.aio`` alone costs about seven times the
start-up of Python, and ``nvmemd-query get`` over the bus has to stay within
four (issue 12).  A blocking client that calls a few methods needs little:
a unix socket, SASL ``EXTERNAL``, ``Hello``, method calls and their replies,
signals for waiting, and little-endian marshalling of the signatures the
nvmemd API uses (``y b n q i u x t d s o g a ( { v``; no unix fds).

Everything a peer sends is bounded before it is believed: message and array
lengths, nesting depth, string contents (valid UTF-8, no NUL), so a hostile
or broken bus cannot make a client allocate without limit or loop.
"""

from __future__ import annotations

import os
import socket
import struct
import time

from ..errors import NvmemError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up, issue 12)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, Final

#: A message may be up to 128 MiB (the specification's limit); nvmemd's
#: replies are far smaller, so a client refuses more than this.
MAX_MESSAGE: Final = 32 * 1024 * 1024
#: The specification's limit for one array.
MAX_ARRAY: Final = 64 * 1024 * 1024
#: 32 levels of arrays plus 32 of structs, as the specification allows.
MAX_DEPTH: Final = 64
DEFAULT_TIMEOUT: Final = 25.0  # libdbus's and sd-bus's default method-call timeout

SYSTEM_BUS_DEFAULT: Final = "unix:path=/run/dbus/system_bus_socket"
DBUS_NAME: Final = "org.freedesktop.DBus"
DBUS_PATH: Final = "/org/freedesktop/DBus"

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED: Final = 0x1
ALLOW_INTERACTIVE_AUTHORIZATION: Final = 0x4

# header field codes
_PATH, _INTERFACE, _MEMBER, _ERROR_NAME, _REPLY_SERIAL, _DESTINATION, _SENDER, _SIGNATURE = (
    1, 2, 3, 4, 5, 6, 7, 8)
_FIELD_SIGNATURES: Final = {_PATH: "o", _INTERFACE: "s", _MEMBER: "s", _ERROR_NAME: "s",
                            _REPLY_SERIAL: "u", _DESTINATION: "s", _SENDER: "s",
                            _SIGNATURE: "g"}

_FIXED: Final = {"y": ("B", 1), "b": ("I", 4), "n": ("h", 2), "q": ("H", 2), "i": ("i", 4),
                 "u": ("I", 4), "x": ("q", 8), "t": ("Q", 8), "d": ("d", 8)}
_ALIGN: Final = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8,
                 "s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1}


class WireError(NvmemError):
    """The bus cannot be reached, or it sent something that is not D-Bus."""


class AddressError(WireError):
    """A bus address with no ``unix:path=``/``unix:abstract=`` part this client can use."""


class DBusErrorReply(NvmemError):
    """An error reply: *name* (``org.freedesktop.DBus.Error.…``) and its message."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(f"{name}: {message}")


# Plain classes, not dataclasses: ``import dataclasses`` (and inspect with it) would
# cost a blocking client about as much as the rest of its start-up (issue 12).


class Variant:
    """A value to send as ``v``: its signature and the value."""

    __slots__ = ("signature", "value")

    def __init__(self, signature: str, value: Any) -> None:
        self.signature = signature
        self.value = value

    def __repr__(self) -> str:
        return f"Variant(signature={self.signature!r}, value={self.value!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Variant):
            return NotImplemented
        return (self.signature, self.value) == (other.signature, other.value)

    def __hash__(self) -> int:
        return hash((self.signature, self.value))


_MESSAGE_FIELDS: Final = ("type", "serial", "flags", "path", "interface", "member",
                          "error_name", "reply_serial", "destination", "sender", "signature",
                          "body")


class Message:
    __slots__ = _MESSAGE_FIELDS

    def __init__(self, type: int, serial: int = 0, flags: int = 0,
                 path: str | None = None, interface: str | None = None,
                 member: str | None = None, error_name: str | None = None,
                 reply_serial: int | None = None, destination: str | None = None,
                 sender: str | None = None, signature: str = "",
                 body: list[Any] | None = None) -> None:
        self.type = type
        self.serial = serial
        self.flags = flags
        self.path = path
        self.interface = interface
        self.member = member
        self.error_name = error_name
        self.reply_serial = reply_serial
        self.destination = destination
        self.sender = sender
        self.signature = signature
        self.body: list[Any] = [] if body is None else body

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in _MESSAGE_FIELDS)
        return f"Message({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in _MESSAGE_FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was


# --- signatures ------------------------------------------------------------------------


def split_signature(sig: str) -> list[str]:
    """The complete types of a signature, e.g. ``"sa{sv}(ii)"`` → ``["s", "a{sv}", "(ii)"]``."""
    out: list[str] = []
    i = 0
    while i < len(sig):
        end = _type_end(sig, i, 0)
        out.append(sig[i:end])
        i = end
    return out


def _type_end(sig: str, i: int, depth: int) -> int:
    if depth > MAX_DEPTH:
        raise WireError("signature nests too deeply")
    if i >= len(sig):
        raise WireError(f"incomplete signature {sig!r}")
    c = sig[i]
    if c in _FIXED or c in "sogv":
        return i + 1
    if c == "a":
        return _type_end(sig, i + 1, depth + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        j = i + 1
        while j < len(sig) and sig[j] != close:
            j = _type_end(sig, j, depth + 1)
        if j >= len(sig) or j == i + 1:
            raise WireError(f"bad signature {sig!r}")
        return j + 1
    raise WireError(f"unsupported type {c!r} in signature {sig!r}")


# --- marshalling -------------------------------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def align(self, n: int) -> None:
        self.buf.extend(b"\0" * (-len(self.buf) % n))

    def write(self, sig: str, value: Any) -> None:
        c = sig[0]
        self.align(_ALIGN[c])
        if c in _FIXED:
            fmt, _ = _FIXED[c]
            self.buf.extend(struct.pack("<" + fmt, int(value) if c != "d" else float(value)))
        elif c in "so":
            data = str(value).encode("utf-8")
            self.buf.extend(struct.pack("<I", len(data)) + data + b"\0")
        elif c == "g":
            data = str(value).encode("ascii")
            self.buf.extend(bytes([len(data)]) + data + b"\0")
        elif c == "v":
            if not isinstance(value, Variant):
                raise TypeError("a 'v' value must be a wire.Variant")
            self.write("g", value.signature)
            self.write(value.signature, value.value)
        elif c == "a":
            self._array(sig[1:], value)
        elif c == "(":
            self._fields(sig[1:-1], value)
        else:
            raise TypeError(f"cannot marshal {sig!r}")

    def _fields(self, inner: str, values: Any) -> None:
        types = split_signature(inner)
        if len(types) != len(values):
            raise TypeError(f"struct ({inner}) needs {len(types)} values")
        for t, v in zip(types, values, strict=True):
            self.write(t, v)

    def _array(self, elem: str, value: Any) -> None:
        pos = len(self.buf)
        self.buf.extend(b"\0\0\0\0")
        self.align(_ALIGN[elem[0]])
        start = len(self.buf)
        if elem == "y":
            self.buf.extend(bytes(value))
        elif elem[0] == "{":
            key, val = split_signature(elem[1:-1])
            for k, v in dict(value).items():
                self.align(8)
                self.write(key, k)
                self.write(val, v)
        else:
            for v in value:
                self.write(elem, v)
        struct.pack_into("<I", self.buf, pos, len(self.buf) - start)


def marshal_body(signature: str, body: list[Any]) -> bytes:
    w = _Writer()
    types = split_signature(signature)
    if len(types) != len(body):
        raise TypeError(f"signature {signature!r} needs {len(types)} values, got {len(body)}")
    for t, v in zip(types, body, strict=True):
        w.write(t, v)
    return bytes(w.buf)


def marshal(msg: Message) -> bytes:
    body = marshal_body(msg.signature, msg.body)
    fields: list[tuple[int, Variant]] = []
    for code, value in ((_PATH, msg.path), (_INTERFACE, msg.interface), (_MEMBER, msg.member),
                        (_ERROR_NAME, msg.error_name), (_REPLY_SERIAL, msg.reply_serial),
                        (_DESTINATION, msg.destination), (_SIGNATURE, msg.signature or None)):
        if value is not None:
            fields.append((code, Variant(_FIELD_SIGNATURES[code], value)))
    w = _Writer()
    w.buf.extend(struct.pack("<cBBBII", b"l", msg.type, msg.flags, 1, len(body), msg.serial))
    w.write("a(yv)", fields)
    w.align(8)
    return bytes(w.buf) + body


# --- unmarshalling -----------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, little: bool) -> None:
        self.data = data
        self.pos = 0
        self.e = "<" if little else ">"

    def align(self, n: int) -> None:
        pad = -self.pos % n
        if self.pos + pad > len(self.data) or any(self.data[self.pos:self.pos + pad]):
            raise WireError("bad padding")
        self.pos += pad

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError("message truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def read(self, sig: str, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("value nests too deeply")
        c = sig[0]
        self.align(_ALIGN[c])
        if c in _FIXED:
            fmt, size = _FIXED[c]
            (value,) = struct.unpack(self.e + fmt, self.take(size))
            if c == "b":
                if value > 1:
                    raise WireError("boolean out of range")
                return bool(value)
            return value
        if c in "so":
            (n,) = struct.unpack(self.e + "I", self.take(4))
            return self._text(n)
        if c == "g":
            return self._text(self.take(1)[0])
        if c == "v":
            inner = self._text(self.take(1)[0])
            types = split_signature(inner)
            if len(types) != 1:
                raise WireError("variant with more than one type")
            return self.read(inner, depth + 1)
        if c == "a":
            return self._array(sig[1:], depth)
        if c == "(":
            return tuple(self.read(t, depth + 1) for t in split_signature(sig[1:-1]))
        raise WireError(f"cannot unmarshal {sig!r}")

    def _text(self, n: int) -> str:
        raw = self.take(n)
        if self.take(1) != b"\0" or b"\0" in raw:
            raise WireError("bad string")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("string is not UTF-8") from None

    def _array(self, elem: str, depth: int) -> Any:
        (n,) = struct.unpack(self.e + "I", self.take(4))
        if n > MAX_ARRAY:
            raise WireError("array too long")
        self.align(_ALIGN[elem[0]])
        end = self.pos + n
        if end > len(self.data):
            raise WireError("message truncated")
        if elem == "y":
            return self.take(n)
        if elem[0] == "{":
            key, val = split_signature(elem[1:-1])
            out: dict[Any, Any] = {}
            while self.pos < end:
                self.align(8)
                k = self.read(key, depth + 1)
                out[k] = self.read(val, depth + 1)
            return out
        items = []
        while self.pos < end:
            items.append(self.read(elem, depth + 1))
        if self.pos != end:
            raise WireError("array length mismatch")
        return items


def _header_size(head: bytes) -> tuple[bool, int, int]:
    """(little-endian, header length with padding, body length) from the first 16 bytes."""
    if head[0:1] not in (b"l", b"B"):
        raise WireError("bad endianness byte")
    little = head[0:1] == b"l"
    e = "<" if little else ">"
    body_len, _serial, fields_len = struct.unpack(e + "III", head[4:16])
    if body_len > MAX_MESSAGE or fields_len > MAX_MESSAGE:
        raise WireError("message too large")
    header_len = 16 + fields_len + (-(16 + fields_len) % 8)
    if header_len + body_len > MAX_MESSAGE:
        raise WireError("message too large")
    return little, header_len, body_len


def unmarshal(data: bytes) -> Message:
    little, header_len, body_len = _header_size(data[:16])
    r = _Reader(data[:header_len], little)
    r.take(4)
    _, serial = struct.unpack(r.e + "II", r.take(8))
    fields = r.read("a(yv)")
    msg = Message(type=data[1], flags=data[2], serial=serial)
    for code, value in fields:
        if code == _PATH:
            msg.path = value
        elif code == _INTERFACE:
            msg.interface = value
        elif code == _MEMBER:
            msg.member = value
        elif code == _ERROR_NAME:
            msg.error_name = value
        elif code == _REPLY_SERIAL:
            msg.reply_serial = value
        elif code == _DESTINATION:
            msg.destination = value
        elif code == _SENDER:
            msg.sender = value
        elif code == _SIGNATURE:
            msg.signature = value
    body = _Reader(data[header_len:header_len + body_len], little)
    msg.body = [body.read(t) for t in split_signature(msg.signature)]
    if body.pos != body_len:
        raise WireError("trailing bytes after the body")
    return msg


# --- the connection ----------------------------------------------------------------------


def _socket_addresses(address: str) -> Iterator[str | bytes]:
    for part in address.split(";"):
        kind, _, params = part.partition(":")
        keys = dict(p.split("=", 1) for p in params.split(",") if "=" in p)
        if kind == "unix" and "path" in keys:
            yield _unescape(keys["path"])
        elif kind == "unix" and "abstract" in keys:
            yield b"\0" + _unescape(keys["abstract"]).encode()


def _unescape(value: str) -> str:
    out, i = bytearray(), 0
    raw = value.encode()
    while i < len(raw):
        if raw[i] == ord("%") and i + 2 < len(raw):
            try:
                out.append(int(raw[i + 1:i + 3], 16))
            except ValueError:
                raise AddressError(f"bad %-escape in bus address value {value!r}") from None
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode()


def bus_address(address: str | None = None, session: bool = False) -> str:
    """*address*, else the session or system bus address of the environment."""
    if address:
        return address
    if session:
        env = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if env:
            return env
        runtime = os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
        return f"unix:path={runtime}/bus"
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS_DEFAULT


class Connection:
    """One blocking connection: method calls in order, signals queued for :meth:`wait_signal`."""

    def __init__(self, address: str | None = None, session: bool = False,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._serial = 0
        self._signals: list[Message] = []
        self._buf = bytearray()
        addr = bus_address(address, session)
        targets = list(_socket_addresses(addr))
        if not targets:
            raise AddressError(f"{addr!r} is not a D-Bus address this client can use "
                               "(unix:path=FILE or unix:abstract=NAME)")
        last: OSError | None = None
        for target in targets:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            sock.settimeout(timeout)
            try:
                sock.connect(target)
            except OSError as e:
                sock.close()
                last = e
                continue
            self._sock = sock
            break
        else:
            reason = last.strerror if last is not None and last.strerror else last
            raise WireError(f"cannot connect to {addr}: {reason}")
        try:
            self._authenticate()
            (self.unique_name,) = self.call(DBUS_NAME, DBUS_PATH, DBUS_NAME, "Hello")
        except BaseException:
            self._sock.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _authenticate(self) -> None:
        uid = str(os.geteuid()).encode().hex()
        self._sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        line = self._read_line()
        if not line.startswith(b"OK "):
            raise WireError("the bus refused authentication")
        self._sock.sendall(b"BEGIN\r\n")

    def _read_line(self) -> bytes:
        while b"\r\n" not in self._buf:
            if len(self._buf) > 4096:
                raise WireError("authentication line too long")
            self._fill()
        line, _, rest = bytes(self._buf).partition(b"\r\n")
        self._buf = bytearray(rest)
        return line

    def _fill(self, deadline: float | None = None) -> None:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise
        except OSError as e:
            raise WireError(f"bus connection failed: {e}") from None
        finally:
            self._sock.settimeout(self.timeout)
        if not chunk:
            raise WireError("the bus closed the connection")
        self._buf.extend(chunk)

    def _receive(self, deadline: float) -> Message:
        while len(self._buf) < 16:
            self._fill(deadline)
        _, header_len, body_len = _header_size(bytes(self._buf[:16]))
        total = header_len + body_len
        while len(self._buf) < total:
            self._fill(deadline)
        data = bytes(self._buf[:total])
        del self._buf[:total]
        return unmarshal(data)

    def send(self, msg: Message) -> int:
        self._serial += 1
        msg.serial = self._serial
        self._sock.sendall(marshal(msg))
        return msg.serial

    def call(self, destination: str, path: str, interface: str, member: str,
             signature: str = "", body: list[Any] | None = None, flags: int = 0,
             timeout: float | None = None) -> list[Any]:
        """Call a method and return the reply's body; an error reply raises DBusErrorReply."""
        serial = self.send(Message(METHOD_CALL, flags=flags, path=path, interface=interface,
                                   member=member, destination=destination,
                                   signature=signature, body=list(body or [])))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                reply = self._receive(deadline)
            except TimeoutError:
                raise WireError(f"no reply to {interface}.{member} within the timeout") from None
            if reply.type == SIGNAL:
                self._signals.append(reply)
                continue
            if reply.reply_serial != serial:
                continue  # a late reply to an earlier call that timed out
            if reply.type == ERROR:
                text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
                raise DBusErrorReply(reply.error_name or "", text)
            return reply.body

    def wait_signal(self, accept: Callable[[Message], bool], timeout: float) -> Message | None:
        """The first queued or incoming signal *accept* takes, or None after *timeout*."""
        deadline = time.monotonic() + timeout
        while True:
            while self._signals:
                sig = self._signals.pop(0)
                if accept(sig):
                    return sig
            try:
                msg = self._receive(deadline)
            except TimeoutError:
                return None
            if msg.type == SIGNAL:
                self._signals.append(msg)
