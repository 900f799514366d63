# mypy: disable-error-code="name-defined,valid-type"
# ruff: noqa: F821, F722  (D-Bus signature strings as annotations)
"""The D-Bus objects of nvmemd (dbus-fast).

Signatures are D-Bus type strings (``-> "ay"``) so that Debian bookworm's
python3-dbus-fast 1.84 runs this module too; the file-level mypy comment
above lets mypy accept them.  No ``from __future__ import annotations`` here:
dbus-fast reads the annotations as signature strings.

Layout (``org.nvmemd.Nvmem1``)::

    /org/nvmemd/Nvmem1                          ObjectManager + Manager
    /org/nvmemd/Nvmem1/providers/<p>            Provider
    /org/nvmemd/Nvmem1/providers/<p>/cells/<c>  Cell

The manager and the providers are exported dbus-fast ``ServiceInterface``
objects.  Cells are not: there can be tens of thousands, and an exported
``ServiceInterface`` costs about 3.3 KB and 60–90 µs each.  :class:`Service`
answers every call to a cell path itself, from a message handler that runs
before dbus-fast's dispatch (a fallback vtable, nvmemd.dbus.fallback), with
:class:`CellInterface` as the definition and a :class:`CellObject` per cell.
It also answers ``Introspect`` of the parents of cells (``…/providers/<p>``
and ``…/cells``) and ``GetManagedObjects``, so clients see the same objects as
if every cell were exported.

dbus-fast emits ``InterfacesAdded``/``InterfacesRemoved`` from the *child's*
path, which ``GDBusObjectManagerClient`` ignores.  :class:`NvmemBus` switches
that off and :class:`Service` sends them from the manager path instead, one
signal per object with all its interfaces.

Every method handler goes through :func:`_guarded`: nvmemd errors become
``org.nvmemd.Nvmem1.Error.*`` with the error's own message, anything else is
logged here with its traceback and answered with a bare
``org.nvmemd.Nvmem1.Error.Failed: internal error``.
"""

import asyncio
import contextvars
import errno
import functools
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from dbus_fast import DBusError, Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_property, method

from .. import __version__
from ..errors import (
    AccessDeniedError,
    InvalidArgumentError,
    NotFoundError,
    NvmemError,
    ProviderGoneError,
)
from ..limits import check_arguments, check_cell_size, check_spec, quote
from ..model import CellInfo, ProviderEntry
from ..query import Query, denied
from ..records import provider_record, redacted_provider_record
from ..registry import Registry
from .fallback import (
    INTROSPECTABLE_IFACE,
    FallbackInterface,
    bare_node,
    default_node,
    error_reply,
    expects_reply,
)
from .flow import LIMITER, answer_machine_id, install_safe_writer
from .names import (
    CELL_IFACE,
    ERROR_FAILED,
    MANAGER_IFACE,
    MAX_READ,
    OBJECT_MANAGER_IFACE,
    PROVIDER_IFACE,
    PROVIDERS_PATH,
    ROOT_PATH,
    error_name_for,
)
from .paths import cell_path, provider_path
from .polkit import AccessPolicy
from .schema import CELL_KEYS, PROVIDER_KEYS, VALIDITY_KEYS, to_wire

log = logging.getLogger(__name__)

#: ``nvmem_type_str[]`` types behind external buses (I2C/SPI EEPROMs, RTC NVRAM,
#: FRAM): a read can take milliseconds, or hang with the bus, so it goes to a
#: worker thread and the loop keeps serving.  Other providers (fuses, OTP,
#: reserved memory, MTD) answer a small read in microseconds: handing those to a
#: thread costs more than the read (benchmarks/RESULTS.md, D-Bus throughput).
THREADED_PROVIDER_TYPES: Final = frozenset({"EEPROM", "Battery backed", "FRAM"})
#: Largest cell read inline on the loop.
INLINE_READ_MAX: Final = 64


def reads_inline(entry: ProviderEntry, cell: CellInfo) -> bool:
    return cell.raw_len <= INLINE_READ_MAX and entry.provider.type not in THREADED_PROVIDER_TYPES

T = TypeVar("T")


@dataclass(frozen=True)
class CallInfo:
    """Who is calling: set for every incoming method call, before dispatch."""

    sender: str | None
    interactive: bool


#: The call being dispatched.  Set by a message handler that runs before
#: dbus-fast's dispatch; a coroutine handler's task copies the context when it
#: is created, so every method sees its own caller.
CURRENT_CALL: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar(
    "nvmemd_current_call", default=None)


def _remember_caller(msg: Message) -> None:
    if msg.message_type == MessageType.METHOD_CALL:
        interactive = bool(msg.flags & MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
        CURRENT_CALL.set(CallInfo(msg.sender, interactive))


class NvmemBus(MessageBus):
    """A MessageBus that leaves the ObjectManager signals to :class:`Service`,
    with a write path that waits for a full socket (nvmemd.dbus.flow)."""

    async def connect(self) -> "NvmemBus":
        await super().connect()
        install_safe_writer(self)
        self.add_message_handler(answer_machine_id)
        return self

    def _emit_interface_added(self, path: str, interface: ServiceInterface) -> None:
        pass

    def _emit_interface_removed(self, path: str, removed_interfaces: list[str]) -> None:
        pass


def _guarded(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Translate every exception of a method handler into a D-Bus error."""

    @functools.wraps(fn)
    async def wrapper(self: Any, *args: Any) -> T:
        call = CURRENT_CALL.get()
        try:
            check_arguments(fn.__name__, args)  # nvmemd.limits: before any work
            async with LIMITER.slot(call.sender if call else None):  # nvmemd.dbus.flow
                return await fn(self, *args)
        except DBusError:
            raise
        except asyncio.CancelledError:  # shutdown: the reply, if any, is dropped
            raise DBusError(ERROR_FAILED, "nvmemd is stopping") from None
        except NvmemError as e:
            raise DBusError(error_name_for(e), str(e)) from None
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:
                raise DBusError(error_name_for(InvalidArgumentError()), "name too long") from None
            _log_internal(fn.__name__, args, e)
            raise DBusError(ERROR_FAILED, "internal error") from None
        except Exception as e:
            _log_internal(fn.__name__, args, e)
            raise DBusError(ERROR_FAILED, "internal error") from None

    return wrapper


def record_variants(record: Any, keys: dict[str, str]) -> dict[str, Variant]:
    """A record as ``a{sv}`` with the documented key types (nvmemd.dbus.schema)."""
    return _variants(to_wire(record, keys))


def _variants(wire: dict[str, tuple[str, Any]]) -> dict[str, Variant]:
    out: dict[str, Variant] = {}
    for key, (sig, value) in wire.items():
        if sig == "aa{sv}":
            value = [_variants(v) for v in value]
        elif sig == "a{sv}":
            value = _variants(value)
        out[key] = Variant(sig, value)
    return out


def _log_internal(name: str, args: tuple[Any, ...], e: BaseException) -> None:
    """Log an unexpected error with its frames, arguments and message cut short."""
    frames = "".join(traceback.format_tb(e.__traceback__, limit=-8))
    log.error("internal error in %s(%s): %s: %s\n%s", name,
              ", ".join(quote(str(a)) for a in args), type(e).__name__, quote(str(e), 200),
              frames.rstrip())


def interface_properties(interface: ServiceInterface) -> dict[str, Variant]:
    """All properties of *interface* as Variants, for InterfacesAdded."""
    out: dict[str, Variant] = {}
    for prop in ServiceInterface._get_properties(interface):
        if prop.disabled:
            continue
        out[prop.name] = Variant(prop.signature, prop.prop_getter(interface))
    return out


def _all_properties(interface: ServiceInterface) -> dict[str, Variant]:
    """``GetAll()`` of an exported interface, as dbus-fast builds it (sync getters only)."""
    return {prop.name: Variant(prop.signature, prop.prop_getter(interface))
            for prop in ServiceInterface._get_properties(interface)
            if not prop.disabled and prop.access.readable()}


_PROVIDERS_PREFIX: Final = PROVIDERS_PATH + "/"


class State(Protocol):
    """What the objects need from the daemon."""

    registry: Registry
    access: AccessPolicy

    async def reload(self) -> None: ...


def _check_spec(spec: str) -> None:
    check_spec(spec)  # nvmemd.limits


class CellObject:
    """One cell on the bus, all it costs: what :class:`CellInterface`'s members read.

    The members of CellInterface run with a CellObject as ``self``.
    """

    __slots__ = ("_service", "cell", "provider")

    def __init__(self, service: "Service", provider: str, cell: CellInfo) -> None:
        self._service = service
        self.provider = provider
        self.cell = cell


#: A published object: an exported ServiceInterface, or a cell served by Service.
BusObject = ServiceInterface | CellObject


class Service:
    """Owns the published objects and keeps them in step with the registry."""

    def __init__(self, bus: MessageBus, state: State) -> None:
        self.bus = bus
        self.state = state
        self.manager = ManagerInterface(self)
        self.providers: dict[str, ProviderInterface] = {}
        self.cells: dict[str, dict[str, CellObject]] = {}  # provider → path → object
        #: Every published path in publication order (dbus-fast's export order):
        #: GetManagedObjects lists them in this order.
        self.objects: dict[str, BusObject] = {}
        self.cell_iface = FallbackInterface(CellInterface(), bus.send)

    # --- access --------------------------------------------------------------

    async def check_read(self, entry: ProviderEntry) -> None:
        """Raise AccessDeniedError unless the caller may read *entry*'s bytes."""
        if not entry.provider.root_only:
            return
        call = CURRENT_CALL.get()
        sender = call.sender if call else None
        interactive = call.interactive if call else False
        if not await self.state.access.may_read_protected(self.bus, sender, interactive):
            raise denied(entry)

    async def read_cell(self, entry: ProviderEntry, cell: CellInfo) -> bytes:
        check_cell_size(cell.raw_len, f"{entry.name}:{cell.sysfs_name}")
        await self.check_read(entry)
        if reads_inline(entry, cell):
            return self.state.registry.read_cell(entry, cell)
        return await asyncio.to_thread(self.state.registry.read_cell, entry, cell)

    async def query_for_caller(self, entries: list[ProviderEntry]) -> Query:
        """The query layer as the caller may use it: root-only reads refused unless the
        caller may read *entries*."""
        registry = self.state.registry
        protected = [e for e in entries if e.provider.root_only]
        if not protected:
            return Query(registry)
        try:
            await self.check_read(protected[0])
        except AccessDeniedError:
            return Query(registry, may_read_protected=False)
        return Query(registry)

    # --- export --------------------------------------------------------------

    def start(self) -> None:
        self.bus.add_message_handler(_remember_caller)  # first: sets CURRENT_CALL
        self.bus.add_message_handler(self.dispatch)
        self._export(ROOT_PATH, self.manager, emit=False)
        self.sync(emit=False)

    def _signal(self, member: str, signature: str, body: list[Any]) -> None:
        self.bus.send(Message.new_signal(ROOT_PATH, OBJECT_MANAGER_IFACE, member,
                                         signature, body))

    def _interfaces(self, obj: BusObject) -> dict[str, dict[str, Variant]]:
        """The object's interfaces with all their properties (InterfacesAdded)."""
        if isinstance(obj, CellObject):
            return {self.cell_iface.name: self.cell_iface.signal_properties(obj)}
        return {obj.name: interface_properties(obj)}

    def _export(self, path: str, obj: BusObject, emit: bool) -> None:
        if not isinstance(obj, CellObject):
            self.bus.export(path, obj)
        self.objects[path] = obj
        if emit:
            self._signal("InterfacesAdded", "oa{sa{sv}}", [path, self._interfaces(obj)])

    def _unexport(self, path: str, obj: BusObject) -> None:
        if isinstance(obj, CellObject):
            name = self.cell_iface.name
        else:
            self.bus.unexport(path, obj)
            name = obj.name
        del self.objects[path]
        self._signal("InterfacesRemoved", "oas", [path, [name]])

    def make_cell(self, entry: ProviderEntry, cell: CellInfo) -> CellObject:
        """The one place cell objects are made."""
        return CellObject(self, entry.name, cell)

    def sync(self, emit: bool = True) -> None:
        """Make the exported objects match ``state.registry``.

        Unchanged providers and cells keep their objects; a changed cell is
        removed and added again; a changed provider gets PropertiesChanged.
        Removals are sent before additions, cells before their provider.
        """
        entries = self.state.registry.entries
        for name in [n for n in self.providers if n not in entries]:
            self._drop_provider(name)
        for entry in entries.values():
            self._update_provider(entry, emit)

    def _drop_provider(self, name: str) -> None:
        for path, cell_obj in self.cells.pop(name, {}).items():
            self._unexport(path, cell_obj)
        obj = self.providers.pop(name)
        self._unexport(provider_path(name), obj)
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
            self._unexport(path, current.pop(path))
        if obj is None:
            obj = ProviderInterface(self, entry)
            self.providers[name] = obj
            self._export(ppath, obj, emit)
            log.info("%s: published with %d cell(s)", name, len(entry.cells))
        else:
            before = interface_properties(obj)
            obj.entry = entry
            after = interface_properties(obj)
            changed = {k: v.value for k, v in after.items() if before.get(k) != v}
            if changed:
                obj.emit_properties_changed(changed)
            log.info("%s: updated, %d cell(s)", name, len(entry.cells))
        for path, cell in wanted.items():
            if path not in current:
                cell_obj = self.make_cell(entry, cell)
                current[path] = cell_obj
                self._export(path, cell_obj, emit)

    # --- the cells' fallback dispatcher -----------------------------------------

    def dispatch(self, msg: Message) -> Message | bool | None:
        """Message handler: answer what dbus-fast cannot, as it would with cells exported.

        Calls to a cell path, ``Introspect`` of a provider and of its ``cells``
        node, and ``GetManagedObjects``; None leaves a message to dbus-fast.
        """
        if msg.message_type is not MessageType.METHOD_CALL:
            return None
        if msg.member == "GetManagedObjects" and msg.interface == OBJECT_MANAGER_IFACE:
            return self._managed_objects(msg)
        path = msg.path
        if path is None or not path.startswith(_PROVIDERS_PREFIX):
            return None
        obj = self.objects.get(path)
        if isinstance(obj, CellObject):
            return self.cell_iface.handle_call(msg, obj)
        if (msg.member == "Introspect" and msg.interface == INTROSPECTABLE_IFACE
                and msg.signature == ""):
            xml = self._introspect_parent(path)
            if xml is None:
                return None
            reply = Message.new_method_return(msg, "s", [xml])
            return reply if expects_reply(msg) else True
        return None

    def _introspect_parent(self, path: str) -> str | None:
        """Introspection of ``…/providers/<p>`` or ``…/providers/<p>/cells`` with cell children."""
        label, _, rest = path[len(_PROVIDERS_PREFIX):].partition("/")
        if rest not in ("", "cells"):
            return None
        ppath = _PROVIDERS_PREFIX + label
        provider = self.objects.get(ppath)
        if not isinstance(provider, ProviderInterface):
            return None
        cells = self.cells.get(provider.entry.name, {})
        if rest == "":
            # dbus-fast's node for the export, plus the child it cannot see
            return default_node(path, [provider.introspect()], ["cells"] if cells else [])
        if not cells:
            return None  # no children: dbus-fast's empty node
        start = len(path) + 1
        return bare_node(path, [p[start:] for p in cells])

    def _managed_objects(self, msg: Message) -> Message | bool:
        """``GetManagedObjects`` on any path: every object below it, as dbus-fast lists exports."""
        base = msg.path
        prefix = "/" if base == "/" else f"{base}/"
        result: dict[str, dict[str, dict[str, Variant]]] = {}
        try:
            for path, obj in self.objects.items():
                if not path.startswith(prefix):
                    continue
                if isinstance(obj, CellObject):
                    result[path] = {self.cell_iface.name: self.cell_iface.all_properties(obj)}
                else:
                    result[path] = {obj.name: _all_properties(obj)}
            reply = Message.new_method_return(msg, "a{oa{sa{sv}}}", [result])
        except Exception as e:
            reply = error_reply(msg, e)
        return reply if expects_reply(msg) else True

    # --- lookups -------------------------------------------------------------

    def entry(self, name: str) -> ProviderEntry:
        return self.state.registry.provider(name)

    def live_entry(self, name: str) -> ProviderEntry:
        """The entry behind an exported object; it may have gone since the call came in."""
        try:
            return self.state.registry.provider(name)
        except NotFoundError:
            raise ProviderGoneError(f"{name}: provider is gone") from None

    def counts(self) -> tuple[int, int]:
        reg = self.state.registry
        return len(reg.entries), sum(len(e.cells) for e in reg.entries.values())


class ManagerInterface(ServiceInterface):
    def __init__(self, service: Service) -> None:
        super().__init__(MANAGER_IFACE)
        self._service = service

    @dbus_property(access=PropertyAccess.READ, name="Version")
    def version(self) -> "s":
        return __version__

    @dbus_property(access=PropertyAccess.READ, name="BrokenProviders")
    def broken_providers(self) -> "a{ss}":
        return {n: b.error for n, b in sorted(self._service.state.registry.broken.items())}

    @method(name="ListProviders")
    @_guarded
    async def list_providers(self) -> "ao":
        return [provider_path(n) for n in sorted(self._service.state.registry.entries)]

    @method(name="GetProvider")
    @_guarded
    async def get_provider(self, name: "s") -> "o":
        return provider_path(self._service.entry(name).name)

    @method(name="FindCells")
    @_guarded
    async def find_cells(self, spec: "s") -> "ao":
        _check_spec(spec)
        found = self._service.state.registry.find_cells(spec)
        return [cell_path(e.name, c.sysfs_name) for e, c in found]

    @method(name="ResolveCell")
    @_guarded
    async def resolve_cell(self, spec: "s", provider: "s") -> "o":
        entry, cell = self._service.state.registry.resolve_cell(spec, provider or None)
        return cell_path(entry.name, cell.sysfs_name)

    @method(name="ReadCellRecord")
    @_guarded
    async def read_cell_record(self, spec: "s", provider: "s") -> "a{sv}ay":
        """``nvmemd-query get --json``'s record (schema.CELL_KEYS) and the value."""
        _check_spec(spec)
        registry = self._service.state.registry
        entry, cell = registry.resolve_cell(spec, provider or None)
        check_cell_size(cell.raw_len, f"{entry.name}:{cell.sysfs_name}")
        query = await self._service.query_for_caller([entry])
        record, value = await asyncio.to_thread(query.get, spec, provider or None)
        return [record_variants(record, CELL_KEYS), value]

    @method(name="ReadCellByName")
    @_guarded
    async def read_cell_by_name(self, spec: "s") -> "ay":
        _check_spec(spec)
        entry, cell = self._service.state.registry.resolve_cell(spec)
        return await self._service.read_cell(entry, cell)

    @method(name="ReadConsumerCell")
    @_guarded
    async def read_consumer_cell(self, consumer: "s", name: "s") -> "ay":
        """What DT node *consumer* (path or label) reads as its cell *name*.

        ``of_nvmem_cell_get()`` (nvmemd.consumers): the consumer's id and index
        argument reach the post-processing, as in the kernel.
        """
        from ..consumers import lookup

        registry = self._service.state.registry
        entry, cell, ref = await asyncio.to_thread(lookup, registry, consumer, name)
        check_cell_size(cell.raw_len, f"{entry.name}:{cell.sysfs_name}")
        await self._service.check_read(entry)
        return await asyncio.to_thread(registry.read_cell, entry, cell, name, ref.index)

    @method(name="ReadNetdevCell")
    @_guarded
    async def read_netdev_cell(self, netdev: "s", name: "s") -> "ay":
        """What network interface *netdev*'s DT node (``/sys/class/net/IF/of_node``)
        reads as its cell *name*."""
        _record, value = await self._consumer_record(None, netdev, name)
        return value

    @method(name="ReadConsumerCellRecord")
    @_guarded
    async def read_consumer_cell_record(self, consumer: "s", name: "s") -> "a{sv}ay":
        """``get --consumer NODE NAME --json``: record (schema.CELL_KEYS) and value."""
        record, value = await self._consumer_record(consumer, None, name)
        return [record_variants(record, CELL_KEYS), value]

    @method(name="ReadNetdevCellRecord")
    @_guarded
    async def read_netdev_cell_record(self, netdev: "s", name: "s") -> "a{sv}ay":
        """``get --netdev IF NAME --json``: record (schema.CELL_KEYS) and value."""
        record, value = await self._consumer_record(None, netdev, name)
        return [record_variants(record, CELL_KEYS), value]

    async def _consumer_record(self, consumer: str | None, netdev: str | None, name: str
                               ) -> tuple[Any, bytes]:
        _check_spec(name)
        _check_spec(consumer if consumer is not None else (netdev or ""))
        from ..consumers import lookup, netdev_of_node

        registry = self._service.state.registry

        def find() -> ProviderEntry:  # no read yet: access is checked first
            node = consumer
            if netdev is not None:
                node = netdev_of_node(registry.sysroot, registry.tree, netdev)
            entry, cell, _ref = lookup(registry, node or "/", name)
            check_cell_size(cell.raw_len, f"{entry.name}:{cell.sysfs_name}")
            return entry

        entry = await asyncio.to_thread(find)
        query = await self._service.query_for_caller([entry])
        return await asyncio.to_thread(query.get_consumer, name, consumer, netdev)

    @method(name="Reload")
    @_guarded
    async def reload(self) -> None:
        call = CURRENT_CALL.get()
        if not await self._service.state.access.may_reload(
                self._service.bus, call.sender if call else None,
                call.interactive if call else False):
            raise AccessDeniedError("reloading nvmemd needs privileges")
        await self._service.state.reload()

    @method(name="Verify")
    @_guarded
    async def verify(self) -> "asasas":
        registry = self._service.state.registry
        protected = [e for e in registry if e.provider.root_only and e.provider.has_kernel_cells]
        for entry in protected[:1]:
            await self._service.check_read(entry)
        report = await asyncio.to_thread(Query(registry).verify)
        return [report["checked"], report["skipped"], report["differences"]]


class ProviderInterface(ServiceInterface):
    def __init__(self, service: Service, entry: ProviderEntry) -> None:
        super().__init__(PROVIDER_IFACE)
        self._service = service
        self.entry = entry

    @dbus_property(access=PropertyAccess.READ, name="Name")
    def name_(self) -> "s":
        return self.entry.provider.name

    @dbus_property(access=PropertyAccess.READ, name="Type")
    def type_(self) -> "s":
        return self.entry.provider.type

    @dbus_property(access=PropertyAccess.READ, name="Size")
    def size(self) -> "t":
        return self.entry.provider.size

    @dbus_property(access=PropertyAccess.READ, name="ReadOnly")
    def read_only(self) -> "b":
        return self.entry.provider.read_only

    @dbus_property(access=PropertyAccess.READ, name="RootOnly")
    def root_only(self) -> "b":
        return self.entry.provider.root_only

    @dbus_property(access=PropertyAccess.READ, name="OfNode")
    def of_node(self) -> "s":
        return self.entry.provider.of_node or ""

    @dbus_property(access=PropertyAccess.READ, name="Compatible")
    def compatible(self) -> "as":
        return list(self.entry.provider.compatible)

    @dbus_property(access=PropertyAccess.READ, name="Cells")
    def cells(self) -> "ao":
        return [cell_path(self.entry.name, c.sysfs_name) for c in self.entry.cells]

    @dbus_property(access=PropertyAccess.READ, name="Details")
    def details(self) -> "a{sv}":
        """The ``providers --json`` record (schema.PROVIDER_KEYS); redacted for root-only
        providers (records.redacted_provider_record): properties reach every caller."""
        return record_variants(redacted_provider_record(self.entry), PROVIDER_KEYS)

    @dbus_property(access=PropertyAccess.READ, name="Validity")
    def validity(self) -> "aa{sv}":
        """Checksum status per layout: layout, status (valid/invalid/absent), and for
        providers that are not root-only expected, found, detail (strings), flag (byte)."""
        record = redacted_provider_record(self.entry)
        return [record_variants(v, VALIDITY_KEYS) for v in record["validity"]]

    @method(name="GetDetails")
    @_guarded
    async def get_details(self) -> "a{sv}":
        """The full ``providers --json`` record: the caller must be allowed to read
        the provider's bytes (AccessDenied otherwise)."""
        entry = self._service.live_entry(self.entry.name)
        await self._service.check_read(entry)
        return record_variants(provider_record(entry), PROVIDER_KEYS)

    @method(name="Read")
    @_guarded
    async def read(self, offset: "t", length: "u") -> "ay":
        if length > MAX_READ:
            raise InvalidArgumentError(f"length {length} exceeds the limit of {MAX_READ} bytes")
        entry = self._service.live_entry(self.entry.name)
        await self._service.check_read(entry)
        return await asyncio.to_thread(self._service.state.registry.read_provider,
                                       entry, offset, length)


class CellInterface(ServiceInterface):
    """``org.nvmemd.Nvmem1.Cell``: the definition, never exported.

    :class:`Service` serves it on every cell path through
    :class:`~nvmemd.dbus_fallback.FallbackInterface`; the members below run
    with that cell's :class:`CellObject` as ``self`` (the attributes declared
    here are the ones CellObject carries).
    """

    _service: Service
    provider: str
    cell: CellInfo

    def __init__(self) -> None:
        super().__init__(CELL_IFACE)

    @dbus_property(access=PropertyAccess.READ, name="Name")
    def name_(self) -> "s":
        return self.cell.name

    @dbus_property(access=PropertyAccess.READ, name="SysfsName")
    def sysfs_name(self) -> "s":
        return self.cell.sysfs_name

    @dbus_property(access=PropertyAccess.READ, name="Provider")
    def provider_(self) -> "o":
        return provider_path(self.provider)

    @dbus_property(access=PropertyAccess.READ, name="Offset")
    def offset(self) -> "u":
        return self.cell.offset

    @dbus_property(access=PropertyAccess.READ, name="BitOffset")
    def bit_offset(self) -> "u":
        return self.cell.bit_offset

    @dbus_property(access=PropertyAccess.READ, name="NBits")
    def nbits(self) -> "u":
        return self.cell.nbits

    @dbus_property(access=PropertyAccess.READ, name="Bytes")
    def bytes_(self) -> "u":
        return self.cell.bytes

    @dbus_property(access=PropertyAccess.READ, name="Source")
    def source(self) -> "s":
        return self.cell.source

    @dbus_property(access=PropertyAccess.READ, name="OfNode")
    def of_node(self) -> "s":
        return self.cell.of_node or ""

    @dbus_property(access=PropertyAccess.READ, name="Consumers")
    def consumers(self) -> "a(ssu)":
        """DT nodes referencing this cell: (node, its nvmem-cell-names entry, index)."""
        from ..consumers import consumer_index

        tree = self._service.state.registry.tree
        if self.cell.of_node is None:
            return []
        return [[r.node, r.name or "", r.index]
                for r in consumer_index(tree).get(self.cell.of_node, [])]

    @method(name="Read")
    @_guarded
    async def read(self) -> "ay":
        entry = self._service.live_entry(self.provider)
        return await self._service.read_cell(entry, self.cell)

    @method(name="ReadRecord")
    @_guarded
    async def read_record(self) -> "a{sv}":
        """The record of ``nvmemd-query cells --json`` (schema.CELL_KEYS): value as ``ay``,
        or ``error`` saying why it is unreadable."""
        entry = self._service.live_entry(self.provider)
        check_cell_size(self.cell.raw_len, f"{entry.name}:{self.cell.sysfs_name}")
        query = await self._service.query_for_caller([entry])
        record = await asyncio.to_thread(query.cell_record_with_value, entry, self.cell)
        return record_variants(record, CELL_KEYS)
