"""udev events of nvmem providers, for asyncio.

The only module that imports pyudev.  A netlink monitor filtered to the
``nvmem`` and ``nvmem-layout`` subsystems is read from the event loop through
``loop.add_reader(monitor.fileno())``.  Each event is reduced to the name of
the provider it concerns: an ``nvmem`` device is the provider itself; an
``nvmem-layout`` device is a child of its provider (``bind`` is the first
event after which layout cells exist: drivers/nvmem/layouts.c:
nvmem_layout_bus_probe() runs the layout driver's add_cells()).

Start the monitor *before* enumerating providers so that nothing added in
between is missed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SUBSYSTEMS = ("nvmem", "nvmem-layout")


@dataclass(frozen=True)
class ProviderEvent:
    action: str  # add, remove, change, bind, unbind, move
    subsystem: str
    provider: str
    sys_path: str


def provider_for(subsystem: str, sys_path: str, parent_subsystem: str | None = None,
                 parent_sys_path: str | None = None) -> str | None:
    """The provider name (sysfs basename) an event on *sys_path* concerns."""
    if subsystem == "nvmem":
        return os.path.basename(sys_path.rstrip("/")) or None
    if subsystem == "nvmem-layout":
        if parent_sys_path and parent_subsystem in (None, "nvmem"):
            return os.path.basename(parent_sys_path.rstrip("/")) or None
        return os.path.basename(os.path.dirname(sys_path.rstrip("/"))) or None
    return None


def _event_of(device: Any) -> ProviderEvent | None:
    subsystem = device.subsystem
    action = device.action or "change"
    parent = None
    if subsystem == "nvmem-layout":
        try:
            parent = device.parent
        except Exception:  # pyudev raises for a vanished parent
            parent = None
    name = provider_for(
        subsystem,
        device.sys_path,
        parent.subsystem if parent is not None else None,
        parent.sys_path if parent is not None else None,
    )
    if name is None:
        return None
    return ProviderEvent(action, subsystem, name, device.sys_path)


class UdevWatcher:
    """A started udev monitor, attached to an event loop."""

    def __init__(self) -> None:
        import pyudev

        self._context = pyudev.Context()
        self._monitor = pyudev.Monitor.from_netlink(self._context, source="udev")
        for subsystem in SUBSYSTEMS:
            self._monitor.filter_by(subsystem)
        self._monitor.start()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop,
               callback: Callable[[ProviderEvent], None]) -> None:
        """Call *callback* on the loop for every provider event."""
        self._loop = loop
        loop.add_reader(self._monitor.fileno(), self._on_readable, callback)

    def _on_readable(self, callback: Callable[[ProviderEvent], None]) -> None:
        while True:
            try:
                device = self._monitor.poll(timeout=0)
            except Exception as e:  # a malformed message must not stop the loop
                log.warning("udev: unreadable event: %s", e)
                return
            if device is None:
                return
            event = _event_of(device)
            if event is None:
                continue
            log.debug("udev: %s %s %s", event.action, event.subsystem, event.sys_path)
            callback(event)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._monitor.fileno())
            self._loop = None
