#!/usr/bin/env python3
"""Build (once) and cache the system test's root image: Debian bookworm arm64, minbase plus
systemd, udev, D-Bus, polkit and nvmemd's Python dependencies, as a compressed qcow2.

    python3 tools/systemtest/build_image.py [--kernel 6.12] [--force]

prints the image path. The image lives in the cache (vmlib.cache_dir()), keyed by a hash of
the package list and of the guest scripts baked into it, so a change to either builds a new
one and an unchanged tree reuses it. It holds no kernel modules (the runner adds a modules
disk per kernel), so one image serves every kernel.

Steps (about 15 min on 2 cores, once):
1. debootstrap --foreign on the host (no binfmt needed: nothing arm64 runs here);
2. mke2fs -d turns the tree into an ext4 image (no loop mount, no privileges beyond root's
   file ownership);
3. the image boots under qemu with init=/systest-stage2.sh, which runs debootstrap's second
   stage and the fixed configuration (guest/stage2.sh);
4. qemu-img convert -c to qcow2 (~300 MiB).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vmlib

# libpam-systemd: without it the second stage fails configuring polkitd.
# python3-libfdt, python3-pyudev, python3-dbus-fast, python3-systemd: nvmemd's Depends, so
# that `dpkg -i` of the package works offline. python3-gi + libglib2.0-bin: GDBus clients.
# iproute2: the set-MAC example unit. passwd: useradd for the access checks.
PACKAGES = [
    "libpam-systemd", "systemd", "systemd-sysv", "udev", "dbus", "polkitd", "python3",
    "python3-pyudev", "python3-dbus-fast", "python3-systemd", "python3-libfdt", "python3-gi",
    "gir1.2-glib-2.0", "libglib2.0-bin", "kmod", "iproute2", "passwd", "procps",
]
SUITE = "bookworm"
IMAGE_SIZE = "3G"
STAGE2_TIMEOUT = 45 * 60

# Bump when the build steps in this file change in a way that changes the image (the key
# does not hash this file, so comments and refactoring keep the cached image).
IMAGE_FORMAT = 1

# Files baked into the image: part of the cache key.
BAKED = [vmlib.GUEST / "stage2.sh", vmlib.GUEST / "systest-hook",
         vmlib.GUEST / "systest-hook.service"]


def image_key() -> str:
    return vmlib.sha256_files(BAKED, f"{IMAGE_FORMAT} {SUITE} {IMAGE_SIZE} {','.join(PACKAGES)}")


def image_path() -> Path:
    return vmlib.cache_dir() / f"image-{image_key()}" / "rootfs.qcow2"


def debootstrap_first_stage(rootfs: Path) -> None:
    mirror = vmlib.debian_mirror()
    vmlib.log(f"debootstrap --foreign {SUITE} arm64 from the host's mirror ({mirror})")
    t0 = time.monotonic()
    vmlib.run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
               f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), mirror],
              stdout=subprocess.DEVNULL)
    vmlib.log(f"first stage: {time.monotonic() - t0:.0f} s")
    # debootstrap detects a container and makes proc a symlink to the host's /proc
    proc = rootfs / "proc"
    if proc.is_symlink() or not proc.is_dir():
        proc.unlink()
        proc.mkdir()
    for d in ("sys", "dev", "run", "tmp", "usr/lib/modules"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    # No fsync per unpacked file during the build (stage2.sh removes this again): dpkg's
    # syncs dominate the second stage under TCG. The image is only used if the build ends.
    cfg = rootfs / "etc" / "dpkg" / "dpkg.cfg.d"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "systest-unsafe-io").write_text("force-unsafe-io\n")
    stage2 = rootfs / "systest-stage2.sh"
    shutil.copy2(vmlib.GUEST / "stage2.sh", stage2)
    stage2.chmod(0o755)
    hook = rootfs / "usr" / "local" / "sbin" / "systest-hook"
    hook.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(vmlib.GUEST / "systest-hook", hook)
    hook.chmod(0o755)
    shutil.copy2(vmlib.GUEST / "systest-hook.service",
                 rootfs / "etc" / "systemd" / "system" / "systest-hook.service")


def build(kernel_name: str, force: bool) -> Path:
    final = image_path()
    if final.exists() and not force:
        return final
    vmlib.ensure_host_packages()
    kernel = vmlib.prepare_kernel(kernel_name)
    work = final.parent / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.monotonic()
    rootfs = work / "rootfs"
    debootstrap_first_stage(rootfs)
    raw = work / "rootfs.ext4"
    vmlib.run(["mke2fs", "-q", "-t", "ext4", "-L", "nvmemd-root", "-d", str(rootfs), str(raw),
               IMAGE_SIZE])
    shutil.rmtree(rootfs)
    console = work / "stage2-console.log"
    vmlib.log(f"debootstrap --second-stage under qemu (TCG; ~12 min; console: {console})")
    cmd = vmlib.qemu_command(kernel, str(raw), False,
                             "init=/systest-stage2.sh panic=-1 quiet", console,
                             ["-no-reboot"])
    t1 = time.monotonic()
    try:
        subprocess.run(["timeout", "--kill-after=10", str(STAGE2_TIMEOUT), *cmd], check=True,
                       stdin=subprocess.DEVNULL)
    except subprocess.CalledProcessError as e:
        vmlib.fail(f"second stage: qemu exited with {e.returncode} (124: timeout); "
                   f"see {console}")
    text = console.read_text(errors="replace")
    if "SYSTEST-STAGE2-OK" not in text:
        sys.stderr.write(text[-3000:])
        vmlib.fail(f"second stage failed; see {console}")
    vmlib.log(f"second stage: {time.monotonic() - t1:.0f} s")
    tmp = work / "rootfs.qcow2"
    vmlib.run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw), str(tmp)])
    raw.unlink()
    os.replace(tmp, final)
    shutil.copy2(console, final.parent / "stage2-console.log")
    shutil.rmtree(work)
    vmlib.log(f"image built in {time.monotonic() - t0:.0f} s: {final} "
              f"({final.stat().st_size >> 20} MiB)")
    return final


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", default="6.12", help="kernel used for the build boot")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = ap.parse_args()
    print(build(args.kernel, args.force))


if __name__ == "__main__":
    main()
