"""nvmemd/registration.py: each nvmem_register() step alone, then chained."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvmemd.config import Config
from nvmemd.devicetree import DeviceTree
from nvmemd.model import Access, CellRules
from nvmemd.providers import read_provider
from nvmemd.registration import (
    add_cells_from_legacy_of,
    populate_layout,
    register_provider,
    scan_provider,
)
from nvmemd.sysroot import Sysroot

from .sysroots import inline_sysroot

DTS = """/dts-v1/;
/ {
    #address-cells = <1>; #size-cells = <1>;
    eeprom@50 {
        compatible = "atmel,24c32";
        reg = <0x50 0x1000>;
        #address-cells = <1>; #size-cells = <1>;
        legacy@0 { reg = <0x0 0x2>; };
        nvmem-layout {
            compatible = "fixed-layout";
            #address-cells = <1>; #size-cells = <1>;
            serial@10 { reg = <0x10 0x4>; };
            %s
        };
    };
};
"""


def provider_env(tmp_path: Path, extra: str = "") -> tuple[Sysroot, DeviceTree]:
    root = inline_sysroot(tmp_path, DTS % extra, [{
        "name": "0-00500", "of_node": "/eeprom@50", "device": "i2c/i2c-0/0-0050",
        "bus": "i2c", "driver": "at24", "type": "EEPROM", "mode": "0600", "size": 64,
        "image": {"fill": 0xFF, "data": [{"offset": 0x10, "hex": "01020304"}]},
    }])
    sysroot = Sysroot(str(root))
    return sysroot, DeviceTree(sysroot)


def rules(legacy: bool) -> CellRules:
    return CellRules(legacy_cells=legacy, reason="test", access=Access())


def test_legacy_step_creates_children_only_when_the_driver_opts_in(tmp_path: Path) -> None:
    sysroot, tree = provider_env(tmp_path)
    np = tree.node("/eeprom@50")
    provider = read_provider(sysroot, tree, "0-00500")
    opted = add_cells_from_legacy_of(provider, rules(True), np)
    assert [c.sysfs_name for c in opted.cells] == ["legacy@0,0"] and not opted.fatal
    ignored = add_cells_from_legacy_of(provider, rules(False), np)
    assert ignored.cells == [] and ignored.notes == [
        "1 legacy child cell(s) ignored: /eeprom@50/legacy@0"]


def test_layout_step_adds_after_the_earlier_cells(tmp_path: Path) -> None:
    sysroot, tree = provider_env(tmp_path)
    provider = read_provider(sysroot, tree, "0-00500")
    step = populate_layout(sysroot, provider, rules(False), tree.node("/eeprom@50"), [])
    assert step is not None and [c.name for c in step.cells] == ["serial"]


def test_a_duplicate_sysfs_name_fails_the_layout_and_removes_every_cell(tmp_path: Path) -> None:
    """nvmem_populate_sysfs_cells(): two cells named serial@10,0 cannot both be files."""
    sysroot, tree = provider_env(tmp_path, "serial@10,0 { reg = <0x10 0x4>; };")
    provider = read_provider(sysroot, tree, "0-00500")
    np = tree.node("/eeprom@50")
    legacy = add_cells_from_legacy_of(provider, rules(True), np)
    step = populate_layout(sysroot, provider, rules(True), np, legacy.cells)
    assert step is not None and step.fatal and "duplicate filename" in step.errors[0]
    # register_provider() applies the consequence: the earlier cells go too
    entry = register_provider(sysroot, tree, provider,
                              Config(extra_legacy_compatibles=("atmel,24c32",)))
    assert entry.cells == ()


def test_register_provider_chains_the_steps(tmp_path: Path) -> None:
    sysroot, tree = provider_env(tmp_path)
    entry = scan_provider(sysroot, tree, "0-00500", Config())
    assert not isinstance(entry, type(None))
    assert [c.sysfs_name for c in entry.cells] == ["serial@10,0"]  # at24: no legacy cells
    assert entry.notes[0] == "driver does not set add_legacy_fixed_of_cells"


@pytest.mark.parametrize("missing", ["nvmem", "device"])
def test_a_provider_removed_while_scanned_is_gone(tmp_path: Path, missing: str) -> None:
    sysroot, tree = provider_env(tmp_path)
    device = Path(sysroot.host_path("/sys/bus/nvmem/devices/0-00500")).resolve()
    if missing == "nvmem":
        (device / "nvmem").unlink()
    else:
        for child in device.iterdir():
            if child.is_file() and not child.is_symlink():
                child.unlink()
    result = scan_provider(sysroot, tree, "0-00500", Config())
    assert getattr(result, "gone", False), result
