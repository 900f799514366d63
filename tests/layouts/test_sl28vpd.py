"""Kontron sl28 VPD layout (drivers/nvmem/layouts/sl28vpd.c)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvmemd.cells import decode_cell
from nvmemd.errors import LayoutError
from nvmemd.layouts import LayoutResult, match_layout
from nvmemd.layouts.sl28vpd import parse

from ..sysroots import query, query_json
from .images import assert_parse_stays_inside, context, empty_node, rmem_sysroot, sl28

MAC = bytes.fromhex("00a0a51234ff")


def run(image: bytes) -> LayoutResult:
    return parse(context(image, "kontron,sl28-vpd", empty_node()))


def test_driver_is_registered() -> None:
    driver = match_layout(["kontron,sl28-vpd"])
    assert driver is not None and driver.name == "kontron-sl28vpd-layout"


def test_cells_and_crc8(tmp_path: Path) -> None:
    r = run(sl28(mac=MAC))
    assert [(c.name, c.offset, c.bytes) for c in r.cells] == [
        ("serial-number", 2, 15), ("base-mac-address", 17, 6)]
    assert r.validity is not None and r.validity.status == "valid"


def test_crc8_known_answer() -> None:
    # CRC-8/SMBUS (poly 0x07, init 0, MSB first) of "123456789" is 0xf4
    from nvmemd.crc import crc8

    assert crc8(b"123456789") == 0xF4


def test_mac_post_process() -> None:
    mac = run(sl28(mac=MAC)).cells[1]
    assert decode_cell(mac, MAC) == MAC
    assert decode_cell(mac, MAC, "base-mac-address", 2) == bytes.fromhex("00a0a5123501")
    with pytest.raises(LayoutError, match="-EINVAL"):
        decode_cell(mac, bytes(6))
    with pytest.raises(LayoutError, match="-EINVAL"):
        decode_cell(mac, bytes.fromhex("01a0a5123456"))  # multicast
    with pytest.raises(LayoutError, match="negative"):
        decode_cell(mac, MAC, "x", -1)


@pytest.mark.parametrize(("image", "status", "message"), [
    (sl28(bad_crc=True), "invalid", "Checksum is invalid (got "),
    (sl28(version=2), "invalid", "Version 2 is unsupported"),
    (b"\xff" * 64, "absent", "Invalid magic value (ff)"),
    (b"X" * 64, "invalid", "Invalid magic value (58)"),
], ids=["bad-crc", "version", "erased", "magic"])
def test_bad_media(image: bytes, status: str, message: str) -> None:
    r = run(image)
    assert r.cells == [] and r.validity is not None and r.validity.status == status
    assert message in str(r.errors[0])


def test_bad_crc_reports_both_checksums() -> None:
    r = run(sl28(bad_crc=True))
    assert r.validity is not None and r.validity.expected is not None
    assert int(r.validity.expected, 16) == int(r.validity.found or "0", 16) ^ 1


def test_too_small() -> None:
    with pytest.raises(LayoutError, match="too small"):
        run(sl28()[:20])


LAYOUT = ("\t\t\tnvmem-layout {\n\t\t\t\tcompatible = \"kontron,sl28-vpd\";\n"
          "\t\t\t\tbase-mac-address { #nvmem-cell-cells = <1>; };\n\t\t\t};")


def test_end_to_end_cli(tmp_path: Path) -> None:
    root = rmem_sysroot(tmp_path, [(LAYOUT, sl28(mac=MAC)), (LAYOUT, sl28(mac=bytes(6))),
                                   (LAYOUT, sl28(bad_crc=True))])
    cells = {(c["provider"], c["sysfs_name"]): c for c in query_json(root, "cells")}
    assert cells[("rmem0", "serial-number@2,0")]["value"] == b"SL28-0000123456".hex()
    assert cells[("rmem0", "base-mac-address@11,0")]["value"] == MAC.hex()
    assert cells[("rmem0", "base-mac-address@11,0")]["of_node"] == (
        "/soc/nvmem@10000/nvmem-layout/base-mac-address")
    # an all-zero MAC: the cell exists, its read fails (-EINVAL) as in the kernel
    assert cells[("rmem1", "base-mac-address@11,0")]["value"] is None
    assert cells[("rmem1", "base-mac-address@11,0")]["error"] == "Invalid argument"
    assert "-EINVAL" in cells[("rmem1", "base-mac-address@11,0")]["error_detail"]
    assert not [k for k in cells if k[0] == "rmem2"]
    out = query(root, "get", "rmem0:base-mac-address", "--format", "mac").stdout
    assert out == b"00:a0:a5:12:34:ff\n"


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=64),
                 st.builds(lambda s, m, cut: sl28(s, m)[:cut], st.binary(max_size=15),
                           st.binary(min_size=6, max_size=6), st.integers(0, 256))))
def test_fuzz(image: bytes) -> None:
    assert_parse_stays_inside(parse, image, "kontron,sl28-vpd", index=1)
