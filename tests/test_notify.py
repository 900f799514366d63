"""systemd integration: sd_notify readiness, status, watchdog, reload and stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvmemd import notify

from .conftest import StartDaemon
from .dbus_fixtures import TIMEOUT, Daemon


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(TIMEOUT)
    yield path, sock
    sock.close()


def receive_until(sock: socket.socket, wanted: str) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        msg = sock.recv(4096).decode()
        got.append(msg)
        if wanted in msg.split("\n"):
            return got
    raise AssertionError(f"no {wanted} in {got}")


def test_notify_sends_a_datagram(listener: tuple[str, socket.socket],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path, sock = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert notify.notify("READY=1\nSTATUS=x")
    assert sock.recv(100) == b"READY=1\nSTATUS=x"


def test_notify_without_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/socket")
    assert notify.notify("READY=1") is False


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert notify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    assert notify.watchdog_interval() == 2.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert notify.watchdog_interval() == 2.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert notify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    monkeypatch.setenv("WATCHDOG_USEC", "junk")
    assert notify.watchdog_interval() is None


def test_journal_only_when_stderr_is_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert not notify.stderr_is_journal()
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    st = os.fstat(2)
    assert notify.stderr_is_journal() == (f"{st.st_dev}:{st.st_ino}" == "1:2")
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert notify.stderr_is_journal()


@pytest.mark.integration
def test_daemon_lifecycle(start_daemon: StartDaemon, demo_board_sysroot: Path,
                          listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    daemon: Daemon = start_daemon(["--sysroot", str(demo_board_sysroot)],
                                  env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"},
                                  wait=False)
    got = receive_until(sock, "READY=1")
    ready = got[-1]
    assert ready.startswith("READY=1\nSTATUS=Publishing ")
    assert re.fullmatch(r"READY=1\nSTATUS=Publishing \d+ cell\(s\) of \d+ provider\(s\)", ready)
    # READY=1 comes after the name is owned and the objects are exported
    assert daemon.bus.has_owner()
    receive_until(sock, "WATCHDOG=1")
    receive_until(sock, "WATCHDOG=1")

    daemon.proc.send_signal(signal.SIGHUP)
    receive_until(sock, "RELOADING=1")
    receive_until(sock, "READY=1")

    daemon.proc.send_signal(signal.SIGTERM)
    receive_until(sock, "STOPPING=1")
    assert daemon.proc.wait(timeout=TIMEOUT) == 0
    daemon.bus.wait_owner(present=False)
    assert "Traceback" not in daemon.log()
