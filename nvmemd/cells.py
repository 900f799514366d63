"""Cells: from device-tree nodes to what a reader gets.

Mirrors ``drivers/nvmem/core.c``:

- :func:`add_cells_from_dt` is ``nvmem_add_cells_from_dt()`` with
  ``nvmem_cell_info_to_nvmem_cell_entry_nodup()``: the same checks, the same
  messages, the same stop-at-first-error;
- :func:`shift_read_buffer_in_place` is ``nvmem_shift_read_buffer_in_place()``
  as of 6.12.117 (bit offsets of 8 and more included);
- the driver hooks (``fixup_dt_cell_info``) of qfprom, imx-ocotp and mtk-efuse.
"""

from __future__ import annotations

from .devicetree import DtNode
from .errors import DeviceTreeError
from .model import Access, CellInfo
from .values import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from .model import Fixup, PostProcess


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


@record
class CellsResult:
    """Cells one source produced, and why it stopped early (if it did)."""

    cells: list[CellInfo] = field(default_factory=list)
    #: Every invalid cell node; the kernel stops at the first, nvmemd reports them all.
    errors: list[DeviceTreeError] = field(default_factory=list)
    #: Valid cell nodes after the first error: the kernel never reaches them.
    not_created: list[str] = field(default_factory=list)


def entry_from_info(
    name: str,
    offset: int,
    size: int,
    access: Access,
    bit_offset: int = 0,
    nbits: int = 0,
    raw_len: int | None = None,
    node: str | None = None,
    source: str = "legacy",
    post_process: PostProcess | None = None,
) -> CellInfo:
    """``nvmem_cell_info_to_nvmem_cell_entry_nodup()``; raises DeviceTreeError."""
    cell_bytes = size
    cell_raw = raw_len or size
    if nbits:
        cell_bytes = (nbits + bit_offset + 7) // 8
        cell_raw = _align(cell_bytes, access.word_size)
    where = node or name
    if offset % access.stride:
        raise DeviceTreeError(where, f"cell {name} unaligned to nvmem stride {access.stride}")
    if cell_raw % access.word_size:
        if raw_len:
            raise DeviceTreeError(
                where,
                f"cell {name} raw len {cell_raw} unaligned to nvmem word size {access.word_size}",
            )
        cell_raw = _align(cell_raw, access.word_size)
    return CellInfo(
        name=name,
        offset=offset,
        bytes=cell_bytes,
        raw_len=cell_raw,
        bit_offset=bit_offset,
        nbits=nbits,
        source=source,
        of_node=node,
        post_process=post_process,
    )


def add_cells_from_dt(
    np: DtNode, access: Access, source: str, fixup: Fixup | None = None
) -> CellsResult:
    """``nvmem_add_cells_from_dt(nvmem, np)``: every child of *np* with ``reg``.

    The cells are the ones before the first invalid node: the kernel stops there,
    and the caller decides what that costs (the whole provider for legacy cells,
    the rest of the layout for a fixed layout).  Unlike the kernel, the nodes
    after it are still checked, so that one run reports every mistake.
    """
    result = CellsResult()
    for child in np.children():
        reg = child.prop("reg")
        if reg is None:
            continue
        try:
            cell = cell_from_dt(child, access, source, fixup, reg)
        except DeviceTreeError as e:
            result.errors.append(e)
            continue
        if result.errors:
            result.not_created.append(child.path)
        else:
            result.cells.append(cell)
    return result


def cell_from_dt(child: DtNode, access: Access, source: str, fixup: Fixup | None = None,
                 reg: bytes | None = None) -> CellInfo:
    """One loop iteration of ``nvmem_add_cells_from_dt()``; raises DeviceTreeError.

    *reg*: the node's ``reg``, when the caller has read it already.
    """
    if reg is None:
        reg = child.prop("reg") or b""
    if len(reg) < 8:
        raise DeviceTreeError(child.path, "nvmem: invalid reg")
    offset = int.from_bytes(reg[0:4], "big")
    size = int.from_bytes(reg[4:8], "big")
    bit_offset = nbits = 0
    bits = child.prop("bits")
    if bits is not None and len(bits) == 8:
        bit_offset = int.from_bytes(bits[0:4], "big")
        nbits = int.from_bytes(bits[4:8], "big")
        if bit_offset >= 8 * size or nbits < 1 or bit_offset + nbits > 8 * size:
            raise DeviceTreeError(child.path, "nvmem: invalid bits")
    raw_len: int | None = None
    post_process: PostProcess | None = None
    if fixup is not None:
        offset, bit_offset, nbits, raw_len, post_process = apply_fixup(
            fixup, child.name, offset, size, bit_offset, nbits
        )
    return entry_from_info(
        child.name, offset, size, access, bit_offset, nbits, raw_len,
        child.path, source, post_process,
    )


# --- driver hooks: nvmem_config.fixup_dt_cell_info ------------------------------


def _imx_ocotp_cell_pp(cell_id: str, index: int, buf: bytes) -> bytes:
    """drivers/nvmem/imx-ocotp.c: imx_ocotp_cell_pp(): MACs are stored reversed."""
    if cell_id != "mac-address":
        return buf
    n = min(len(buf), 6)
    return bytes(reversed(buf[:n])) + buf[n:]


def _mtk_gpu_speedbin_pp(cell_id: str, index: int, buf: bytes) -> bytes:
    """drivers/nvmem/mtk-efuse.c: mtk_efuse_gpu_speedbin_pp()."""
    if buf and buf[0] < 8:
        return bytes([1 << buf[0]]) + buf[1:]
    return buf


def apply_fixup(
    fixup: Fixup, name: str, offset: int, size: int, bit_offset: int, nbits: int
) -> tuple[int, int, int, int | None, PostProcess | None]:
    """The ``fixup_dt_cell_info`` hooks; returns (offset, bit_offset, nbits, raw_len, pp)."""
    if fixup == "qfprom":
        # drivers/nvmem/qfprom.c: qfprom_fixup_dt_cell_info()
        byte_offset = offset % 4
        bit_offset += byte_offset * 8
        offset -= byte_offset
        if byte_offset and not nbits:
            nbits = size * 8
        return offset, bit_offset, nbits, None, None
    if fixup == "imx-ocotp":
        # imx_ocotp_fixup_dt_cell_info(): raw_len = round_up(bytes, 4)
        return offset, bit_offset, nbits, _align(size, 4), _imx_ocotp_cell_pp
    if fixup == "mtk-efuse-gpu-speedbin":
        # mtk_efuse_fixup_dt_cell_info(): strncmp(name, "gpu-speedbin", min(strlen(name), 12))
        n = min(len(name), 12)
        if nbits <= 3 and name[:n] == "gpu-speedbin"[:n]:
            return offset, bit_offset, nbits, None, _mtk_gpu_speedbin_pp
        return offset, bit_offset, nbits, None, None
    raise ValueError(f"unknown fixup {fixup!r}")  # a table row names a hook nvmemd lacks


# --- reading ---------------------------------------------------------------------


def shift_read_buffer_in_place(cell: CellInfo, buf: bytearray) -> None:
    """``nvmem_shift_read_buffer_in_place()`` (6.12.117), byte for byte.

    *buf* holds at least ``cell.bytes`` raw bytes read from ``cell.offset``.
    """
    bit_offset = cell.bit_offset
    bytes_offset = bit_offset // 8
    bit_offset %= 8
    b = bytes_offset
    p = 0
    if bit_offset:
        buf[p] = buf[b] >> bit_offset
        b += 1
        for _ in range(1, cell.bytes - bytes_offset):
            buf[p] |= (buf[b] << (8 - bit_offset)) & 0xFF
            p += 1
            buf[p] = buf[b] >> bit_offset
            b += 1
        p = cell.bytes - 1
    elif p != b:
        n = cell.bytes - bytes_offset
        buf[0:n] = buf[b : b + n]
        p = cell.bytes - 1
    else:
        p = cell.bytes - 1
    extra = cell.bytes - (cell.nbits + 7) // 8
    while extra > 0:
        buf[p] = 0
        p -= 1
        extra -= 1
    if cell.nbits % 8:
        buf[p] &= (1 << (cell.nbits % 8)) - 1


def decode_cell(cell: CellInfo, raw: bytes, cell_id: str | None = None, index: int = 0) -> bytes:
    """``__nvmem_cell_read()`` after the device read: shift, mask, post-process.

    *raw* is ``cell.raw_len`` bytes from ``cell.offset``.  Raises LayoutError
    when the post-processing hook refuses the value (the kernel's -EINVAL).
    """
    buf = bytearray(max(cell.raw_len, cell.bytes))
    buf[: len(raw)] = raw
    if cell.bit_offset or cell.nbits:
        shift_read_buffer_in_place(cell, buf)
    out = bytes(buf)
    if cell.post_process is not None:
        out = cell.post_process(cell_id if cell_id is not None else cell.name, index, out)
    return out[: cell.bytes]
