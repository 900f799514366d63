"""The error table and the method guard, without a bus."""

from __future__ import annotations

import logging

import pytest
from dbus_fast import DBusError, Message

from nvmemd import errors
from nvmemd.cli.main import exit_code_for
from nvmemd.dbus.fallback import error_reply
from nvmemd.dbus.names import ERROR_FAILED, ERROR_MAP, error_for_name, error_name_for


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
    assert suffixes == {"InvalidArgument", "NotFound", "AccessDenied", "ProviderGone", "IOError",
                        "InteractiveAuthorizationRequired"}
    assert error_name_for(errors.LayoutError("x")) == ERROR_FAILED


def _reply(exc: BaseException) -> Message:
    call = Message(destination="org.nvmemd.Nvmem1", path="/org/nvmemd/Nvmem1",
                   interface="org.nvmemd.Nvmem1.Manager", member="X", serial=7,
                   sender=":1.1")
    return error_reply(call, exc)


def test_error_reply_maps_nvmem_errors() -> None:
    reply = _reply(errors.ProviderGoneError("p: provider is gone"))
    assert reply.error_name == "org.nvmemd.Nvmem1.Error.ProviderGone"
    assert reply.body == ["p: provider is gone"]
    reply = _reply(errors.InteractiveAuthorizationRequiredError("x"))
    assert reply.error_name == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
    reply = _reply(DBusError("org.freedesktop.DBus.Error.InvalidArgs", "bad"))
    assert (reply.error_name, reply.body) == ("org.freedesktop.DBus.Error.InvalidArgs", ["bad"])


def test_error_reply_hides_internals(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        reply = _reply(RuntimeError("secret /etc/shadow detail"))
    assert reply.error_name == ERROR_FAILED
    assert reply.body == ["internal error"]
    assert "secret" in caplog.text  # logged locally only


@pytest.mark.parametrize(("exc", "name", "text"), [
    (PermissionError(13, "Permission denied", "/host/sysroot/sys/x"),
     "org.nvmemd.Nvmem1.Error.AccessDenied", "permission denied"),
    (OSError(5, "Input/output error", "/host/sysroot/sys/y"),
     "org.nvmemd.Nvmem1.Error.IOError", "input/output error"),
])
def test_an_unconverted_os_error_keeps_its_kind_not_its_path(
        exc: OSError, name: str, text: str, caplog: pytest.LogCaptureFixture) -> None:
    """An OS error no handler turned into an NvmemError: the caller learns what kind of
    error it was (not "internal error"), never the file name (a host path)."""
    with caplog.at_level(logging.WARNING):
        reply = _reply(exc)
    assert (reply.error_name, reply.body) == (name, [text])
    assert "/host/sysroot" in caplog.text  # logged locally only
