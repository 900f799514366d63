#!/usr/bin/env python3
"""`make demo`: build the demo board's sysroot and show it with nvmemd-query."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tools"))  # mksysroot: a developer tool, not installed

from mksysroot import build_sysroot  # noqa: E402

SYSROOT = HERE / "sysroot"
QUERY = [sys.executable, "-m", "nvmemd.cli", "--sysroot", str(SYSROOT)]


def show(*args: str) -> None:
    shown = SYSROOT.relative_to(Path.cwd()) if SYSROOT.is_relative_to(Path.cwd()) else SYSROOT
    print(f"\n$ nvmemd-query --sysroot {shown} " + " ".join(shlex.quote(a) for a in args),
          flush=True)
    subprocess.run([*QUERY, *args], check=True)


def main() -> int:
    shutil.rmtree(SYSROOT, ignore_errors=True)
    build_sysroot(HERE / "board.dts", tomllib.loads((HERE / "board.toml").read_text()), SYSROOT)
    print(f"demo board sysroot built in {SYSROOT}")
    show("--direct", "providers")
    show("--direct", "cells")
    show("--direct", "get", "mac-address", "--provider", "imx-ocotp0", "--format", "mac")
    show("--direct", "get", "board-eeprom1/serial-number", "--format", "string")
    show("--direct", "get", "&wifi_mac", "--format", "mac")
    show("--direct", "get", "hw-revision", "--format", "u8")
    show("--direct", "dump", "mtd1", "--length", "32")
    # DT consumers (issue 4): what the Ethernet drivers get, by DT path and by interface
    show("--direct", "get", "--netdev", "eth0", "mac-address", "--format", "mac")
    show("--direct", "get", "--consumer", "/soc@0/ethernet@30bf0000", "mac-address",
         "--format", "mac")
    show("--direct", "get", "u-boot-env0/ethaddr", "--format", "mac", "--index", "2")
    show("--direct", "get", "base-mac", "--format", "mac", "--index", "1")
    return on_dbus()


SESSION_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
NVMEMD_NAME = "org.nvmemd.Nvmem1"


def _run(title: str, cmd: list[str]) -> None:
    print(f"\n$ {title}", flush=True)
    subprocess.run(cmd, check=True, timeout=30)


def on_dbus() -> int:
    """The daemon on a private bus, seen through nvmemd-query and busctl (issue 3)."""
    import tempfile
    import time

    if not (shutil.which("dbus-daemon") and shutil.which("busctl")):
        print("\n(dbus-daemon or busctl missing: skipping the D-Bus part)")
        return 0
    print("\n--- the same board through nvmemd on a private D-Bus bus ---", flush=True)
    with tempfile.TemporaryDirectory(prefix="nvmemd-demo-") as tmp:
        conf = Path(tmp) / "bus.conf"
        conf.write_text(SESSION_CONF.format(socket=Path(tmp) / "bus"))
        bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork",
                                "--print-address=1"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        daemon = None
        try:
            assert bus.stdout is not None
            address = bus.stdout.readline().strip()
            daemon = subprocess.Popen([sys.executable, "-m", "nvmemd.daemon", "--address",
                                       address, "--sysroot", str(SYSROOT)])
            busctl = ["busctl", f"--address={address}"]
            deadline = time.monotonic() + 20
            while subprocess.run([*busctl, "status", NVMEMD_NAME], capture_output=True
                                 ).returncode:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    print("nvmemd did not come up", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            print(f"nvmemd is on the bus at {address}")
            short = address.split(",")[0]
            _run(f"nvmemd-query --address {short} cells",
                 [sys.executable, "-m", "nvmemd.cli", "--address", address, "cells"])
            _run(f"nvmemd-query --address {short} get '&wifi_mac' --format mac",
                 [sys.executable, "-m", "nvmemd.cli", "--address", address, "get", "&wifi_mac",
                  "--format", "mac"])
            _run(f"busctl --address={short} tree {NVMEMD_NAME}",
                 [*busctl, "tree", NVMEMD_NAME])
            cell = "/org/nvmemd/Nvmem1/providers/imx_2docotp0/cells/mac_2daddress_4090_2c0"
            _run(f"busctl --address={short} introspect {NVMEMD_NAME} {cell}",
                 [*busctl, "introspect", NVMEMD_NAME, cell])
            _run(f"busctl --address={short} call {NVMEMD_NAME} {cell} "
                 "org.nvmemd.Nvmem1.Cell Read",
                 [*busctl, "call", NVMEMD_NAME, cell, "org.nvmemd.Nvmem1.Cell", "Read"])
            _run(f"busctl --address={short} call {NVMEMD_NAME} /org/nvmemd/Nvmem1 "
                 "org.nvmemd.Nvmem1.Manager ReadCellByName s board-eeprom1/serial-number",
                 [*busctl, "call", NVMEMD_NAME, "/org/nvmemd/Nvmem1",
                  "org.nvmemd.Nvmem1.Manager", "ReadCellByName", "s",
                  "board-eeprom1/serial-number"])
        finally:
            if daemon is not None:
                daemon.terminate()
                daemon.wait(timeout=20)
            bus.terminate()
            bus.wait(timeout=20)
        print(f"\nnvmemd stopped (exit status {daemon.returncode if daemon else '-'}), "
              "bus stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
