"""The kernel's own answer for the dynamic layouts, on a kernel that lacks them.

``tests/fixtures/realkernel/rmem-dynamic-layouts`` was recorded with the onie-tlv,
sl28vpd and u-boot-env layout modules loaded; ``rmem-dynamic-layouts-no-modules`` is
the same device tree and contents on Debian's stock kernel (no layout modules, no
``cells/``).  On the latter, nvmemd must list exactly what the former kernel listed.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from ..sysroots import query_json

REALKERNEL = Path(__file__).resolve().parents[1] / "fixtures" / "realkernel"


def unpack(case: str, dest: Path) -> Path:
    with tarfile.open(REALKERNEL / case / "sysroot.tar.gz") as tf:
        tf.extractall(dest, filter="tar")
    return dest


def kernel_listing(case: str) -> dict[tuple[str, str], tuple[int, str | None]]:
    data = json.loads((REALKERNEL / case / "kernel-cells.json").read_text())
    return {(p["provider"], c["file"]): (c["size"], c["value"])
            for p in data["providers"] for c in p["cells"] or []}


@pytest.mark.parametrize(("sysroot_case", "listing_case"), [
    ("rmem-dynamic-layouts-no-modules", "rmem-dynamic-layouts"),
    ("rmem-dynamic-layouts", "rmem-dynamic-layouts"),
])
def test_same_cells_as_the_layout_drivers(tmp_path: Path, sysroot_case: str,
                                          listing_case: str) -> None:
    if not (REALKERNEL / sysroot_case / "sysroot.tar.gz").is_file():
        pytest.skip(f"no recording {sysroot_case}")
    root = unpack(sysroot_case, tmp_path / "root")
    ours = {(c["provider"], c["sysfs_name"]): (c["bytes"], c["value"])
            for c in query_json(root, "cells")}
    assert ours == kernel_listing(listing_case)
    providers = {p["name"]: p for p in query_json(root, "providers")}
    assert [v["status"] for v in providers["rmem0"]["validity"]] == ["valid"]
    assert [v["status"] for v in providers["rmem3"]["validity"]] == ["invalid"]
    # the kernel's own message: "Invalid CRC read: 0x538c0ce3, expected: 0x538c0ce2"
    assert "Invalid CRC read: 0x538c0ce3, expected: 0x538c0ce2" in providers["rmem3"]["errors"][0]
    assert providers["rmem3"]["validity"][0]["expected"] == "0x538c0ce3"
    assert providers["rmem3"]["validity"][0]["found"] == "0x538c0ce2"


def test_u_boot_env_on_mtd(tmp_path: Path) -> None:
    case = "mtd-u-boot-env"
    if not (REALKERNEL / case / "sysroot.tar.gz").is_file():
        pytest.skip(f"no recording {case}")
    root = unpack(case, tmp_path / "root")
    cells = query_json(root, "cells")
    ours = {(c["provider"], c["sysfs_name"]): (c["bytes"], c["value"])
            for c in cells if c["provider"] != "u-boot-env0"}
    assert ours == kernel_listing(case)
    invisible = [(c["sysfs_name"], c["value"]) for c in cells if c["provider"] == "u-boot-env0"]
    assert ("ethaddr@25,0", "021122334455") in invisible
    providers = {p["name"]: p for p in query_json(root, "providers")}
    # "Invalid calculated CRC32: 0xf4f94d2d (expected: 0x2a54f3c2)" in the kernel log
    assert "Invalid calculated CRC32: 0xf4f94d2d (expected: 0x2a54f3c2)" in (
        providers["mtd2"]["errors"][0])
