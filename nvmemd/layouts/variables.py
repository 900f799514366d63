"""The ``name=value\\0name=value\\0\\0`` lists of U-Boot environments and Broadcom NVRAM.

``drivers/nvmem/layouts/u-boot-env.c: u_boot_env_parse_cells()`` and
``drivers/nvmem/brcm_nvram.c: brcm_nvram_add_cells()`` walk them the same way:
from the first variable while the next byte is not NUL, stopping at the first
entry without ``=``.
"""

from __future__ import annotations

from ..values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Iterator


@value
class Variable:
    name: str  # bytes before '=', undecodable bytes kept as surrogates
    offset: int  # absolute offset of the value
    length: int  # strlen(value)


def iter_variables(buf: bytes, start: int) -> Iterator[Variable]:
    """The variables of *buf* from *start*; *buf* must end with a NUL byte."""
    var = start
    while var < len(buf) and buf[var]:
        nul = buf.index(0, var)
        eq = buf.find(b"=", var, nul)
        if eq < 0:
            return
        value = eq + 1
        value_end = buf.index(0, value)
        yield Variable(buf[var:eq].decode("utf-8", "surrogateescape"), value, value_end - value)
        var = value_end + 1
