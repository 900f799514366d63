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

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import SysrootError

#: include/linux/namei.h: MAXSYMLINKS
MAX_SYMLINKS = 40

DEFAULT_SYSROOT = "/"
SYSROOT_ENV = "NVMEMD_SYSROOT"


@dataclass(frozen=True)
class Sysroot:
    """A directory standing for ``/``."""

    root: Path

    @classmethod
    def from_arg(cls, arg: str | None) -> Sysroot:
        """The sysroot from ``--sysroot``, else ``$NVMEMD_SYSROOT``, else ``/``."""
        chosen = arg or os.environ.get(SYSROOT_ENV) or DEFAULT_SYSROOT
        return cls(Path(os.path.abspath(chosen)))

    def host_path(self, path: str) -> Path:
        """The host path of an absolute in-sysroot *path*, links not followed."""
        return Path(str(self.root).rstrip("/") + "/" + path.lstrip("/"))

    def resolve(self, path: str) -> str:
        """Resolve every link in the in-sysroot *path*; return an in-sysroot path.

        Components that do not exist are kept as they are (like
        ``realpath -m``): callers open the result and get ``FileNotFoundError``.
        """
        # Plain strings and os.readlink(): this runs for every sysfs access.
        root = str(self.root).rstrip("/")
        pending = path.split("/")
        pending.reverse()
        resolved: list[str] = []
        host = root
        hops = 0
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
                raise SysrootError(f"too many levels of symbolic links resolving {path}")
            if target.startswith("/"):
                resolved = []
                host = root
            parts = target.split("/")
            parts.reverse()
            pending.extend(parts)
        return "/" + "/".join(resolved)

    def resolved_host_path(self, path: str) -> Path:
        """The host path of *path* after resolving its links inside the sysroot."""
        return self.host_path(self.resolve(path))

    def read_bytes(self, path: str) -> bytes:
        return self.resolved_host_path(path).read_bytes()

    def read_text(self, path: str) -> str | None:
        """A small sysfs attribute as text without the trailing newline, or None."""
        try:
            return self.read_bytes(path).decode("utf-8", "replace").rstrip("\n")
        except (OSError, SysrootError):
            return None

    def exists(self, path: str) -> bool:
        try:
            return self.resolved_host_path(path).exists()
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
        host = self.root / self.resolve(os.path.dirname(path)).lstrip("/")
        link = host / os.path.basename(path)
        if not link.is_symlink():
            return None
        return self.resolve(path)
