"""Broadcom NVRAM (drivers/nvmem/brcm_nvram.c): the driver's own cells."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvmemd.cells import decode_cell
from nvmemd.errors import LayoutError
from nvmemd.layouts import LayoutResult
from nvmemd.layouts.brcm_nvram import parse

from ..sysroots import inline_sysroot, query, query_json
from .images import assert_parse_stays_inside, brcm_nvram, context, empty_node

VARS = [b"boardtype=0x0646", b"et0macaddr=00:90:4c:0f:f2:a8", b"et1macaddr=bad",
        b"wl0_ssid=nvmemd"]


def run(image: bytes) -> LayoutResult:
    return parse(context(image, "brcm,nvram", empty_node()))


def test_cells() -> None:
    r = run(brcm_nvram(VARS))
    assert not r.errors and r.validity is not None and r.validity.status == "valid"
    assert [(c.name, c.offset, c.bytes, c.raw_len) for c in r.cells] == [
        ("boardtype", 30, 6, 6), ("et0macaddr", 48, 6, 17), ("et1macaddr", 77, 6, 3),
        ("wl0_ssid", 90, 6, 6)]
    mac = r.cells[1]
    assert decode_cell(mac, b"00:90:4c:0f:f2:a8", "et0macaddr", 1) == bytes.fromhex(
        "00904c0ff2a9")
    with pytest.raises(LayoutError):
        decode_cell(r.cells[2], b"bad")


@pytest.mark.parametrize(("image", "message"), [
    (brcm_nvram(VARS, magic=b"HSLF"), "Invalid NVRAM magic"),
    (brcm_nvram(VARS, length=8), "NVRAM length (8) too small"),
    (brcm_nvram(VARS, length=0x2000), "exceeds data size"),
    (b"FLSH" + b"\xff" * 60, "NVRAM data too small (4)"),
    (brcm_nvram([b"a=1", b"junk", b"b=2"]), "nvmem_register() fails"),
], ids=["magic", "len-small", "len-big", "data-small", "entry-without-equals"])
def test_bad_header(image: bytes, message: str) -> None:
    r = run(image)
    assert r.cells == [] and message in str(r.errors[0])


def test_bad_magic_shows_the_bytes_escaped() -> None:
    r = run(brcm_nvram(VARS, magic=b"HS\xffF"))
    assert str(r.errors[0]) == ('Invalid NVRAM magic: expected "FLSH", found "HS\\xffF" '
                                "(-EINVAL)")


def test_padding_is_the_last_byte() -> None:
    # brcm_nvram_copy_data() trims trailing bytes equal to the last one; with 0x00
    # padding that eats the final NULs, so the header length exceeds the data (6.12.117).
    r = run(brcm_nvram(VARS, padding=0x00))
    assert r.cells == [] and "exceeds data size" in str(r.errors[0])
    assert [c.name for c in run(brcm_nvram(VARS, padding=0xAA)).cells][-1] == "wl0_ssid"


def test_blank_is_absent() -> None:
    r = run(b"\xff" * 256)
    assert r.validity is not None and r.validity.status == "absent"


DTS = """/dts-v1/;
/ {
	nvram@1eff0000 {
		compatible = "brcm,nvram";
		reg = <0x1eff0000 0x1000>;
		et0macaddr { #nvmem-cell-cells = <1>; };
	};
};
"""


def test_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/nvram.bin").write_bytes(brcm_nvram(VARS))
    root = inline_sysroot(tmp_path, DTS, [{
        "name": "brcm-nvram0", "of_node": "/nvram@1eff0000", "device": "platform/1eff0000.nvram",
        "bus": "platform", "driver": "brcm_nvram", "type": "Unknown", "mode": "0444",
        "size": 0x1000, "image": {"file": "nvram.bin"}}])
    cells = {c["sysfs_name"]: c for c in query_json(root, "cells")}
    assert cells["et0macaddr@30,0"]["value"] == "00904c0ff2a8"
    assert cells["et0macaddr@30,0"]["source"] == "brcm-nvram"
    assert cells["et0macaddr@30,0"]["of_node"] == "/nvram@1eff0000/et0macaddr"
    assert cells["et1macaddr@4d,0"]["value"] is None
    assert query(root, "get", "wl0_ssid", "--format", "string").stdout == b"nvmemd\n"


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.builds(lambda v, n, p: brcm_nvram(v, 128 + n, padding=p),
                           st.lists(st.binary(max_size=12).filter(lambda b: b"\0" not in b),
                                    max_size=6),
                           st.integers(0, 64), st.integers(0, 255))))
def test_fuzz(image: bytes) -> None:
    assert_parse_stays_inside(parse, image, "brcm,nvram", index=1)
