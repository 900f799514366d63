"""ONIE TLV EEPROM layout.

Mirrors ``drivers/nvmem/layouts/onie-tlv.c`` (``onie_tlv_parse_table()``,
``onie_tlv_add_cells()``), with the 6.12 stable fix "fix hang on unknown
types" (unknown TLVs are skipped, not looped on).  Beyond the kernel, the
result carries the CRC status (``valid``/``invalid``/``absent``).
"""

from __future__ import annotations

from ..cells import entry_from_info
from ..crc import crc32
from ..errors import DeviceTreeError, LayoutError
from ..macaddr import eth_addr_add, quoted
from ..model import Validity
from . import LayoutContext, LayoutResult, child_path, invalid_media

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final, Literal

    from ..model import PostProcess

SOURCE: Final = "onie-tlv"

#: onie-tlv.c: ONIE_TLV_MAX_LEN, ONIE_TLV_CRC_FIELD_SZ, ONIE_TLV_CRC_SZ, ONIE_TLV_HDR_ID
ONIE_TLV_MAX_LEN: Final = 2048
ONIE_TLV_CRC_FIELD_SZ: Final = 6
ONIE_TLV_CRC_SZ: Final = 4
ONIE_TLV_HDR_ID: Final = b"TlvInfo\0"
#: sizeof(struct onie_tlv_hdr): id[8], version, __be16 data_len
ONIE_TLV_HDR_LEN: Final = 11
ONIE_TLV_CRC_TYPE: Final = 0xFE
#: ONIE's TLV_CODE_MAC_SIZE: a big-endian u16, how many addresses start at 0x24
ONIE_TLV_NUM_MACS: Final = 0x2A

#: drivers/nvmem/layouts/onie-tlv.c: onie_tlv_cell_name()
ONIE_TLV_CELL_NAMES: Final[dict[int, str]] = {
    0x21: "product-name",
    0x22: "part-number",
    0x23: "serial-number",
    0x24: "mac-address",
    0x25: "manufacture-date",
    0x26: "device-version",
    0x27: "label-revision",
    0x28: "platform-name",
    0x29: "onie-version",
    0x2A: "num-macs",
    0x2B: "manufacturer",
    0x2C: "country-code",
    0x2D: "vendor",
    0x2E: "diag-version",
    0x2F: "service-tag",
    0xFD: "vendor-extension",
    0xFE: "crc32",
}


def onie_tlv_mac_read_cb(cell_id: str, index: int, buf: bytes) -> bytes:
    """``onie_tlv_mac_read_cb()``: ``eth_addr_add(buf, index)``."""
    return eth_addr_add(buf, index)


#: onie-tlv.c: onie_tlv_read_cb(): type → read_post_process
ONIE_TLV_READ_CB: Final[dict[int, PostProcess]] = {
    0x24: onie_tlv_mac_read_cb,
}


def _shown(what: bytes | str) -> str:
    return quoted(what) if isinstance(what, bytes) else what


def _blank(data: bytes) -> bool:
    return bool(data) and (data == b"\xff" * len(data) or data == b"\0" * len(data))


def parse(ctx: LayoutContext) -> LayoutResult:
    """``onie_tlv_parse_table()``: header, length, CRC, then the TLVs."""
    if ctx.size < ONIE_TLV_HDR_LEN:
        raise LayoutError(f"-EINVAL: device too small for an ONIE TLV header ({ctx.size} bytes)")
    hdr = ctx.read(0, ONIE_TLV_HDR_LEN)
    if len(hdr) < ONIE_TLV_HDR_LEN:
        raise LayoutError(f"-EIO: short read of the ONIE TLV header ({len(hdr)} bytes)")
    if hdr[:8] != ONIE_TLV_HDR_ID or hdr[8] != 0x01:
        why = "Invalid header" if hdr[:8] != ONIE_TLV_HDR_ID else "Invalid version number"
        found = hdr[:8] if hdr[:8] != ONIE_TLV_HDR_ID else f"version {hdr[8]}"
        status: Literal["absent", "invalid"] = "absent" if _blank(hdr) else "invalid"
        expected = ONIE_TLV_HDR_ID if hdr[:8] != ONIE_TLV_HDR_ID else "version 1"
        detail = f"{why}: expected {_shown(expected)}, found {_shown(found)}"
        return invalid_media(SOURCE, detail, status=status,
                             error=f"{detail}; Invalid ONIE TLV header")
    data_len = int.from_bytes(hdr[9:11], "big")
    table_len = ONIE_TLV_HDR_LEN + data_len
    if table_len > ONIE_TLV_MAX_LEN:
        detail = (f"Invalid ONIE TLV data length: {table_len} bytes with the header, "
                  f"at most {ONIE_TLV_MAX_LEN}")
        return invalid_media(SOURCE, detail)
    if table_len > ctx.size or data_len < ONIE_TLV_CRC_FIELD_SZ:
        # The kernel would read past the device (the driver's answer decides) or before
        # the table (data_len < 6: the CRC field overlaps the header); nvmemd refuses both.
        detail = (f"table of {table_len} bytes does not fit the device ({ctx.size} bytes)"
                  if table_len > ctx.size else
                  f"table of {data_len} data bytes has no room for the CRC field")
        return invalid_media(SOURCE, detail, error=f"Invalid CRC field: {detail}")
    table = ctx.read(0, table_len)
    if len(table) != table_len:
        raise LayoutError(f"-EIO: short read of the ONIE TLV table ({len(table)} of "
                          f"{table_len} bytes)")
    crc_hdr = table[table_len - ONIE_TLV_CRC_FIELD_SZ : table_len - ONIE_TLV_CRC_SZ]
    if crc_hdr[0] != ONIE_TLV_CRC_TYPE or crc_hdr[1] != ONIE_TLV_CRC_SZ:
        detail = (f"Invalid CRC field: expected type 0xfe length 4 at "
                  f"{table_len - ONIE_TLV_CRC_FIELD_SZ:#x}, found type {crc_hdr[0]:#04x} "
                  f"length {crc_hdr[1]}")
        return invalid_media(SOURCE, detail)
    read_crc = int.from_bytes(table[table_len - ONIE_TLV_CRC_SZ :], "big")
    calc_crc = crc32(table[: table_len - ONIE_TLV_CRC_SZ])
    if read_crc != calc_crc:
        return invalid_media(SOURCE, "CRC-32 mismatch",
                             error=f"Invalid CRC read: 0x{read_crc:08x}, expected: "
                                   f"0x{calc_crc:08x}",
                             expected=f"0x{read_crc:08x}", found=f"0x{calc_crc:08x}")
    result = add_cells(ctx, table[ONIE_TLV_HDR_LEN:], data_len)
    result.validity = Validity(SOURCE, "valid", expected=f"0x{read_crc:08x}",
                               found=f"0x{calc_crc:08x}")
    return result


def add_cells(ctx: LayoutContext, data: bytes, data_len: int) -> LayoutResult:
    """``onie_tlv_add_cells()``: walk the TLVs, stop at the first out-of-bounds one."""
    result = LayoutResult()
    offset = 0
    while offset < data_len:
        tlv_type = data[offset]
        # The kernel copies 2 bytes; at data_len - 1 the length byte lies past the
        # table (heap memory).  Treat it as out of bounds rather than guess.
        tlv_len = data[offset + 1] if offset + 1 < data_len else None
        if tlv_len is None or offset + tlv_len >= data_len:
            shown = "?" if tlv_len is None else f"0x{tlv_len:x}"
            result.errors.append(LayoutError(
                f"Out of bounds field ({shown} bytes at 0x{ONIE_TLV_HDR_LEN + offset:x})"))
            break
        name = ONIE_TLV_CELL_NAMES.get(tlv_type)
        if name is not None:
            pp = ONIE_TLV_READ_CB.get(tlv_type)
            try:
                cell = entry_from_info(
                    name, ONIE_TLV_HDR_LEN + offset + 2, tlv_len, ctx.access,
                    node=child_path(ctx.node, name), source=SOURCE,
                    post_process=pp)
            except DeviceTreeError as e:  # nvmem_add_one_cell() failed: stop, keep the rest
                result.errors.append(LayoutError(str(e)))
                break
            result.cells.append(cell)
            if tlv_type == ONIE_TLV_NUM_MACS:
                result.num_macs = int.from_bytes(data[offset + 2 : offset + 2 + tlv_len], "big")
        offset += 2 + tlv_len
    return result
