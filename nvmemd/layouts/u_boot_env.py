"""U-Boot environment: the layout driver, the platform driver, redundant copies.

Mirrors ``drivers/nvmem/layouts/u-boot-env.c`` (``u_boot_env_parse()``,
``u_boot_env_parse_cells()``), which both the ``u-boot-env-layout`` layout
driver and the ``drivers/nvmem/u-boot-env.c`` platform driver use:

- the whole device is read and the CRC-32 covers everything from the data
  offset to the end of the device (padding included).  Reading the whole
  provider is what the kernel does, here and only here (bounded by the
  provider size); on 7.2 an ``env-size`` property limits both to that many
  bytes (see :data:`nvmemd.kernel_version.VERSION_CHANGES`, ``u-boot-env-size``);
- one cell per ``name=value``, at the absolute offset of the value,
  ``bytes = strlen(value)``; ``ethaddr`` becomes 6 binary bytes.

Beyond the kernel (which parses each device alone), :func:`choose_copy`
picks the copy in use when a redundant environment lives in two providers, with
libubootenv's rules (``src/uboot_env.c: libuboot_load()``).
"""

from __future__ import annotations

from ..cells import entry_from_info
from ..crc import crc32
from ..errors import DeviceTreeError, LayoutError
from ..macaddr import ETH_ALEN, ascii_mac_post_process
from ..model import CellInfo, Validity
from ..values import value
from . import LayoutContext, LayoutResult, child_path
from .variables import iter_variables

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final

SOURCE: Final = "u-boot-env"


@value
class Format:
    """One ``enum u_boot_env_format`` value, with the offsetof()s of its image struct."""

    name: str
    crc32_offset: int
    crc32_data_offset: int
    data_offset: int


#: struct u_boot_env_image_single {__le32 crc32; u8 data[];}
SINGLE: Final = Format("single", 0, 4, 4)
#: struct u_boot_env_image_redundant {__le32 crc32; u8 mark; u8 data[];}
REDUNDANT: Final = Format("redundant", 0, 5, 5)
#: struct u_boot_env_image_broadcom {__le32 magic; __le32 len; __le32 crc32; u8 data[];}
BROADCOM: Final = Format("broadcom", 8, 12, 12)

#: drivers/nvmem/layouts/u-boot-env.c and drivers/nvmem/u-boot-env.c:
#: u_boot_env_of_match_table[] (.data = format)
U_BOOT_ENV_COMPATIBLES: Final[dict[str, Format]] = {
    "u-boot,env": SINGLE,
    "u-boot,env-redundant-bool": REDUNDANT,
    "u-boot,env-redundant-count": REDUNDANT,
    "brcm,env": BROADCOM,
}

#: u_boot_env_parse_cells(): the variable that becomes 6 binary bytes
ETHADDR: Final = "ethaddr"
#: offset of the `mark` (flag) byte of the redundant format
REDUNDANT_FLAG_OFFSET: Final = 4


def _blank(data: bytes) -> bool:
    return bool(data) and data.count(data[0]) == len(data) and data[0] in (0x00, 0xFF)


def _env_size(ctx: LayoutContext) -> int | None:
    """``device_property_read_u32(dev, "env-size")`` on the layout (or partition) node:
    the first be32 cell; absent or shorter than 4 bytes reads as absent."""
    raw = ctx.node.prop("env-size")
    if raw is None or len(raw) < 4:
        return None
    return int.from_bytes(raw[:4], "big")


def parse(ctx: LayoutContext) -> LayoutResult:
    """``u_boot_env_parse()``."""
    lay = U_BOOT_ENV_COMPATIBLES[ctx.compatible.lower()]
    dev_size = ctx.size
    env_size = _env_size(ctx) if ctx.series != "6.12" else None
    if env_size is not None:
        # 7.2: dev_size = device_property_read_u32(dev, "env-size", &env_size) ?
        #      nvmem_dev_size(nvmem) : env_size -- the CRC and the parsing stop there
        if env_size > ctx.size:
            raise LayoutError(f"-EINVAL: env-size {env_size} is larger than the device "
                              f"({ctx.size} bytes): nvmem_device_read() fails")
        dev_size = env_size
    buf = bytearray(ctx.read(0, dev_size))
    if len(buf) != dev_size:
        raise LayoutError(f"-EIO: read {len(buf)} of {dev_size} bytes")
    flag = buf[REDUNDANT_FLAG_OFFSET] if lay is REDUNDANT and dev_size > 4 else None
    if dev_size < lay.data_offset:
        detail = f"Device too small for u-boot-env ({dev_size} bytes, header {lay.data_offset})"
        return LayoutResult(errors=[LayoutError(detail + " (-EIO)")],
                            validity=Validity(SOURCE, "invalid", detail=detail))
    stored = int.from_bytes(buf[lay.crc32_offset : lay.crc32_offset + 4], "little")
    calc = crc32(bytes(buf[lay.crc32_data_offset :]))
    expected, found = f"0x{stored:08x}", f"0x{calc:08x}"
    if calc != stored:
        blank = _blank(bytes(buf))
        detail = ("blank (erased) media" if blank else
                  f"CRC-32 over {dev_size - lay.crc32_data_offset} bytes from "
                  f"{lay.crc32_data_offset:#x} to the end of the device does not match")
        return LayoutResult(
            errors=[LayoutError(f"Invalid calculated CRC32: 0x{calc:08x} (expected: "
                                f"0x{stored:08x}) (-EINVAL)")],
            validity=Validity(SOURCE, "absent" if blank else "invalid", expected=expected,
                              found=found, detail=detail, flag=flag))
    buf[dev_size - 1] = 0
    result = parse_cells(ctx, bytes(buf), lay.data_offset)
    result.validity = Validity(SOURCE, "valid", expected=expected, found=found, flag=flag)
    return result


def parse_cells(ctx: LayoutContext, buf: bytes, data_offset: int) -> LayoutResult:
    """``u_boot_env_parse_cells()``; *buf* is the whole device, NUL-terminated."""
    result = LayoutResult()
    for var in iter_variables(buf, data_offset):
        cell = _cell(ctx, var.name, var.offset, var.length)
        if isinstance(cell, CellInfo):
            result.cells.append(cell)
        else:  # nvmem_add_one_cell() errors are ignored by the kernel
            result.errors.append(cell)
    return result


def _cell(ctx: LayoutContext, name: str, offset: int, length: int) -> CellInfo | LayoutError:
    node = child_path(ctx.node, name)
    try:
        if name == ETHADDR:
            return entry_from_info(name, offset, ETH_ALEN, ctx.access, raw_len=length,
                                   node=node, source=SOURCE,
                                   post_process=ascii_mac_post_process)
        return entry_from_info(name, offset, length, ctx.access, node=node, source=SOURCE)
    except DeviceTreeError as e:
        return LayoutError(f"variable {name}: {e} (cell skipped)")




# --- redundant copies in two providers (beyond the kernel) ------------------------

#: libubootenv src/uboot_env.c: FLAGS_BOOLEAN / FLAGS_INCREMENTAL, by compatible
REDUNDANT_FLAG_TYPES: Final[dict[str, str]] = {
    "u-boot,env-redundant-bool": "boolean",
    "u-boot,env-redundant-count": "incremental",
}


@value
class EnvCopy:
    provider: str
    valid: bool
    flag: int


def choose_copy(flag_type: str, copies: tuple[EnvCopy, EnvCopy]) -> int | None:
    """``libuboot_load()``: index of the copy in use, None when neither is valid.

    One valid copy wins.  Both valid: the higher flag wins (ties: the first);
    boolean flags (1 active, 0 obsolete): a copy with 0xff (erased, just written)
    wins, the second one first; incremental counters wrap 255 → 0.
    """
    a, b = copies
    if a.valid != b.valid:
        return 0 if a.valid else 1
    if not a.valid:
        return None
    current = 1 if b.flag > a.flag else 0
    if flag_type == "boolean":
        if b.flag == 0xFF:
            current = 1
        elif a.flag == 0xFF:
            current = 0
    else:
        if a.flag == 0xFF and b.flag == 0:
            current = 1
        elif b.flag == 0xFF and a.flag == 0:
            current = 0
    return current
