"""Faults while reading: the right error, in the CLI and on the bus, and nothing else lost.

- a ``nvmem`` file whose reads fail with EIO (a dying EEPROM) or ENODEV (a
  removed device), served by FUSE (tests/robustness/fuse_device.py) mounted
  over the provider's sysfs directory, so the failure is a real read(2) error;
- a provider removed between listing and reading;
- a ``nvmem`` file truncated under a live provider;
- the DT node of a live provider removed;
- permissions: root-only (0400) and unreadable (000) providers read by a
  non-root client (``setpriv --reuid=nobody``).

Each is checked in direct mode (exit codes 5 I/O, 6 gone, 3 not found, 4
access, 2 invalid) and against the daemon (``org.nvmemd.Nvmem1.Error.*``),
and the daemon keeps serving the other providers.  Error messages never hold a
traceback, a Python exception name or a host path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvmemd.config import Config
from nvmemd.errors import ProviderGoneError
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

from ..conftest import StartDaemon
from ..dbus_fixtures import (
    AS_NOBODY,
    REPO,
    ROOT,
    SYS_PYTHON,
    TIMEOUT,
    WITHOUT_CAPABILITIES,
    Daemon,
    assert_no_internals,
    direct_query,
)

pytestmark = pytest.mark.integration

MANAGER = "org.nvmemd.Nvmem1.Manager"
PROVIDER = "org.nvmemd.Nvmem1.Provider"
CELL = "org.nvmemd.Nvmem1.Cell"
ERR = "org.nvmemd.Nvmem1.Error."
OCOTP = ROOT + "/providers/imx_2docotp0"
OCOTP_MAC = OCOTP + "/cells/mac_2daddress_4090_2c0"
EEPROM = ROOT + "/providers/board_2deeprom1"
EEPROM_SERIAL = EEPROM + "/cells/serial_2dnumber_400_2c0"
FUSE_HELPER = Path(__file__).resolve().parent / "fuse_device.py"


def still_serving(daemon: Daemon) -> None:
    (value,) = daemon.call(ROOT, MANAGER, "ReadCellByName", "s", "mtd1:region-code")
    assert bytes(value) == b"\x05"
    assert daemon.proc.poll() is None


def device_dir(sysroot: Path, provider: str) -> Path:
    return Path(os.path.realpath(sysroot / "sys/bus/nvmem/devices" / provider))


# --- FUSE ---------------------------------------------------------------------------


def _fuse_missing() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist"
    if os.geteuid() != 0:
        return "mounting FUSE over a sysroot directory needs root"
    r = subprocess.run([SYS_PYTHON, "-c", "import fusepy"], capture_output=True)
    if r.returncode != 0:
        return "Debian python3-fusepy is not installed"
    return None


@contextlib.contextmanager
def failing_nvmem(device: Path, err: int) -> Iterator[None]:
    """Serve *device* from FUSE, same entries, but every nvmem read fails with *err*."""
    missing = _fuse_missing()
    if missing:
        pytest.skip(missing)
    spec: dict[str, dict[str, object]] = {}
    for e in os.scandir(device):
        if e.is_symlink():
            spec[e.name] = {"link": os.readlink(e.path)}
        elif e.is_file():
            st = e.stat()
            if e.name == "nvmem":
                spec[e.name] = {"fail": err, "size": st.st_size,
                                "mode": stat.S_IMODE(st.st_mode)}
            else:
                spec[e.name] = {"file": Path(e.path).read_bytes().hex(),
                                "mode": stat.S_IMODE(st.st_mode)}
    spec_file = device.parent / f".{device.name}.fuse.json"
    spec_file.write_text(json.dumps(spec))
    proc = subprocess.Popen([SYS_PYTHON, str(FUSE_HELPER), str(device), str(spec_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != "ready":
        proc.kill()
        _, stderr = proc.communicate()
        pytest.skip(f"FUSE cannot be mounted here: {stderr.strip()[-300:]}")
    try:
        yield
    finally:
        if subprocess.run(["umount", str(device)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(device)], capture_output=True)
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        spec_file.unlink(missing_ok=True)


@pytest.mark.parametrize(("err", "code", "words"), [
    (errno.EIO, 5, "Input/output error"),
    (errno.ENODEV, 6, "provider is gone"),
], ids=["EIO", "ENODEV"])
def test_failing_reads_direct(sysroot: Path, err: int, code: int, words: str) -> None:
    with failing_nvmem(device_dir(sysroot, "imx-ocotp0"), err):
        r = direct_query(sysroot, "get", "imx-ocotp0:mac-address")
        assert r.returncode == code, r.stderr
        message = r.stderr.decode()
        assert message.startswith("nvmemd-query: imx-ocotp0:") and words in message, message
        assert_no_internals(message, sysroot)
        r = direct_query(sysroot, "dump", "imx-ocotp0", "--length", "16")
        assert r.returncode == code, r.stderr
        # Listing still works; the failing cells say why, the others have values.
        r = direct_query(sysroot, "cells", "--json")
        assert r.returncode == 0, r.stderr
        cells = json.loads(r.stdout)
        ocotp = [c for c in cells if c["provider"] == "imx-ocotp0"]
        assert ocotp and all(c.get("value") is None and words in c["error"] for c in ocotp)
        assert all(c.get("value") is not None for c in cells if c["provider"] == "mtd1")
        assert direct_query(sysroot, "get", "mtd1:region-code").stdout == b"05\n"


@pytest.mark.parametrize(("err", "error"), [
    (errno.EIO, "IOError"),
    (errno.ENODEV, "ProviderGone"),
], ids=["EIO", "ENODEV"])
def test_failing_reads_daemon(daemon: Daemon, sysroot: Path, err: int, error: str) -> None:
    (before,) = daemon.call(OCOTP_MAC, CELL, "Read")
    with failing_nvmem(device_dir(sysroot, "imx-ocotp0"), err):
        for call in [(OCOTP_MAC, CELL, "Read", ""),
                     (OCOTP, PROVIDER, "Read", "tu", "0", "16"),
                     (ROOT, MANAGER, "ReadCellByName", "s", "imx-ocotp0:mac-address")]:
            name, message = daemon.call_error(*call)
            assert name == ERR + error, message
            assert message.startswith("imx-ocotp0:"), message
            assert_no_internals(message, sysroot)
        still_serving(daemon)
    # The fault is gone: the same object reads again, nothing to restart.
    (after,) = daemon.call(OCOTP_MAC, CELL, "Read")
    assert after == before
    assert "Traceback" not in daemon.log()


# --- removed, truncated, DT node gone -------------------------------------------------


def test_provider_removed_between_listing_and_reading(sysroot: Path) -> None:
    registry = scan(Sysroot(str(sysroot)), Config())
    entry = registry.provider("imx-ocotp0")
    shutil.rmtree(device_dir(sysroot, "imx-ocotp0"))
    with pytest.raises(ProviderGoneError, match=r"^imx-ocotp0: provider is gone$"):
        registry.read_cell(entry, entry.cells[0])
    with pytest.raises(ProviderGoneError):
        registry.read_provider(entry, 0, 4)
    other = registry.provider("mtd1")
    assert registry.read_cell(other, next(c for c in other.cells if c.name == "region-code")) \
        == b"\x05"
    # Still listed (the bus link dangles) but gone by the time it is scanned.
    r = direct_query(sysroot, "get", "imx-ocotp0:mac-address")
    assert (r.returncode, r.stderr) == (6, b"nvmemd-query: imx-ocotp0: provider is gone\n")
    r = direct_query(sysroot, "dump", "imx-ocotp0")
    assert r.returncode == 6, r.stderr
    # Gone entirely (link removed too): nothing by that name.
    (sysroot / "sys/bus/nvmem/devices/imx-ocotp0").unlink()
    assert direct_query(sysroot, "get", "imx-ocotp0:mac-address").returncode == 3


def test_truncated_nvmem(daemon: Daemon, sysroot: Path) -> None:
    nvmem = device_dir(sysroot, "imx-ocotp0") / "nvmem"
    os.truncate(nvmem, 0x10)  # mac-address is at 0x90
    name, message = daemon.call_error(OCOTP_MAC, CELL, "Read")
    assert name == ERR + "IOError", message
    assert message.startswith("imx-ocotp0: cell mac-address@90,0"), message
    assert "past the end" in message
    assert_no_internals(message, sysroot)
    # A provider read stops at the end of the file: short, not an error.
    (data,) = daemon.call(OCOTP, PROVIDER, "Read", "tu", "0", "1024")
    assert len(data) == 0x10
    still_serving(daemon)
    # Direct mode sees the new size: the cell is out of range.
    r = direct_query(sysroot, "get", "imx-ocotp0:mac-address")
    assert r.returncode == 5, r.stderr
    assert b"past the end" in r.stderr
    assert_no_internals(r.stderr.decode(), sysroot)


def test_dt_node_removed_under_live_provider(daemon: Daemon, sysroot: Path) -> None:
    node = sysroot / "sys/firmware/devicetree/base/soc@0/i2c@30a20000/eeprom@50"
    (serial,) = daemon.call(EEPROM_SERIAL, CELL, "Read")
    shutil.rmtree(node)
    # The kernel keeps registered cells until the provider re-registers: so does nvmemd.
    assert daemon.call(EEPROM_SERIAL, CELL, "Read") == [serial]
    daemon.call(ROOT, MANAGER, "Reload")
    name, message = daemon.call_error(ROOT, MANAGER, "ReadCellByName", "s",
                                      "board-eeprom1:serial-number")
    assert name == ERR + "NotFound", message
    assert_no_internals(message, sysroot)
    # root-only: the Details property hides the errors, GetDetails() shows them to root
    (details,) = daemon.call(EEPROM, PROVIDER, "GetDetails")
    errors = details["errors"]["data"]  # a{sv}: key → {"type", "data"}
    assert any("/soc@0/i2c@30a20000/eeprom@50" in e for e in errors), errors
    still_serving(daemon)
    r = direct_query(sysroot, "get", "board-eeprom1:serial-number")
    assert r.returncode == 3, r.stderr
    r = direct_query(sysroot, "cells", "board-eeprom1")
    assert r.returncode == 0
    assert b"board-eeprom1: of_node /soc@0/i2c@30a20000/eeprom@50 is missing" in r.stderr
    assert "Traceback" not in daemon.log()


# --- permissions --------------------------------------------------------------------


def nobody_direct(sysroot: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Direct-mode nvmemd-query as nobody (Debian's python3; the venv is root's)."""
    return subprocess.run([*AS_NOBODY, SYS_PYTHON, "-m", "nvmemd.cli", "--sysroot",
                           str(sysroot), "--direct", *args], capture_output=True,
                          timeout=TIMEOUT * 3, cwd="/",
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})


@pytest.fixture
def as_nobody() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a client as nobody")
    r = subprocess.run([SYS_PYTHON, "-c", "import libfdt"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("Debian python3-libfdt is not installed")


@pytest.mark.usefixtures("as_nobody")
@pytest.mark.parametrize("mode", [0o400, 0o000], ids=["root-only-0400", "unreadable-000"])
def test_permissions_direct(sysroot: Path, mode: int) -> None:
    nvmem = device_dir(sysroot, "imx-ocotp0") / "nvmem"
    nvmem.chmod(mode)
    r = nobody_direct(sysroot, "get", "imx-ocotp0:mac-address")
    assert r.returncode == 4, r.stderr
    assert r.stderr == b"nvmemd-query: imx-ocotp0: permission denied (root-only provider)\n"
    r = nobody_direct(sysroot, "dump", "imx-ocotp0", "--length", "4")
    assert r.returncode == 4, r.stderr
    r = nobody_direct(sysroot, "cells", "--json")
    assert r.returncode == 0, r.stderr
    cells = json.loads(r.stdout)
    assert all("permission denied" in c["error"] for c in cells
               if c["provider"] == "imx-ocotp0")
    # A world-readable provider is still read by the same client.
    # (ethaddr is post-processed to 6 binary bytes: --format string would refuse it)
    r = nobody_direct(sysroot, "get", "u-boot-env0:ethaddr", "--format", "mac")
    assert (r.returncode, r.stdout) == (0, b"02:00:5e:10:00:10\n"), r.stderr
    # Bad input stays an argument error whoever asks.
    assert nobody_direct(sysroot, "get", "").returncode == 2


@pytest.mark.usefixtures("as_nobody")
def test_unreadable_provider_on_the_bus(daemon: Daemon, sysroot: Path) -> None:
    """Mode 000 stops nobody, not the daemon: the daemon's own rule (root-only) decides."""
    nvmem = device_dir(sysroot, "imx-ocotp0") / "nvmem"
    nvmem.chmod(0o000)
    # imx-ocotp0 was listed 0644 (world-readable): the daemon, root, still reads it.
    (value,) = daemon.call(OCOTP_MAC, CELL, "Read", nobody=True)
    assert len(value) == 6
    name, message = daemon.call_error(EEPROM_SERIAL, CELL, "Read", nobody=True)
    assert name == ERR + "AccessDenied", message
    assert_no_internals(message, sysroot)
    still_serving(daemon)


#: What a provider directory or the device tree at mode 000 breaks (imx-ocotp0 has an
#: of_node: its compatible cannot be read), and the commands that read that provider.
UNREADABLE_DIRS = {
    "provider-directory": lambda root: device_dir(root, "imx-ocotp0"),
    "devicetree-base": lambda root: root / "sys/firmware/devicetree/base",
}
OCOTP_COMMANDS = [("get", "imx-ocotp0/unique-id"), ("dump", "imx-ocotp0"),
                  ("cells", "imx-ocotp0"), ("wait", "--timeout", "15", "imx-ocotp0/unique-id")]


def assert_denied_at_once(run: object, sysroot: Path, args: tuple[str, ...]) -> None:
    assert callable(run)
    start = time.monotonic()
    r = run(*args)
    assert r.returncode == 4, (args, r.stderr)
    message = r.stderr.decode()
    # one line naming the provider and the file it could not read
    assert message.startswith("nvmemd-query: imx-ocotp0: ") and message.count("\n") == 1, message
    assert message.endswith("permission denied\n"), message
    assert_no_internals(message, sysroot)
    if args[0] == "wait":  # permission errors fail at once (nvmemd-query(1)), no timeout
        assert time.monotonic() - start < 10, "wait waited for a permission error"


@pytest.mark.usefixtures("as_nobody")
@pytest.mark.parametrize("what", sorted(UNREADABLE_DIRS))
def test_unreadable_provider_directory_or_tree_direct(sysroot: Path, what: str) -> None:
    """A provider the scan cannot describe because of EACCES says permission denied
    (exit 4), not I/O error (5); `wait` fails at once instead of timing out (7)."""
    UNREADABLE_DIRS[what](sysroot).chmod(0)
    for args in OCOTP_COMMANDS:
        assert_denied_at_once(lambda *a: nobody_direct(sysroot, *a), sysroot, args)
    r = nobody_direct(sysroot, "providers", "--json")
    assert r.returncode == 0, r.stderr
    broken = next(p for p in json.loads(r.stdout) if p["name"] == "imx-ocotp0")
    assert broken["errors"][0].endswith("permission denied"), broken


def test_unreadable_provider_directory_on_the_bus(start_daemon: StartDaemon,
                                                  sysroot: Path) -> None:
    """nvmemd.service's root has no capability: a provider directory at mode 000 is out
    of its reach. Callers get AccessDenied (nvmemd-query: 4, and `wait` at once)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop the capabilities")
    UNREADABLE_DIRS["provider-directory"](sysroot).chmod(0)
    daemon = start_daemon(["--sysroot", str(sysroot)], prefix=WITHOUT_CAPABILITIES)
    for call in [(ROOT, MANAGER, "ReadCellByName", "s", "imx-ocotp0:unique-id"),
                 (ROOT, MANAGER, "GetProvider", "s", "imx-ocotp0")]:
        name, message = daemon.call_error(*call)
        assert name == ERR + "AccessDenied", message
        assert message.startswith("imx-ocotp0: ") and message.endswith("permission denied")
        assert_no_internals(message, sysroot)
    for args in OCOTP_COMMANDS:
        assert_denied_at_once(daemon.query, sysroot, args)
    still_serving(daemon)
    assert "Traceback" not in daemon.log()


def test_daemon_survives_every_fault_in_a_row(daemon: Daemon, sysroot: Path) -> None:
    """All of the above against one daemon, then a clean stop (exit 0, no traceback)."""
    nvmem = device_dir(sysroot, "imx-ocotp0") / "nvmem"
    nvmem.unlink()
    os.mkfifo(nvmem)
    assert daemon.call_error(OCOTP_MAC, CELL, "Read")[0] == ERR + "IOError"
    nvmem.unlink()
    nvmem.mkdir()
    assert daemon.call_error(OCOTP_MAC, CELL, "Read")[0] == ERR + "IOError"
    nvmem.rmdir()
    assert daemon.call_error(OCOTP_MAC, CELL, "Read")[0] == ERR + "ProviderGone"
    shutil.rmtree(device_dir(sysroot, "mtd2"))
    shutil.rmtree(sysroot / "sys/firmware/devicetree/base/soc@0/i2c@30a20000/eeprom@50")
    daemon.call(ROOT, MANAGER, "Reload")
    time.sleep(0.2)
    still_serving(daemon)
    assert daemon.stop() == 0
