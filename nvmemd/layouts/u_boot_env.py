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

Beyond the kernel (which parses each device alone), :func:`select_redundant_copies`
picks the copy in use when a redundant environment lives in two providers, with
libubootenv's rules (``src/uboot_env.c: libuboot_load()``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

from ..cells import CellInfo, entry_from_info
from ..crc import crc32
from ..errors import DeviceTreeError, LayoutError
from ..macaddr import ETH_ALEN, ascii_mac_post_process
from . import LayoutContext, LayoutResult, Validity, child_path
from .variables import iter_variables

if TYPE_CHECKING:
    from ..devicetree import DeviceTree
    from ..registry import ProviderEntry

SOURCE: Final = "u-boot-env"


class Format(Enum):
    """``enum u_boot_env_format``."""

    SINGLE = "single"  # struct u_boot_env_image_single {__le32 crc32; u8 data[];}
    REDUNDANT = "redundant"  # {__le32 crc32; u8 mark; u8 data[];}
    BROADCOM = "broadcom"  # {__le32 magic; __le32 len; __le32 crc32; u8 data[];}


@dataclass(frozen=True)
class FormatLayout:
    crc32_offset: int
    crc32_data_offset: int
    data_offset: int


#: u-boot-env.c: offsetof() of the three image structs
FORMAT_LAYOUTS: Final[dict[Format, FormatLayout]] = {
    Format.SINGLE: FormatLayout(0, 4, 4),
    Format.REDUNDANT: FormatLayout(0, 5, 5),
    Format.BROADCOM: FormatLayout(8, 12, 12),
}

#: drivers/nvmem/layouts/u-boot-env.c and drivers/nvmem/u-boot-env.c:
#: u_boot_env_of_match_table[] (.data = format)
U_BOOT_ENV_COMPATIBLES: Final[dict[str, Format]] = {
    "u-boot,env": Format.SINGLE,
    "u-boot,env-redundant-bool": Format.REDUNDANT,
    "u-boot,env-redundant-count": Format.REDUNDANT,
    "brcm,env": Format.BROADCOM,
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
    fmt = U_BOOT_ENV_COMPATIBLES[ctx.compatible.lower()]
    lay = FORMAT_LAYOUTS[fmt]
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
    flag = buf[REDUNDANT_FLAG_OFFSET] if fmt is Format.REDUNDANT and dev_size > 4 else None
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
                                   post_process=ascii_mac_post_process,
                                   post_process_name="u-boot-env-ethaddr")
        return entry_from_info(name, offset, length, ctx.access, node=node, source=SOURCE)
    except DeviceTreeError as e:
        return LayoutError(f"variable {name}: {e} (cell skipped)")




# --- redundant copies in two providers (beyond the kernel) ------------------------

#: libubootenv src/uboot_env.c: FLAGS_BOOLEAN / FLAGS_INCREMENTAL, by compatible
REDUNDANT_FLAG_TYPES: Final[dict[str, str]] = {
    "u-boot,env-redundant-bool": "boolean",
    "u-boot,env-redundant-count": "incremental",
}


@dataclass(frozen=True)
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


def _env_compatible(tree: DeviceTree, of_node: str) -> str | None:
    np = tree.node(of_node)
    candidates = list(np.compatible())
    layout = np.child_by_name("nvmem-layout")
    if layout is not None:
        candidates = layout.compatible() + candidates
    for c in candidates:
        if c.lower() in REDUNDANT_FLAG_TYPES:
            return c.lower()
    return None


def select_redundant_copies(entries: dict[str, ProviderEntry], tree: DeviceTree
                            ) -> dict[str, ProviderEntry]:
    """Pair redundant U-Boot environments and mark the copy not in use.

    Two providers form a pair when their environment has the same redundant
    compatible and their DT nodes are siblings (two partitions of one flash, as
    the two lines of fw_env.config).  The copy not in use gets ``standby_of``
    (the registry's name lookup prefers the copy in use); both get a note and
    the decision in their validity detail.  The cells of both stay listed.
    """
    groups: dict[tuple[str, str], list[tuple[ProviderEntry, Validity]]] = {}
    entries = {name: _unrelated(entry) for name, entry in entries.items()}
    for entry in entries.values():
        val = next((v for v in entry.validity if v.layout == SOURCE and v.flag is not None),
                   None)
        of_node = entry.provider.of_node
        if val is None or of_node is None:
            continue
        compat = _env_compatible(tree, of_node)
        if compat is None:
            continue
        parent = of_node.rsplit("/", 1)[0] or "/"
        groups.setdefault((compat, parent), []).append((entry, val))
    out = dict(entries)
    for (compat, parent), members in groups.items():
        if len(members) != 2:
            if len(members) > 2:
                for entry, _ in members:
                    out[entry.name] = dataclasses.replace(entry, notes=(*entry.notes, (
                        f"redundant U-Boot environment: {len(members)} copies under {parent}; "
                        "no copy chosen (two expected)")))
            continue
        order = [c.basename for c in tree.node(parent).children()]
        members.sort(key=lambda m: order.index(_basename(m[0])) if _basename(m[0]) in order
                     else len(order))
        copies = (EnvCopy(members[0][0].name, members[0][1].status == "valid",
                          members[0][1].flag or 0),
                  EnvCopy(members[1][0].name, members[1][1].status == "valid",
                          members[1][1].flag or 0))
        chosen = choose_copy(REDUNDANT_FLAG_TYPES[compat], copies)
        for i, (entry, val) in enumerate(members):
            other = copies[1 - i]
            me = copies[i]
            if chosen is None:
                text = (f"redundant U-Boot environment ({compat}): neither this copy nor "
                        f"{other.provider} is valid")
                standby = None
            elif chosen == i:
                text = (f"redundant U-Boot environment ({compat}): this copy (flag "
                        f"0x{me.flag:02x}) is in use; {other.provider} (flag 0x{other.flag:02x}"
                        f", {'valid' if other.valid else 'invalid'}) is the other copy")
                standby = None
            else:
                text = (f"redundant U-Boot environment ({compat}): {other.provider} (flag "
                        f"0x{other.flag:02x}) is in use; this copy (flag 0x{me.flag:02x}, "
                        f"{'valid' if me.valid else 'invalid'}) is not")
                standby = other.provider
            validity = tuple(
                dataclasses.replace(v, detail=text if not v.detail else f"{v.detail}{_SEP}{text}")
                if v is val else v for v in entry.validity)
            out[entry.name] = dataclasses.replace(entry, notes=(*entry.notes, text),
                                                  validity=validity, standby_of=standby)
    return out


_NOTE: Final = "redundant U-Boot environment"
_SEP: Final = "; "


def _unrelated(entry: ProviderEntry) -> ProviderEntry:
    """*entry* without an earlier selection (the daemon re-relates after each change)."""
    if entry.standby_of is None and not any(n.startswith(_NOTE) for n in entry.notes):
        return entry
    validity = []
    for v in entry.validity:
        detail = v.detail
        if detail is not None and _NOTE in detail:
            detail = detail[: detail.index(_NOTE)].removesuffix(_SEP) or None
        validity.append(dataclasses.replace(v, detail=detail))
    return dataclasses.replace(entry, standby_of=None, validity=tuple(validity),
                               notes=tuple(n for n in entry.notes if not n.startswith(_NOTE)))


def _basename(entry: ProviderEntry) -> str:
    return (entry.provider.of_node or "").rsplit("/", 1)[-1]
