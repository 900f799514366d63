"""The error table and the method guard, without a bus."""

from __future__ import annotations

import asyncio
import logging

import pytest
from dbus_fast import DBusError

from nvmemd import errors
from nvmemd.cli.main import exit_code_for
from nvmemd.dbus.names import ERROR_FAILED, ERROR_MAP, error_for_name, error_name_for
from nvmemd.dbus.service import _guarded


@pytest.mark.parametrize("error", [
    errors.InvalidArgumentError("x"), errors.AmbiguousError("a", ["p:a@0,0", "q:a@0,0"]),
    errors.ConfigError("/etc/nvmemd/nvmemd.toml", "k", "bad"), errors.NotFoundError("x"),
    errors.AccessDeniedError("x"), errors.ProviderGoneError("x"), errors.ProviderIOError("x"),
    errors.SysrootError("x"),
])
def test_round_trip_keeps_exit_code_and_message(error: errors.NvmemError) -> None:
    name = error_name_for(error)
    assert name.startswith("org.nvmemd.Nvmem1.Error.")
    back = error_for_name(name, str(error))
    assert str(back) == str(error)
    assert exit_code_for(back) == exit_code_for(error)


def test_every_name_is_one_of_the_documented_five() -> None:
    suffixes = {name.rsplit(".", 1)[1] for _, name in ERROR_MAP}
    assert suffixes == {"InvalidArgument", "NotFound", "AccessDenied", "ProviderGone", "IOError"}
    assert error_name_for(errors.LayoutError("x")) == ERROR_FAILED


class _Iface:
    @_guarded
    async def nvmem(self) -> None:
        raise errors.ProviderGoneError("p: provider is gone")

    @_guarded
    async def bug(self) -> None:
        raise RuntimeError("secret /etc/shadow detail")


def test_guard_maps_nvmem_errors() -> None:
    with pytest.raises(DBusError) as info:
        asyncio.run(_Iface().nvmem())
    assert info.value.type == "org.nvmemd.Nvmem1.Error.ProviderGone"
    assert info.value.text == "p: provider is gone"


def test_guard_hides_internals(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(DBusError) as info:
        asyncio.run(_Iface().bug())
    assert info.value.type == ERROR_FAILED
    assert info.value.text == "internal error"
    assert "secret" in caplog.text and "File \"" in caplog.text  # frames logged locally only
