"""Limits on what callers hand in and what nvmemd hands out; one function per kind of argument.

The daemon's D-Bus methods and ``nvmemd-query`` check every caller-supplied
name, spec and device-tree path here *before* doing any work, so a hostile
argument costs a few comparisons, never a walk of the tree, and its error
message quotes at most :data:`QUOTE_MAX` characters of it.

The bounds follow the kernel where it has one:

- a device-tree node or property name is at most :data:`NAME_MAX` (255) bytes
  (sysfs/kernfs file names, ``NAME_MAX``);
- a device tree is at most :data:`DT_MAX_DEPTH` (64) levels deep
  (``FDT_MAX_DEPTH`` in scripts/dtc/libfdt, ``unflatten_dt_nodes()``);
- a path or spec is at most :data:`PATH_MAX` (4096) bytes (``PATH_MAX``).
"""

from __future__ import annotations

import time

from .errors import InvalidArgumentError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from logging import Logger
    from typing import Final

    from .logs import Log

NAME_MAX: Final = 255
PATH_MAX: Final = 4096
DT_MAX_DEPTH: Final = 64
#: Cell.Read, ReadCellByName, ReadConsumerCell and the record methods refuse
#: cells longer than this (Provider.Read has its own MAX_READ, 64 KiB).
MAX_CELL_READ: Final = 1024 * 1024
#: No D-Bus reply larger than this is sent (the system bus refuses messages
#: over 32 MiB, ``max_message_size``, and drops the sender): an error instead.
MAX_REPLY_BYTES: Final = 30 * 1024 * 1024
#: How much of a bad argument an error message or a log line quotes.
QUOTE_MAX: Final = 64


def quote(text: str, limit: int = QUOTE_MAX) -> str:
    """*text* for a message or a log: repr-escaped and cut to *limit* characters."""
    if len(text) > limit:
        return repr(text[:limit]) + f"… ({len(text)} characters)"
    return repr(text)


def _check_text(text: str, what: str, limit: int) -> bytes:
    if "\0" in text:
        raise InvalidArgumentError(f"invalid {what}: contains a NUL character")
    if len(text) > limit:  # cheap first: a character is at least one byte
        raise InvalidArgumentError(f"invalid {what}: longer than {limit} bytes")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"invalid {what}: not valid UTF-8") from None
    if len(raw) > limit:
        raise InvalidArgumentError(f"invalid {what}: longer than {limit} bytes")
    return raw


def _no_controls(text: str, what: str) -> None:
    if any(ord(c) < 0x20 or c == "\x7f" for c in text):
        raise InvalidArgumentError(f"invalid {what}: contains a control character")


def check_name(name: str, what: str = "name", allow_empty: bool = False) -> str:
    """A single name (provider, cell name, ``nvmem-cell-names`` entry, interface)."""
    if not name:
        if allow_empty:
            return name
        raise InvalidArgumentError(f"invalid {what}: empty")
    _check_text(name, what, NAME_MAX)
    _no_controls(name, what)
    return name


def check_spec(spec: str, what: str = "cell specification") -> str:
    """A cell spec: name, ``PROVIDER:NAME``, sysfs name, DT path or ``&label``."""
    if not spec:
        raise InvalidArgumentError(f"invalid {what}: empty")
    if spec.startswith("/"):
        return check_dt_path(spec, what)  # its text and control-character checks included
    _check_text(spec, what, PATH_MAX)
    for part in spec.split(":", 1):
        if len(part.encode("utf-8")) > NAME_MAX:
            raise InvalidArgumentError(
                f"invalid {what}: a name is longer than {NAME_MAX} bytes")
    _no_controls(spec, what)
    return spec


def check_dt_path(path: str, what: str = "device-tree path") -> str:
    """A device-tree node path (or a ``&label`` / label) as a caller gives it."""
    if not path:
        raise InvalidArgumentError(f"invalid {what}: empty")
    _check_text(path, what, PATH_MAX)
    _no_controls(path, what)
    parts = [p for p in path.split("/") if p]
    if len(parts) > DT_MAX_DEPTH:
        raise InvalidArgumentError(f"invalid {what}: deeper than {DT_MAX_DEPTH} levels")
    for part in parts:
        if len(part.encode("utf-8")) > NAME_MAX:
            raise InvalidArgumentError(
                f"invalid {what}: a node name is longer than {NAME_MAX} bytes")
        if part in (".", ".."):
            raise InvalidArgumentError(f"invalid {what}: '.' and '..' are not node names")
    return path


def check_cell_size(size: int, what: str) -> None:
    """Refuse to read a cell longer than :data:`MAX_CELL_READ`."""
    if size > MAX_CELL_READ:
        raise InvalidArgumentError(
            f"{what}: {size} bytes exceed the limit of {MAX_CELL_READ} bytes per cell read "
            "(read it with Provider.Read, in pieces)")


def check_consumer(value: str) -> None:
    """A consumer: a DT path, or a label (``&label`` or bare)."""
    if value.startswith("/"):
        check_dt_path(value, "consumer node")
    else:
        check_name(value, "consumer label")


def _optional(check: Callable[[str], object]) -> Callable[[str], object]:
    return lambda value: check(value) if value else None


def _name(what: str) -> Callable[[str], object]:
    return lambda value: check_name(value, what)


#: The D-Bus methods' string arguments, by the Python name of the handler:
#: one check per argument, in order (nvmemd.dbus.service applies them before
#: the handler runs).  A handler not listed gets :func:`check_any` on every
#: string argument.
ARGUMENTS: Final[dict[str, tuple[Callable[[str], object], ...]]] = {
    "get_provider": (_name("provider name"),),
    "find_cells": (check_spec,),
    "resolve_cell": (check_spec, _optional(_name("provider name"))),
    "read_cell_record": (check_spec, _optional(_name("provider name"))),
    "read_cell_by_name": (check_spec,),
    "read_consumer_cell": (check_consumer, _name("cell name")),
    "read_consumer_cell_record": (check_consumer, _name("cell name")),
    "read_netdev_cell": (_name("interface name"), _name("cell name")),
    "read_netdev_cell_record": (_name("interface name"), _name("cell name")),
}


def check_any(value: str) -> None:
    """Any other string argument: no NUL, valid UTF-8, at most :data:`PATH_MAX` bytes."""
    _check_text(value, "argument", PATH_MAX)


def check_arguments(handler: str, args: Sequence[object]) -> None:
    """Check the string arguments of D-Bus method *handler* (see :data:`ARGUMENTS`)."""
    checks = ARGUMENTS.get(handler, ())
    for i, value in enumerate(args):
        if not isinstance(value, str):
            continue
        if i < len(checks):
            checks[i](value)
        else:
            check_any(value)


class RateLimitedLog:
    """At most *burst* log lines per *interval* seconds; then one line saying how many
    were suppressed (like the kernel's ``printk_ratelimit``)."""

    def __init__(self, logger: Log | Logger, burst: int = 5, interval: float = 10.0) -> None:
        self.logger = logger
        self.burst = burst
        self.interval = interval
        self._start = -interval
        self._count = 0
        self._suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._start >= self.interval:
            if self._suppressed:
                self.logger.warning("%d similar message(s) suppressed", self._suppressed)
            self._start, self._count, self._suppressed = now, 0, 0
        if self._count < self.burst:
            self._count += 1
            self.logger.warning(msg, *args)
        else:
            self._suppressed += 1
