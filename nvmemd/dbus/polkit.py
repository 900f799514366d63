"""Who may read the bytes of a root-only provider.

A caller may, in this order: if its uid is 0; if one of its groups (primary
or supplementary) is named in ``[access] groups``; if polkit authorizes it for
``org.nvmemd.Nvmem1.read-protected``.  Credentials come from the bus
(``GetConnectionCredentials``, falling back to ``GetConnectionUnixUser`` /
``GetConnectionUnixProcessID`` and ``/proc/<pid>/status``), never from the
caller.  When polkit is not on the bus the answer is no.
"""

from __future__ import annotations

import grp
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from ..errors import InteractiveAuthorizationRequiredError
from ..limits import RateLimitedLog, quote
from .names import (
    DBUS_NAME,
    DBUS_PATH,
    POLKIT_ACTION_READ_PROTECTED,
    POLKIT_ACTION_RELOAD,
    POLKIT_ALLOW_INTERACTION,
    POLKIT_IFACE,
    POLKIT_NAME,
    POLKIT_PATH,
    error_text,
)

log = logging.getLogger(__name__)
#: Callers that vanish before they are identified: a flood of them is one line per 10 s.
_unidentified = RateLimitedLog(log)


@dataclass(frozen=True)
class Credentials:
    uid: int
    pid: int | None
    gids: frozenset[int]


class BusCallError(Exception):
    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}")
        self.name = name


async def _call(bus: MessageBus, destination: str, path: str, interface: str, member: str,
                signature: str = "", body: list[Any] | None = None) -> list[Any]:
    reply = await bus.call(Message(destination=destination, path=path, interface=interface,
                                   member=member, signature=signature, body=body or []))
    if reply is None:
        raise BusCallError("NoReply", member)
    if reply.message_type == MessageType.ERROR:
        raise BusCallError(reply.error_name or "Error", error_text(reply.body))
    return list(reply.body)


def groups_of_pid(pid: int) -> frozenset[int]:
    """Supplementary and primary gids from ``/proc/<pid>/status``."""
    gids: set[int] = set()
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == "Groups":
                    gids.update(int(g) for g in value.split())
                elif key == "Gid":
                    fields = value.split()
                    if fields:
                        gids.add(int(fields[0]))
    except (OSError, ValueError):
        return frozenset()
    return frozenset(gids)


async def caller_credentials(bus: MessageBus, sender: str) -> Credentials:
    try:
        (creds,) = await _call(bus, DBUS_NAME, DBUS_PATH, DBUS_NAME,
                               "GetConnectionCredentials", "s", [sender])
    except BusCallError:
        creds = {}
    uid_v = creds.get("UnixUserID")
    pid_v = creds.get("ProcessID")
    gids_v = creds.get("UnixGroupIDs")
    if uid_v is not None:
        uid = int(uid_v.value)
    else:
        (uid,) = await _call(bus, DBUS_NAME, DBUS_PATH, DBUS_NAME,
                             "GetConnectionUnixUser", "s", [sender])
    if pid_v is not None:
        pid: int | None = int(pid_v.value)
    else:
        try:
            (pid,) = await _call(bus, DBUS_NAME, DBUS_PATH, DBUS_NAME,
                                 "GetConnectionUnixProcessID", "s", [sender])
        except BusCallError:
            pid = None
    if gids_v is not None:
        gids = frozenset(int(g) for g in gids_v.value)
    elif pid is not None:
        gids = groups_of_pid(pid)
    else:
        gids = frozenset()
    return Credentials(uid, pid, gids)


def resolve_groups(names: Iterable[str]) -> frozenset[int]:
    """gids of the configured group names; unknown names are logged and ignored."""
    gids: set[int] = set()
    for name in names:
        try:
            gids.add(grp.getgrnam(name).gr_gid)
        except KeyError:
            if name.isdigit():
                gids.add(int(name))
            else:
                log.warning("[access] groups: no group named '%s'", name)
    return frozenset(gids)


async def polkit_allows(bus: MessageBus, sender: str, action: str, interactive: bool) -> bool:
    """polkit's ``CheckAuthorization``.  When polkit would ask the user but the caller
    did not set ALLOW_INTERACTIVE_AUTHORIZATION, raise InteractiveAuthorizationRequiredError
    (``org.freedesktop.DBus.Error.InteractiveAuthorizationRequired``, as sd-bus services
    answer), so that the client can retry with interaction."""
    subject = ["system-bus-name", {"name": Variant("s", sender)}]
    flags = POLKIT_ALLOW_INTERACTION if interactive else 0
    try:
        (result,) = await _call(bus, POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE,
                                "CheckAuthorization", "(sa{sv})sa{ss}us",
                                [subject, action, {}, flags, ""])
    except BusCallError as e:
        log.info("polkit unavailable or refused (%s): denying %s", e.name, sender)
        return False
    authorized, challenge = bool(result[0]), bool(result[1])
    if not authorized and challenge and not interactive:
        raise InteractiveAuthorizationRequiredError(
            f"{action}: polkit needs to authenticate the caller; call again with interactive "
            "authorization allowed")
    return authorized


#: Credentials remembered per unique connection name.  A bus never reuses a
#: unique name and a connection's uid and groups are fixed when it connects,
#: so an entry can only go stale by being evicted.  Polkit answers are not
#: cached here: polkit keeps its own (auth_admin_keep).
CREDENTIALS_CACHE_SIZE = 256


class AccessPolicy:
    """The decision for one configuration (groups resolved once)."""

    def __init__(self, groups: Iterable[str]) -> None:
        self.group_names = tuple(groups)
        self.gids = resolve_groups(self.group_names)
        self._credentials: OrderedDict[str, Credentials] = OrderedDict()

    async def credentials(self, bus: MessageBus, sender: str) -> Credentials:
        creds = self._credentials.get(sender)
        if creds is None:
            creds = await caller_credentials(bus, sender)
            self._credentials[sender] = creds
            if len(self._credentials) > CREDENTIALS_CACHE_SIZE:
                self._credentials.popitem(last=False)
        return creds

    async def _identify(self, bus: MessageBus, sender: str | None) -> Credentials | None:
        """The caller's credentials (None: unidentifiable, which is a denial)."""
        if sender is None:
            return None
        try:
            return await self.credentials(bus, sender)
        except BusCallError as e:
            _unidentified.warning("cannot identify caller %s: %s", sender, quote(str(e), 120))
            return None

    async def may_read_protected(self, bus: MessageBus, sender: str | None,
                                 interactive: bool = False) -> bool:
        """Root, a member of the reader groups, or polkit's ``read-protected`` action."""
        creds = await self._identify(bus, sender)
        if creds is None or sender is None:
            return False
        if creds.uid == 0 or self.gids & creds.gids:
            return True
        return await polkit_allows(bus, sender, POLKIT_ACTION_READ_PROTECTED, interactive)

    async def may_reload(self, bus: MessageBus, sender: str | None,
                         interactive: bool = False) -> bool:
        """Reload is an administrator's action: root, or polkit's ``reload`` action
        (auth_admin by default).  The reader groups do not grant it."""
        creds = await self._identify(bus, sender)
        if creds is None or sender is None:
            return False
        if creds.uid == 0:
            return True
        return await polkit_allows(bus, sender, POLKIT_ACTION_RELOAD, interactive)
