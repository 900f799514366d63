"""nvmemd.devicetree: raw properties, DT order, labels, OF matching."""

from __future__ import annotations

from pathlib import Path

from nvmemd.devicetree import DeviceTree, be32_list, node_name, string_list
from nvmemd.sysroot import Sysroot

from .sysroots import inline_sysroot

DTS = """/dts-v1/;
/ {
    n {
        compatible = "Vendor,Thing", "generic";
        mac = [4c 49 4e 55 58 00];
        zz@20 { reg = <0x20 1>; };
        lbl: aa@100 { reg = <0x100 1>; };
        mm@3 { reg = <3 1>; };
    };
};
"""


def tree(tmp_path: Path) -> DeviceTree:
    return DeviceTree(Sysroot(str(inline_sysroot(tmp_path, DTS, []))))


def test_properties_are_raw_bytes(tmp_path: Path) -> None:
    n = tree(tmp_path).node("/n")
    assert n.prop("mac") == b"LINUX\0"  # never guessed into a string
    assert n.prop("missing") is None


def test_children_in_dt_order_from_the_blob(tmp_path: Path) -> None:
    n = tree(tmp_path).node("/n")
    assert [c.basename for c in n.children()] == ["zz@20", "aa@100", "mm@3"]


def test_children_in_unit_address_order_without_blob(tmp_path: Path) -> None:
    t = tree(tmp_path)
    (Path(t.sysroot.root) / "sys/firmware/fdt").unlink()
    t = DeviceTree(t.sysroot)
    assert [c.basename for c in t.node("/n").children()] == ["mm@3", "zz@20", "aa@100"]


def test_of_matching_is_case_insensitive(tmp_path: Path) -> None:
    n = tree(tmp_path).node("/n")
    assert n.is_compatible("vendor,thing") and n.is_compatible("GENERIC")
    assert not n.is_compatible("vendor")


def test_labels_from_symbols(tmp_path: Path) -> None:
    t = tree(tmp_path)
    assert t.label_path("lbl") == "/n/aa@100"


def test_helpers() -> None:
    assert node_name("/soc/eeprom@50") == "eeprom"
    assert be32_list(b"\0\0\0\x01\0\0\0\x02\xff") == [1, 2]
    assert string_list(b"a\0b\0") == ["a", "b"]
    assert string_list(b"") == []
