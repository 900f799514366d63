"""nvmemd.macaddr: the kernel's MAC helpers, OpenWrt's mac-base and NIC-only add."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvmemd.errors import InvalidArgumentError, LayoutError
from nvmemd.macaddr import (
    ascii_mac_post_process,
    decode_mac_base,
    derive,
    eth_addr_add,
    format_mac,
    is_valid_ether_addr,
    mac_pton,
    nic_add,
)

from .sysroots import query

macs = st.binary(min_size=6, max_size=6)


def test_eth_addr_add_carries_into_the_oui() -> None:
    assert eth_addr_add(bytes.fromhex("001122ffffff"), 1) == bytes.fromhex("001123000000")
    assert eth_addr_add(bytes.fromhex("ffffffffffff"), 1) == bytes(6)
    assert eth_addr_add(bytes.fromhex("000000000000"), -1) == b"\xff" * 6


def test_nic_add_keeps_the_oui() -> None:
    assert nic_add(bytes.fromhex("001122ffffff"), 1) == bytes.fromhex("001122000000")
    assert derive(bytes.fromhex("001122ffffff"), 1, "24") == bytes.fromhex("001122000000")
    assert derive(bytes.fromhex("001122ffffff"), 1, "48") == bytes.fromhex("001123000000")


@settings(max_examples=300, deadline=None)
@given(macs, st.integers(-(1 << 50), 1 << 50))
def test_eth_addr_add_is_48_bit_arithmetic(mac: bytes, n: int) -> None:
    want = (int.from_bytes(mac, "big") + n) % (1 << 48)
    assert eth_addr_add(mac, n) == want.to_bytes(6, "big")


@settings(max_examples=300, deadline=None)
@given(macs, st.integers(0, 1 << 30))
def test_nic_add_never_touches_the_oui(mac: bytes, n: int) -> None:
    out = nic_add(mac, n)
    assert out[:3] == mac[:3]
    assert int.from_bytes(out[3:], "big") == (int.from_bytes(mac[3:], "big") + n) & 0xFFFFFF


def test_eth_addr_add_keeps_short_and_long_buffers() -> None:
    assert eth_addr_add(b"\x01\x02\x03", 0) == b"\x01\x02\x03"
    assert eth_addr_add(bytes(8), 1) == bytes.fromhex("0000000000010000")


@pytest.mark.parametrize(("text", "mac"), [
    (b"02:11:22:33:44:55", "021122334455"),
    (b"AA:bb:CC:dd:EE:ff", "aabbccddeeff"),
    (b"02:11:22:33:44:55:66", "021122334455"),  # strnlen(s, 17) only needs 17
    (b"02-11-22-33-44-55", None),
    (b"02:11:22:33:44:5", None),
    (b"02:11:22:33:44:5\0", None),
    (b"0211:22:33:44:55x", None),
])
def test_mac_pton(text: bytes, mac: str | None) -> None:
    got = mac_pton(text)
    assert (got.hex() if got is not None else None) == mac


def test_is_valid_ether_addr() -> None:
    assert is_valid_ether_addr(bytes.fromhex("00a0a5123456"))
    assert not is_valid_ether_addr(bytes(6))
    assert not is_valid_ether_addr(bytes.fromhex("01005e000001"))


def test_ascii_post_process() -> None:
    buf = b"02:11:22:33:44:55"
    assert ascii_mac_post_process("ethaddr", 0, buf)[:6] == bytes.fromhex("021122334455")
    assert ascii_mac_post_process("ethaddr", 0x100, buf)[:6] == bytes.fromhex("021122334555")
    with pytest.raises(LayoutError, match="-EINVAL"):
        ascii_mac_post_process("ethaddr", 0, buf + b"x")


@pytest.mark.parametrize(("stored", "index", "mac"), [
    (bytes.fromhex("020000aaffff"), 0, "02:00:00:aa:ff:ff"),
    (bytes.fromhex("020000aaffff"), 1, "02:00:00:ab:00:00"),
    (b"020000AAFFFF", 2, "02:00:00:ab:00:01"),
    (b"02:00:00:aa:ff:ff", 0, "02:00:00:aa:ff:ff"),
])
def test_decode_mac_base(stored: bytes, index: int, mac: str) -> None:
    assert format_mac(decode_mac_base(stored, index)) == mac


@pytest.mark.parametrize("stored", [b"0200", b"02000XAAFFFF", b"02:00:00:aa:ff-ff", bytes(16)])
def test_decode_mac_base_rejects(stored: bytes) -> None:
    with pytest.raises(InvalidArgumentError, match="mac-base"):
        decode_mac_base(stored)


def test_derive_strict_bounds() -> None:
    base = bytes.fromhex("02005e100000")
    assert derive(base, 0xFFFFFF, "24", strict=True) == bytes.fromhex("02005e0fffff")
    with pytest.raises(InvalidArgumentError, match="24-bit NIC part"):
        derive(base, 1 << 24, "24", strict=True)
    assert derive(base, 1 << 24, "24") == base  # the kernel-side helper itself wraps
    room = (1 << 48) - 1 - int.from_bytes(base, "big")
    assert derive(base, room, "48", strict=True) == b"\xff" * 6
    with pytest.raises(InvalidArgumentError, match="overflows the 48-bit address"):
        derive(base, room + 1, "48", strict=True)


@pytest.mark.parametrize(("stored", "shown"), [
    (b"zz:00:5e:10:00:00", '"zz:00:5e:10:00:00"'),
    (b"\x1b[2J:00:5e:10:00\x9b", '"\\x1b[2J:00:5e:10:00\\x9b"'),
    (b"02000XAAFFFF", '"02000XAAFFFF"'),
])
def test_decode_mac_base_shows_the_text_escaped(stored: bytes, shown: str) -> None:
    with pytest.raises(InvalidArgumentError) as e:
        decode_mac_base(stored)
    assert str(e.value).endswith(": " + shown) and "b'" not in str(e.value)


def test_ascii_post_process_shows_the_text_escaped() -> None:
    with pytest.raises(LayoutError) as e:
        ascii_mac_post_process("ethaddr", 0, b"02:11:22:33:44:\x1b\x07")
    assert str(e.value) == '-EINVAL: not a MAC address: "02:11:22:33:44:\\x1b\\x07"'


def test_cli_mac_base_error_names_the_cell(demo_copy: Path) -> None:
    nvmem = (demo_copy / "sys/bus/nvmem/devices/mtd2").resolve() / "nvmem"
    data = bytearray(nvmem.read_bytes())
    data[0x30 : 0x30 + 17] = b"zz:00:5e:10:00:00"
    nvmem.write_bytes(bytes(data))
    proc = query(demo_copy, "get", "base-mac", "--format", "mac", check=False)
    assert proc.returncode == 2 and proc.stdout == b""
    assert proc.stderr.decode() == (
        'nvmemd-query: mtd2: cell base-mac@30,0: mac-base: not a MAC address '
        '(xx:xx:xx:xx:xx:xx): "zz:00:5e:10:00:00"\n')
    cells = query(demo_copy, "cells", "--json").stdout.decode()
    assert '"decoded_error": "mac-base: not a MAC address (xx:xx:xx:xx:xx:xx): ' in cells


def test_cli_index_and_mode(demo_board_sysroot: Path) -> None:
    def mac(*args: str) -> str:
        return query(demo_board_sysroot, "get", *args).stdout.decode().strip()

    # base-mac is a mac-base cell holding "02:00:5e:10:00:00"
    assert mac("base-mac", "--format", "mac") == "02:00:5e:10:00:00"
    assert mac("base-mac") == b"02:00:5e:10:00:00".hex()
    assert mac("base-mac", "--format", "mac", "--index", "0x1000000") == "02:00:5f:10:00:00"
    # mode 24 wraps within the NIC part (OpenWrt), 0xffffff at most: 2^24 is the base again
    assert mac("base-mac", "--format", "mac", "--index", "0xffffff", "--mac-mode", "24") == (
        "02:00:5e:0f:ff:ff")
    for index in ("0x1000000", "99999999999999999"):
        proc = query(demo_board_sysroot, "get", "base-mac", "--format", "mac", "--index", index,
                     "--mac-mode", "24", check=False)
        assert proc.returncode == 2 and proc.stdout == b"", proc.stdout
        assert proc.stderr.decode() == (
            f"nvmemd-query: mtd2: cell base-mac@30,0: --index {int(index, 0)} is past the "
            "24-bit NIC part of --mac-mode 24 (at most 16777215)\n")
    proc = query(demo_board_sysroot, "get", "base-mac", "--index", "1", check=False)
    assert proc.returncode == 2 and b"use --format mac" in proc.stderr
