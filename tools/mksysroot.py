"""Build a sysroot from a DTS source and a board description.

The result has the layout of a real system (see the README): the device tree
under ``sys/firmware/devicetree/base`` (one file per property, raw bytes) and
``sys/firmware/fdt``, ``proc/device-tree`` as a relative link, and for each
provider ``sys/bus/nvmem/devices/<name>`` → ``sys/devices/.../<name>`` with
``nvmem``, ``type``, ``force_ro``, ``uevent``, ``subsystem`` and ``of_node``.
Used by the demo board and the tests; handy to reproduce a bug report too::

    python3 tools/mksysroot.py board.dts board.toml OUT

The board description (TOML)::

    [[provider]]
    name = "imx-ocotp0"                      # sysfs name
    of_node = "/soc/efuse@30350000"          # DT path (omit: no of_node link)
    device = "platform/soc/30350000.efuse"   # parent device below sys/devices
    bus = "platform"                         # parent's subsystem: bus/<bus> ...
    class = "mtd"                            # ... or class/<class>
    driver = "imx_ocotp"                     # parent's driver (bus devices)
    type = "OTP"
    mode = "0644"                            # of the nvmem file
    force_ro = false                         # omit: no force_ro attribute
    size = 1024
    attributes = { type = "nor" }            # files in the parent device
    [provider.image]                         # contents; unset bytes are `fill`
    fill = 0xff
    data = [ { offset = 0x10, hex = "0011" }, { offset = 0x20, text = "SN1" } ]

    [[netdev]]                               # a network interface (sys/class/net/<name>)
    name = "eth0"
    device = "platform/soc/30be0000.ethernet"  # its parent device below sys/devices
    of_node = "/soc/ethernet@30be0000"       # of_node link of the parent and the netdev
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path
from typing import Any

DT_BASE = "sys/firmware/devicetree/base"


def compile_dts(dts: Path, include_dirs: tuple[Path, ...] = ()) -> bytes:
    """``dtc -I dts -O dtb -@``: the blob, with ``__symbols__`` for labels."""
    cmd = ["dtc", "-q", "-I", "dts", "-O", "dtb", "-@", "-o", "-"]
    for inc in include_dirs:
        cmd += ["-i", str(inc)]
    return subprocess.run([*cmd, str(dts)], check=True, capture_output=True).stdout


def expand_fdt(blob: bytes, base: Path) -> None:
    """Write the tree as the kernel's ``/sys/firmware/devicetree/base`` shows it."""
    import libfdt

    fdt = libfdt.Fdt(blob)

    def visit(offset: int, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        name = fdt.get_name(offset)
        if offset:
            (directory / "name").write_bytes(name.split("@")[0].encode() + b"\0")
        prop = fdt.first_property_offset(offset, libfdt.QUIET_NOTFOUND)
        while prop >= 0:
            p = fdt.get_property_by_offset(prop)
            (directory / p.name).write_bytes(bytes(p))
            prop = fdt.next_property_offset(prop, libfdt.QUIET_NOTFOUND)
        child = fdt.first_subnode(offset, libfdt.QUIET_NOTFOUND)
        while child >= 0:
            visit(child, directory / fdt.get_name(child))
            child = fdt.next_subnode(child, libfdt.QUIET_NOTFOUND)

    visit(0, base)


def build_image(size: int, image: dict[str, Any]) -> bytes:
    """Provider contents from ``fill`` and ``data`` rows (``hex``, ``text``, ``crc32``)."""
    buf = bytearray([image.get("fill", 0xFF)]) * size
    for row in image.get("data", []):
        off = row["offset"]
        if "hex" in row:
            chunk = bytes.fromhex(row["hex"])
        elif "text" in row:
            chunk = row["text"].encode() + (b"\0" if row.get("nul", False) else b"")
        elif "file" in row:
            chunk = Path(row["file"]).read_bytes()
        else:
            raise ValueError(f"image row at {off:#x} has no hex/text/file")
        buf[off : off + len(chunk)] = chunk
    for row in image.get("crc32", []):
        # {offset = where, start = a, end = b, endian = "little"}
        crc = zlib.crc32(bytes(buf[row["start"] : row["end"]]))
        buf[row["offset"] : row["offset"] + 4] = crc.to_bytes(4, row.get("endian", "little"))
    return bytes(buf)


def _rel_link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(target, link.parent))


def _write(path: Path, data: bytes | str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    if mode is not None:
        path.chmod(mode)


def add_provider(root: Path, p: dict[str, Any], image_dir: Path | None = None) -> Path:
    sys_dir = root / "sys"
    parent_rel = p["device"].strip("/")
    parent = sys_dir / "devices" / parent_rel
    # Ancestors carry uevent files, as in real sysfs.
    walk = sys_dir / "devices"
    for part in Path(parent_rel).parts:
        walk = walk / part
        walk.mkdir(parents=True, exist_ok=True)
        if not (walk / "uevent").exists():
            _write(walk / "uevent", "")
    if "bus" in p:
        bus = sys_dir / "bus" / p["bus"]
        (bus / "devices").mkdir(parents=True, exist_ok=True)
        _rel_link(parent / "subsystem", bus)
        if "driver" in p:
            drv = bus / "drivers" / p["driver"]
            drv.mkdir(parents=True, exist_ok=True)
            _rel_link(parent / "driver", drv)
            _write(parent / "uevent", f"DRIVER={p['driver']}\n")
    elif "class" in p:
        cls = sys_dir / "class" / p["class"]
        cls.mkdir(parents=True, exist_ok=True)
        _rel_link(parent / "subsystem", cls)
        _rel_link(cls / parent.name, parent)
    for key, value in p.get("attributes", {}).items():
        _write(parent / key, f"{value}\n")
    if p.get("parent_of_node"):
        _rel_link(parent / "of_node", root / DT_BASE / p["parent_of_node"].lstrip("/"))

    dev: Path = parent / p["name"]
    dev.mkdir(parents=True, exist_ok=True)
    image = p.get("image", {})
    if "file" in image and image_dir is not None:
        data = (image_dir / image["file"]).read_bytes()
    else:
        data = build_image(p["size"], image)
    nvmem = dev / "nvmem"
    if nvmem.exists():
        nvmem.chmod(0o600)
    _write(nvmem, data, int(str(p.get("mode", "0444")), 8))
    _write(dev / "type", f"{p.get('type', 'Unknown')}\n")
    if "force_ro" in p:
        _write(dev / "force_ro", "1\n" if p["force_ro"] else "0\n")
    uevent = ""
    if p.get("of_node"):
        of = p["of_node"]
        uevent = f"OF_NAME={of.rsplit('/', 1)[-1].split('@')[0]}\nOF_FULLNAME={of}\n"
        _rel_link(dev / "of_node", root / DT_BASE / of.lstrip("/"))
    _write(dev / "uevent", uevent)
    nvmem_bus = sys_dir / "bus" / "nvmem"
    _rel_link(dev / "subsystem", nvmem_bus)
    _rel_link(nvmem_bus / "devices" / p["name"], dev)
    return dev


def add_netdev(root: Path, n: dict[str, Any]) -> Path:
    """``sys/devices/<device>/net/<name>``, linked from ``sys/class/net/<name>``.

    The parent device and the interface both get an ``of_node`` link, and the
    interface a ``device`` link to its parent, as an Ethernet driver leaves them.
    """
    parent = root / "sys" / "devices" / n["device"].strip("/")
    dev: Path = parent / "net" / n["name"]
    dev.mkdir(parents=True, exist_ok=True)
    _write(dev / "uevent", f"INTERFACE={n['name']}\n")
    _write(dev / "address", f"{n.get('address', '00:00:00:00:00:00')}\n")
    _rel_link(dev / "device", parent)
    if n.get("of_node"):
        target = root / DT_BASE / n["of_node"].lstrip("/")
        _rel_link(parent / "of_node", target)
        _rel_link(dev / "of_node", target)
    net_class = root / "sys" / "class" / "net"
    net_class.mkdir(parents=True, exist_ok=True)
    _rel_link(dev / "subsystem", net_class)
    _rel_link(net_class / n["name"], dev)
    return dev


def build_sysroot(dts: Path, board: dict[str, Any], out: Path,
                  osrelease: str | None = "6.12.117+deb12-arm64") -> Path:
    """Build a sysroot at *out* (created) from *dts* and the parsed *board*."""
    blob = compile_dts(dts, (dts.parent,))
    out.mkdir(parents=True, exist_ok=True)
    expand_fdt(blob, out / DT_BASE)
    _write(out / "sys/firmware/fdt", blob, 0o400)
    (out / "proc").mkdir(exist_ok=True)
    _rel_link(out / "proc/device-tree", out / DT_BASE)
    if osrelease:
        _write(out / "proc/sys/kernel/osrelease", osrelease + "\n")
    (out / "sys/bus/nvmem/devices").mkdir(parents=True, exist_ok=True)
    for p in board.get("provider", []):
        add_provider(out, p, dts.parent)
    for n in board.get("netdev", []):
        add_netdev(out, n)
    if "config" in board:
        _write(out / "etc/nvmemd/nvmemd.toml", board["config"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m mksysroot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dts", type=Path)
    ap.add_argument("board", type=Path, help="board description (TOML)")
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    board = tomllib.loads(args.board.read_text())
    build_sysroot(args.dts, board, args.out)
    print(args.out)
    return 0



if __name__ == "__main__":
    sys.exit(main())
