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
