# mypy: disable-error-code="name-defined,valid-type"
# ruff: noqa: F821, F722  (D-Bus signature strings as annotations)
"""The interfaces of ``org.nvmemd.Nvmem1``: dbus-fast ``ServiceInterface`` definitions.

Signatures are D-Bus type strings (``-> "ay"``) so that Debian bookworm's
python3-dbus-fast 1.84 runs this module too; the file-level mypy and ruff
comments above let the linters accept them — this is the one module that
needs them.  No ``from __future__ import annotations`` here: dbus-fast reads
the annotations as signature strings.

None of these classes is exported: :class:`~nvmemd.dbus.service.Service`
serves each through a :class:`~nvmemd.dbus.fallback.FallbackInterface`, and
the members run with a small object as ``self`` (the attributes each class
declares: :class:`~nvmemd.dbus.service.ManagerObject`, ``ProviderObject``,
``CellObject``).  Docstrings are the API documentation: they become the
``org.gtk.GDBus.DocString`` annotations of the installed XML and
``org.nvmemd.Nvmem1(5)`` (nvmemd.dbus.introspection); parameter names are the
in argument names, :func:`returns` names the out arguments and :func:`emits`
says when a property changes.
"""

import asyncio
from typing import TYPE_CHECKING, Any

from dbus_fast import Variant
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_property, method

from .. import __version__
from ..errors import AccessDeniedError, InvalidArgumentError
from ..limits import check_cell_size, check_spec
from ..model import CellInfo, ProviderEntry
from ..query import Query
from ..records import printable, provider_record, redacted_provider_record
from .introspection import CONST, FALSE, TRUE, emits, returns
from .names import CELL_IFACE, MANAGER_IFACE, MAX_READ, PROVIDER_IFACE
from .paths import cell_path, provider_path
from .schema import CELL_KEYS, PROVIDER_KEYS, VALIDITY_KEYS, to_wire

if TYPE_CHECKING:
    from .service import Service


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


def _check_spec(spec: str) -> None:
    check_spec(spec)  # nvmemd.limits: length, NUL, UTF-8, depth; the CLI checks the same


class ManagerInterface(ServiceInterface):
    """The daemon: lookups by name, reads by name or by DT consumer, rescans.

    On /org/nvmemd/Nvmem1, next to org.freedesktop.DBus.ObjectManager, whose
    GetManagedObjects() lists every provider and cell and whose InterfacesAdded and
    InterfacesRemoved signals follow hot-plug and reloads.
    """

    _service: "Service"

    def __init__(self) -> None:
        super().__init__(MANAGER_IFACE)

    @method(name="ListProviders")
    @returns("providers")
    async def list_providers(self) -> "ao":
        """The object paths of every provider, sorted by name."""
        return [provider_path(n) for n in sorted(self._service.state.registry.entries)]

    @method(name="GetProvider")
    @returns("provider")
    async def get_provider(self, name: "s") -> "o":
        """The object path of the provider whose sysfs name is ``name`` (NotFound if none)."""
        return provider_path(self._service.entry(name).name)

    @method(name="FindCells")
    @returns("cells")
    async def find_cells(self, spec: "s") -> "ao":
        """The object paths of every cell ``spec`` names: a cell name, ``PROVIDER/NAME``
        (or ``PROVIDER:NAME``), the sysfs name ``NAME@OFFSET,BIT``, a DT path or a DT
        label (``&label``). Empty when none matches."""
        _check_spec(spec)
        found = self._service.state.registry.find_cells(spec)
        return [cell_path(e.name, c.sysfs_name) for e, c in found]

    @method(name="ResolveCell")
    @returns("cell")
    async def resolve_cell(self, spec: "s", provider: "s") -> "o":
        """The object path of the one cell ``spec`` names, looking only at ``provider``
        unless it is empty. NotFound if none, InvalidArgument listing the candidates if
        several match."""
        _check_spec(spec)
        entry, cell = self._service.state.registry.resolve_cell(spec, provider or None)
        return cell_path(entry.name, cell.sysfs_name)

    @method(name="ReadCellByName")
    @returns("value")
    async def read_cell_by_name(self, spec: "s") -> "ay":
        """The value of the one cell ``spec`` names (as ResolveCell), as the kernel's
        ``cells/`` file returns it."""
        _check_spec(spec)
        entry, cell = self._service.state.registry.resolve_cell(spec)
        return await self._service.read_cell(entry, cell)

    @method(name="ReadCellRecord")
    @returns("record", "value")
    async def read_cell_record(self, spec: "s", provider: "s") -> "a{sv}ay":
        """The record of ``nvmemd-query get --json`` (cell record keys, see RECORDS) and
        the value of the one cell ``spec`` names in ``provider`` (empty: any)."""
        _check_spec(spec)
        registry = self._service.state.registry
        entry, cell = registry.resolve_cell(spec, provider or None)
        check_cell_size(cell.raw_len, f"{entry.name}:{cell.sysfs_name}")
        query = await self._service.query_for_caller([entry])
        record, value = await asyncio.to_thread(query.get, spec, provider or None)
        return [record_variants(record, CELL_KEYS), value]

    @method(name="ReadConsumerCell")
    @returns("value")
    async def read_consumer_cell(self, consumer: "s", name: "s") -> "ay":
        """What DT node ``consumer`` (path or label) reads as its cell ``name``: the
        consumer's ``nvmem-cell-names`` entry and index argument applied, as the kernel's
        ``of_nvmem_cell_get()``."""
        _record, value = await self._service.consumer_record(consumer, None, name)
        return value

    @method(name="ReadNetdevCell")
    @returns("value")
    async def read_netdev_cell(self, netdev: "s", name: "s") -> "ay":
        """What network interface ``netdev``'s DT node (``/sys/class/net/IF/of_node``)
        reads as its cell ``name`` (usually ``mac-address``)."""
        _record, value = await self._service.consumer_record(None, netdev, name)
        return value

    @method(name="ReadConsumerCellRecord")
    @returns("record", "value")
    async def read_consumer_cell_record(self, consumer: "s", name: "s") -> "a{sv}ay":
        """``nvmemd-query get --consumer NODE NAME --json``: the record (with
        ``consumer``) and the value, as ReadConsumerCell."""
        record, value = await self._service.consumer_record(consumer, None, name)
        return [record_variants(record, CELL_KEYS), value]

    @method(name="ReadNetdevCellRecord")
    @returns("record", "value")
    async def read_netdev_cell_record(self, netdev: "s", name: "s") -> "a{sv}ay":
        """``nvmemd-query get --netdev IF NAME --json``: the record and the value, as
        ReadNetdevCell."""
        record, value = await self._service.consumer_record(None, netdev, name)
        return [record_variants(record, CELL_KEYS), value]

    @method(name="GetIdentity")
    @returns("identity")
    async def get_identity(self) -> "a{sv}":
        """The board's identity in one call: serial number, product, base MAC, each
        interface's MAC …, each value with where it came from, and conflicts (IDENTITY
        below). Values from root-only providers only for callers who may read them."""
        return await self._service.identity()

    @method(name="Reload")
    async def reload(self) -> None:
        """Re-read the configuration and rescan every provider, like SIGHUP; returns when
        done. Needs root or the polkit action org.nvmemd.Nvmem1.reload."""
        if not await self._service.may_reload():
            raise AccessDeniedError("reloading nvmemd needs privileges")
        await self._service.state.reload()

    @method(name="Verify")
    @returns("checked", "skipped", "differences", "findings")
    async def verify(self) -> "asasasas":
        """Compare nvmemd's cells with the kernel's ``cells/`` directories (Linux 6.8 and
        later): the providers checked, those skipped, every difference, and the findings
        about other kernel versions (legacy cells another kernel would create, cell reads
        whose bounds differ)."""
        registry = self._service.state.registry
        protected = [e for e in registry if e.provider.root_only and e.provider.has_kernel_cells]
        for entry in protected[:1]:
            await self._service.check_read(entry)
        report = await asyncio.to_thread(Query(registry).verify)
        return [report["checked"], report["skipped"], report["differences"],
                report.get("findings", [])]

    @dbus_property(access=PropertyAccess.READ, name="Version")
    @emits(CONST)
    def version(self) -> "s":
        """The daemon's version."""
        return __version__

    @dbus_property(access=PropertyAccess.READ, name="BrokenProviders")
    @emits(TRUE)
    def broken_providers(self) -> "a{ss}":
        """Providers sysfs lists that nvmemd cannot describe at all, with the error."""
        return {n: printable(b.error)
                for n, b in sorted(self._service.state.registry.broken.items())}


class ProviderInterface(ServiceInterface):
    """An NVMEM provider: a device of /sys/bus/nvmem/devices (an EEPROM, OTP fuses, an
    MTD partition, a U-Boot environment …), on /org/nvmemd/Nvmem1/providers/NAME with its
    sysfs name escaped as sd_bus_path_encode() does.

    Its properties change (PropertiesChanged) when the provider is rescanned, after the
    InterfacesRemoved and InterfacesAdded of its cells: the cells Cells lists exist.
    """

    _service: "Service"
    entry: ProviderEntry

    def __init__(self) -> None:
        super().__init__(PROVIDER_IFACE)

    @method(name="Read")
    @returns("data")
    async def read(self, offset: "t", length: "u") -> "ay":
        """Raw bytes from ``offset``: at most ``length`` (at most 64 KiB per call), fewer at
        the end of the provider."""
        if length > MAX_READ:
            raise InvalidArgumentError(f"length {length} exceeds the limit of {MAX_READ} bytes")
        entry = self._service.live_entry(self.entry.name)
        await self._service.check_read(entry)
        return await self._service.read_provider(entry, offset, length)

    @method(name="GetDetails")
    @returns("details")
    async def get_details(self) -> "a{sv}":
        """The full record of ``nvmemd-query providers --json`` (provider record keys,
        see RECORDS): for a root-only provider only to callers who may read its bytes
        (AccessDenied otherwise)."""
        entry = self._service.live_entry(self.entry.name)
        await self._service.check_read(entry)
        return record_variants(provider_record(entry), PROVIDER_KEYS)

    @dbus_property(access=PropertyAccess.READ, name="Name")
    @emits(CONST)
    def name_(self) -> "s":
        """The sysfs name (``/sys/bus/nvmem/devices/NAME``)."""
        return self.entry.provider.name

    @dbus_property(access=PropertyAccess.READ, name="Type")
    @emits(TRUE)
    def type_(self) -> "s":
        """The kernel's type: EEPROM, OTP, Battery backed, FRAM or Unknown."""
        return self.entry.provider.type

    @dbus_property(access=PropertyAccess.READ, name="Size")
    @emits(TRUE)
    def size(self) -> "t":
        """Size in bytes."""
        return self.entry.provider.size

    @dbus_property(access=PropertyAccess.READ, name="ReadOnly")
    @emits(TRUE)
    def read_only(self) -> "b":
        """Whether the kernel offers no writes (``force_ro``, ``read-only``)."""
        return self.entry.provider.read_only

    @dbus_property(access=PropertyAccess.READ, name="RootOnly")
    @emits(TRUE)
    def root_only(self) -> "b":
        """Whether the kernel lets only root read it (mode 0400): then only callers with
        privileges (root, ``[access] groups``, polkit) read its bytes."""
        return self.entry.provider.root_only

    @dbus_property(access=PropertyAccess.READ, name="OfNode")
    @emits(TRUE)
    def of_node(self) -> "s":
        """Its device-tree node, empty if it has none."""
        return printable(self.entry.provider.of_node or "")

    @dbus_property(access=PropertyAccess.READ, name="Compatible")
    @emits(TRUE)
    def compatible(self) -> "as":
        """The DT node's ``compatible`` strings."""
        return [printable(c) for c in self.entry.provider.compatible]

    @dbus_property(access=PropertyAccess.READ, name="Cells")
    @emits(TRUE)
    def cells(self) -> "ao":
        """Its cell objects."""
        return [cell_path(self.entry.name, c.sysfs_name) for c in self.entry.cells]

    @dbus_property(access=PropertyAccess.READ, name="Details")
    @emits(TRUE)
    def details(self) -> "a{sv}":
        """The ``providers --json`` record (provider record keys, see RECORDS); for a
        root-only provider without anything derived from its bytes (GetDetails() has the
        rest): properties reach every caller."""
        return record_variants(redacted_provider_record(self.entry), PROVIDER_KEYS)

    @dbus_property(access=PropertyAccess.READ, name="Validity")
    @emits(TRUE)
    def validity(self) -> "aa{sv}":
        """Checksum status of each self-describing layout (ONIE TLV, sl28 VPD, U-Boot
        env): ``layout``, ``status`` (valid, invalid or absent), and unless the provider
        is root-only ``expected``, ``found``, ``detail`` (strings) and ``flag`` (byte)."""
        record = redacted_provider_record(self.entry)
        return [record_variants(v, VALIDITY_KEYS) for v in record["validity"]]


class CellInterface(ServiceInterface):
    """An NVMEM cell, exactly as the kernel (Linux 6.7 and later) creates it, on
    PROVIDER_PATH/cells/NAME with its sysfs name ``NAME@OFFSET,BIT`` escaped.

    A cell never changes: when a rescan changes it, the object is removed and a new one
    added (InterfacesRemoved, InterfacesAdded).
    """

    _service: "Service"
    provider: str
    cell: CellInfo

    def __init__(self) -> None:
        super().__init__(CELL_IFACE)

    @method(name="Read")
    @returns("value")
    async def read(self) -> "ay":
        """The value, as the kernel's ``cells/`` file returns it (bit fields shifted,
        post-processing applied)."""
        entry = self._service.live_entry(self.provider)
        return await self._service.read_cell(entry, self.cell)

    @method(name="ReadRecord")
    @returns("record")
    async def read_record(self) -> "a{sv}":
        """The record of ``nvmemd-query cells --json`` (cell record keys, see RECORDS):
        ``value`` as bytes, or ``error`` saying why it is unreadable."""
        entry = self._service.live_entry(self.provider)
        check_cell_size(self.cell.raw_len, f"{entry.name}:{self.cell.sysfs_name}")
        query = await self._service.query_for_caller([entry])
        record: Any = await self._service.in_thread(entry, query.cell_record_with_value,
                                                    entry, self.cell)
        return record_variants(record, CELL_KEYS)

    @dbus_property(access=PropertyAccess.READ, name="Name")
    @emits(CONST)
    def name_(self) -> "s":
        """The cell's name: its DT node name without the unit address, or the layout's
        name for it. Bytes that are not UTF-8 appear as ``\\xNN`` escapes; NameBytes has
        the raw bytes."""
        return printable(self.cell.name)

    @dbus_property(access=PropertyAccess.READ, name="NameBytes")
    @emits(CONST)
    def name_bytes(self) -> "ay":
        """The cell's name as the media or the device tree hold it (not always UTF-8)."""
        return self.cell.name.encode("utf-8", "surrogateescape")

    @dbus_property(access=PropertyAccess.READ, name="SysfsName")
    @emits(CONST)
    def sysfs_name(self) -> "s":
        """The name of its file in the kernel's ``cells/`` directory:
        ``NAME@OFFSET,BIT`` (hexadecimal offset), escaped as Name."""
        return printable(self.cell.sysfs_name)

    @dbus_property(access=PropertyAccess.READ, name="Provider")
    @emits(CONST)
    def provider_(self) -> "o":
        """Its provider object."""
        return provider_path(self.provider)

    @dbus_property(access=PropertyAccess.READ, name="Offset")
    @emits(CONST)
    def offset(self) -> "u":
        """Byte offset in the provider."""
        return self.cell.offset

    @dbus_property(access=PropertyAccess.READ, name="BitOffset")
    @emits(CONST)
    def bit_offset(self) -> "u":
        """First bit of a bit field (0 for whole bytes)."""
        return self.cell.bit_offset

    @dbus_property(access=PropertyAccess.READ, name="NBits")
    @emits(CONST)
    def nbits(self) -> "u":
        """Width of a bit field in bits (0 for whole bytes)."""
        return self.cell.nbits

    @dbus_property(access=PropertyAccess.READ, name="Bytes")
    @emits(CONST)
    def bytes_(self) -> "u":
        """Length of the value Read() returns."""
        return self.cell.bytes

    @dbus_property(access=PropertyAccess.READ, name="Source")
    @emits(CONST)
    def source(self) -> "s":
        """Where the cell comes from: fixed-layout, legacy (a child of the provider's
        node), or a layout (onie-tlv, u-boot-env, sl28-vpd, brcm-nvram)."""
        return self.cell.source

    @dbus_property(access=PropertyAccess.READ, name="OfNode")
    @emits(CONST)
    def of_node(self) -> "s":
        """Its device-tree node, empty for cells a layout found in the media."""
        return printable(self.cell.of_node or "")

    @dbus_property(access=PropertyAccess.READ, name="Consumers")
    @emits(FALSE)
    def consumers(self) -> "a(ssu)":
        """DT nodes whose ``nvmem-cells`` reference this cell: the node, its
        ``nvmem-cell-names`` entry and the index argument. Follows the device tree of the
        last rescan, without a signal."""
        if self.cell.of_node is None:
            return []
        return [[printable(r.node), printable(r.name or ""), r.index]
                for r in self._service.consumers.get(self.cell.of_node, [])]
