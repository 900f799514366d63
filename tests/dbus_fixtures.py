"""Real D-Bus parts for the daemon tests: a private system-like bus and nvmemd on it.

The bus is Debian's own ``/usr/share/dbus-1/system.conf`` with what ties it to
the machine removed (it listens on a socket in a temporary directory, does
not switch user, fork, log or activate) and an ``<includedir>`` holding only
``data/org.nvmemd.Nvmem1.conf`` plus, for the polkit mock, a rule that lets
root own ``org.freedesktop.PolicyKit1``.  No mocks of D-Bus or udev: clients
are ``busctl``, ``gdbus``, ``dbus-send``, dbus-fast and GDBus.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nvmemd.dbus.polkit import AccessPolicy
from nvmemd.registry import Registry

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "data" / "org.nvmemd.Nvmem1.conf"
SYSTEM_CONF = Path("/usr/share/dbus-1/system.conf")
SYS_PYTHON = "/usr/bin/python3"
CLIENTS = Path(__file__).resolve().parent / "clients"
NAME = "org.nvmemd.Nvmem1"
ROOT = "/org/nvmemd/Nvmem1"
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
#: Root without any capability, as nvmemd.service runs (CapabilityBoundingSet=): no
#: CAP_DAC_OVERRIDE, so a directory at mode 000 is out of its reach too.
WITHOUT_CAPABILITIES = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
#: Every wait in these tests is bounded.
TIMEOUT = 20.0

TEST_POLICY = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- test only: python-dbusmock's polkitd template stands in for polkitd -->
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1"
           send_interface="org.freedesktop.PolicyKit1.Authority"/>
  </policy>
</busconfig>
"""


def missing_tools(*extra: str) -> str | None:
    for tool in ("dbus-daemon", "busctl", "gdbus", "dbus-send", *extra):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if not SYSTEM_CONF.exists():
        return f"{SYSTEM_CONF} missing (package dbus-daemon)"
    return None


def _sub(pattern: str, repl: str, text: str) -> str:
    new, n = re.subn(pattern, repl, text)
    assert n, f"system.conf no longer contains {pattern!r}"
    return new


def private_system_conf(socket: Path, includedir: Path) -> str:
    conf = SYSTEM_CONF.read_text()
    conf = _sub(r"<user>[^<]*</user>", "", conf)
    conf = _sub(r"<fork\s*/>", "", conf)
    conf = _sub(r"<pidfile>[^<]*</pidfile>", "", conf)
    conf = _sub(r"<syslog\s*/>", "", conf)
    conf = _sub(r"<standard_system_servicedirs\s*/>", "", conf)
    conf = _sub(r"<servicehelper>[^<]*</servicehelper>", "", conf)
    conf = _sub(r"<listen>[^<]*</listen>", f"<listen>unix:path={socket}</listen>", conf)
    conf = re.sub(r"<include\b[^>]*>[^<]*</include>", "", conf)
    conf = re.sub(r"<includedir>[^<]*</includedir>", "", conf)
    return _sub(r"</busconfig>", f"<includedir>{includedir}</includedir>\n</busconfig>", conf)


@dataclass
class PrivateBus:
    address: str
    tmp: Path
    proc: subprocess.Popen[str]

    @classmethod
    def start(cls) -> PrivateBus:
        # Not under pytest's tmp_path (0700): nobody must reach the socket.
        tmp = Path(tempfile.mkdtemp(prefix="nvmemd-bus-"))
        tmp.chmod(0o755)
        includedir = tmp / "system.d"
        includedir.mkdir()
        shutil.copy(POLICY, includedir / POLICY.name)
        (includedir / "test-polkit-mock.conf").write_text(TEST_POLICY)
        conf = tmp / "system.conf"
        conf.write_text(private_system_conf(tmp / "bus", includedir))
        proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        if not address:
            proc.kill()
            raise RuntimeError(f"dbus-daemon did not start: {proc.communicate()[1]}")
        return cls(address, tmp, proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def has_owner(self, name: str = NAME) -> bool:
        r = subprocess.run(["busctl", f"--address={self.address}", "call", "org.freedesktop.DBus",
                            "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
                            "s", name], capture_output=True, text=True, timeout=TIMEOUT)
        return r.stdout.strip() == "b true"

    def wait_owner(self, name: str = NAME, present: bool = True,
                   proc: subprocess.Popen[Any] | None = None) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.has_owner(name) == present:
                return
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before {name} "
                                   f"{'appeared' if present else 'vanished'}")
            time.sleep(0.05)
        raise TimeoutError(f"{name} {'never appeared' if present else 'did not go away'}")


@dataclass
class Daemon:
    """``python -m nvmemd.daemon`` as a subprocess; its log is kept in a file."""

    bus: PrivateBus
    proc: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = field(default=False)

    @classmethod
    def start(cls, bus: PrivateBus, args: Sequence[str], log_path: Path,
              prefix: Sequence[str] = (), env: dict[str, str] | None = None,
              wait: bool = True) -> Daemon:
        full_env = dict(os.environ)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("WATCHDOG_USEC", None)
        full_env.pop("JOURNAL_STREAM", None)
        full_env["PYTHONPATH"] = str(REPO)
        full_env.update(env or {})
        log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "nvmemd.daemon", "--address", bus.address,
             "--log-level", "debug", *args],
            stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=REPO)
        log.close()
        daemon = cls(bus, proc, log_path)
        if wait:
            try:
                bus.wait_owner(proc=proc)
            except Exception:
                daemon.stop(check=False)
                raise RuntimeError("nvmemd did not start:\n" + daemon.log()) from None
        return daemon

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, check: bool = True) -> int:
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise AssertionError("nvmemd ignored SIGTERM:\n" + self.log()) from None
        if check:
            assert self.proc.returncode == 0, self.log()
            assert "Traceback" not in self.log(), self.log()
        return self.proc.returncode

    # --- clients -----------------------------------------------------------------------

    def busctl(self, *args: str, nobody: bool = False, check: bool = True
               ) -> subprocess.CompletedProcess[str]:
        prefix = AS_NOBODY if nobody else []
        r = subprocess.run([*prefix, "busctl", f"--address={self.bus.address}", *args],
                           capture_output=True, text=True, timeout=TIMEOUT, cwd="/")
        if check:
            assert r.returncode == 0, (args, r.stderr)
        return r

    def busctl_json(self, *args: str, nobody: bool = False) -> Any:
        r = self.busctl("--json=short", *args, nobody=nobody)
        return json.loads(r.stdout) if r.stdout.strip() else {"data": []}

    def call(self, path: str, iface: str, method: str, sig: str = "", *args: str,
             nobody: bool = False) -> Any:
        """busctl call → the decoded reply body (list), errors as AssertionError."""
        cargs = ["call", NAME, path, iface, method]
        if sig:
            cargs += [sig, *args]
        return self.busctl_json(*cargs, nobody=nobody)["data"]

    def call_error(self, path: str, iface: str, method: str, sig: str = "", *args: str,
                   nobody: bool = False) -> tuple[str, str]:
        """A call that must fail: (D-Bus error name, message), via gdbus."""
        prefix = AS_NOBODY if nobody else []
        cmd = [*prefix, "gdbus", "call", "--address", self.bus.address, "--dest", NAME,
               "--object-path", path, "--method", f"{iface}.{method}", *_gdbus_args(sig, args)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd="/")
        assert r.returncode != 0, (cmd, r.stdout)
        m = re.search(r"GDBus\.Error:([\w.]+): (.*)", r.stderr, re.S)
        assert m, r.stderr
        return m.group(1), m.group(2).strip()

    def query(self, *args: str, nobody: bool = False) -> subprocess.CompletedProcess[bytes]:
        """nvmemd-query over this bus."""
        prefix = AS_NOBODY if nobody else []
        return subprocess.run(
            [*prefix, sys.executable, "-m", "nvmemd.cli", "--address", self.bus.address,
             *args], capture_output=True, timeout=TIMEOUT * 3, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)})


def _gdbus_args(sig: str, args: Sequence[str]) -> list[str]:
    out = []
    for kind, value in zip(sig, args, strict=False):
        if kind == "s":
            out.append(json.dumps(value))  # a GVariant string literal
        elif kind in "tu":
            out.append(f"uint64 {value}" if kind == "t" else f"uint32 {value}")
        else:
            out.append(value)
    return out


def direct_query(sysroot: Path, *args: str, config: Path | None = None
                 ) -> subprocess.CompletedProcess[bytes]:
    extra = ["--config", str(config)] if config else []
    return subprocess.run(
        [sys.executable, "-m", "nvmemd.cli", "--sysroot", str(sysroot), *extra, "--direct",
         *args], capture_output=True, timeout=TIMEOUT * 3, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})


def managed_objects(daemon: Daemon, nobody: bool = False) -> dict[str, dict[str, Any]]:
    """GetManagedObjects via busctl, properties unwrapped from their variants."""
    (objects,) = daemon.call(ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                             nobody=nobody)
    return {path: {iface: {k: v["data"] for k, v in props.items()}
                   for iface, props in ifaces.items()}
            for path, ifaces in objects.items()}


def assert_no_internals(message: str, sysroot: Path) -> None:
    """What a D-Bus caller or a CLI user reads names no internals: no traceback, no Python
    class name, no host path (the sysroot, /tmp, the checkout, site-packages)."""
    assert "Traceback" not in message and "File \"" not in message, message
    assert not re.search(r"\b[A-Z]\w*(Error|Exception)\b", message), message
    assert not re.search(r"\b(KeyError|ValueError|TypeError|OSError|AttributeError)\b",
                         message), message
    for leak in (str(sysroot), "/tmp/", "/work/", "/root/", "site-packages", ".py"):
        assert leak not in message, (leak, message)


class StaticState:
    """The daemon state a :class:`nvmemd.dbus.service.Service` serves, for in-process tests:
    one registry, access for uid 0 only, a reload that does nothing."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.access = AccessPolicy(())

    async def reload(self) -> None:
        pass
