"""Issue 11: hostile callers and hostile sysroots.

Every test here runs its clients as ``nobody`` (``setpriv``) or gives the
daemon a crafted sysroot, and checks that the daemon stays up, keeps
answering other clients, stays bounded and says nothing about protected bytes.
Timing bounds are generous liveness bounds, not performance targets (the
figures are in benchmarks/RESULTS.md, from benchmarks/flood.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import StartDaemon
from ..dbus_fixtures import AS_NOBODY, REPO, ROOT, Daemon

pytestmark = pytest.mark.integration

PROVIDER = "org.nvmemd.Nvmem1.Provider"
UBOOT_ENV = ROOT + "/providers/u_2dboot_2denv0"  # 64 KiB, world-readable
OCOTP_MAC = ROOT + "/providers/imx_2docotp0/cells/mac_2daddress_4090_2c0"


@pytest.fixture(autouse=True)
def _root_and_setpriv() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run clients as nobody")


@pytest.fixture
def daemon(start_daemon: StartDaemon, demo_copy: Path) -> Daemon:
    return start_daemon(["--sysroot", str(demo_copy)])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise KeyError("VmRSS")


def _client(*args: str, nobody: bool = True) -> subprocess.Popen[str]:
    return subprocess.Popen([*(AS_NOBODY if nobody else []), sys.executable, "-m",
                             "tests.robustness.flood", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def _result(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.splitlines()[-1])
    return result


@pytest.mark.parametrize(("concurrency", "length"), [(10, 65536), (100, 4096)])
def test_read_flood_keeps_serving(daemon: Daemon, concurrency: int, length: int) -> None:
    """Point 1: one nobody client floods Provider.Read; a bystander keeps being served."""
    addr = daemon.bus.address
    floods = [_client(addr, "6", str(concurrency), UBOOT_ENV, "0", str(length))
              for _ in range(2)]
    by = _client("--bystander", addr, "6", OCOTP_MAC)
    results = [_result(p) for p in floods]
    bystander = _result(by)
    assert daemon.proc.poll() is None, daemon.log()
    assert "lost the bus connection" not in daemon.log()
    assert sum(int(r["ok"]) for r in results) > 0, results  # type: ignore[call-overload]
    for r in results:  # excess calls are refused with a clear error, nothing else
        assert set(r["errors"]) <= {"org.freedesktop.DBus.Error.LimitsExceeded"}, r  # type: ignore[arg-type]
    assert bystander["errors"] == {}, bystander
    lat = sorted(bystander["latencies_ms"])  # type: ignore[type-var]
    assert lat and lat[-1] < 5000, lat  # generous liveness bound
    assert rss_kib(daemon.proc.pid) < 150 * 1024
    assert daemon.call(ROOT, "org.nvmemd.Nvmem1.Manager", "ListProviders")
