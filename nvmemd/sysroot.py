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

from .errors import SysrootError, error_from_os
from .values import value

#: include/linux/namei.h: MAXSYMLINKS
MAX_SYMLINKS = 40
#: One read() of a file: a sysfs attribute or a DT property fits (sysfs: a page).
READ_CHUNK = 64 * 1024

DEFAULT_SYSROOT = "/"
SYSROOT_ENV = "NVMEMD_SYSROOT"
#: In a snapshot's provider directory (never in sysfs): the provider's nvmem holds less
#: than the provider had (nothing of a root-only one without --include-protected, the
#: first --max-provider-bytes of a large one, nothing of one that could not be read).
#: Its first line is the real size, the second why the rest is missing.
NOT_RECORDED = "nvmemd-not-recorded"
#: Why, in a marker of a snapshot that had only the size line.
NOT_RECORDED_DEFAULT_WHY = "root-only; the snapshot was taken without --include-protected"
#: Where the providers are (providers.NVMEM_BUS), checked by Sysroot.validate().
_NVMEM_BUS_DIR = "/sys/bus/nvmem"
_NVMEM_DEVICES = "/sys/bus/nvmem/devices"
_ABSENT_ERRNOS = (errno.ENOENT, errno.ENOTDIR)


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
        """Refuse a sysroot that is not one; a warning when it has no nvmem bus.

        A directory without ``sys/`` is no sysroot (a typo, an unpacked archive's
        parent): SysrootError.  ``sys/bus/nvmem`` is absent where the kernel has no
        NVMEM support or no provider has registered yet: not an error, but worth
        saying.  Anything else that keeps the providers from being listed is an
        error, not an absence: a directory this process may not search
        (AccessDeniedError), a symbolic link loop, a ``devices`` that is no
        directory, an I/O error (SysrootError); messages name in-sysroot paths.
        """
        root = self.root
        try:
            st = os.stat(root)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise SysrootError(f"sysroot {root}: no such directory") from None
            raise error_from_os(e, f"sysroot {root}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise SysrootError(f"sysroot {root}: not a directory")
        try:
            if not self.is_dir(self.resolve("/sys")):
                raise SysrootError(f"sysroot {root}: no sys/ directory in it (not a sysroot)")
        except OSError as e:  # the root cannot be searched: its name is the one to give
            raise error_from_os(e, f"sysroot {root}") from None
        for path in (_NVMEM_BUS_DIR, _NVMEM_DEVICES):
            try:
                present = self.is_dir(self.resolve(path))
            except OSError as e:
                raise error_from_os(e, path) from None
            if not present:
                if self.exists(path):  # there, but a file (or a FIFO, a device...)
                    raise SysrootError(f"{path}: not a directory")
                where = "" if root == "/" else f" under {root}"
                return (f"no {path}{where}: no nvmem provider has registered "
                        "(kernel without CONFIG_NVMEM, or drivers not loaded yet)")
        return None

    def is_dir(self, path: str) -> bool:
        """Whether the directories-resolved in-sysroot *path* is a directory.

        Absent (ENOENT, or ENOTDIR: a file on the way) or not a directory: False.
        Any other error raises OSError naming *path*, so that a directory this
        process may not search, or an I/O error, is not taken for absence.
        """
        try:
            st = os.stat(self.host_path(path))
        except OSError as e:
            if e.errno in _ABSENT_ERRNOS:
                return False
            raise self.named(e, path) from None
        return stat.S_ISDIR(st.st_mode)

    def named(self, e: OSError, path: str) -> OSError:
        """*e* again, naming the in-sysroot *path* instead of a host path (same class)."""
        return OSError(e.errno, e.strerror or str(e), path)

    def inside(self, host: str) -> str:
        """The in-sysroot path of *host*, a host path below the root (else *host*)."""
        root = self.root.rstrip("/")
        if not root:
            return host
        if host == root:
            return "/"
        return host[len(root):] if host.startswith(root + "/") else host

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
            try:
                fd = os.open(self.host_path(path), flags)
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                fd = os.open(self.host_path(self.resolve(path)), flags)
        except OSError as e:
            raise self.named(e, path) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def stat_file(self, path: str) -> os.stat_result:
        """``stat()`` of in-sysroot *path* (directories resolved), a final link
        resolved inside the sysroot instead of on the host."""
        try:
            st = os.lstat(self.host_path(path))
            if stat.S_ISLNK(st.st_mode):
                st = os.lstat(self.host_path(self.resolve(path)))
        except OSError as e:
            raise self.named(e, path) from None
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
                try:
                    chunk = os.read(fd, READ_CHUNK if remaining < 0 else
                                    min(remaining, READ_CHUNK))
                except OSError as e:
                    raise self.named(e, path) from None
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

    def not_recorded(self, provider_dir: str) -> tuple[int, str] | None:
        """A snapshot's marker in *provider_dir* (:data:`NOT_RECORDED`): the provider's
        real size and why its nvmem holds less; None in sysfs (or a full recording)."""
        text = self.read_text(f"{provider_dir}/{NOT_RECORDED}")
        if text is None:
            return None
        size, _, why = text.partition("\n")
        if not size.strip().isdigit():
            return None
        return int(size), why.strip() or NOT_RECORDED_DEFAULT_WHY

    def exists(self, path: str) -> bool:
        try:
            return os.path.exists(self.resolved_host_path(path))
        except SysrootError:
            return False

    def listdir(self, path: str) -> list[str]:
        """Entries of the directory at *path* (sorted), or [] when it is absent (or no
        directory); other errors raise OSError naming *path* (EACCES: not absent)."""
        try:
            return sorted(os.listdir(self.resolved_host_path(path)))
        except (NotADirectoryError, FileNotFoundError):
            return []
        except OSError as e:
            raise self.named(e, path) from None

    def readlink_resolved(self, path: str) -> str | None:
        """Where the link at *path* leads (fully resolved), or None if no link."""
        # The directory is walked once; the link is resolved from there (same hop count).
        parent, hops = self._walk([], os.path.dirname(path), 0, path)
        name = os.path.basename(path)
        if not os.path.islink(self.host_path(parent) + "/" + name):
            return None
        return self.resolve_from(parent, name, hops, path)[0]
