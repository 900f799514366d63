"""ONIE TLV layout (drivers/nvmem/layouts/onie-tlv.c): unit, fuzz and end-to-end tests."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvmemd.cells import decode_cell
from nvmemd.layouts import LayoutResult, match_layout
from nvmemd.layouts.onie_tlv import ONIE_TLV_CELL_NAMES, parse

from ..sysroots import query, query_json
from .images import assert_parse_stays_inside, context, empty_node, onie, rmem_sysroot

TLVS = [
    (0x21, b"NVMEMD-TEST"),
    (0x23, b"TLV-SN-0001"),
    (0x24, bytes.fromhex("02c0ffee00ff")),
    (0x2A, b"\x00\x08"),
    (0x40, b"unknown"),
    (0xFD, b"\x00\x00\x1b\xe1ext1"),
    (0xFD, b"\x00\x00\x1b\xe1ext2"),
]


def run(tmp_path: Path, image: bytes) -> LayoutResult:
    return parse(context(image, "onie,tlv-layout", empty_node(tmp_path)))


def test_driver_is_registered() -> None:
    driver = match_layout(["onie,tlv-layout"])
    assert driver is not None and driver.name == "onie-tlv-layout" and driver.source == "onie-tlv"


def test_cells_names_offsets_repeats_unknown_skipped(tmp_path: Path) -> None:
    r = run(tmp_path, onie(TLVS))
    assert not r.errors
    assert [(c.name, c.offset, c.bytes) for c in r.cells] == [
        ("product-name", 0xD, 11), ("serial-number", 0x1A, 11), ("mac-address", 0x27, 6),
        ("num-macs", 0x2F, 2), ("vendor-extension", 0x3C, 8), ("vendor-extension", 0x46, 8),
        ("crc32", 0x50, 4),
    ]
    assert all(c.source == "onie-tlv" and c.of_node is None for c in r.cells)
    assert r.validity is not None and r.validity.status == "valid"
    assert r.validity.expected == r.validity.found


def test_mac_post_process_adds_index_with_carry(tmp_path: Path) -> None:
    mac = next(c for c in run(tmp_path, onie(TLVS)).cells if c.name == "mac-address")
    raw = bytes.fromhex("02c0ffee00ff")
    assert decode_cell(mac, raw) == raw
    assert decode_cell(mac, raw, "mac-address", 1) == bytes.fromhex("02c0ffee0100")


def test_bad_crc_gives_no_cells_and_both_checksums(tmp_path: Path) -> None:
    r = run(tmp_path, onie(TLVS, bad_crc=True))
    assert r.cells == []
    assert r.validity is not None and r.validity.status == "invalid"
    assert r.validity.expected is not None and r.validity.found is not None
    assert int(r.validity.expected, 16) == int(r.validity.found, 16) ^ 1
    assert str(r.errors[0]).startswith(f"Invalid CRC read: {r.validity.expected}, expected: "
                                       f"{r.validity.found}")


@pytest.mark.parametrize(("image", "status", "message"), [
    (b"\xff" * 256, "absent", "Invalid header"),
    (b"\x00" * 256, "absent", "Invalid header"),
    (onie(TLVS, magic=b"TlvInfX\0"), "invalid", "Invalid header"),
    (onie(TLVS, version=2), "invalid", "Invalid version number"),
], ids=["erased", "zeroed", "bad-magic", "bad-version"])
def test_bad_header(tmp_path: Path, image: bytes, status: str, message: str) -> None:
    r = run(tmp_path, image)
    assert r.cells == [] and r.validity is not None and r.validity.status == status
    assert message in str(r.errors[0]) and "Invalid ONIE TLV header" in str(r.errors[0])
    assert "b'" not in str(r.errors[0]) and "'version" not in str(r.errors[0])


def test_bad_header_shows_the_bytes_escaped(tmp_path: Path) -> None:
    r = run(tmp_path, onie(TLVS, magic=b"TlvInfX\x1b"))
    assert r.validity is not None
    assert r.validity.detail == ('Invalid header: expected "TlvInfo\\x00", '
                                 'found "TlvInfX\\x1b"')


def test_length_over_2048_rejected(tmp_path: Path) -> None:
    image = bytearray(onie(TLVS, size=4096))
    image[9:11] = (2048 - 11 + 1).to_bytes(2, "big")
    r = run(tmp_path, bytes(image))
    assert r.cells == [] and "Invalid ONIE TLV data length" in str(r.errors[0])


def test_table_longer_than_device(tmp_path: Path) -> None:
    image = onie(TLVS, size=0x100)[:0x40]
    r = run(tmp_path, image)
    assert r.cells == [] and "does not fit the device" in str(r.errors[0])


def test_out_of_bounds_field_stops_but_keeps_cells(tmp_path: Path) -> None:
    # a TLV claiming 0x30 bytes inside a table whose CRC is right
    table = bytearray(onie([(0x21, b"OK"), (0x22, b"xy")]))
    table[11 + 4 + 1] = 0x30  # part-number length
    n = int.from_bytes(table[9:11], "big") + 11
    table[n - 4 : n] = zlib.crc32(bytes(table[: n - 4])).to_bytes(4, "big")
    r = run(tmp_path, bytes(table))
    assert [c.name for c in r.cells] == ["product-name"]
    assert "Out of bounds field (0x30 bytes at 0xf)" in str(r.errors[0])


def test_layout_child_node_becomes_of_node(tmp_path: Path) -> None:
    dts_body = ("\t\t\tnvmem-layout {\n\t\t\t\tcompatible = \"onie,tlv-layout\";\n"
                "\t\t\t\tmac-address { #nvmem-cell-cells = <1>; };\n\t\t\t};")
    root = rmem_sysroot(tmp_path, [(dts_body, onie(TLVS))])
    cells = {c["sysfs_name"]: c for c in query_json(root, "cells")}
    assert cells["mac-address@27,0"]["of_node"] == "/soc/nvmem@10000/nvmem-layout/mac-address"
    assert cells["product-name@d,0"]["of_node"] is None


LAYOUT = "\t\t\tnvmem-layout { compatible = \"onie,tlv-layout\"; };"


def test_end_to_end_cli(tmp_path: Path) -> None:
    root = rmem_sysroot(tmp_path, [(LAYOUT, onie(TLVS)), (LAYOUT, onie(TLVS, bad_crc=True)),
                                   (LAYOUT, b"\xff" * 0x200)])
    cells = query_json(root, "cells")
    got = {(c["provider"], c["sysfs_name"]): (c["bytes"], c["value"], c["source"])
           for c in cells}
    assert got[("rmem0", "product-name@d,0")] == (11, b"NVMEMD-TEST".hex(), "onie-tlv")
    assert got[("rmem0", "num-macs@2f,0")][1] == "0008"
    assert {p for p, _ in got} == {"rmem0"}
    providers = {p["name"]: p for p in query_json(root, "providers")}
    assert providers["rmem0"]["validity"][0]["status"] == "valid"
    bad = providers["rmem1"]
    assert bad["cells"] == 0 and bad["validity"][0]["status"] == "invalid"
    assert "Invalid CRC read" in bad["errors"][0]
    assert providers["rmem2"]["validity"][0]["status"] == "absent"
    out = query(root, "get", "rmem0:mac-address", "--format", "mac").stdout
    assert out == b"02:c0:ff:ee:00:ff\n"
    assert query(root, "get", "serial-number", "--format", "string").stdout == b"TLV-SN-0001\n"


# --- fuzzing ---------------------------------------------------------------------


@st.composite
def tlv_images(draw: st.DrawFn) -> bytes:
    tlvs = draw(st.lists(st.tuples(st.sampled_from([*ONIE_TLV_CELL_NAMES, 0x40, 0x00]),
                                   st.binary(max_size=40)), max_size=12))
    image = bytearray(onie(tlvs, size=draw(st.integers(11, 700)) + 600))
    for _ in range(draw(st.integers(0, 4))):  # mutations, CRC left as it is
        pos = draw(st.integers(0, len(image) - 1))
        image[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(image)))
    return bytes(image[:cut]) if draw(st.booleans()) else bytes(image)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(tlv_images(), st.binary(max_size=600)))
def test_fuzz_no_crash_no_out_of_bounds(image: bytes) -> None:
    assert_parse_stays_inside(parse, image, "onie,tlv-layout", index=3, decode_may_fail=False)
