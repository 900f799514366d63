"""Load and restart.

- Load: 20 000 calls (Cell.Read, Properties.GetAll, FindCells) from 8 client
  processes → zero failures, every cell always reads the same value, the
  daemon's RSS grows less than 10 % after a warm-up, its open file
  descriptors are the same before and after.
- Restart: SIGKILL, then a new daemon → the same objects with the same
  properties (the daemon keeps no state); a ``GDBusObjectManagerClient``
  (Debian python3-gi) started before the kill sees every object go and come
  back, without being restarted.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ..conftest import StartDaemon
from ..dbus_fixtures import CLIENTS, REPO, SYS_PYTHON, TIMEOUT, Daemon, managed_objects

pytestmark = pytest.mark.integration

CELL = "org.nvmemd.Nvmem1.Cell"
CLIENTS_N = 8
CALLS = 20_000
WARM_UP = 2_000


def status_kib(pid: int, key: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def hammer(daemon: Daemon, clients: int, calls: int, paths: list[str]) -> list[dict[str, object]]:
    procs = [subprocess.Popen([sys.executable, "-m", "tests.robustness.dbus_load",
                               daemon.bus.address, str(calls // clients), *paths],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
             for _ in range(clients)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
        results.append(json.loads(out))
    return results


def test_load_20000_reads_from_8_clients(start_daemon: StartDaemon, sysroot: Path) -> None:
    daemon = start_daemon(["--sysroot", str(sysroot)])
    pid = daemon.proc.pid
    objects = managed_objects(daemon)
    paths = sorted(p for p, i in objects.items() if CELL in i)
    assert len(paths) >= 10
    expected = {p: bytes(daemon.call(p, CELL, "Read")[0]).hex() for p in paths}

    hammer(daemon, 2, WARM_UP, paths)
    time.sleep(0.5)
    rss_before, fds_before = status_kib(pid), fd_count(pid)

    t0 = time.monotonic()
    results = hammer(daemon, CLIENTS_N, CALLS, paths)
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    rss_after, fds_after = status_kib(pid), fd_count(pid)

    ok = sum(int(r["ok"]) for r in results)  # type: ignore[call-overload]
    failed = sum(int(r["failed"]) for r in results)  # type: ignore[call-overload]
    errors = [r["errors"] for r in results if r["errors"]]
    assert (ok, failed, errors) == (CALLS, 0, []), errors
    for r in results:
        assert r["values"] == {p: expected[p] for p in r["values"]}  # type: ignore[attr-defined]
    growth = (rss_after - rss_before) / rss_before
    print(f"\n{CALLS} calls from {CLIENTS_N} clients in {elapsed:.1f} s "
          f"({CALLS / elapsed:.0f}/s); RSS {rss_before} → {rss_after} KiB "
          f"({growth * 100:+.1f} %); fds {fds_before} → {fds_after}")
    assert growth < 0.10, (rss_before, rss_after)
    assert fds_after == fds_before
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


class Lines:
    """Lines of a process's stdout, read by a thread, waited for with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [self.queue.put(line.rstrip("\n")) for line in stdout],
                         daemon=True).start()

    def until(self, done: object, timeout: float = TIMEOUT) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while not done(got):  # type: ignore[operator]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited for more; got {got}")
            try:
                got.append(self.queue.get(timeout=left))
            except queue.Empty:
                continue
        return got


def test_sigkill_and_restart(start_daemon: StartDaemon, sysroot: Path) -> None:
    args = ["--sysroot", str(sysroot)]
    daemon = start_daemon(args)
    before = managed_objects(daemon)
    client = subprocess.Popen([SYS_PYTHON, str(CLIENTS / "gdbus_object_manager.py"),
                               daemon.bus.address], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = Lines(client)
        initial = lines.until(lambda got: got and got[-1] == "ready")
        paths = {line.split(" ", 1)[1] for line in initial if line.startswith("initial ")}
        assert paths == set(before)

        os.kill(daemon.proc.pid, signal.SIGKILL)
        daemon.proc.wait(timeout=TIMEOUT)
        daemon.bus.wait_owner(present=False)
        removed = lines.until(lambda got: {g.split(" ", 1)[1] for g in got
                                           if g.startswith("removed ")} >= paths)
        assert {g.split(" ", 1)[1] for g in removed if g.startswith("removed ")} == paths

        again = start_daemon(args)
        assert managed_objects(again) == before
        added = lines.until(lambda got: {g.split(" ", 1)[1] for g in got
                                         if g.startswith("added ")} >= paths)
        assert {g.split(" ", 1)[1] for g in added if g.startswith("added ")} == paths
        assert client.poll() is None  # the same client, never restarted
        mac = "/org/nvmemd/Nvmem1/providers/imx_2docotp0/cells/mac_2daddress_4090_2c0"
        assert len(again.call(mac, CELL, "Read")[0]) == 6
    finally:
        assert client.stdin is not None
        client.stdin.close()
        try:
            client.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
    assert "Traceback" not in (client.stderr.read() if client.stderr else "")
