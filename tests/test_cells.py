"""nvmemd.cells: the kernel's cell entry checks, bit shifting and driver fixups."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvmemd.cells import apply_fixup, decode_cell, entry_from_info
from nvmemd.errors import DeviceTreeError
from nvmemd.model import Access, CellInfo


def closed_form(raw: bytes, bit_offset: int, nbits: int, nbytes: int) -> bytes:
    """nvmem_shift_read_buffer_in_place() in closed form: LE integer, shift, mask, `bytes` long."""
    v = int.from_bytes(raw[:nbytes], "little") >> bit_offset
    v &= (1 << nbits) - 1
    return v.to_bytes(nbytes, "little")


@st.composite
def bit_cells(draw: st.DrawFn) -> tuple[int, int, int, int, bytes]:
    size = draw(st.integers(1, 12))
    bit_offset = draw(st.integers(0, 8 * size - 1))
    nbits = draw(st.integers(1, 8 * size - bit_offset))
    word = draw(st.sampled_from([1, 2, 4, 8]))
    raw = draw(st.binary(min_size=size + 8, max_size=size + 8))
    return size, bit_offset, nbits, word, raw


@settings(max_examples=600, deadline=None)
@given(bit_cells())
def test_shift_matches_closed_form(case: tuple[int, int, int, int, bytes]) -> None:
    size, bit_offset, nbits, word, raw = case
    cell = entry_from_info("c", 0, size, Access(word_size=word), bit_offset, nbits)
    assert cell.bytes == (bit_offset + nbits + 7) // 8
    assert cell.raw_len % word == 0 and cell.raw_len >= cell.bytes
    got = decode_cell(cell, raw[: cell.raw_len])
    assert got == closed_form(raw[: cell.raw_len], bit_offset, nbits, cell.bytes)


def test_plain_cell_is_sliced_not_shifted() -> None:
    cell = entry_from_info("c", 0, 3, Access(word_size=4))
    assert (cell.bytes, cell.raw_len) == (3, 4)
    assert decode_cell(cell, b"\x01\x02\x03\x04") == b"\x01\x02\x03"


def test_stride_check_names_the_node() -> None:
    with pytest.raises(DeviceTreeError, match=r"cell x unaligned to nvmem stride 4 on /n/x@2"):
        entry_from_info("x", 2, 4, Access(stride=4), node="/n/x@2")


def test_driver_given_raw_len_must_be_word_aligned() -> None:
    with pytest.raises(DeviceTreeError, match="raw len 3 unaligned to nvmem word size 4"):
        entry_from_info("x", 0, 3, Access(word_size=4), raw_len=3)


def test_sysfs_name_is_lowercase_hex() -> None:
    cell = CellInfo("mac", 0xAB0, 2, 2, bit_offset=10, nbits=4)
    assert cell.sysfs_name == "mac@ab0,a"


@pytest.mark.parametrize(("name", "nbits", "hooked"), [
    ("gpu-speedbin", 3, True),
    ("gpu", 2, True),            # strncmp over min(strlen(name), 12): a prefix matches
    ("gpu-speedbin-2", 3, True),
    ("gpu-speedbin", 4, False),  # only nbits <= 3
    ("cpu-speedbin", 3, False),
])
def test_mtk_gpu_speedbin_hook(name: str, nbits: int, hooked: bool) -> None:
    *_, pp = apply_fixup("mtk-efuse-gpu-speedbin", name, 0, 1, 0, nbits)
    assert (pp is not None) == hooked
    if pp is not None:
        assert pp(name, 0, b"\x03") == b"\x08"   # BIT(3)
        assert pp(name, 0, b"\x09") == b"\x09"   # >= 8 unchanged


def test_imx_ocotp_reverses_only_for_mac_address_id() -> None:
    offset, bo, nb, raw_len, pp = apply_fixup("imx-ocotp", "mac-address", 0x90, 6, 0, 0)
    assert raw_len == 8 and pp is not None
    cell = entry_from_info("mac-address", offset, 6, Access(word_size=4), bo, nb, raw_len,
                           post_process=pp)
    raw = bytes.fromhex("6655443322110000")
    assert decode_cell(cell, raw) == bytes.fromhex("112233445566")
    # A consumer naming it differently gets the stored order.
    assert decode_cell(cell, raw, cell_id="ethernet-mac") == bytes.fromhex("665544332211")


def test_unknown_fixup_is_refused() -> None:
    """A table row naming a hook nvmemd does not mirror is a bug, not mtk-efuse."""
    with pytest.raises(ValueError, match="unknown fixup"):
        apply_fixup("no-such-hook", "gpu-speedbin", 0, 1, 0, 3)  # type: ignore[arg-type]
