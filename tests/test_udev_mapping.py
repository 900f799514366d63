"""Which provider a udev event concerns (pure, no udev)."""

from __future__ import annotations

from nvmemd.udev import provider_for


def test_nvmem_device_is_the_provider() -> None:
    assert provider_for("nvmem", "/sys/devices/platform/soc/21bc000.efuse/imx-ocotp0") == (
        "imx-ocotp0")
    assert provider_for("nvmem", "/sys/devices/virtual/mtd/mtd1/mtd1/") == "mtd1"


def test_layout_device_maps_to_its_parent_provider() -> None:
    layout = "/sys/devices/platform/soc/i2c-0/0-0050/0-00500/0-00500-layout"
    parent = "/sys/devices/platform/soc/i2c-0/0-0050/0-00500"
    assert provider_for("nvmem-layout", layout, "nvmem", parent) == "0-00500"
    assert provider_for("nvmem-layout", layout) == "0-00500"  # parent unknown: the directory


def test_other_subsystems_are_ignored() -> None:
    assert provider_for("block", "/sys/devices/virtual/block/loop0") is None
