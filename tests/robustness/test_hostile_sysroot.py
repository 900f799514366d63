"""Issue 11: hostile arguments and crafted sysroots, without a bus.

- Point 2: caller-supplied paths and specs are checked before any work (depth,
  length, characters); resolution caches stay bounded whatever is asked.
- Point 6: a final symlink (nvmem, DT property, cells/ file) is resolved inside
  the sysroot, never followed on the host.
- Point 8: a FIFO as a property or ``type`` file neither hangs the scan nor
  the CLI; a tree nested deeper than the kernel's 64 levels is cut there.
"""

from __future__ import annotations

import os
import random
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nvmemd.config import Config
from nvmemd.consumers import lookup
from nvmemd.devicetree import RESOLVE_CACHE_MAX, DeviceTree
from nvmemd.errors import InvalidArgumentError, NvmemError
from nvmemd.limits import DT_MAX_DEPTH, check_dt_path, check_name, check_spec
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

from ..dbus_fixtures import REPO

OCOTP = "/sys/devices/platform/soc@0/30350000.efuse/imx-ocotp0"
EFUSE_DT = "/sys/firmware/devicetree/base/soc@0/efuse@30350000"
SECRET = b"root:$6$secret-hash:19000:0:99999:7:::\n"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "shadow"
    path.write_bytes(SECRET * 40)
    return path


# --- point 2 -------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["/a" * 16000, "/a" * (DT_MAX_DEPTH + 1), "/" + "x" * 256,
                                 "/a\0b", "/a/../b", "x" * 5000, "/a\x1b[2J"])
def test_dt_paths_refused_up_front(demo_copy: Path, bad: str) -> None:
    registry = scan(Sysroot(str(demo_copy)), Config())
    t0 = time.monotonic()
    with pytest.raises(InvalidArgumentError) as e:
        lookup(registry, bad, "mac-address")
    assert time.monotonic() - t0 < 1.0  # no walk: generous bound
    assert len(str(e.value)) < 200
    assert len(registry.tree._resolved) < 100


def test_limits_accept_real_names() -> None:
    check_dt_path("/soc@0/i2c@30a20000/eeprom@50/nvmem-layout/mac-address@40")
    check_dt_path("/" + "/".join(["n"] * DT_MAX_DEPTH))
    check_spec("board-eeprom1:serial-number@0,0")
    check_spec("&wifi_mac")
    check_name("serial#")
    for bad in ("x" * 256, "a\nb", "\udcff"):
        with pytest.raises(InvalidArgumentError):
            check_name(bad)
    with pytest.raises(InvalidArgumentError):
        check_spec("x" * (10 * 1024 * 1024))


def test_resolution_cache_bounded(demo_copy: Path) -> None:
    tree = DeviceTree(Sysroot(str(demo_copy)))
    rng = random.Random(11)
    for _ in range(3 * RESOLVE_CACHE_MAX):
        tree.node("/" + "".join(rng.choices(string.ascii_lowercase, k=8))).exists()
    assert len(tree._resolved) <= RESOLVE_CACHE_MAX + 1


def test_name_too_long_in_cli(demo_copy: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "nvmemd.cli", "--sysroot", str(demo_copy),
                        "--direct", "get", "x" * 300], capture_output=True, timeout=60,
                       cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2, r.stderr
    assert b"Traceback" not in r.stderr and b"OSError" not in r.stderr
    assert len(r.stderr) < 300, r.stderr


# --- point 6 -------------------------------------------------------------------


@pytest.mark.parametrize("relative", [False, True])
def test_nvmem_symlink_stays_inside(demo_copy: Path, secret: Path, relative: bool) -> None:
    nvmem = demo_copy / OCOTP.lstrip("/") / "nvmem"
    size = nvmem.stat().st_size
    nvmem.unlink()
    target = os.path.relpath(secret, nvmem.parent) if relative else str(secret)
    nvmem.symlink_to(target)
    registry = scan(Sysroot(str(demo_copy)), Config())
    if "imx-ocotp0" in registry.entries:
        entry = registry.entries["imx-ocotp0"]
        assert entry.provider.size != len(SECRET * 40) or size == len(SECRET * 40)
        with pytest.raises(NvmemError):
            data = registry.read_provider(entry, 0, 64)
            assert SECRET[:16] not in data
    else:
        assert "imx-ocotp0" in registry.broken


def test_dt_property_symlink_stays_inside(demo_copy: Path, secret: Path) -> None:
    prop = demo_copy / EFUSE_DT.lstrip("/") / "compatible"
    prop.unlink()
    prop.symlink_to(secret)
    tree = DeviceTree(Sysroot(str(demo_copy)))
    assert tree.node("/soc@0/efuse@30350000").prop("compatible") is None


# --- point 8 -------------------------------------------------------------------


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def test_fifo_property_and_type_do_not_hang(demo_copy: Path) -> None:
    _fifo(demo_copy / EFUSE_DT.lstrip("/") / "compatible")
    _fifo(demo_copy / OCOTP.lstrip("/") / "type")
    r = subprocess.run([sys.executable, "-m", "nvmemd.cli", "--sysroot", str(demo_copy),
                        "--direct", "providers"], capture_output=True, timeout=60, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode in (0, 1), r.stderr
    assert b"imx-ocotp0" in r.stdout + r.stderr


def test_deep_tree_cut_at_kernel_depth(demo_copy: Path) -> None:
    base = demo_copy / "sys/firmware/devicetree/base"
    deep = base
    for _ in range(300):  # PATH_MAX bounds mkdir; nesting by chdir would go deeper
        deep = deep / "n"
    deep.mkdir(parents=True)
    tree = DeviceTree(Sysroot(str(demo_copy)))
    depth = max(n.path.count("/") for n in tree.walk(tree.node("/")))
    assert depth <= DT_MAX_DEPTH
    registry = scan(Sysroot(str(demo_copy)), Config())  # no RecursionError
    assert "imx-ocotp0" in registry.entries


def test_rate_limited_log(caplog: pytest.LogCaptureFixture) -> None:
    """Point 7: 900 vanished callers are a handful of lines, not 1 800."""
    import logging

    from nvmemd.limits import RateLimitedLog

    limited = RateLimitedLog(logging.getLogger("nvmemd.test"), burst=5, interval=3600)
    with caplog.at_level(logging.WARNING, logger="nvmemd.test"):
        for i in range(900):
            limited.warning("cannot identify caller %s", f":1.{i}")
    assert len(caplog.records) == 5


# --- a provider truncated after the scan -------------------------------------------


def test_truncated_after_scan_reports_current_size(demo_copy: Path) -> None:
    """Reads answer from the nvmem file as it is now, not as the scan saw it."""
    registry = scan(Sysroot(str(demo_copy)), Config())
    entry = registry.entries["imx-ocotp0"]
    assert entry.provider.size > 16
    os.truncate(demo_copy / OCOTP.lstrip("/") / "nvmem", 16)
    assert len(registry.read_provider(entry, 0, 64)) == 16  # the short read
    with pytest.raises(InvalidArgumentError, match=r"\(16 bytes\)"):
        registry.read_provider(entry, 32, 16)
    cell = next(c for c in entry.cells if c.offset >= 16)
    with pytest.raises(NvmemError, match=r"past the end of the provider \(16 bytes\)"):
        registry.read_cell(entry, cell)
    assert registry.current_size(entry) == 16
