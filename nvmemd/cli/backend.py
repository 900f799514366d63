"""The interface both back ends of ``nvmemd-query`` implement.

:class:`~nvmemd.cli.direct.DirectBackend` answers from sysfs in this process,
:class:`~nvmemd.dbus.client.DBusBackend` asks the daemon; the commands in
:mod:`nvmemd.cli.main` see only this protocol, so each answers the same way.
"""

from __future__ import annotations

from typing import Any, Protocol

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from ..records import CellRecord


class Backend(Protocol):
    def providers(self) -> list[dict[str, Any]]:
        """Every provider record, broken ones included, sorted by name."""

    def cells(self, provider: str | None = None) -> list[CellRecord]:
        """Cell records with values (or read errors), of one provider or all."""

    def errors(self, provider: str | None = None) -> list[str]:
        """Why cells are missing: invalid DT nodes, broken providers."""

    def get(self, spec: str, provider: str | None) -> tuple[CellRecord, bytes]:
        """The one cell *spec* names and its value (errors as for resolve_cell)."""

    def get_consumer(self, name: str, consumer: str | None = None,
                     netdev: str | None = None) -> tuple[CellRecord, bytes]:
        """What DT node *consumer* (or netdev's node) reads as its cell *name*."""

    def dump(self, provider: str, offset: int, length: int | None) -> bytes:
        """Raw provider bytes."""

    def verify(self) -> dict[str, list[str]]:
        """Comparison with the kernel's cells/ directories."""

    def identity(self) -> dict[str, Any]:
        """The board's identity (nvmemd.identity): serial numbers, MACs, their sources."""

    def refresh(self, timeout: float) -> None:
        """Wait at most *timeout* s for a change (``wait``), then see the new state."""

    def close(self) -> None:
        """Release the connection, if any."""
