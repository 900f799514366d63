"""Which kernel's rules apply: the release, the rule sets, and what changed between them.

nvmemd reproduces the kernel's answer, and the answer depends on the version.  Two rule
sets are verified against Debian's source packages and recorded under qemu:

* ``6.12`` -- linux-source-6.12 6.12.117-1~deb12u1 (bookworm-security);
* ``7.2``  -- linux-source-7.2 7.2.13-1 (sid).

A running kernel picks the newest rule set whose version is not above its own release
(6.7 ... 7.1 get the 6.12 rules, 7.2 and later the 7.2 rules); kernels before 6.7 are
handled by ``legacy_cells = "all"`` (see :mod:`nvmemd.config`) with the 6.12 read rules.
The configuration can force a rule set (``[kernel] kernel_version = "7.2"``).

:data:`VERSION_CHANGES` is the table of the differences between the two rule sets that
matter to nvmemd, each with the kernel file and function it was read from.
"""

from __future__ import annotations

from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final, Literal

    Series = Literal["6.12", "7.2"]

#: Rule sets, oldest first, with the release each was verified on.
SERIES: Final[tuple[Series, ...]] = ("6.12", "7.2")
VERIFIED_ON: Final[dict[Series, str]] = {"6.12": "6.12.117", "7.2": "7.2.13"}
DEFAULT_SERIES: Final[Series] = "6.12"


def _leading_number(text: str) -> tuple[int, str] | None:
    """``"13+deb14"`` -> ``(13, "+deb14")``: the ASCII digits at the start, and the rest."""
    end = 0
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return (int(text[:end]), text[end:]) if end else None


def parse_version(release: str | None) -> tuple[int, int] | None:
    """``"7.2.13+deb14-arm64"`` -> ``(7, 2)``; None when it is not a release."""
    major = _leading_number(release or "")
    if major is None or not major[1].startswith("."):
        return None
    minor = _leading_number(major[1][1:])
    return None if minor is None else (major[0], minor[0])


def series_for(release: str | None) -> Series:
    """The rule set for a kernel release (or a ``kernel_version`` setting such as "7.2")."""
    version = parse_version(release)
    if version is None:
        return DEFAULT_SERIES
    chosen = DEFAULT_SERIES
    for s in SERIES:
        sv = parse_version(s)
        assert sv is not None
        if version >= sv:
            chosen = s
    return chosen


def is_series(text: str) -> bool:
    return text in SERIES


@value
class VersionChange:
    """One difference between the 6.12 and 7.2 rule sets."""

    key: str  # stable identifier, used by tests and findings
    source: str  # kernel file: function / binding
    in_612: str
    in_72: str
    affects: str  # what nvmemd does with it


#: 6.12.117 -> 7.2.13, read from the two source packages (diff of drivers/nvmem, drivers/mtd,
#: drivers/misc/eeprom/at24.c, drivers/rtc, Documentation/devicetree/bindings/nvmem).
VERSION_CHANGES: Final[tuple[VersionChange, ...]] = (
    VersionChange(
        "rmem-bounds",
        "drivers/nvmem/rmem.c: rmem_read()",
        "memory_read_from_buffer(): a short read past the end is -EIO, a zero-length read "
        "anywhere (even past the end) succeeds",
        "checks offset + bytes > mem->size first and returns -EIO: a zero-length cell past "
        "the end fails too",
        "read_bounds.READ_BOUNDS rows 'rmem'",
    ),
    VersionChange(
        "rmem-eyeq5",
        "drivers/nvmem/rmem.c: rmem_match[]",
        "compatible nvmem-rmem only",
        "adds mobileye,eyeq5-bootloader-config: rmem_probe() first checks its header "
        "(magic 0xDABBAD00, size) and the CRC-32 at its end (rmem_eyeq5_checksum()); a "
        "mismatch fails the probe. The nvmem device is the whole region either way",
        "providers of that compatible are rmem providers for the read-bounds rules",
    ),
    VersionChange(
        "u-boot-env-size",
        "drivers/nvmem/layouts/u-boot-env.c: u_boot_env_parse()",
        "the environment is the whole device (nvmem_dev_size())",
        "optional env-size property of the layout/provider node limits the CRC and the "
        "parsing to that many bytes",
        "layouts/u_boot_env.py uses env-size only with the 7.2 rules",
    ),
    VersionChange(
        "s32g-ocotp-legacy",
        "drivers/nvmem/s32g-ocotp-nvmem.c: s32g_ocotp_probe()",
        "no such driver",
        "new driver, sets add_legacy_fixed_of_cells (nxp,s32g2-ocotp)",
        "kernel_rules: legacy cells of nxp,s32g2-ocotp only with the 7.2 rules",
    ),
    VersionChange(
        "rtc-s35390a-legacy",
        "drivers/rtc/rtc-s35390a.c: s35390a_probe() -> devm_rtc_nvmem_register()",
        "no nvmem device",
        "registers s35390a_nvram (1 byte) through drivers/rtc/nvmem.c, which sets "
        "add_legacy_fixed_of_cells for every RTC",
        "kernel_rules: legacy cells of sii,s35390a only with the 7.2 rules",
    ),
    VersionChange(
        "fixed-cell-bits",
        "Documentation/devicetree/bindings/nvmem/layouts/fixed-cell.yaml, fixed-layout.yaml",
        "bits: bit offset 0..7; child names matching @[a-f0-9]+$",
        "bits: bit offset 0..31; child names matching @[a-f0-9]+(,[0-7])?$",
        "binding only: core.c nvmem_add_cells_from_dt() checks bit_offset < 8 * size on "
        "both versions, so the cells nvmemd computes do not change",
    ),
    VersionChange(
        "shift-read-buffer",
        "drivers/nvmem/core.c: nvmem_shift_read_buffer_in_place()",
        "the shift loop runs bytes - bytes_offset - 1 times",
        "the loop runs bytes - 1 times (reads past the raw buffer for bit offsets >= 8)",
        "none: the extra bits land above nbits and are cleared; values are identical "
        "(replayed on both kernels, case rmem-bits)",
    ),
    VersionChange(
        "cell-table-api",
        "drivers/nvmem/core.c: nvmem_add_cell_table() / nvmem_add_cells_from_table()",
        "board files can register cell tables",
        "removed",
        "none: nvmemd only reads the device tree",
    ),
    VersionChange(
        "new-providers",
        "drivers/nvmem/*.c, drivers/misc/eeprom/*.c, drivers/rtc/*.c",
        "-",
        "qnap-mcu-eeprom, an8855-efuse, rcar-efuse, apple-spmi-nvmem, max77759, m24lr, "
        "rtc-s35390a nvmem (above); at24 st,24256e-wl (64 bytes, 16-bit addresses)",
        "grep add_legacy_fixed_of_cells: only s32g-ocotp-nvmem.c is new; the others keep "
        "DT children out (nvmem-layout only); their reads are not modelled "
        "(read_bounds: unknown driver)",
    ),
)
