"""Object paths of the D-Bus API, escaped like systemd's ``sd_bus_path_encode()``.

``bus_label_escape()`` (``src/basic/bus-label.c``) keeps ``[A-Za-z0-9]``, except a
digit in first place, and writes every other byte of the UTF-8 encoding as ``_``
plus two lowercase hex digits; the empty string becomes ``_``.  So ``0-00512``
(an at24 EEPROM's name) is ``_30_2d00512``, as a client that builds the path with
``sd_bus_path_encode()`` expects.  The functions here are pure, so they
are tested without a bus.
"""

from __future__ import annotations

from typing import Final

from .names import PROVIDERS_PATH

_KEEP: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_DIGITS: Final = frozenset(b"0123456789")
_HEX: Final = "0123456789abcdef"


def escape_label(label: str) -> str:
    """``bus_label_escape()``: one object path element for any string."""
    if not label:
        return "_"
    out: list[str] = []
    for i, byte in enumerate(label.encode("utf-8", "surrogateescape")):
        if byte in _KEEP and not (i == 0 and byte in _DIGITS):
            out.append(chr(byte))
        else:
            out.append("_" + _HEX[byte >> 4] + _HEX[byte & 0xF])
    return "".join(out)


def unescape_label(element: str) -> str:
    """``bus_label_unescape()``: the inverse of :func:`escape_label`.

    Like systemd, ``_`` alone is the empty string and a ``_`` not followed by
    two hex digits is kept as it is.
    """
    if element == "_":
        return ""
    raw = bytearray()
    i = 0
    while i < len(element):
        c = element[i]
        if c == "_" and _is_hex(element[i + 1 : i + 3]):
            raw.append(int(element[i + 1 : i + 3], 16))
            i += 3
            continue
        raw.extend(c.encode("utf-8"))
        i += 1
    return raw.decode("utf-8", "surrogateescape")


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(ch in _HEX or ch in "ABCDEF" for ch in text)


def provider_path(provider: str) -> str:
    """``/org/nvmemd/Nvmem1/providers/<escaped sysfs name>``."""
    return f"{PROVIDERS_PATH}/{escape_label(provider)}"


def cell_path(provider: str, sysfs_name: str) -> str:
    """``…/providers/<p>/cells/<escaped name@off,bit>``."""
    return f"{provider_path(provider)}/cells/{escape_label(sysfs_name)}"


def provider_of_path(path: str) -> str | None:
    """The provider name of a provider or cell object path, else None."""
    prefix = PROVIDERS_PATH + "/"
    if not path.startswith(prefix):
        return None
    return unescape_label(path[len(prefix) :].split("/", 1)[0])
