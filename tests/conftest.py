"""Shared fixtures.  The D-Bus/udev parts live in tests/dbus_fixtures.py."""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from .dbus_fixtures import REPO, Daemon, PrivateBus, missing_tools


@pytest.fixture(scope="module")
def private_bus() -> Iterator[PrivateBus]:
    """A private dbus-daemon with a system-bus-like configuration and our policy."""
    missing = missing_tools()
    if missing:
        pytest.skip(missing)
    bus = PrivateBus.start()
    try:
        yield bus
    finally:
        bus.stop()


@pytest.fixture(scope="session")
def demo_board_sysroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/demo-board built afresh (read-only use: copy it before changing it)."""
    from mksysroot import build_sysroot

    demo = REPO / "examples" / "demo-board"
    out = tmp_path_factory.mktemp("demo-board") / "sysroot"
    build_sysroot(demo / "board.dts", tomllib.loads((demo / "board.toml").read_text()), out)
    return out


@pytest.fixture
def demo_copy(demo_board_sysroot: Path) -> Iterator[Path]:
    """A private copy of the demo board that a test may break, in a directory that
    an unprivileged client (setpriv nobody) can traverse too."""
    tmp = Path(tempfile.mkdtemp(prefix="nvmemd-demo-"))
    tmp.chmod(0o755)
    out = tmp / "sysroot"
    shutil.copytree(demo_board_sysroot, out, symlinks=True)
    try:
        yield out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


StartDaemon = Callable[..., Daemon]


@pytest.fixture
def start_daemon(private_bus: PrivateBus, tmp_path: Path) -> Iterator[StartDaemon]:
    """Start nvmemd on the private bus; every daemon started is stopped (SIGTERM) after."""
    started: list[Daemon] = []

    def start(args: Sequence[str] = (), prefix: Sequence[str] = (),
              env: dict[str, str] | None = None, wait: bool = True) -> Daemon:
        log = tmp_path / f"nvmemd-{len(started)}.log"
        daemon = Daemon.start(private_bus, args, log, prefix=prefix, env=env, wait=wait)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop(check=False)
    private_bus.wait_owner(present=False)


@pytest.fixture
def sysroot(demo_copy: Path) -> Path:
    """The sysroot the `daemon` fixture serves: a breakable copy of the demo board.
    A test module overrides it to serve another board."""
    return demo_copy


@pytest.fixture
def daemon(start_daemon: StartDaemon, sysroot: Path) -> Daemon:
    """nvmemd on the private bus, serving `sysroot`."""
    return start_daemon(["--sysroot", str(sysroot)])
