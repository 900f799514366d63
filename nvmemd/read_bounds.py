"""What a ``cells/`` read returns when a cell is empty or reaches past its provider's end.

A cell's value is whatever ``nvmem_reg_read()`` returns for ``(cell->offset, cell->raw_len)``
(``drivers/nvmem/core.c``: ``nvmem_cell_attr_read()`` -> ``nvmem_cell_read()`` ->
``__nvmem_cell_read()`` -> ``nvmem_reg_read()`` -> the driver's ``reg_read``).  The core
checks nothing there on 6.12 or 7.2: no bounds, no stride (cells are checked against the
stride and word size once, at registration), and a zero-length read is passed to the
driver as it is (with keepouts, ``nvmem_access_with_keepouts()`` calls ``reg_read`` for
no zero-length range).  The buffer is ``kzalloc(max(raw_len, bytes))``.

The provider's own ``nvmem`` file is different: sysfs (``fs/sysfs/file.c:
sysfs_kf_bin_read()``) clamps every read to the file size, so nvmemd, which reads that
file, never sees the driver's bounds checks.  :data:`READ_BOUNDS` is the table of those
checks, per driver and rule set (:mod:`nvmemd.kernel_version`), for the four cases of
:func:`classify`; :func:`read_cell_raw` applies it.  Every row names the function it was
read from; the rows marked ``recorded`` are checked by replaying real-kernel recordings
(tests/fixtures/realkernel/*-read-bounds).
"""

from __future__ import annotations

import errno
import os

from .errors import ProviderIOError
from .kernel_rules import LEGACY_OF_CELL_DRIVERS
from .kernel_version import SERIES
from .model import Access, Provider
from .reader import read_range
from .sysroot import Sysroot
from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final, Literal

    from .kernel_version import Series

    #: The four situations a bounds check can tell apart (``size`` is the provider's size):
    #: ``zero-length``: bytes == 0, offset <= size; ``zero-length-past-end``: bytes == 0,
    #: offset > size; ``straddle``: bytes > 0, offset <= size < offset + bytes;
    #: ``past-end``: bytes > 0, offset > size.
    Case = Literal["zero-length", "zero-length-past-end", "straddle", "past-end"]

    #: What the read returns:
    #: ``ok``: success (a zero-length cell reads as empty);
    #: ``EINVAL`` / ``EIO``: the read fails with that errno;
    #: ``pad-zero``: the bytes past the end stay 0 (the kzalloc'd buffer), success;
    #: ``pad-last``: the bytes past the end are the provider's last byte, success;
    #: ``registers``: the driver reads on into the chip's other registers: succeeds with
    #: bytes nvmemd cannot know (nvmemd reports an error).
    Outcome = Literal["ok", "EINVAL", "EIO", "pad-zero", "pad-last", "registers"]

CASES: Final[tuple[Case, ...]] = ("zero-length", "zero-length-past-end", "straddle", "past-end")

_ERRNOS: Final = {"EINVAL": errno.EINVAL, "EIO": errno.EIO}


@value
class BoundsRule:
    """One driver's ``reg_read`` bounds, on the rule sets in *series*."""

    driver: str  # key, see driver_of()
    series: tuple[Series, ...]
    source: str  # kernel file: function
    zero_length: Outcome
    zero_length_past_end: Outcome
    straddle: Outcome
    past_end: Outcome
    recorded: bool = False  # replayed from real-kernel recordings on these series
    note: str = ""

    def outcome(self, case: Case) -> Outcome:
        return {
            "zero-length": self.zero_length,
            "zero-length-past-end": self.zero_length_past_end,
            "straddle": self.straddle,
            "past-end": self.past_end,
        }[case]


_BOTH: Final[tuple[Series, ...]] = SERIES

#: Driver x rule set -> bounds.  Read from linux-source-6.12 6.12.117 and linux-source-7.2
#: 7.2.13 (the functions named; identical on both unless two rows say otherwise).
READ_BOUNDS: Final[tuple[BoundsRule, ...]] = (
    BoundsRule(
        "rmem", ("6.12",), "drivers/nvmem/rmem.c: rmem_read() (memory_read_from_buffer())",
        zero_length="ok", zero_length_past_end="ok", straddle="EIO", past_end="EIO",
        recorded=True,
        note="memory_read_from_buffer() copies what is there; count != bytes is -EIO, "
        "and 0 == 0 for a zero-length read wherever it is",
    ),
    BoundsRule(
        "rmem", ("7.2",), "drivers/nvmem/rmem.c: rmem_read()",
        zero_length="ok", zero_length_past_end="EIO", straddle="EIO", past_end="EIO",
        recorded=True,
        note="checks (phys_addr_t)offset + bytes > mem->size before reading (added with "
        "the Mobileye EyeQ5 support)",
    ),
    BoundsRule(
        "mtd", _BOTH,
        "drivers/mtd/mtdcore.c: mtd_nvmem_reg_read() -> mtd_read() -> mtd_read_oob() -> "
        "mtd_check_oob_ops()",
        zero_length="ok", zero_length_past_end="EINVAL", straddle="EINVAL", past_end="EINVAL",
        recorded=True,
        note="offs + len > mtd->size is -EINVAL before any read, also for len 0",
    ),
    BoundsRule(
        "u-boot-env", _BOTH,
        "drivers/nvmem/u-boot-env.c: u_boot_env_read() -> mtd_read()",
        zero_length="ok", zero_length_past_end="EINVAL", straddle="EINVAL", past_end="EINVAL",
        note="the MTD checks of the partition; the kernel never shows these cells in "
        "sysfs (cells added after nvmem_register()), consumers read them",
    ),
    BoundsRule(
        "mtd-otp", _BOTH,
        "drivers/mtd/mtdcore.c: mtd_nvmem_user_otp_reg_read() / "
        "mtd_nvmem_fact_otp_reg_read() -> mtd_read_user_prot_reg() / mtd_read_fact_prot_reg()",
        zero_length="ok", zero_length_past_end="ok", straddle="EIO", past_end="EIO",
        note="len 0 returns 0 before the chip driver; the chip drivers (cfi_cmdset_0001.c "
        "cfi_intelext_otp_walk(), spi-nor otp.c spi_nor_mtd_otp_read()) stop at the end "
        "of the OTP area and retlen != bytes is -EIO",
    ),
    BoundsRule(
        "at24", _BOTH, "drivers/misc/eeprom/at24.c: at24_read()",
        zero_length="ok", zero_length_past_end="ok", straddle="EINVAL", past_end="EINVAL",
        recorded=True,
        note="if (!count) return count; then off + count > byte_len is -EINVAL",
    ),
    BoundsRule(
        "rtc-ds1307", _BOTH,
        "drivers/rtc/rtc-ds1307.c: ds1307_nvram_read() -> regmap_bulk_read() "
        "(drivers/base/regmap/regmap.c)",
        zero_length="EINVAL", zero_length_past_end="EINVAL", straddle="registers",
        past_end="registers", recorded=True,
        note="regmap_bulk_read() refuses val_count == 0; the regmap has no max_register, "
        "so a read past the NVRAM returns the chip's registers after it",
    ),
    BoundsRule(
        "w1-ds250x", _BOTH, "drivers/w1/slaves/w1_ds250x.c: w1_nvmem_read()",
        zero_length="ok", zero_length_past_end="EINVAL", straddle="pad-zero",
        past_end="EINVAL",
        note="off > size is -EINVAL; off + count > size is cut to size - off (the rest "
        "of the cell buffer stays zero)",
    ),
    BoundsRule(
        "imx-ocotp", _BOTH, "drivers/nvmem/imx-ocotp.c: imx_ocotp_read()",
        zero_length="ok", zero_length_past_end="ok", straddle="pad-zero",
        past_end="registers", recorded=True,
        note="reads whole words into a kzalloc'd buffer, the count clamped to nregs - index: "
        "a straddling cell gets zeros past the fuses; past the end the unsigned "
        "nregs - index wraps, nothing is clamped and it reads the OCOTP block's registers "
        "after the shadow fuses (an offset within 3 bytes of the end still gets zeros)",
    ),
    BoundsRule(
        "brcm-nvram", _BOTH, "drivers/nvmem/brcm_nvram.c: brcm_nvram_read()",
        zero_length="ok", zero_length_past_end="ok", straddle="pad-last", past_end="pad-last",
        note="copies up to data_len and fills the rest with padding_byte, the last byte of "
        "the device (brcm_nvram_probe(): readb(base + nvmem_size - 1))",
    ),
)

#: Provider compatibles -> driver key (of_match tables of the drivers above).
_COMPATIBLE_DRIVERS: Final[tuple[tuple[frozenset[str], str], ...]] = (
    (frozenset({"u-boot,env", "u-boot,env-redundant-bool", "u-boot,env-redundant-count",
                "brcm,env"}), "u-boot-env"),  # drivers/nvmem/u-boot-env.c
    (frozenset({"brcm,nvram"}), "brcm-nvram"),
    (frozenset(next(r.compatibles for r in LEGACY_OF_CELL_DRIVERS
                    if r.source == "drivers/nvmem/imx-ocotp.c")), "imx-ocotp"),
    # rmem_match[]; mobileye,eyeq5-bootloader-config exists on 7.2 only
    (frozenset({"nvmem-rmem", "mobileye,eyeq5-bootloader-config"}), "rmem"),
)
#: Bound driver names (sysfs ``driver`` link of the nearest ancestor) -> driver key.
_BOUND_DRIVERS: Final = {"at24": "at24", "rtc-ds1307": "rtc-ds1307", "w1_slave_driver": "w1-ds250x"}


def driver_of(provider: Provider) -> str | None:
    """The :data:`READ_BOUNDS` key of *provider*'s ``reg_read``, None if not modelled."""
    compat = {c.lower() for c in provider.compatible}
    if provider.is_mtd_otp:
        return "mtd-otp"
    for names, key in _COMPATIBLE_DRIVERS:
        if not names.isdisjoint(compat):
            return key
    if provider.is_mtd:
        return "mtd"
    if provider.parent_subsystem == "w1":
        return "w1-ds250x"
    return _BOUND_DRIVERS.get(provider.driver or "")


def rule_for(driver: str | None, series: Series) -> BoundsRule | None:
    for row in READ_BOUNDS:
        if row.driver == driver and series in row.series:
            return row
    return None


def classify(offset: int, nbytes: int, size: int) -> Case | None:
    """The bounds case of a read of *nbytes* at *offset*; None when it is inside."""
    if nbytes == 0:
        return "zero-length" if offset <= size else "zero-length-past-end"
    if offset + nbytes <= size:
        return None
    return "straddle" if offset <= size else "past-end"


@value
class BoundsVerdict:
    """What the kernel's read of one range gives, by the table."""

    case: Case | None
    rule: BoundsRule | None
    outcome: Outcome | None  # None: inside, or the driver is not modelled

    @property
    def errno_name(self) -> str | None:
        return self.outcome if self.outcome in _ERRNOS else None

    @property
    def error(self) -> str | None:
        """The text a failing ``cat cells/...`` shows (strerror), None if it succeeds."""
        name = self.errno_name
        return os.strerror(_ERRNOS[name]) if name else None


def verdict(provider: Provider, offset: int, nbytes: int, series: Series) -> BoundsVerdict:
    case = classify(offset, nbytes, provider.size)
    if case is None:
        return BoundsVerdict(None, None, None)
    rule = rule_for(driver_of(provider), series)
    return BoundsVerdict(case, rule, rule.outcome(case) if rule else None)


_CASE_TEXT: Final[dict[Case, str]] = {
    "zero-length": "zero-length, inside",
    "zero-length-past-end": "zero-length, past the end",
    "straddle": "reaching past the end",
    "past-end": "starting past the end",
}


class CellReadError(ProviderIOError):
    """A cell read the kernel fails; ``kernel_error`` is the text ``cat`` shows."""

    def __init__(self, message: str, kernel_error: str | None) -> None:
        super().__init__(message)
        self.kernel_error = kernel_error


def read_cell_raw(sysroot: Sysroot, provider: Provider, access: Access, offset: int,
                  nbytes: int, series: Series, cell_name: str) -> bytes:
    """The raw bytes ``nvmem_reg_read(offset, nbytes)`` gives, or CellReadError."""
    v = verdict(provider, offset, nbytes, series)
    if v.case is None:
        return read_range(sysroot, provider.name, provider.nvmem_path, offset, nbytes, access)
    where = f"{provider.name}: cell {cell_name}"
    extent = (f"{nbytes} bytes at {offset:#x}, {_CASE_TEXT[v.case]} of the provider "
              f"({provider.size} bytes)")
    if v.rule is None:
        raise CellReadError(
            f"{where}: {extent}; how its driver ({provider.driver or 'unknown'}) answers "
            "is not modelled", None)
    why = f"{extent}; {v.rule.source}, Linux {series} rules"
    if v.error is not None:
        raise CellReadError(f"{where}: {v.error} ({why})", v.error)
    if v.outcome == "registers":
        raise CellReadError(
            f"{where}: the kernel reads on into the chip's registers ({why}); the value is "
            "not knowable from the nvmem file", None)
    if nbytes == 0:
        return b""
    inside = max(0, min(nbytes, provider.size - offset))
    data = b""
    if inside:
        data = read_range(sysroot, provider.name, provider.nvmem_path, offset, inside, access)
    if v.outcome == "pad-last":
        last = read_range(sysroot, provider.name, provider.nvmem_path, provider.size - 1, 1,
                          access) if provider.size else b"\0"
        return data + last * (nbytes - len(data))
    return data + b"\0" * (nbytes - len(data))  # ok (nothing missing) or pad-zero
