"""Names and shapes of the D-Bus API: one place for every constant.

Imports nothing from dbus-fast, so the CLI can map error names back to the
nvmemd exception classes before deciding whether to import the bus library.
"""

from __future__ import annotations

from ..errors import (
    AccessDeniedError,
    ConfigError,
    InteractiveAuthorizationRequiredError,
    InvalidArgumentError,
    NotFoundError,
    NvmemError,
    ProviderGoneError,
    ProviderIOError,
    SysrootError,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up, issue 12)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Final

BUS_NAME: Final = "org.nvmemd.Nvmem1"
ROOT_PATH: Final = "/org/nvmemd/Nvmem1"
PROVIDERS_PATH: Final = ROOT_PATH + "/providers"
MANAGER_IFACE: Final = "org.nvmemd.Nvmem1.Manager"
PROVIDER_IFACE: Final = "org.nvmemd.Nvmem1.Provider"
CELL_IFACE: Final = "org.nvmemd.Nvmem1.Cell"
#: The interfaces of this API, in the order ``Introspect`` and the installed XML list them.
API_IFACES: Final = (MANAGER_IFACE, PROVIDER_IFACE, CELL_IFACE)

# --- the bus's own names -------------------------------------------------------------

DBUS_NAME: Final = "org.freedesktop.DBus"
DBUS_PATH: Final = "/org/freedesktop/DBus"
OBJECT_MANAGER_IFACE: Final = "org.freedesktop.DBus.ObjectManager"
PROPERTIES_IFACE: Final = "org.freedesktop.DBus.Properties"
INTROSPECTABLE_IFACE: Final = "org.freedesktop.DBus.Introspectable"
PEER_IFACE: Final = "org.freedesktop.DBus.Peer"
#: Interfaces every object has; ObjectManager only the root object.
STANDARD_IFACES: Final = (PEER_IFACE, INTROSPECTABLE_IFACE, PROPERTIES_IFACE)

#: Standard errors, answered the way sd-bus answers them (``sd-bus/bus-objects.c``).
DBUS_ERROR: Final = "org.freedesktop.DBus.Error."
ERROR_UNKNOWN_OBJECT: Final = DBUS_ERROR + "UnknownObject"
ERROR_UNKNOWN_INTERFACE: Final = DBUS_ERROR + "UnknownInterface"
ERROR_UNKNOWN_METHOD: Final = DBUS_ERROR + "UnknownMethod"
ERROR_UNKNOWN_PROPERTY: Final = DBUS_ERROR + "UnknownProperty"
ERROR_PROPERTY_READ_ONLY: Final = DBUS_ERROR + "PropertyReadOnly"
ERROR_INVALID_ARGS: Final = DBUS_ERROR + "InvalidArgs"
ERROR_SERVICE_UNKNOWN: Final = DBUS_ERROR + "ServiceUnknown"
ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED: Final = (DBUS_ERROR
                                                   + "InteractiveAuthorizationRequired")

# --- polkit ----------------------------------------------------------------------------

POLKIT_NAME: Final = "org.freedesktop.PolicyKit1"
POLKIT_PATH: Final = "/org/freedesktop/PolicyKit1/Authority"
POLKIT_IFACE: Final = "org.freedesktop.PolicyKit1.Authority"
#: CheckAuthorizationFlags.AllowUserInteraction
POLKIT_ALLOW_INTERACTION: Final = 1

#: The polkit action that lets a caller read root-only providers.
POLKIT_ACTION_READ_PROTECTED: Final = "org.nvmemd.Nvmem1.read-protected"
#: The polkit action that lets a caller rescan everything (Manager.Reload).
POLKIT_ACTION_RELOAD: Final = "org.nvmemd.Nvmem1.reload"

#: Provider.Read() refuses longer reads (InvalidArgument).
MAX_READ: Final = 64 * 1024

ERROR_PREFIX: Final = "org.nvmemd.Nvmem1.Error."
ERROR_FAILED: Final = ERROR_PREFIX + "Failed"

#: nvmemd exception class → D-Bus error name; most specific class first.
#: The client maps a name back to the first class listed for it.
ERROR_MAP: Final[tuple[tuple[type[NvmemError], str], ...]] = (
    (InteractiveAuthorizationRequiredError, ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED),
    (InvalidArgumentError, ERROR_PREFIX + "InvalidArgument"),
    (ConfigError, ERROR_PREFIX + "InvalidArgument"),
    (NotFoundError, ERROR_PREFIX + "NotFound"),
    (AccessDeniedError, ERROR_PREFIX + "AccessDenied"),
    (ProviderGoneError, ERROR_PREFIX + "ProviderGone"),
    (ProviderIOError, ERROR_PREFIX + "IOError"),
    (SysrootError, ERROR_PREFIX + "IOError"),
)


def error_name_for(error: NvmemError) -> str:
    """The D-Bus error name of an nvmemd error (``…Error.Failed`` if unmapped)."""
    for cls, name in ERROR_MAP:
        if isinstance(error, cls):
            return name
    return ERROR_FAILED


def error_for_name(name: str, message: str) -> NvmemError:
    """The nvmemd error a client raises for a D-Bus error reply."""
    for cls, mapped in ERROR_MAP:
        if mapped == name:
            return cls(message)
    return NvmemError(message)


def error_text(body: Sequence[Any]) -> str:
    """The message of an error reply's body (its first argument when that is a string)."""
    return body[0] if body and isinstance(body[0], str) else ""
