"""Broadcom NVRAM: the cells ``drivers/nvmem/brcm_nvram.c`` builds itself.

Mirrors ``brcm_nvram_copy_data()``, ``brcm_nvram_parse()`` and
``brcm_nvram_add_cells()`` as of 6.12.117 (with the length checks of the
2025–2026 fixes).  The driver passes its cells in ``nvmem_config.cells``, so
they are in sysfs; nvmemd publishes the same on kernels without the driver's
cells (before ``cells/`` existed).  The driver does not check the header's
CRC-8 byte; nvmemd does not either (validity reports the header only).
"""

from __future__ import annotations

from ..cells import entry_from_info
from ..errors import DeviceTreeError, LayoutError
from ..macaddr import ETH_ALEN, ascii_mac_post_process, quoted
from ..model import CellInfo, Validity
from . import LayoutContext, LayoutResult, child_path
from .variables import iter_variables

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final

SOURCE: Final = "brcm-nvram"

#: brcm_nvram.c: NVRAM_MAGIC, sizeof(struct brcm_nvram_header), the SZ_128K warning
NVRAM_MAGIC: Final = b"FLSH"
NVRAM_HEADER_LEN: Final = 20
NVRAM_WARN_SIZE: Final = 128 * 1024

#: brcm_nvram_add_cells(): variables that become 6 binary bytes
BRCM_NVRAM_MAC_VARIABLES: Final = frozenset({"et0macaddr", "et1macaddr", "et2macaddr"})


def copy_data(region: bytes) -> tuple[bytes, int]:
    """``brcm_nvram_copy_data()``: (data without trailing padding, padding byte)."""
    if not region:
        return b"", 0
    padding = region[-1]
    data_len = len(region.rstrip(bytes([padding])))
    return region[:data_len], padding


def parse(ctx: LayoutContext) -> LayoutResult:
    region = ctx.read(0, ctx.size)
    data, padding = copy_data(region)
    result = LayoutResult()
    if len(data) > NVRAM_WARN_SIZE:
        result.errors.append(LayoutError(f"Unexpected (big) NVRAM size: {len(data)} B"))
    if len(data) < NVRAM_HEADER_LEN:
        detail = f"NVRAM data too small ({len(data)})"
        result.errors.append(LayoutError(detail + " (-EINVAL)"))
        result.validity = Validity(SOURCE, "absent" if not data else "invalid", detail=detail)
        return result
    if data[:4] != NVRAM_MAGIC:
        detail = f"Invalid NVRAM magic: expected {quoted(NVRAM_MAGIC)}, found {quoted(data[:4])}"
        result.errors.append(LayoutError(detail + " (-EINVAL)"))
        result.validity = Validity(SOURCE, "invalid", detail=detail)
        return result
    length = int.from_bytes(data[4:8], "little")
    if length < NVRAM_HEADER_LEN:
        detail = f"NVRAM length ({length}) too small"
    elif length > len(data):
        detail = f"NVRAM length ({length}) exceeds data size ({len(data)})"
    else:
        detail = ""
    if detail:
        result.errors.append(LayoutError(detail + " (-EINVAL)"))
        result.validity = Validity(SOURCE, "invalid", detail=detail)
        return result
    cells, error = add_cells(ctx, data, length)
    if error is not None:
        result.errors.append(error)
        result.validity = Validity(SOURCE, "invalid", detail=str(error))
        return result
    result.cells = cells
    result.validity = Validity(SOURCE, "valid",
                               detail=f"header length {length}, padding 0x{padding:02x}")
    return result


def add_cells(ctx: LayoutContext, data: bytes, length: int
              ) -> tuple[list[CellInfo], LayoutError | None]:
    """``brcm_nvram_add_cells()``; a variable without ``=`` fails registration."""
    buf = bytearray(data[:length])
    buf[length - 1] = 0
    strings = 0  # the first pass sizes the cell array over every string
    pos = NVRAM_HEADER_LEN
    while pos < length and buf[pos]:
        strings += 1
        pos = buf.index(0, pos) + 1
    cells: list[CellInfo] = []
    for var in iter_variables(bytes(buf), NVRAM_HEADER_LEN):
        node = child_path(ctx.node, var.name)
        try:
            if var.name in BRCM_NVRAM_MAC_VARIABLES:
                cell = entry_from_info(var.name, var.offset, ETH_ALEN, ctx.access,
                                       raw_len=var.length, node=node, source=SOURCE,
                                       post_process=ascii_mac_post_process)
            else:
                cell = entry_from_info(var.name, var.offset, var.length, ctx.access, node=node,
                                       source=SOURCE)
        except DeviceTreeError as e:
            return [], LayoutError(f"{e}; nvmem_register() fails, the provider has no cells")
        cells.append(cell)
    if len(cells) < strings:
        # The array was sized for every string; the zeroed entries left after the first
        # one without '=' have a NULL name: kstrdup_const() → -ENOMEM in nvmem_register().
        return [], LayoutError(
            f"entry {len(cells) + 1} of {strings} has no '=': its zeroed cell has no name, "
            "nvmem_register() fails with -ENOMEM and the provider has no cells")
    return cells, None

