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

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DAEMON_UNIT = REPO / "systemd" / "nvmemd.service"
WAIT_UNIT = REPO / "systemd" / "nvmemd-wait@.service"
SET_MAC_UNIT = REPO / "examples" / "systemd" / "nvmemd-set-mac@.service"
UNITS = [DAEMON_UNIT, WAIT_UNIT, SET_MAC_UNIT]
ACTIVATION = REPO / "data" / "org.nvmemd.Nvmem1.service"
POLKIT = REPO / "data" / "org.nvmemd.Nvmem1.policy"
POLKIT_DTD = Path("/usr/share/polkit-1/policyconfig-1.dtd")
BUS_NAME = "org.nvmemd.Nvmem1"
MAX_EXPOSURE = 2.0
VENV_BIN = Path(sys.executable).parent

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (package systemd)"
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


def expand_exec(line: str, instance: str) -> list[str]:
    """argv systemd would run for an ``ExecStart=`` line of a template instance.

    Handles what our units use: the ``%i``/``%I``/``%%`` specifiers, ``$$`` (a
    literal ``$``) and shell-like quoting. ``%I`` is the unescaped instance.
    """
    assert "\\" not in line, "C escapes in ExecStart= are not handled by this helper"
    unescaped = subprocess.run(
        ["systemd-escape", "--unescape", "--", instance], capture_output=True, text=True, check=True
    ).stdout.rstrip("\n")

    def specifier(m: re.Match[str]) -> str:
        return {"%": "%", "i": instance, "I": unescaped}[m.group(1)]

    expanded = re.sub(r"%(.)", specifier, line)
    # systemd expands specifiers first, then splits with C unescaping.
    assert "\\" not in expanded, "C escapes in ExecStart= are not handled by this helper"
    assert not re.search(r"\$(?!\$)\{?[A-Za-z_]", expanded.replace("$$", "")), (
        "environment variable references are not handled by this helper"
    )
    return shlex.split(expanded.replace("$$", "$"))


# --- static checks ------------------------------------------------------------------


def test_daemon_unit_service_settings() -> None:
    unit = parse_unit(DAEMON_UNIT)
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "BusName") == BUS_NAME
    assert one(unit, "Service", "ExecStart") == "/usr/bin/nvmemd"
    assert one(unit, "Service", "Restart") == "on-failure"
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
@pytest.mark.parametrize("path", [POLKIT, REPO / "data" / "org.nvmemd.Nvmem1.conf"], ids=lambda p: p.name)
def test_xml_well_formed(path: Path) -> None:
    result = subprocess.run(["xmllint", "--noout", "--nonet", str(path)], capture_output=True, text=True)
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
def test_security_threshold_is_meaningful(tmp_path: Path) -> None:
    """The same unit without its sandbox scores far worse: the parser sees our settings."""
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nExecStart=/usr/bin/nvmemd\n")
    assert exposure(bare) > 9.0


# --- ExecStart lines against the demo board -----------------------------------------


def _cli_has_option(*argv: str) -> bool:
    result = subprocess.run(
        [str(VENV_BIN / "nvmemd-query"), *argv, "--help"], capture_output=True, text=True
    )
    return result.returncode == 0


@pytest.fixture(scope="module")
def demo_sysroot() -> Iterator[Path]:
    from demo_sysroot import build_demo_sysroot  # type: ignore[import-not-found]

    yield build_demo_sysroot()


def test_expand_exec_helper() -> None:
    line = """/bin/sh -ec 'x=$$(echo "$1"); echo %% "$$x"' sh %i"""
    assert expand_exec(line, "eth0") == ["/bin/sh", "-ec", 'x=$(echo "$1"); echo % "$x"', "sh", "eth0"]
    assert expand_exec("/usr/bin/nvmemd-query wait %I", r"eeprom0-mac\x2daddress") == [
        "/usr/bin/nvmemd-query", "wait", "eeprom0/mac-address"]
