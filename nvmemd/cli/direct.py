"""The CLI's direct back end: the registry built from sysfs, in this process."""

from __future__ import annotations

from ..config import load_config
from ..query import Query
from ..registry import scan
from ..sysroot import Sysroot
from ..values import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any

    from ..records import CellRecord


@record
class DirectBackend:
    """:class:`~nvmemd.cli.backend.Backend` answered by the query layer in this process."""

    query: Query
    config_path: str | None = None
    only: frozenset[str] | None = None

    @classmethod
    def open(cls, sysroot: str | None, config: str | None, only: frozenset[str] | None = None
             ) -> DirectBackend:
        """The registry of every provider, or of the providers *only* (see registry.scan)."""
        root = Sysroot.from_arg(sysroot)
        return cls(Query(scan(root, load_config(root, config), only)), config, only)

    def refresh(self, timeout: float) -> None:
        """Sleep (sysfs has no change notification here), then rescan."""
        import time

        time.sleep(max(0.0, min(0.25, timeout)))
        root = self.query.registry.sysroot
        self.query = Query(scan(root, load_config(root, self.config_path), self.only))

    def providers(self) -> list[dict[str, object]]:
        return self.query.providers()

    def cells(self, provider: str | None = None) -> list[CellRecord]:
        return self.query.cells(provider)

    def errors(self, provider: str | None = None) -> list[str]:
        return self.query.errors(provider)

    def get(self, spec: str, provider: str | None) -> tuple[CellRecord, bytes]:
        return self.query.get(spec, provider)

    def get_consumer(self, name: str, consumer: str | None = None, netdev: str | None = None
                     ) -> tuple[CellRecord, bytes]:
        return self.query.get_consumer(name, consumer, netdev)

    def dump(self, provider: str, offset: int, length: int | None) -> bytes:
        return self.query.dump(provider, offset, length)

    def verify(self) -> dict[str, list[str]]:
        return self.query.verify()

    def identity(self) -> dict[str, Any]:
        from ..identity import board_identity

        return board_identity(self.query)

    def close(self) -> None:
        pass
