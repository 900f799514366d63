#!/usr/bin/env python3
"""Run the system test: boot the cached Debian arm64 image under qemu with a real kernel, the
board of board.dts, and the nvmemd .deb under test, and run guest/checks.py inside.

    python3 tools/systemtest/run.py --deb build/deb/nvmemd_*_all.deb [--kernel 6.12]
                                     [--checks NAME,...] [--timeout S] [--results DIR]

The guest gets everything over one 9p share (tag "systest"): in/ (the .deb, the checks, the
expected CLI outputs computed here with the venv) and out/ (results.txt, journal.txt, ...),
which is copied to --results (default build/systemtest/results/). The root disk is the
cached qcow2 with snapshot=on: the cache never changes. The guest has no network (-nic
none; its only NIC, the DT consumer of the set-MAC check, has no backend).

Exit status: 0 if every required check passed, 1 if one failed, 2 if the VM timed out or
reported nothing. Result lines: `PASS name`, `FAIL name: why`, and for the checks that wait
for pending product work, `XFAIL name: why` / `XPASS name` (never fatal).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import board_images
import build_image
import vmlib

PFLASH_SIZE = 64 << 20
# the set-MAC check's NIC; its DT node in board.dts is ethernet@5,0 (devfn 0x28). No netdev
# backend (qemu warns "has no peer"): nothing can leave the VM. romfile=: no iPXE ROM needed.
NIC_ARGS = ["-device", "virtio-net-pci,addr=05.0,romfile="]
# where fixture sysroots are unpacked, the same path on the host and in the guest, so that
# the CLI's messages (which may name the sysroot) compare byte for byte
FIXTURE_ROOT = "/tmp/nvmemd-systest-fixtures"
CLI_COMMANDS = [["cells", "--json"], ["providers", "--json"]]


def board_dtb(kernel: vmlib.Kernel, work: Path, qemu_args: list[str]) -> Path:
    base = vmlib.RECORD.machine_dts(kernel.rk, work, qemu_args)
    board = (vmlib.HERE / "board.dts").read_text()
    return Path(vmlib.RECORD.build_dtb(base, board, "virt", work))


def expected_cli(repo: Path, dest: Path) -> list[str]:
    """The venv's nvmemd-query output on each committed real-kernel recording: what the
    installed package (Debian's python3 and python3-* packages) must print in the guest."""
    venv_query = repo / ".venv" / "bin" / "nvmemd-query"
    if not venv_query.exists():
        vmlib.fail(f"{venv_query} missing: run `make setup` first")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
    names = []
    shutil.rmtree(FIXTURE_ROOT, ignore_errors=True)
    for archive in sorted((repo / "tests" / "fixtures" / "realkernel").glob("*/sysroot.tar.gz")):
        name = archive.parent.name
        sysroot = Path(FIXTURE_ROOT) / name
        sysroot.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(sysroot, filter="tar")
        shutil.copy2(archive, dest / f"{name}.tar.gz")
        for args in CLI_COMMANDS:
            r = subprocess.run([str(venv_query), "--sysroot", str(sysroot), "--direct", *args],
                               capture_output=True, env=env, timeout=120)
            tag = f"{name}.{args[0]}"
            (dest / f"{tag}.stdout").write_bytes(r.stdout)
            (dest / f"{tag}.stderr").write_bytes(r.stderr)
            (dest / f"{tag}.rc").write_text(str(r.returncode))
        names.append(name)
    shutil.rmtree(FIXTURE_ROOT, ignore_errors=True)
    return names


def prepare_share(share: Path, deb: Path, checks: list[str], repo: Path) -> None:
    shutil.rmtree(share, ignore_errors=True)
    inp, out = share / "in", share / "out"
    (inp / "fixtures").mkdir(parents=True)
    out.mkdir(parents=True)
    shutil.copy2(deb, inp / "nvmemd.deb")
    for f in ("guest-main.sh", "checks.py"):
        shutil.copy2(vmlib.GUEST / f, inp / f)
    (inp / "guest-main.sh").chmod(0o755)
    meta = tomllib.loads((repo / "pyproject.toml").read_text())
    config = {
        "checks": checks,
        "version": meta["project"]["version"],
        "board_mac": board_images.BOARD_MAC,
        "fixture_root": FIXTURE_ROOT,
        "fixtures": expected_cli(repo, inp / "fixtures"),
        "cli_commands": CLI_COMMANDS,
    }
    (inp / "config.json").write_text(json.dumps(config, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deb", required=True, type=Path)
    ap.add_argument("--kernel", default="6.12", choices=sorted(vmlib.KERNELS))
    ap.add_argument("--checks", default="", help="comma-separated check names (default: all)")
    ap.add_argument("--timeout", type=int, default=1500, help="whole VM run, seconds")
    ap.add_argument("--results", type=Path, default=vmlib.REPO / "build" / "systemtest" /
                    "results")
    args = ap.parse_args()
    t0 = time.monotonic()
    repo = vmlib.REPO
    vmlib.ensure_host_packages()
    image = build_image.build(args.kernel, force=False)
    kernel = vmlib.prepare_kernel(args.kernel)
    work = repo / "build" / "systemtest" / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    share = work / "share"
    checks = [c for c in args.checks.replace(" ", ",").split(",") if c]
    prepare_share(share, args.deb.resolve(), checks, repo)

    images = board_images.images()
    dev_args: list[str] = []
    for name, addr in board_images.LOADERS.items():
        p = work / f"{name}.img"
        p.write_bytes(images[name])
        dev_args += ["-device", f"loader,file={p},addr={addr:#x},force-raw=on"]
    flash = work / "pflash1.img"
    data = images[board_images.FLASH]
    flash.write_bytes(data + b"\xff" * (PFLASH_SIZE - len(data)))
    dev_args += ["-drive", f"if=pflash,unit=1,format=raw,file={flash}"]
    dtb = board_dtb(kernel, work, [*vmlib.QEMU_MACHINE, *dev_args])
    dev_args += ["-dtb", str(dtb), *NIC_ARGS,
                 "-virtfs", f"local,path={share},mount_tag=systest,security_model=none"]
    console = work / "console.log"
    # No -no-reboot: the checks reboot once (boot-time units) and the qemu snapshot of the
    # root disk lives as long as the qemu process.
    cmd = vmlib.qemu_command(kernel, str(image), True, "quiet panic=-1 systemd.show_status=0",
                             console, dev_args)
    vmlib.log(f"booting {image.name} with {kernel.release} (timeout {args.timeout} s; "
              f"console: {console})")
    t1 = time.monotonic()
    r = subprocess.run(["timeout", "--kill-after=10", str(args.timeout), *cmd],
                       stdin=subprocess.DEVNULL)
    vm_time = time.monotonic() - t1

    shutil.rmtree(args.results, ignore_errors=True)
    shutil.copytree(share / "out", args.results)
    shutil.copy2(console, args.results / "console.log")
    results = args.results / "results.txt"
    lines = results.read_text().splitlines() if results.exists() else []
    for line in lines:
        print(line)
    failed = [ln for ln in lines if ln.startswith("FAIL ")]
    done = (args.results / "done").exists()
    vmlib.log(f"VM {vm_time:.0f} s, total {time.monotonic() - t0:.0f} s; results, journal and "
              f"console in {os.path.relpath(args.results)}/")
    if r.returncode == 124 or not done:
        vmlib.log(f"the VM {'timed out' if r.returncode == 124 else 'stopped early'} "
                  f"(qemu/timeout status {r.returncode}); see "
                  f"{os.path.relpath(args.results)}/console.log")
        return 2
    passed = sum(ln.startswith("PASS ") for ln in lines)
    xfail = sum(ln.startswith(("XFAIL ", "XPASS ")) for ln in lines)
    print(f"system-test: {passed} passed, {len(failed)} failed, {xfail} pending")
    return 1 if failed or not lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
