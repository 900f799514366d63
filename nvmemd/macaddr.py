"""MAC addresses: the kernel's helpers, OpenWrt's ``mac-base`` decoding, derivation.

- :func:`eth_addr_add` is ``include/linux/etherdevice.h: eth_addr_add()``: the
  address is a big-endian 48-bit integer, the offset is added with carry into
  the OUI, the result keeps the low 48 bits.
- :func:`nic_add` is OpenWrt's ``macaddr_add`` (``package/base-files/files/lib/
  functions/system.sh``): only the NIC part (low 24 bits) changes, the OUI is
  kept; the two differ when the NIC part overflows.
- :func:`mac_pton` is ``lib/net_utils.c: mac_pton()``: exactly
  ``XX:XX:XX:XX:XX:XX``.
- :func:`decode_mac_base` is **an nvmemd extension**: the mainline kernel has no
  code for ``compatible = "mac-base"`` cells (only the binding,
  ``Documentation/devicetree/bindings/nvmem/layouts/fixed-cell.yaml``).  It
  mirrors OpenWrt's ``target/linux/generic/pending-6.12/
  804-nvmem-core-support-mac-base-fixed-layout-cells.patch``
  (``nvmem_mac_base_raw_read()`` / ``_hex_read()`` / ``_ascii_read()``, the
  code behind OpenWrt's ``nvmem_layout_parse_mac_base()``): 6 raw bytes, 12 hex
  digits or 17 ASCII characters, then ``eth_addr_add(index)``.
"""

from __future__ import annotations

from .errors import InvalidArgumentError, LayoutError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final, Literal

    from .devicetree import DeviceTree
    from .model import CellInfo

    MacMode = Literal["48", "24"]

ETH_ALEN: Final = 6
#: include/linux/if_ether.h: MAC_ADDR_STR_LEN
MAC_ADDR_STR_LEN: Final = 3 * ETH_ALEN - 1
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")  # string.hexdigits
_MASK48: Final = (1 << 48) - 1
_MASK24: Final = (1 << 24) - 1

#: Documentation/devicetree/bindings/nvmem/layouts/fixed-cell.yaml
MAC_BASE_COMPATIBLE: Final = "mac-base"

MAC_MODES: Final = ("48", "24")


def eth_addr_add(mac: bytes, offset: int) -> bytes:
    """``eth_addr_add()``: 48-bit add with carry (u64 arithmetic, low 48 bits kept).

    Bytes past the sixth are kept; a shorter buffer is treated as zero-padded
    and the result cut back to its length (the kernel would read past it).
    """
    head = bytes(mac[:ETH_ALEN]).ljust(ETH_ALEN, b"\0")
    value = (int.from_bytes(head, "big") + offset) & _MASK48
    return (value.to_bytes(ETH_ALEN, "big") + bytes(mac[ETH_ALEN:]))[: len(mac)]


def nic_add(mac: bytes, offset: int) -> bytes:
    """OpenWrt ``macaddr_add``: ``(nic + offset) & 0xffffff``, OUI unchanged."""
    nic = (int.from_bytes(mac[3:ETH_ALEN], "big") + offset) & _MASK24
    return bytes(mac[:3]) + nic.to_bytes(3, "big") + bytes(mac[ETH_ALEN:])


def derive(mac: bytes, index: int, mode: MacMode = "48", strict: bool = False) -> bytes:
    """Address number *index* from base *mac*: kernel (48) or OpenWrt NIC-only (24).

    *strict* (the CLI's ``--index``) refuses, in mode 48, an index that wraps
    past ``ff:ff:ff:ff:ff:ff`` into the OUI of nobody (the kernel's u64
    arithmetic wraps silently), and in mode 24 one of 2^24 or more: the NIC
    part wraps by design (OpenWrt), but such an index names an address of the
    range a smaller one names already (2^24 is the base address itself).
    """
    if len(mac) != ETH_ALEN:
        raise InvalidArgumentError(f"a MAC address has 6 bytes, this value has {len(mac)}")
    if strict and mode == "48":
        room = _MASK48 - int.from_bytes(mac, "big")
        if index > room:
            raise InvalidArgumentError(
                f"--index {index} overflows the 48-bit address (at most {room} "
                f"from {format_mac(mac)})")
    if strict and mode == "24" and index > _MASK24:
        raise InvalidArgumentError(f"--index {index} is past the 24-bit NIC part of "
                                   f"--mac-mode 24 (at most {_MASK24})")
    return eth_addr_add(mac, index) if mode == "48" else nic_add(mac, index)


def mac_pton(text: bytes) -> bytes | None:
    """``mac_pton()``: six hex pairs separated by ``:``; None when malformed."""
    if len(text.split(b"\0", 1)[0]) < MAC_ADDR_STR_LEN:  # strnlen(s, 17) < 17
        return None
    for i in range(ETH_ALEN):
        if text[i * 3] not in _HEX or text[i * 3 + 1] not in _HEX:
            return None
        if i != ETH_ALEN - 1 and text[i * 3 + 2] != ord(":"):
            return None
    return bytes(int(text[i * 3 : i * 3 + 2], 16) for i in range(ETH_ALEN))


def is_valid_ether_addr(mac: bytes) -> bool:
    """``is_valid_ether_addr()``: not multicast and not 00:00:00:00:00:00."""
    return len(mac) >= ETH_ALEN and not mac[0] & 1 and any(mac[:ETH_ALEN])


def invalid_ether_addr(mac: bytes) -> str | None:
    """Why ``of_get_mac_address_nvmem()`` refuses *mac* (the cell it read), or None.

    Mirrors ``net/core/of_net.c: of_get_mac_address_nvmem()`` (and
    ``net/ethernet/eth.c: nvmem_get_mac_address()``): ``-EINVAL`` unless the
    cell has ``ETH_ALEN`` bytes and ``is_valid_ether_addr()`` holds, i.e. it is
    neither multicast (ff:ff:ff:ff:ff:ff, what erased media read, among them)
    nor all zero.
    """
    if len(mac) != ETH_ALEN:
        return f"a MAC address has {ETH_ALEN} bytes, this value has {len(mac)}"
    if is_valid_ether_addr(mac):
        return None
    shown = format_mac(mac)
    if not any(mac):
        return (f"{shown} is all zero, not a valid Ethernet address "
                "(is_valid_ether_addr() refuses it)")
    kind = "the broadcast address" if mac == b"\xff" * ETH_ALEN else "a multicast address"
    return f"{shown} is {kind}, not a valid Ethernet address (is_valid_ether_addr() refuses it)"


def check_ether_addr(mac: bytes) -> None:
    """:func:`invalid_ether_addr` as an InvalidArgumentError (``get --format mac``)."""
    problem = invalid_ether_addr(mac)
    if problem is not None:
        raise InvalidArgumentError(problem)


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def quoted(text: bytes) -> str:
    """*text* from the medium for a message: in double quotes, every byte that is not
    printable ASCII as ``\\xNN`` (no Python ``b'...'`` repr, no raw control bytes)."""
    return '"' + "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in text) + '"'


def ascii_mac_post_process(cell_id: str, index: int, buf: bytes) -> bytes:
    """``u_boot_env_read_post_process_ethaddr()`` / ``brcm_nvram_read_post_process_macaddr()``.

    *buf* is ``max(raw_len, bytes)`` long, so its length is the kernel's
    ``bytes`` argument (``raw_len``, the string length).  -EINVAL unless it is
    exactly 17 characters that ``mac_pton()`` accepts.
    """
    if len(buf) != MAC_ADDR_STR_LEN:
        raise LayoutError(f"-EINVAL: a MAC address string has {MAC_ADDR_STR_LEN} characters, "
                          f"found {len(buf)}")
    mac = mac_pton(buf)
    if mac is None:
        raise LayoutError(f"-EINVAL: not a MAC address: {quoted(buf)}")
    if index:
        mac = eth_addr_add(mac, index)
    return mac + bytes(buf[ETH_ALEN:])


def decode_mac_base(value: bytes, index: int = 0) -> bytes:
    """OpenWrt's ``mac-base`` read (nvmemd extension, see the module docstring).

    *value* is the cell as the mainline kernel returns it (6, 12 or 17 bytes).
    Raises InvalidArgumentError for other lengths or malformed text.
    """
    if len(value) == ETH_ALEN:
        mac = bytes(value)
    elif len(value) == 2 * ETH_ALEN:
        if any(b not in _HEX for b in value):
            raise InvalidArgumentError(f"mac-base: not 12 hex digits: {quoted(value)}")
        mac = bytes.fromhex(value.decode("ascii"))
    elif len(value) == MAC_ADDR_STR_LEN:
        parsed = mac_pton(value)
        if parsed is None:
            raise InvalidArgumentError(
                f"mac-base: not a MAC address (xx:xx:xx:xx:xx:xx): {quoted(value)}")
        mac = parsed
    else:
        raise InvalidArgumentError(
            f"mac-base: a cell of {len(value)} bytes is neither 6 raw bytes, 12 hex digits "
            "nor 17 characters")
    return eth_addr_add(mac, index) if index else mac


def is_mac_base(tree: DeviceTree | None, cell: CellInfo) -> bool:
    """A fixed-layout cell whose node is ``compatible = "mac-base"``.

    OpenWrt decodes these only inside a ``fixed-layout`` container (its patch
    tests ``of_device_is_compatible(np, "fixed-layout")``), so legacy children
    never qualify.
    """
    if tree is None or cell.of_node is None or cell.source != "fixed-layout":
        return False
    return tree.node(cell.of_node).is_compatible(MAC_BASE_COMPATIBLE)
