"""``nvmemd-query`` as integrators use it (issue 12) and its error paths (issue 11 #9).

Every command runs as a user would run it (a subprocess of the venv's entry
point) against the demo board; the unit files' commands are run verbatim.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from nvmemd.cli.formats import env_line, env_name, format_value
from nvmemd.errors import InvalidArgumentError

from .conftest import StartDaemon
from .dbus_fixtures import direct_query
from .sysroots import BROKEN, UNREADABLE, break_sysroot
from .test_systemd_units import WAIT_UNIT, _exec_start, _local_binaries, expand_exec, unit_env

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
QUERY = str(VENV_BIN / "nvmemd-query")


def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("NVMEMD_")}
    return subprocess.run([QUERY, *argv], capture_output=True, text=True, timeout=timeout,
                          env=e | (env or {}))


def demo(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return run("--sysroot", str(root), *argv)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    return lines[0]


# --- 1. PROVIDER/NAME, the form systemd-escape'd instance names take -------------------


def test_provider_slash_name(demo_board_sysroot: Path) -> None:
    slash = demo(demo_board_sysroot, "get", "board-eeprom1/serial-number", "--format", "string")
    colon = demo(demo_board_sysroot, "get", "board-eeprom1:serial-number", "--format", "string")
    assert slash.returncode == 0, slash.stderr
    assert slash.stdout == colon.stdout == "NVD-2026-000042\n"
    # a DT path keeps its leading slash and is not a provider
    assert demo(demo_board_sysroot, "get", "/nvmem/eeprom@50/nope").returncode == 3


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape missing")
def test_wait_unit_as_documented(demo_board_sysroot: Path) -> None:
    """The wait template's comment: `systemd-escape 'PROVIDER/NAME'` is the instance."""
    text = WAIT_UNIT.read_text()
    assert "systemd-escape 'eeprom0/mac-address'" in text
    instance = subprocess.run(["systemd-escape", "board-eeprom1/mac-address"],
                              capture_output=True, text=True, check=True).stdout.strip()
    argv = _local_binaries(expand_exec(_exec_start(WAIT_UNIT), instance))
    assert "board-eeprom1/mac-address" in argv
    proc = subprocess.run(argv, env=unit_env(demo_board_sysroot), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_unknown_provider_is_named(demo_board_sysroot: Path) -> None:
    proc = demo(demo_board_sysroot, "get", "board-eeprom/serial-number")
    assert proc.returncode == 3
    line = one_line_error(proc)
    assert "no nvmem provider named 'board-eeprom'" in line and "board-eeprom1" in line


# --- 2. wait resolves as get does ----------------------------------------------------


def test_wait_ambiguous_fails_at_once(demo_board_sysroot: Path) -> None:
    start = time.monotonic()
    proc = demo(demo_board_sysroot, "wait", "mac-address", "--timeout", "30")
    assert proc.returncode == 2 and "ambiguous" in proc.stderr
    assert time.monotonic() - start < 20


def test_wait_timeout_says_why(demo_board_sysroot: Path) -> None:
    proc = demo(demo_board_sysroot, "wait", "board-eeprom1/nope", "--timeout", "0.3")
    assert proc.returncode == 7
    line = one_line_error(proc)
    assert "timed out" in line and "no cell matches 'board-eeprom1/nope'" in line


def test_wait_unreadable_cell_is_not_ready(demo_copy: Path) -> None:
    nvmem = (demo_copy / "sys/bus/nvmem/devices/board-eeprom1").resolve() / "nvmem"
    nvmem.write_bytes(nvmem.read_bytes()[:8])  # the cells lie past the end now
    proc = demo(demo_copy, "wait", "board-eeprom1/serial-number", "--timeout", "0.3")
    assert proc.returncode == 7, proc.stderr
    assert "past the end of the provider" in one_line_error(proc)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "-inf", "soon"])
def test_wait_timeout_must_be_finite(demo_board_sysroot: Path, value: str) -> None:
    proc = demo(demo_board_sysroot, "wait", "hw-revision", f"--timeout={value}")
    assert proc.returncode == 2 and "--timeout" in proc.stderr


# --- 4, 5, 9b. sysroot and OS errors ---------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "file", "no-sys"])
@pytest.mark.parametrize("prog", ["nvmemd-query", "nvmemd"])
def test_wrong_sysroot(tmp_path: Path, kind: str, prog: str) -> None:
    root = tmp_path / "root"
    if kind == "file":
        root.write_text("")
    elif kind == "no-sys":
        root.mkdir()
    argv = [str(VENV_BIN / prog), "--sysroot", str(root)]
    if prog == "nvmemd-query":
        argv.append("providers")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 5
    assert f"sysroot {root}" in proc.stderr.splitlines()[-1]


def test_no_nvmem_bus_is_said(tmp_path: Path) -> None:
    (tmp_path / "sys").mkdir()
    proc = demo(tmp_path, "providers")
    assert proc.returncode == 0
    assert "no /sys/bus/nvmem" in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run as nobody")
@pytest.mark.parametrize(("how", "code", "message"), UNREADABLE, ids=[u[0] for u in UNREADABLE])
@pytest.mark.parametrize("command", ["providers", "cells", "get"])
def test_unreadable_sysroot_is_permission_denied(demo_copy: Path, how: str, code: int,
                                                 message: str, command: str) -> None:
    """What the user may not read is "permission denied" (4), not "not a sysroot" (5)
    nor a false "no /sys/bus/nvmem" warning first; the path is named in the sysroot."""
    break_sysroot(demo_copy, how)
    argv = [command, "imx-ocotp0/unique-id"] if command == "get" else [command]
    proc = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", QUERY,
         "--sysroot", str(demo_copy), *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == code, proc.stderr
    assert one_line_error(proc) == "nvmemd-query: " + message.format(root=demo_copy)


@pytest.mark.parametrize(("how", "code", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_sysroot_is_one_error(demo_copy: Path, how: str, code: int,
                                     message: str) -> None:
    """A loop or a devices/ that is a file is an error (5), not an empty table."""
    break_sysroot(demo_copy, how)
    for argv in (["providers"], ["cells"], ["get", "imx-ocotp0/unique-id"]):
        proc = demo(demo_copy, *argv)
        assert proc.returncode == code, (argv, proc.stderr)
        assert one_line_error(proc) == f"nvmemd-query: {message}"
        assert proc.stdout == ""


def test_snapshot_destination_errors(demo_board_sysroot: Path, tmp_path: Path) -> None:
    cases = {str(tmp_path): "is a directory",
             str(tmp_path / "missing" / "s.tar.gz"): "No such file or directory"}
    if Path("/dev/full").exists():
        cases["/dev/full"] = "No space left on device"
    for dest, message in cases.items():
        proc = demo(demo_board_sysroot, "snapshot", dest)
        assert proc.returncode == 5, (dest, proc.stderr)
        assert message in one_line_error(proc)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("value", ["1e20", str(10**20), "-1"])
def test_max_provider_bytes_bounded(demo_board_sysroot: Path, tmp_path: Path,
                                    value: str) -> None:
    proc = demo(demo_board_sysroot, "snapshot", "--max-provider-bytes", value,
                str(tmp_path / "s.tar.gz"))
    assert proc.returncode == 2 and "--max-provider-bytes" in proc.stderr


def test_deeply_nested_config(demo_board_sysroot: Path, tmp_path: Path) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    proc = demo(demo_board_sysroot, "--config", str(config), "providers")
    assert proc.returncode == 2
    assert "nested too deeply" in one_line_error(proc)


# --- 6, 7. formats -----------------------------------------------------------------------


@pytest.mark.parametrize("mac", [b"\xff" * 6, bytes(6), b"\x01\x00\x5e\x00\x00\x01"])
def test_format_mac_refuses_what_the_kernel_refuses(mac: bytes) -> None:
    with pytest.raises(InvalidArgumentError, match="is_valid_ether_addr"):
        format_value(mac, "mac")


def test_mac_index_overflow(demo_board_sysroot: Path) -> None:
    proc = demo(demo_board_sysroot, "get", "base-mac", "--format", "mac",
                "--index", "99999999999999999")
    assert proc.returncode == 2 and "overflows" in one_line_error(proc)


def test_string_strips_erased_padding(demo_board_sysroot: Path) -> None:
    proc = demo(demo_board_sysroot, "get", "asset-tag", "product-name", "--format", "string")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ASSET-0042\nnvmemd demo board rev B\n"
    assert format_value(b"ab\0\xff\xff", "string") == b"ab\n"


@pytest.mark.parametrize(("value", "text"), [
    (b"ABC\0junk", b"ABC"),  # a C string ends at its first NUL
    (b"ABC\0\0\xff\xff", b"ABC"),
    (b"ABC\xff\xff\xff", b"ABC"),  # erased EEPROM/flash
    (b"ABC\xff\0junk\0", b"ABC"),
    (b"a\tb", b"a\tb"),  # TAB is text
    ("gr\u00fc\u00dfe".encode(), "gr\u00fc\u00dfe".encode()),
    (b"\0\0\0", b""), (b"\xff" * 4, b""), (b"", b""),
])
def test_string_is_a_c_string(value: bytes, text: bytes) -> None:
    assert format_value(value, "string") == text + b"\n"


@pytest.mark.parametrize(("value", "where"), [
    (b"\x1b]0;pwned\x07\x1b[2J", "byte 0: 0x1b"),  # retitles and clears a terminal
    (b"ok\nthen", "byte 2: 0x0a"),
    (b"ok\x7f", "byte 2: 0x7f"),
    ("ok\u009b31m".encode(), "byte 2: U+009B"),  # C1 CSI
    (bytes(range(32)), "byte 1: 0x01"),  # binary from a NUL on (the demo's eeprom-cal)
    (b"ABC\0\x01\x02", "byte 4: 0x01"),
])
def test_string_refuses_control_characters(value: bytes, where: str) -> None:
    with pytest.raises(InvalidArgumentError) as e:
        format_value(value, "string")
    assert str(e.value) == (f"value holds control characters ({where}), not text; "
                            "use --format hex or --format raw")


def _poke(root: Path, provider: str, offset: int, data: bytes) -> None:
    nvmem = (root / "sys/bus/nvmem/devices" / provider).resolve() / "nvmem"
    with open(nvmem, "r+b") as f:
        f.seek(offset)
        f.write(data)


#: mtd2 asset-tag@20 (16 bytes): what a hostile or broken medium may hold there.
ASSET_TAGS = {"nul": b"ABC\0junk\xff\xff\xff\xff\xff\xff\xff\xff",
              "escape": b"\x1b]0;pwned\x07\x1b[2J\xff\xff",
              "latin1": b"Stra\xdfe\0".ljust(16, b"\xff")}


def test_string_embedded_nul_ends_the_text(demo_copy: Path) -> None:
    _poke(demo_copy, "mtd2", 0x20, ASSET_TAGS["nul"])
    proc = subprocess.run([QUERY, "--sysroot", str(demo_copy), "get", "asset-tag", "-f",
                           "string"], capture_output=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"ABC\n", b"")


@pytest.mark.parametrize("argv", [
    ("get", "eeprom-cal", "-f", "string"),
    ("get", "asset-tag", "-f", "string"),
    ("get", "hw-revision", "asset-tag", "serial#", "-f", "string"),
    ("get", "--env", "-f", "string", "serial#", "asset-tag"),
    ("get", "-f", "string", "--json", "serial#", "asset-tag"),
])
def test_string_refusals_name_the_cell(demo_copy: Path, argv: tuple[str, ...]) -> None:
    _poke(demo_copy, "mtd2", 0x20, ASSET_TAGS["escape"])
    proc = demo(demo_copy, *argv)
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_line_error(proc)
    assert "\x1b" not in line and "\x07" not in line
    if "eeprom-cal" in argv:
        assert line == ("nvmemd-query: mtd1: cell eeprom-cal@1000,0: value holds control "
                        "characters (byte 1: 0x01), not text; use --format hex or --format raw")
    else:
        assert line == ("nvmemd-query: mtd2: cell asset-tag@20,0: value holds control "
                        "characters (byte 0: 0x1b), not text; use --format hex or --format raw")


def test_string_not_utf8_names_the_cell(demo_copy: Path) -> None:
    _poke(demo_copy, "mtd2", 0x20, ASSET_TAGS["latin1"])
    proc = demo(demo_copy, "get", "asset-tag", "-f", "string")
    assert proc.returncode == 2 and proc.stdout == ""
    assert one_line_error(proc) == ("nvmemd-query: mtd2: cell asset-tag@20,0: value is not "
                                    "valid UTF-8 (byte 4: 0xdf); use --format hex or "
                                    "--format raw")
    # the bytes themselves are there for who asks for them
    assert demo(demo_copy, "get", "asset-tag").stdout == ASSET_TAGS["latin1"].hex() + "\n"


@pytest.mark.integration
@pytest.mark.parametrize("tag", sorted(ASSET_TAGS))
def test_string_over_dbus_as_direct(start_daemon: StartDaemon, demo_copy: Path,
                                    tag: str) -> None:
    """The formatting is the client's: the same output, error and exit status either way."""
    _poke(demo_copy, "mtd2", 0x20, ASSET_TAGS[tag])
    daemon = start_daemon(["--sysroot", str(demo_copy)])
    for argv in (["get", "asset-tag", "-f", "string"], ["get", "eeprom-cal", "-f", "string"],
                 ["get", "--env", "-f", "string", "serial#", "asset-tag"]):
        over_bus, direct = daemon.query(*argv), direct_query(demo_copy, *argv)
        assert (over_bus.returncode, over_bus.stdout, over_bus.stderr) == (
            direct.returncode, direct.stdout, direct.stderr), argv


# --- 8. options where people type them ---------------------------------------------------


def test_global_options_after_the_subcommand(demo_board_sysroot: Path) -> None:
    before = run("--sysroot", str(demo_board_sysroot), "providers")
    after = run("providers", "--sysroot", str(demo_board_sysroot))
    assert after.returncode == 0 and after.stdout == before.stdout
    assert run("cells", "-v", "--sysroot", str(demo_board_sysroot)).returncode == 0
    assert run("get", "hw-revision", "--direct", "--sysroot", str(demo_board_sysroot),
               "-f", "u8").stdout == "59\n"


@pytest.mark.parametrize("command", [["cells"], ["get", "board-eeprom1/serial-number"]])
def test_library_warnings_only_with_verbose(demo_board_sysroot: Path, tmp_path: Path,
                                            command: list[str]) -> None:
    """The library logs through nvmemd.logs: -v shows its warnings, a plain run stays quiet
    (and does not import logging for them)."""
    root = tmp_path / "board"
    shutil.copytree(demo_board_sysroot, root, symlinks=True)
    (root / "sys/firmware/fdt").write_bytes(b"not a device tree blob")
    quiet = demo(root, "--direct", *command)
    loud = demo(root, "--direct", *command, "-v")
    assert quiet.returncode == loud.returncode == 0, loud.stderr
    assert quiet.stderr == ""
    assert "ignoring unreadable /sys/firmware/fdt" in loud.stderr
    assert quiet.stdout == loud.stdout  # unit-address order: the same cells either way


def test_verbose_help_matches_level() -> None:
    out = run("--help").stdout
    assert "-v, --verbose" in out and "warnings and errors" in " ".join(out.split())


def test_every_option_has_help() -> None:
    from nvmemd.cli.main import build_parser

    parser = build_parser()
    subs = [a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction)]
    parsers = [parser, *subs[0].choices.values()]
    for p in parsers:
        for action in p._actions:
            assert action.help, (p.prog, action.option_strings or action.dest)


def test_daemon_version() -> None:
    proc = subprocess.run([str(VENV_BIN / "nvmemd"), "--version"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and re.fullmatch(r"nvmemd \S+\n", proc.stdout)


@pytest.mark.parametrize("argv", [
    ("--sysroot", "/", "--session", "providers"),
    ("--direct", "--address", "unix:path=/nonexistent", "providers"),
    ("providers", "--session", "--sysroot", "/"),
])
def test_conflicting_options(argv: tuple[str, ...]) -> None:
    proc = run(*argv)
    assert proc.returncode == 2 and "conflicts" in one_line_error(proc)


@pytest.mark.parametrize(("argv", "suggestion"), [
    (("cell",), "'cells'"),
    (("providers", "--jsn"), "'--json'"),
    (("get", "x", "--format", "strng"), "'string'"),
])
def test_typos_get_suggestions(argv: tuple[str, ...], suggestion: str) -> None:
    proc = run(*argv)
    assert proc.returncode == 2 and f"did you mean {suggestion}" in proc.stderr


def test_cell_typo_gets_suggestion(demo_board_sysroot: Path) -> None:
    proc = demo(demo_board_sysroot, "get", "serial-numbr")
    assert proc.returncode == 3 and "did you mean 'serial-number'" in one_line_error(proc)


@pytest.mark.parametrize("command", [("providers",), ("cells",), ("get", "hw-revision"),
                                     ("dump", "mtd1", "--length", "4"), ("verify",),
                                     ("wait", "hw-revision")])
def test_json_everywhere(demo_board_sysroot: Path, command: tuple[str, ...]) -> None:
    proc = demo(demo_board_sysroot, *command, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    json.loads(proc.stdout)


def test_json_before_the_subcommand(demo_board_sysroot: Path) -> None:
    before = demo(demo_board_sysroot, "--json", "providers")
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout) == json.loads(demo(demo_board_sysroot, "providers",
                                                        "--json").stdout)
    assert demo(demo_board_sysroot, "--json", "get", "hw-revision").stdout == demo(
        demo_board_sysroot, "get", "hw-revision", "--json").stdout


def test_verbose_counts_on_both_sides_of_the_subcommand() -> None:
    from nvmemd.cli.main import build_parser

    parser = build_parser()
    for argv in (["-v", "cells", "-v"], ["-vv", "cells"], ["cells", "-vv"]):
        args = parser.parse_args(argv)
        assert args.verbose + vars(args).get("verbose_after", 0) == 2, argv


@pytest.mark.parametrize("argv", [
    ("--address", "unix:path=/nonexistent", "--config", "/etc/nvmemd/nvmemd.toml", "providers"),
    ("--session", "get", "x", "--config", "/x.toml"),
    ("--address", "unix:path=/nonexistent", "snapshot", "-"),
    ("--session", "snapshot", "/nonexistent/out.tar.gz"),
])
def test_options_the_daemon_cannot_honour_are_refused(argv: tuple[str, ...]) -> None:
    proc = run(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "conflicts" in one_line_error(proc) or "does not apply" in proc.stderr


def test_config_implies_direct(demo_board_sysroot: Path) -> None:
    """--config is a file for direct mode: with it, a running daemon is not asked."""
    from nvmemd.cli.common import dbus_backend
    from nvmemd.cli.main import build_parser

    args = build_parser().parse_args(["--config", "/x.toml", "providers"])
    assert dbus_backend(args) is None


@pytest.mark.parametrize("fmt", ["hex", "string", "mac", "u8"])
def test_endian_only_with_multibyte_integers(demo_board_sysroot: Path, fmt: str) -> None:
    proc = demo(demo_board_sysroot, "get", "hw-revision", "--endian", "big", "--format", fmt)
    assert proc.returncode == 2 and "--endian" in one_line_error(proc)
    ok = demo(demo_board_sysroot, "get", "hw-revision", "--endian", "big", "--format", "u16")
    assert ok.returncode == 0 and ok.stdout == f"{0x3b00}\n"


@pytest.mark.parametrize("address", ["garbage", "tcp:host=localhost,port=1", "unix:path=%zz"])
def test_unusable_bus_address_is_invalid_input(address: str) -> None:
    proc = run("--address", address, "providers")
    assert proc.returncode == 2, proc.stderr
    assert "address" in one_line_error(proc)


@pytest.mark.parametrize("command", [("cells", "board-eeprm1"), ("dump", "board-eeprm1"),
                                     ("get", "serial-number", "--provider", "board-eeprm1"),
                                     ("get", "board-eeprm1/serial-number")])
def test_mistyped_provider_gets_suggestion(demo_board_sysroot: Path,
                                           command: tuple[str, ...]) -> None:
    proc = demo(demo_board_sysroot, *command)
    assert proc.returncode == 3
    assert one_line_error(proc) == ("nvmemd-query: no nvmem provider named 'board-eeprm1'; "
                                    "did you mean 'board-eeprom1'?")


def test_cells_takes_provider_option_too(demo_board_sysroot: Path) -> None:
    positional = demo(demo_board_sysroot, "cells", "imx-ocotp0")
    option = demo(demo_board_sysroot, "cells", "--provider", "imx-ocotp0")
    assert option.returncode == 0 and option.stdout == positional.stdout
    assert "imx-ocotp0" in option.stdout and "mtd1" not in option.stdout
    assert demo(demo_board_sysroot, "cells", "mtd1", "--provider", "imx-ocotp0").returncode == 2


@pytest.mark.parametrize(("argv", "expected"), [
    (("dump", "--provider", "mtd1"), "--provider is not an option of dump (it is one of "
                                     "cells, get, wait): dump PROVIDER names it"),
    (("providers", "--format", "hex"), "--format is not an option of providers (it is one "
                                       "of get)"),
])
def test_option_of_another_subcommand_is_named_as_such(argv: tuple[str, ...],
                                                       expected: str) -> None:
    proc = run(*argv)
    assert proc.returncode == 2
    # argparse's form for a subcommand's errors, after the subcommand's usage
    assert proc.stderr.splitlines()[-1] == f"nvmemd-query {argv[0]}: error: {expected}"
    assert proc.stderr.startswith(f"usage: nvmemd-query {argv[0]} ")


def test_suggestions_are_options_of_the_subcommand() -> None:
    """Only names the subcommand takes: `providers --prvider` is not answered with
    get's --provider (nor `cells --provider` with --provider itself, as it was)."""
    proc = run("providers", "--prvider")
    assert proc.returncode == 2 and "'--provider'" not in proc.stderr
    proc = run("providers", "--nmaes")
    assert "did you mean '--names'" in proc.stderr


@pytest.mark.parametrize("command", [("get", "unique-id"), ("providers",)])
def test_standard_output_that_cannot_be_written(demo_board_sysroot: Path,
                                                command: tuple[str, ...]) -> None:
    """A closed stdout (`>&-`) or a full disk: one line naming standard output, exit 5."""
    closed = subprocess.run([QUERY, "--sysroot", str(demo_board_sysroot), *command],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            timeout=60, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 5
    assert closed.stderr == "nvmemd-query: standard output is closed: nowhere to write\n"
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([QUERY, "--sysroot", str(demo_board_sysroot), *command],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 5
    assert proc.stderr == "nvmemd-query: standard output: No space left on device\n"


# --- 9. docs agree on at24 ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["data/nvmemd.toml", "man/nvmemd.toml.5.scd"])
def test_at24_does_not_opt_into_legacy_cells(path: str) -> None:
    text = " ".join((REPO / path).read_text().split())
    assert not re.search(r"add_legacy_fixed_of_cells \(\s*(e\.g\.\s*)?at24", text)
    assert re.search(r"not at24|at24,? [^.]*does \*?not\*?", text), path


# --- 12. README: how the demo's commands get on PATH --------------------------------------


def test_readme_says_how_to_get_nvmemd_query_on_path() -> None:
    readme = (REPO / "README.md").read_text()
    assert ". .venv/bin/activate" in readme
    assert (VENV_BIN / "nvmemd-query").exists()


# --- 14. several cells per call, environment output --------------------------------------


def test_get_several(demo_board_sysroot: Path) -> None:
    proc = demo(demo_board_sysroot, "get", "hw-revision", "u-boot-env0/ethaddr", "-f", "hex")
    assert proc.stdout == "3b00\n02005e100010\n"
    records = json.loads(demo(demo_board_sysroot, "get", "hw-revision", "asset-tag",
                              "--json").stdout)
    assert [r["name"] for r in records] == ["hw-revision", "asset-tag"]
    # one bad spec: nothing printed, the error's exit code
    proc = demo(demo_board_sysroot, "get", "hw-revision", "nope")
    assert proc.returncode == 3 and proc.stdout == ""


def test_get_env(demo_board_sysroot: Path, tmp_path: Path) -> None:
    proc = demo(demo_board_sysroot, "get", "--env", "-f", "string", "serial#",
                "PRODUCT=product-name", "board-eeprom1/serial-number")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ('SERIAL_="NVD-2026-000042"\nPRODUCT="nvmemd demo board rev B"\n'
                           'SERIAL_NUMBER="NVD-2026-000042"\n')
    env_file = tmp_path / "board.env"
    env_file.write_text(proc.stdout)
    shell = subprocess.run(["sh", "-c", f'. "{env_file}"; printf %s "$PRODUCT"'],
                           capture_output=True, text=True, check=True)
    assert shell.stdout == "nvmemd demo board rev B"


def test_env_quoting() -> None:
    assert env_name("mac-address") == "MAC_ADDRESS" and env_name("0x") == "_0X"
    assert env_line("A", b'a"$`\\b\n') == b'A="a\\"\\$\\`\\\\b"\n'
    with pytest.raises(InvalidArgumentError):
        env_line("A", b"a\nb\n")
    # the same control characters as --format string: TAB is text, C1 CSI is not
    assert env_line("A", b"a\tb\n") == b'A="a\tb"\n'
    with pytest.raises(InvalidArgumentError, match="U\\+009B"):
        env_line("A", "a\u009b31m\n".encode())
    with pytest.raises(InvalidArgumentError):
        env_line("1A", b"x\n")


# --- 15. readable values in the cells table -----------------------------------------------


def test_cells_table_shows_text(demo_board_sysroot: Path) -> None:
    out = demo(demo_board_sysroot, "cells").stdout
    assert out.splitlines()[0].split()[-1] == "TEXT"
    line = next(ln for ln in out.splitlines() if "product-name" in ln)
    assert line.endswith('"nvmemd demo board rev B"')
    hw = next(ln for ln in out.splitlines() if "hw-revision" in ln)
    assert hw.rstrip().endswith("3b00")  # one printable byte is no text


def test_cells_table_text_is_what_format_string_prints(demo_copy: Path) -> None:
    def text_column() -> str:
        out = demo(demo_copy, "cells", "mtd2").stdout
        line = next(ln for ln in out.splitlines() if "asset-tag" in ln)
        return line.split()[-1]

    _poke(demo_copy, "mtd2", 0x20, ASSET_TAGS["nul"])
    assert text_column() == '"ABC"'
    _poke(demo_copy, "mtd2", 0x20, b"ABC\0\x01\x02".ljust(16, b"\xff"))
    assert text_column() == "414243000102ffffffffffffffffffff"  # no text: the hex is last


def test_cells_table_text_reads_back_one_way(demo_copy: Path) -> None:
    """UTF-8 text is text too; quotes and backslashes inside it are escaped, so the
    column is not ambiguous; bidirectional overrides are no text."""
    def text_column() -> str:
        out = demo(demo_copy, "cells", "mtd2").stdout
        line = next(ln for ln in out.splitlines() if "asset-tag" in ln)
        return line[line.index("fixed-layout"):].split(None, 2)[-1]

    _poke(demo_copy, "mtd2", 0x20, 'Größe "5" \\x'.encode().ljust(16, b"\xff"))
    assert text_column() == '"Größe \\"5\\" \\\\x"'
    _poke(demo_copy, "mtd2", 0x20, "abc\u202edef".encode().ljust(16, b"\xff"))
    assert text_column() == "616263e280ae646566ffffffffffffff"


# --- 10. snapshots unpack with tar and replay ---------------------------------------------


def _replay_commands(root: Path) -> list[tuple[str, ...]]:
    cmds: list[tuple[str, ...]] = [("providers",), ("cells",), ("verify",)]
    netdevs = sorted(os.listdir(root / "sys/class/net")) if (root / "sys/class/net").is_dir() \
        else []
    cmds += [("get", "--netdev", n, "mac-address", "-f", "mac") for n in netdevs]
    return cmds


@pytest.mark.skipif(shutil.which("tar") is None, reason="tar missing")
def test_snapshot_of_demo_unpacks_with_tar_and_replays(demo_board_sysroot: Path,
                                                       tmp_path: Path) -> None:
    archive = tmp_path / "snap.tar.gz"
    proc = demo(demo_board_sysroot, "snapshot", "--include-protected", str(archive))
    assert proc.returncode == 0, proc.stderr
    replay = tmp_path / "replay"
    replay.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(replay)], check=True)
    for cmd in _replay_commands(demo_board_sysroot):
        want, got = demo(demo_board_sysroot, *cmd), demo(replay, *cmd)
        assert (got.returncode, got.stdout) == (want.returncode, want.stdout), cmd


def test_snapshot_to_stdout(demo_board_sysroot: Path, tmp_path: Path) -> None:
    proc = subprocess.run([QUERY, "--sysroot", str(demo_board_sysroot), "snapshot", "-"],
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "s.tar.gz").write_bytes(proc.stdout)
    with tarfile.open(tmp_path / "s.tar.gz") as tf:
        assert "nvmemd-snapshot/info.json" in tf.getnames()
    assert b"provider(s)" in proc.stderr


# --- 3. the board.env example unit, its ExecStart= run verbatim ----------------------------


def test_board_env_example_exec_start(demo_board_sysroot: Path, tmp_path: Path) -> None:
    from .test_systemd_units import BOARD_ENV_UNIT, one, parse_unit

    unit = parse_unit(BOARD_ENV_UNIT)
    assert one(unit, "Service", "RuntimeDirectory") == "nvmemd"
    run_dir = tmp_path / "run"
    (run_dir / "nvmemd").mkdir(parents=True)  # RuntimeDirectory=nvmemd
    argv = expand_exec(_exec_start(BOARD_ENV_UNIT), "", runtime_dir=str(run_dir))
    proc = subprocess.run(argv, env=unit_env(demo_board_sysroot), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    env_file = run_dir / "nvmemd" / "board.env"
    assert env_file.read_text() == ('SERIAL="NVD-2026-000042"\n'
                                    'PRODUCT="nvmemd demo board rev B"\nASSET="ASSET-0042"\n')
    assert not list((run_dir / "nvmemd").glob("*.tmp"))
    shell = subprocess.run(["sh", "-c", f'. "{env_file}"; printf %s "$PRODUCT"'],
                           capture_output=True, text=True, check=True)
    assert shell.stdout == "nvmemd demo board rev B"


def test_board_env_example_leaves_no_file_when_a_cell_fails(tmp_path: Path) -> None:
    """A board without the cells: the unit fails with nvmemd-query's status and leaves
    neither board.env nor its temporary file in the runtime directory."""
    from .test_systemd_units import BOARD_ENV_UNIT

    board = tmp_path / "sysroot"
    (board / "sys" / "bus" / "nvmem" / "devices").mkdir(parents=True)
    run_dir = tmp_path / "run"
    (run_dir / "nvmemd").mkdir(parents=True)
    argv = expand_exec(_exec_start(BOARD_ENV_UNIT), "", runtime_dir=str(run_dir))
    proc = subprocess.run(argv, env=unit_env(board), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3, proc.stderr  # no such provider
    assert list((run_dir / "nvmemd").iterdir()) == []


# --- start-up (issue 12 #1): the common get forms skip argparse; the bus path is stdlib-lean


FAST_ARGV = [
    ["get", "a"],
    ["get", "board-eeprom1/serial-number", "--format", "string"],
    ["--sysroot", "/x", "get", "a", "b", "--json"],
    ["--sysroot=", "--direct", "get", "-f", "u32", "--endian", "big", "a"],
    ["get", "--env", "SERIAL=p/serial", "p/mac", "--provider", "p"],
    ["--address", "unix:path=/x", "get", "a", "--session"],
    ["get", "--format", "mac", "a", "--sysroot", "/y"],
    ["--sysroot", "/x", "get", "a", "--sysroot", "/y"],
    ["get", "-", "x"],
    ["--json", "get", "a"],
]
SLOW_ARGV = [
    ["get"], ["cells"], ["-v", "get", "a"], ["get", "a", "-v"],
    ["get", "a", "--json", "b"], ["get", "a", "--form", "hex"], ["get", "-fhex", "a"],
    ["get", "a", "--format", "bogus"], ["get", "a", "--endian", "middle"],
    ["get", "--consumer", "n", "a"], ["get", "a", "--index", "1"], ["get", "--", "a"],
    ["get", "a", "--help"], ["--provider", "p", "get", "a"], ["get", "a", "--sysroot"],
    ["get", "a", "--direct=1"], ["get", "a", "--provider", "-x"], ["x", "get", "a"],
]


@pytest.mark.parametrize("argv", FAST_ARGV, ids=" ".join)
def test_fast_path_parses_as_argparse_does(argv: list[str]) -> None:
    from nvmemd.cli.fast import parse_get
    from nvmemd.cli.main import build_parser

    fast = parse_get(argv)
    assert fast is not None
    full = vars(build_parser().parse_args(argv))
    assert {k: getattr(fast, k) for k in full} == full


@pytest.mark.parametrize("argv", SLOW_ARGV, ids=" ".join)
def test_fast_path_leaves_the_rest_to_argparse(argv: list[str]) -> None:
    from nvmemd.cli.fast import parse_get

    assert parse_get(argv) is None


def test_bus_path_imports_stay_lean() -> None:
    """What `nvmemd-query get` over D-Bus loads: no argparse, dataclasses, typing, re,
    logging or pathlib (each costs a fraction of Python's own start-up)."""
    code = ("import sys; import nvmemd.cli.fast, nvmemd.cli.common, nvmemd.dbus.client\n"
            "from nvmemd.cli.fast import parse_get; parse_get(['get', 'p/x', '-f', 'mac'])\n"
            "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    heavy = {"argparse", "dataclasses", "typing", "re", "logging", "pathlib", "inspect",
             "nvmemd.model", "nvmemd.records", "nvmemd.sysroot"}
    assert loaded & heavy == set()


#: What a direct `get` must not load (each costs a good part of Python's own start-up;
#: HACKING.md, "Start-up").
LEAN_FORBIDDEN = frozenset({"argparse", "dataclasses", "typing", "re", "logging", "pathlib",
                            "inspect", "enum", "functools", "collections", "weakref", "string",
                            "tomllib", "json", "difflib"})


@pytest.mark.parametrize("specs", [
    ["board-eeprom1/serial-number", "--format", "string"],  # ONIE TLV layout
    ["u-boot-env0/ethaddr", "--format", "mac"],  # U-Boot environment, ASCII MAC post-processing
    ["imx-ocotp0/mac-address", "--format", "mac"],  # legacy cells, imx-ocotp fixup
    ["serial-number", "hw-revision", "--format", "hex"],  # names: every provider scanned
], ids=lambda specs: specs[0])
def test_direct_get_imports_stay_lean(demo_board_sysroot: Path, specs: list[str]) -> None:
    """A direct `get` on the demo board runs on modules `python -c pass` has loaded, cheap
    built-ins, libfdt (DT order) and nvmemd's own: the start-up target of issue 12."""
    code = ("import sys\nfrom nvmemd.cli.fast import main\ncode = main(sys.argv[1:])\n"
            "sys.stdout.flush()\nprint(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
            "sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", code, "--sysroot", str(demo_board_sysroot),
                           "--direct", "get", *specs], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    loaded = set(proc.stderr.split())
    assert "nvmemd.registry" in loaded  # it did scan
    assert loaded & LEAN_FORBIDDEN == set()


# --- issue 12 #4: README teaches the slash form, and its commands run as documented


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape missing")
def test_readme_boot_integration_as_documented(demo_board_sysroot: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert not re.search(r"nvmemd-wait@[^ ]*:", readme), "the colon form in a unit name"
    instances = set(re.findall(r"^\s*(?:Requires|After)=nvmemd-wait@(\S+)\.service$", readme,
                               re.M))
    assert instances == {r"board\x2deeprom1-serial\x2dnumber"}
    (instance,) = instances
    escaped = subprocess.run(["systemd-escape", "board-eeprom1/serial-number"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert escaped == instance and f"systemd-escape {'board-eeprom1/serial-number'}" in readme
    argv = _local_binaries(expand_exec(_exec_start(WAIT_UNIT), instance))
    proc = subprocess.run(argv, env=unit_env(demo_board_sysroot), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # the README's get example, verbatim
    m = re.search(r"^\$ (nvmemd-query get board-eeprom1/serial-number --format string)\n(.*)$",
                  readme, re.M)
    assert m is not None
    out = demo(demo_board_sysroot, *m[1].split()[1:])
    assert out.stdout == m[2] + "\n", out.stderr


def test_readme_format_string_refusal_as_documented(demo_board_sysroot: Path) -> None:
    readme = (REPO / "README.md").read_text()
    m = re.search(r"^\$ (nvmemd-query get eeprom-cal --format string)\n(.*)\n\$ echo \$\?\n"
                  r"(\d+)$", readme, re.M)
    assert m is not None
    out = demo(demo_board_sysroot, *m[1].split()[1:])
    assert (out.returncode, out.stdout, out.stderr) == (int(m[3]), "", m[2] + "\n")
