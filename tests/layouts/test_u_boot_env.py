"""U-Boot environment (drivers/nvmem/layouts/u-boot-env.c, drivers/nvmem/u-boot-env.c)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvmemd.cells import decode_cell
from nvmemd.errors import LayoutError
from nvmemd.layouts import LayoutResult, match_layout
from nvmemd.layouts.u_boot_env import EnvCopy, choose_copy, parse

from ..sysroots import inline_sysroot, query, query_json
from .images import assert_parse_stays_inside, context, empty_node, uboot_env

VARS = [b"arch=arm", b"ethaddr=02:11:22:33:44:55", b"empty=", b"serial#=SN-4711",
        b"bootcmd=run distro_bootcmd"]


def run(image: bytes, compatible: str = "u-boot,env") -> LayoutResult:
    return parse(context(image, compatible, empty_node()))


def test_driver_is_registered() -> None:
    for compat in ("u-boot,env", "u-boot,env-redundant-bool", "u-boot,env-redundant-count",
                   "brcm,env"):
        driver = match_layout([compat])
        assert driver is not None and driver.name == "u-boot-env-layout"


@pytest.mark.parametrize(("fmt", "compatible", "base"), [
    ("single", "u-boot,env", 4),
    ("redundant", "u-boot,env-redundant-count", 5),
    ("broadcom", "brcm,env", 12),
])
def test_cells_per_format(fmt: str, compatible: str, base: int) -> None:
    r = run(uboot_env(VARS, fmt=fmt), compatible)
    assert not r.errors and r.validity is not None and r.validity.status == "valid"
    got = [(c.name, c.offset, c.bytes, c.raw_len) for c in r.cells]
    assert got == [
        ("arch", base + 5, 3, 3),
        ("ethaddr", base + 9 + 8, 6, 17),
        ("empty", base + 35 + 6, 0, 0),
        ("serial#", base + 42 + 8, 7, 7),
        ("bootcmd", base + 58 + 8, 18, 18),
    ]
    if fmt == "redundant":
        assert r.validity.flag == 1
    else:
        assert r.validity.flag is None


def test_ethaddr_post_process() -> None:
    eth = next(c for c in run(uboot_env(VARS)).cells if c.name == "ethaddr")
    raw = b"02:11:22:33:44:55"
    assert decode_cell(eth, raw) == bytes.fromhex("021122334455")
    assert decode_cell(eth, raw, "ethaddr", 0xAB) == bytes.fromhex("021122334500")
    for bad in (b"02-11-22-33-44-55", b"02:11:22:33:44:5g"):
        with pytest.raises(LayoutError, match="-EINVAL"):
            decode_cell(eth, bad)


def test_short_ethaddr_is_einval() -> None:
    eth = next(c for c in run(uboot_env([b"ethaddr=02:11"])).cells)
    assert (eth.bytes, eth.raw_len) == (6, 5)
    with pytest.raises(LayoutError, match="-EINVAL"):
        decode_cell(eth, b"02:11")


def test_stops_at_entry_without_equals() -> None:
    r = run(uboot_env([b"a=1", b"novalue", b"b=2"]))
    assert [c.name for c in r.cells] == ["a"]


def test_crc_covers_the_padding() -> None:
    image = bytearray(uboot_env(VARS))
    image[-1] ^= 0xFF
    r = run(bytes(image))
    assert r.cells == [] and r.validity is not None and r.validity.status == "invalid"
    assert str(r.errors[0]).startswith(f"Invalid calculated CRC32: {r.validity.found} "
                                       f"(expected: {r.validity.expected})")


@pytest.mark.parametrize("fill", [0x00, 0xFF])
def test_blank_is_absent(fill: int) -> None:
    r = run(bytes([fill]) * 0x400)
    assert r.cells == [] and r.validity is not None and r.validity.status == "absent"


def test_device_smaller_than_header() -> None:
    r = run(b"\0\0", "brcm,env")
    assert r.cells == [] and "Device too small for u-boot-env" in str(r.errors[0])


def test_last_byte_is_forced_to_nul() -> None:
    # a value running to the very end of the device is cut one byte short
    body = b"k=" + b"v" * (0x40 - 4 - 2)
    image = struct.pack("<I", zlib.crc32(body)) + body
    (cell,) = run(image).cells
    assert (cell.offset, cell.bytes) == (6, 0x40 - 6 - 1)


# --- redundant selection (libubootenv rules) -----------------------------------------


def pick(kind: str, a: tuple[bool, int], b: tuple[bool, int]) -> int | None:
    return choose_copy(kind, (EnvCopy("a", *a), EnvCopy("b", *b)))


@pytest.mark.parametrize(("kind", "a", "b", "chosen"), [
    ("boolean", (True, 1), (True, 0), 0),
    ("boolean", (True, 0), (True, 1), 1),
    ("boolean", (True, 1), (True, 0xFF), 1),
    ("boolean", (True, 0xFF), (True, 0), 0),
    ("boolean", (True, 0xFF), (True, 0xFF), 1),
    ("boolean", (True, 1), (True, 1), 0),
    ("incremental", (True, 4), (True, 5), 1),
    ("incremental", (True, 7), (True, 6), 0),
    ("incremental", (True, 0xFF), (True, 0), 1),
    ("incremental", (True, 0), (True, 0xFF), 0),
    ("incremental", (False, 9), (True, 3), 1),
    ("incremental", (True, 3), (False, 9), 0),
    ("incremental", (False, 3), (False, 9), None),
])
def test_choose_copy(kind: str, a: tuple[bool, int], b: tuple[bool, int],
                     chosen: int | None) -> None:
    assert pick(kind, a, b) == chosen


DTS = """/dts-v1/;
/ {
	flash@0 {
		compatible = "cfi-flash";
		partitions {
			compatible = "fixed-partitions";
			#address-cells = <1>;
			#size-cells = <1>;
			env: partition@0 {
				label = "u-boot-env";
				compatible = "u-boot,env";
				reg = <0x0 0x1000>;
				ethaddr { #nvmem-cell-cells = <1>; };
			};
			partition@1000 {
				label = "env1";
				reg = <0x1000 0x1000>;
				nvmem-layout { compatible = "u-boot,env-redundant-count"; };
			};
			partition@2000 {
				label = "env2";
				reg = <0x2000 0x1000>;
				nvmem-layout { compatible = "u-boot,env-redundant-count"; };
			};
		};
	};
};
"""


def mtd(name: str, node: str, image: bytes) -> dict[str, Any]:
    return {"name": name, "of_node": f"/flash@0/partitions/{node}",
            "device": f"platform/0.flash/mtd/{name}", "class": "mtd",
            "attributes": {"type": "nor"}, "type": "Unknown", "mode": "0400",
            "size": len(image), "image": {"file": f"{name}.bin"}}


def env_sysroot(tmp: Path, first: bytes, second: bytes) -> Path:
    src = tmp / "src"
    src.mkdir(parents=True, exist_ok=True)
    single = uboot_env([b"ethaddr=02:00:00:00:00:10", b"bootcmd=boot"], 0x1000)
    providers = [mtd("mtd0", "partition@0", single), mtd("mtd1", "partition@1000", first),
                 mtd("mtd2", "partition@2000", second)]
    # drivers/nvmem/u-boot-env.c: the platform driver's own provider on the partition
    providers.append({"name": "u-boot-env0", "of_node": "/flash@0/partitions/partition@0",
                      "device": "platform/0.flash/0.flash:partitions:partition@0",
                      "bus": "platform", "driver": "u_boot_env", "type": "Unknown",
                      "mode": "0444", "size": 0x1000, "image": {"file": "mtd0.bin"}})
    for name, image in (("mtd0", single), ("mtd1", first), ("mtd2", second)):
        (src / f"{name}.bin").write_bytes(image)
    return inline_sysroot(tmp, DTS, providers)


def redundant(bootcmd: bytes, flag: int, *, bad_crc: bool = False) -> bytes:
    return uboot_env([b"bootcmd=" + bootcmd, b"ethaddr=02:00:00:00:00:20"], 0x1000,
                     fmt="redundant", flag=flag, bad_crc=bad_crc)


def test_platform_driver_provider(tmp_path: Path) -> None:
    root = env_sysroot(tmp_path, redundant(b"old", 4), redundant(b"new", 5))
    cells = [c for c in query_json(root, "cells") if c["provider"] == "u-boot-env0"]
    assert [(c["sysfs_name"], c["source"], c["value"]) for c in cells] == [
        ("ethaddr@c,0", "u-boot-env", "020000000010"),
        ("bootcmd@26,0", "u-boot-env", b"boot".hex()),
    ]
    assert cells[0]["of_node"] == "/flash@0/partitions/partition@0/ethaddr"
    # mtd0 (the MTD provider of the same partition) has no cells
    assert not [c for c in query_json(root, "cells") if c["provider"] == "mtd0"]
    prov = {p["name"]: p for p in query_json(root, "providers")}
    assert any("never shows them in cells/" in n for n in prov["u-boot-env0"]["notes"])


@pytest.mark.parametrize(("first", "second", "in_use"), [
    (redundant(b"old", 4), redundant(b"new", 5), "mtd2"),
    (redundant(b"new", 0), redundant(b"old", 0xFF), "mtd1"),
    (redundant(b"new", 9), redundant(b"old", 10, bad_crc=True), "mtd1"),
], ids=["newer-second", "wraparound", "second-broken"])
def test_redundant_pair(tmp_path: Path, first: bytes, second: bytes, in_use: str) -> None:
    root = env_sysroot(tmp_path, first, second)
    # u-boot-env0 (the single environment) has a bootcmd too: still ambiguous
    assert query(root, "get", "bootcmd", check=False).returncode == 2
    prov = {p["name"]: p for p in query_json(root, "providers")}
    other = "mtd1" if in_use == "mtd2" else "mtd2"
    assert any("is in use" in n and "this copy" in n for n in prov[in_use]["notes"])
    assert any(f"{in_use} (flag" in n for n in prov[other]["notes"])
    assert "in use" in prov[in_use]["validity"][0]["detail"]
    assert "flag" in prov[in_use]["validity"][0]


def test_redundant_plain_name_prefers_copy_in_use(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    first, second = redundant(b"old", 4), redundant(b"new", 5)
    (src / "mtd1.bin").write_bytes(first)
    (src / "mtd2.bin").write_bytes(second)
    root = inline_sysroot(tmp_path, DTS, [mtd("mtd1", "partition@1000", first),
                                          mtd("mtd2", "partition@2000", second)])
    assert query(root, "get", "bootcmd", "--format", "string").stdout == b"new\n"
    rec = query_json(root, "get", "ethaddr", "--format", "mac")
    assert rec["provider"] == "mtd2"
    # both copies' cells stay listed
    assert {c["provider"] for c in query_json(root, "cells")} == {"mtd1", "mtd2"}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(
    ["u-boot,env", "u-boot,env-redundant-bool", "u-boot,env-redundant-count", "brcm,env"]),
    st.booleans())
def test_fuzz(body: bytes, compatible: str, fix_crc: bool) -> None:
    image = body
    if fix_crc and len(body) > 12:
        at, start = (8, 12) if compatible == "brcm,env" else (0, 4 if compatible == "u-boot,env"
                                                               else 5)
        crc = zlib.crc32(body[start:]).to_bytes(4, "little")
        image = body[:at] + crc + body[at + 4 :]
    assert_parse_stays_inside(parse, image, compatible, index=1)


def test_selection_is_idempotent(tmp_path: Path) -> None:
    """The daemon re-relates the entries after every hotplug change."""
    from nvmemd.config import load_config
    from nvmemd.registration import relate_providers
    from nvmemd.registry import scan
    from nvmemd.sysroot import Sysroot

    root = env_sysroot(tmp_path, redundant(b"old", 4), redundant(b"new", 5))
    sysroot = Sysroot(str(root))
    registry = scan(sysroot, load_config(sysroot, None))
    again = relate_providers(dict(registry.entries), registry.tree)
    assert again == registry.entries
    assert again["mtd1"].standby and not again["mtd2"].standby
    assert again["mtd1"].redundant is not None and again["mtd1"].redundant.peer == "mtd2"
    # the partner goes away: the remaining copy loses the selection
    alone = relate_providers({"mtd1": registry.entries["mtd1"]}, registry.tree)
    assert alone["mtd1"].redundant is None and not alone["mtd1"].standby
    assert not [n for n in alone["mtd1"].all_notes() if "redundant" in n]
    assert alone["mtd1"].validity[0].detail is None
