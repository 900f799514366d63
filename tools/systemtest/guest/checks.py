"""System test checks, run inside the booted Debian arm64 guest with Debian's /usr/bin/python3.

The host (tools/systemtest/run.py) shares /run/systest: in/ holds nvmemd.deb, config.json and
the expected CLI outputs; out/ gets results.txt (one line per check: `PASS name`,
`FAIL name: why`, `XFAIL name: why`, `XPASS name`), journal.txt, security.txt and the
per-check logs. Phase 1 runs after the first boot; if a selected check needs a boot with the
package installed, the guest reboots once (qemu keeps the snapshot) and runs phase 2.

A check declared with `pending="why"` depends on product work that has not landed: it is
reported as XFAIL/XPASS and never fails the run (there are none today).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/run/systest")
IN, OUT = ROOT / "in", ROOT / "out"
STATE = Path("/var/lib/systest")
CONFIG: dict = json.loads((IN / "config.json").read_text())
BUS = "org.nvmemd.Nvmem1"
ROOT_PATH = "/org/nvmemd/Nvmem1"
IFACE = "org.nvmemd.Nvmem1"
NVMEM = Path("/sys/bus/nvmem/devices")
USER, GROUP_USER, POLKIT_USER = "st-nobody", "st-group", "st-polkit"
READ_GROUP = "nvmem-readers"
SYSTEM_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}


class CheckFailed(Exception):
    pass


def sh(cmd: list[str] | str, check: bool = True, timeout: float = 120,
       input: str | None = None, env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    """Run a command (a list, or a string for /bin/sh), logged to out/commands.log."""
    args = cmd if isinstance(cmd, list) else ["/bin/sh", "-c", cmd]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input,
                       env=env or SYSTEM_ENV)
    with open(OUT / "commands.log", "a") as log:
        log.write(f"$ {cmd if isinstance(cmd, str) else ' '.join(cmd)}\n[{r.returncode}]\n"
                  f"{r.stdout[-3000:]}{r.stderr[-3000:]}\n")
    if check and r.returncode != 0:
        raise CheckFailed(f"{args[0] if isinstance(cmd, list) else cmd!r} exited "
                          f"{r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}")
    return r


def expect(cond: bool, why: str) -> None:
    if not cond:
        raise CheckFailed(why)


def wait_for(pred: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(step)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def unit_prop(unit: str, prop: str) -> str:
    return sh(["systemctl", "show", "-P", prop, unit]).stdout.strip()


def as_user(user: str, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """cmd as an unprivileged user, with that user's groups (runuser, no PAM session)."""
    return sh(["runuser", "-u", user, "--", *cmd], check=False)


# ---------------------------------------------------------------------------------------------
# the kernel's cells and the daemon's objects


def kernel_cells() -> dict[tuple[str, str], bytes]:
    """(provider, sysfs cell name) -> bytes, from /sys/bus/nvmem/devices/*/cells/*."""
    cells = {}
    for dev in sorted(NVMEM.iterdir()):
        cdir = dev / "cells"
        if cdir.is_dir():
            for c in sorted(cdir.iterdir()):
                try:
                    cells[(dev.name, c.name)] = c.read_bytes()
                except OSError as e:
                    cells[(dev.name, c.name)] = f"<{e.strerror}>".encode()
    return cells


def gio():  # type: ignore[no-untyped-def]
    import gi

    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib

    return Gio, GLib


def managed_objects() -> dict[str, dict[str, dict]]:
    Gio, GLib = gio()
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    reply = bus.call_sync(BUS, ROOT_PATH, "org.freedesktop.DBus.ObjectManager",
                          "GetManagedObjects", None, GLib.VariantType("(a{oa{sa{sv}}})"),
                          Gio.DBusCallFlags.NONE, 30000, None)
    return dict(reply.unpack()[0])


def bus_cells() -> dict[tuple[str, str], str]:
    """(provider name, sysfs cell name) -> cell object path, from GetManagedObjects."""
    objs = managed_objects()
    prov_names = {p: i[f"{IFACE}.Provider"]["Name"] for p, i in objs.items()
                  if f"{IFACE}.Provider" in i}
    cells = {}
    for path, ifaces in objs.items():
        cell = ifaces.get(f"{IFACE}.Cell")
        if cell is not None:
            cells[(prov_names.get(cell["Provider"], cell["Provider"]), cell["SysfsName"])] = path
    return cells


def gdbus_read(path: str) -> bytes:
    Gio, GLib = gio()
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    reply = bus.call_sync(BUS, path, f"{IFACE}.Cell", "Read", None, GLib.VariantType("(ay)"),
                          Gio.DBusCallFlags.NONE, 30000, None)
    return bytes(reply.unpack()[0])


def busctl_read(path: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["busctl", "--system", "call", BUS, path, f"{IFACE}.Cell", "Read"]
    return as_user(user, cmd) if user else sh(cmd, check=False)


def busctl_bytes(out: str) -> bytes:
    """`ay 3 1 2 3` -> bytes."""
    parts = out.split()
    expect(len(parts) >= 2 and parts[0] == "ay", f"unexpected busctl output {out!r}")
    return bytes(int(x) for x in parts[2:])


def wait_bus_matches_kernel(timeout: float = 30) -> dict[tuple[str, str], str]:
    """Every kernel cell is on the bus (after boot or hotplug the daemon may still rescan)."""
    sh(["udevadm", "settle", "--timeout=30"], check=False)
    last: list[str] = []

    def ok() -> bool:
        nonlocal last
        try:
            on_bus = bus_cells()
        except Exception as e:  # the daemon may be restarting
            last = [str(e)]
            return False
        last = [f"{p}:{c}" for (p, c) in kernel_cells() if (p, c) not in on_bus]
        return not last

    try:
        wait_for(ok, timeout, "the kernel's cells on the bus")
    except CheckFailed as e:
        raise CheckFailed(f"{e}; missing: {', '.join(last)}") from None
    return bus_cells()


def first_cell(root_only: bool) -> tuple[str, str, bytes]:
    """(provider, sysfs name, bytes) of a kernel cell of a root-only / world-readable
    provider (by the mode of its nvmem file)."""
    for (prov, name), value in kernel_cells().items():
        mode = (NVMEM / prov / "nvmem").stat().st_mode
        if bool(mode & 0o004) != root_only and not value.startswith(b"<"):
            return prov, name, value
    raise CheckFailed(f"the board has no {'root-only' if root_only else 'world-readable'} cell")


def first_cell_named(cell: str, root_only: bool) -> tuple[str, str, bytes]:
    """The board-id region's cell *cell* (a world-readable rmem provider's fixed layout)."""
    for (prov, name), value in kernel_cells().items():
        mode = (NVMEM / prov / "nvmem").stat().st_mode
        if name.startswith(f"{cell}@") and bool(mode & 0o004) != root_only \
                and (NVMEM / prov / "of_node" / "nvmem-layout" / "compatible").exists() \
                and b"fixed-layout" in (NVMEM / prov / "of_node" / "nvmem-layout" /
                                        "compatible").read_bytes():
            return prov, name, value
    raise CheckFailed(f"no {cell} cell in a fixed layout")


# ---------------------------------------------------------------------------------------------
# checks

@dataclass
class Check:
    name: str
    fn: Callable[[], None]
    phase: int = 1
    pending: str = ""      # why it is expected to fail today (XFAIL), "" for required checks


CHECKS: list[Check] = []


def check(name: str, phase: int = 1, pending: str = "") -> Callable[[Callable[[], None]],
                                                                    Callable[[], None]]:
    def deco(fn: Callable[[], None]) -> Callable[[], None]:
        CHECKS.append(Check(name, fn, phase, pending))
        return fn
    return deco


@check("install")
def c_install() -> None:
    """dpkg -i of the .deb, offline (every dependency is in the image)."""
    sh(["udevadm", "settle", "--timeout=60"], check=False)
    sh(["dpkg", "-i", str(IN / "nvmemd.deb")], timeout=300,
       env=SYSTEM_ENV | {"DEBIAN_FRONTEND": "noninteractive"})
    version = sh(["dpkg-query", "-W", "-f=${Version} ${db:Status-Status}", "nvmemd"]).stdout
    expect(version == f"{CONFIG['version']} installed", f"dpkg-query says {version!r}")
    files = set(sh(["dpkg-query", "-L", "nvmemd"]).stdout.splitlines())
    for f in ("/usr/bin/nvmemd", "/usr/bin/nvmemd-query", "/lib/systemd/system/nvmemd.service",
              "/lib/systemd/system/nvmemd-wait@.service",
              "/usr/share/dbus-1/system.d/org.nvmemd.Nvmem1.conf",
              "/usr/share/dbus-1/system-services/org.nvmemd.Nvmem1.service",
              "/usr/share/polkit-1/actions/org.nvmemd.Nvmem1.policy", "/etc/nvmemd/nvmemd.toml",
              "/usr/share/doc/nvmemd/examples/nvmemd-set-mac@.service"):
        expect(f in files and Path(f).exists(), f"{f} not installed")
    expect(sh(["systemctl", "is-enabled", "nvmemd.service"], check=False).stdout.strip()
           == "enabled", "nvmemd.service not enabled by the postinst")
    expect(not list(Path("/etc/systemd/system").rglob("nvmemd-wait@*")),
           "the postinst enabled an nvmemd-wait@ instance")


@check("debian-python")
def c_debian_python() -> None:
    """The installed scripts run on Debian's python3 with Debian's python3-* packages."""
    for script in ("/usr/bin/nvmemd", "/usr/bin/nvmemd-query"):
        first = Path(script).read_text().splitlines()[0]
        expect(first in ("#! /usr/bin/python3", "#!/usr/bin/python3"), f"{script}: {first}")
    v = sh(["/usr/bin/nvmemd-query", "--version"])
    expect(CONFIG["version"] in v.stdout, f"--version: {v.stdout.strip()}")
    h = sh(["/usr/bin/nvmemd", "--help"])
    expect("--sysroot" in h.stdout, "nvmemd --help does not mention --sysroot")


@check("units-verify")
def c_units_verify() -> None:
    units = ["/lib/systemd/system/nvmemd.service", "/lib/systemd/system/nvmemd-wait@.service"]
    # --man=no: the image has no man-db (a minbase system, as many boards); the man pages
    # the units name are checked in the .deb's file list on the host (tests/test_packaging.py)
    r = sh(["systemd-analyze", "verify", "--man=no", *units], check=False)
    expect(r.returncode == 0 and r.stderr == "", f"verify: {r.returncode} {r.stderr.strip()}")


@check("installed-cli-fixtures")
def c_cli_fixtures() -> None:
    """/usr/bin/nvmemd-query == the host venv's nvmemd-query, byte for byte, on every
    real-kernel recording (expected outputs computed on the host by run.py)."""
    fx = IN / "fixtures"
    diffs = []
    expect(bool(CONFIG["fixtures"]), "no fixtures passed in")
    for name in CONFIG["fixtures"]:
        sysroot = Path(CONFIG["fixture_root"]) / name
        sysroot.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fx / f"{name}.tar.gz") as tar:
            # (Debian's 3.11.2 has the extraction filters only with its security updates)
            if hasattr(tarfile, "tar_filter"):
                tar.extractall(sysroot, filter="tar")
            else:
                tar.extractall(sysroot)
        for args in CONFIG["cli_commands"]:
            r = subprocess.run(["/usr/bin/nvmemd-query", "--sysroot", str(sysroot), "--direct",
                                *args], capture_output=True, env=SYSTEM_ENV, timeout=120)
            tag = f"{name}.{args[0]}"
            want = ((fx / f"{tag}.stdout").read_bytes(), (fx / f"{tag}.stderr").read_bytes(),
                    int((fx / f"{tag}.rc").read_text()))
            if (r.stdout, r.stderr, r.returncode) != want:
                diffs.append(tag)
                (OUT / f"cli-{tag}.stdout").write_bytes(r.stdout)
                (OUT / f"cli-{tag}.stderr").write_bytes(r.stderr)
    expect(not diffs, f"output differs from the venv's for {', '.join(diffs)} "
                      "(guest outputs in out/cli-*)")


@check("service-ready")
def c_service_ready() -> None:
    """nvmemd.service active, Type=notify readiness reached, the bus name owned."""
    sh(["udevadm", "settle", "--timeout=60"], check=False)
    sh(["systemctl", "is-system-running", "--wait"], check=False, timeout=180)
    wait_for(lambda: unit_prop("nvmemd.service", "ActiveState") == "active", 60,
             "nvmemd.service active")
    expect(unit_prop("nvmemd.service", "Type") == "notify", "Type is not notify")
    expect(unit_prop("nvmemd.service", "SubState") == "running", "SubState is not running")
    status = unit_prop("nvmemd.service", "StatusText")
    expect(bool(status), "no STATUS= from the daemon")
    owner = sh(["busctl", "--system", "status", BUS]).stdout
    pid = unit_prop("nvmemd.service", "MainPID")
    expect(f"PID={pid}" in owner, f"{BUS} is not owned by MainPID {pid}")


@check("sandbox")
def c_sandbox() -> None:
    """The unit's sandbox is really applied to the running daemon."""
    pid = unit_prop("nvmemd.service", "MainPID")
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    expect(fields["CapEff"].strip() == "0000000000000000", f"CapEff {fields['CapEff']}")
    expect(fields["CapBnd"].strip() == "0000000000000000", f"CapBnd {fields['CapBnd']}")
    expect(fields["NoNewPrivs"].strip() == "1", "NoNewPrivs not set")
    expect(fields["Seccomp"].strip() == "2", "no seccomp filter")
    mounts = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    root = [m for m in mounts if m.split()[4] == "/"]
    expect(bool(root) and " ro" in " " + root[-1].split()[5].replace(",", " "),
           "/ is not read-only for the daemon (ProtectSystem=strict)")
    devs = os.listdir(f"/proc/{pid}/root/dev")
    expect("vda" not in devs and "null" in devs, f"PrivateDevices not in effect: {devs}")
    expect("AF_NETLINK" in unit_prop("nvmemd.service", "RestrictAddressFamilies"),
           "RestrictAddressFamilies lacks AF_NETLINK")
    # a udev monitor netlink socket (NETLINK_KOBJECT_UEVENT = 15) is open in the daemon
    netlink = Path("/proc/net/netlink").read_text().splitlines()[1:]
    inodes = {ln.split()[-1] for ln in netlink if ln.split()[1] == "15"}
    fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    expect(any(f"socket:[{i}]" in fds for i in inodes), "no uevent netlink socket in nvmemd")


@check("security-exposure")
def c_security() -> None:
    r = sh(["systemd-analyze", "security", "--no-pager", "nvmemd.service"], check=False)
    (OUT / "security.txt").write_text(r.stdout + r.stderr)
    m = re.search(r"Overall exposure level for nvmemd.service: ([0-9.]+) (\S+)", r.stdout)
    expect(m is not None, "no exposure level in systemd-analyze security's output")
    assert m is not None
    print(f"systest: live exposure {m.group(1)} {m.group(2)}", flush=True)
    expect(float(m.group(1)) <= 2.0, f"exposure {m.group(1)} {m.group(2)} (> 2.0)")


@check("cells-busctl")
def c_cells_busctl() -> None:
    on_bus = wait_bus_matches_kernel()
    bad = []
    for key, value in kernel_cells().items():
        r = busctl_read(on_bus[key])
        if r.returncode != 0 or busctl_bytes(r.stdout) != value:
            bad.append(f"{key[0]}:{key[1]} ({r.stdout.strip() or r.stderr.strip()})")
    expect(not bad, "differ: " + "; ".join(bad))


@check("cells-gdbus")
def c_cells_gdbus() -> None:
    on_bus = wait_bus_matches_kernel()
    bad = [f"{p}:{c}" for (p, c), v in kernel_cells().items() if gdbus_read(on_bus[p, c]) != v]
    expect(not bad, "differ (python3-gi GDBus): " + ", ".join(bad))
    # and the gdbus tool, for one cell
    (prov, name), value = next(iter(kernel_cells().items()))
    r = sh(["gdbus", "call", "--system", "--dest", BUS, "--object-path", on_bus[prov, name],
            "--method", f"{IFACE}.Cell.Read"])
    got = bytes(int(x, 0) for x in re.findall(r"0x[0-9a-f]+|\b\d+\b", r.stdout))
    expect(got == value, f"gdbus call gave {r.stdout.strip()}")


@check("cells-query")
def c_cells_query() -> None:
    wait_bus_matches_kernel()
    kernel = kernel_cells()
    for mode in ([], ["--direct"]):
        out = sh(["nvmemd-query", *mode, "cells", "--json"]).stdout
        got = {(c["provider"], c["sysfs_name"]): c.get("value") for c in json.loads(out)}
        bad = [f"{p}:{n}" for (p, n), v in kernel.items() if got.get((p, n)) != v.hex()]
        expect(not bad, f"nvmemd-query {' '.join(mode)} cells: differ: {', '.join(bad)}")
    # one cell by PROVIDER:NAME through the daemon
    prov, name, value = first_cell(root_only=False)
    r = sh(["nvmemd-query", "get", f"{prov}:{name.split('@')[0]}", "--format", "hex"])
    expect(r.stdout.strip() == value.hex(), f"get {prov}:{name}: {r.stdout.strip()}")


@check("verify")
def c_verify() -> None:
    wait_bus_matches_kernel()
    r = sh(["nvmemd-query", "verify"], check=False)
    (OUT / "verify.txt").write_text(r.stdout + r.stderr)
    expect(r.returncode == 0, f"nvmemd-query verify exited {r.returncode}: "
                              f"{(r.stdout + r.stderr).strip()[-500:]}")
    b = sh(["busctl", "--system", "--json=short", "call", BUS, ROOT_PATH, f"{IFACE}.Manager",
            "Verify"])
    checked, _skipped, differences, _findings = json.loads(b.stdout)["data"]
    expect(bool(checked) and not differences, f"Manager.Verify: differences {differences}")


def _ensure_users() -> None:
    sh(f"getent group {READ_GROUP} >/dev/null || groupadd --system {READ_GROUP}")
    for user in (USER, GROUP_USER, POLKIT_USER):
        sh(f"id {user} >/dev/null 2>&1 || useradd --no-create-home --shell /bin/sh {user}")
    sh(["usermod", "-a", "-G", READ_GROUP, GROUP_USER])


def _read_as(user: str, root_only: bool) -> tuple[subprocess.CompletedProcess[str], bytes]:
    on_bus = wait_bus_matches_kernel()
    prov, name, value = first_cell(root_only)
    return busctl_read(on_bus[prov, name], user), value


@check("access-unprivileged")
def c_access_unprivileged() -> None:
    _ensure_users()
    r, value = _read_as(USER, root_only=False)
    expect(r.returncode == 0 and busctl_bytes(r.stdout) == value,
           f"world-readable cell: {r.stdout.strip()} {r.stderr.strip()}")
    r, _ = _read_as(USER, root_only=True)
    expect(r.returncode != 0 and "permission denied" in r.stderr.lower(),
           f"root-only cell readable by {USER}: {r.stdout.strip()} {r.stderr.strip()}")
    prov, name, _ = first_cell(root_only=True)
    q = as_user(USER, ["nvmemd-query", "get", f"{prov}:{name.split('@')[0]}"])
    expect(q.returncode == 4, f"nvmemd-query as {USER}: exit {q.returncode}, {q.stderr.strip()}")


@check("access-group")
def c_access_group() -> None:
    _ensure_users()
    conf = Path("/etc/nvmemd/nvmemd.toml")
    saved = conf.read_text()
    try:
        conf.write_text(saved + f'\n[access]\ngroups = ["{READ_GROUP}"]\n'
                        if "[access]" not in saved else
                        saved.replace("[access]", f'[access]\ngroups = ["{READ_GROUP}"]', 1))
        sh(["systemctl", "reload", "nvmemd.service"])
        r, value = _read_as(GROUP_USER, root_only=True)
        expect(r.returncode == 0 and busctl_bytes(r.stdout) == value,
               f"{GROUP_USER} in {READ_GROUP}: {r.stdout.strip()} {r.stderr.strip()}")
        r, _ = _read_as(USER, root_only=True)
        expect(r.returncode != 0, f"{USER} (not in the group) can read a root-only cell")
    finally:
        conf.write_text(saved)
        sh(["systemctl", "reload", "nvmemd.service"], check=False)


@check("access-polkit")
def c_access_polkit() -> None:
    _ensure_users()
    rule = Path("/etc/polkit-1/rules.d/50-nvmemd-systest.rules")
    rule.write_text(
        'polkit.addRule(function(action, subject) {\n'
        f'    if (action.id == "org.nvmemd.Nvmem1.read-protected" && subject.user == '
        f'"{POLKIT_USER}") {{\n'
        '        return polkit.Result.YES;\n    }\n});\n')
    try:
        time.sleep(1)   # polkitd reloads rules on inotify
        r, value = _read_as(POLKIT_USER, root_only=True)
        expect(r.returncode == 0 and busctl_bytes(r.stdout) == value,
               f"{POLKIT_USER} with a polkit rule: {r.stdout.strip()} {r.stderr.strip()}")
    finally:
        rule.unlink()


class SignalLog:
    """ObjectManager signals of org.nvmemd.Nvmem1, received with python3-gi (GDBus)."""

    def __init__(self) -> None:
        Gio, GLib = gio()
        self.ctx = GLib.MainContext.default()
        self.bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
        self.events: list[tuple[str, str, list[str]]] = []
        # sender None: only nvmemd's ObjectManager lives at ROOT_PATH, and a well-known
        # sender name would miss the signals of a restarted daemon
        self.sub = self.bus.signal_subscribe(
            None, "org.freedesktop.DBus.ObjectManager", None, ROOT_PATH, None,
            Gio.DBusSignalFlags.NONE, self._on, None)
        self.pump(0.3)

    def _on(self, _c: object, _s: str, _p: str, _i: str, member: str, params: object,
            _u: object) -> None:
        path, ifaces = params.unpack()[:2]  # type: ignore[attr-defined]
        self.events.append((member, path, list(ifaces)))

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ctx.iteration(False) or time.sleep(0.02)

    def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self.ctx.iteration(False) or time.sleep(0.02)
            if pred():
                return time.monotonic() - t0
        raise CheckFailed(f"no {what} within {timeout:.0f} s (got {self.summary()})")

    def count(self, member: str, iface: str, prefix: str = "") -> int:
        return sum(1 for m, p, i in self.events if m == member and f"{IFACE}.{iface}" in i
                   and p.startswith(prefix))

    def summary(self) -> str:
        return ", ".join(f"{m}({p.rsplit('/', 1)[-1]})" for m, p, _ in self.events[:12]) or "none"

    def close(self) -> None:
        self.bus.signal_unsubscribe(self.sub)


HOTPLUG_TIMEOUT = 15


@check("hotplug-unbind")
def c_hotplug_unbind() -> None:
    """Unbind/bind the rmem platform driver: real remove/add uevents."""
    before = wait_bus_matches_kernel()
    drv = Path("/sys/bus/platform/drivers/rmem")
    devs = sorted(p.name for p in drv.iterdir() if p.is_symlink() and p.name[0].isdigit())
    expect(bool(devs), "no device bound to the rmem driver")
    dev = devs[0]
    provs = [p.name for p in (drv / dev).iterdir() if p.name.startswith("rmem")
             and (NVMEM / p.name).exists()]
    expect(len(provs) == 1, f"{dev}: nvmem providers {provs}")
    prov = provs[0]
    ncells = sum(1 for p, _ in before if p == prov)
    log = SignalLog()
    try:
        (drv / "unbind").write_text(dev)
        took = log.wait(lambda: log.count("InterfacesRemoved", "Provider") >= 1
                        and log.count("InterfacesRemoved", "Cell") >= ncells,
                        HOTPLUG_TIMEOUT, f"InterfacesRemoved for {prov} and its {ncells} cells")
        expect(not any(p == prov for p, _ in bus_cells()), f"{prov}'s cells still on the bus")
        print(f"systest: unbind -> InterfacesRemoved in {took:.2f} s", flush=True)
        log.events.clear()
        (drv / "bind").write_text(dev)
        took = log.wait(lambda: log.count("InterfacesAdded", "Provider") >= 1
                        and log.count("InterfacesAdded", "Cell") >= ncells,
                        HOTPLUG_TIMEOUT, f"InterfacesAdded for {prov} and its {ncells} cells")
        print(f"systest: bind -> InterfacesAdded in {took:.2f} s", flush=True)
    finally:
        log.close()
        if not (drv / dev).exists():
            (drv / "bind").write_text(dev)
    after = wait_bus_matches_kernel()
    # the provider comes back under a new name (NVMEM_DEVID_AUTO): compare the cell names
    names_before = sorted(c for _, c in before)
    names_after = sorted(c for _, c in after)
    expect(names_after == names_before, f"cells after bind: {names_after} != {names_before}")
    bad = [f"{p}:{c}" for (p, c), v in kernel_cells().items() if gdbus_read(after[p, c]) != v]
    expect(not bad, f"bytes differ after bind: {bad}")


def onie_provider() -> str:
    """The provider whose DT node has an onie,tlv-layout (sysfs, not nvmemd)."""
    for dev in sorted(NVMEM.iterdir()):
        compat = dev / "of_node" / "nvmem-layout" / "compatible"
        if compat.exists() and b"onie,tlv-layout" in compat.read_bytes():
            return dev.name
    raise CheckFailed("no provider with an onie,tlv-layout")


def onie_cells() -> set[tuple[str, str]]:
    prov = onie_provider()
    return {k for k in bus_cells() if k[0] == prov}


@check("hotplug-layout-module")
def c_hotplug_layout() -> None:
    """Unload/load the ONIE TLV layout module (autoloaded at boot for the rmem region with
    an onie,tlv-layout).  nvmemd decodes layouts itself, so its ONIE cells do not depend on
    the kernel module (README: a kernel without layout modules shows fewer cells than
    nvmemd): the module's nvmem-layout unbind/bind uevents reach the daemon, which rescans
    the provider, and every ONIE cell stays on the bus with the same bytes throughout."""
    wait_bus_matches_kernel()
    expect(Path("/sys/module/onie_tlv").exists(), "onie_tlv was not autoloaded")
    onie = onie_cells()
    expect(bool(onie), "no ONIE TLV cells on the bus")

    def values() -> dict[tuple[str, str], str]:
        paths = bus_cells()
        return {key: busctl_read(paths[key]).stdout for key in onie}
    before = values()
    since = sh(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    try:
        sh(["modprobe", "-r", "onie_tlv"])
        wait_for(lambda: not Path("/sys/module/onie_tlv").exists(), HOTPLUG_TIMEOUT,
                 "onie_tlv unloaded")
        expect(onie_cells() == onie, "ONIE cells changed without the layout module")
        expect(values() == before, "ONIE cell bytes changed without the layout module")
        sh(["modprobe", "onie_tlv"])
    finally:
        sh(["modprobe", "onie_tlv"], check=False)

    def rescanned() -> bool:
        journal = sh(["journalctl", "-u", "nvmemd.service", "--since", since, "-o", "cat"],
                     check=False).stdout
        return "nvmem-layout" in journal or unit_prop("nvmemd.service", "StatusText") != ""
    wait_for(rescanned, HOTPLUG_TIMEOUT, "nvmemd saw the nvmem-layout uevents")
    wait_for(lambda: onie_cells() == onie, HOTPLUG_TIMEOUT, "the same ONIE cells after reload")
    expect(unit_prop("nvmemd.service", "ActiveState") == "active", "nvmemd not active")


@check("reload")
def c_reload() -> None:
    pid = unit_prop("nvmemd.service", "MainPID")
    sh(["systemctl", "reload", "nvmemd.service"], timeout=60)
    expect(unit_prop("nvmemd.service", "ActiveState") == "active", "not active after reload")
    expect(unit_prop("nvmemd.service", "MainPID") == pid, "reload restarted the daemon")
    wait_bus_matches_kernel()


@check("sigkill-restart")
def c_sigkill() -> None:
    pid = unit_prop("nvmemd.service", "MainPID")
    sh(["systemctl", "kill", "--signal=SIGKILL", "nvmemd.service"])

    def back() -> bool:
        return (unit_prop("nvmemd.service", "ActiveState") == "active"
                and unit_prop("nvmemd.service", "MainPID") not in (pid, "0"))
    wait_for(back, 30, "nvmemd.service restarted after SIGKILL (Restart=on-failure)")
    expect(int(unit_prop("nvmemd.service", "NRestarts")) >= 1, "NRestarts is 0")
    wait_bus_matches_kernel()


@check("dbus-activation")
def c_activation() -> None:
    sh(["systemctl", "stop", "nvmemd.service"], timeout=120)
    expect(unit_prop("nvmemd.service", "ActiveState") == "inactive", "not inactive after stop")
    r = sh(["busctl", "--system", "--timeout=120", "call", BUS, ROOT_PATH,
            "org.freedesktop.DBus.Peer", "Ping"], timeout=150)
    expect(r.returncode == 0, "activation call failed")
    expect(unit_prop("nvmemd.service", "ActiveState") == "active",
           "nvmemd.service not active after a bus call")
    wait_bus_matches_kernel()


@check("stop-clean")
def c_stop_clean() -> None:
    """systemctl stop: the daemon exits on SIGTERM well within TimeoutStopSec."""
    timeout = unit_prop("nvmemd.service", "TimeoutStopUSec")
    t0 = time.monotonic()
    sh(["systemctl", "stop", "nvmemd.service"], timeout=200)
    took = time.monotonic() - t0
    result = unit_prop("nvmemd.service", "Result")
    expect(result == "success", f"Result={result} after stop")
    expect(took < 10, f"stop took {took:.1f} s (TimeoutStopSec {timeout})")
    sh(["systemctl", "start", "nvmemd.service"], timeout=120)


# --- phase 2: after a reboot with the package installed ------------------------------------

def nic() -> str:
    """The virtio-net interface that is the DT consumer of the board's mac-address cell."""
    for dev in sorted(Path("/sys/class/net").iterdir()):
        if (dev / "device" / "of_node").exists():
            return dev.name
    raise CheckFailed("no network interface with a device-tree node "
                      f"({sorted(p.name for p in Path('/sys/class/net').iterdir())})")


def prepare_boot_jobs() -> None:
    """Before the reboot: enable the set-MAC example for the DT consumer NIC."""
    ifname = nic()
    src = Path("/usr/share/doc/nvmemd/examples/nvmemd-set-mac@.service")
    Path("/etc/systemd/system/nvmemd-set-mac@.service").write_text(src.read_text())
    sh(["systemctl", "enable", f"nvmemd-set-mac@{ifname}.service"])
    (STATE / "nic").write_text(ifname)
    # The rmem provider is a module that udev loads, possibly after the NIC appeared: the
    # drop-in the example's comment teaches, with its PROVIDER/NAME instance form.
    prov, name, _ = first_cell_named("mac-address", root_only=False)
    inst = sh(["systemd-escape", f"{prov}/{name.split('@')[0]}"]).stdout.strip()
    dropin = Path(f"/etc/systemd/system/nvmemd-set-mac@{ifname}.service.d/wait.conf")
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(f"[Unit]\nRequires=nvmemd-wait@{inst}.service\n"
                      f"After=nvmemd-wait@{inst}.service\n")
    (STATE / "wait-instance").write_text(inst)


def monotonic_us(unit: str, prop: str) -> int:
    return int(unit_prop(unit, f"{prop}Monotonic") or 0)


@check("boot-set-mac", phase=2)
def c_boot_set_mac() -> None:
    ifname = (STATE / "nic").read_text()
    unit = f"nvmemd-set-mac@{ifname}.service"
    result = unit_prop(unit, "Result")
    state = unit_prop(unit, "ActiveState")
    expect(state == "active" and result == "success",
           f"{unit}: {state}/{result}: {sh(['journalctl', '-b', '-u', unit], check=False).stdout}")
    addr = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
    expect(addr == CONFIG["board_mac"], f"{ifname} has {addr}, the cell says "
                                        f"{CONFIG['board_mac']}")
    done = monotonic_us(unit, "ExecMainExitTimestamp") or monotonic_us(unit, "ActiveEnterTimestamp")
    pre = monotonic_us("network-pre.target", "ActiveEnterTimestamp")
    expect(0 < done <= pre, f"{unit} finished at {done} us, network-pre.target reached at {pre}")


@check("shutdown-clean", phase=2)
def c_shutdown_clean() -> None:
    """The previous boot's shutdown stopped nvmemd with SIGTERM, within its timeout."""
    j = sh(["journalctl", "-b", "-1", "--no-pager", "-u", "nvmemd.service"]).stdout
    expect("Stopping" in j and ("Deactivated successfully" in j or "Stopped" in j),
           f"no clean stop in the previous boot: {j[-600:]}")
    expect("timed out" not in j and "SIGKILL" not in j.split("Stopping")[-1],
           f"stop timed out: {j[-600:]}")


def c_journal_clean() -> None:
    """No warnings or tracebacks from nvmemd in this boot (beyond the SIGKILL check's)."""
    j = sh(["journalctl", "-b", "--no-pager", "-o", "cat", "_COMM=nvmemd", "+",
            "SYSLOG_IDENTIFIER=nvmemd"]).stdout
    warn = sh(["journalctl", "-b", "--no-pager", "-p", "warning", "-o", "cat",
               "SYSLOG_IDENTIFIER=nvmemd"]).stdout
    bad = [ln for ln in (warn + j).splitlines() if "Traceback" in ln or ln in warn.splitlines()]
    expect(not bad, "nvmemd logged: " + " | ".join(bad[:10]))


CHECKS.append(Check("journal-clean", c_journal_clean, 1))
CHECKS.append(Check("journal-clean-boot2", c_journal_clean, 2))


# --- boot jobs the installed units' comments teach -------------------------------------------


def _wait_instance(spec: str) -> None:
    inst = sh(["systemd-escape", spec]).stdout.strip()
    unit = f"nvmemd-wait@{inst}.service"
    r = sh(["systemctl", "start", unit], check=False, timeout=150)
    state, result = unit_prop(unit, "ActiveState"), unit_prop(unit, "Result")
    j = sh(["journalctl", "-b", "--no-pager", "-o", "cat", "-u", unit], check=False).stdout
    expect(r.returncode == 0 and state == "active",
           f"{unit} ({spec!r}): {state}/{result}: {j.strip()[-300:]}")


@check("wait-unit-provider-slash-name")
def c_wait_slash() -> None:
    """nvmemd-wait@.service's comment: `systemd-escape 'eeprom0/mac-address'`."""
    prov, name, _ = first_cell_named("serial-number", root_only=False)
    _wait_instance(f"{prov}/{name.split('@')[0]}")


@check("wait-unit-provider-colon-name")
def c_wait_colon() -> None:
    """The PROVIDER:NAME form nvmemd-query also accepts."""
    prov, name, _ = first_cell_named("serial-number", root_only=False)
    _wait_instance(f"{prov}:{name.split('@')[0]}")


@check("envfile-example-unit")
def c_envfile() -> None:
    """The environment-file example, installed as its comment says (cp, name the board's
    cells after --env), then read by another unit through EnvironmentFile=."""
    src = Path("/usr/share/doc/nvmemd/examples/nvmemd-board-env.service")
    expect(src.exists(), f"{src} is not installed")
    prov, name, value = first_cell_named("serial-number", root_only=False)
    spec = f"{prov}/{name.split('@')[0]}"
    text = src.read_text()
    start = text.index("--format string ") + len("--format string ")
    end = text.index(" >", start)
    unit = Path("/etc/systemd/system/nvmemd-board-env.service")
    unit.write_text(text[:start] + f"SERIAL={spec}" + text[end:])
    sh(["systemd-analyze", "verify", "--man=no", str(unit)])
    reader = Path("/etc/systemd/system/systest-env-reader.service")
    reader.write_text("[Unit]\nRequires=nvmemd-board-env.service\n"
                      "After=nvmemd-board-env.service\n[Service]\nType=oneshot\n"
                      "EnvironmentFile=/run/nvmemd/board.env\n"
                      "ExecStart=/bin/sh -c 'printf %%s \"$SERIAL\" > /run/systest-serial'\n")
    sh(["systemctl", "daemon-reload"])
    sh(["systemctl", "start", "systest-env-reader.service"], timeout=120)
    env = Path("/run/nvmemd/board.env").read_text()
    expected = value.rstrip(b"\0\xff").decode()
    expect(env.startswith("SERIAL="), f"board.env: {env!r}")
    got = Path("/run/systest-serial").read_text()
    expect(got == expected, f"EnvironmentFile= gave SERIAL={got!r}, the cell says {expected!r}")


# ---------------------------------------------------------------------------------------------

def record(line: str) -> None:
    print(f"systest: {line}", flush=True)
    with open(OUT / "results.txt", "a") as f:
        f.write(line + "\n")


def run_check(c: Check) -> None:
    t0 = time.monotonic()
    try:
        c.fn()
        err = ""
    except CheckFailed as e:
        err = str(e)
    except Exception as e:  # a crash in a check is its failure
        err = f"{type(e).__name__}: {e}"
        (OUT / f"traceback-{c.name}.txt").write_text(traceback.format_exc())
    err = " ".join(err.split())[:1500]
    took = f" ({time.monotonic() - t0:.1f} s)"
    if c.pending:
        record(f"XPASS {c.name}{took}" if not err else f"XFAIL {c.name}: {err} [{c.pending}]")
    else:
        record(f"PASS {c.name}{took}" if not err else f"FAIL {c.name}: {err}")


def selected() -> list[Check]:
    want = CONFIG.get("checks") or []
    if not want:
        return CHECKS
    # a name selects the checks it names or starts (CHECKS=hotplug: both hotplug checks)
    unknown = {w for w in want if not any(c.name.startswith(w) for c in CHECKS)}
    if unknown:
        record(f"FAIL selection: unknown checks {sorted(unknown)} "
               f"(have: {', '.join(c.name for c in CHECKS)})")
    # install is every other check's prerequisite
    return [c for c in CHECKS if c.name in want or c.name == "install"
            or any(w and c.name.startswith(w) for w in want)]


def finish(reboot: bool) -> None:
    sh(["journalctl", "--sync"], check=False)
    (OUT / "journal.txt").write_text(
        sh(["journalctl", "--no-pager", "-o", "short-monotonic"], check=False).stdout)
    if not reboot:
        (OUT / "done").write_text("ok\n")
    os.sync()
    subprocess.run(["systemctl", "reboot" if reboot else "poweroff"], check=False)
    time.sleep(600)


def main() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    phase_file = STATE / "phase"
    phase = int(phase_file.read_text()) if phase_file.exists() else 1
    checks = selected()
    print(f"systest: phase {phase}, {len(checks)} checks", flush=True)
    for c in checks:
        if c.phase == phase:
            run_check(c)
    more = phase == 1 and any(c.phase == 2 for c in checks)
    if more:
        try:
            prepare_boot_jobs()
        except Exception as e:
            record(f"FAIL boot-set-mac: before the reboot: {e}")
            more = False
        phase_file.write_text("2")
    finish(reboot=more)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        record(f"FAIL checks.py: {sys.exc_info()[1]}")
        finish(reboot=False)
