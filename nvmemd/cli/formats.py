"""Value formats of ``nvmemd-query get --format``."""

from __future__ import annotations

from typing import Final, Literal

from ..errors import InvalidArgumentError

FORMATS: Final = ("hex", "raw", "mac", "string", "u8", "u16", "u32", "u64")
Endian = Literal["little", "big"]
_WIDTHS: Final = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}


def format_value(value: bytes, fmt: str, endian: Endian = "little") -> bytes:
    """The bytes to print for *value* in format *fmt* (``raw`` is not newline-terminated)."""
    if fmt == "raw":
        return value
    if fmt == "hex":
        return value.hex().encode() + b"\n"
    if fmt == "mac":
        if len(value) != 6:
            raise InvalidArgumentError(f"a MAC address has 6 bytes, this cell has {len(value)}")
        return ":".join(f"{b:02x}" for b in value).encode() + b"\n"
    if fmt == "string":
        text = value.rstrip(b"\0")
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidArgumentError(
                f"value is not valid UTF-8 (byte {e.start}: {text[e.start]:#04x}); "
                "use --format hex or raw"
            ) from None
        return text + b"\n"
    width = _WIDTHS.get(fmt)
    if width is None:
        raise InvalidArgumentError(f"unknown format '{fmt}' (one of {', '.join(FORMATS)})")
    # Like nvmem_cell_read_variable_le_u32(): shorter cells are zero-extended;
    # longer ones only when the excess (high) bytes are zero.
    significant = value if endian == "little" else value[::-1]
    if len(significant) > width and any(significant[width:]):
        raise InvalidArgumentError(f"value has {len(value)} bytes, too wide for {fmt}")
    return str(int.from_bytes(significant[:width], "little")).encode() + b"\n"
