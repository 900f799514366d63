"""Every v6.7+ cell rule, end to end: DTS → dtc → sysroot → `nvmemd-query --direct`.

tests/data/kernel-rules/board.dts holds one provider per rule; the expected
values below are worked out by hand from the kernel's algorithms
(drivers/nvmem/core.c: nvmem_add_cells_from_dt(), nvmem_shift_read_buffer_in_place())
so that a change in decoding shows up as a failure here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .sysroots import board_sysroot, query, query_json


@pytest.fixture(scope="module")
def sysroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return board_sysroot("kernel-rules", tmp_path_factory.mktemp("sysroots"))


@pytest.fixture(scope="module")
def cells(sysroot: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["provider"], c["sysfs_name"]): c for c in query_json(sysroot, "cells")}


@pytest.fixture(scope="module")
def providers(sysroot: Path) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in query_json(sysroot, "providers")}


def names(cells: dict[tuple[str, str], dict[str, Any]], provider: str) -> list[str]:
    return [name for (p, name) in cells if p == provider]


def test_cells_json_has_the_documented_fields(cells: dict[tuple[str, str], dict[str, Any]]
                                              ) -> None:
    c = cells[("imx-ocotp0", "three-bytes@4,0")]
    assert c == {
        "provider": "imx-ocotp0", "name": "three-bytes", "sysfs_name": "three-bytes@4,0",
        "offset": 4, "bit_offset": 0, "nbits": 0, "bytes": 3, "source": "legacy",
        "of_node": "/soc/efuse@30350000/three-bytes@4", "value": "aabbcc",
    }


def test_opt_in_driver_matched_case_insensitively(providers: dict[str, dict[str, Any]],
                                                  cells: dict[tuple[str, str], dict[str, Any]]
                                                  ) -> None:
    assert providers["imx-ocotp0"]["legacy_cells"] is True
    assert providers["imx-ocotp0"]["word_size"] == 4
    # DT order from the boot blob; no-reg child skipped; bits of wrong length ignored.
    assert names(cells, "imx-ocotp0") == [
        "three-bytes@4,0", "mac-address@90,0", "bits-span@20,5", "bits-high@24,9",
        "bad-bits-len@28,0",
    ]


@pytest.mark.parametrize(("cell", "value"), [
    ("mac-address@90,0", "112233445566"),   # imx_ocotp_cell_pp() reverses MACs
    ("bits-span@20,5", "1f3d00"),           # (0x7fa3e5 >> 5) & 0x3fff, 3 bytes
    ("bits-high@24,9", "0f00"),             # (0x1e00 >> 9) & 0xf, bit offset >= 8
    ("bad-bits-len@28,0", "7f"),            # `bits` with 3 values is ignored
])
def test_imx_ocotp_values(cells: dict[tuple[str, str], dict[str, Any]], cell: str, value: str
                          ) -> None:
    assert cells[("imx-ocotp0", cell)]["value"] == value


def test_qfprom_fixup_aligns_offsets(cells: dict[tuple[str, str], dict[str, Any]]) -> None:
    speedbin = cells[("qfprom2", "speedbin@1e8,9")]
    assert (speedbin["offset"], speedbin["bit_offset"], speedbin["nbits"]) == (0x1E8, 9, 3)
    assert speedbin["bytes"] == 2 and speedbin["value"] == "0300"
    unaligned = cells[("qfprom2", "unaligned-bytes@0,18")]
    assert (unaligned["bit_offset"], unaligned["nbits"], unaligned["bytes"]) == (24, 16, 5)
    assert unaligned["value"] == "00ab000000"


def test_bad_legacy_cell_rejects_whole_provider(providers: dict[str, dict[str, Any]],
                                                cells: dict[tuple[str, str], dict[str, Any]]
                                                ) -> None:
    for name, node in [("sunxi-sid0", "/soc/efuse@1c23800/unaligned@2"),
                       ("mtd2", "/soc/spi-flash@0/partitions/partition@2000/bad@2")]:
        assert providers[name]["rejected"] is True
        assert names(cells, name) == []
        assert any(node in e and "whole provider" in e for e in providers[name]["errors"])
    assert "stride 4" in providers["sunxi-sid0"]["errors"][0]


def test_fixed_layout_keeps_cells_before_a_bad_one(providers: dict[str, dict[str, Any]],
                                                   cells: dict[tuple[str, str], dict[str, Any]]
                                                   ) -> None:
    assert names(cells, "rmem3") == ["first@10,0"]
    assert providers["rmem3"]["rejected"] is False
    assert "invalid reg on /soc/sram@40000000/nvmem-layout/short-reg@14" in \
        providers["rmem3"]["errors"][0]
    assert any("ignored@0" in n for n in providers["rmem3"]["notes"])
    # The kernel never reaches never@18; nvmemd says so.
    assert any("not created" in n and "nvmem-layout/never@18" in n
               for n in providers["rmem3"]["notes"])


def test_every_invalid_cell_is_reported_not_only_the_first(tmp_path: Path) -> None:
    """The kernel stops at the first bad cell; a DTS author wants all of them at once."""
    from .sysroots import inline_sysroot

    dts = """/dts-v1/;
/ { sram@0 { compatible = "nvmem-rmem";
      nvmem-layout { compatible = "fixed-layout"; #address-cells = <1>; #size-cells = <1>;
        a@0 { reg = <0 4>; };
        b@4 { reg = <4>; };
        c@8 { reg = <8 4>; };
        d@c { reg = <0xc 1>; bits = <7 2>; };
      }; }; };
"""
    root = inline_sysroot(tmp_path, dts, [{
        "name": "rmem0", "of_node": "/sram@0", "device": "platform/0.sram", "bus": "platform",
        "driver": "rmem", "mode": "0400", "size": 64, "image": {"fill": 0}}])
    [p] = query_json(root, "providers")
    assert p["cells"] == 1
    assert "invalid reg on /sram@0/nvmem-layout/b@4; cells before it are kept" in p["errors"][0]
    assert p["errors"][1].endswith("invalid bits on /sram@0/nvmem-layout/d@c")
    assert any("not created" in n and "/sram@0/nvmem-layout/c@8" in n for n in p["notes"])


def test_cell_past_the_end_is_listed_but_unreadable(
        cells: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert names(cells, "rmem4") == ["fits@f0,0", "past-end@f8,0"]
    assert cells[("rmem4", "fits@f0,0")]["value"] == b"0123456789abcdef".hex()
    past = cells[("rmem4", "past-end@f8,0")]
    assert past["value"] is None and past["error"] == "Input/output error"
    assert "past the end" in past["error_detail"]


def test_duplicate_file_names_fail_the_layout(providers: dict[str, dict[str, Any]],
                                              cells: dict[tuple[str, str], dict[str, Any]]
                                              ) -> None:
    assert names(cells, "rmem5") == []
    assert "duplicate filename 'cells/twin@0,0'" in providers["rmem5"]["errors"][0]


def test_layout_without_compatible_is_skipped(providers: dict[str, dict[str, Any]],
                                              cells: dict[tuple[str, str], dict[str, Any]]
                                              ) -> None:
    assert names(cells, "rmem6") == []
    assert any("no compatible prop" in n for n in providers["rmem6"]["notes"])
    assert providers["rmem6"]["errors"] == []


def test_rtc_nvram_opts_in(cells: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert cells[("ds1307_nvram0", "boot-count@0,0")]["value"] == "2a"


def test_mtd_partitions(providers: dict[str, dict[str, Any]],
                        cells: dict[tuple[str, str], dict[str, Any]]) -> None:
    # nvmem-cells as the second compatible counts; #address-cells = <2> is ignored.
    assert providers["mtd0"]["legacy_cells"] is True
    assert cells[("mtd0", "mac@6,0")]["value"] == "020000c0ffee"
    assert providers["mtd1"]["legacy_cells"] is False
    assert names(cells, "mtd1") == []
    assert providers["mtd0"]["mtd_type"] == "nor"


def test_mtd_otp_legacy_unless_nand(providers: dict[str, dict[str, Any]],
                                    cells: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert providers["user-otp7"]["mtd_type"] == "nor"
    assert cells[("user-otp7", "serial@0,0")]["value"] == b"OTP-SN-1".hex()
    assert providers["user-otp8"]["mtd_type"] == "nand"
    assert providers["user-otp8"]["legacy_cells"] is False
    assert names(cells, "user-otp8") == []


def test_provider_without_of_node(providers: dict[str, dict[str, Any]]) -> None:
    p = providers["nvmem0"]
    assert p["of_node"] is None and p["cells"] == 0 and p["errors"] == []


def test_provider_metadata(providers: dict[str, dict[str, Any]]) -> None:
    ocotp = providers["imx-ocotp0"]
    assert (ocotp["type"], ocotp["size"], ocotp["root_only"], ocotp["read_only"]) == \
        ("OTP", 256, False, False)
    assert ocotp["driver"] == "imx_ocotp"
    assert ocotp["compatible"] == ["FSL,IMX8MP-OCOTP", "syscon"]
    mtd = providers["mtd0"]
    assert (mtd["root_only"], mtd["read_only"], mtd["writable"]) == (True, True, False)


def test_pre_6_7_kernel_gets_legacy_cells_everywhere(sysroot: Path) -> None:
    release = sysroot / "proc/sys/kernel/osrelease"
    saved = release.read_text()
    release.write_text("6.6.30\n")
    try:
        got = {(c["provider"], c["sysfs_name"]) for c in query_json(sysroot, "cells")}
    finally:
        release.write_text(saved)
    assert ("rmem3", "ignored@0,0") in got  # rmem does not opt in since 6.7
    assert ("mtd1", "not-a-cell@0,0") not in got  # pre-6.7 MTD: no of_node w/o nvmem-cells


def test_get_by_every_spec_form(sysroot: Path) -> None:
    for spec in ["mtd0:mac", "mac@6,0", "/soc/spi-flash@0/partitions/partition@0/mac@6"]:
        assert query(sysroot, "get", spec).stdout == b"020000c0ffee\n", spec
    assert query(sysroot, "get", "mac", "--format", "mac").stdout == b"02:00:00:c0:ff:ee\n"


def test_ambiguous_name_lists_candidates(sysroot: Path) -> None:
    proc = query(sysroot, "get", "serial", check=False)
    assert proc.returncode == 0  # only user-otp7 has it (user-otp8 is NAND)
    proc = query(sysroot, "get", "first", "--provider", "rmem4", check=False)
    assert proc.returncode == 3 and b"no cell matches 'first' on provider 'rmem4'" in proc.stderr


def test_exit_codes(sysroot: Path) -> None:
    assert query(sysroot, "get", "nope", check=False).returncode == 3
    assert query(sysroot, "get", "past-end", check=False).returncode == 5
    assert query(sysroot, "get", "mac", "--format", "u16", check=False).returncode == 2
    assert query(sysroot, "cells", "no-such-provider", check=False).returncode == 3
    assert query(sysroot, "dump", "rmem4", "--offset", "4096", check=False).returncode == 2


def test_naming_a_provider_scans_only_it_with_the_same_answer(sysroot: Path) -> None:
    everything = query_json(sysroot, "cells")
    for provider in ("imx-ocotp0", "qfprom2", "rmem4", "mtd0"):
        alone = query_json(sysroot, "cells", provider)
        assert alone == [c for c in everything if c["provider"] == provider], provider
    for spec in ("qfprom2:speedbin", "rmem4:fits"):
        assert query(sysroot, "get", spec).stdout == \
            query(sysroot, "get", spec.split(":")[1], "--provider", spec.split(":")[0]).stdout
    # A broken neighbour does not matter to a named provider.
    nvmem = (sysroot / "sys/bus/nvmem/devices/sunxi-sid0").resolve() / "nvmem"
    saved = nvmem.read_bytes()
    nvmem.unlink()
    nvmem.mkdir()
    try:
        assert query(sysroot, "get", "mtd0:mac").stdout == b"020000c0ffee\n"
    finally:
        nvmem.rmdir()
        nvmem.write_bytes(saved)
