"""Kontron sl28 VPD layout.

Mirrors ``drivers/nvmem/layouts/sl28vpd.c`` (``sl28vpd_add_cells()``,
``sl28vpd_v1_check_crc()``, ``sl28vpd_mac_address_pp()``).  Beyond the
kernel, the result carries the CRC-8 status.
"""

from __future__ import annotations

from ..cells import entry_from_info
from ..crc import crc8
from ..errors import DeviceTreeError, LayoutError
from ..macaddr import ETH_ALEN, eth_addr_add, is_valid_ether_addr
from ..model import Validity
from . import LayoutContext, LayoutResult, child_path, invalid_media

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final

    from ..model import PostProcess

SOURCE: Final = "sl28-vpd"

#: sl28vpd.c: SL28VPD_MAGIC, sizeof(struct sl28vpd_v1), crc8_populate_msb(table, 0x07)
SL28VPD_MAGIC: Final = ord("V")
SL28VPD_V1_SIZE: Final = 24
SL28VPD_CRC8_POLY: Final = 0x07


def sl28vpd_mac_address_pp(cell_id: str, index: int, buf: bytes) -> bytes:
    """``sl28vpd_mac_address_pp()``: -EINVAL for an invalid address, else add *index*."""
    if len(buf) != ETH_ALEN:
        raise LayoutError(f"-EINVAL: base-mac-address has {len(buf)} bytes, not 6")
    if index < 0:
        raise LayoutError(f"-EINVAL: negative MAC index {index}")
    if not is_valid_ether_addr(buf):
        raise LayoutError(f"-EINVAL: {buf.hex(':')} is not a valid Ethernet address "
                          "(zero or multicast)")
    return eth_addr_add(buf, index)


#: drivers/nvmem/layouts/sl28vpd.c: sl28vpd_v1_entries[] (name, offsetof, sizeof_field, pp)
SL28VPD_V1_ENTRIES: Final[tuple[tuple[str, int, int, PostProcess | None], ...]] = (
    ("serial-number", 2, 15, None),
    ("base-mac-address", 17, ETH_ALEN, sl28vpd_mac_address_pp),
)


def parse(ctx: LayoutContext) -> LayoutResult:
    if ctx.size < SL28VPD_V1_SIZE:
        # nvmem_device_read() past the end: the provider's reg_read decides; -EIO here.
        raise LayoutError(f"-EIO: device too small for VPD v1 ({ctx.size} bytes, "
                          f"{SL28VPD_V1_SIZE} needed)")
    # One read of the whole v1 structure (the device holds at least that much):
    # the header checks below look at its first two bytes.
    data = ctx.read(0, SL28VPD_V1_SIZE)
    if len(data) != SL28VPD_V1_SIZE:
        raise LayoutError(f"-EIO: short read of VPD v1 ({len(data)} bytes)")
    blank = data[:2] in (b"\xff\xff", b"\0\0")
    if data[0] != SL28VPD_MAGIC:
        return invalid_media(SOURCE, f"Invalid magic value ({data[0]:02x}), expected "
                             f"{SL28VPD_MAGIC:02x}", status="absent" if blank else "invalid")
    if data[1] != 1:
        return invalid_media(SOURCE, f"Version {data[1]} is unsupported (expected 1)")
    crc = crc8(data[: SL28VPD_V1_SIZE - 1], SL28VPD_CRC8_POLY, 0)
    stored = data[SL28VPD_V1_SIZE - 1]
    if crc != stored:
        return invalid_media(SOURCE, "CRC-8 mismatch",
                             error=f"Checksum is invalid (got {crc:02x}, expected {stored:02x})",
                             expected=f"0x{stored:02x}", found=f"0x{crc:02x}")
    result = LayoutResult(validity=Validity(SOURCE, "valid", expected=f"0x{stored:02x}",
                                            found=f"0x{crc:02x}"))
    for name, offset, size, pp in SL28VPD_V1_ENTRIES:
        try:
            result.cells.append(entry_from_info(
                name, offset, size, ctx.access, node=child_path(ctx.node, name),
                source=SOURCE, post_process=pp))
        except DeviceTreeError as e:
            result.errors.append(LayoutError(str(e)))
            break
    return result


