"""nvmemd/kernel_rules.py: cell_rules() decided on Provider values alone."""

from __future__ import annotations

import dataclasses

import pytest

from nvmemd.kernel_rules import LEGACY_OF_CELL_DRIVERS, cell_rules
from nvmemd.model import Access, Provider

BASE = Provider(name="nvmem0", sys_path="/sys/devices/x/nvmem0", type="OTP", size=64, mode=0o444,
                force_ro=None, of_node="/x", compatible=(), driver=None, parent_subsystem=None,
                mtd_type=None, has_kernel_cells=False)


def provider(**changes: object) -> Provider:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("row", LEGACY_OF_CELL_DRIVERS, ids=lambda r: r.source)
def test_every_opt_in_row_opts_in_with_its_access(row: object) -> None:
    from nvmemd.kernel_rules import LegacyOfCellDriver
    from nvmemd.kernel_version import SERIES

    assert isinstance(row, LegacyOfCellDriver)
    p = provider(compatible=(row.compatibles[0].upper(),))  # matched case-insensitively
    for series in SERIES:
        rules = cell_rules(p, series=series)
        if series not in row.series:  # the driver (or its opt-in) is not in that kernel
            assert not rules.legacy_cells, series
            continue
        assert rules.legacy_cells and rules.access == row.access and rules.fixup == row.fixup
        assert row.source in rules.reason and rules.series == series


def test_at24_does_not_opt_in() -> None:
    rules = cell_rules(provider(compatible=("atmel,24c32",), type="EEPROM"))
    assert not rules.legacy_cells
    assert rules.reason == "driver does not set add_legacy_fixed_of_cells"


@pytest.mark.parametrize(("compatible", "legacy"), [(("nvmem-cells",), True), ((), False)])
def test_mtd_partitions_need_the_nvmem_cells_compatible(compatible: tuple[str, ...],
                                                        legacy: bool) -> None:
    rules = cell_rules(provider(name="mtd1", parent_subsystem="mtd", compatible=compatible))
    assert rules.legacy_cells is legacy


@pytest.mark.parametrize(("mtd_type", "legacy"), [("nor", True), ("nand", False)])
def test_mtd_otp_opts_in_unless_nand(mtd_type: str, legacy: bool) -> None:
    rules = cell_rules(provider(name="user-otp0", mtd_type=mtd_type))
    assert rules.legacy_cells is legacy


def test_rtc_nvram_by_name_or_compatible() -> None:
    """drivers/rtc/nvmem.c opts in for every RTC; some are known only by name."""
    assert cell_rules(provider(name="ds1305_nvram0")).legacy_cells
    assert cell_rules(provider(name="ds1307_nvram0", compatible=("dallas,ds1338",))).legacy_cells


def test_w1_ds250x_by_family() -> None:
    p = provider(name="w1_bus_master1-09-0000012345ab", parent_subsystem="w1")
    assert cell_rules(p).legacy_cells
    assert not cell_rules(provider(name="w1_bus_master1-2d-0000012345ab",
                                   parent_subsystem="w1")).legacy_cells


def test_configured_extra_compatibles() -> None:
    p = provider(compatible=("vendor,otp",))
    assert not cell_rules(p).legacy_cells
    assert cell_rules(p, extra_compatibles=("VENDOR,otp",)).legacy_cells


def test_pre_6_7_mode() -> None:
    assert cell_rules(provider(compatible=("atmel,24c32",)), "all").legacy_cells
    mtd = cell_rules(provider(name="mtd0", parent_subsystem="mtd"), "all")
    assert not mtd.legacy_cells and not mtd.of_node_used  # config.no_of_node before 6.7


def test_access_only_rows_give_stride_without_legacy_cells() -> None:
    from nvmemd.kernel_rules import ACCESS_ONLY_DRIVERS

    compatibles, access = ACCESS_ONLY_DRIVERS[0]
    rules = cell_rules(provider(compatible=(compatibles[0],)))
    assert rules.access == access and access != Access()
