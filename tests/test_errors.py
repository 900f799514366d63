"""nvmemd.errors: an OS error becomes one line and the class of its exit status."""

from __future__ import annotations

import errno
import os

import pytest

from nvmemd.errors import (
    AccessDeniedError,
    NotFoundError,
    NvmemError,
    SysrootError,
    error_from_os,
    os_reason,
)


@pytest.mark.parametrize(("code", "cls", "text"), [
    (errno.EACCES, AccessDeniedError, "/sys/class/net/eth0: permission denied"),
    (errno.EPERM, AccessDeniedError, "/sys/class/net/eth0: permission denied"),
    (errno.ENOENT, NotFoundError, "/sys/class/net/eth0: no such file or directory"),
    (errno.ENOTDIR, SysrootError, "/sys/class/net/eth0: not a directory"),
    (errno.EIO, SysrootError, "/sys/class/net/eth0: input/output error"),
])
def test_error_from_os(code: int, cls: type[NvmemError], text: str) -> None:
    error = error_from_os(OSError(code, os.strerror(code), "/host/root/x"),
                          "/sys/class/net/eth0")
    assert type(error) is cls and str(error) == text
    # without a path: the error's own file name (nvmemd.sysroot's are in-sysroot paths)
    assert str(error_from_os(OSError(code, "x", "/sys/a"))).startswith("/sys/a: ")


def test_os_reason_never_names_a_class() -> None:
    assert os_reason(OSError("nvmem is not a regular file")) == "nvmem is not a regular file"
    assert os_reason(OSError(errno.EIO, "Input/output error")) == "input/output error"
    assert str(error_from_os(OSError(errno.EIO, "Input/output error"))) == "input/output error"
