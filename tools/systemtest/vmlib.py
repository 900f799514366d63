"""Shared parts of the system test: cache, host packages, kernels, initramfs, qemu.

Host side, python3 stdlib only. The kernel download and the out-of-tree modules come from
tools/realkernel/prepare.sh (the real-kernel recorder's set-up), the initramfs helpers from
tools/realkernel/record.py, so the two tools boot the same kernel the same way.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GUEST = HERE / "guest"

# Host tools (Debian package names), installed by ensure_host_packages(). prepare.sh adds
# its own (cross compiler, dtc, cpio, ...).
HOST_PACKAGES = ["qemu-system-arm", "qemu-utils", "debootstrap", "e2fsprogs",
                 "device-tree-compiler", "debian-archive-keyring", "kmod"]

# The guest's qemu machine. -cpu max with the cheap pointer-auth algorithm: much faster
# under TCG than the default QARMA.
QEMU_MACHINE = ["-M", "virt", "-cpu", "max,pauth-impdef=on", "-smp", "2", "-m", "2048",
                "-accel", "tcg,thread=multi"]

# Modules the initramfs loads: those it needs to mount an ext4 root on virtio-blk, and the
# 9p ones so that the test hook's 9p mount never races udev's coldplug (the rest autoloads
# from the modules disk once udev runs).
INITRAMFS_MODULES = ["crc16", "mbcache", "jbd2", "crc32c_generic", "ext4", "virtio_blk",
                     "9pnet_virtio", "9p"]


def cache_dir() -> Path:
    """Outside the work tree: survives `make clean` and git worktrees share it."""
    base = os.environ.get("NVMEMD_SYSTEMTEST_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "nvmemd-systemtest"


def log(msg: str) -> None:
    print(f"systemtest: {msg}", flush=True)


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kw)  # type: ignore[call-overload]


def ensure_host_packages(extra: list[str] | None = None) -> None:
    """apt-get install what is missing (idempotent; `apt-get update` only when needed)."""
    wanted = HOST_PACKAGES + (extra or [])
    missing = []
    for p in wanted:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                           text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    if not missing:
        return
    log(f"apt-get install {' '.join(missing)}")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    run([*sudo, "apt-get", *lock, "update", "-qq"], env=env)
    run([*sudo, "apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *missing],
        env=env)


def debian_mirror() -> str:
    """The host's own Debian mirror for bookworm, from its apt configuration (deb822
    .sources or one-line .list), so nothing here names a host."""
    files = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for f in files:
        for stanza in f.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
            if ("deb" in fields.get("types", "").split()
                    and "bookworm" in fields.get("suites", "").split()
                    and fields.get("enabled", "yes") != "no"):
                return fields["uris"].split()[0]
    lists = [Path("/etc/apt/sources.list"),
             *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for f in lists:
        if not f.exists():
            continue
        for line in f.read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if m:
                return m.group(1)
    raise SystemExit("systemtest: no bookworm 'deb' source in the host's apt configuration")


# ---------------------------------------------------------------------------------------------
# kernels


def _record_module() -> ModuleType:
    path = REPO / "tools" / "realkernel" / "record.py"
    spec = importlib.util.spec_from_file_location("realkernel_record", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RECORD = _record_module()


@dataclass
class Kernel:
    """A prepared guest kernel: vmlinuz, its modules (Debian's + out-of-tree), busybox."""

    name: str
    release: str
    vmlinuz: Path
    rk: object  # tools/realkernel/record.py Kernel (module lookup, dependency order)
    build: Path

    def module_order(self, wanted: list[str]) -> list[str]:
        return list(self.rk.module_order(wanted))  # type: ignore[attr-defined]

    def module_bytes(self, name: str) -> bytes:
        return bytes(self.rk.module_bytes(name))  # type: ignore[attr-defined]


def _prepare_debian(series: str) -> Callable[[Path], None]:
    def prepare(out: Path) -> None:
        # prepare.sh BUILD SERIES: Debian's arm64 kernel of that series + headers + source,
        # busybox-static, the out-of-tree CFI flash and nvmem layout modules, into
        # BUILD/SERIES (private apt; the host's sources are untouched). Not qemu 10.
        env = dict(os.environ, PREPARE_QEMU10="no")
        run(["bash", str(REPO / "tools" / "realkernel" / "prepare.sh"), str(out), series],
            env=env)
    return prepare


# Kernels the runner can boot, by --kernel name. A second one (e.g. sid's 7.2) is one more
# entry: a function that fills a directory the way prepare.sh does (kernel-release,
# root/boot/vmlinuz-*, root/lib/modules/*, root/bin/busybox, oot-*/).
KERNELS = {
    "6.12": _prepare_debian("6.12"),
    "7.2": _prepare_debian("7.2"),
}


def prepare_kernel(name: str) -> Kernel:
    if name not in KERNELS:
        raise SystemExit(f"systemtest: unknown kernel {name!r} (have: {', '.join(KERNELS)})")
    out = cache_dir() / f"kernel-{name}"
    out.mkdir(parents=True, exist_ok=True)
    KERNELS[name](out)
    rk = RECORD.Kernel(out, name)
    return Kernel(name=name, release=rk.krel, vmlinuz=rk.vmlinuz, rk=rk, build=rk.build)


def modules_disk(kernel: Kernel) -> Path:
    """An ext4 image of /usr/lib/modules for this kernel (Debian's modules + the out-of-tree
    ones in updates/, depmod'ed on the host), mounted by the initramfs: the root image stays
    kernel-independent. Seconds to build; cached per kernel release."""
    disk = kernel.build / f"modules-{kernel.release}.ext4"
    if disk.exists():
        return disk
    log(f"building the modules disk for {kernel.release}")
    tree = kernel.build / "modules-tree"
    shutil.rmtree(tree, ignore_errors=True)
    mods = tree / "lib" / "modules" / kernel.release
    shutil.copytree(kernel.rk.moddir, mods,  # type: ignore[attr-defined]
                    symlinks=True)
    upd = mods / "updates"
    upd.mkdir(exist_ok=True)
    for ko in sorted((kernel.build / f"oot-{kernel.release}").rglob("*.ko")):
        shutil.copy2(ko, upd / ko.name)
    # drop the links into the (absent) headers package
    for link in ("build", "source"):
        (mods / link).unlink(missing_ok=True)
    run(["depmod", "-b", str(tree), kernel.release])
    tmp = disk.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    run(["mke2fs", "-q", "-t", "ext4", "-L", "modules", "-d", str(tree / "lib" / "modules"),
         str(tmp), "1G"])
    tmp.rename(disk)
    shutil.rmtree(tree)
    return disk


def initramfs(kernel: Kernel) -> Path:
    """busybox + the root-disk modules + guest/initramfs-init.sh, cached per kernel and init."""
    init = (GUEST / "initramfs-init.sh").read_bytes()
    key = hashlib.sha256(init + kernel.release.encode()).hexdigest()[:12]
    path = kernel.build / f"initramfs-{key}.cpio.gz"
    if path.exists():
        return path
    d, f, x, c = 0o040755, 0o100644, 0o100755, 0o020600
    entries: list[tuple[str, int, bytes, int]] = [
        (n, d, b"", 0) for n in ("bin", "dev", "proc", "sys", "modules", "newroot")
    ]
    entries.append(("dev/console", c, b"", (5 << 8) | 1))
    entries.append(("bin/busybox", x, (kernel.build / "root" / "bin" / "busybox").read_bytes(),
                    0))
    entries.append(("init", x, init, 0))
    order = kernel.module_order(INITRAMFS_MODULES)
    for m in order:
        entries.append((f"modules/{m}.ko", f, kernel.module_bytes(m), 0))
    entries.append(("modules.list", f, "".join(f"{m}.ko\n" for m in order).encode(), 0))
    path.write_bytes(gzip.compress(RECORD._cpio(entries), mtime=0))
    return path


# ---------------------------------------------------------------------------------------------
# qemu


def qemu_command(kernel: Kernel, root: str, root_snapshot: bool, append: str,
                 console_log: Path, extra: list[str]) -> list[str]:
    """Boot `root` (qcow2 or raw) with the kernel's initramfs and modules disk, no network,
    the serial console into console_log. `snapshot=on` keeps the cached image unchanged."""
    fmt = "qcow2" if root.endswith(".qcow2") else "raw"
    snap = ",snapshot=on" if root_snapshot else ""
    return [
        "qemu-system-aarch64", *QEMU_MACHINE,
        "-display", "none", "-nic", "none", "-monitor", "none",
        "-serial", f"file:{console_log}",
        "-kernel", str(kernel.vmlinuz), "-initrd", str(initramfs(kernel)),
        "-drive", f"if=none,id=root,format={fmt},file={root}{snap},cache=unsafe",
        "-device", "virtio-blk-pci,drive=root",
        "-drive", f"if=none,id=mods,format=raw,file={modules_disk(kernel)},readonly=on",
        "-device", "virtio-blk-pci,drive=mods",
        "-append", f"console=ttyAMA0 {append}",
        *extra,
    ]


def sha256_files(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def fail(msg: str) -> None:
    sys.stderr.write(f"systemtest: {msg}\n")
    raise SystemExit(1)
