"""The board's identity (nvmemd.identity): directly, over D-Bus, and on real-kernel sysroots."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from nvmemd.config import Config
from nvmemd.identity import board_identity
from nvmemd.query import Query
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

from .conftest import StartDaemon
from .dbus_fixtures import Daemon, direct_query
from .sysroots import break_sysroot, query_as_nobody

REALKERNEL = Path(__file__).resolve().parent / "fixtures" / "realkernel"


def _identity(sysroot: Path, may_read_protected: bool = True) -> dict[str, object]:
    registry = scan(Sysroot(str(sysroot)), Config())
    return board_identity(Query(registry, may_read_protected=may_read_protected))


def test_demo_board(demo_board_sysroot: Path) -> None:
    ident = _identity(demo_board_sysroot)
    assert ident["serial_number"] == {"value": "NVD-2026-000042",
                                      "source": "board-eeprom1:serial-number@0,0"}
    eth0 = next(i for i in ident["interfaces"] if i["name"] == "eth0")  # type: ignore[attr-defined]
    assert eth0["mac_address"] == "00:0f:12:34:56:78"
    assert eth0["source"] == "imx-ocotp0:mac-address@90,0"
    assert ident["model"] == {"value": "nvmemd demo board", "source": "device-tree:/model"}
    assert ident["protected"] == []
    # the same serial number in the U-Boot env is no conflict; other MAC cells are
    conflicts = ident["conflicts"]
    assert not [c for c in conflicts if c["field"] == "serial_number"]  # type: ignore[attr-defined]
    assert {c["source"] for c in conflicts} >= {"u-boot-env0:ethaddr@27,0"}  # type: ignore[attr-defined]


def test_unprivileged_caller_gets_nothing_from_root_only_providers(
        demo_board_sysroot: Path) -> None:
    ident = _identity(demo_board_sysroot, may_read_protected=False)
    text = json.dumps(ident)
    for root_only in ("board-eeprom1:", "mtd1:", "mtd2:"):
        assert all(not s.startswith(root_only) for s in _sources(ident)), root_only
    assert "board-eeprom1:serial-number@0,0" in ident["protected"]  # type: ignore[operator]
    assert ident["serial_number"] == {"value": "NVD-2026-000042",
                                      "source": "u-boot-env0:serial#@41,0"}
    assert "rev B" not in text  # the product name lives only in the root-only EEPROM


def _sources(ident: dict[str, object]) -> list[str]:
    out = [v["source"] for v in ident.values() if isinstance(v, dict)]
    for key in ("interfaces", "conflicts"):
        out += [v["source"] for v in ident[key]]  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize("case, field, value, source", [
    ("mtd-u-boot-env", "serial_number", "SN-4711", "u-boot-env0:serial#@3f,0"),
    ("rmem-dynamic-layouts", "serial_number", "TLV-SN-0001", "rmem0:serial-number@1a,0"),
    ("rmem-dynamic-layouts", "base_mac", "00:a0:a5:12:34:56",
     "rmem1:base-mac-address@11,0"),
    ("rmem-dynamic-layouts", "mac_count", "2", "rmem0:num-macs@44,0"),
])
def test_real_kernel_sysroots(tmp_path: Path, case: str, field: str, value: str,
                              source: str) -> None:
    with tarfile.open(REALKERNEL / case / "sysroot.tar.gz") as tf:
        tf.extractall(tmp_path, filter="tar")
    ident = _identity(tmp_path)
    assert ident[field] == {"value": value, "source": source}


def assert_direct_and_bus_identical(daemon: Daemon, board: Path) -> None:
    """`identity` and `identity --json` print the same directly and through *daemon*."""
    for args in (["identity", "--json"], ["identity"]):
        direct = direct_query(board, *args)
        over_bus = daemon.query(*args)
        assert direct.returncode == over_bus.returncode == 0, over_bus.stderr
        assert direct.stdout == over_bus.stdout


@pytest.mark.integration
def test_cli_direct_and_dbus_are_identical(start_daemon: StartDaemon, demo_copy: Path) -> None:
    daemon = start_daemon(["--sysroot", str(demo_copy)])
    assert_direct_and_bus_identical(daemon, demo_copy)
    nobody = json.loads(daemon.query("identity", "--json", nobody=True).stdout)
    assert nobody["serial_number"]["source"] == "u-boot-env0:serial#@41,0"
    assert "board-eeprom1:serial-number@0,0" in nobody["protected"]
    (ident,) = daemon.call("/org/nvmemd/Nvmem1", "org.nvmemd.Nvmem1.Manager", "GetIdentity")
    assert ident["serial_number"]["data"]["value"]["data"] == "NVD-2026-000042"


# --- MACs the kernel refuses (of_get_mac_address_nvmem(): is_valid_ether_addr()) -------


def _poke(sysroot: Path, provider: str, offset: int, data: bytes) -> None:
    """Overwrite the provider's bytes at *offset* (a breakable copy of the demo board)."""
    nvmem = (sysroot / "sys/bus/nvmem/devices" / provider).resolve() / "nvmem"
    with open(nvmem, "r+b") as f:
        f.seek(offset)
        f.write(data)


def _multicast_ocotp_mac(sysroot: Path) -> None:
    """eth0's cell (imx-ocotp0 mac-address@90, which imx-ocotp reverses) reads 01:00:00:00:00:02."""
    _poke(sysroot, "imx-ocotp0", 0x90, bytes.fromhex("020000000001"))


def test_interface_mac_the_kernel_refuses_is_skipped_and_reported(demo_copy: Path) -> None:
    _multicast_ocotp_mac(demo_copy)
    ident = _identity(demo_copy)
    names = [i["name"] for i in ident["interfaces"]]  # type: ignore[attr-defined]
    assert names == ["eth1"]  # eth0's driver gets -EINVAL: no address from the cell
    errors = ident["errors"]
    assert ("eth0: imx-ocotp0:mac-address@90,0: 01:00:00:00:00:02 is a multicast address, "
            "not a valid Ethernet address (is_valid_ether_addr() refuses it); "
            "of_get_mac_address_nvmem() returns -EINVAL") in errors  # type: ignore[operator]
    # nor is it a Base MAC candidate (it would be a conflict today)
    assert "01:00:00:00:00:02" not in {c["value"] for c in ident["conflicts"]}  # type: ignore[attr-defined]
    assert ("imx-ocotp0:mac-address@90,0: 01:00:00:00:00:02 is a multicast address, not a "
            "valid Ethernet address (is_valid_ether_addr() refuses it); not used") in errors  # type: ignore[operator]


@pytest.mark.parametrize("text, why", [
    (b"01:02:03:04:05:06", "a multicast address"),
    (b"ff:ff:ff:ff:ff:ff", "the broadcast address"),
    (b"00:00:00:00:00:00", "all zero"),
])
def test_base_mac_falls_through_invalid_sources(demo_copy: Path, text: bytes, why: str) -> None:
    # mtd2 base-mac@30 (mac-base, 17 characters) is the first Base MAC source of the demo
    _poke(demo_copy, "mtd2", 0x30, text)
    ident = _identity(demo_copy)
    assert ident["base_mac"] == {"value": "02:00:00:00:aa:01",
                                 "source": "board-eeprom1:mac-address@40,0"}
    assert text.decode() not in {c["value"] for c in ident["conflicts"]}  # type: ignore[attr-defined]
    assert any(e.startswith(f"mtd2:base-mac@30,0: {text.decode()} is {why}")
               for e in ident["errors"]), ident["errors"]  # type: ignore[attr-defined]


def test_text_fields_are_c_strings(demo_copy: Path) -> None:
    """What follows a field's NUL is not part of it (old bytes of a longer value), as
    for `get --format string`."""
    _poke(demo_copy, "board-eeprom1", 0x0, b"NVD-7\0old-serial")
    ident = _identity(demo_copy)
    assert ident["serial_number"] == {"value": "NVD-7",
                                      "source": "board-eeprom1:serial-number@0,0"}


def test_an_erased_mac_cell_is_reported(demo_copy: Path) -> None:
    _poke(demo_copy, "board-eeprom1", 0x40, b"\xff" * 6)
    ident = _identity(demo_copy)
    assert ("board-eeprom1:mac-address@40,0: ff:ff:ff:ff:ff:ff is the broadcast address, not "
            "a valid Ethernet address (is_valid_ether_addr() refuses it); not used"
            ) in ident["errors"]  # type: ignore[operator]


@pytest.mark.integration
def test_invalid_macs_direct_and_dbus_are_identical(start_daemon: StartDaemon,
                                                     demo_copy: Path) -> None:
    _multicast_ocotp_mac(demo_copy)
    _poke(demo_copy, "mtd2", 0x30, b"01:02:03:04:05:06")
    daemon = start_daemon(["--sysroot", str(demo_copy)])
    assert_direct_and_bus_identical(daemon, demo_copy)
    text = direct_query(demo_copy, "identity").stdout.decode()
    assert not text.startswith("eth0:") and "\neth0:" not in text
    assert "error: eth0: imx-ocotp0:mac-address@90,0: 01:00:00:00:00:02 is a multicast" in text
    (ident,) = daemon.call("/org/nvmemd/Nvmem1", "org.nvmemd.Nvmem1.Manager", "GetIdentity")
    assert ident["base_mac"]["data"]["value"]["data"] == "02:00:00:00:aa:01"


MAC_BASE_DTS = """/dts-v1/;
/ {
	soc {
		#address-cells = <1>;
		#size-cells = <1>;

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
			};
		};

		ethernet@30be0000 {
			reg = <0x30be0000 0x10000>;
			nvmem-cells = <&base_mac 3>;
			nvmem-cell-names = "mac-address";
		};

		/* a placeholder the boot loader did not fill, then the obsolete property */
		ethernet@30bf0000 {
			reg = <0x30bf0000 0x10000>;
			local-mac-address = [00 00 00 00 00 00];
			address = [02 11 22 33 44 55];
			nvmem-cells = <&base_mac 0>;
			nvmem-cell-names = "mac-address";
		};
	};
};
"""


@pytest.fixture
def mac_base_board(tmp_path: Path) -> Path:
    from mksysroot import add_netdev

    from .sysroots import inline_sysroot

    (tmp_path / "src").mkdir()
    (tmp_path / "src/eeprom.bin").write_bytes(b"02:00:5e:10:00:fe".ljust(0x100, b"\xff"))
    root = inline_sysroot(tmp_path, MAC_BASE_DTS, [{
        "name": "0-00500", "of_node": "/soc/eeprom@50", "device": "platform/soc/i2c-0/0-0050",
        "bus": "platform", "driver": "at24", "type": "EEPROM", "mode": "0444",
        "size": 0x100, "image": {"file": "eeprom.bin"}}])
    for name, unit in (("eth0", "30be0000"), ("eth1", "30bf0000")):
        add_netdev(root, {"name": name, "device": f"platform/soc/{unit}.ethernet",
                          "of_node": f"/soc/ethernet@{unit}"})
    return root


def test_mac_base_consumer_gets_its_index(mac_base_board: Path) -> None:
    """An interface on a mac-base cell gets base + its nvmem-cells argument, as
    `get --netdev IF mac-address --format mac` prints (OpenWrt's decoding)."""
    from .sysroots import query

    got = query(mac_base_board, "get", "--netdev", "eth0", "mac-address", "-f", "mac")
    assert got.stdout == b"02:00:5e:10:01:01\n"
    record = json.loads(query(mac_base_board, "get", "--netdev", "eth0", "mac-address",
                              "--json").stdout)
    assert (record["decoded"], record["consumer"]["index"]) == ("02:00:5e:10:01:01", 3)
    eth0 = _identity(mac_base_board)["interfaces"][0]  # type: ignore[index]
    assert eth0["mac_address"] == "02:00:5e:10:01:01"


def test_node_address_properties_as_of_get_mac_address(mac_base_board: Path) -> None:
    """of_get_mac_address(): mac-address, local-mac-address, then the obsolete address;
    an all-zero placeholder is passed over silently."""
    ident = _identity(mac_base_board)
    eth1 = ident["interfaces"][1]  # type: ignore[index]
    assert (eth1["mac_address"], eth1["source"]) == (
        "02:11:22:33:44:55", "device-tree:/soc/ethernet@30bf0000/address")
    assert ident["errors"] == []


def test_unreadable_interfaces_are_said_not_taken_for_none(demo_copy: Path) -> None:
    """/sys/class/net at mode 000 (as nobody): an error of the identity, not "no netdevs"."""
    break_sysroot(demo_copy, "000:sys/class/net")
    proc = query_as_nobody(demo_copy, "identity", "--json")
    assert proc.returncode == 0, proc.stderr
    ident = json.loads(proc.stdout)
    assert ident["interfaces"] == []
    assert "/sys/class/net: permission denied" in ident["errors"]
