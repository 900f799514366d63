"""systemd units, D-Bus activation and polkit files of nvmemd.

* ``systemd-analyze verify`` on every unit, with the binaries the units run
  replaced by stubs under a temporary directory (the installed units are
  verified as they are, man pages included, in test_packaging.py);
* ``systemd-analyze security --offline=yes``: the daemon's exposure stays at
  or below 2.0;
* the set-MAC example's exact ``ExecStart=`` command line, with systemd's
  specifiers and ``$$`` expanded, run against the demo board with ``ip``
  replaced by a recorder, and the wait template's ``ExecStart=`` likewise.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DAEMON_UNIT = REPO / "systemd" / "nvmemd.service"
WAIT_UNIT = REPO / "systemd" / "nvmemd-wait@.service"
SET_MAC_UNIT = REPO / "examples" / "systemd" / "nvmemd-set-mac@.service"
BOARD_ENV_UNIT = REPO / "examples" / "systemd" / "nvmemd-board-env.service"
UNITS = [DAEMON_UNIT, WAIT_UNIT, SET_MAC_UNIT, BOARD_ENV_UNIT]
ACTIVATION = REPO / "data" / "org.nvmemd.Nvmem1.service"
POLKIT = REPO / "data" / "org.nvmemd.Nvmem1.policy"
POLKIT_DTD = Path("/usr/share/polkit-1/policyconfig-1.dtd")
BUS_NAME = "org.nvmemd.Nvmem1"
MAX_EXPOSURE = 2.0
VENV_BIN = Path(sys.executable).parent

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (package systemd)",
)


# --- unit files as data -------------------------------------------------------------


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as ordered (key, value) lists; keys may repeat."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path}: {raw!r} outside a section"
        assert not line.endswith("\\"), f"{path}: continuation lines are not supported here"
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= given {len(found)} times"
    return found[0]


def expand_exec(line: str, instance: str, runtime_dir: str = "/run") -> list[str]:
    """argv systemd runs for an ``ExecStart=`` line of a template instance.

    In systemd's order: split into words (quotes removed), expand the ``%i``,
    ``%I`` (unescaped instance), ``%t`` (*runtime_dir*) and ``%%`` specifiers in each word, then at
    run time turn ``$$`` into ``$``. Covers what our units use and refuses
    anything else (C escapes, environment variable references).
    """
    assert "\\" not in line, "C escapes in ExecStart= are not handled by this helper"
    assert not re.search(r"\$\{?[A-Za-z_]", line.replace("$$", "")), (
        "environment variable references are not handled by this helper"
    )
    unescaped = subprocess.run(
        ["systemd-escape", "--unescape", "--", instance], capture_output=True, text=True, check=True
    ).stdout.rstrip("\n")

    def specifier(m: re.Match[str]) -> str:
        return {"%": "%", "i": instance, "I": unescaped, "t": runtime_dir}[m.group(1)]

    return [re.sub(r"%(.)", specifier, word).replace("$$", "$") for word in shlex.split(line)]


# --- static checks ------------------------------------------------------------------


def test_daemon_unit_service_settings() -> None:
    unit = parse_unit(DAEMON_UNIT)
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "BusName") == BUS_NAME
    assert one(unit, "Service", "ExecStart") == "/usr/bin/nvmemd"
    assert one(unit, "Service", "Restart") == "on-failure"
    # the start-up errors that a restart cannot mend (nvmemd(8) EXIT STATUS)
    assert one(unit, "Service", "RestartPreventExitStatus").split() == ["2", "4"]
    assert one(unit, "Service", "WatchdogSec") == "3min"
    assert "-HUP" in one(unit, "Service", "ExecReload")  # SIGHUP reloads the configuration


def test_daemon_unit_hardening() -> None:
    unit = parse_unit(DAEMON_UNIT)
    for key, expected in {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_NETLINK",
    }.items():
        assert one(unit, "Service", key) == expected, key
    assert "@system-service" in values(unit, "Service", "SystemCallFilter")
    # udev events are netlink multicasts in the host network namespace only, and
    # a DynamicUser can neither read 0400 nvmem files nor be named in the bus policy.
    for forbidden in ("PrivateNetwork", "DynamicUser", "User", "PrivateUsers", "ProcSubset"):
        assert not values(unit, "Service", forbidden), forbidden


def test_daemon_unit_ordering() -> None:
    unit = parse_unit(DAEMON_UNIT)
    after = " ".join(values(unit, "Unit", "After")).split()
    assert "dbus.socket" in after
    assert "systemd-udevd.service" in after
    assert "dbus.socket" in " ".join(values(unit, "Unit", "Requires")).split()
    # Bus-dependent, so it must not hold up network-pre.target: early consumers
    # go through nvmemd-wait@.service (direct sysfs reads) instead.
    assert "network-pre.target" not in " ".join(values(unit, "Unit", "Before"))
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_wait_template() -> None:
    unit = parse_unit(WAIT_UNIT)
    assert one(unit, "Unit", "DefaultDependencies") == "no"
    assert one(unit, "Service", "Type") == "oneshot"
    assert one(unit, "Service", "RemainAfterExit") == "yes"
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0] == "/usr/bin/nvmemd-query"
    assert "--direct" in argv  # never waits for, or activates, the daemon
    assert argv[argv.index("wait") + 1] == "%I"
    timeout = int(argv[argv.index("--timeout") + 1])
    start_limit = one(unit, "Service", "TimeoutStartSec")
    assert re.fullmatch(r"\d+min", start_limit) and int(start_limit[:-3]) * 60 > timeout
    assert "Install" not in unit  # a template without a default instance is never enabled


def test_set_mac_example_runs_before_network() -> None:
    unit = parse_unit(SET_MAC_UNIT)
    assert one(unit, "Unit", "DefaultDependencies") == "no"
    assert "network-pre.target" in one(unit, "Unit", "Before").split()
    assert one(unit, "Unit", "Wants") == "network-pre.target"
    assert one(unit, "Unit", "BindsTo") == "sys-subsystem-net-devices-%i.device"
    assert one(unit, "Service", "Type") == "oneshot"
    assert one(unit, "Service", "CapabilityBoundingSet") == "CAP_NET_ADMIN"
    assert not values(unit, "Service", "PrivateNetwork")  # must change the host's link


def test_activation_file_matches_unit() -> None:
    unit = parse_unit(ACTIVATION)
    assert ACTIVATION.name == one(unit, "D-BUS Service", "Name") + ".service"
    assert one(unit, "D-BUS Service", "Name") == BUS_NAME
    assert one(unit, "D-BUS Service", "Exec") == "/bin/false"
    assert one(unit, "D-BUS Service", "User") == "root"
    assert one(unit, "D-BUS Service", "SystemdService") == DAEMON_UNIT.name
    assert one(parse_unit(DAEMON_UNIT), "Service", "BusName") == BUS_NAME


def test_polkit_action_defaults() -> None:
    text = POLKIT.read_text()
    assert '<action id="org.nvmemd.Nvmem1.read-protected">' in text
    for key in ("allow_any", "allow_inactive", "allow_active"):
        assert f"<{key}>auth_admin_keep</{key}>" in text


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="xmllint not installed (libxml2-utils)")
@pytest.mark.parametrize(
    "path", [POLKIT, REPO / "data" / "org.nvmemd.Nvmem1.conf"], ids=lambda p: p.name
)
def test_xml_well_formed(path: Path) -> None:
    result = subprocess.run(
        ["xmllint", "--noout", "--nonet", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="xmllint not installed (libxml2-utils)")
@pytest.mark.skipif(not POLKIT_DTD.exists(), reason=f"{POLKIT_DTD} missing (package polkitd)")
def test_polkit_action_valid_against_dtd() -> None:
    result = subprocess.run(
        ["xmllint", "--noout", "--nonet", "--dtdvalid", str(POLKIT_DTD), str(POLKIT)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


# --- systemd-analyze ----------------------------------------------------------------


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    """The unit as shipped, with /usr/bin/nvmemd* pointing at stub executables."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("nvmemd", "nvmemd-query"):
        stub = stubs / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    text = unit.read_text()
    text = re.sub(r"/usr/bin/(nvmemd(?:-query)?)\b", lambda m: str(stubs / m.group(1)), text)
    copy = tmp_path / unit.name
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def exposure(unit: Path) -> float:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True, text=True,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert m, result.stdout + result.stderr
    return float(m.group(1))


@needs_systemd_analyze
@pytest.mark.parametrize("unit", [DAEMON_UNIT, WAIT_UNIT], ids=lambda p: p.name)
def test_security_exposure(unit: Path) -> None:
    assert exposure(unit) <= MAX_EXPOSURE


@needs_systemd_analyze
def test_documented_exposure_is_the_measured_one() -> None:
    measured = f"{exposure(DAEMON_UNIT):.1f}"
    readme = (REPO / "README.md").read_text()
    assert f"`systemd-analyze security --offline=yes nvmemd.service` rates it {measured}" in readme
    man = " ".join((REPO / "man" / "nvmemd.8.scd").read_text().split())
    assert f"*systemd-analyze security* exposure {measured})" in man


@needs_systemd_analyze
def test_security_threshold_is_meaningful(tmp_path: Path) -> None:
    """The same unit without its sandbox scores far worse: the parser sees our settings."""
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nExecStart=/usr/bin/nvmemd\n")
    assert exposure(bare) > 9.0


# --- ExecStart lines against the demo board -----------------------------------------


def _cli_has_option(*argv: str) -> bool:
    """Whether ``nvmemd-query ARGV... --help`` is accepted (a command or option exists)."""
    result = subprocess.run(
        [str(VENV_BIN / "nvmemd-query"), *argv, "--help"], capture_output=True, text=True
    )
    return result.returncode == 0


@pytest.fixture(scope="module")
def demo_sysroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo board (examples/demo-board), built afresh: `make demo` may run concurrently."""
    import tomllib

    from mksysroot import build_sysroot

    demo = REPO / "examples" / "demo-board"
    out = tmp_path_factory.mktemp("demo") / "sysroot"
    build_sysroot(demo / "board.dts", tomllib.loads((demo / "board.toml").read_text()), out)
    return out


def unit_env(sysroot: Path, bindir: Path | None = None) -> dict[str, str]:
    """A unit's environment (no venv activation), with the demo as the sysroot."""
    path = [str(bindir)] if bindir else []
    path += [str(VENV_BIN), "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NVMEMD_"))}
    return env | {"PATH": ":".join(path), "NVMEMD_SYSROOT": str(sysroot), "LC_ALL": "C.UTF-8"}


def _exec_start(unit: Path) -> str:
    return one(parse_unit(unit), "Service", "ExecStart")


def _local_binaries(argv: list[str]) -> list[str]:
    """/usr/bin/nvmemd-query as installed by the package -> the venv's entry point."""
    return [str(VENV_BIN / Path(a).name) if a.startswith("/usr/bin/nvmemd") else a for a in argv]


# --- the daemon's sandbox, emulated without systemd as PID 1 ---------------------------

SANDBOX = r"""
import errno, json, os, socket, sys, ctypes
import seccomp

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
allowed = json.loads(sys.argv[1])
families = [getattr(socket, f) for f in json.loads(sys.argv[2])]
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE: " + os.strerror(ctypes.get_errno()))
f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
for name in allowed:
    if name == "socket":
        continue
    try:
        f.add_rule(seccomp.ALLOW, name)
    except (RuntimeError, ValueError):
        pass  # not a system call of this architecture
for family in families:
    f.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
f.load()
os.execv(sys.argv[3], sys.argv[3:])
"""


def syscall_groups() -> dict[str, list[str]]:
    """`systemd-analyze syscall-filter`: every @group with its members (may name groups)."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True,
                         text=True, check=True).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif line.startswith("    ") and not line.strip().startswith("#") and current is not None:
            current.append(line.strip())
        elif not line.strip():
            current = None
    return groups


def expand_syscalls(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    result: set[str] = set()
    for name in names:
        result |= expand_syscalls(groups[name], groups) if name.startswith("@") else {name}
    return result


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """argv prefix approximating nvmemd.service's sandbox for a process.

    From the unit file: CapabilityBoundingSet= (setpriv drops every capability),
    NoNewPrivileges=, SystemCallFilter= with SystemCallErrorNumber=EPERM (a seccomp
    allow-list built from `systemd-analyze syscall-filter`), RestrictAddressFamilies=
    (socket() limited by a seccomp argument filter, as systemd does) and
    MemoryDenyWriteExecute= (the kernel's PR_SET_MDWE, which is stricter than
    systemd's seccomp version). File-system namespacing is not emulated.
    """
    if shutil.which("systemd-analyze") is None or shutil.which("setpriv") is None:
        pytest.skip("systemd-analyze or setpriv missing")
    if subprocess.run(["/usr/bin/python3", "-c", "import seccomp"], capture_output=True).returncode:
        pytest.skip("Debian's python3-seccomp is not installed")
    if os.geteuid() != 0:
        pytest.skip("emulating the root daemon's sandbox needs root")
    unit = parse_unit(DAEMON_UNIT)
    filters = values(unit, "Service", "SystemCallFilter")
    assert filters[0] == "@system-service" and all(f.startswith("~") for f in filters[1:])
    groups = syscall_groups()
    allowed = expand_syscalls(filters[0].split(), groups)
    for deny in filters[1:]:
        allowed -= expand_syscalls(deny[1:].split(), groups)
    assert "execve" in allowed and "mount" not in allowed and "setrlimit" not in allowed
    families = one(unit, "Service", "RestrictAddressFamilies").split()
    assert one(unit, "Service", "MemoryDenyWriteExecute") == "yes"
    assert one(unit, "Service", "CapabilityBoundingSet") == ""
    script = tmp_path_factory.mktemp("sandbox") / "sandbox.py"
    script.write_text(SANDBOX)
    return ["setpriv", "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all",
            "/usr/bin/python3", str(script), json.dumps(sorted(allowed)), json.dumps(families)]


def test_sandbox_is_enforced(sandbox: list[str]) -> None:
    """The emulation bites: a write+exec mapping, an IP socket, a capability are refused."""
    probe = (
        "import mmap, os, socket\n"
        "try:\n    mmap.mmap(-1, 4096, prot=7); print('wx')\nexcept OSError: print('no-wx')\n"
        "try:\n    socket.socket(socket.AF_INET); print('inet')\nexcept OSError: print('no-inet')\n"
        "socket.socket(socket.AF_UNIX).close()\n"
        "socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 15).close()\n"
        "try:\n    os.chown('/', 0, 0); print('chown')\nexcept OSError: print('no-chown')\n"
    )
    result = subprocess.run([*sandbox, "/usr/bin/python3", "-c", probe], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["no-wx", "no-inet", "no-chown"]


def test_cli_runs_in_the_daemon_sandbox(sandbox: list[str], demo_sysroot: Path) -> None:
    """Same output inside the sandbox: no W+X memory, no forbidden system call on the read path."""
    args = ["--sysroot", str(demo_sysroot), "--direct", "cells", "--json"]
    query = str(VENV_BIN / "nvmemd-query")
    free = subprocess.run([query, *args], capture_output=True, timeout=60)
    boxed = subprocess.run([*sandbox, query, *args], capture_output=True, timeout=60)
    assert free.returncode == 0, free.stderr
    assert (boxed.returncode, boxed.stdout, boxed.stderr) == (0, free.stdout, free.stderr)


def test_expand_exec_helper() -> None:
    line = """/bin/sh -ec 'x=$$(echo "$1"); echo %% "$$x"' sh %i %I"""
    assert expand_exec(line, r"a\x20b-c") == [
        "/bin/sh", "-ec", 'x=$(echo "$1"); echo % "$x"', "sh", r"a\x20b-c", "a b/c"]


@needs_systemd_analyze
def test_wait_template_exec_start_finds_demo_cell(demo_sysroot: Path) -> None:
    if not _cli_has_option("wait"):
        pytest.fail("nvmemd-query has no `wait` command (contract: wait SPEC [--timeout S])")
    spec = "board-eeprom1:serial-number"
    instance = run_escape(spec)
    argv = _local_binaries(expand_exec(_exec_start(WAIT_UNIT), instance))
    assert spec in argv
    result = subprocess.run(argv, env=unit_env(demo_sysroot), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


@needs_systemd_analyze
def test_wait_template_exec_start_times_out_with_status_7(demo_sysroot: Path) -> None:
    if not _cli_has_option("wait"):
        pytest.fail("nvmemd-query has no `wait` command (contract: wait SPEC [--timeout S])")
    instance = run_escape("board-eeprom1:no-such-cell")
    argv = _local_binaries(expand_exec(_exec_start(WAIT_UNIT), instance))
    argv[argv.index("--timeout") + 1] = "1"  # the unit's 90 s, shortened
    result = subprocess.run(argv, env=unit_env(demo_sysroot), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 7, result.stderr


def run_escape(text: str) -> str:
    return subprocess.run(["systemd-escape", "--", text], capture_output=True, text=True,
                          check=True).stdout.rstrip("\n")


def _mac_consumers(sysroot: Path) -> list[tuple[str, str]]:
    """(interface, DT path of its node) for each netdev whose DT node names a "mac-address" cell."""
    base = (sysroot / "sys" / "firmware" / "devicetree" / "base").resolve()
    net = sysroot / "sys" / "class" / "net"
    found = []
    for iface in sorted(net.iterdir()) if net.is_dir() else []:
        of_node = (iface / "of_node").resolve()
        names = of_node / "nvmem-cell-names"
        if names.exists() and b"mac-address" in names.read_bytes().split(b"\0"):
            found.append((iface.name, "/" + str(of_node.relative_to(base))))
    return found


@needs_systemd_analyze
def test_set_mac_example_exec_start_sets_demo_mac(demo_sysroot: Path, tmp_path: Path) -> None:
    """The example's exact ExecStart= line, with `ip` replaced by a recorder on PATH.

    For every demo interface with a "mac-address" consumer cell, `ip` must get
    the address the interface's DT node reads (`get --consumer NODE`: with the
    consumer's index argument and the provider's post-processing, e.g. the
    i.MX OCOTP byte reversal), never an empty one.
    """
    consumers = _mac_consumers(demo_sysroot)
    assert consumers, "the demo board has no interface with a mac-address cell"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "ip.argv"
    ip = bindir / "ip"
    ip.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(record))}\n')
    ip.chmod(0o755)
    for iface, node in consumers:
        expected = subprocess.run(
            [str(VENV_BIN / "nvmemd-query"), "--direct", "get", "--consumer", node,
             "mac-address", "--format", "mac"],
            env=unit_env(demo_sysroot), capture_output=True, text=True, check=True,
        ).stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", expected)
        record.unlink(missing_ok=True)
        argv = expand_exec(_exec_start(SET_MAC_UNIT), iface)
        result = subprocess.run(argv, env=unit_env(demo_sysroot, bindir), capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, (iface, result.stderr)
        assert record.read_text().splitlines() == ["link", "set", "dev", iface, "address", expected]


def test_set_mac_example_fails_without_the_cell(demo_sysroot: Path, tmp_path: Path) -> None:
    """A failing lookup fails the unit and never calls ip (no "address ''")."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "ip.argv"
    ip = bindir / "ip"
    ip.write_text(f'#!/bin/sh\ntouch {shlex.quote(str(record))}\n')
    ip.chmod(0o755)
    argv = expand_exec(_exec_start(SET_MAC_UNIT), "nosuchif0")
    result = subprocess.run(argv, env=unit_env(demo_sysroot, bindir), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert not record.exists()


def test_set_mac_example_takes_an_escaped_interface_name(demo_sysroot: Path,
                                                         tmp_path: Path) -> None:
    """An interface with a dash (br-lan) is the instance br\\x2dlan, as its device unit
    sys-subsystem-net-devices-br\\x2dlan.device is named; ip must get "br-lan"."""
    board = tmp_path / "sysroot"
    shutil.copytree(demo_sysroot, board, symlinks=True)
    net = board / "sys" / "class" / "net"
    (net / "br-lan").symlink_to(os.readlink(net / "eth0"))
    instance = subprocess.run(["systemd-escape", "br-lan"], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert instance == "br\\x2dlan"
    unit = parse_unit(SET_MAC_UNIT)
    assert one(unit, "Unit", "BindsTo").replace("%i", instance) == (
        "sys-subsystem-net-devices-br\\x2dlan.device")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "ip.argv"
    (bindir / "ip").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(record))}\n')
    (bindir / "ip").chmod(0o755)
    expected = subprocess.run(
        [str(VENV_BIN / "nvmemd-query"), "--direct", "get", "--netdev", "eth0", "mac-address",
         "--format", "mac"], env=unit_env(board), capture_output=True, text=True, check=True,
    ).stdout.strip()
    argv = expand_exec(_exec_start(SET_MAC_UNIT), instance)
    result = subprocess.run(argv, env=unit_env(board, bindir), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == ["link", "set", "dev", "br-lan", "address",
                                               expected]


# --- the daemon in its sandbox, as nvmemd.service runs it -----------------------------


class NotifySocket:
    """The service manager's end of sd_notify(3): an AF_UNIX datagram socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def wait_for(self, line: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(message)
            if line in message.split("\n"):
                return
        raise AssertionError(f"no {line} from the daemon; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


@pytest.mark.integration
def test_daemon_in_its_sandbox_notifies_and_serves(
    sandbox: list[str], demo_sysroot: Path, tmp_path: Path
) -> None:
    """Type=notify, WatchdogSec=, SIGHUP reload and SIGTERM, inside the emulated sandbox."""
    from .dbus_fixtures import Daemon, PrivateBus, managed_objects, missing_tools

    if missing_tools():
        pytest.skip(missing_tools() or "")
    notify = NotifySocket(tmp_path / "notify")
    bus = PrivateBus.start()
    try:
        daemon = Daemon.start(
            bus, ["--sysroot", str(demo_sysroot)], tmp_path / "nvmemd.log", prefix=sandbox,
            env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"},
        )
        try:
            notify.wait_for("READY=1")
            lines = "\n".join(notify.messages).split("\n")
            assert any(m.startswith("STATUS=Publishing") for m in lines)
            notify.wait_for("WATCHDOG=1")
            notify.wait_for("WATCHDOG=1")  # keeps pinging at WatchdogSec/2
            objects = managed_objects(daemon)
            assert any("org.nvmemd.Nvmem1.Cell" in ifaces for ifaces in objects.values())
            daemon.proc.send_signal(signal.SIGHUP)  # ExecReload=
            notify.wait_for("RELOADING=1")
            notify.wait_for("READY=1")
        finally:
            code = daemon.stop(check=False)
        log = daemon.log()
        assert code == 0, log
        assert "Traceback" not in log and "Operation not permitted" not in log, log
        notify.wait_for("STOPPING=1", timeout=5)
    finally:
        bus.stop()
        notify.close()


@pytest.mark.integration
def test_daemon_udev_monitor_works_in_its_sandbox(sandbox: list[str], tmp_path: Path) -> None:
    """With the real root the daemon opens its udev netlink monitor (AF_NETLINK, no caps)."""
    from .dbus_fixtures import Daemon, PrivateBus, missing_tools

    if missing_tools():
        pytest.skip(missing_tools() or "")
    bus = PrivateBus.start()
    try:
        daemon = Daemon.start(bus, [], tmp_path / "nvmemd.log", prefix=sandbox,
                              env={"NVMEMD_SYSROOT": "/"})
        code = daemon.stop(check=False)
        log = daemon.log()
        assert code == 0, log
        assert "not following udev events" not in log, log
        assert "Traceback" not in log, log
    finally:
        bus.stop()
