"""Build sysroots for tests: DTS compiled by dtc, expanded like the kernel's sysfs."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from mksysroot import build_sysroot

DATA = Path(__file__).parent / "data"


def board_sysroot(case: str, out: Path) -> Path:
    """The sysroot of ``tests/data/<case>/`` (board.dts + board.toml)."""
    src = DATA / case
    board = tomllib.loads((src / "board.toml").read_text())
    return build_sysroot(src / "board.dts", board, out / case)


def inline_sysroot(tmp: Path, dts: str, providers: list[dict[str, Any]],
                   config: str | None = None) -> Path:
    (tmp / "src").mkdir(parents=True, exist_ok=True)
    dts_path = tmp / "src" / "board.dts"
    dts_path.write_text(dts)
    board: dict[str, Any] = {"provider": providers}
    if config is not None:
        board["config"] = config
    return build_sysroot(dts_path, board, tmp / "root")


def query(sysroot: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run ``nvmemd-query --sysroot S --direct ARGS`` as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "nvmemd.cli", "--sysroot", str(sysroot), "--direct", *args],
        capture_output=True, timeout=60,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr.decode()}")
    return proc


def query_json(sysroot: Path, *args: str) -> Any:
    return json.loads(query(sysroot, *args, "--json").stdout)


#: Breakages a sysroot copy is put through (break_sysroot), with the exit status and the
#: one line nvmemd-query and nvmemd give: "000:REL" is REL at mode 000 (read as a user
#: without CAP_DAC_OVERRIDE: nobody, or nvmemd.service's capability-less root).
UNREADABLE: list[tuple[str, int, str]] = [
    ("000:", 4, "sysroot {root}: permission denied"),
    ("000:sys", 4, "/sys/bus/nvmem: permission denied"),
    ("000:sys/bus/nvmem/devices", 4, "/sys/bus/nvmem/devices: permission denied"),
]
#: Broken for root as well.
BROKEN: list[tuple[str, int, str]] = [
    ("loop:sys/bus/nvmem", 5, "too many levels of symbolic links resolving /sys/bus/nvmem"),
    ("file:sys/bus/nvmem/devices", 5, "/sys/bus/nvmem/devices: not a directory"),
]


def break_sysroot(root: Path, how: str) -> None:
    """Break *root* as *how* says: ``000:REL`` (REL at mode 000; ``000:`` the root),
    ``loop:REL`` (REL replaced by a link to itself), ``file:REL`` (by an empty file)."""
    import shutil

    kind, _, rel = how.partition(":")
    path = root / rel if rel else root
    if kind == "000":
        path.chmod(0)
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    if kind == "loop":
        path.symlink_to(path.name)
    else:
        assert kind == "file", how
        path.write_bytes(b"")


def query_as_nobody(sysroot: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``query()`` as the unprivileged user nobody (the caller is root, with setpriv)."""
    import os
    import shutil

    import pytest

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as nobody")
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
         "-m", "nvmemd.cli", "--sysroot", str(sysroot), "--direct", *args],
        capture_output=True, timeout=60, cwd="/",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
