"""nvmemd/specs.py: spec parsing, string code only (the CLI's fast path loads it first)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvmemd.specs import split_provider, split_sysfs_name

#: The kernel's cell file name as a pattern (what split_sysfs_name replaces).
SYSFS_NAME = re.compile(r"(?P<name>[^\n]+)@(?P<offset>[0-9a-fA-F]+),(?P<bit>[0-9a-fA-F]+)")

_PARTS = st.sampled_from(["mac", "@", ",", "0", "1f", "A", "g", "-", "\n", "x@y", "@0,0", " "])


@given(st.lists(_PARTS, max_size=8).map("".join) | st.text(max_size=16))
@settings(max_examples=3000, deadline=None)
def test_split_sysfs_name_is_the_kernel_format(spec: str) -> None:
    m = SYSFS_NAME.fullmatch(spec)
    expected = (m["name"], int(m["offset"], 16), int(m["bit"], 16)) if m else None
    assert split_sysfs_name(spec) == expected


@pytest.mark.parametrize(("spec", "parsed"), [
    ("mac-address@90,0", ("mac-address", 0x90, 0)), ("a@b@1F,7", ("a@b", 0x1F, 7)),
    ("serial", None), ("@0,0", None), ("x@0", None), ("x@0,", None), ("x@,0", None),
    ("x@0,0,0", None), ("x@0x1,0", None), ("x@ 1,0", None), ("x@1_0,0", None)])
def test_split_sysfs_name_examples(spec: str, parsed: tuple[str, int, int] | None) -> None:
    """int(x, 16) alone would take "0x1", " 1" and "1_0": the kernel never prints them."""
    assert split_sysfs_name(spec) == parsed


@pytest.mark.parametrize(("spec", "split"), [
    ("eeprom0/mac", ("eeprom0", "mac")), ("eeprom0:mac", ("eeprom0", "mac")),
    ("/soc/x", (None, "/soc/x")), ("&label", (None, "&label")), (":x", (None, ":x")),
    ("x/", (None, "x/")), ("mac", (None, "mac"))])
def test_split_provider(spec: str, split: tuple[str | None, str]) -> None:
    assert split_provider(spec) == split
