"""The values :mod:`nvmemd.client` returns: :class:`Provider` and :class:`Cell`.

Apart from the client so that ``import nvmemd.client`` (and ``nvmemd-query``
over the bus) does not pay for ``import dataclasses`` before a caller asks for
one of these (issue 12); ``nvmemd.client.Provider`` and ``.Cell`` are these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Cell", "Provider"]


@dataclass(frozen=True)
class Provider:
    """An NVMEM provider (``org.nvmemd.Nvmem1.Provider``)."""

    path: str
    name: str
    type: str
    size: int
    read_only: bool
    root_only: bool
    of_node: str
    compatible: tuple[str, ...]
    cells: tuple[str, ...]  # object paths

    @classmethod
    def from_properties(cls, path: str, p: dict[str, Any]) -> Provider:
        return cls(path, p["Name"], p["Type"], p["Size"], p["ReadOnly"], p["RootOnly"],
                   p["OfNode"], tuple(p["Compatible"]), tuple(p["Cells"]))


@dataclass(frozen=True)
class Cell:
    """An NVMEM cell (``org.nvmemd.Nvmem1.Cell``): where it is, not its value."""

    path: str
    provider: str  # the provider's name
    name: str
    sysfs_name: str
    offset: int
    bit_offset: int
    nbits: int
    bytes: int
    source: str
    of_node: str

    @classmethod
    def from_properties(cls, path: str, p: dict[str, Any], provider: str) -> Cell:
        return cls(path, provider, p["Name"], p["SysfsName"], p["Offset"], p["BitOffset"],
                   p["NBits"], p["Bytes"], p["Source"], p["OfNode"])
