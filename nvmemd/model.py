"""The value types every layer shares.

Nothing here reads sysfs or the device tree: these are the facts the readers
produce and the front ends present.  They mirror the kernel's structures where
one exists (``struct nvmem_config``, ``struct nvmem_cell_entry``); the rest is
what nvmemd adds on top (validity of self-describing media, broken providers,
redundant U-Boot environments).
"""

from __future__ import annotations

from .values import field, value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final, Literal

    from .kernel_version import Series

    #: ``nvmem_config.fixup_dt_cell_info`` hooks nvmemd mirrors (cells.py: FIXUPS).
    Fixup = Literal["qfprom", "imx-ocotp", "mtk-efuse-gpu-speedbin"]

    #: ``read_post_process(priv, id, index, offset, buf, raw_len)``: *id* is the
    #: consumer's name for the cell (the cell name for sysfs reads), *index* the
    #: ``#nvmem-cell-cells`` argument (0 for sysfs reads).  Returns the new buffer
    #: (``bytes`` long) or raises :class:`~nvmemd.errors.LayoutError` (-EINVAL).
    PostProcess = Callable[[str, int, bytes], bytes]

#: drivers/mtd/mtdcore.c: mtd_otp_nvmem_add(): "user-otp" / "factory-otp" + NVMEM_DEVID_AUTO
MTD_OTP_PREFIXES: Final = ("user-otp", "factory-otp")


def is_auto_id_name(name: str, prefixes: tuple[str, ...]) -> bool:
    """A name ``nvmem_register()`` gives a device of ``id = NVMEM_DEVID_AUTO``: its
    ``config->name`` (one of *prefixes*, none a prefix of another) and a decimal id."""
    for prefix in prefixes:
        if name.startswith(prefix):
            number = name[len(prefix):]
            return number.isascii() and number.isdigit()
    return False


def is_mtd_otp_name(name: str) -> bool:
    """``user-otp<N>`` or ``factory-otp<N>``."""
    return is_auto_id_name(name, MTD_OTP_PREFIXES)


@value
class Access:
    """``nvmem_config.stride`` / ``.word_size``: sysfs rejects unaligned reads."""

    stride: int = 1
    word_size: int = 1


BYTE_ACCESS: Final = Access()


@value
class Provider:
    """One nvmem device, as ``/sys/bus/nvmem/devices/<name>`` shows it."""

    name: str
    sys_path: str  # resolved in-sysroot device directory
    type: str
    size: int
    mode: int  # permission bits of the nvmem file
    force_ro: bool | None  # None: no force_ro attribute (driver has no reg_write)
    of_node: str | None  # DT path
    compatible: tuple[str, ...]
    driver: str | None  # driver of the nearest ancestor device that has one
    parent_subsystem: str | None
    mtd_type: str | None
    has_kernel_cells: bool  # the kernel published cells/ (6.8+)

    @property
    def nvmem_path(self) -> str:
        return self.sys_path + "/nvmem"

    @property
    def root_only(self) -> bool:
        """``nvmem_bin_attr_get_umode()``: 0400 unless !root_only adds 0044."""
        return not self.mode & 0o044

    @property
    def writable(self) -> bool:
        return bool(self.mode & 0o200)

    @property
    def read_only(self) -> bool:
        """``force_ro`` shows the kernel's read_only; no attribute means no reg_write."""
        return True if self.force_ro is None else self.force_ro

    @property
    def is_mtd(self) -> bool:
        return self.parent_subsystem == "mtd"

    @property
    def is_mtd_otp(self) -> bool:
        return is_mtd_otp_name(self.name) and self.mtd_type is not None


@value
class CellRules:
    """What the kernel does with one provider's DT node (kernel_rules.cell_rules())."""

    legacy_cells: bool  # parse direct children (add_legacy_fixed_of_cells)
    reason: str  # why, for `providers --json` and the logs
    access: Access
    fixup: Fixup | None = None
    of_node_used: bool = True  # False: the kernel never looks at the DT node at all
    series: Series = "6.12"  # the rule set (kernel_version.SERIES) these were decided for


@value
class CellInfo:
    """One cell, as ``struct nvmem_cell_entry`` holds it after registration."""

    name: str
    offset: int
    bytes: int  # what a reader gets
    raw_len: int  # what is read from the provider
    bit_offset: int = 0
    nbits: int = 0
    source: str = "legacy"
    of_node: str | None = None
    post_process: PostProcess | None = field(default=None, compare=False, repr=False)

    @property
    def sysfs_name(self) -> str:
        """``nvmem_populate_sysfs_cells()``: ``"%s@%x,%x"``."""
        return f"{self.name}@{self.offset:x},{self.bit_offset:x}"


@value
class Validity:
    """Checksum status of self-describing media (beyond the kernel)."""

    layout: str
    status: Literal["valid", "invalid", "absent"]
    expected: str | None = None  # checksum stored on the media (hex)
    found: str | None = None  # checksum computed over the data (hex)
    detail: str | None = None
    flag: int | None = None  # redundant U-Boot environment: the flag (mark) byte


@value
class RedundantCopy:
    """One of two providers holding a redundant U-Boot environment (registration.py)."""

    compatible: str  # u-boot,env-redundant-bool / -count
    peer: str  # the other copy's provider
    in_use: bool | None  # None: neither copy is valid
    flag: int
    peer_flag: int
    peer_valid: bool

    def describe(self, valid: bool) -> str:
        head = f"redundant U-Boot environment ({self.compatible})"
        if self.in_use is None:
            return f"{head}: neither this copy nor {self.peer} is valid"
        if self.in_use:
            return (f"{head}: this copy (flag 0x{self.flag:02x}) is in use; {self.peer} "
                    f"(flag 0x{self.peer_flag:02x}, {'valid' if self.peer_valid else 'invalid'})"
                    " is the other copy")
        return (f"{head}: {self.peer} (flag 0x{self.peer_flag:02x}) is in use; this copy "
                f"(flag 0x{self.flag:02x}, {'valid' if valid else 'invalid'}) is not")


@value
class ProviderEntry:
    """A provider with the cells the kernel would give it, and what nvmemd found."""

    provider: Provider
    rules: CellRules
    cells: tuple[CellInfo, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    rejected: bool = False  # the kernel would fail this provider's registration
    validity: tuple[Validity, ...] = ()
    #: ONIE ``num-macs``: how many MAC addresses start at its base (None: no such TLV).
    num_macs: int | None = None
    #: Set by the cross-provider step when this provider is one of a redundant pair.
    redundant: RedundantCopy | None = None

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def standby(self) -> bool:
        """A redundant U-Boot environment copy that is not in use."""
        return self.redundant is not None and self.redundant.in_use is False

    def all_notes(self) -> tuple[str, ...]:
        """The notes, with the redundant-pair decision when there is one."""
        if self.redundant is None:
            return self.notes
        valid = any(v.status == "valid" for v in self.validity if v.flag is not None)
        return (*self.notes, self.redundant.describe(valid))


@value
class BrokenProvider:
    """A provider listed in sysfs that could not be described at all."""

    name: str
    error: str
    gone: bool = False  # it vanished while being scanned: reads say ProviderGone
    #: The OS error that broke it (None: not an OS error), so that reads answer with its
    #: kind: EACCES/EPERM say AccessDenied (exit status 4), others ProviderIOError.
    errno: int | None = None
