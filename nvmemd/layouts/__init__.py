"""Layout drivers: who turns an ``nvmem-layout`` node into cells.

Mirrors ``drivers/nvmem/layouts.c``: a provider's ``nvmem-layout`` child is
matched by its ``compatible`` against each layout driver's ``of_match_table``
(``nvmem_layout_bus_match()`` → ``of_driver_match_device()``); a node without
``compatible`` is skipped ("skipping %pOF, no compatible prop").  One module
per kernel layout file; :data:`LAYOUT_DRIVERS` is the table of them.
"""

from __future__ import annotations

from ..devicetree import DtNode
from ..errors import LayoutError, NvmemError
from ..model import Access, CellInfo, Provider, Validity
from ..values import field, record, value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final, Literal


def child_path(layout: DtNode, name: str) -> str | None:
    """``of_get_child_by_name(layout, name)``: the DT node (``np``) of a layout's cell."""
    child = layout.child_by_name(name)
    return child.path if child is not None else None


@value
class LayoutContext:
    """What a layout parser may use: the provider's bytes and its layout node."""

    provider: str
    size: int
    access: Access
    node: DtNode  # the nvmem-layout node (or the partition node of a platform driver)
    read: Callable[[int, int], bytes]  # (offset, length) → bytes, bounded to the provider
    compatible: str  # the compatible that matched
    #: the kernel rule set (kernel_version.SERIES) whose parser behaviour applies
    series: str = "6.12"


@record
class LayoutResult:
    """What a parser found: bytes and a node in, cells and a validity out."""

    cells: list[CellInfo] = field(default_factory=list)
    errors: list[NvmemError] = field(default_factory=list)
    validity: Validity | None = None
    not_created: list[str] = field(default_factory=list)  # valid nodes after a stop
    num_macs: int | None = None  # ONIE num-macs TLV: addresses allotted from the base


if TYPE_CHECKING:
    LayoutParser = Callable[[LayoutContext], LayoutResult]


def invalid_media(layout: str, detail: str, *,
                  status: Literal["invalid", "absent"] = "invalid",
                  error: str | None = None, expected: str | None = None,
                  found: str | None = None) -> LayoutResult:
    """The probe fails (-EINVAL, *error* or *detail* in the log) and the media is invalid."""
    return LayoutResult(errors=[LayoutError(f"{error or detail} (-EINVAL)")],
                        validity=Validity(layout, status, expected=expected, found=found,
                                          detail=detail))


@value
class LayoutDriver:
    """One row of an ``of_match_table``: the parser lives in ``nvmemd.layouts.<module>``
    and is imported on first use, so a CLI call pays only for the formats it meets."""

    name: str  # the kernel driver's name
    source: str  # `source` of its cells in JSON and on D-Bus
    compatibles: tuple[str, ...]
    module: str  # nvmemd.layouts.<module>.parse(ctx) -> LayoutResult
    note: str | None = None  # added to the provider's notes when the driver runs

    @property
    def parse(self) -> LayoutParser:
        import importlib

        module = importlib.import_module(f"{__name__}.{self.module}")
        parser: LayoutParser = module.parse
        return parser


#: The U-Boot environment's compatibles (drivers/nvmem/layouts/u-boot-env.c and
#: drivers/nvmem/u-boot-env.c share them; .data selects the format).
_U_BOOT_ENV: Final = ("u-boot,env", "u-boot,env-redundant-bool",
                      "u-boot,env-redundant-count", "brcm,env")

#: drivers/nvmem/layouts/*.c: the layout drivers' of_match tables
LAYOUT_DRIVERS: Final[tuple[LayoutDriver, ...]] = (
    LayoutDriver("fixed-layout", "fixed-layout", ("fixed-layout",), "fixed_layout"),
    LayoutDriver("onie-tlv-layout", "onie-tlv", ("onie,tlv-layout",), "onie_tlv"),
    LayoutDriver("kontron-sl28vpd-layout", "sl28-vpd", ("kontron,sl28-vpd",), "sl28vpd"),
    LayoutDriver("u-boot-env-layout", "u-boot-env", _U_BOOT_ENV, "u_boot_env"),
)

#: Platform drivers that parse their own provider (drivers/nvmem/u-boot-env.c,
#: drivers/nvmem/brcm_nvram.c), matched on the compatible of the provider's own
#: of_node.  An MTD partition compatible with "u-boot,env" also has its mtdN
#: provider (drivers/mtd/mtdcore.c: mtd_nvmem_add()), which these never match.
PROVIDER_DRIVERS: Final[tuple[LayoutDriver, ...]] = (
    LayoutDriver("u_boot_env", "u-boot-env", _U_BOOT_ENV, "u_boot_env",
                 note=("cells of drivers/nvmem/u-boot-env.c: added after nvmem_register(), "
                       "so the kernel never shows them in cells/")),
    LayoutDriver("brcm_nvram", "brcm-nvram", ("brcm,nvram",), "brcm_nvram",
                 note="cells of drivers/nvmem/brcm_nvram.c (nvmem_config.cells)"),
)


def match_layout(compatibles: list[str] | tuple[str, ...],
                 drivers: tuple[LayoutDriver, ...] | None = None) -> LayoutDriver | None:
    """``of_driver_match_device()`` over :data:`LAYOUT_DRIVERS`, case-insensitively."""
    wanted = [c.lower() for c in compatibles]
    for compat in wanted:
        for driver in LAYOUT_DRIVERS if drivers is None else drivers:
            if compat in (c.lower() for c in driver.compatibles):
                return driver
    return None


def match_provider_driver(provider: Provider) -> LayoutDriver | None:
    """The platform driver that registered *provider* and parses it (not MTD devices)."""
    if provider.is_mtd or not provider.compatible:
        return None
    return match_layout(provider.compatible, PROVIDER_DRIVERS)


def matched_compatible(compatibles: list[str] | tuple[str, ...], driver: LayoutDriver) -> str:
    """The first of *compatibles* that *driver* matches (its ``.data`` selects a format)."""
    known = {c.lower() for c in driver.compatibles}
    return next(c for c in compatibles if c.lower() in known)
