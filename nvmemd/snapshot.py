"""``nvmemd-query snapshot``: the system's nvmem state as a replayable sysroot.

The archive is a sysroot in the layout nvmemd reads (and the real-kernel
recordings in tests/fixtures/realkernel use), so a bug report replays with
``nvmemd-query --sysroot DIR``.  Next to it, under ``nvmemd-snapshot/``:

- ``kernel-cells.json``: the kernel's own ``cells/`` listing (file, mode, size,
  value or read error) where the kernel has one (6.8+), and ``uname -r``;
- ``info.json``: what was left out and why.

The kernel's ``cells/`` directories are not copied into the sysroot (nvmemd
would otherwise be compared with itself).  Contents of root-only providers
are recorded only with ``--include-protected``; without it their ``nvmem``
files are present but empty and ``info.json`` lists them.  Wherever an
``nvmem`` holds less than the provider had (root-only, cut at
``--max-provider-bytes``, unreadable when the snapshot was taken), a file
``nvmemd-not-recorded`` beside it holds the real size and why: a replay shows
the provider's size and says "not recorded (why)" for the bytes it lacks.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import stat
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from . import __version__
from .errors import OutputError, SysrootError, describe, os_reason
from .providers import NVMEM_BUS, list_provider_names
from .sysroot import NOT_RECORDED, NOT_RECORDED_DEFAULT_WHY, Sysroot

META_DIR = "nvmemd-snapshot"
#: Providers larger than this are cut (bug reports, not backups).
DEFAULT_MAX_PROVIDER_BYTES = 16 * 1024 * 1024
_SMALL_ATTRIBUTE = 64 * 1024
_ANCESTOR_FILES = ("uevent", "name", "modalias", "type", "size", "flags", "erasesize",
                   "writesize", "oobsize", "numeraseregions", "dev")
_ANCESTOR_LINKS = ("driver", "subsystem", "of_node", "firmware_node")
_SKIP_IN_DEVICE = frozenset({"cells", "power"})
_EXTRA_FILES = ("/proc/sys/kernel/osrelease", "/sys/firmware/fdt")
_DT_ROOTS = ("/sys/firmware/devicetree/base",)


@dataclass
class SnapshotInfo:
    protected_omitted: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)


class _Writer:
    def __init__(self, sysroot: Sysroot, tar: tarfile.TarFile) -> None:
        self.sysroot = sysroot
        self.tar = tar
        self.done: set[str] = set()
        self.mtime = int(time.time())

    def _info(self, path: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type = kind
        info.mode = mode
        info.mtime = self.mtime
        return info

    def directory(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:i])
            if sub not in self.done:
                self.done.add(sub)
                self.tar.addfile(self._info(sub, tarfile.DIRTYPE, 0o755))

    def data(self, path: str, data: bytes, mode: int = 0o444) -> None:
        if path in self.done:
            return
        self.directory(os.path.dirname(path))
        self.done.add(path)
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def link(self, path: str, target: str) -> None:
        if path in self.done:
            return
        self.directory(os.path.dirname(path))
        self.done.add(path)
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)

    def copy(self, path: str, limit: int = _SMALL_ATTRIBUTE) -> bool:
        """Copy a small file or a link as it is; False when absent or unreadable."""
        # Stored where it really is: an entry below a symlink cannot be unpacked
        # (tar: "Cannot open: Not a directory").
        try:
            path = self.sysroot.resolve(os.path.dirname(path)).rstrip("/") + "/" + \
                os.path.basename(path)
        except SysrootError:  # a link loop on the way: nothing to record
            return False
        host = self.sysroot.host_path(path)
        try:
            st = os.lstat(host)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(host)
                self.link(path, target)
                self._ensure_target(path)
                return True
            if not stat.S_ISREG(st.st_mode):
                return False
            data = self.sysroot.read_file(
                self.sysroot.resolve(os.path.dirname(path)) + "/" + os.path.basename(path), limit)
        except OSError:
            return False
        self.data(path, data, stat.S_IMODE(st.st_mode))
        return True

    def _ensure_target(self, link: str) -> None:
        """A link to a directory (a driver, a netdev's device) needs its target to exist."""
        try:
            resolved = self.sysroot.resolve(link)
        except SysrootError:
            return
        if resolved.startswith("/sys/") and os.path.isdir(self.sysroot.host_path(resolved)):
            self.directory(resolved)

    def tree(self, root: str, info: SnapshotInfo) -> None:
        """Every directory and file below *root*; what cannot be listed is noted."""
        try:
            real_root = self.sysroot.resolve(root)
        except SysrootError as e:
            info.unreadable.append(str(e))
            return
        host_root = self.sysroot.host_path(real_root)

        def unreadable(e: OSError) -> None:
            where = self.sysroot.inside(e.filename) if e.filename else root
            info.unreadable.append(f"{where}: {os_reason(e)}")

        for dirpath, dirnames, filenames in os.walk(host_root, onerror=unreadable):
            rel = os.path.relpath(dirpath, host_root)
            base = real_root if rel == "." else f"{real_root}/{rel}"
            self.directory(base)
            dirnames.sort()
            for name in sorted(filenames):
                self.copy(f"{base}/{name}", limit=1 << 24)


def _device_files(w: _Writer, sys_path: str, include_protected: bool, max_bytes: int,
                  info: SnapshotInfo, name: str) -> None:
    host = Path(w.sysroot.host_path(sys_path))
    try:
        entries = sorted(os.listdir(host))
    except OSError as e:  # a provider directory that is gone, or may not be listed
        raise w.sysroot.named(e, sys_path) from None
    for entry in entries:
        if entry in _SKIP_IN_DEVICE or entry == NOT_RECORDED:  # the marker: written anew
            continue
        path = f"{sys_path}/{entry}"
        if entry == "nvmem":
            try:
                st = w.sysroot.stat_file(path)  # a link resolved inside the sysroot
            except (OSError, SysrootError) as e:  # a loop (kept as it is: the replay
                # meets it too), EACCES: noted, like an nvmem that cannot be read
                info.unreadable.append(f"{name}: {describe(e)}")
                w.copy(path)
                continue
            mode = stat.S_IMODE(st.st_mode)
            # a snapshot of a snapshot: the provider's real size, and why bytes are missing
            earlier = w.sysroot.not_recorded(sys_path)
            size = max(st.st_size, earlier[0]) if earlier else st.st_size
            if not mode & 0o044 and not include_protected:
                info.protected_omitted.append(name)
                _not_recorded(w, sys_path, mode, b"", size, NOT_RECORDED_DEFAULT_WHY)
                continue
            try:
                data = w.sysroot.read_file(path, max_bytes)
            except OSError as e:
                info.unreadable.append(f"{name}: {describe(e)}")
                _not_recorded(w, sys_path, mode, b"", size,
                              f"the snapshot could not read it: {describe(e)}")
                continue
            if len(data) < size:
                if st.st_size > max_bytes:
                    info.truncated.append(f"{name}: first {max_bytes} of {st.st_size} bytes")
                why = (f"the snapshot kept the first {len(data)} bytes (--max-provider-bytes)"
                       if earlier is None or len(data) < st.st_size else earlier[1])
                _not_recorded(w, sys_path, mode, data, size, why)
                continue
            w.data(path, data, mode)
        elif (host / entry).is_symlink() or (host / entry).is_file():
            w.copy(path)


def _not_recorded(w: _Writer, sys_path: str, mode: int, data: bytes, size: int,
                  why: str) -> None:
    """The provider's nvmem holds *data*, less than its *size* bytes: the marker beside it
    (sysroot.NOT_RECORDED) keeps the size, so a replay shows it, and says *why* for the
    bytes it does not have."""
    w.data(f"{sys_path}/nvmem", data, mode)
    w.data(f"{sys_path}/{NOT_RECORDED}", f"{size}\n{why}\n".encode())


def _ancestors(w: _Writer, sys_path: str) -> None:
    path = sys_path.rsplit("/", 1)[0]
    while path.startswith("/sys/devices/"):
        for name in _ANCESTOR_FILES:
            w.copy(f"{path}/{name}")
        for name in _ANCESTOR_LINKS:
            w.copy(f"{path}/{name}")
        # MTD OTP providers find the flash type in the flash device's mtd/ directory.
        for mtd in w.sysroot.listdir(f"{path}/mtd"):
            for name in ("type", "name", "size", "uevent"):
                w.copy(f"{path}/mtd/{mtd}/{name}")
            w.copy(f"{path}/mtd/{mtd}/subsystem")
        path = path.rsplit("/", 1)[0]


def _kernel_cells(sysroot: Sysroot, sys_path: str, include_protected: bool
                  ) -> list[dict[str, Any]] | None:
    host = Path(sysroot.host_path(sys_path)) / "cells"
    if not host.is_dir():
        return None
    cells = []
    for name in sysroot.listdir(f"{sys_path}/cells"):
        st = sysroot.stat_file(f"{sys_path}/cells/{name}")
        mode = stat.S_IMODE(st.st_mode)
        rec: dict[str, Any] = {"file": name, "mode": f"{mode:04o}", "size": st.st_size}
        if not mode & 0o044 and not include_protected:
            rec["value"] = None
            rec["error"] = "omitted (root-only; use --include-protected)"
        else:
            try:
                rec["value"] = sysroot.read_file(f"{sys_path}/cells/{name}").hex()
            except OSError as e:
                rec["value"] = None
                rec["error"] = e.strerror or str(e)
        cells.append(rec)
    return cells


class _Archive:
    """The archive file: a failed write is an :class:`OutputError` naming it (a read
    error of the system being recorded is not: it names what could not be read)."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError as e:
                raise _cannot_write(self.name, e) from None
            view = view[n:]
        return len(data)

    def flush(self) -> None:
        pass


def _cannot_write(output: str, e: OSError) -> OutputError:
    return OutputError(f"{output}: cannot write the snapshot: {e.strerror or e}")


def write_snapshot(sysroot: Sysroot, output: str, include_protected: bool = False,
                   max_provider_bytes: int = DEFAULT_MAX_PROVIDER_BYTES) -> SnapshotInfo:
    """:func:`take_snapshot` into file *output*; a clear error if it cannot be written.

    The archive is written under a temporary name in the directory of *output*
    (of the file a link there points to) and renamed to it once complete: a
    snapshot that fails (a full disk, a directory that cannot be read, an
    interrupt) leaves no partial file, and an existing *output* as it was.  A
    destination that is no regular file (a FIFO, ``/dev/stdout``) is written to
    as it is, like ``-``.
    """
    if os.path.isdir(output):
        raise OutputError(f"{output}: is a directory; name the archive file to write")
    dest = os.path.realpath(output)
    try:
        regular = stat.S_ISREG(os.stat(dest).st_mode)
    except OSError:
        regular = True  # not there yet (or the error comes with the first write)
    if not regular:
        try:
            fd = os.open(dest, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            raise _cannot_write(output, e) from None
        try:
            return take_snapshot(sysroot, _Archive(fd, output),  # type: ignore[arg-type]
                                 include_protected, max_provider_bytes)
        finally:
            os.close(fd)
    fd, temp = _temporary(dest, output)
    try:
        try:
            # An error reading the system propagates as it is: it names what could not
            # be read; writes fail with OutputError (_Archive).
            info = take_snapshot(sysroot, _Archive(fd, output),  # type: ignore[arg-type]
                                 include_protected, max_provider_bytes)
            try:
                os.fsync(fd)  # complete on disk before it takes the name
                os.replace(temp, dest)
            except OSError as e:
                raise _cannot_write(output, e) from None
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return info


def _temporary(dest: str, output: str) -> tuple[int, str]:
    """A new file beside *dest* (mode 0666 less the umask, as ``open(dest, "wb")``)."""
    directory, base = os.path.split(dest)
    for _ in range(100):
        temp = os.path.join(directory, f".{base}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                           0o666), temp
        except FileExistsError:
            continue
        except OSError as e:
            raise _cannot_write(output, e) from None
    raise OutputError(f"{output}: cannot write the snapshot: no free temporary name")


def take_snapshot(sysroot: Sysroot, out: Path | BinaryIO, include_protected: bool = False,
                  max_provider_bytes: int = DEFAULT_MAX_PROVIDER_BYTES) -> SnapshotInfo:
    """Write the snapshot (a gzip'd tar) to file *out*, or to the binary stream *out*."""
    info = SnapshotInfo()
    kernel_providers = []
    release = sysroot.read_text("/proc/sys/kernel/osrelease")
    if release is None and str(sysroot.root) == "/":
        release = platform.release()
    if isinstance(out, Path):
        with open(out, "wb") as f:
            return take_snapshot(sysroot, f, include_protected, max_provider_bytes)
    # A stream ("w|gz"): works on pipes and stdout, which cannot seek.
    with tarfile.open(fileobj=out, mode="w|gz") as tar:
        w = _Writer(sysroot, tar)
        # Not listable (EACCES, not a directory): an error naming the directory, no archive.
        for name in list_provider_names(sysroot):
            link = f"{NVMEM_BUS}/{name}"
            if not w.copy(link):
                continue
            try:
                sys_path = sysroot.resolve(link)
                _device_files(w, sys_path, include_protected, max_provider_bytes, info, name)
                _ancestors(w, sys_path)
            except (OSError, SysrootError) as e:  # noted; the other providers are recorded
                info.unreadable.append(f"{name}: {describe(e)}")
                continue
            info.providers.append(name)
            try:
                cells = _kernel_cells(sysroot, sys_path, include_protected)
            except (OSError, SysrootError) as e:
                info.unreadable.append(f"{name}: cells: {describe(e)}")
                cells = None
            kernel_providers.append({"provider": name, "cells": cells})
        for dt_root in _DT_ROOTS:
            if sysroot.exists(dt_root):
                w.tree(dt_root, info)
        w.copy("/proc/device-tree")
        for path in _EXTRA_FILES:
            w.copy(path, limit=1 << 24)
        try:
            netdevs = sysroot.listdir("/sys/class/net")
        except (OSError, SysrootError) as e:
            info.unreadable.append(describe(e))
            netdevs = []
        for netdev in netdevs:
            w.copy(f"/sys/class/net/{netdev}")
            for link in ("of_node", "device", "device/of_node"):
                w.copy(f"/sys/class/net/{netdev}/{link}")
        kernel = {"kernel": release, "nvmemd": __version__, "providers": kernel_providers}
        w.data(f"/{META_DIR}/kernel-cells.json", json.dumps(kernel, indent=1).encode())
        w.data(f"/{META_DIR}/info.json", json.dumps(vars(info), indent=1).encode())
    return info
