"""Reading bytes from a provider's ``nvmem`` file, only the bytes asked for.

The sysfs ``nvmem`` attribute (``drivers/nvmem/core.c: bin_attr_nvmem_read()``)
answers -EINVAL when the position is not a multiple of the provider's stride
or the count is smaller than its word size, and kernfs hands out at most a page
per ``read()``.  :func:`read_range` therefore reads with ``pread`` in a loop,
and when the provider's access rules are unknown and the kernel says EINVAL it
retries with a window aligned to 4, then 8 bytes, and cuts the answer out.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import DENIED_ERRNOS, AccessDeniedError, ProviderGoneError, ProviderIOError
from .model import Access
from .sysroot import Sysroot

_GONE_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.ESTALE})
_FALLBACK_ALIGNMENTS = (4, 8)


def _pread_exact(fd: int, offset: int, length: int) -> bytes:
    chunks: list[bytes] = []
    done = 0
    while done < length:
        chunk = os.pread(fd, length - done, offset + done)
        if not chunk:
            break
        chunks.append(chunk)
        done += len(chunk)
    return b"".join(chunks)


def _aligned_read(fd: int, offset: int, length: int, align: int) -> bytes:
    start = offset - offset % align
    end = -(-(offset + length) // align) * align
    data = _pread_exact(fd, start, end - start)
    return data[offset - start : offset - start + length]


def read_range(
    sysroot: Sysroot,
    provider_name: str,
    nvmem_path: str,
    offset: int,
    length: int,
    access: Access | None = None,
) -> bytes:
    """Read *length* bytes at *offset*; short only at the end of the provider.

    Errors are translated: EACCES → AccessDeniedError, a vanished file →
    ProviderGoneError, anything else → ProviderIOError.  Messages name the
    provider, never host paths.
    """
    try:
        fd = sysroot.open_file(nvmem_path)  # not following a link out of the sysroot
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise ProviderIOError(f"{provider_name}: nvmem is not a regular file") from None
        raise _translate(e, provider_name, "open") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProviderIOError(f"{provider_name}: nvmem is not a regular file")
        if length and offset + length > st.st_size:
            marker = sysroot.not_recorded(nvmem_path.rsplit("/", 1)[0])
            if marker is not None:
                where = f"bytes from {st.st_size:#x} " if st.st_size else ""
                raise ProviderIOError(f"{provider_name}: {where}not recorded ({marker[1]})")
        try:
            if access is not None and (access.stride > 1 or access.word_size > 1):
                return _aligned_read(fd, offset, length, max(access.stride, access.word_size))
            return _pread_exact(fd, offset, length)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            last: OSError = e
            for align in _FALLBACK_ALIGNMENTS:
                try:
                    return _aligned_read(fd, offset, length, align)
                except OSError as again:
                    last = again
            raise last from None
    except OSError as e:
        raise _translate(e, provider_name, f"read of {length} bytes at {offset:#x}") from None
    finally:
        os.close(fd)


def _translate(e: OSError, provider: str, what: str) -> Exception:
    reason = os.strerror(e.errno) if e.errno else str(e)
    if e.errno in DENIED_ERRNOS:
        return AccessDeniedError(f"{provider}: permission denied (root-only provider)")
    if e.errno in _GONE_ERRNOS:
        return ProviderGoneError(f"{provider}: provider is gone")
    if e.errno == errno.EISDIR:
        return ProviderIOError(f"{provider}: {what} failed: nvmem is not a regular file")
    return ProviderIOError(f"{provider}: {what} failed: {reason}")
