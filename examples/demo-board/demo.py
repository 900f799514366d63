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
    # DT consumers (issue 4): what the Ethernet drivers get, by DT path and by interface
    show("--direct", "get", "--netdev", "eth0", "mac-address", "--format", "mac")
    show("--direct", "get", "--consumer", "/soc@0/ethernet@30bf0000", "mac-address",
         "--format", "mac")
    show("--direct", "get", "u-boot-env0:ethaddr", "--format", "mac", "--index", "2")
    show("--direct", "get", "base-mac", "--format", "mac", "--index", "1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
