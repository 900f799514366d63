"""DT consumers (nvmemd.consumers): of_nvmem_cell_get() by DT path and by netdev."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from nvmemd.consumers import parse_consumer, provider_node
from nvmemd.devicetree import DeviceTree
from nvmemd.sysroot import Sysroot

from .layouts.images import onie
from .sysroots import break_sysroot, inline_sysroot, query, query_as_nobody, query_json

DTS = """/dts-v1/;
/ {
	soc {
		#address-cells = <1>;
		#size-cells = <1>;

		efuse@30350000 {
			compatible = "fsl,imx8mp-ocotp";
			reg = <0x30350000 0x10000>;
			#address-cells = <1>;
			#size-cells = <1>;
			fec_mac: mac-address@90 { reg = <0x90 0x6>; };
		};

		eeprom@50 {
			compatible = "atmel,24c32";
			reg = <0x50 0x1>;
			nvmem-layout {
				compatible = "fixed-layout";
				#address-cells = <1>;
				#size-cells = <1>;
				base_mac: base-mac@0 {
					compatible = "mac-base";
					reg = <0x0 0x11>;
					#nvmem-cell-cells = <1>;
				};
				raw_mac: raw-mac@20 {
					compatible = "mac-base";
					reg = <0x20 0x6>;
					#nvmem-cell-cells = <1>;
				};
			};
		};

		onie@60000 {
			compatible = "nvmem-rmem";
			reg = <0x60000 0x800>;
			nvmem-layout {
				compatible = "onie,tlv-layout";
				onie_mac: mac-address { #nvmem-cell-cells = <1>; };
			};
		};

		fec: ethernet@30be0000 {
			reg = <0x30be0000 0x10000>;
			nvmem-cells = <&fec_mac>;
			nvmem-cell-names = "mac-address";
		};

		other@1000 {
			reg = <0x1000 0x10>;
			nvmem-cells = <&fec_mac>, <&base_mac 3>, <&onie_mac 2>, <&raw_mac 0x100>;
			nvmem-cell-names = "ethaddr", "wan", "port2", "lan";
		};

		dangling@2000 {
			reg = <0x2000 0x10>;
			nvmem-cells = <&base_mac 1>, <0x7777>;
			nvmem-cell-names = "good", "bad";
		};
	};
};
"""

OCOTP = bytes(0x90) + bytes.fromhex("785634120f00") + bytes(0x400 - 0x96)
EEPROM = b"02:00:5e:10:00:fe" + b"\xff" * 15 + bytes.fromhex("0200000000ff") + b"\xff" * 0xDA


def provider(name: str, node: str, device: str, driver: str, size: int, image: str,
             **extra: Any) -> dict[str, Any]:
    return {"name": name, "of_node": node, "device": device, "bus": "platform",
            "driver": driver, "type": "Unknown", "mode": "0444", "size": size,
            "image": {"file": image}, **extra}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("consumers")
    (tmp / "src").mkdir()
    (tmp / "src/ocotp.bin").write_bytes(OCOTP)
    (tmp / "src/eeprom.bin").write_bytes(EEPROM)
    (tmp / "src/onie.bin").write_bytes(onie([(0x24, bytes.fromhex("02c0ffee00ff")),
                                             (0x2A, b"\x00\x04")], size=0x800))
    providers = [
        provider("imx-ocotp0", "/soc/efuse@30350000", "platform/soc/30350000.efuse",
                 "imx_ocotp", 0x400, "ocotp.bin"),
        provider("0-00500", "/soc/eeprom@50", "platform/soc/i2c-0/0-0050", "at24", 0x100,
                 "eeprom.bin"),
        provider("rmem0", "/soc/onie@60000", "platform/soc/60000.onie", "rmem", 0x800,
                 "onie.bin"),
    ]
    sysroot = inline_sysroot(tmp, DTS, providers)
    from mksysroot import add_netdev

    add_netdev(sysroot, {"name": "eth0", "device": "platform/soc/30be0000.ethernet",
                         "of_node": "/soc/ethernet@30be0000"})
    add_netdev(sysroot, {"name": "usb0", "device": "platform/soc/usb"})
    return sysroot


def get(root: Path, *args: str) -> str:
    return query(root, "get", *args).stdout.decode().strip()


def test_parse_consumer_arguments(root: Path) -> None:
    tree = DeviceTree(Sysroot(str(root)))
    refs = parse_consumer(tree, tree.node("/soc/other@1000"))
    assert [(r.name, r.index, r.cell_node) for r in refs] == [
        ("ethaddr", 0, "/soc/efuse@30350000/mac-address@90"),
        ("wan", 3, "/soc/eeprom@50/nvmem-layout/base-mac@0"),
        ("port2", 2, "/soc/onie@60000/nvmem-layout/mac-address"),
        ("lan", 0x100, "/soc/eeprom@50/nvmem-layout/raw-mac@20"),
    ]
    bad = parse_consumer(tree, tree.node("/soc/dangling@2000"))
    assert bad[0].error is None and "could not find phandle" in (bad[1].error or "")


def test_provider_node_skips_nvmem_layout() -> None:
    assert provider_node("/a/eeprom@50/nvmem-layout/mac@0") == "/a/eeprom@50"
    assert provider_node("/a/efuse@0/mac@90") == "/a/efuse@0"


def test_imx_ocotp_reverses_only_for_the_mac_address_id(root: Path) -> None:
    # the cell node is named mac-address, so the sysfs view is reversed too
    assert get(root, "imx-ocotp0:mac-address") == "000f12345678"
    assert get(root, "--consumer", "/soc/ethernet@30be0000", "mac-address") == "000f12345678"
    # the same cell read by a consumer calling it "ethaddr": no reversal
    assert get(root, "--consumer", "/soc/other@1000", "ethaddr") == "785634120f00"


def test_consumer_by_label_and_netdev(root: Path) -> None:
    assert get(root, "--consumer", "&fec", "mac-address", "--format", "mac") == (
        "00:0f:12:34:56:78")
    assert get(root, "--netdev", "eth0", "mac-address", "--format", "mac") == (
        "00:0f:12:34:56:78")


def test_onie_index_is_post_processed(root: Path) -> None:
    assert get(root, "--consumer", "/soc/other@1000", "port2") == "02c0ffee0101"
    rec = query_json(root, "get", "--consumer", "/soc/other@1000", "port2")
    assert rec["consumer"] == {"node": "/soc/other@1000", "name": "port2", "index": 2}
    assert rec["provider"] == "rmem0" and rec["num_macs"] == 4


def test_onie_index_bounded_by_num_macs(root: Path) -> None:
    """--index stays inside the range num-macs allots, in either --mac-mode."""
    assert get(root, "rmem0/mac-address", "--format", "mac", "--index", "3") == (
        "02:c0:ff:ee:01:02")
    for mode in ("48", "24"):
        proc = query(root, "get", "rmem0/mac-address", "--format", "mac", "--index", "4",
                     "--mac-mode", mode, check=False)
        assert proc.returncode == 2 and proc.stdout == b""
        assert proc.stderr.decode().endswith(
            "--index 4 is past the range the ONIE EEPROM allots (num-macs 4: --index 0 to 3)\n")
        assert proc.stderr.decode().startswith("nvmemd-query: rmem0: cell mac-address")


def test_mac_base_raw_in_value_decoded_with_index(root: Path) -> None:
    # mainline: no mac-base code, the consumer gets the 17 characters
    assert get(root, "--consumer", "/soc/other@1000", "wan") == b"02:00:5e:10:00:fe".hex()
    # --format mac decodes as OpenWrt does, with the consumer's index (3)
    assert get(root, "--consumer", "/soc/other@1000", "wan", "--format", "mac") == (
        "02:00:5e:10:01:01")
    assert get(root, "--consumer", "/soc/other@1000", "lan", "--format", "mac") == (
        "02:00:00:00:01:ff")


def test_cells_list_their_consumers(root: Path) -> None:
    cells = {(c["provider"], c["sysfs_name"]): c for c in query_json(root, "cells")}
    fec = cells[("imx-ocotp0", "mac-address@90,0")]
    assert fec["consumers"] == [
        {"node": "/soc/ethernet@30be0000", "name": "mac-address", "index": 0},
        {"node": "/soc/other@1000", "name": "ethaddr", "index": 0},
    ]
    base = cells[("0-00500", "base-mac@0,0")]
    assert base["consumers"] == [{"node": "/soc/other@1000", "name": "wan", "index": 3},
                                 {"node": "/soc/dangling@2000", "name": "good", "index": 1}]
    assert base["mac_base"] is True and base["decoded"] == "02:00:5e:10:00:fe"
    assert base["value"] == b"02:00:5e:10:00:fe".hex()  # the kernel's value stays raw
    assert cells[("rmem0", "num-macs@15,0")]["decoded"] == 4
    assert "consumers" not in cells[("rmem0", "num-macs@15,0")]


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--consumer", "/soc/ethernet@30be0000", "nope"), 3, "has no nvmem cell named 'nope'"),
    (("--consumer", "/soc/nowhere", "mac-address"), 3, "no device-tree node /soc/nowhere"),
    (("--consumer", "/soc/dangling@2000", "bad"), 3, "could not find phandle"),
    (("--netdev", "eth9", "mac-address"), 3, "no network interface eth9"),
    (("--netdev", "usb0", "mac-address"), 3, "has no device-tree node"),
    (("--netdev", "../x", "mac-address"), 2, "not an interface name"),
    (("--consumer", "/soc/ethernet@30be0000", "mac-address", "--index", "1"), 2,
     "--index conflicts"),
])
def test_errors(root: Path, args: tuple[str, ...], code: int, message: str) -> None:
    proc = query(root, "get", *args, check=False)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr.decode()


def test_demo_board_netdevs(demo_board_sysroot: Path) -> None:
    assert get(demo_board_sysroot, "--netdev", "eth0", "mac-address", "--format", "mac") == (
        "00:0f:12:34:56:78")
    # the EQOS takes address 1 of the U-Boot environment's ethaddr (u-boot-env0)
    assert get(demo_board_sysroot, "--netdev", "eth1", "mac-address", "--format", "mac") == (
        "02:00:5e:10:00:11")


# --- on D-Bus (the daemon serving the demo board) ------------------------------------


@pytest.mark.integration
def test_dbus_read_consumer_cell_and_consumers_property(
        start_daemon: Any, demo_copy: Path) -> None:
    from .dbus_fixtures import ROOT, managed_objects

    sysroot = demo_copy
    daemon = start_daemon(["--sysroot", str(sysroot)])
    manager = "org.nvmemd.Nvmem1.Manager"
    (value,) = daemon.call(ROOT, manager, "ReadConsumerCell", "ss",
                           "/soc@0/ethernet@30be0000", "mac-address")
    assert bytes(value).hex() == "000f12345678"
    (value,) = daemon.call(ROOT, manager, "ReadConsumerCell", "ss",
                           "/soc@0/ethernet@30bf0000", "mac-address")
    assert bytes(value).hex() == "02005e100011"  # u-boot-env0 ethaddr, index 1
    objects = managed_objects(daemon)
    cells = {props["SysfsName"] + "@" + objects[props["Provider"]][
        "org.nvmemd.Nvmem1.Provider"]["Name"]: props
        for ifaces in objects.values() for name, props in ifaces.items()
        if name == "org.nvmemd.Nvmem1.Cell"}
    assert cells["mac-address@90,0@imx-ocotp0"]["Consumers"] == [
        ["/soc@0/ethernet@30be0000", "mac-address", 0]]
    assert cells["ethaddr@27,0@u-boot-env0"]["Consumers"] == [
        ["/soc@0/ethernet@30bf0000", "mac-address", 1]]
    assert cells["serial-number@0,0@board-eeprom1"]["Consumers"] == []
    err, message = daemon.call_error(ROOT, manager, "ReadConsumerCell", "ss",
                                     "/soc@0/ethernet@30be0000", "nope")
    assert err.endswith("NotFound") and "nope" in message


@pytest.mark.integration
def test_cli_consumer_and_netdev_over_dbus_match_direct(
        start_daemon: Any, demo_copy: Path) -> None:
    from .dbus_fixtures import direct_query

    sysroot = demo_copy
    # Make eth1's provider root-only (mode 0400, as the kernel shows root_only).
    (sysroot / "sys/bus/nvmem/devices/u-boot-env0/nvmem").resolve().chmod(0o400)
    daemon = start_daemon(["--sysroot", str(sysroot)])
    for args in (["--netdev", "eth0", "mac-address", "--format", "mac"],
                 ["--netdev", "eth1", "mac-address", "--json"],
                 ["--consumer", "/soc@0/ethernet@30be0000", "mac-address", "--json"],
                 ["--consumer", "/soc@0/ethernet@30be0000", "nope"],
                 ["--netdev", "eth9", "mac-address"]):
        over_bus = daemon.query("get", *args)
        direct = direct_query(sysroot, "get", *args)
        assert (over_bus.returncode, over_bus.stdout, over_bus.stderr) == \
            (direct.returncode, direct.stdout, direct.stderr), args
    denied = daemon.query("get", "--netdev", "eth1", "mac-address", nobody=True)
    assert denied.returncode == 4, denied.stderr
    allowed = daemon.query("get", "--netdev", "eth0", "mac-address", nobody=True)
    assert allowed.returncode == 0 and allowed.stdout == b"000f12345678\n"


# --- permission denied is not "not found" ----------------------------------------------

UNREADABLE_CONSUMERS = [
    ("000:sys/class/net", ("--netdev", "eth0"), "/sys/class/net/eth0: permission denied"),
    ("000:sys/firmware/devicetree/base", ("--consumer", "/soc@0/ethernet@30be0000"),
     "/sys/firmware/devicetree/base/soc@0/ethernet@30be0000: permission denied"),
]


@pytest.mark.parametrize(("how", "args", "message"), UNREADABLE_CONSUMERS,
                         ids=[u[0] for u in UNREADABLE_CONSUMERS])
def test_unreadable_consumer_is_denied_not_missing(demo_copy: Path, how: str,
                                                   args: tuple[str, ...], message: str) -> None:
    """ENOENT is "no such interface/node" (3, test_errors); EACCES is permission
    denied (4), naming the path in the sysroot."""
    break_sysroot(demo_copy, how)
    proc = query_as_nobody(demo_copy, "get", *args, "mac-address")
    assert (proc.returncode, proc.stderr.decode()) == (4, f"nvmemd-query: {message}\n")


@pytest.mark.integration
def test_unreadable_netdevs_on_the_bus(start_daemon: Any, demo_copy: Path) -> None:
    """The same over D-Bus, from a daemon without capabilities (as nvmemd.service)."""
    from .dbus_fixtures import ROOT, WITHOUT_CAPABILITIES, assert_no_internals

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop the capabilities")
    break_sysroot(demo_copy, "000:sys/class/net")
    daemon = start_daemon(["--sysroot", str(demo_copy)], prefix=WITHOUT_CAPABILITIES)
    err, message = daemon.call_error(ROOT, "org.nvmemd.Nvmem1.Manager", "ReadNetdevCellRecord",
                                     "ss", "eth0", "mac-address")
    assert (err, message) == ("org.nvmemd.Nvmem1.Error.AccessDenied",
                              "/sys/class/net/eth0: permission denied")
    assert_no_internals(message, demo_copy)
    proc = daemon.query("get", "--netdev", "eth0", "mac-address")
    assert (proc.returncode, proc.stderr) == (
        4, b"nvmemd-query: /sys/class/net/eth0: permission denied\n")
