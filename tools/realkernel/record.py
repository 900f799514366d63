#!/usr/bin/env python3
"""Record sysroots and the kernel's own nvmem cells from a real Linux kernel under qemu.

For each case directory ``tests/fixtures/realkernel/<case>/`` holding

* ``case.json``  -- how to boot: machine, modules, images and where they go (see CASE KEYS),
* ``board.dts``  -- our DT nodes, appended to the machine's own device tree,
* ``image.py``   -- ``images() -> dict[str, bytes]``: the provider contents, deterministic,

this boots Debian's arm64 kernels (``prepare.sh`` fetches them: 6.12 from bookworm-security,
7.2 from sid) under qemu (TCG) with a busybox initramfs (``init.sh``), and writes back into the
case directory, per kernel series (6.12: no suffix, the first series recorded; 7.2: ``-7.2``)

* ``sysroot.tar.gz``    -- the sysroot nvmemd reads (sys/bus/nvmem, sys/devices/..., the live
  device tree, sys/firmware/fdt, proc/device-tree, proc/sys/kernel/osrelease), without the
  kernel's ``cells/`` directories;
* ``kernel-cells.json`` -- the kernel's answer: every provider with its ``cells/`` files (name,
  mode, size, value or read error), or ``"cells": null`` when it has no ``cells/`` directory,
  plus the nvmem/mtd lines of dmesg and ``uname -r``;
* ``sysroot-7.2.tar.gz``, ``kernel-cells-7.2.json`` -- the same on Linux 7.2.

CASE KEYS (case.json)
  description      what the case covers (one line)
  machine          "virt" (qemu 7.2's virt, default) or "imx8mp-evk" (qemu 10 from
                   bookworm-backports, Debian's freescale/imx8mp-evk.dtb as the base tree)
  modules          module names to insmod, in order (dependencies are added first);
                   Debian's own (.ko.xz, decompressed) or the out-of-tree ones prepare.sh built
  loaders          {image name: physical address} -- raw images put in RAM by qemu's loader
                   (nvmem-rmem regions)
  pflash1          image name for the virt machine's second flash bank (64 MiB, padded 0xff)
  i2c              (imx8mp-evk) devices on qemu's i2c buses: [{"device": "at24c-eeprom" or
                   "ds1338", "bus": "i2c-bus.3", "address": "0x50", "rom-size": 256,
                   "image": name}] (image: the EEPROM's contents, its drive)
  guest_writes     [{"image": name, "path": glob}]: written from the guest (printf) before the
                   capture, e.g. an EEPROM without a qemu drive or an RTC's NVRAM
  pre_capture      shell lines run in the guest before the capture
  kernel_invisible provider names whose cells the kernel parses but never shows in sysfs
  kernels          series to record on (default: all of SERIES), e.g. ["6.12"] with a
                   "kernels_why" explaining the exception
"""
from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "realkernel"

VIRT_ARGS = ["-M", "virt", "-cpu", "cortex-a57", "-smp", "1", "-m", "512"]
IMX_ARGS = ["-M", "imx8mp-evk", "-smp", "1", "-m", "1G"]
PFLASH_SIZE = 64 << 20
#: Kernel series recorded, in order; the first keeps the historical un-suffixed file names.
SERIES = ("6.12", "7.2")


def fixture_files(series: str) -> tuple[str, str]:
    """(sysroot tarball, kernel-cells json) names of *series* in a case directory."""
    suffix = "" if series == SERIES[0] else f"-{series}"
    return f"sysroot{suffix}.tar.gz", f"kernel-cells{suffix}.json"

BEGIN, END = "===RECORDER-BEGIN===", "===RECORDER-END==="
DMESG_RE = re.compile(
    r"nvmem|mtd|rmem|partition|cfi|physmap|flash|u-boot|u_boot|onie|tlv|sl28|vpd|layout|"
    r"at24|eeprom|rtc-ds1307|ds1307|ds1338|reserved mem|Reserved memory|RECORDER|insmod|"
    r"^0x[0-9a-f]+-0x[0-9a-f]+ : \"",
    re.I,
)


class Kernel:
    """Paths inside the prepared build directory."""

    def __init__(self, build: Path, series: str) -> None:
        self.series = series
        self.build = build / series
        self.krel = (self.build / "kernel-release").read_text().strip()
        self.root = self.build / "root"
        # prepare.sh writes where this series' packaging puts them (/boot or /usr/lib)
        paths = dict(line.split("=", 1)
                     for line in (self.build / "paths").read_text().split())
        self.moddir = self.root / paths["moddir"]
        self.vmlinuz = self.root / paths["vmlinuz"]
        self.dtbs = self.root / paths["dtbs"]
        self.busybox = self.root / "bin" / "busybox"
        self.oot = self.build / f"oot-{self.krel}"
        self.qemu10 = build / "qemu10" / "usr" / "bin" / "qemu-system-aarch64"
        # Debian's package has no modules.dep (depmod runs at install): read each module's
        # own "depends=" from its .modinfo when it is needed.
        self.modules: dict[str, Path] = {}
        for ko in sorted((self.moddir / "kernel").rglob("*.ko*")):
            self.modules[_modname(str(ko))] = ko
        for ko in sorted(self.oot.rglob("*.ko")):
            self.modules[_modname(str(ko))] = ko

    def module_order(self, wanted: list[str]) -> list[str]:
        order: list[str] = []

        def visit(m: str) -> None:
            m = m.replace("-", "_")
            if m in order:
                return
            if m not in self.modules:
                raise SystemExit(f"unknown module {m}")
            for d in _ko_depends(self.module_bytes(m)):
                visit(d)
            order.append(m)

        for m in wanted:
            visit(m)
        return order

    def module_bytes(self, m: str) -> bytes:
        path = self.modules[m]
        data = path.read_bytes()
        if path.name.endswith(".xz"):
            import lzma

            data = lzma.decompress(data)
        return data


def _modname(path: str) -> str:
    base = os.path.basename(path)
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return base.replace("-", "_")


def _ko_depends(data: bytes) -> list[str]:
    m = re.search(rb"\x00depends=([^\x00]*)\x00", data)
    if not m or not m.group(1):
        return []
    return [d.decode().replace("-", "_") for d in m.group(1).split(b",") if d]


# ---------------------------------------------------------------------------------------------
# initramfs (cpio newc, written directly so that /dev/console needs no mknod)


def _cpio(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """entries: (name, mode, data, rdev) -> newc archive."""
    out = io.BytesIO()
    ino = 1

    def hdr(name: str, mode: int, size: int, rdev: int, nlink: int) -> None:
        nonlocal ino
        nb = name.encode() + b"\0"
        rmaj, rmin = (rdev >> 8) & 0xFFF, rdev & 0xFF
        fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rmaj, rmin, len(nb), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + nb)
        out.write(b"\0" * ((-(110 + len(nb))) % 4))
        ino += 1

    for name, mode, data, rdev in entries:
        hdr(name, mode, len(data), rdev, 2 if mode & 0o040000 else 1)
        out.write(data)
        out.write(b"\0" * ((-len(data)) % 4))
    hdr("TRAILER!!!", 0, 0, 0, 1)
    return out.getvalue()


def make_initramfs(kernel: Kernel, modules: list[str], pre_capture: str) -> bytes:
    d, f, x, c = 0o040755, 0o100644, 0o100755, 0o020600
    entries: list[tuple[str, int, bytes, int]] = [
        (n, d, b"", 0) for n in ("bin", "dev", "proc", "sys", "tmp", "modules", "out")
    ]
    entries.append(("dev/console", c, b"", (5 << 8) | 1))
    entries.append(("bin/busybox", x, kernel.busybox.read_bytes(), 0))
    entries.append(("init", x, (HERE / "init.sh").read_bytes(), 0))
    order = kernel.module_order(modules)
    for m in order:
        entries.append((f"modules/{m}.ko", f, kernel.module_bytes(m), 0))
    entries.append(("modules.list", f, "".join(f"{m}.ko\n" for m in order).encode(), 0))
    if pre_capture:
        entries.append(("pre-capture.sh", f, pre_capture.encode() + b"\n", 0))
    return gzip.compress(_cpio(entries), mtime=0)


# ---------------------------------------------------------------------------------------------
# device tree


def machine_dts(kernel: Kernel, work: Path, qemu_args: list[str]) -> str:
    """The qemu machine's own DT (dumpdtb with the same options), decompiled and cleaned."""
    key = hashlib.sha256(" ".join(qemu_args).encode()).hexdigest()[:16]
    cache = kernel.build / "machine-dtb" / f"{key}.dts"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        dtb = work / "machine.dtb"
        args = list(qemu_args)
        args[args.index("-M") + 1] += f",dumpdtb={dtb}"
        subprocess.run(["qemu-system-aarch64", *args, "-display", "none", "-nic", "none"],
                       check=True, capture_output=True)
        dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(dtb)], check=True,
                             capture_output=True, text=True).stdout
        # deterministic recordings: drop qemu's random seeds
        dts = re.sub(r"\n\s*(rng-seed|kaslr-seed) = <[^;]*>;", "", dts)
        cache.write_text(dts)
    return cache.read_text()


def build_dtb(base_dts: str, board: str, machine: str, work: Path) -> Path:
    extra = ""
    if machine == "virt":
        # qemu virt describes both flash banks in one node; cases describe bank 1 themselves
        extra = "/ { /delete-node/ flash@0; };\n"
    src = work / "full.dts"
    src.write_text(base_dts + "\n" + extra + "\n" + board)
    dtb = work / "board.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtb), str(src)],
                   check=True)
    return dtb


# ---------------------------------------------------------------------------------------------
# boot + capture


def load_images(case_dir: Path) -> dict[str, bytes]:
    spec = importlib.util.spec_from_file_location(f"image_{case_dir.name}", case_dir / "image.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return dict(mod.images())


def imx_dts(kernel: Kernel) -> str:
    """Debian's imx8mp-evk.dtb, decompiled."""
    dtb = kernel.dtbs / "freescale" / "imx8mp-evk.dtb"
    return subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(dtb)], check=True,
                          capture_output=True, text=True).stdout


def boot(kernel: Kernel, case_dir: Path, work: Path, timeout: int) -> tuple[Path, float]:
    case = json.loads((case_dir / "case.json").read_text())
    machine = case.get("machine", "virt")
    images = load_images(case_dir)
    log = work / "console.log"
    dev_args: list[str] = []
    if machine == "imx8mp-evk":
        binary = str(kernel.qemu10)
        qemu = list(IMX_ARGS)
        # UART1 is the first serial port, the EVK's console (UART2, ttymxc1) the second
        serial = ["-serial", "null", "-serial", f"file:{log}"]
        console = "console=ttymxc1,115200"
        for i, dev in enumerate(case.get("i2c", [])):
            props = f"{dev['device']},bus={dev['bus']},address={dev['address']}"
            if "rom-size" in dev:
                props += f",rom-size={dev['rom-size']}"
            if "image" in dev:
                p = work / f"{dev['image']}.img"
                p.write_bytes(images[dev["image"]])
                dev_args += ["-drive", f"if=none,id=i2cdrv{i},format=raw,file={p}"]
                props += f",drive=i2cdrv{i}"
            dev_args += ["-device", props]
        base = imx_dts(kernel)
    elif machine == "virt":
        binary = "qemu-system-aarch64"
        qemu = list(VIRT_ARGS)
        serial = ["-serial", f"file:{log}"]
        console = "console=ttyAMA0"
    else:
        raise SystemExit(f"{case_dir.name}: machine {machine} not supported")
    for name, addr in case.get("loaders", {}).items():
        p = work / f"{name}.img"
        p.write_bytes(images[name])
        dev_args += ["-device", f"loader,file={p},addr={addr},force-raw=on"]
    if "pflash1" in case:
        data = images[case["pflash1"]]
        assert len(data) <= PFLASH_SIZE
        p = work / "pflash1.img"
        p.write_bytes(data + b"\xff" * (PFLASH_SIZE - len(data)))
        dev_args += ["-drive", f"if=pflash,unit=1,format=raw,file={p}"]
    if machine == "virt":
        base = machine_dts(kernel, work, qemu + dev_args)
    dtb = build_dtb(base, (case_dir / "board.dts").read_text(), machine, work)
    initrd = work / "initrd.cpio.gz"
    pre = []
    for w in case.get("guest_writes", []):
        data = "".join(f"\\{b:03o}" for b in images[w["image"]])
        pre.append(f"for f in {w['path']}; do printf '{data}' > \"$f\" "
                   f"|| echo \"RECORDER: write to $f failed\"; done")
    if case.get("pre_capture"):
        pre.append(case["pre_capture"])
    initrd.write_bytes(make_initramfs(kernel, case.get("modules", []), "\n".join(pre)))
    cmd = [binary, *qemu, *dev_args, "-display", "none", "-nic", "none",
           "-no-reboot", "-monitor", "none", *serial,
           "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd), "-dtb", str(dtb),
           "-append", f"{console} quiet panic=-1"]
    t0 = time.monotonic()
    # (the unpacked qemu 10 also tries the installed qemu 7.2's ui/audio modules and warns that
    # they are from another build: harmless, none is needed with -display none)
    subprocess.run(cmd, check=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return log, time.monotonic() - t0


def extract(log: Path, dest: Path) -> None:
    text = log.read_text(errors="replace")
    if BEGIN not in text or END not in text:
        sys.stderr.write(text[-4000:])
        raise SystemExit(f"{log}: no recorder output")
    b64 = text.split(BEGIN, 1)[1].split(END, 1)[0]
    b64 = "".join(ch for ch in b64 if ch in
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(b64)), mode="r:gz") as tf:
        tf.extractall(dest, filter="tar" if hasattr(tarfile, "tar_filter") else None)


# ---------------------------------------------------------------------------------------------
# post-processing on the host


def errno_text(err: str) -> str:
    # busybox: "cat: read error: Input/output error"
    return err.strip().rsplit(": ", 1)[-1] if err.strip() else "read error"


def kernel_cells(out: Path, case: dict) -> dict:
    providers: dict[str, dict] = {}
    for line in (out / "kernel-cells.tsv").read_text().splitlines():
        parts = line.split("\t")
        prov = parts[0]
        entry = providers.setdefault(prov, {"provider": prov, "cells": None})
        if parts[1] == "-":
            continue
        fname, mode, size, status, rest = parts[1], parts[2], int(parts[3]), parts[4], \
            "\t".join(parts[5:])
        cell: dict = {"file": fname, "mode": f"{int(mode, 8):04o}", "size": size}
        if status == "OK":
            cell["value"] = rest
        else:
            cell["value"] = None
            cell["error"] = errno_text(rest)
        if entry["cells"] is None:
            entry["cells"] = []
        entry["cells"].append(cell)
    invisible = set(case.get("kernel_invisible", []))
    for name in invisible:
        if name not in providers:
            raise SystemExit(f"kernel_invisible provider {name} was not registered")
        providers[name]["kernel_invisible"] = True
    dmesg = []
    for line in (out / "dmesg.txt").read_text(errors="replace").splitlines():
        line = re.sub(r"^\[\s*\d+\.\d+\]\s?", "", line)
        line = re.sub(r"\bPID: \d+", "PID: N", line)
        if DMESG_RE.search(line) and "setting system clock" not in line:
            dmesg.append(line)
    return {
        "kernel": (out / "uname-r.txt").read_text().strip(),
        "description": case.get("description", ""),
        "layout_drivers": (out / "layout-drivers.txt").read_text().split()
        if (out / "layout-drivers.txt").exists() else [],
        "providers": [providers[k] for k in sorted(providers)],
        "dmesg": dmesg,
    }


def make_sysroot(out: Path, sysroot: Path) -> None:
    for top in ("sys", "proc"):
        shutil.copytree(out / top, sysroot / top, symlinks=True)
    (sysroot / "proc" / "device-tree").symlink_to("../sys/firmware/devicetree/base")
    # the registered nvmem layout drivers (a kernel without the layout modules has only
    # fixed-layout): one directory each, as in sysfs, bound to a device or not
    drivers = out / "layout-drivers.txt"
    for name in drivers.read_text().split() if drivers.exists() else []:
        (sysroot / "sys" / "bus" / "nvmem-layout" / "drivers" / name).mkdir(parents=True,
                                                                           exist_ok=True)
    # every relative symlink inside sys/ must resolve to a directory that exists
    for link in sorted(p for p in (sysroot / "sys").rglob("*") if p.is_symlink()):
        target = os.readlink(link)
        assert not target.startswith("/"), (link, target)
        resolved = Path(os.path.normpath(link.parent / target))
        if not resolved.exists():
            resolved.mkdir(parents=True, exist_ok=True)
    # the kernel's file modes (e.g. 0400 for root_only providers), recorded by init.sh
    for line in (out / "modes.txt").read_text().splitlines():
        mode, path = line.split(" ", 1)
        target = sysroot / path.lstrip("/")
        if target.is_file() and not target.is_symlink():
            target.chmod(int(mode, 8))
    leftover = [p for p in sysroot.rglob("cells") if p.is_dir()]
    assert not leftover, leftover


def write_tar_gz(src: Path, dest: Path) -> None:
    """Deterministic tar.gz of src's contents (sorted, mtime 0, root-owned)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tf:
        paths = sorted(src.rglob("*"), key=lambda p: str(p.relative_to(src)))
        for p in paths:
            rel = str(p.relative_to(src))
            ti = tf.gettarinfo(str(p), arcname=rel)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mtime = 0
            if ti.isfile():
                with open(p, "rb") as fh:
                    tf.addfile(ti, fh)
            else:
                tf.addfile(ti)
    dest.write_bytes(gzip.compress(raw.getvalue(), compresslevel=9, mtime=0))


def record(kernel: Kernel, case_dir: Path, keep: bool, timeout: int) -> None:
    case = json.loads((case_dir / "case.json").read_text())
    work = Path(tempfile.mkdtemp(prefix=f"rk-{case_dir.name}-", dir=kernel.build))
    try:
        log, secs = boot(kernel, case_dir, work, timeout)
        out = work / "out"
        out.mkdir()
        extract(log, out)
        sysroot = work / "sysroot"
        make_sysroot(out, sysroot)
        tar_name, json_name = fixture_files(kernel.series)
        write_tar_gz(sysroot, case_dir / tar_name)
        kc = kernel_cells(out, case)
        (case_dir / json_name).write_text(json.dumps(kc, indent=1) + "\n")
        size = (case_dir / tar_name).stat().st_size
        provs = ", ".join(
            f"{p['provider']}:{'-' if p['cells'] is None else len(p['cells'])}"
            for p in kc["providers"])
        print(f"{case_dir.name} [{kernel.series}]: {secs:.1f}s, sysroot {size // 1024} KiB, "
              f"providers {provs}")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"  work dir kept: {work}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help="case names (default: all with a case.json)")
    ap.add_argument("--build", type=Path, default=REPO / "build" / "realkernel")
    ap.add_argument("--no-prepare", action="store_true", help="skip prepare.sh")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--kernels", default=",".join(SERIES),
                    help=f"comma-separated kernel series (default: {','.join(SERIES)})")
    args = ap.parse_args()
    series = [k for k in args.kernels.split(",") if k]
    unknown = set(series) - set(SERIES)
    if unknown:
        raise SystemExit(f"unknown kernel series {sorted(unknown)}; known: {SERIES}")
    names = args.cases or sorted(p.parent.name for p in FIXTURES.glob("*/case.json"))
    for k in series:
        if not args.no_prepare:
            subprocess.run(["bash", str(HERE / "prepare.sh"), str(args.build), k], check=True)
        kernel = Kernel(args.build.resolve(), k)
        t0 = time.monotonic()
        done = 0
        for name in names:
            case = json.loads((FIXTURES / name / "case.json").read_text())
            if k not in case.get("kernels", SERIES):
                print(f"{name} [{k}]: not recorded ({case.get('kernels_why', 'kernels')})")
                continue
            record(kernel, FIXTURES / name, args.keep, args.timeout)
            done += 1
        print(f"recorded {done} case(s) with {kernel.krel} in {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()
