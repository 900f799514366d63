"""The README's console examples, run as a reader types them, output compared byte for byte.

The tour (before "### On D-Bus") runs with ``NVMEMD_SYSROOT`` set to the demo board, as
the README says; the D-Bus section runs against nvmemd serving the demo board on a
private system-like bus, with ``DBUS_SYSTEM_BUS_ADDRESS`` pointing at it (busctl and
nvmemd-query then use it as the system bus).  ``$ echo $?`` checks the exit status of
the command before it; a line ``…`` ends what is compared of an output.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .dbus_fixtures import TIMEOUT, Daemon

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DBUS_SECTION = "### On D-Bus"
#: The commands a reader of the tour runs (not `make`, `less`: the system-test section).
RUNNABLE = ("nvmemd-query", "busctl", "setpriv")


class Example:
    def __init__(self, line: int, command: str, output: str) -> None:
        self.line = line
        self.command = command
        self.output = output

    def __repr__(self) -> str:
        return f"README.md:{self.line}: $ {self.command}"


def examples(section: str) -> list[Example]:
    """The ``$ command`` lines of the README's console blocks in *section* ("tour" or
    "dbus"), each with the output shown after it (up to the next command)."""
    text = (REPO / "README.md").read_text()
    start = text.index(DBUS_SECTION)
    found: list[Example] = []
    for block in re.finditer(r"^```console\n(.*?)^```$", text, re.M | re.S):
        if (block.start() > start) != (section == "dbus"):
            continue
        first_line = text.count("\n", 0, block.start(1)) + 1
        current: Example | None = None
        for n, line in enumerate(block[1].splitlines(), first_line):
            if line.startswith("$ "):
                current = Example(n, line[2:], "")
                found.append(current)
            elif current is not None:
                current.output += line + "\n"
    for ex in found:
        ex.output = ex.output.rstrip("\n") + "\n" if ex.output.strip() else ""
    return [ex for ex in found if ex.command.split()[0] in (*RUNNABLE, "echo")]


def run_examples(found: list[Example], env: dict[str, str]) -> None:
    assert found, "no console examples found"
    last_rc: int | None = None
    for ex in found:
        if ex.command == "echo $?":
            assert last_rc is not None and ex.output == f"{last_rc}\n", ex
            continue
        # stdout and stderr in one stream, as a terminal shows them
        proc = subprocess.run(shlex.split(ex.command), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT * 3,
                              cwd="/")
        last_rc = proc.returncode
        shown = ex.output
        got = proc.stdout
        if "…\n" in shown:
            shown = shown[:shown.index("…\n")]
            got = got[:len(shown)]
        assert got == shown, f"{ex} printed:\n{proc.stdout}"


def reader_env(**extra: str) -> dict[str, str]:
    """What the README's reader has after `. .venv/bin/activate`."""
    path = f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin"
    return {"PATH": path, "LC_ALL": "C.UTF-8", "HOME": os.environ.get("HOME", "/root"),
            **extra}


def test_readme_tour_examples(demo_copy: Path) -> None:
    run_examples(examples("tour"), reader_env(NVMEMD_SYSROOT=str(demo_copy),
                                              DBUS_SYSTEM_BUS_ADDRESS="unix:path=/nonexistent"))


@pytest.mark.skipif(os.geteuid() != 0, reason="the README's setpriv examples need root")
def test_readme_dbus_examples(daemon: Daemon) -> None:
    run_examples(examples("dbus"), reader_env(DBUS_SYSTEM_BUS_ADDRESS=daemon.bus.address))


def test_examples_are_found() -> None:
    """The parser above sees the README's examples (a changed fence would hide them)."""
    tour = [ex.command for ex in examples("tour")]
    dbus = [ex.command for ex in examples("dbus")]
    assert "nvmemd-query get mac-address" in tour and "echo $?" in tour
    assert any(c.startswith("busctl tree") for c in dbus)
    assert any(c.startswith("setpriv") and "nvmemd-query" in c for c in dbus)


def test_readme_unit_excerpts_are_the_shipped_files() -> None:
    """The README's `ini` excerpt of the set-MAC example is the unit file's own lines
    (its ExecStart= is what test_systemd_units runs)."""
    text = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"^  ```ini\n(.*?)^  ```$", text, re.M | re.S)
              if "nvmemd-set-mac" in b]
    assert len(blocks) == 1, "the set-MAC excerpt"
    unit = (REPO / "examples/systemd/nvmemd-set-mac@.service").read_text().splitlines()
    for line in blocks[0].splitlines():
        assert line.strip() == "" or line.strip() in unit, line
