"""``nvmemd-query identity [--json]``: the board's serial number, base MAC … in one answer.

Self-contained: :func:`add_parser` adds the subcommand, :func:`run` answers it
from any back end with an ``identity()`` method (nvmemd.identity directly,
``Manager.GetIdentity()`` over the bus), so the output is the same either way.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, BinaryIO

#: Human-readable labels, in output order.
LABELS = {
    "serial_number": "Serial number", "product_name": "Product name",
    "platform_name": "Platform name", "part_number": "Part number", "vendor": "Vendor",
    "manufacturer": "Manufacturer", "manufacture_date": "Manufacture date",
    "hw_revision": "Hardware revision", "base_mac": "Base MAC", "mac_count": "MAC count",
    "model": "Model",
}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    sub.add_parser("identity", parents=[common],
                   help="the board's serial number, base MAC and each interface's MAC, "
                        "with their sources")


def run(backend: Any, args: argparse.Namespace, out: BinaryIO) -> int:
    ident: dict[str, Any] = backend.identity()
    if args.json:
        out.write(json.dumps(ident, indent=2, ensure_ascii=False).encode() + b"\n")
        return 0
    width = max(len(label) for label in LABELS) + 2
    lines = []
    for key, label in LABELS.items():
        if key in ident:
            lines.append(f"{label + ':':<{width}} {ident[key]['value']}  "
                         f"({ident[key]['source']})")
    for iface in ident.get("interfaces", []):
        lines.append(f"{iface['name'] + ':':<{width}} {iface['mac_address']}  "
                     f"({iface['source']})")
    for c in ident.get("conflicts", []):
        lines.append(f"conflict: {LABELS.get(c['field'], c['field'])}: {c['value']} "
                     f"({c['source']})")
    for source in ident.get("protected", []):
        lines.append(f"protected: {source} (root-only provider; not read)")
    for err in ident.get("errors", []):
        lines.append(f"error: {err}")
    from .common import printable  # names from media: no control characters on a terminal

    out.write("".join(printable(line) + "\n" for line in lines).encode("utf-8",
                                                                         "backslashreplace"))
    return 0
