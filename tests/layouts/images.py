"""Builders of on-media images for the layout tests (no committed binaries)."""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from nvmemd.cells import decode_cell
from nvmemd.crc import crc8
from nvmemd.devicetree import DeviceTree, DtNode
from nvmemd.errors import LayoutError
from nvmemd.layouts import LayoutContext, LayoutResult
from nvmemd.model import BYTE_ACCESS, Access
from nvmemd.sysroot import Sysroot


def onie(tlvs: list[tuple[int, bytes]], size: int = 0x1000, *, bad_crc: bool = False,
         version: int = 1, magic: bytes = b"TlvInfo\0", fill: int = 0xFF) -> bytes:
    """An ONIE TLV table (CRC TLV appended) padded to *size*."""
    body = b"".join(bytes([t, len(v)]) + v for t, v in tlvs) + b"\xfe\x04"
    hdr = magic + bytes([version]) + struct.pack(">H", len(body) + 4)
    crc = zlib.crc32(hdr + body) ^ (1 if bad_crc else 0)
    table = hdr + body + struct.pack(">I", crc)
    return table + bytes([fill]) * (size - len(table))


def sl28(serial: bytes = b"SL28-0000123456", mac: bytes = bytes.fromhex("00a0a5123456"),
         size: int = 0x100, *, bad_crc: bool = False, version: int = 1) -> bytes:
    vpd = b"V" + bytes([version]) + serial[:15].ljust(15, b"\0") + mac
    vpd += bytes([crc8(vpd) ^ (1 if bad_crc else 0)])
    return vpd + b"\xff" * (size - len(vpd))


def uboot_env(variables: list[bytes], size: int = 0x1000, *, fmt: str = "single",
              flag: int = 1, bad_crc: bool = False, fill: int = 0x00) -> bytes:
    """A U-Boot environment; the CRC covers everything after the header to the end."""
    data = b"".join(v + b"\0" for v in variables) + b"\0"
    head = bytes([flag]) if fmt == "redundant" else b""
    header_len = {"single": 4, "redundant": 5, "broadcom": 12}[fmt]
    body = data + bytes([fill]) * (size - header_len - len(data))
    crc = zlib.crc32(body) ^ (0xDEADBEEF if bad_crc else 0)
    if fmt == "broadcom":
        return b"UBEN" + struct.pack("<I", size) + struct.pack("<I", crc) + body
    return struct.pack("<I", crc) + head + body


def brcm_nvram(variables: list[bytes], size: int = 0x1000, *, padding: int = 0xFF,
               length: int | None = None, magic: bytes = b"FLSH") -> bytes:
    data = b"".join(v + b"\0" for v in variables) + b"\0"
    total = 20 + len(data)
    hdr = magic + struct.pack("<I", total if length is None else length) + bytes(12)
    image = hdr + data
    return image + bytes([padding]) * (size - len(image))


def empty_node(tmp: Path | None = None, path: str = "/nvmem-layout") -> DtNode:
    """A DT node without children (the parsers only look for children by name)."""
    return DeviceTree(Sysroot(str(tmp or Path("/nonexistent-nvmemd-test")))).node(path)


def fuzz_context(image: bytes, compatible: str) -> LayoutContext:
    """A context whose read() fails the test on any access outside the provider."""
    return context(image, compatible, empty_node())


def assert_parse_stays_inside(parse: Callable[[LayoutContext], LayoutResult], image: bytes,
                              compatible: str, index: int, decode_may_fail: bool = True) -> None:
    """The fuzz property of every parser: only its own LayoutError escapes, no read
    leaves the provider, every cell lies inside it and decodes (or is refused with
    LayoutError, like the kernel's -EINVAL post-processing, when *decode_may_fail*)."""
    try:
        r = parse(fuzz_context(image, compatible))
    except LayoutError:
        return
    for cell in r.cells:
        assert cell.offset >= 0 and cell.offset + cell.raw_len <= len(image)
        raw = image[cell.offset : cell.offset + cell.raw_len]
        if decode_may_fail:
            with contextlib.suppress(LayoutError):
                decode_cell(cell, raw, cell.name, index)
        else:
            decode_cell(cell, raw, cell.name, index)


class BoundsError(AssertionError):
    pass


def bounded_reader(image: bytes) -> tuple[Callable[[int, int], bytes], list[tuple[int, int]]]:
    """A read() that fails the test on any access outside the provider; logs the reads."""
    log: list[tuple[int, int]] = []

    def read(offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > len(image):
            raise BoundsError(f"read of {length} bytes at {offset:#x} outside a provider of "
                              f"{len(image)} bytes")
        log.append((offset, length))
        return image[offset : offset + length]

    return read, log


def context(image: bytes, compatible: str, node: DtNode, access: Access = BYTE_ACCESS
            ) -> LayoutContext:
    read, _ = bounded_reader(image)
    return LayoutContext(provider="test0", size=len(image), access=access, node=node,
                         read=read, compatible=compatible)


def rmem_sysroot(tmp: Path, regions: list[tuple[str, bytes]]) -> Path:
    """A sysroot with one nvmem-rmem provider ``rmemN`` per (DTS body of the node, image).

    Provider ``rmemN`` has the node ``/soc/nvmem@<(N+1)*0x10000 in hex>``.

    Each body is the inside of ``nvmem@N { compatible = "nvmem-rmem"; ... }``, typically
    an ``nvmem-layout`` node.  The images are written next to the DTS and referenced by
    file name, as a board TOML would.
    """
    from tests.sysroots import inline_sysroot

    src = tmp / "src"
    src.mkdir(parents=True, exist_ok=True)
    nodes = []
    providers = []
    for i, (body, image) in enumerate(regions):
        addr = (i + 1) << 16
        (src / f"rmem{i}.bin").write_bytes(image)
        nodes.append(f"\t\tnvmem@{addr:x} {{\n\t\t\tcompatible = \"nvmem-rmem\";\n"
                     f"\t\t\treg = <0x{addr:x} 0x{len(image):x}>;\n{body}\n\t\t}};")
        providers.append({
            "name": f"rmem{i}", "of_node": f"/soc/nvmem@{addr:x}",
            "device": f"platform/soc/{addr:x}.nvmem", "bus": "platform", "driver": "rmem",
            "type": "Unknown", "mode": "0444", "size": len(image),
            "image": {"file": f"rmem{i}.bin"},
        })
    dts = ("/dts-v1/;\n/ {\n\tsoc {\n\t\t#address-cells = <1>;\n\t\t#size-cells = <1>;\n"
           + "\n".join(nodes) + "\n\t};\n};\n")
    return inline_sysroot(tmp, dts, providers)
