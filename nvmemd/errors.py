"""The exception tree.

Every error a user can meet carries what failed (a provider, a DT node, a
configuration key) so that one line of output is enough to fix the board.
Each class maps to one exit code of ``nvmemd-query`` and one D-Bus error name;
the mapping tables live with the front ends, not here.
"""

from __future__ import annotations

import errno
import os

#: Errors that mean "not allowed", whoever the caller: EACCES (mode bits), EPERM.
DENIED_ERRNOS = (errno.EACCES, errno.EPERM)


class NvmemError(Exception):
    """Base class of every error nvmemd reports to a user."""


class InvalidArgumentError(NvmemError):
    """The caller asked for something malformed (a bad spec, offset, format)."""


class NotFoundError(NvmemError):
    """No provider or cell matches what was asked for."""


class AmbiguousError(InvalidArgumentError):
    """A name matches several cells; the message lists the candidates."""

    def __init__(self, spec: str, candidates: list[str]) -> None:
        self.spec = spec
        self.candidates = candidates
        # one candidate a line: a newline inside a name (bytes from media) stays escaped
        listed = "\n  ".join(c.replace("\n", "\\x0a") for c in candidates)
        super().__init__(f"'{spec}' is ambiguous; candidates:\n  {listed}")


class AccessDeniedError(NvmemError):
    """The caller may not read it: a root-only provider (mode 0400), or a file or
    directory this process has no permission for (EACCES, EPERM)."""


class InteractiveAuthorizationRequiredError(AccessDeniedError):
    """polkit would ask the user (a password), but the caller did not allow interaction
    (D-Bus flag ALLOW_INTERACTIVE_AUTHORIZATION, ``busctl --allow-interactive-authorization``)."""


class ProviderGoneError(NvmemError):
    """The provider disappeared between listing and reading."""


class ProviderIOError(NvmemError):
    """Reading the provider's ``nvmem`` file failed."""


class SysrootError(NvmemError):
    """A path under the sysroot cannot be used: it loops, is not the directory it must
    be, or the operating system failed on it (an I/O error); or it is no sysroot."""


class OutputError(NvmemError):
    """A result cannot be written where it was asked for (a snapshot's archive)."""


class DeviceTreeError(NvmemError):
    """A device-tree node cannot be turned into cells.

    ``node`` is the full DT path, printed like the kernel's ``%pOF``.
    """

    def __init__(self, node: str, message: str) -> None:
        self.node = node
        super().__init__(f"{message} on {node}")


class LayoutError(NvmemError):
    """A dynamic layout (ONIE TLV, U-Boot env, ...) rejected its media."""


class ConfigError(NvmemError):
    """The configuration file is unreadable or invalid; ``key`` names the culprit."""

    def __init__(self, path: str, key: str | None, message: str) -> None:
        self.path = path
        self.key = key
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")


def os_reason(e: OSError) -> str:
    """What went wrong, as a message says it: "permission denied", "not a directory"."""
    if e.errno in DENIED_ERRNOS:
        return "permission denied"
    text = e.strerror or (os.strerror(e.errno) if e.errno else str(e))
    return text[:1].lower() + text[1:]


def describe(e: BaseException) -> str:
    """One line for an error a user reads: an OS error as ``FILE: reason`` (the OS
    errors of :class:`nvmemd.sysroot.Sysroot` name in-sysroot files), any other its
    text."""
    return _line(e.filename, e) if isinstance(e, OSError) else str(e)


def _line(where: str | None, e: OSError) -> str:
    return f"{where}: {os_reason(e)}" if where else os_reason(e)


def error_from_os(e: OSError, path: str | None = None) -> NvmemError:
    """OS error *e* (on in-sysroot *path*, default its file name) as the nvmemd error a
    user reads: one line, and the exit status and D-Bus error of its class.

    EACCES/EPERM: :class:`AccessDeniedError`; ENOENT: :class:`NotFoundError`; any
    other error: :class:`SysrootError` (an I/O error).  The OS errors of
    :class:`nvmemd.sysroot.Sysroot` name in-sysroot paths, never the host's.
    """
    text = _line(path if path is not None else e.filename, e)
    if e.errno in DENIED_ERRNOS:
        return AccessDeniedError(text)
    if e.errno == errno.ENOENT:
        return NotFoundError(text)
    return SysrootError(text)
