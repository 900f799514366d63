"""nvmemd/registry.py: how a spec names a cell, and what a read returns."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from nvmemd.config import load_config
from nvmemd.errors import (
    AccessDeniedError,
    AmbiguousError,
    InvalidArgumentError,
    NotFoundError,
    ProviderIOError,
)
from nvmemd.model import BrokenProvider
from nvmemd.registry import Registry, match_spec, scan
from nvmemd.sysroot import Sysroot


@pytest.fixture(scope="module")
def registry(demo_board_sysroot: Path) -> Registry:
    root = Sysroot(str(demo_board_sysroot))
    return scan(root, load_config(root, None))


@pytest.mark.parametrize(("spec", "expected"), [
    ("board-eeprom1:serial-number", "board-eeprom1:serial-number@0,0"),
    ("serial-number@0,0", "board-eeprom1:serial-number@0,0"),
    ("/soc@0/i2c@30a20000/eeprom@50/nvmem-layout/hw-revision@46",
     "board-eeprom1:hw-revision@46,4"),
    ("&wifi_mac", "mtd1:mac-address@0,0"),
    ("wifi_mac", "mtd1:mac-address@0,0"),
    ("hw-revision", "board-eeprom1:hw-revision@46,4"),
])
def test_a_spec_names_one_cell(registry: Registry, spec: str, expected: str) -> None:
    entry, cell = registry.resolve_cell(spec)
    assert f"{entry.name}:{cell.sysfs_name}" == expected


def test_an_ambiguous_name_lists_every_candidate(registry: Registry) -> None:
    with pytest.raises(AmbiguousError) as info:
        registry.resolve_cell("mac-address")
    assert info.value.candidates == ["board-eeprom1/mac-address@40,0",
                                     "imx-ocotp0/mac-address@90,0", "mtd1/mac-address@0,0"]
    for candidate in info.value.candidates:  # each one a spec of its own
        entry, cell = registry.resolve_cell(candidate)
        assert f"{entry.name}/{cell.sysfs_name}" == candidate


def test_a_provider_argument_narrows_the_search(registry: Registry) -> None:
    entry, cell = registry.resolve_cell("mac-address", "imx-ocotp0")
    assert (entry.name, cell.offset) == ("imx-ocotp0", 0x90)


@pytest.mark.parametrize(("spec", "error"), [
    ("", InvalidArgumentError),
    ("no-such-cell", NotFoundError),
    ("no-such-provider:serial-number", NotFoundError),
])
def test_bad_specs(registry: Registry, spec: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        registry.resolve_cell(spec)


def test_match_spec_forms(registry: Registry) -> None:
    _, cell = registry.resolve_cell("board-eeprom1:hw-revision")
    assert match_spec("hw-revision", cell)
    assert match_spec("hw-revision@46,4", cell) and not match_spec("hw-revision@46,0", cell)
    assert match_spec(cell.of_node + "/", cell) if cell.of_node else False


def test_read_cell_is_what_the_kernel_cells_file_returns(registry: Registry) -> None:
    entry, cell = registry.resolve_cell("board-eeprom1:hw-revision")
    assert registry.read_cell(entry, cell) == bytes.fromhex("3b00")


def test_read_provider_is_clamped_to_the_end(registry: Registry) -> None:
    entry = registry.provider("imx-ocotp0")
    assert len(registry.read_provider(entry, entry.provider.size - 4, 100)) == 4
    with pytest.raises(InvalidArgumentError):
        registry.read_provider(entry, entry.provider.size + 1, 1)


def test_with_provider_swaps_one_entry(registry: Registry) -> None:
    broken = BrokenProvider("imx-ocotp0", "imx-ocotp0: I/O error")
    changed = registry.with_provider("imx-ocotp0", broken)
    assert "imx-ocotp0" not in changed.entries and changed.broken["imx-ocotp0"] is broken
    with pytest.raises(ProviderIOError):
        changed.provider("imx-ocotp0")
    assert registry.entries.keys() - changed.entries.keys() == {"imx-ocotp0"}  # unchanged
    removed = changed.with_provider("imx-ocotp0", None)
    assert "imx-ocotp0" not in removed.broken


@pytest.mark.parametrize(("err", "cls"), [
    (errno.EACCES, AccessDeniedError),
    (errno.EPERM, AccessDeniedError),
    (errno.EIO, ProviderIOError),
    (None, ProviderIOError),
])
def test_broken_provider_keeps_the_kind_of_its_error(registry: Registry, err: int | None,
                                                     cls: type[Exception]) -> None:
    """A provider the scan could not describe answers with its error's kind: EACCES is
    permission denied (exit 4, D-Bus AccessDenied; `wait` gives up at once), not I/O."""
    broken = BrokenProvider("imx-ocotp0", "imx-ocotp0: /sys/x: permission denied", errno=err)
    changed = registry.with_provider("imx-ocotp0", broken)
    with pytest.raises(cls, match=r"^imx-ocotp0: /sys/x: permission denied$") as e:
        changed.resolve_cell("imx-ocotp0/unique-id")
    assert type(e.value) is cls
    with pytest.raises(cls):
        changed.provider("imx-ocotp0")
