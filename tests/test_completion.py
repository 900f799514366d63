"""Shell completion (issue 12 #2): scripts generated from the real parser, run in the shells.

Every case is a Tab a user presses: bash and zsh run interactively on a
pseudo-terminal (tests/shell_tab.py: readline/ZLE split the line and call the
completion as they do for a user; we read back the edited line and what was
offered), fish completes with its own engine (``complete -C``). Provider and cell
names come from a board through ``nvmemd-query … --names``: NVMEMD_SYSROOT, or
--sysroot on the line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from mksysroot import build_sysroot

from nvmemd.cli import completion

from .dbus_fixtures import REPO
from .shell_tab import Tab, fish_complete, tab

VENV_BIN = Path(sys.executable).parent
DEMO_PROVIDERS = ["0-00512", "board-eeprom1", "imx-ocotp0", "mtd0", "mtd1", "mtd2", "mtd3",
                  "u-boot-env0"]
SUBCOMMANDS = ["providers", "cells", "get", "dump", "identity", "verify", "wait", "snapshot"]
FORMATS = ["hex", "raw", "mac", "string", "u8", "u16", "u32", "u64"]
needs_zsh = pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
needs_fish = pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed")


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


@pytest.fixture(scope="module")
def odd_board(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo board with U-Boot variables named "boot args" and "it's", and a
    labelled consumer (``fec``) that names two cells, one of them "serial number"."""
    demo = REPO / "examples" / "demo-board"
    board = tomllib.loads((demo / "board.toml").read_text())
    env = ("bootcmd=run distro_bootcmd\0boot args=quiet\0it's=1\0"
           "ethaddr=02:00:5e:10:00:10\0serial#=NVD-2026-000042\0")
    for p in board["provider"]:
        if p["name"] in ("mtd3", "u-boot-env0"):
            p["image"]["data"][0]["text"] = env
    dts = (demo / "board.dts").read_text()
    old = ('ethernet@30be0000 {\n'
           '\t\t\tcompatible = "fsl,imx8mp-fec", "fsl,imx8mq-fec", "fsl,imx6sx-fec";\n'
           '\t\t\treg = <0x30be0000 0x10000>;\n'
           '\t\t\tnvmem-cells = <&fec_mac>;\n'
           '\t\t\tnvmem-cell-names = "mac-address";')
    assert old in dts
    dts = dts.replace(old, old.replace("ethernet@", "fec: ethernet@").replace(
        "<&fec_mac>", "<&fec_mac>, <&serial>").replace(
        '"mac-address"', '"mac-address", "serial number"'))
    src = tmp_path_factory.mktemp("odd-board-src")
    (src / "board.dts").write_text(dts)
    for inc in demo.glob("*.dtsi"):
        shutil.copy(inc, src)
    return build_sysroot(src / "board.dts", board, tmp_path_factory.mktemp("odd") / "root")


def _env(sysroot: Path | None, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NVMEMD_", "DBUS_"))}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env["HOME"] = str(home)
    if sysroot is not None:
        env["NVMEMD_SYSROOT"] = str(sysroot)
    return env


Complete = Callable[..., Tab]


def _tab_fixture(shell: str) -> Callable[..., Complete]:
    def make(scripts: dict[str, Path], tmp_path: Path) -> Complete:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        n = iter(range(1000))

        def complete(line: str, sysroot: Path | None = None, cwd: Path | None = None,
                     source: bool = False) -> Tab:
            t = tab(shell, scripts[shell], line, _env(sysroot, home), tmp_path / f"t{next(n)}",
                    cwd=cwd, source=source)
            # nothing on the terminal but the line and the shell's own listing
            assert "nvmemd-query:" not in t.terminal and "command not found" not in t.terminal \
                and "Traceback" not in t.terminal and f"{shell}:" not in t.terminal, t.terminal
            return t
        complete.home = home  # type: ignore[attr-defined]
        return complete
    return make


bash_tab = pytest.fixture(_tab_fixture("bash"), name="bash_tab")
zsh_tab = pytest.fixture(_tab_fixture("zsh"), name="zsh_tab")


@pytest.fixture
def fish(scripts: dict[str, Path], tmp_path: Path) -> Callable[..., list[str]]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def complete(line: str, sysroot: Path | None = None, descriptions: bool = False,
                 source: bool = False) -> list[str]:
        return fish_complete(scripts["fish"], line, _env(sysroot, home), tmp_path / "fish",
                             descriptions=descriptions, source=source)
    complete.home = home  # type: ignore[attr-defined]
    return complete


def _cells(sysroot: Path, *provider: str) -> list[str]:
    return subprocess.run([VENV_BIN / "nvmemd-query", "--sysroot", str(sysroot), "cells",
                           *provider, "--names"], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def test_generated_from_the_parser() -> None:
    top, commands = completion.model()
    assert [c.name for c in commands] == SUBCOMMANDS
    get = next(c for c in commands if c.name == "get")
    fmt = next(o for o in get.options if "--format" in o.names)
    assert fmt.choices == FORMATS
    assert get.positional == "cells"
    assert any("--sysroot" in o.names for o in top)


def test_scripts_parse(scripts: dict[str, Path]) -> None:
    subprocess.run(["bash", "-n", str(scripts["bash"])], check=True)
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", str(scripts["zsh"])], check=True)
    if shutil.which("fish"):
        subprocess.run(["fish", "--no-execute", str(scripts["fish"])], check=True)


# --- bash ---------------------------------------------------------------------------


def test_bash_subcommands_and_options(bash_tab: Complete) -> None:
    assert bash_tab("nvmemd-query ").offered == SUBCOMMANDS
    assert bash_tab("nvmemd-query ce").line == "nvmemd-query cells "
    assert bash_tab("nvmemd-query get --f").line == "nvmemd-query get --format "
    assert bash_tab("nvmemd-query get x --format u").offered == ["u8", "u16", "u32", "u64"]
    assert "--include-protected" in bash_tab("nvmemd-query snapshot --").offered
    assert "--version" in bash_tab("nvmemd-query --").offered


def test_bash_names_from_the_system(bash_tab: Complete, demo_board_sysroot: Path) -> None:
    demo = demo_board_sysroot
    assert bash_tab("nvmemd-query cells ", demo).offered == DEMO_PROVIDERS
    assert bash_tab("nvmemd-query get --provider board-e", demo).line == (
        "nvmemd-query get --provider board-eeprom1 ")
    t = bash_tab("nvmemd-query get board-eeprom1/", demo)
    assert t.offered == _cells(demo, "board-eeprom1")
    assert bash_tab("nvmemd-query get board-eeprom1/s", demo).line == (
        "nvmemd-query get board-eeprom1/serial-number ")
    # --sysroot on the line is passed on (no NVMEMD_SYSROOT here)
    line = f"nvmemd-query --sysroot {demo} get -f string board-eeprom1/ser"
    assert bash_tab(line).offered == ["board-eeprom1/serial-number"]
    # no system to ask: nothing offered, and nothing printed on the terminal
    assert bash_tab("nvmemd-query get ", Path("/nonexistent")).offered == []
    # one provider for dump, none after it
    assert bash_tab("nvmemd-query dump board-eeprom1 ", demo).offered == []


def test_bash_equals_forms(bash_tab: Complete, demo_board_sysroot: Path) -> None:
    """COMP_WORDBREAKS splits --opt=value at the "=": a value is still completed as one."""
    demo = demo_board_sysroot
    assert bash_tab("nvmemd-query get --format=m", demo).line == (
        "nvmemd-query get --format=mac ")
    assert bash_tab("nvmemd-query get --format=", demo).offered == FORMATS
    assert bash_tab(f"nvmemd-query --sysroot={demo} get board-eeprom1/s").line == (
        f"nvmemd-query --sysroot={demo} get board-eeprom1/serial-number ")
    assert bash_tab(f"nvmemd-query get --sysroot={demo} --provider=board-e").line == (
        f"nvmemd-query get --sysroot={demo} --provider=board-eeprom1 ")
    assert bash_tab(f"nvmemd-query --sysroot={demo.parent}/sysr").offered == [str(demo)]


def test_bash_directories_and_quoting(bash_tab: Complete, odd_board: Path,
                                      tmp_path: Path) -> None:
    (tmp_path / "boards" / "board one").mkdir(parents=True)
    (tmp_path / "boards" / "two").mkdir()
    boards = tmp_path / "boards"
    # a directory gets a "/", not a space, and a name with a space is quoted
    assert bash_tab(f"nvmemd-query --sysroot {boards}/tw").line == (
        f"nvmemd-query --sysroot {boards}/two/")
    assert bash_tab(f"nvmemd-query --config {boards}/tw").line == (
        f"nvmemd-query --config {boards}/two/")
    assert bash_tab(f"nvmemd-query --sysroot={boards}/tw").line == (
        f"nvmemd-query --sysroot={boards}/two/")
    assert bash_tab(f"nvmemd-query snapshot {boards}/bo").line == (
        f"nvmemd-query snapshot {boards}/board\\ one/")
    assert bash_tab("nvmemd-query snapshot tw", cwd=boards).line == "nvmemd-query snapshot two/"
    home: Path = bash_tab.home  # type: ignore[attr-defined]
    (home / "boards" / "two").mkdir(parents=True)
    assert bash_tab("nvmemd-query --sysroot ~/boards/t").line == (
        "nvmemd-query --sysroot ~/boards/two/")
    # cell names with a space or a quote
    assert bash_tab("nvmemd-query get u-boot-env0/boo", odd_board).offered == [
        "u-boot-env0/bootcmd", "u-boot-env0/boot args"]
    assert bash_tab("nvmemd-query get u-boot-env0/boot\\ ", odd_board).line == (
        "nvmemd-query get u-boot-env0/boot\\ args ")
    assert bash_tab("nvmemd-query get 'u-boot-env0/boot a", odd_board).line == (
        "nvmemd-query get 'u-boot-env0/boot args' ")
    assert bash_tab('nvmemd-query get "u-boot-env0/boot a', odd_board).line == (
        'nvmemd-query get "u-boot-env0/boot args" ')
    assert bash_tab("nvmemd-query get u-boot-env0/it", odd_board).line == (
        "nvmemd-query get u-boot-env0/it\\'s ")


def test_bash_tilde_provider_consumer(bash_tab: Complete, demo_board_sysroot: Path,
                                      odd_board: Path) -> None:
    demo = demo_board_sysroot
    home: Path = bash_tab.home  # type: ignore[attr-defined]
    (home / "board").symlink_to(demo)
    assert bash_tab("nvmemd-query --sysroot ~/board get board-eeprom1/s").line == (
        "nvmemd-query --sysroot ~/board get board-eeprom1/serial-number ")
    assert bash_tab("nvmemd-query get --config ~/x --sysroot ~ cells ").offered == []
    # --provider P narrows the cells
    assert bash_tab("nvmemd-query get --provider mtd1 ", demo).offered == _cells(demo, "mtd1")
    assert bash_tab("nvmemd-query wait --provider=mtd2 ", demo).offered == _cells(demo, "mtd2")
    assert bash_tab("nvmemd-query cells --provider ", demo).offered == DEMO_PROVIDERS
    # a consumer's own names for its cells (nvmem-cell-names)
    assert bash_tab("nvmemd-query get --netdev eth0 ", demo).offered == ["mac-address"]
    assert bash_tab("nvmemd-query get --netdev ", demo).offered == ["eth0", "eth1"]
    assert bash_tab("nvmemd-query get --consumer fec ", odd_board).offered == [
        "mac-address", "serial number"]
    assert bash_tab("nvmemd-query get --consumer '&fec' s", odd_board).line == (
        "nvmemd-query get --consumer '&fec' serial\\ number ")
    assert bash_tab("nvmemd-query get --consumer /soc@0/ethernet@30bf0000 ",
                    odd_board).offered == ["mac-address"]
    # a consumer not found locally: the cells as without it
    assert bash_tab("nvmemd-query get --consumer nosuch ", demo).offered == _cells(demo)


def test_bash_json_anywhere(bash_tab: Complete, demo_board_sysroot: Path) -> None:
    demo = demo_board_sysroot
    assert bash_tab("nvmemd-query --json get board-eeprom1/s", demo).line == (
        "nvmemd-query --json get board-eeprom1/serial-number ")
    assert bash_tab("nvmemd-query get --json --fo", demo).line == (
        "nvmemd-query get --json --format ")
    assert "--json" in bash_tab("nvmemd-query cells --", demo).offered
    assert "--provider" in bash_tab("nvmemd-query cells --", demo).offered


# --- zsh ----------------------------------------------------------------------------


@needs_zsh
def test_zsh_subcommands_options_and_help(zsh_tab: Complete) -> None:
    t = zsh_tab("nvmemd-query ")
    assert t.offered == SUBCOMMANDS
    assert "hexdump a provider's raw bytes" in t.terminal
    assert "the kernel's cells/ directories (6.8+)" in t.terminal
    assert "show program's version number" in zsh_tab("nvmemd-query --ver").terminal
    assert zsh_tab("nvmemd-query ce").line == "nvmemd-query cells "
    assert zsh_tab("nvmemd-query get --fo").line == "nvmemd-query get --format="
    assert set(zsh_tab("nvmemd-query get x --format u").offered) == {"u8", "u16", "u32", "u64"}


@needs_zsh
def test_zsh_names_from_the_system(zsh_tab: Complete, demo_board_sysroot: Path) -> None:
    """_arguments calls the names helper with compadd options before its argument."""
    demo = demo_board_sysroot
    assert zsh_tab("nvmemd-query cells ", demo).offered == DEMO_PROVIDERS
    assert zsh_tab("nvmemd-query dump board-e", demo).line == "nvmemd-query dump board-eeprom1 "
    assert zsh_tab("nvmemd-query get board-eeprom1/s", demo).line == (
        "nvmemd-query get board-eeprom1/serial-number ")
    assert zsh_tab("nvmemd-query get ", demo).offered == _cells(demo)
    assert zsh_tab("nvmemd-query get --provider board-e", demo).line == (
        "nvmemd-query get --provider board-eeprom1 ")
    assert zsh_tab("nvmemd-query get ", Path("/nonexistent")).offered == []
    # one provider for dump: after it, only its options (as _arguments does)
    assert all(w.startswith("-") for w in zsh_tab("nvmemd-query dump board-eeprom1 ", demo).offered)


@needs_zsh
def test_zsh_global_options_after_the_subcommand(zsh_tab: Complete, demo_board_sysroot: Path,
                                                 tmp_path: Path) -> None:
    demo = demo_board_sysroot
    assert zsh_tab("nvmemd-query get -v --fo", demo).line == "nvmemd-query get -v --format="
    assert zsh_tab("nvmemd-query get --sysroot /tmp --format ").offered == FORMATS
    assert zsh_tab("nvmemd-query get --json --fo", demo).line == (
        "nvmemd-query get --json --format=")
    assert zsh_tab(f"nvmemd-query get --sysroot {demo} board-eeprom1/s").line == (
        f"nvmemd-query get --sysroot {demo} board-eeprom1/serial-number ")
    # options before the subcommand still reach the --names calls
    for before in (f"--sysroot={demo}", f"--sysroot {demo}", f"--json --sysroot {demo}"):
        assert zsh_tab(f"nvmemd-query {before} get board-eeprom1/s").line == (
            f"nvmemd-query {before} get board-eeprom1/serial-number ")
        assert zsh_tab(f"nvmemd-query {before} cells ").offered == DEMO_PROVIDERS
    # a sysroot whose path needs quoting
    (tmp_path / "the board").symlink_to(demo)
    assert zsh_tab(f"nvmemd-query --sysroot {tmp_path}/the\\ board cells b").line == (
        f"nvmemd-query --sysroot {tmp_path}/the\\ board cells board-eeprom1 ")


@needs_zsh
def test_zsh_tilde_provider_consumer_quoting(zsh_tab: Complete, demo_board_sysroot: Path,
                                             odd_board: Path) -> None:
    demo = demo_board_sysroot
    home: Path = zsh_tab.home  # type: ignore[attr-defined]
    (home / "board").symlink_to(demo)
    assert zsh_tab("nvmemd-query --sysroot ~/board get board-eeprom1/s").line == (
        "nvmemd-query --sysroot ~/board get board-eeprom1/serial-number ")
    assert zsh_tab("nvmemd-query get --provider mtd1 ", demo).offered == _cells(demo, "mtd1")
    assert zsh_tab("nvmemd-query wait --provider=mtd2 ", demo).offered == _cells(demo, "mtd2")
    assert zsh_tab("nvmemd-query cells --provider ", demo).offered == DEMO_PROVIDERS
    assert zsh_tab("nvmemd-query get --netdev eth0 ", demo).offered == ["mac-address"]
    assert zsh_tab("nvmemd-query get --netdev ", demo).offered == ["eth0", "eth1"]
    assert zsh_tab("nvmemd-query get --consumer fec ", odd_board).offered == [
        "mac-address", "serial number"]
    assert zsh_tab("nvmemd-query get --consumer nosuch ", demo).offered == _cells(demo)
    assert zsh_tab("nvmemd-query get u-boot-env0/boot\\ ", odd_board).line == (
        "nvmemd-query get u-boot-env0/boot\\ args ")
    assert zsh_tab("nvmemd-query get u-boot-env0/it", odd_board).line == (
        "nvmemd-query get u-boot-env0/it\\'s ")
    boards = home / "boards"
    (boards / "two").mkdir(parents=True)
    assert zsh_tab("nvmemd-query --sysroot ~/boards/t").line == (
        "nvmemd-query --sysroot ~/boards/two/")


# --- fish ---------------------------------------------------------------------------


@needs_fish
def test_fish_completion(fish: Callable[..., list[str]], demo_board_sysroot: Path,
                         odd_board: Path) -> None:
    demo = demo_board_sysroot
    assert "cells" in fish("nvmemd-query ")
    assert "--format" in fish("nvmemd-query get --f")
    assert "--format" in fish("nvmemd-query get --json -v --f")
    assert fish("nvmemd-query cells ", demo) == DEMO_PROVIDERS
    assert "board-eeprom1/serial-number" in fish("nvmemd-query get board-eeprom1/", demo)
    described = fish("nvmemd-query ", descriptions=True)
    assert "dump\thexdump a provider's raw bytes" in described
    assert "verify\tcompare with the kernel's cells/ directories (6.8+)" in described
    assert "--version\tshow program's version number and exit" in fish("nvmemd-query --v",
                                                                          descriptions=True)
    assert fish(f"nvmemd-query --sysroot={demo} --json get board-eeprom1/s") == [
        "board-eeprom1/serial-number"]
    home: Path = fish.home  # type: ignore[attr-defined]
    (home / "board").symlink_to(demo)
    assert fish("nvmemd-query --sysroot ~/board get board-eeprom1/s") == [
        "board-eeprom1/serial-number"]
    assert sorted(fish("nvmemd-query get --provider mtd1 ", demo)) == sorted(
        _cells(demo, "mtd1"))
    assert fish("nvmemd-query get --netdev eth0 ", demo) == ["mac-address"]
    assert fish("nvmemd-query get --netdev ", demo) == ["eth0", "eth1"]
    assert fish("nvmemd-query cells --provider ", demo) == DEMO_PROVIDERS
    assert fish("nvmemd-query dump board-eeprom1 ", demo) == []
    assert "--version" in fish("nvmemd-query --")
    assert "--version" not in fish("nvmemd-query get --")
    assert fish("nvmemd-query get --consumer fec ", odd_board) == ["mac-address",
                                                                   "serial number"]
    assert "u-boot-env0/boot args" in fish("nvmemd-query get u-boot-env0/", odd_board)


def test_loaded_from_a_source_checkout(bash_tab: Complete, zsh_tab: Complete,
                                       fish: Callable[..., list[str]],
                                       demo_board_sysroot: Path) -> None:
    """As the README says: the script sourced (zsh: after compinit; fish: piped to source)."""
    demo = demo_board_sysroot
    serial = "nvmemd-query get board-eeprom1/serial-number "
    assert bash_tab("nvmemd-query get board-eeprom1/s", demo).line == serial
    if shutil.which("zsh"):
        assert zsh_tab("nvmemd-query get board-eeprom1/s", demo, source=True).line == serial
    if shutil.which("fish"):
        assert fish("nvmemd-query get board-eeprom1/s", demo, source=True) == [
            "board-eeprom1/serial-number"]
