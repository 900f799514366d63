"""Manager.Reload()/SIGHUP when the rescan fails: callers are answered, systemd gets READY=1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nvmemd import daemon as daemon_mod
from nvmemd.errors import NvmemError


def test_failed_rescan_answers_reload_and_reports_ready(
        demo_board_sysroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(daemon_mod, "notify", sent.append)

    def broken_scan(*_args: object) -> None:
        raise RuntimeError("sysfs went away")

    monkeypatch.setattr(daemon_mod, "scan", broken_scan)
    d = daemon_mod.Daemon(daemon_mod.build_parser().parse_args(
        ["--sysroot", str(demo_board_sysroot)]))

    async def run() -> None:
        worker = asyncio.create_task(d.worker())
        try:
            with pytest.raises(NvmemError, match="rescan failed"):
                await asyncio.wait_for(d.reload(), 10)  # hung forever before the fix
            # the worker survives: a second reload is answered too
            with pytest.raises(NvmemError):
                await asyncio.wait_for(d.reload(), 10)
        finally:
            worker.cancel()

    asyncio.run(run())
    assert [m.split("\n")[0] for m in sent] == ["RELOADING=1", "READY=1"] * 2
