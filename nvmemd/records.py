"""Plain records (JSON-ready dicts) of providers and cells.

Both CLI back ends (direct and D-Bus) produce exactly these records, so that
``--json`` output is the same whichever way the data came.
"""

from __future__ import annotations

from typing import Any, TypedDict

from .cells import CellInfo
from .consumers import consumers_of
from .errors import NvmemError
from .macaddr import decode_mac_base, format_mac, is_mac_base
from .registry import BrokenProvider, ProviderEntry, Registry


class CellRecord(TypedDict, total=False):
    provider: str
    name: str
    sysfs_name: str
    offset: int
    bit_offset: int
    nbits: int
    bytes: int
    source: str
    of_node: str | None
    value: str | None
    error: str  # a failed read: the kernel's strerror text when read_bounds knows it
    error_detail: str  # ... and then why (driver, function, rule set)
    consumers: list[dict[str, Any]]
    # nvmemd extensions; `value` always stays what the kernel's cells/ file returns
    mac_base: bool  # compatible = "mac-base" (decoded only by OpenWrt's kernel)
    decoded: str | int  # mac-base: the MAC; ONIE num-macs: the count
    decoded_error: str
    num_macs: int  # ONIE mac-address: how many addresses the EEPROM allots
    consumer: dict[str, Any]  # get --consumer/--netdev: the reference that was followed


def printable(text: str) -> str:
    """Node names are bytes; show the ones that are not UTF-8 as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def cell_record(entry: ProviderEntry, cell: CellInfo) -> CellRecord:
    return CellRecord(
        provider=entry.name,
        name=printable(cell.name),
        sysfs_name=printable(cell.sysfs_name),
        offset=cell.offset,
        bit_offset=cell.bit_offset,
        nbits=cell.nbits,
        bytes=cell.bytes,
        source=cell.source,
        of_node=printable(cell.of_node) if cell.of_node is not None else None,
    )


def cell_record_with_value(registry: Registry, entry: ProviderEntry, cell: CellInfo
                           ) -> CellRecord:
    rec = cell_record(entry, cell)
    value: bytes | None = None
    try:
        value = registry.read_cell(entry, cell)
        rec["value"] = value.hex()
    except NvmemError as e:
        rec["value"] = None
        # a read the kernel fails: "error" is what `cat cells/...` says (read_bounds)
        kernel_error = getattr(e, "kernel_error", None)
        rec["error"] = printable(kernel_error or str(e))
        if kernel_error:
            rec["error_detail"] = printable(str(e))
    add_extensions(rec, registry, entry, cell, value)
    consumers = consumers_of(registry.tree, cell)
    if consumers:  # only cells that DT nodes reference carry the key
        rec["consumers"] = consumers
    return rec


def add_extensions(rec: CellRecord, registry: Registry, entry: ProviderEntry, cell: CellInfo,
                   value: bytes | None) -> None:
    """What nvmemd adds beyond the kernel: mac-base decoding, the ONIE MAC range."""
    if is_mac_base(registry.tree, cell):
        rec["mac_base"] = True
        if value is not None:
            try:
                rec["decoded"] = format_mac(decode_mac_base(value))
            except NvmemError as e:
                rec["decoded_error"] = str(e)
    if cell.source == "onie-tlv":
        from .layouts import onie_tlv  # only when an ONIE table is there

        if cell.name == "num-macs" and value is not None:
            rec["decoded"] = int.from_bytes(value, "big")
        elif cell.name == "mac-address":
            count = onie_tlv.num_macs(registry, entry)
            if count is not None:
                rec["num_macs"] = count


def provider_record(entry: ProviderEntry) -> dict[str, Any]:
    p = entry.provider
    return {
        "name": p.name,
        "type": p.type,
        "size": p.size,
        "read_only": p.read_only,
        "root_only": p.root_only,
        "writable": p.writable,
        "of_node": p.of_node,
        "compatible": list(p.compatible),
        "driver": p.driver,
        "mtd_type": p.mtd_type,
        "legacy_cells": entry.rules.legacy_cells,
        "stride": entry.rules.access.stride,
        "word_size": entry.rules.access.word_size,
        "cells": len(entry.cells),
        "kernel_cells": p.has_kernel_cells,
        "rejected": entry.rejected,
        "errors": [printable(e) for e in entry.errors],
        "notes": [printable(n) for n in entry.notes],
        "validity": [
            {k: v for k, v in vars(val).items() if v is not None} for val in entry.validity
        ],
    }


def broken_record(broken: BrokenProvider) -> dict[str, Any]:
    return {"name": broken.name, "errors": [broken.error], "cells": 0, "rejected": True}
