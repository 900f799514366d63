"""Contents of the system test board's NVMEM (tools/systemtest/board.dts), deterministic.

images() -> {name: bytes}; run.py puts the rmem images in RAM with qemu's loader device
and the flash image on virt's pflash bank 1.
"""
from __future__ import annotations

import struct
import zlib

RMEM = 0x1000
ENV = 0x40000

# where run.py loads each rmem image (the reserved-memory nodes' addresses)
LOADERS = {"board-id": 0x5FF00000, "onie": 0x5FF10000}
FLASH = "flash"

# the MAC the set-MAC example unit must give the virtio-net interface (board-id cell)
BOARD_MAC = "02:00:5e:00:53:01"


def _pad(data: bytes, size: int, fill: bytes = b"\xff") -> bytes:
    assert len(data) <= size
    return data + fill * (size - len(data))


def board_id() -> bytes:
    data = bytearray(b"\xff" * RMEM)
    data[0x00:0x10] = b"NVD-SYSTEST-0042"
    data[0x10:0x30] = _pad(b"nvmemd system test board rev C\0", 0x20)
    data[0x40:0x46] = bytes.fromhex(BOARD_MAC.replace(":", ""))
    data[0x46:0x48] = b"\xc3\x5a"
    return bytes(data)


def onie(tlvs: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([t, len(v)]) + v for t, v in tlvs) + b"\xfe\x04"
    hdr = b"TlvInfo\0" + b"\x01" + struct.pack(">H", len(body) + 4)
    table = hdr + body + struct.pack(">I", zlib.crc32(hdr + body))
    return _pad(table, RMEM)


def uboot_env(variables: list[bytes]) -> bytes:
    data = b"".join(v + b"\0" for v in variables) + b"\0"
    body = _pad(data, ENV - 4, b"\0")
    return struct.pack("<I", zlib.crc32(body)) + body


def flash() -> bytes:
    env = uboot_env([b"arch=arm", b"baudrate=115200", b"ethaddr=02:00:5e:10:00:10",
                     b"serial#=NVD-SYSTEST-0042", b"bootcmd=run distro_bootcmd"])
    factory = bytearray(b"\xff" * ENV)
    factory[0:6] = bytes.fromhex("02000000aa02")
    factory[6] = 0x05
    factory[0x1000:0x1020] = bytes(range(32))
    asset = bytearray(b"\xff" * ENV)
    asset[0x20:0x30] = _pad(b"ASSET-0042\0", 0x10)
    return env + bytes(factory) + bytes(asset)


def images() -> dict[str, bytes]:
    return {
        "board-id": board_id(),
        "onie": onie([(0x21, b"NVMEMD-SYSTEST"), (0x23, b"TLV-SN-0042"),
                      (0x24, bytes.fromhex("02c0ffee0042")), (0x2A, b"\x00\x04")]),
        FLASH: flash(),
    }
