"""Shell completion (issue 12 #2): scripts generated from the real parser, run in the shells.

bash is driven as readline would: the script is sourced, COMP_WORDS/COMP_CWORD set
and the completion function called; provider and cell names come from the demo
board through ``nvmemd-query … --names`` (NVMEMD_SYSROOT, or --sysroot on the line).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nvmemd.cli import completion

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("completion")
    out = {}
    for shell in completion.SHELLS:
        proc = subprocess.run([sys.executable, "-m", "nvmemd.cli.completion", shell],
                              capture_output=True, text=True, check=True)
        out[shell] = d / shell
        out[shell].write_text(proc.stdout)
    return out


def _env(sysroot: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NVMEMD_", "DBUS_"))}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    if sysroot is not None:
        env["NVMEMD_SYSROOT"] = str(sysroot)
    return env


def bash_complete(script: Path, line: str, sysroot: Path | None) -> list[str]:
    """What bash offers for *line* (the cursor at its end; a trailing space: a new word)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    code = (f"source {shlex.quote(str(script))}\n"
            f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
            f"COMP_CWORD={len(words) - 1}\n"
            "_nvmemd_query\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", code], capture_output=True,
                          text=True, env=_env(sysroot), timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_generated_from_the_parser() -> None:
    top, commands = completion.model()
    assert {c.name for c in commands} >= {"providers", "cells", "get", "dump", "identity",
                                          "verify", "wait", "snapshot"}
    get = next(c for c in commands if c.name == "get")
    fmt = next(o for o in get.options if "--format" in o.names)
    assert fmt.choices == ["hex", "raw", "mac", "string", "u8", "u16", "u32", "u64"]
    assert get.positional == "cells"
    assert any("--sysroot" in o.names for o in top)


def test_bash_subcommands_and_options(scripts: dict[str, Path]) -> None:
    b = scripts["bash"]
    assert bash_complete(b, "nvmemd-query ", None) == ["providers", "cells", "get", "dump",
                                                         "identity", "verify", "wait",
                                                         "snapshot"]
    assert bash_complete(b, "nvmemd-query ce", None) == ["cells"]
    assert set(bash_complete(b, "nvmemd-query get --f", None)) == {"--format"}
    assert bash_complete(b, "nvmemd-query get x --format u", None) == ["u8", "u16", "u32",
                                                                       "u64"]
    assert "--include-protected" in bash_complete(b, "nvmemd-query snapshot --", None)
    assert "--version" in bash_complete(b, "nvmemd-query --", None)


def test_bash_names_from_the_system(scripts: dict[str, Path], demo_board_sysroot: Path) -> None:
    b = scripts["bash"]
    providers = subprocess.run([VENV_BIN / "nvmemd-query", "providers", "--names"],
                               capture_output=True, text=True, env=_env(demo_board_sysroot),
                               check=True).stdout.split()
    assert "board-eeprom1" in providers
    assert bash_complete(b, "nvmemd-query cells ", demo_board_sysroot) == providers
    assert bash_complete(b, "nvmemd-query get --provider board-e", demo_board_sysroot) == [
        p for p in providers if p.startswith("board-e")]
    cells = bash_complete(b, "nvmemd-query get board-eeprom1/", demo_board_sysroot)
    assert "board-eeprom1/serial-number" in cells
    assert all(c.startswith("board-eeprom1/") for c in cells)
    # --sysroot on the line is passed on (no NVMEMD_SYSROOT here)
    line = f"nvmemd-query --sysroot {demo_board_sysroot} get -f string board-eeprom1/ser"
    assert bash_complete(b, line, None) == ["board-eeprom1/serial-number"]
    # no system to ask: nothing offered, and nothing printed on the terminal
    assert bash_complete(b, "nvmemd-query get ", Path("/nonexistent")) == []


def test_bash_syntax(scripts: dict[str, Path]) -> None:
    subprocess.run(["bash", "-n", str(scripts["bash"])], check=True)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_script(scripts: dict[str, Path], demo_board_sysroot: Path) -> None:
    subprocess.run(["zsh", "-n", str(scripts["zsh"])], check=True)
    # The names helper as zsh runs it (compadd stubbed to print what it is given).
    code = (f"source {shlex.quote(str(scripts['zsh']))} 2>/dev/null\n"
            "compadd() { shift; print -l ${(P)1} }\n"
            "_call_program() { shift; \"$@\" }\n"
            "words=(nvmemd-query cells ''); CURRENT=3\n"
            "_nvmemd_query_names providers\n")
    proc = subprocess.run(["zsh", "-f", "-c", code], capture_output=True, text=True,
                          env=_env(demo_board_sysroot), timeout=60)
    assert "board-eeprom1" in proc.stdout.split(), proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")
def test_fish_script(scripts: dict[str, Path], demo_board_sysroot: Path) -> None:
    subprocess.run(["fish", "--no-execute", str(scripts["fish"])], check=True)

    def complete(line: str) -> list[str]:
        code = f"source {shlex.quote(str(scripts['fish']))}; complete -C{shlex.quote(line)}"
        proc = subprocess.run(["fish", "--no-config", "-c", code], capture_output=True,
                              text=True, env=_env(demo_board_sysroot), timeout=60)
        assert proc.returncode == 0, proc.stderr
        return [w.split("\t")[0] for w in proc.stdout.splitlines()]

    assert "cells" in complete("nvmemd-query ")
    assert "--format" in complete("nvmemd-query get --f")
    assert "board-eeprom1" in complete("nvmemd-query cells ")
    assert "board-eeprom1/serial-number" in complete("nvmemd-query get board-eeprom1/")
