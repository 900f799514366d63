"""Layout drivers: who turns an ``nvmem-layout`` node into cells.

Mirrors ``drivers/nvmem/layouts.c``: a provider's ``nvmem-layout`` child is
matched by its ``compatible`` against each layout driver's ``of_match_table``
(``nvmem_layout_bus_match()`` → ``of_driver_match_device()``); a node without
``compatible`` is skipped ("skipping %pOF, no compatible prop").  One module
per kernel layout file; :data:`LAYOUT_DRIVERS` is the table of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..cells import CellInfo
from ..devicetree import DtNode
from ..errors import NvmemError
from ..kernel_rules import Access
from ..providers import Provider


@dataclass(frozen=True)
class LayoutContext:
    """What a layout parser may use: the provider's bytes and its layout node."""

    provider: str
    size: int
    access: Access
    node: DtNode  # the nvmem-layout node (or the partition node of a platform driver)
    read: Callable[[int, int], bytes]  # (offset, length) → bytes, bounded to the provider
    compatible: str  # the compatible that matched


@dataclass(frozen=True)
class Validity:
    """Checksum status of self-describing media (beyond the kernel)."""

    layout: str
    status: Literal["valid", "invalid", "absent"]
    expected: str | None = None  # checksum stored on the media (hex)
    found: str | None = None  # checksum computed over the data (hex)
    detail: str | None = None
    flag: int | None = None  # redundant U-Boot environment: the flag (mark) byte


@dataclass
class LayoutResult:
    cells: list[CellInfo] = field(default_factory=list)
    errors: list[NvmemError] = field(default_factory=list)
    validity: Validity | None = None


LayoutParser = Callable[[LayoutContext], LayoutResult]


@dataclass(frozen=True)
class LayoutDriver:
    name: str  # the kernel driver's name
    source: str  # `source` of its cells in JSON and on D-Bus
    compatibles: tuple[str, ...]
    parse: LayoutParser
    note: str | None = None  # added to the provider's notes when the driver runs


def _fixed_layout(ctx: LayoutContext) -> LayoutResult:
    """drivers/nvmem/layouts/fixed-layout.c: fixed_layout_add_cells()."""
    from ..cells import add_cells_from_dt

    r = add_cells_from_dt(ctx.node, ctx.access, "fixed-layout")
    return LayoutResult(cells=r.cells, errors=list(r.errors))


def _drivers() -> tuple[LayoutDriver, ...]:
    drivers = [LayoutDriver("fixed-layout", "fixed-layout", ("fixed-layout",), _fixed_layout)]
    drivers.extend(_dynamic_drivers())
    return tuple(drivers)


def _dynamic_drivers() -> list[LayoutDriver]:
    """ONIE TLV, sl28 VPD, U-Boot env: added by their own modules."""
    from . import onie_tlv, sl28vpd, u_boot_env

    return [onie_tlv.DRIVER, sl28vpd.DRIVER, u_boot_env.DRIVER]


def _provider_drivers() -> tuple[LayoutDriver, ...]:
    from . import brcm_nvram, u_boot_env

    return (u_boot_env.PLATFORM_DRIVER, brcm_nvram.DRIVER)


#: drivers/nvmem/layouts/*.c of_match tables
LAYOUT_DRIVERS: tuple[LayoutDriver, ...] = _drivers()


#: Platform drivers that parse their own provider (drivers/nvmem/u-boot-env.c,
#: drivers/nvmem/brcm_nvram.c), matched on the compatible of the provider's own
#: of_node.  An MTD partition compatible with "u-boot,env" also has its mtdN
#: provider (drivers/mtd/mtdcore.c: mtd_nvmem_add()), which these never match.
PROVIDER_DRIVERS: tuple[LayoutDriver, ...] = _provider_drivers()


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
