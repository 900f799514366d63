"""The CLI's D-Bus back end: :class:`nvmemd.client.Client` behind the DirectBackend interface.

The same records as :mod:`nvmemd.cli.direct`, rebuilt from the bus's typed
``a{sv}`` replies (nvmemd.dbus.schema), so ``--json`` output is byte-identical
to direct mode.  Standard library only: no dbus-fast import on the CLI's path.
"""

from __future__ import annotations

from ..client import Client, NotRunningError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up, issue 12)
if TYPE_CHECKING:
    from typing import Any

    from ..records import CellRecord

__all__ = ["DBusBackend", "NotRunningError"]


class DBusBackend:
    def __init__(self, client: Client) -> None:
        self._client = client

    @classmethod
    def connect(cls, address: str | None, session: bool = False,
                require_daemon: bool = True) -> DBusBackend | None:
        """Connect; None when nvmemd is not on the bus (and *require_daemon* is False)."""
        try:
            client = Client(address, session)
        except NotRunningError:
            if require_daemon:
                raise
            return None
        if not client.is_running():
            client.close()
            if require_daemon:
                raise NotRunningError("nvmemd (org.nvmemd.Nvmem1) is not running on that bus")
            return None
        return cls(client)

    def close(self) -> None:
        self._client.close()

    def providers(self) -> list[dict[str, Any]]:
        return self._client.provider_records()

    def cells(self, provider: str | None = None) -> list[CellRecord]:
        return self._client.cell_records(provider)  # type: ignore[return-value]

    def errors(self, provider: str | None = None) -> list[str]:
        if provider is not None:
            self._client.provider_path(provider)  # NotFoundError, as in direct mode
        records = self._client.provider_records()
        published = [r for r in records if "type" in r and provider in (None, r["name"])]
        errs = [err for r in published for err in r["errors"]]
        if provider is None:  # direct mode lists the broken providers last
            errs += [err for r in records if "type" not in r for err in r["errors"]]
        return errs

    def get(self, spec: str, provider: str | None) -> tuple[CellRecord, bytes]:
        return self._client.cell_record(spec, provider)  # type: ignore[return-value]

    def get_consumer(self, name: str, consumer: str | None = None, netdev: str | None = None
                     ) -> tuple[CellRecord, bytes]:
        return self._client.consumer_record(name, consumer, netdev)  # type: ignore[return-value]

    def dump(self, provider: str, offset: int, length: int | None) -> bytes:
        return self._client.read_provider(provider, offset, length)

    def verify(self) -> dict[str, list[str]]:
        return self._client.verify()

    def refresh(self, timeout: float) -> None:
        """``wait``'s retry: the daemon's state is current on every call; pause briefly."""
        import time

        time.sleep(max(0.0, min(timeout, 0.25)))

    def identity(self) -> dict[str, Any]:
        return self._client.identity()
