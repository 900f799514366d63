"""The board's identity in one answer: serial number, product, base MAC, each interface's MAC.

What ``nvmemd-query identity`` and ``Manager.GetIdentity()`` answer, from what
nvmemd decodes.  Every value says where it came from; where several sources
hold a value, the first readable one in this order wins and every other that
disagrees is reported as a conflict:

1. the checksummed self-describing layouts: ONIE TLV (``onie-tlv``), sl28 VPD
   (``sl28-vpd``);
2. cells with conventional names that the device tree describes
   (``fixed-layout``, ``legacy`` and other layouts), in provider order;
3. the U-Boot environment (``u-boot-env``: ``serial#``, ``ethaddr``);
4. the device tree's root properties (``serial-number``, ``model``).

Within one rank, a field's names are tried in the order of :data:`FIELDS`
(``base-mac-address`` before ``mac-address``).  For each network interface
whose DT node has an ``nvmem-cells`` ``mac-address`` entry, the MAC its driver
gets (the consumer's index argument and post-processing applied, as
``of_get_mac_address()`` → ``nvmem_get_mac_address()``), unless the node's own
``mac-address``/``local-mac-address``/``address`` property holds a valid address,
which the kernel prefers.

A MAC the kernel refuses (``is_valid_ether_addr()``: multicast, which includes
the ff:ff:ff:ff:ff:ff of erased media, or all zero) is no value: for the base
MAC the next valid source wins, as ``of_get_mac_address()`` falls through its
sources; an interface whose cell holds one gets nothing from it, as
``of_get_mac_address_nvmem()`` returns -EINVAL.  Either way the cell is
reported under ``errors``.  The node's own address properties are skipped
silently when invalid, as the kernel does: all-zero ones are the placeholders a
boot loader fills in.

A caller that may not read root-only providers gets no value derived from
them: such sources are listed under ``protected`` instead.
"""

from __future__ import annotations

from typing import Any, Final

from .consumers import netdev_of_node
from .errors import AccessDeniedError, NotFoundError, NvmemError, SysrootError, error_from_os
from .macaddr import (
    decode_mac_base,
    format_mac,
    invalid_ether_addr,
    is_mac_base,
    is_valid_ether_addr,
)
from .model import CellInfo, ProviderEntry
from .query import Query
from .records import printable

#: field → cell names holding it, most specific first.
FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "serial_number": ("serial-number", "serial#", "serial"),
    "product_name": ("product-name",),
    "platform_name": ("platform-name",),
    "part_number": ("part-number",),
    "vendor": ("vendor",),
    "manufacturer": ("manufacturer",),
    "manufacture_date": ("manufacture-date",),
    "hw_revision": ("hw-revision", "device-version", "label-revision"),
    "base_mac": ("base-mac-address", "base-mac", "mac-address", "ethaddr"),
    "mac_count": ("num-macs",),
    "model": (),  # the device tree's root `model` only
}
MAC_FIELDS: Final = frozenset({"base_mac"})
#: Cell source → rank (lower wins); sources not listed rank as DT-described cells.
SOURCE_RANK: Final = {"onie-tlv": 0, "sl28-vpd": 0, "u-boot-env": 2}
DT_RANK: Final = 1
ROOT_PROPERTY_RANK: Final = 3
#: DT root properties → field.
ROOT_PROPERTIES: Final = (("serial-number", "serial_number"), ("model", "model"))


def _source(entry: ProviderEntry, cell: CellInfo) -> str:
    return f"{entry.name}:{printable(cell.sysfs_name)}"


def _text(raw: bytes) -> str | None:
    """A text value, or None if binary: a C string (up to the first NUL; a DT string
    property's first string), erased 0xff bytes after it dropped, as `get --format
    string` reads it."""
    raw = raw.split(b"\0", 1)[0].rstrip(b"\xff")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if len(text) >= 2 and text.isprintable() else None


def _mac(raw: bytes) -> bytes | None:
    """A MAC from 6 raw bytes or its ``xx:xx:xx:xx:xx:xx`` text (U-Boot, vendor cells)."""
    if len(raw) == 6:
        return bytes(raw)
    text = _text(raw)
    if text is None:
        return None
    parts = text.replace("-", ":").split(":")
    if len(parts) == 6 and all(len(p) == 2 for p in parts):
        try:
            return bytes(int(p, 16) for p in parts)
        except ValueError:
            return None
    return None


def _value(field: str, raw: bytes) -> str | None:
    if field == "mac_count":
        return str(int.from_bytes(raw, "big")) if raw else None
    text = _text(raw)
    if text is not None:
        return text
    return raw.hex() if raw.rstrip(b"\0\xff") else None


class _Collector:
    def __init__(self, query: Query) -> None:
        self.query = query
        self.candidates: dict[str, list[tuple[tuple[int, int, int], str, str]]] = {
            f: [] for f in FIELDS}
        self.protected: list[str] = []
        self.errors: list[str] = []

    def cells(self) -> None:
        by_name = {name: (field, i) for field, names in FIELDS.items()
                   for i, name in enumerate(names)}
        for order, entry in enumerate(self.query.registry):
            for cell in entry.cells:
                hit = by_name.get(cell.name)
                if hit is None:
                    continue
                field, name_rank = hit
                rank = SOURCE_RANK.get(cell.source, DT_RANK)
                try:
                    raw = self.query.read_cell(entry, cell)
                except AccessDeniedError:
                    self.protected.append(_source(entry, cell))
                    continue
                except NvmemError as e:
                    self.errors.append(printable(str(e)))
                    continue
                if field in MAC_FIELDS:
                    value = self._base_mac(entry, cell, raw)
                else:
                    value = _value(field, raw)
                if value is not None:
                    self.candidates[field].append(((rank, name_rank, order), value,
                                                   _source(entry, cell)))

    def _base_mac(self, entry: ProviderEntry, cell: CellInfo, raw: bytes) -> str | None:
        """A MAC source's address, or None (reported) when it is none the kernel takes."""
        mac: bytes | None
        if is_mac_base(self.query.registry.tree, cell):
            try:  # nvmemd extension (OpenWrt's mac-base decoding), as `get --format mac`
                mac = decode_mac_base(raw)
            except NvmemError:
                mac = None
        else:
            mac = _mac(raw)
        problem = "not a MAC address" if mac is None else invalid_ether_addr(mac)
        if problem is not None:
            self.errors.append(f"{_source(entry, cell)}: {problem}; not used")
            return None
        assert mac is not None
        return format_mac(mac)

    def root_properties(self) -> None:
        tree = self.query.registry.tree
        root = tree.node("/")
        for prop, field in ROOT_PROPERTIES:
            raw = root.prop(prop)
            value = _text(raw) if raw else None
            if value is not None:
                self.candidates[field].append(((ROOT_PROPERTY_RANK, 0, 0), value,
                                               f"device-tree:/{prop}"))

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        conflicts: list[dict[str, str]] = []
        for field in FIELDS:
            found = sorted(self.candidates[field], key=lambda c: c[0])
            if not found:
                continue
            _rank, value, source = found[0]
            out[field] = {"value": value, "source": source}
            conflicts += [{"field": field, "value": v, "source": s}
                          for _r, v, s in found[1:] if v != value]
        out["interfaces"] = self.interfaces()
        out["conflicts"] = conflicts
        out["protected"] = self.protected
        out["errors"] = self.errors
        return out

    def interfaces(self) -> list[dict[str, str]]:
        registry = self.query.registry
        try:  # absent: no interfaces; unreadable (EACCES): said, not taken for none
            names = registry.sysroot.listdir("/sys/class/net")
        except (OSError, SysrootError) as e:
            error = error_from_os(e) if isinstance(e, OSError) else e
            self.errors.append(printable(str(error)))
            return []
        out = []
        for ifname in names:
            try:
                node = netdev_of_node(registry.sysroot, registry.tree, ifname)
            except NvmemError:
                continue
            own = self._dt_mac(node)
            if own is not None:
                out.append({"name": ifname, "mac_address": own[0], "source": own[1],
                            "consumer": printable(node)})
                continue
            try:
                entry, cell, _ref = self.query.resolve_consumer("mac-address", netdev=ifname)
            except NotFoundError:
                continue
            except NvmemError as e:  # an unreadable device tree: not a root-only cell
                self.errors.append(f"{ifname}: {printable(str(e))}")
                continue
            try:
                record, raw = self.query.get_consumer("mac-address", netdev=ifname)
            except AccessDeniedError:
                self.protected.append(f"{_source(entry, cell)} ({ifname})")
                continue
            except NotFoundError:
                continue
            except NvmemError as e:
                self.errors.append(f"{ifname}: {printable(str(e))}")
                continue
            mac = raw
            if record.get("mac_base"):
                # nvmemd extension (OpenWrt's mac-base decoding, with the consumer's index)
                try:
                    mac = decode_mac_base(raw, int(record["consumer"].get("index", 0)))
                except NvmemError as e:
                    self.errors.append(f"{ifname}: {_source(entry, cell)}: {printable(str(e))}")
                    continue
            problem = invalid_ether_addr(mac)
            if problem is not None:
                self.errors.append(f"{ifname}: {_source(entry, cell)}: {problem}; "
                                   "of_get_mac_address_nvmem() returns -EINVAL")
                continue
            out.append({"name": ifname, "mac_address": format_mac(mac),
                        "source": _source(entry, cell), "consumer": printable(node)})
        return out

    def _dt_mac(self, node: str) -> tuple[str, str] | None:
        """Mirrors ``net/core/of_net.c: of_get_mac_address()``: the node's own
        ``mac-address``, ``local-mac-address`` and (obsolete) ``address`` properties
        come first, each taken by ``of_get_mac_addr()`` only when it has 6 bytes that
        ``is_valid_ether_addr()`` accepts."""
        dt = self.query.registry.tree.node(node)
        for prop in ("mac-address", "local-mac-address", "address"):
            raw = dt.prop(prop)
            if raw is not None and len(raw) == 6 and is_valid_ether_addr(raw):
                return format_mac(raw), f"device-tree:{printable(node)}/{prop}"
        return None


def board_identity(query: Query) -> dict[str, Any]:
    """The identity record (keys: the :data:`FIELDS` found, each ``{value, source}``;
    ``interfaces``, ``conflicts``, ``protected``, ``errors``).  Reads as *query*'s
    caller may."""
    collector = _Collector(query)
    collector.cells()
    collector.root_properties()
    return collector.record()
