"""Object path escaping: systemd's bus_label_escape(), without a bus."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvmemd.dbus.names import ROOT_PATH
from nvmemd.dbus.paths import (
    cell_path,
    escape_label,
    provider_of_path,
    provider_path,
    unescape_label,
)

# Values as `systemd-escape`-free sd_bus_path_encode() gives them (bus-label.c).
CASES = [
    ("", "_"),
    ("abc", "abc"),
    ("ABC019", "ABC019"),
    ("mac-address@90,0", "mac_2daddress_4090_2c0"),
    ("a_b", "a_5fb"),
    ("0-00512", "_30_2d00512"),
    ("9", "_39"),
    ("a9", "a9"),
    ("a.b/c", "a_2eb_2fc"),
    ("ü", "_c3_bc"),
    (" ", "_20"),
]


@pytest.mark.parametrize(("label", "escaped"), CASES)
def test_escape_matches_systemd(label: str, escaped: str) -> None:
    assert escape_label(label) == escaped
    assert unescape_label(escaped) == label


def _sd_bus_path_encode() -> Any:
    """libsystemd's own sd_bus_path_encode(prefix, label, &path), through ctypes."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("systemd")
    assert name, "libsystemd0 is missing (it comes with systemd, .ci/apt-packages.txt)"
    lib = ctypes.CDLL(name)
    encode = lib.sd_bus_path_encode
    encode.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    libc = ctypes.CDLL(None)

    def call(label: bytes) -> str:
        out = ctypes.c_void_p()
        assert encode(b"/p", label, ctypes.byref(out)) == 0
        try:
            return ctypes.string_at(out.value).decode().removeprefix("/p/")
        finally:
            libc.free(out)

    return call


SD_BUS_PATH_ENCODE = _sd_bus_path_encode()


@pytest.mark.parametrize(("label", "escaped"), CASES)
def test_cases_are_what_libsystemd_gives(label: str, escaped: str) -> None:
    assert SD_BUS_PATH_ENCODE(label.encode()) == escaped


@given(st.text().filter(lambda t: "\0" not in t))
def test_escape_is_sd_bus_path_encode(label: str) -> None:
    """Any name a provider or cell may have (no NUL: a C string) escapes as sd-bus does."""
    assert escape_label(label) == SD_BUS_PATH_ENCODE(label.encode("utf-8", "surrogateescape"))


@given(st.text())
def test_roundtrip_and_valid_element(label: str) -> None:
    escaped = escape_label(label)
    assert re.fullmatch(r"[A-Za-z0-9_]+", escaped)
    assert unescape_label(escaped) == label


def test_unescape_keeps_a_lone_underscore_sequence() -> None:
    assert unescape_label("a_zz") == "a_zz"
    assert unescape_label("a_4") == "a_4"


def test_paths() -> None:
    assert provider_path("imx-ocotp0") == ROOT_PATH + "/providers/imx_2docotp0"
    assert cell_path("imx-ocotp0", "mac-address@90,0") == (
        ROOT_PATH + "/providers/imx_2docotp0/cells/mac_2daddress_4090_2c0")
    assert provider_path("0-00512") == ROOT_PATH + "/providers/_30_2d00512"
    assert provider_of_path(cell_path("0-00512", "x@0,0")) == "0-00512"
    assert provider_of_path(ROOT_PATH) is None
