"""nvmemd/kernel_rules.py: cell_rules() decided on Provider values alone."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvmemd.kernel_rules import (
    LEGACY_OF_CELL_DRIVERS,
    cell_rules,
    is_rtc_nvmem_name,
    is_w1_ds250x_name,
)
from nvmemd.model import Access, Provider, is_mtd_otp_name
from nvmemd.values import replace

BASE = Provider(name="nvmem0", sys_path="/sys/devices/x/nvmem0", type="OTP", size=64, mode=0o444,
                force_ro=None, of_node="/x", compatible=(), driver=None, parent_subsystem=None,
                mtd_type=None, has_kernel_cells=False)


def provider(**changes: object) -> Provider:
    return replace(BASE, **changes)  # type: ignore[arg-type]


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


# --- the name matchers are string code (no `re` at start-up); they keep the kernel's formats

#: The patterns the matchers replace, written from the kernel's format strings.
RTC_NAME = re.compile(r"(ds1305_nvram|ds1343-|ds1511_nvram|ds1553_nvram|ds1685_nvram|m48t59-"
                      r"|rp5c01_nvram|stk17ta8_nvram)[0-9]+")
W1_NAME = re.compile(r"(?:[^\n]+-)?(09|89|0b|91)-[0-9a-f]{12}")
MTD_OTP = re.compile(r"(user-otp|factory-otp)[0-9]+")

_NAME_PARTS = st.sampled_from(["ds1305_nvram", "ds1343-", "m48t59-", "stk17ta8_nvram", "user-otp",
                               "factory-otp", "09", "89", "0b", "91", "0B", "-", "0", "7", "a",
                               "f", "g", "0123456789ab", "w1_bus_master1", "\n", "\u0661", "x"])


@given(st.lists(_NAME_PARTS, max_size=8).map("".join) | st.text(max_size=24))
@settings(max_examples=3000, deadline=None)
def test_name_matchers_agree_with_the_kernel_formats(name: str) -> None:
    assert is_rtc_nvmem_name(name) == bool(RTC_NAME.fullmatch(name))
    assert is_w1_ds250x_name(name) == bool(W1_NAME.fullmatch(name))
    assert is_mtd_otp_name(name) == bool(MTD_OTP.fullmatch(name))


@pytest.mark.parametrize(("name", "rtc", "w1"), [
    ("ds1305_nvram0", True, False), ("m48t59-12", True, False), ("ds1305_nvram", False, False),
    ("ds1305_nvramx", False, False), ("09-0123456789ab", False, True),
    ("w1_bus_master1-91-00000000abcd", False, True), ("-09-0123456789ab", False, False),
    ("0a-0123456789ab", False, False), ("09-0123456789AB", False, False),
    ("09-0123456789a", False, False)])
def test_name_matchers_examples(name: str, rtc: bool, w1: bool) -> None:
    assert (is_rtc_nvmem_name(name), is_w1_ds250x_name(name)) == (rtc, w1)
