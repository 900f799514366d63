"""Checksums the on-media formats use.

- :func:`crc32` is the kernel's ``crc32(~0, buf, len) ^ ~0`` (``crc32_le``),
  i.e. zlib's CRC-32: ONIE TLV, U-Boot environment.
- :func:`crc8` is ``lib/crc8.c``: ``crc8_populate_msb(table, poly)`` then
  ``crc8(table, buf, len, init)``, MSB first, no final XOR (sl28 VPD uses
  polynomial 0x07, init 0).
"""

from __future__ import annotations

import zlib


def crc32(data: bytes) -> int:
    """``crc32_le(~0, data, len) ^ ~0``: the standard (zlib) CRC-32."""
    return zlib.crc32(data) & 0xFFFFFFFF


def crc8_table_msb(polynomial: int) -> tuple[int, ...]:
    """``lib/crc8.c: crc8_populate_msb()``."""
    table = [0] * 256
    t = 0x80
    i = 1
    while i < 256:
        t = ((t << 1) ^ (polynomial if t & 0x80 else 0)) & 0xFF
        for j in range(i):
            table[i + j] = table[j] ^ t
        i <<= 1
    return tuple(table)


def crc8(data: bytes, polynomial: int = 0x07, init: int = 0) -> int:
    """``lib/crc8.c: crc8()`` with an MSB-first table (built per call: the sl28 VPD's
    24 bytes are its only input, and functools.cache would cost more at start-up)."""
    table = crc8_table_msb(polynomial)
    crc = init
    for b in data:
        crc = table[(crc ^ b) & 0xFF]
    return crc
