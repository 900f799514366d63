"""nvmemd/reader.py: exactly the bytes asked for, aligned as the provider needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvmemd.errors import ProviderGoneError, ProviderIOError
from nvmemd.model import Access
from nvmemd.reader import read_range
from nvmemd.sysroot import Sysroot

DATA = bytes(range(64))


@pytest.fixture
def sysroot(tmp_path: Path) -> Sysroot:
    (tmp_path / "dev0").mkdir()
    (tmp_path / "dev0" / "nvmem").write_bytes(DATA)
    return Sysroot(str(tmp_path))


@pytest.mark.parametrize(("offset", "length", "access"), [
    (0, 64, None), (3, 5, None), (3, 5, Access(stride=4, word_size=4)),
    (62, 2, Access(word_size=4)),
])
def test_reads_exactly_the_range(sysroot: Sysroot, offset: int, length: int,
                                 access: Access | None) -> None:
    assert read_range(sysroot, "dev0", "/dev0/nvmem", offset, length, access) \
        == DATA[offset : offset + length]


def test_short_only_at_the_end(sysroot: Sysroot) -> None:
    assert read_range(sysroot, "dev0", "/dev0/nvmem", 60, 10) == DATA[60:]


def test_a_vanished_provider_is_gone(sysroot: Sysroot) -> None:
    with pytest.raises(ProviderGoneError, match="dev0: provider is gone"):
        read_range(sysroot, "dev0", "/dev1/nvmem", 0, 1)


def test_a_directory_is_not_an_nvmem_file(sysroot: Sysroot, tmp_path: Path) -> None:
    (tmp_path / "dev2" / "nvmem").mkdir(parents=True)
    with pytest.raises(ProviderIOError, match="not a regular file"):
        read_range(sysroot, "dev2", "/dev2/nvmem", 0, 1)
