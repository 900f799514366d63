"""The ``a{sv}`` dictionaries of the D-Bus API: documented keys, one type each.

The daemon sends records (:mod:`nvmemd.records`) as ``a{sv}`` instead of JSON
inside strings, so GDBus, sd-bus and busctl users read typed values.  A key
whose value is None (JSON ``null``) is left out; :mod:`nvmemd.client` puts
it back, in the record's own key order, so ``nvmemd-query --json`` prints the
same bytes over the bus as in direct mode.

Byte values (``value``) travel as ``ay``; the JSON records carry them as hex.
Imports nothing from dbus-fast: the blocking client uses it too.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up, issue 12)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final

#: ``consumers`` entries and the ``consumer`` of a consumer lookup.
CONSUMER_KEYS: Final = {"node": "s", "name": "s", "index": "u"}

#: Cell records (``Cell.ReadRecord``, ``Manager.ReadCellRecord`` …): the keys
#: always there come first, in this order (``of_node`` left out when the
#: cell has no DT node); the rest only when they apply.
CELL_KEYS: Final = {
    "provider": "s", "name": "s", "sysfs_name": "s", "offset": "u", "bit_offset": "u",
    "nbits": "u", "bytes": "u", "source": "s", "of_node": "s",
    "value": "ay",  # Cell.ReadRecord only; absent when unreadable (then `error`)
    "error": "s",
    "error_detail": "s",  # with `error` when it is the kernel's strerror text: why
    "mac_base": "b",
    "decoded": "*",  # s: the MAC of a mac-base cell; t: an ONIE num-macs count
    "decoded_error": "s",
    "num_macs": "u",
    "consumers": "aa{sv}",  # CONSUMER_KEYS
    "consumer": "a{sv}",  # CONSUMER_KEYS
}
CELL_BASE: Final = ("provider", "name", "sysfs_name", "offset", "bit_offset", "nbits",
                    "bytes", "source", "of_node")

#: ``Validity`` entries: every key but ``layout`` and ``status`` only when known.
VALIDITY_KEYS: Final = {"layout": "s", "status": "s", "expected": "s", "found": "s",
                        "detail": "s", "flag": "y"}

#: ``Provider.Details`` / ``Provider.GetDetails()``: the record of
#: ``nvmemd-query providers --json``, every key always there (None ones left out).
PROVIDER_KEYS: Final = {
    "name": "s", "type": "s", "size": "t", "read_only": "b", "root_only": "b",
    "writable": "b", "of_node": "s", "compatible": "as", "driver": "s", "mtd_type": "s",
    "legacy_cells": "b", "stride": "u", "word_size": "u", "cells": "u",
    "kernel_cells": "b", "rejected": "b", "errors": "as", "notes": "as",
    "validity": "aa{sv}",
}

#: ``Manager.GetIdentity()`` (nvmemd.identity): each field found is ``{value, source}``
#: (both ``s``); the lists are always there.
IDENTITY_FIELDS: Final = ("serial_number", "product_name", "platform_name", "part_number",
                          "vendor", "manufacturer", "manufacture_date", "hw_revision",
                          "base_mac", "mac_count", "model")
IDENTITY_VALUE_KEYS: Final = {"value": "s", "source": "s"}
IDENTITY_INTERFACE_KEYS: Final = {"name": "s", "mac_address": "s", "source": "s",
                                  "consumer": "s"}
IDENTITY_CONFLICT_KEYS: Final = {"field": "s", "value": "s", "source": "s"}
IDENTITY_KEYS: Final = {
    **{f: "a{sv}" for f in IDENTITY_FIELDS},
    "interfaces": "aa{sv}",  # IDENTITY_INTERFACE_KEYS
    "conflicts": "aa{sv}",  # IDENTITY_CONFLICT_KEYS
    "protected": "as",  # sources the caller may not read (root-only providers)
    "errors": "as",
}

_NESTED: Final = {"consumers": CONSUMER_KEYS, "consumer": CONSUMER_KEYS,
                  "validity": VALIDITY_KEYS, "interfaces": IDENTITY_INTERFACE_KEYS,
                  "conflicts": IDENTITY_CONFLICT_KEYS,
                  **{f: IDENTITY_VALUE_KEYS for f in IDENTITY_FIELDS}}


def to_wire(record: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """*record* as ``{key: (signature, value)}``; None values are left out."""
    out: dict[str, tuple[str, Any]] = {}
    for key, value in record.items():
        if value is None:
            continue
        sig = keys.get(key)
        if sig is None:
            raise KeyError(f"undocumented record key {key!r}")
        if sig == "*":
            sig = "s" if isinstance(value, str) else "t"
        if sig == "ay" and isinstance(value, str):
            value = bytes.fromhex(value)
        elif key in _NESTED and sig in ("a{sv}", "aa{sv}"):
            nested = _NESTED[key]
            value = ([to_wire(v, nested) for v in value] if sig.startswith("aa")
                     else to_wire(value, nested))
        out[key] = (sig, value)
    return out


def consumer_from_wire(d: Mapping[str, Any]) -> dict[str, Any]:
    return {"node": d.get("node"), "name": d.get("name"), "index": d.get("index")}


def cell_from_wire(d: Mapping[str, Any], with_value: bool) -> dict[str, Any]:
    """The JSON cell record of a received ``a{sv}`` (*with_value*: a ``cells`` record)."""
    out = {k: d.get(k) for k in CELL_BASE}
    if with_value:
        value = d.get("value")
        out["value"] = bytes(value).hex() if value is not None else None
    for key, value in d.items():
        if key in out or key == "value":
            continue
        if key == "consumers":
            value = [consumer_from_wire(c) for c in value]
        elif key == "consumer":
            value = consumer_from_wire(value)
        out[key] = value
    return out


def provider_from_wire(d: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: d.get(k) for k in PROVIDER_KEYS}
    out["validity"] = [dict(v) for v in d.get("validity", [])]
    return out
