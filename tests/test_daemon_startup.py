"""nvmemd's start-up on a sysroot it cannot use: one line, the exit status nvmemd-query
gives for the same error (nvmemd(8), EXIT STATUS), no traceback, no bus name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .dbus_fixtures import REPO, TIMEOUT, WITHOUT_CAPABILITIES, PrivateBus
from .sysroots import BROKEN, UNREADABLE, break_sysroot

pytestmark = pytest.mark.integration

#: The daemon walks the whole device tree at start-up (the consumer index).
CASES = [*UNREADABLE,
         ("000:sys/firmware/devicetree/base", 4,
          "/sys/firmware/devicetree/base: permission denied"),
         *BROKEN]


def start(bus: PrivateBus, *args: str, prefix: list[str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM", "NVMEMD_SYSROOT")}
    return subprocess.run([*(prefix or []), sys.executable, "-m", "nvmemd.daemon",
                           "--address", bus.address, *args],
                          capture_output=True, text=True, timeout=TIMEOUT * 3, cwd=REPO,
                          env=env | {"PYTHONPATH": str(REPO)})


@pytest.mark.parametrize(("how", "code", "message"), CASES, ids=[c[0] for c in CASES])
def test_unusable_sysroot_stops_start_up_in_one_line(private_bus: PrivateBus, demo_copy: Path,
                                                     how: str, code: int, message: str) -> None:
    prefix = None
    if how.startswith("000:"):  # as nvmemd.service runs: root without CAP_DAC_OVERRIDE
        if os.geteuid() != 0 or shutil.which("setpriv") is None:
            pytest.skip("needs root and setpriv to drop the capabilities")
        prefix = WITHOUT_CAPABILITIES
    break_sysroot(demo_copy, how)
    proc = start(private_bus, "--sysroot", str(demo_copy), prefix=prefix)
    assert (proc.returncode, proc.stderr) == (
        code, f"nvmemd: ERROR: {message.format(root=demo_copy)}\n")
    assert not private_bus.has_owner()


def test_invalid_configuration_exits_as_nvmemd_query_does(private_bus: PrivateBus,
                                                          demo_board_sysroot: Path,
                                                          tmp_path: Path) -> None:
    config = tmp_path / "nvmemd.toml"
    config.write_text("[kernel]\nlegacy_cells = 'sometimes'\n")
    proc = start(private_bus, "--sysroot", str(demo_board_sysroot), "--config", str(config))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("nvmemd: ERROR: ") and proc.stderr.count("\n") == 1
    assert "kernel.legacy_cells: must be one of" in proc.stderr
