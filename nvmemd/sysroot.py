"""Paths under a sysroot.

Everything nvmemd reads lives below one directory (``/`` on a target, a
recording in tests and bug reports).  Symbolic links inside a recording point
either relatively (``../../firmware/devicetree/base/...``) or absolutely
(``/sys/firmware/devicetree/base``, as ``/proc/device-tree`` does on a real
system); both must resolve *inside* the sysroot.  :meth:`Sysroot.resolve`
therefore walks a path one component at a time, like the kernel's
``link_path_walk()``, re-rooting absolute targets, clamping ``..`` at the
sysroot and giving up after :data:`MAX_SYMLINKS` links (the kernel's
``MAXSYMLINKS``), so that a loop is reported instead of followed forever.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import SysrootError
from .values import value

#: include/linux/namei.h: MAXSYMLINKS
MAX_SYMLINKS = 40
#: One read() of a file: a sysfs attribute or a DT property fits (sysfs: a page).
READ_CHUNK = 64 * 1024

DEFAULT_SYSROOT = "/"
SYSROOT_ENV = "NVMEMD_SYSROOT"
#: In a snapshot's provider directory (never in sysfs): the contents of this root-only
#: provider were not recorded (no --include-protected); the file holds its real size.
NOT_RECORDED = "nvmemd-not-recorded"


@value
class Sysroot:
    """A directory standing for ``/`` (an absolute path; plain strings, no pathlib:
    every sysfs access of a ``get`` goes through here)."""

    root: str

    @classmethod
    def from_arg(cls, arg: str | None) -> Sysroot:
        """The sysroot from ``--sysroot``, else ``$NVMEMD_SYSROOT``, else ``/``."""
        chosen = arg or os.environ.get(SYSROOT_ENV) or DEFAULT_SYSROOT
        return cls(os.path.abspath(chosen))

    def validate(self) -> str | None:
        """Refuse a sysroot that is not one (SysrootError); a warning when it has no nvmem bus.

        A directory without ``sys/`` is no sysroot (a typo, an unpacked archive's
        parent); ``sys/bus/nvmem`` is absent where the kernel has no NVMEM support
        or no provider has registered yet: not an error, but worth saying.
        """
        root = self.root
        if not os.path.exists(root):
            raise SysrootError(f"sysroot {root}: no such directory")
        if not os.path.isdir(root):
            raise SysrootError(f"sysroot {root}: not a directory")
        if not os.path.isdir(os.path.join(root, "sys")):
            raise SysrootError(f"sysroot {root}: no sys/ directory in it (not a sysroot)")
        if not os.path.isdir(os.path.join(root, "sys/bus/nvmem")):
            where = "" if root == "/" else f" under {root}"
            return (f"no /sys/bus/nvmem{where}: no nvmem provider has registered "
                    "(kernel without CONFIG_NVMEM, or drivers not loaded yet)")
        return None

    def host_path(self, path: str) -> str:
        """The host path of an absolute in-sysroot *path*, links not followed."""
        return self.root.rstrip("/") + "/" + path.lstrip("/")

    def resolve(self, path: str) -> str:
        """Resolve every link in the in-sysroot *path*; return an in-sysroot path.

        Components that do not exist are kept as they are (like
        ``realpath -m``): callers open the result and get ``FileNotFoundError``.
        """
        return self._walk([], path, 0, path)[0]

    def resolve_from(self, resolved: str, relative: str, hops: int = 0,
                     display: str | None = None) -> tuple[str, int]:
        """``resolve(resolved + "/" + relative)`` for a *resolved* that came from here.

        A resolved path holds no links, so only *relative* is walked; *hops* is
        the number of links its resolution followed (returned for the next call),
        so that :data:`MAX_SYMLINKS` still counts over the whole path.  *display*
        names the path in errors (default: the joined path).
        """
        start = [p for p in resolved.split("/") if p]
        where = display if display is not None else resolved.rstrip("/") + "/" + relative
        return self._walk(start, relative, hops, where)

    def _walk(self, resolved: list[str], path: str, hops: int, display: str
              ) -> tuple[str, int]:
        # Plain strings and os.readlink(): this runs for every sysfs access.
        root = self.root.rstrip("/")
        pending = path.split("/")
        pending.reverse()
        host = root + "/" + "/".join(resolved) if resolved else root
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                    host = root + "/" + "/".join(resolved) if resolved else root
                continue
            candidate = host + "/" + part
            try:
                target = os.readlink(candidate)
            except OSError:
                resolved.append(part)
                host = candidate
                continue
            hops += 1
            if hops > MAX_SYMLINKS:
                raise SysrootError(f"too many levels of symbolic links resolving {display}")
            if target.startswith("/"):
                resolved = []
                host = root
            parts = target.split("/")
            parts.reverse()
            pending.extend(parts)
        return "/" + "/".join(resolved), hops

    def resolved_host_path(self, path: str) -> str:
        """The host path of *path* after resolving its links inside the sysroot."""
        return self.host_path(self.resolve(path))

    def open_file(self, path: str) -> int:
        """Open the regular file at in-sysroot *path* read-only; return the descriptor.

        The last component is opened without following a link (``O_NOFOLLOW``):
        a link there is resolved inside the sysroot like every other component
        and its target opened, again without following.  ``O_NONBLOCK`` keeps a
        FIFO or a device from blocking the open; anything but a regular file is
        refused with ``OSError(EINVAL)``.  The directories of *path* must be
        resolved already (a path from :meth:`resolve`, or a resolved directory
        plus a name).
        """
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW
        try:
            fd = os.open(self.host_path(path), flags)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            fd = os.open(self.host_path(self.resolve(path)), flags)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def stat_file(self, path: str) -> os.stat_result:
        """``stat()`` of in-sysroot *path* (directories resolved), a final link
        resolved inside the sysroot instead of on the host."""
        st = os.lstat(self.host_path(path))
        if stat.S_ISLNK(st.st_mode):
            st = os.lstat(self.host_path(self.resolve(path)))
        return st

    def read_file(self, path: str, limit: int = -1) -> bytes:
        """The bytes of the regular file at *path* (see :meth:`open_file`), at most *limit*.

        Plain ``os.read()`` calls: a scan reads hundreds of small properties and
        attributes, and a buffered file object costs more than the read itself.
        """
        fd = self.open_file(path)
        try:
            chunks = []
            remaining = limit
            while remaining:
                chunk = os.read(fd, READ_CHUNK if remaining < 0 else min(remaining, READ_CHUNK))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk) if remaining > 0 else 0
            return b"".join(chunks)
        finally:
            os.close(fd)

    def read_bytes(self, path: str) -> bytes:
        return self.read_file(self.resolve(path))

    def read_text(self, path: str) -> str | None:
        """A small sysfs attribute as text without the trailing newline, or None."""
        try:
            return self.read_bytes(path).decode("utf-8", "replace").rstrip("\n")
        except (OSError, SysrootError):
            return None

    def exists(self, path: str) -> bool:
        try:
            return os.path.exists(self.resolved_host_path(path))
        except SysrootError:
            return False

    def listdir(self, path: str) -> list[str]:
        """Entries of the directory at *path* (sorted), or [] when it is absent."""
        try:
            return sorted(os.listdir(self.resolved_host_path(path)))
        except (NotADirectoryError, FileNotFoundError):
            return []

    def readlink_resolved(self, path: str) -> str | None:
        """Where the link at *path* leads (fully resolved), or None if no link."""
        # The directory is walked once; the link is resolved from there (same hop count).
        parent, hops = self._walk([], os.path.dirname(path), 0, path)
        name = os.path.basename(path)
        if not os.path.islink(self.host_path(parent) + "/" + name):
            return None
        return self.resolve_from(parent, name, hops, path)[0]
