"""examples/clients/: every client example, built and run against the demo daemon."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .dbus_fixtures import REPO, Daemon

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "examples" / "clients"
EXPECTED = "serial NVD-2026-000042\neth0 00:0f:12:34:56:78\n"


def run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (cmd, proc.stderr)
    return proc.stdout


def test_python_client(daemon: Daemon) -> None:
    assert run([sys.executable, str(EXAMPLES / "read_board.py"), daemon.bus.address]) \
        == EXPECTED


def test_busctl_shell_client(daemon: Daemon) -> None:
    assert run(["sh", str(EXAMPLES / "read-board.sh"), daemon.bus.address]) == EXPECTED


def test_sd_bus_c_client(daemon: Daemon, tmp_path: Path) -> None:
    flags = run(["pkg-config", "--cflags", "--libs", "libsystemd"]).split()
    binary = tmp_path / "read-board"
    cc = shutil.which("cc") or "gcc"
    run([cc, "-Wall", "-Werror", str(EXAMPLES / "read-board.c"), *flags, "-o", str(binary)])
    assert run([str(binary), daemon.bus.address]) == EXPECTED


def test_clients_say_why_when_the_daemon_is_missing(private_bus: object, tmp_path: Path
                                                    ) -> None:
    """No daemon on the bus: every example fails with a message, not a traceback."""
    address = private_bus.address  # type: ignore[attr-defined]
    proc = subprocess.run([sys.executable, str(EXAMPLES / "read_board.py"), address],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr
    proc = subprocess.run(["sh", str(EXAMPLES / "read-board.sh"), address],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "org.nvmemd.Nvmem1" in proc.stderr


def test_readme_python_example(daemon: Daemon) -> None:
    """The README's five-line client, as written (only the bus address added)."""
    import re

    readme = (REPO / "README.md").read_text()
    block = re.search(r"```python\n(from nvmemd.client import Client\n.*?)```", readme, re.S)
    assert block is not None
    code = block.group(1).replace("Client()", f"Client({daemon.bus.address!r})")
    assert run([sys.executable, "-c", code]) == "NVD-2026-000042\n00:0f:12:34:56:78\n"
