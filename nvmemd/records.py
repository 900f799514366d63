"""Plain records (JSON-ready dicts) of providers and cells.

Every front end prints these: the direct CLI and the daemon build them in the
query layer, the D-Bus client rebuilds them from the bus, so ``--json`` output
is the same whichever way the data came.  Imports only the model.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any, TypedDict

    from .model import BrokenProvider, CellInfo, ProviderEntry

    # A type, not a class at run time: records are dict displays, so that the CLI's
    # `get` does not import typing for it.
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
    return {
        "provider": entry.name,
        "name": printable(cell.name),
        "sysfs_name": printable(cell.sysfs_name),
        "offset": cell.offset,
        "bit_offset": cell.bit_offset,
        "nbits": cell.nbits,
        "bytes": cell.bytes,
        "source": cell.source,
        "of_node": printable(cell.of_node) if cell.of_node is not None else None,
    }


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
        "notes": [printable(n) for n in entry.all_notes()],
        "validity": validity_records(entry),
    }


def validity_records(entry: ProviderEntry) -> list[dict[str, Any]]:
    """The media checks of *entry*, with the redundant-pair decision in the flagged one."""
    records = []
    for val in entry.validity:
        rec = {k: v for k, v in vars(val).items() if v is not None}
        if entry.redundant is not None and val.flag is not None:
            text = entry.redundant.describe(val.status == "valid")
            rec["detail"] = f"{rec['detail']}; {text}" if rec.get("detail") else text
        records.append(rec)
    return records


def redacted_provider_record(entry: ProviderEntry) -> dict[str, Any]:
    """What everyone may see of a root-only provider: nothing derived from its bytes.

    Properties are broadcast (GetManagedObjects, PropertiesChanged,
    InterfacesAdded), so for a root-only provider they carry names, offsets,
    sizes and each layout's valid/invalid verdict only: no checksum, flag,
    header bytes, nor the layout's error messages, which quote the media.
    ``Provider.GetDetails()`` gives the full record after the access check.
    """
    rec = provider_record(entry)
    if not entry.provider.root_only:
        return rec
    rec["validity"] = [{"layout": v.layout, "status": v.status} for v in entry.validity]
    if entry.errors:
        rec["errors"] = [f"{entry.name}: {len(entry.errors)} error(s) hidden: root-only "
                         "provider (Provider.GetDetails() shows them to privileged callers)"]
    rec["notes"] = [printable(n) for n in entry.notes]  # without the redundant-copy flags
    return rec


def broken_record(broken: BrokenProvider) -> dict[str, Any]:
    return {"name": broken.name, "errors": [broken.error], "cells": 0, "rejected": True}
