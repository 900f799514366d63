"""The D-Bus objects of nvmemd: who is calling, what may be read, and the object tree.

Layout (``org.nvmemd.Nvmem1``)::

    /org/nvmemd/Nvmem1                          Manager + ObjectManager
    /org/nvmemd/Nvmem1/providers/<p>            Provider
    /org/nvmemd/Nvmem1/providers/<p>/cells/<c>  Cell

Nothing is exported to dbus-fast.  :meth:`Service.dispatch`, a message handler
that runs before dbus-fast's own dispatch, answers every method call to a path
of the tree the way sd-bus answers for its objects: each object's interfaces
(nvmemd.dbus.interfaces) through a :class:`~nvmemd.dbus.fallback.FallbackInterface`
with a small object as ``self`` (a cell costs one :class:`CellObject`, not an
exported ``ServiceInterface`` of 3.3 KB), ``Introspect`` of every node with
named arguments and annotations (nvmemd.dbus.introspection), ``Properties``,
and ``GetManagedObjects`` on the root only.  Unknown paths answer UnknownObject
(a cell that vanished included), unknown interfaces UnknownInterface, unknown
members UnknownMethod/UnknownProperty, a wrong signature InvalidArgs; only
``org.freedesktop.DBus.Peer`` is left to dbus-fast.

The ObjectManager signals go from the root path, one per object with all its
interfaces, as ``GDBusObjectManagerClient`` expects.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from dbus_fast import Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus

from ..consumers import ConsumerRef
from ..errors import AccessDeniedError, NotFoundError, ProviderGoneError
from ..limits import check_cell_size, check_consumer, check_name
from ..model import CellInfo, ProviderEntry
from ..query import Query, denied
from ..registry import Registry
from .fallback import (
    FallbackInterface,
    error,
    error_reply,
    invalid_signature,
    properties_call,
)
from .flow import LIMITER, expects_reply
from .interfaces import CellInterface, ManagerInterface, ProviderInterface
from .introspection import TRUE, node_xml
from .managed import ManagedObjects
from .names import (
    ERROR_UNKNOWN_INTERFACE,
    ERROR_UNKNOWN_METHOD,
    ERROR_UNKNOWN_OBJECT,
    INTROSPECTABLE_IFACE,
    OBJECT_MANAGER_IFACE,
    PEER_IFACE,
    PROPERTIES_IFACE,
    PROVIDERS_PATH,
    ROOT_PATH,
)
from .paths import cell_path, provider_path
from .polkit import AccessPolicy

log = logging.getLogger(__name__)

#: ``nvmem_type_str[]`` types of SoC-internal providers (fuses, OTP): a small read
#: answers in microseconds, and handing it to a thread costs more than the read
#: (benchmarks/RESULTS.md, D-Bus throughput).  Everything else — EEPROMs on I²C/SPI,
#: RTC NVRAM, FRAM, MTD partitions and what lives on them (U-Boot env) — can take
#: milliseconds, or stall behind a flash erase, so it is read in a worker thread.
INLINE_PROVIDER_TYPES: Final = frozenset({"OTP"})
#: Largest cell read inline on the loop.
INLINE_READ_MAX: Final = 64


def reads_inline(entry: ProviderEntry, size: int) -> bool:
    p = entry.provider
    return size <= INLINE_READ_MAX and p.type in INLINE_PROVIDER_TYPES and not p.is_mtd


T = TypeVar("T")


@dataclass(frozen=True)
class CallInfo:
    """Who is calling: set for every incoming method call, before dispatch."""

    sender: str | None
    interactive: bool


#: The call being dispatched.  Set by a message handler that runs before the
#: dispatch; a coroutine handler's task copies the context when it is created,
#: so every method sees its own caller.
CURRENT_CALL: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar(
    "nvmemd_current_call", default=None)


def _remember_caller(msg: Message) -> None:
    if msg.message_type == MessageType.METHOD_CALL:
        interactive = bool(msg.flags & MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
        CURRENT_CALL.set(CallInfo(msg.sender, interactive))


class State(Protocol):
    """What the objects need from the daemon."""

    registry: Registry
    access: AccessPolicy

    async def reload(self) -> None: ...


# --- the objects: what the interface members read from ``self`` ---------------------


class ManagerObject:
    __slots__ = ("_service",)

    def __init__(self, service: Service) -> None:
        self._service = service


class ProviderObject:
    __slots__ = ("_service", "entry")

    def __init__(self, service: Service, entry: ProviderEntry) -> None:
        self._service = service
        self.entry = entry


class CellObject:
    """One cell on the bus, all it costs."""

    __slots__ = ("_service", "cell", "provider")

    def __init__(self, service: Service, provider: str, cell: CellInfo) -> None:
        self._service = service
        self.provider = provider
        self.cell = cell


BusObject = ManagerObject | ProviderObject | CellObject
_PROVIDERS_PREFIX: Final = PROVIDERS_PATH + "/"


class Service:
    """Owns the published objects and keeps them in step with the registry."""

    def __init__(self, bus: MessageBus, state: State,
                 consumers: Mapping[str, list[ConsumerRef]] | None = None) -> None:
        self.bus = bus
        self.state = state
        #: DT consumer references by cell node (consumers.consumer_index), computed
        #: off the loop for each registry the daemon swaps in.
        self.consumers: Mapping[str, list[ConsumerRef]] = consumers or {}
        self.manager_iface = FallbackInterface(ManagerInterface(), bus.send)
        self.provider_iface = FallbackInterface(ProviderInterface(), bus.send)
        self.cell_iface = FallbackInterface(CellInterface(), bus.send)
        self.manager = ManagerObject(self)
        self.providers: dict[str, ProviderObject] = {}
        self.cells: dict[str, dict[str, CellObject]] = {}  # provider → path → object
        #: Every published path in publication order: GetManagedObjects lists them so.
        self.objects: dict[str, BusObject] = {}
        self._broken: dict[str, str] = {}
        #: Counts sync() calls: what the published objects are a function of changes
        #: only there (the registry swapped, the consumer index).
        self.generation = 0
        self.managed = ManagedObjects(self)

    # --- access --------------------------------------------------------------

    @staticmethod
    def caller() -> tuple[str | None, bool]:
        call = CURRENT_CALL.get()
        return (call.sender, call.interactive) if call else (None, False)

    async def may_read_protected(self) -> bool:
        sender, interactive = self.caller()
        return await self.state.access.may_read_protected(self.bus, sender, interactive)

    async def may_reload(self) -> bool:
        sender, interactive = self.caller()
        return await self.state.access.may_reload(self.bus, sender, interactive)

    async def check_read(self, entry: ProviderEntry) -> None:
        """Raise AccessDeniedError unless the caller may read *entry*'s bytes."""
        if entry.provider.root_only and not await self.may_read_protected():
            raise denied(entry)

    async def query_for_caller(self, entries: list[ProviderEntry]) -> Query:
        """The query layer as the caller may use it: root-only reads refused unless the
        caller may read *entries*."""
        registry = self.state.registry
        if not any(e.provider.root_only for e in entries):
            return Query(registry)
        try:
            if not await self.may_read_protected():
                return Query(registry, may_read_protected=False)
        except AccessDeniedError:  # polkit wants interaction the caller did not allow
            return Query(registry, may_read_protected=False)
        return Query(registry)

    # --- reads: small SoC-internal ones inline, the rest in a worker thread ---------

    async def in_thread(self, entry: ProviderEntry, fn: Callable[..., T], *args: Any,
                        size: int = INLINE_READ_MAX + 1) -> T:
        if reads_inline(entry, size):
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def read_cell(self, entry: ProviderEntry, cell: CellInfo) -> bytes:
        check_cell_size(cell.raw_len, f"{entry.name}:{cell.sysfs_name}")  # reply size bound
        await self.check_read(entry)
        return await self.in_thread(entry, self.state.registry.read_cell, entry, cell,
                                    size=cell.raw_len)

    async def read_provider(self, entry: ProviderEntry, offset: int, length: int) -> bytes:
        return await self.in_thread(entry, self.state.registry.read_provider, entry, offset,
                                    length, size=length)

    async def consumer_record(self, consumer: str | None, netdev: str | None, name: str
                              ) -> tuple[Any, bytes]:
        """``get --consumer``/``--netdev``: the record and the value, access checked."""
        check_name(name, "cell name")  # nvmemd.limits, before any work
        if consumer is not None:
            check_consumer(consumer)
        else:
            check_name(netdev or "", "interface name")
        registry = self.state.registry
        query = Query(registry)
        entry, cell, _ref = await asyncio.to_thread(query.resolve_consumer, name, consumer,
                                                    netdev)
        check_cell_size(cell.raw_len, f"{entry.name}:{cell.sysfs_name}")
        query = await self.query_for_caller([entry])
        return await asyncio.to_thread(query.get_consumer, name, consumer, netdev)

    async def identity(self) -> dict[str, Variant]:
        from ..identity import board_identity
        from .interfaces import record_variants
        from .schema import IDENTITY_KEYS

        registry = self.state.registry
        query = await self.query_for_caller([e for e in registry if e.provider.root_only])
        ident = await asyncio.to_thread(board_identity, query)
        return record_variants(ident, IDENTITY_KEYS)

    # --- lookups -------------------------------------------------------------

    def entry(self, name: str) -> ProviderEntry:
        return self.state.registry.provider(name)

    def live_entry(self, name: str) -> ProviderEntry:
        """The entry behind a published object; it may have gone since the call came in."""
        try:
            return self.state.registry.provider(name)
        except NotFoundError:
            raise ProviderGoneError(f"{name}: provider is gone") from None

    # --- publication -----------------------------------------------------------

    def start(self) -> None:
        self.bus.add_message_handler(_remember_caller)  # first: sets CURRENT_CALL
        self.bus.add_message_handler(self.dispatch)
        self.objects[ROOT_PATH] = self.manager
        self._broken = dict(self.manager_iface.all_properties(self.manager)
                            ["BrokenProviders"].value)
        self.sync(emit=False)

    def _interfaces_of(self, obj: BusObject) -> list[FallbackInterface]:
        if isinstance(obj, CellObject):
            return [self.cell_iface]
        if isinstance(obj, ProviderObject):
            return [self.provider_iface]
        return [self.manager_iface]

    def properties_of(self, obj: BusObject) -> dict[str, dict[str, Variant]]:
        """The object's interfaces with all their properties (the one property dumper:
        GetManagedObjects, InterfacesAdded).  The same for every caller: the
        GetManagedObjects cache (nvmemd.dbus.managed) relies on it."""
        return {i.name: i.all_properties(obj) for i in self._interfaces_of(obj)}

    def _signal(self, path: str, interface: str, member: str, signature: str,
                body: list[Any]) -> None:
        self.bus.send(Message.new_signal(path, interface, member, signature, body))

    def _publish(self, path: str, obj: BusObject, emit: bool) -> None:
        self.objects[path] = obj
        if emit:
            self._signal(ROOT_PATH, OBJECT_MANAGER_IFACE, "InterfacesAdded", "oa{sa{sv}}",
                         [path, self.properties_of(obj)])

    def _withdraw(self, path: str, obj: BusObject) -> None:
        del self.objects[path]
        self._signal(ROOT_PATH, OBJECT_MANAGER_IFACE, "InterfacesRemoved", "oas",
                     [path, [i.name for i in self._interfaces_of(obj)]])

    def _properties_changed(self, path: str, iface: FallbackInterface,
                            before: dict[str, Variant], after: dict[str, Variant]) -> None:
        changed = {k: v for k, v in after.items()
                   if before.get(k) != v and iface.emits[k] == TRUE}
        if changed:
            self._signal(path, PROPERTIES_IFACE, "PropertiesChanged", "sa{sv}as",
                         [iface.name, changed, []])

    def sync(self, emit: bool = True,
             consumers: Mapping[str, list[ConsumerRef]] | None = None) -> None:
        """Make the published objects match ``state.registry``.

        Unchanged providers and cells keep their objects; a changed cell is
        removed and added again; a changed provider gets PropertiesChanged
        (of its properties annotated EmitsChangedSignal=true).  Removals are sent
        before additions, cells before their provider; a changed provider's
        PropertiesChanged after its cells' InterfacesRemoved and InterfacesAdded, so
        that the objects its Cells property lists exist when a client reads it.
        """
        self.generation += 1
        self.managed.invalidate()
        if consumers is not None:
            self.consumers = consumers
        entries = self.state.registry.entries
        for name in [n for n in self.providers if n not in entries]:
            self._drop_provider(name)
        for entry in entries.values():
            self._update_provider(entry, emit)
        broken = self.manager_iface.all_properties(self.manager)["BrokenProviders"]
        if dict(broken.value) != self._broken:
            self._properties_changed(ROOT_PATH, self.manager_iface,
                                     {"BrokenProviders": Variant("a{ss}", self._broken)},
                                     {"BrokenProviders": broken})
            self._broken = dict(broken.value)

    def _drop_provider(self, name: str) -> None:
        for path, cell_obj in self.cells.pop(name, {}).items():
            self._withdraw(path, cell_obj)
        self._withdraw(provider_path(name), self.providers.pop(name))
        log.info("%s: removed from the bus", name)

    def _update_provider(self, entry: ProviderEntry, emit: bool) -> None:
        name = entry.name
        ppath = provider_path(name)
        obj = self.providers.get(name)
        if obj is not None and obj.entry == entry:
            return
        wanted = {cell_path(name, c.sysfs_name): c for c in entry.cells}
        current = self.cells.setdefault(name, {})
        for path in [p for p, o in current.items() if wanted.get(p) != o.cell]:
            self._withdraw(path, current.pop(path))
        before: dict[str, Variant] | None = None
        if obj is None:
            obj = ProviderObject(self, entry)
            self.providers[name] = obj
            self._publish(ppath, obj, emit)
            log.info("%s: published with %d cell(s)", name, len(entry.cells))
        else:
            before = self.provider_iface.all_properties(obj)
            obj.entry = entry
            log.info("%s: updated, %d cell(s)", name, len(entry.cells))
        for path, cell in wanted.items():
            if path not in current:
                cell_obj = CellObject(self, name, cell)
                current[path] = cell_obj
                self._publish(path, cell_obj, emit)
        if before is not None:  # after the cells: every path its Cells lists exists
            self._properties_changed(ppath, self.provider_iface, before,
                                     self.provider_iface.all_properties(obj))

    # --- dispatch ----------------------------------------------------------------

    def dispatch(self, msg: Message) -> Message | bool | None:
        """Message handler: answer every method call to our object tree (not Peer)."""
        if msg.message_type is not MessageType.METHOD_CALL or msg.interface == PEER_IFACE:
            return None
        try:
            reply = self._answer(msg)
        except Exception as e:
            reply = error_reply(msg, e)
        if isinstance(reply, Message) and not expects_reply(msg):
            return True
        return reply

    def _answer(self, msg: Message) -> Message | bool:
        path, iface, member = msg.path or "", msg.interface, msg.member or ""
        obj = self.objects.get(path)
        if iface == INTROSPECTABLE_IFACE or (iface is None and member == "Introspect"):
            if member != "Introspect":
                return error(msg, ERROR_UNKNOWN_METHOD,
                             f"Unknown method {member} or interface {INTROSPECTABLE_IFACE}.")
            if msg.signature != "":
                return invalid_signature(msg, "")
            xml = self.introspect(path)
            if xml is None:
                return error(msg, ERROR_UNKNOWN_OBJECT, f"Unknown object '{path}'.")
            return Message.new_method_return(msg, "s", [xml])
        if obj is None:
            return error(msg, ERROR_UNKNOWN_OBJECT, f"Unknown object '{path}'.")
        interfaces = self._interfaces_of(obj)
        is_root = path == ROOT_PATH
        if iface == PROPERTIES_IFACE:
            others = (*_STANDARD, OBJECT_MANAGER_IFACE) if is_root else _STANDARD
            return properties_call(msg, obj, interfaces, others)
        if is_root and iface in (OBJECT_MANAGER_IFACE, None) and member == "GetManagedObjects":
            if msg.signature != "":
                return invalid_signature(msg, "")
            return self._managed_objects(msg)
        for fi in interfaces:
            if iface in (fi.name, None) and fi.has_method(member):
                return fi.call(msg, obj)
        known = [fi.name for fi in interfaces] + list(_STANDARD)
        if is_root:
            known.append(OBJECT_MANAGER_IFACE)
        if iface is not None and iface not in known:
            return error(msg, ERROR_UNKNOWN_INTERFACE, f"Unknown interface '{iface}'.")
        return error(msg, ERROR_UNKNOWN_METHOD,
                     f"Unknown method {member} or interface {iface}.")

    def _managed_objects(self, msg: Message) -> bool:
        """From the body cached for this generation (nvmemd.dbus.managed); the reply
        leaves through ``bus.send``."""
        if expects_reply(msg):
            paced = LIMITER.bus is self.bus  # the safe writer and its limiter are ours
            self.managed.answer(msg, self.bus.send, LIMITER.requeue if paced else None)
        return True

    def introspect(self, path: str) -> str | None:
        """``Introspect()`` of *path*: an object, or a node above objects; None if neither."""
        obj = self.objects.get(path)
        if obj is not None:
            children = self._children(path)
            return node_xml([i.xml for i in self._interfaces_of(obj)], children,
                            object_manager=path == ROOT_PATH)
        children = self._children(path)
        if not children and path != PROVIDERS_PATH:
            return None
        return node_xml([], children)

    def _children(self, path: str) -> list[str]:
        """The child node names of *path* in the tree (objects and the nodes above them)."""
        prefix = "/" if path == "/" else path + "/"
        if ROOT_PATH.startswith(prefix):
            return [ROOT_PATH[len(prefix):].split("/", 1)[0]]
        if path == ROOT_PATH:
            return ["providers"]
        if path == PROVIDERS_PATH:
            return [p[len(_PROVIDERS_PREFIX):] for p in
                    (provider_path(n) for n in self.providers)]
        if not path.startswith(_PROVIDERS_PREFIX):
            return []
        label, _, rest = path[len(_PROVIDERS_PREFIX):].partition("/")
        provider = self.objects.get(_PROVIDERS_PREFIX + label)
        if not isinstance(provider, ProviderObject):
            return []
        cells = self.cells.get(provider.entry.name, {})
        if rest == "":
            return ["cells"] if cells else []
        if rest == "cells":
            start = len(path) + 1
            return [p[start:] for p in cells]
        return []


_STANDARD: Final = (PEER_IFACE, INTROSPECTABLE_IFACE, PROPERTIES_IFACE)
