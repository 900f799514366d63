"""The CLI's D-Bus back end: the same records as :mod:`nvmemd.cli.direct`, from nvmemd.

Imported only once the CLI knows that a bus is there (importing dbus-fast
costs several times the start-up of Python).  Every method is synchronous
and runs a private event loop.  D-Bus error replies are mapped back to the
nvmemd exception classes (:data:`nvmemd.dbus_defs.ERROR_MAP`), so exit codes
and messages equal those of direct mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from ..errors import InvalidArgumentError, NvmemError, ProviderGoneError
from ..model import BrokenProvider
from ..records import CellRecord, broken_record
from .names import (
    BUS_NAME,
    CELL_IFACE,
    MANAGER_IFACE,
    MAX_READ,
    OBJECT_MANAGER_IFACE,
    PROPERTIES_IFACE,
    PROVIDER_IFACE,
    ROOT_PATH,
    error_for_name,
)

T = TypeVar("T")

DBUS_NAME = "org.freedesktop.DBus"
#: Errors of a call to an object that went away between listing and calling.
_VANISHED = frozenset({
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownInterface",
})


class NotRunningError(NvmemError):
    """nvmemd does not own its name on the bus that was asked for."""


def _plain(value: Any) -> Any:
    if isinstance(value, Variant):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class DBusBackend:
    def __init__(self, loop: asyncio.AbstractEventLoop, bus: MessageBus) -> None:
        self._loop = loop
        self._bus = bus
        self._changed: asyncio.Event | None = None

    @classmethod
    def connect(cls, address: str | None, session: bool = False,
                require_daemon: bool = True) -> DBusBackend | None:
        """Connect; None when nvmemd is not on the bus (and *require_daemon* is False)."""
        loop = asyncio.new_event_loop()

        async def _connect() -> MessageBus:
            if address:
                bus = MessageBus(bus_address=address)
            else:
                bus = MessageBus(bus_type=BusType.SESSION if session else BusType.SYSTEM)
            return await bus.connect()

        try:
            bus = loop.run_until_complete(_connect())
        except Exception as e:
            loop.close()
            if require_daemon:
                raise NotRunningError(f"cannot connect to the bus: {e}") from None
            return None
        backend = cls(loop, bus)
        (owned,) = backend._call_raw(DBUS_NAME, "/org/freedesktop/DBus", DBUS_NAME,
                                     "NameHasOwner", "s", [BUS_NAME])
        if not owned:
            backend.close()
            if require_daemon:
                raise NotRunningError(f"nvmemd ({BUS_NAME}) is not running on that bus")
            return None
        return backend

    def close(self) -> None:
        self._bus.disconnect()
        self._loop.close()

    # --- plumbing ------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def _call_raw(self, destination: str, path: str, interface: str, member: str,
                  signature: str = "", body: list[Any] | None = None) -> list[Any]:
        reply = self._run(self._bus.call(Message(
            destination=destination, path=path, interface=interface, member=member,
            signature=signature, body=body or [])))
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            name = reply.error_name or ""
            if name in _VANISHED:
                raise ProviderGoneError("the provider is gone")
            raise error_for_name(name, text)
        return [_plain(v) for v in reply.body]

    def _call(self, path: str, interface: str, member: str, signature: str = "",
              body: list[Any] | None = None) -> list[Any]:
        return self._call_raw(BUS_NAME, path, interface, member, signature, body)

    def _manager(self, member: str, signature: str = "", body: list[Any] | None = None
                 ) -> list[Any]:
        return self._call(ROOT_PATH, MANAGER_IFACE, member, signature, body)

    def _objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        (objects,) = self._call(ROOT_PATH, OBJECT_MANAGER_IFACE, "GetManagedObjects")
        return dict(objects)

    def _broken(self) -> dict[str, str]:
        (value,) = self._call(ROOT_PATH, PROPERTIES_IFACE, "Get", "ss",
                              [MANAGER_IFACE, "BrokenProviders"])
        return dict(value)

    def _provider_props(self, provider: str | None,
                        objects: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        if provider is not None:
            (path,) = self._manager("GetProvider", "s", [provider])
            props = objects.get(path, {}).get(PROVIDER_IFACE)
            if props is None:
                raise ProviderGoneError(f"{provider}: provider is gone")
            return [props]
        found = [ifaces[PROVIDER_IFACE] for ifaces in objects.values() if PROVIDER_IFACE in ifaces]
        return sorted(found, key=lambda p: str(p["Name"]))

    # --- the DirectBackend interface -----------------------------------------------------

    def providers(self) -> list[dict[str, Any]]:
        objects = self._objects()
        records: list[dict[str, Any]] = [json.loads(p["Details"])
                                         for p in self._provider_props(None, objects)]
        records += [broken_record(BrokenProvider(n, e)) for n, e in self._broken().items()]
        return sorted(records, key=lambda r: str(r["name"]))

    def cells(self, provider: str | None = None) -> list[CellRecord]:
        objects = self._objects()
        out: list[CellRecord] = []
        for pprops in self._provider_props(provider, objects):
            for path in pprops["Cells"]:
                props = objects.get(path, {}).get(CELL_IFACE)
                if props is None:
                    continue
                (record,) = self._call(path, CELL_IFACE, "ReadRecord")
                out.append(json.loads(record))
        return out

    def errors(self, provider: str | None = None) -> list[str]:
        objects = self._objects()
        errs = [err for p in self._provider_props(provider, objects)
                for err in json.loads(p["Details"])["errors"]]
        if provider is None:
            errs += list(self._broken().values())
        return errs

    def get(self, spec: str, provider: str | None) -> tuple[CellRecord, bytes]:
        if not spec:
            raise InvalidArgumentError("empty cell specification")
        ((record, value),) = self._manager("ReadCellRecord", "ss", [spec, provider or ""])
        return json.loads(record), bytes(value)

    def get_consumer(self, name: str, consumer: str | None = None, netdev: str | None = None
                     ) -> tuple[CellRecord, bytes]:
        ((record, value),) = self._manager("ReadConsumerCellRecord", "sss",
                                           [consumer or "", netdev or "", name])
        return json.loads(record), bytes(value)

    def dump(self, provider: str, offset: int, length: int | None) -> bytes:
        (path,) = self._manager("GetProvider", "s", [provider])
        (size,) = self._call(path, PROPERTIES_IFACE, "Get", "ss", [PROVIDER_IFACE, "Size"])
        if offset > size:  # the same message as DirectBackend.dump
            raise InvalidArgumentError(f"offset {offset:#x} is past the end of {provider} "
                                       f"({size} bytes)")
        end = size if length is None else min(offset + length, size)
        chunks: list[bytes] = []
        pos = offset
        while pos < end or (pos == offset and not chunks):
            n = min(MAX_READ, end - pos)
            (data,) = self._call(path, PROVIDER_IFACE, "Read", "tu", [pos, n])
            chunks.append(bytes(data))
            pos += n
            if n <= 0:
                break
        return b"".join(chunks)

    def verify(self) -> dict[str, list[str]]:
        ((checked, skipped, differences),) = self._manager("Verify")
        return {"checked": list(checked), "skipped": list(skipped),
                "differences": list(differences)}

    def refresh(self, timeout: float) -> None:
        """Wait at most *timeout* s (and 1 s) for a signal of nvmemd (``wait``'s retry)."""
        self._run(self._refresh(timeout))

    async def _refresh(self, timeout: float) -> None:
        if self._changed is None:
            changed = self._changed = asyncio.Event()

            def on_message(msg: Message) -> None:
                if msg.message_type == MessageType.SIGNAL and msg.path and \
                        msg.path.startswith(ROOT_PATH):
                    changed.set()

            self._bus.add_message_handler(on_message)
            rule = f"type='signal',sender='{BUS_NAME}',path_namespace='{ROOT_PATH}'"
            await self._bus.call(Message(destination=DBUS_NAME, path="/org/freedesktop/DBus",
                                         interface=DBUS_NAME, member="AddMatch", signature="s",
                                         body=[rule]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), max(0.0, min(timeout, 1.0)))
        self._changed.clear()
