"""A Python client of nvmemd's D-Bus API (``org.nvmemd.Nvmem1``).

::

    from nvmemd.client import Client

    with Client() as nvmem:                      # the system bus
        serial = nvmem.read_cell("serial-number").rstrip(b"\\0").decode()
        mac = nvmem.read_netdev_cell("eth0", "mac-address").hex(":")

:class:`Client` is blocking and imports nothing beyond the standard library
(:mod:`nvmemd.dbus.wire`), so a command-line tool using it starts fast.
:class:`AsyncClient` has the same methods as coroutines, on dbus-fast.

Errors raise nvmemd's exception classes (:mod:`nvmemd.errors`):
NotFoundError, InvalidArgumentError (AmbiguousError's message lists the
candidates), AccessDeniedError, ProviderGoneError, ProviderIOError;
:class:`NotRunningError` when nvmemd is not on the bus.
"""

from __future__ import annotations

import time

from .dbus.names import (
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
from .errors import AccessDeniedError, InvalidArgumentError, NvmemError, ProviderGoneError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up, issue 12)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Final

    from .dbus.objects import Cell, Provider

    Objects = dict[str, dict[str, dict[str, Any]]]

__all__ = ["AsyncClient", "Cell", "Client", "NotRunningError", "Provider"]


_DBUS: Final = "org.freedesktop.DBus"
#: Errors of a call to an object that went away between listing and calling.
_VANISHED: Final = frozenset({
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownInterface",
})
_ADDED_RULE: Final = (f"type='signal',sender='{BUS_NAME}',path='{ROOT_PATH}',"
                      f"interface='{OBJECT_MANAGER_IFACE}',member='InterfacesAdded'")


class NotRunningError(NvmemError):
    """nvmemd does not own its name on the bus that was asked for, or there is no bus."""


def _error(name: str, message: str) -> NvmemError:
    if name in _VANISHED:
        return ProviderGoneError("the object is gone")
    if name == "org.freedesktop.DBus.Error.ServiceUnknown":
        return NotRunningError(f"nvmemd ({BUS_NAME}) is not running on that bus")
    return error_for_name(name, message)


def __getattr__(name: str) -> object:
    """``Provider`` and ``Cell`` (nvmemd.dbus.objects), loaded on first use."""
    if name in ("Provider", "Cell"):
        from .dbus import objects

        return getattr(objects, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Api:
    """The API over any transport: *call* returns a reply body; plain or awaitable."""

    @staticmethod
    def providers(objects: Objects) -> list[Provider]:
        from .dbus.objects import Provider

        found = [Provider.from_properties(path, ifaces[PROVIDER_IFACE])
                 for path, ifaces in objects.items() if PROVIDER_IFACE in ifaces]
        return sorted(found, key=lambda p: p.name)

    @staticmethod
    def cells(objects: Objects, provider: str | None) -> list[Cell]:
        from .dbus.objects import Cell

        out = []
        for p in _Api.providers(objects):
            if provider is not None and p.name != provider:
                continue
            for path in p.cells:
                props = objects.get(path, {}).get(CELL_IFACE)
                if props is not None:
                    out.append(Cell.from_properties(path, props, p.name))
        return out


def _unwrap(objects: Any) -> Objects:
    return {str(path): {str(i): dict(props) for i, props in ifaces.items()}
            for path, ifaces in dict(objects).items()}


class Client:
    """A blocking connection to nvmemd.

    *address* is a D-Bus address (``unix:path=…``); without it the system
    bus, or the session bus with *session*.  *interactive* lets polkit ask
    the user for a password (ALLOW_INTERACTIVE_AUTHORIZATION) when reading a
    root-only provider.  Raises :class:`NotRunningError` when there is no bus.
    """

    def __init__(self, address: str | None = None, session: bool = False, *,
                 interactive: bool = False, timeout: float = 25.0) -> None:
        from .dbus import wire

        self._wire = wire
        self._flags = wire.ALLOW_INTERACTIVE_AUTHORIZATION if interactive else 0
        try:
            self._conn = wire.Connection(address, session, timeout)
        except wire.AddressError as e:
            raise InvalidArgumentError(str(e)) from None
        except (wire.WireError, OSError) as e:
            raise NotRunningError(f"cannot connect to the bus: {e}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------------------

    def _call(self, path: str, interface: str, member: str, signature: str = "",
              body: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn.call(BUS_NAME, path, interface, member, signature, list(body),
                                   flags=self._flags)
        except self._wire.DBusErrorReply as e:
            raise _error(e.name, e.message) from None
        except self._wire.WireError as e:
            raise NotRunningError(str(e)) from None

    def _manager(self, member: str, signature: str = "", body: Sequence[Any] = ()) -> list[Any]:
        return self._call(ROOT_PATH, MANAGER_IFACE, member, signature, body)

    def _property(self, path: str, interface: str, name: str) -> Any:
        (value,) = self._call(path, PROPERTIES_IFACE, "Get", "ss", [interface, name])
        return value

    def is_running(self) -> bool:
        """Whether nvmemd owns ``org.nvmemd.Nvmem1`` on this bus."""
        (owned,) = self._conn.call(_DBUS, "/org/freedesktop/DBus", _DBUS, "NameHasOwner", "s",
                                   [BUS_NAME])
        return bool(owned)

    def managed_objects(self) -> Objects:
        """``GetManagedObjects()``: path → interface → property → plain value."""
        (objects,) = self._call(ROOT_PATH, OBJECT_MANAGER_IFACE, "GetManagedObjects")
        return _unwrap(objects)

    # --- listing ------------------------------------------------------------------------

    def providers(self) -> list[Provider]:
        """Every provider nvmemd publishes, sorted by name."""
        return _Api.providers(self.managed_objects())

    def cells(self, provider: str | None = None) -> list[Cell]:
        """Every cell (of *provider*), in provider order."""
        if provider is not None:
            self._manager("GetProvider", "s", [provider])  # NotFoundError
        return _Api.cells(self.managed_objects(), provider)

    def provider_path(self, name: str) -> str:
        """The object path of provider *name* (NotFoundError if there is none)."""
        (path,) = self._manager("GetProvider", "s", [name])
        return str(path)

    def find_cells(self, spec: str) -> list[str]:
        """Object paths of every cell *spec* names (empty if none)."""
        (paths,) = self._manager("FindCells", "s", [spec])
        return list(paths)

    def broken_providers(self) -> dict[str, str]:
        """Providers sysfs lists that nvmemd cannot describe: name → error."""
        return dict(self._property(ROOT_PATH, MANAGER_IFACE, "BrokenProviders"))

    # --- values -------------------------------------------------------------------------

    def read_cell(self, spec: str, provider: str | None = None) -> bytes:
        """The value of the one cell *spec* names (name, ``PROVIDER:NAME``, ``NAME@OFF,BIT``,
        DT path or ``&label``), as the kernel's ``cells/`` file returns it."""
        return self.cell_record(spec, provider)[1]

    def read_consumer_cell(self, consumer: str, name: str) -> bytes:
        """What DT node *consumer* (path or ``&label``) reads as its cell *name*."""
        (value,) = self._manager("ReadConsumerCell", "ss", [consumer, name])
        return bytes(value)

    def read_netdev_cell(self, netdev: str, name: str = "mac-address") -> bytes:
        """What network interface *netdev*'s DT node reads as its cell *name*."""
        (value,) = self._manager("ReadNetdevCell", "ss", [netdev, name])
        return bytes(value)

    def read_provider(self, provider: str, offset: int = 0, length: int | None = None
                      ) -> bytes:
        """Raw bytes of *provider* from *offset* (to its end without *length*)."""
        from .dbus.paths import provider_path

        path = provider_path(provider)
        self._manager("GetProvider", "s", [provider])  # NotFoundError
        size = int(self._property(path, PROVIDER_IFACE, "Size"))
        if offset > size:  # the same message as direct mode (Query.dump)
            raise InvalidArgumentError(f"offset {offset:#x} is past the end of {provider} "
                                       f"({size} bytes)")
        end = size if length is None else min(offset + length, size)
        chunks: list[bytes] = []
        pos = offset
        while True:
            n = min(MAX_READ, end - pos)
            (data,) = self._call(path, PROVIDER_IFACE, "Read", "tu", [pos, n])
            chunks.append(bytes(data))
            pos += n
            if pos >= end:
                return b"".join(chunks)

    def identity(self) -> dict[str, Any]:
        """``Manager.GetIdentity()``: the board's serial number, MACs … with their sources."""
        (ident,) = self._manager("GetIdentity")
        return dict(ident)

    def wait_for_cell(self, spec: str, timeout: float) -> bool:
        """True as soon as a cell *spec* names is published, False after *timeout* s."""
        self._conn.call(_DBUS, "/org/freedesktop/DBus", _DBUS, "AddMatch", "s", [_ADDED_RULE])
        deadline = time.monotonic() + timeout
        while True:
            if self.find_cells(spec):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            sig = self._conn.wait_signal(
                lambda m: m.path == ROOT_PATH and m.member == "InterfacesAdded", remaining)
            if sig is None:
                return False

    # --- the records of ``nvmemd-query --json`` -----------------------------------------

    def provider_records(self) -> list[dict[str, Any]]:
        """``providers --json``: one record per provider, broken ones included."""
        import contextlib

        from .dbus.schema import provider_from_wire

        objects = self.managed_objects()
        records = []
        for path, ifaces in objects.items():
            if PROVIDER_IFACE not in ifaces:
                continue
            details = ifaces[PROVIDER_IFACE]["Details"]
            if details.get("root_only"):  # Details is redacted: the full record if allowed
                with contextlib.suppress(AccessDeniedError):
                    (details,) = self._call(path, PROVIDER_IFACE, "GetDetails")
            records.append(provider_from_wire(details))
        records += [{"name": n, "errors": [e], "cells": 0, "rejected": True}
                    for n, e in self.broken_providers().items()]
        return sorted(records, key=lambda r: str(r["name"]))

    def provider_details(self, provider: str) -> dict[str, Any]:
        """``Provider.GetDetails()``: the record with what root-only media hide from
        ``Details`` (AccessDeniedError for callers who may not read them)."""
        from .dbus.schema import provider_from_wire

        path = self.provider_path(provider)
        (details,) = self._call(path, PROVIDER_IFACE, "GetDetails")
        return provider_from_wire(details)

    def cell_records(self, provider: str | None = None) -> list[dict[str, Any]]:
        """``cells --json``: each cell's record with its value (or why it is unreadable)."""
        from .dbus.schema import cell_from_wire

        out = []
        for cell in self.cells(provider):
            (record,) = self._call(cell.path, CELL_IFACE, "ReadRecord")
            out.append(cell_from_wire(record, with_value=True))
        return out

    def cell_record(self, spec: str, provider: str | None = None
                    ) -> tuple[dict[str, Any], bytes]:
        """``get --json``'s record and the value."""
        from .dbus.schema import cell_from_wire

        if not spec:
            raise InvalidArgumentError("empty cell specification")
        record, value = self._manager("ReadCellRecord", "ss", [spec, provider or ""])
        return cell_from_wire(record, with_value=False), bytes(value)

    def consumer_record(self, name: str, consumer: str | None = None,
                        netdev: str | None = None) -> tuple[dict[str, Any], bytes]:
        """``get --consumer NODE`` / ``--netdev IF`` ``--json``: record and value."""
        from .dbus.schema import cell_from_wire

        if netdev is not None:
            record, value = self._manager("ReadNetdevCellRecord", "ss", [netdev, name])
        else:
            record, value = self._manager("ReadConsumerCellRecord", "ss",
                                          [consumer or "", name])
        return cell_from_wire(record, with_value=False), bytes(value)

    def verify(self) -> dict[str, list[str]]:
        checked, skipped, differences, findings = self._manager("Verify")
        return {"checked": list(checked), "skipped": list(skipped),
                "differences": list(differences), "findings": list(findings)}


class AsyncClient:
    """:class:`Client`'s reading methods as coroutines, on dbus-fast.

    ``client = await AsyncClient.connect()``; ``client.disconnect()`` when done.
    """

    def __init__(self, bus: Any) -> None:
        self._bus = bus

    @classmethod
    async def connect(cls, address: str | None = None, session: bool = False) -> AsyncClient:
        from dbus_fast import BusType
        from dbus_fast.aio import MessageBus

        try:
            if address:
                bus = MessageBus(bus_address=address)
            else:
                bus = MessageBus(bus_type=BusType.SESSION if session else BusType.SYSTEM)
            await bus.connect()
        except Exception as e:
            raise NotRunningError(f"cannot connect to the bus: {e}") from None
        return cls(bus)

    def disconnect(self) -> None:
        self._bus.disconnect()

    async def _call(self, path: str, interface: str, member: str, signature: str = "",
                    body: Sequence[Any] = ()) -> list[Any]:
        from dbus_fast import Message, MessageType

        reply = await self._bus.call(Message(destination=BUS_NAME, path=path,
                                             interface=interface, member=member,
                                             signature=signature, body=list(body)))
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise _error(reply.error_name or "", text)
        return [_plain(v) for v in reply.body]

    async def _manager(self, member: str, signature: str = "", body: Sequence[Any] = ()
                       ) -> list[Any]:
        return await self._call(ROOT_PATH, MANAGER_IFACE, member, signature, body)

    async def managed_objects(self) -> Objects:
        (objects,) = await self._call(ROOT_PATH, OBJECT_MANAGER_IFACE, "GetManagedObjects")
        return _unwrap(objects)

    async def providers(self) -> list[Provider]:
        return _Api.providers(await self.managed_objects())

    async def cells(self, provider: str | None = None) -> list[Cell]:
        if provider is not None:
            await self._manager("GetProvider", "s", [provider])
        return _Api.cells(await self.managed_objects(), provider)

    async def find_cells(self, spec: str) -> list[str]:
        (paths,) = await self._manager("FindCells", "s", [spec])
        return list(paths)

    async def read_cell(self, spec: str, provider: str | None = None) -> bytes:
        _record, value = await self._manager("ReadCellRecord", "ss", [spec, provider or ""])
        return bytes(value)

    async def read_consumer_cell(self, consumer: str, name: str) -> bytes:
        (value,) = await self._manager("ReadConsumerCell", "ss", [consumer, name])
        return bytes(value)

    async def read_netdev_cell(self, netdev: str, name: str = "mac-address") -> bytes:
        (value,) = await self._manager("ReadNetdevCell", "ss", [netdev, name])
        return bytes(value)

    async def read_provider(self, provider: str, offset: int, length: int) -> bytes:
        """At most 64 KiB (Provider.Read's limit) of *provider* from *offset*."""
        (path,) = await self._manager("GetProvider", "s", [provider])
        (data,) = await self._call(path, PROVIDER_IFACE, "Read", "tu", [offset, length])
        return bytes(data)

    async def identity(self) -> dict[str, Any]:
        (ident,) = await self._manager("GetIdentity")
        return dict(ident)

    async def wait_for_cell(self, spec: str, timeout: float) -> bool:
        import asyncio

        from dbus_fast import Message, MessageType

        added = asyncio.Event()

        def on_message(msg: Any) -> None:
            if (msg.message_type == MessageType.SIGNAL and msg.path == ROOT_PATH
                    and msg.member == "InterfacesAdded"):
                added.set()

        self._bus.add_message_handler(on_message)
        try:
            await self._bus.call(Message(destination=_DBUS, path="/org/freedesktop/DBus",
                                         interface=_DBUS, member="AddMatch", signature="s",
                                         body=[_ADDED_RULE]))
            deadline = time.monotonic() + timeout
            while True:
                added.clear()
                if await self.find_cells(spec):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(added.wait(), remaining)
                except TimeoutError:
                    return False
        finally:
            self._bus.remove_message_handler(on_message)


def _plain(value: Any) -> Any:
    """dbus-fast Variants unwrapped (what the blocking client returns)."""
    inner = getattr(value, "value", None)
    if inner is not None and hasattr(value, "signature"):
        return _plain(inner)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


