"""Value formats of ``nvmemd-query get --format``, and its ``--env`` lines."""

from __future__ import annotations

from ..errors import InvalidArgumentError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up, issue 12)
if TYPE_CHECKING:
    from typing import Final, Literal

    Endian = Literal["little", "big"]

FORMATS: Final = ("hex", "raw", "mac", "string", "u8", "u16", "u32", "u64")
_WIDTHS: Final = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}
#: The formats --endian applies to.
INTEGER_FORMATS: Final = ("u16", "u32", "u64")
#: Erased EEPROM/flash reads 0xff; C strings end in NUL: both pad text fields.
PADDING: Final = b"\0\xff"


def control_at(value: bytes) -> str | None:
    """Where *value* holds its first control character (C0 except TAB and NUL, DEL,
    C1 as UTF-8 encodes it), as ``byte N: 0xNN`` / ``byte N: U+NNNN``; else None."""
    for i, b in enumerate(value):
        if (b < 0x20 and b not in (0x00, 0x09)) or b == 0x7F:
            return f"byte {i}: {b:#04x}"
        if b == 0xC2 and i + 1 < len(value) and 0x80 <= value[i + 1] < 0xA0:
            return f"byte {i}: U+{value[i + 1]:04X}"
    return None


def string_value(value: bytes) -> bytes:
    """``--format string``: *value* as a C string, checked to be text.

    The text ends at the first NUL; trailing 0xff bytes (erased EEPROM and flash)
    are padding too.  A value that holds control characters anywhere (what a
    terminal takes for commands, or binary data, also past the NUL) or whose text
    is not UTF-8 is an error, as it is not text to print.
    """
    body = value.rstrip(PADDING)
    text = body.split(b"\0", 1)[0].rstrip(b"\xff")
    where = control_at(body)
    if where is not None:
        raise InvalidArgumentError(f"value holds control characters ({where}), not text; "
                                   "use --format hex or --format raw")
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(
            f"value is not valid UTF-8 (byte {e.start}: {text[e.start]:#04x}); "
            "use --format hex or --format raw"
        ) from None
    return text


def format_value(value: bytes, fmt: str, endian: Endian = "little") -> bytes:
    """The bytes to print for *value* in format *fmt* (``raw`` is not newline-terminated)."""
    if fmt == "raw":
        return value
    if fmt == "hex":
        return value.hex().encode() + b"\n"
    if fmt == "mac":
        from ..macaddr import check_ether_addr

        check_ether_addr(value)
        return ":".join(f"{b:02x}" for b in value).encode() + b"\n"
    if fmt == "string":
        return string_value(value) + b"\n"
    width = _WIDTHS.get(fmt)
    if width is None:
        raise InvalidArgumentError(f"unknown format '{fmt}' (one of {', '.join(FORMATS)})")
    # Like nvmem_cell_read_variable_le_u32(): shorter cells are zero-extended;
    # longer ones only when the excess (high) bytes are zero.
    significant = value if endian == "little" else value[::-1]
    if len(significant) > width and any(significant[width:]):
        raise InvalidArgumentError(f"value has {len(value)} bytes, too wide for {fmt}")
    return str(int.from_bytes(significant[:width], "little")).encode() + b"\n"


def text_of(value: bytes) -> str | None:
    """*value* as text (the ``cells`` table) when ``--format string`` prints it and it
    is printable (``str.isprintable()``: no control, format or separator characters,
    so no bidirectional overrides either) and of 3 characters or more (not a stray
    byte that happens to be printable); else None."""
    try:
        text = string_value(value).decode()
    except (InvalidArgumentError, UnicodeDecodeError):
        return None
    return text if len(text) >= 3 and text.isprintable() else None


def env_name(cell_name: str) -> str:
    """A shell variable name for a cell: ``mac-address`` -> ``MAC_ADDRESS``."""
    name = "".join(c if c.isascii() and c.isalnum() else "_" for c in cell_name.upper())
    return "_" + name if not name or name[0].isdigit() else name


def env_line(var: str, formatted: bytes) -> bytes:
    """``VAR="value"``: one line both ``sh`` (eval, ``.``) and systemd's
    ``EnvironmentFile=`` read as the same value (inside double quotes both take
    ``\\`` before ``"``, ``\\``, `` ` `` and ``$`` as an escape and nothing else)."""
    if not var.isascii() or not var.replace("_", "a").isalnum() or var[0].isdigit():
        raise InvalidArgumentError(f"'{var}' is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)")
    text = formatted.rstrip(b"\n")
    try:
        value = text.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"{var}: value is not valid UTF-8") from None
    # what --format string refuses (values of the other formats have none), and NUL
    where = control_at(text) or (f"byte {text.index(0)}: 0x00" if 0 in text else None)
    if where is not None:
        raise InvalidArgumentError(f"{var}: value holds control characters ({where}); "
                                   "use --format hex")
    for ch in '\\"`$':
        value = value.replace(ch, "\\" + ch)
    return f'{var}="{value}"\n'.encode()
