"""A udev storm: 1000 add/remove/change events through umockdev while 4 clients read.

The umockdev driver of tests/test_udev_hotplug.py plays the kernel for 8
providers (each with a fixed layout of 3 cells); a seeded random sequence of
1000 events adds absent providers and removes or changes present ones, while
4 client processes read every cell path round-robin.  Afterwards:

- the daemon is still up and stops cleanly (exit 0, no traceback logged);
- its objects are exactly the final sysfs state: the providers present and
  their cells, nothing stale — the same as ``nvmemd-query --direct`` run on
  the testbed;
- readers only ever got the cell's value or a documented "it went away"
  error (ProviderGone, NotFound, or the bus library's UnknownObject);
- the daemon holds as many file descriptors as before the storm.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nvmemd.dbus.paths import cell_path, provider_path

from ..conftest import StartDaemon
from ..dbus_fixtures import REPO, TIMEOUT, Daemon, managed_objects
from ..test_udev_hotplug import Kernel, config, fixed_layout, kernel, start_udev_daemon

pytestmark = pytest.mark.integration

__all__ = ["config", "kernel"]  # fixtures used by name

PROVIDERS = 8
EVENTS = 1000
READERS = 4
WINDOW = 4
CELLS = {"serial": (0, 6), "mac": (0x10, 6), "rev": (0x20, 2)}
ALLOWED_ERRORS = {"org.nvmemd.Nvmem1.Error.ProviderGone", "org.nvmemd.Nvmem1.Error.NotFound",
                  "org.freedesktop.DBus.Error.UnknownObject",
                  "org.freedesktop.DBus.Error.UnknownMethod"}


def name_of(i: int) -> str:
    return f"0-005{i}0"


def dev_of(i: int) -> str:
    return f"/devices/platform/soc/i2c-0/0-005{i}/{name_of(i)}"


def node_of(i: int) -> str:
    return f"/soc/eeprom@5{i}"


def image_of(i: int) -> bytes:
    return bytes((i * 16 + k) & 0xFF for k in range(64))


def cell_paths(i: int) -> dict[str, bytes]:
    image = image_of(i)
    return {cell_path(name_of(i), f"{c}@{off:x},0"): image[off:off + n]
            for c, (off, n) in CELLS.items()}


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Received:
    """How many uevents the daemon's monitor has read (its ``udev: <action>`` log lines)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = 0
        self.count = 0
        self.partial = b""

    def wait_for(self, n: int, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.count < n:
            with open(self.log, "rb") as f:
                f.seek(self.offset)
                data = self.partial + f.read()
            self.offset += len(data) - len(self.partial)
            lines = data.split(b"\n")
            self.partial = lines.pop()
            self.count += sum(1 for line in lines if line.startswith(b"nvmemd: DEBUG: udev: "))
            if self.count >= n:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the daemon read {self.count} uevents, {n} sent")
            time.sleep(0.002)


def settle(daemon: Daemon, present: set[int], timeout: float = 120) -> dict[str, object]:
    wanted = {provider_path(name_of(i)) for i in present}
    wanted |= {p for i in present for p in cell_paths(i)}
    deadline = time.monotonic() + timeout
    quiet_since = None
    last_size = -1
    while True:
        size = daemon.log_path.stat().st_size
        objects = managed_objects(daemon)
        published = {p for p in objects if p.startswith("/org/nvmemd/Nvmem1/providers/")}
        # Settled: the final state, and nothing logged for a second (queued rescans
        # of earlier events may still pass through the final state on their way).
        quiet = size == last_size == daemon.log_path.stat().st_size
        last_size = size
        if published == wanted and quiet:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 1.0:
                return objects
        else:
            quiet_since = None
        if time.monotonic() > deadline:
            raise AssertionError(f"stale: {sorted(published - wanted)}\n"
                                 f"missing: {sorted(wanted - published)}")
        time.sleep(0.2)


def direct_on_testbed(kernel: Kernel) -> list[dict[str, object]]:
    r = subprocess.run(["umockdev-wrapper", sys.executable, "-m", "nvmemd.cli", "--sysroot", "/",
                        "--direct", "cells", "--json"], capture_output=True, timeout=TIMEOUT * 3,
                       cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO),
                                      "UMOCKDEV_DIR": kernel.root})
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def test_udev_storm(start_daemon: StartDaemon, kernel: Kernel, config: Path) -> None:
    for i in range(PROVIDERS):
        fixed_layout(kernel, node_of(i), CELLS)
    present = set(range(PROVIDERS // 2))
    for i in sorted(present):
        kernel.add_provider(dev_of(i), node_of(i), image_of(i))
    daemon = start_udev_daemon(start_daemon, kernel, config)
    settle(daemon, present, TIMEOUT)
    pid = daemon.proc.pid
    fds_before = fd_count(pid)

    every_cell = {p: v for i in range(PROVIDERS) for p, v in cell_paths(i).items()}
    readers = [subprocess.Popen([sys.executable, "-m", "tests.robustness.dbus_load", "--loop",
                                 daemon.bus.address, *random.Random(r).sample(
                                     sorted(every_cell), len(every_cell))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
               for r in range(READERS)]
    rng = random.Random(7)
    counts = {"add": 0, "remove": 0, "change": 0}
    t0 = time.monotonic()
    seen = Received(daemon.log_path)
    try:
        for n in range(EVENTS):
            # umockdev sends uevents with a non-blocking sendmsg() and aborts when the
            # listener's queue is full (net.unix.max_dgram_qlen, 10): keep at most
            # WINDOW events unread by the daemon's monitor (its rescans queue up freely).
            seen.wait_for(n - WINDOW)
            i = rng.randrange(PROVIDERS)
            if i not in present:
                kernel.add_provider(dev_of(i), node_of(i), image_of(i))
                present.add(i)
                counts["add"] += 1
            elif rng.random() < 0.5:
                kernel.do(op="remove", path="/sys" + dev_of(i))
                present.discard(i)
                counts["remove"] += 1
            else:
                kernel.do(op="uevent", path="/sys" + dev_of(i), action="change")
                counts["change"] += 1
        storm = time.monotonic() - t0
        objects = settle(daemon, present)
        settled = time.monotonic() - t0
    finally:
        results = []
        for r in readers:
            out, err = r.communicate(b"", timeout=TIMEOUT * 3)
            assert r.returncode == 0, err.decode()
            results.append(json.loads(out))

    assert daemon.proc.poll() is None, daemon.log()
    # Readers: the value, or "gone"; never anything else, never a wrong value.
    reads = sum(r["ok"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for path, values in r["values"].items():
            assert values == [every_cell[path].hex()], (path, values)
    messages = [m for r in results for m in r["messages"]
                if not any(m.startswith(a) for a in ALLOWED_ERRORS)]
    assert set(errors) <= ALLOWED_ERRORS, (errors, messages)
    assert reads > 0
    # The bus shows exactly the final state, as direct mode sees it on the same testbed.
    for i in present:
        for path, value in cell_paths(i).items():
            assert bytes(daemon.call(path, "org.nvmemd.Nvmem1.Cell", "Read")[0]) == value
    direct = {(c["provider"], c["sysfs_name"]) for c in direct_on_testbed(kernel)}
    on_bus = {(objects[p]["org.nvmemd.Nvmem1.Provider"]["Name"], None) for p in objects  # type: ignore[index]
              if "org.nvmemd.Nvmem1.Provider" in objects[p]}  # type: ignore[operator]
    assert {p for p, _ in on_bus} == {name_of(i) for i in present}
    bus_cells = {(objects[objects[p]["org.nvmemd.Nvmem1.Cell"]["Provider"]]  # type: ignore[index]
                  ["org.nvmemd.Nvmem1.Provider"]["Name"],
                  objects[p]["org.nvmemd.Nvmem1.Cell"]["SysfsName"])  # type: ignore[index]
                 for p in objects if "org.nvmemd.Nvmem1.Cell" in objects[p]}  # type: ignore[operator]
    assert bus_cells == direct
    assert fd_count(pid) == fds_before, (fds_before, fd_count(pid))
    print(f"\n{EVENTS} events {counts} in {storm:.1f} s, settled after {settled:.1f} s; "
          f"{reads} reads by {READERS} clients, errors {errors}; fds {fds_before}")
    assert daemon.stop() == 0
