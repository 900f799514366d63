#!/usr/bin/env python3
"""`make demo`: build the demo board's sysroot and show it with nvmemd-query."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from nvmemd.mksysroot import build_sysroot

HERE = Path(__file__).resolve().parent
SYSROOT = HERE / "sysroot"
QUERY = [sys.executable, "-m", "nvmemd.cli", "--sysroot", str(SYSROOT)]


def show(*args: str) -> None:
    print(f"\n$ nvmemd-query --sysroot {SYSROOT.relative_to(Path.cwd()) if SYSROOT.is_relative_to(Path.cwd()) else SYSROOT} "
          + " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run([*QUERY, *args], check=True)


def main() -> int:
    shutil.rmtree(SYSROOT, ignore_errors=True)
    build_sysroot(HERE / "board.dts", tomllib.loads((HERE / "board.toml").read_text()), SYSROOT)
    print(f"demo board sysroot built in {SYSROOT}")
    show("--direct", "providers")
    show("--direct", "cells")
    show("--direct", "get", "mac-address", "--provider", "imx-ocotp0", "--format", "mac")
    show("--direct", "get", "board-eeprom1:serial-number", "--format", "string")
    show("--direct", "get", "&wifi_mac", "--format", "mac")
    show("--direct", "get", "hw-revision", "--format", "u8")
    show("--direct", "dump", "mtd1", "--length", "32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
