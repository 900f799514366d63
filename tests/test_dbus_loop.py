"""No device-tree walk and no slow read on the daemon's event loop.

The Cell ``Consumers`` property is served from the consumer index the daemon
builds in its rescan thread (daemon._prepare); GetManagedObjects must not walk
the tree.  Reads of anything but small SoC-internal OTP reads go to a worker
thread (service.reads_inline): EEPROMs and MTD partitions can stall.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from nvmemd.config import Config
from nvmemd.consumers import consumer_index
from nvmemd.dbus.service import Service, reads_inline
from nvmemd.devicetree import DeviceTree
from nvmemd.registry import Registry, scan
from nvmemd.sysroot import Sysroot

from .dbus_fixtures import PrivateBus, StaticState

pytestmark = pytest.mark.integration


async def _serve_and_ask(address: str, registry: Registry, walks: list[str]) -> Any:
    server = await MessageBus(bus_address=address).connect()
    client = await MessageBus(bus_address=address).connect()
    try:
        # the index as the daemon's rescan thread builds it (there from its own tree
        # object, so nothing is cached on registry.tree)
        index = consumer_index(DeviceTree(registry.sysroot))
        service = Service(server, StaticState(registry), index)
        service.start()
        await server.request_name("org.nvmemd.Nvmem1")
        walks.clear()  # only what serving does counts
        reply = await client.call(Message(
            destination="org.nvmemd.Nvmem1", path="/org/nvmemd/Nvmem1",
            interface="org.freedesktop.DBus.ObjectManager", member="GetManagedObjects"))
        return reply
    finally:
        client.disconnect()
        server.disconnect()


def test_managed_objects_do_no_dt_walk(demo_board_sysroot: Path, private_bus: PrivateBus,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    registry = scan(Sysroot(str(demo_board_sysroot)), Config())
    walks: list[str] = []
    real_walk = DeviceTree.walk

    def counting_walk(self: DeviceTree, *args: Any) -> Any:
        walks.append(threading.current_thread().name)
        return real_walk(self, *args)

    monkeypatch.setattr(DeviceTree, "walk", counting_walk)
    reply = asyncio.run(_serve_and_ask(private_bus.address, registry, walks))
    assert reply.message_type == MessageType.METHOD_RETURN, reply.body
    consumers = [props["org.nvmemd.Nvmem1.Cell"]["Consumers"].value
                 for props in reply.body[0].values() if "org.nvmemd.Nvmem1.Cell" in props]
    refs = [tuple(c) for cs in consumers for c in cs]
    assert ("/soc@0/ethernet@30be0000", "mac-address", 0) in refs
    assert walks == []


def test_only_small_otp_reads_run_inline(demo_board_sysroot: Path) -> None:
    registry = scan(Sysroot(str(demo_board_sysroot)), Config())
    for entry in registry:
        small = reads_inline(entry, 6)
        assert small == (entry.provider.type == "OTP" and not entry.provider.is_mtd), entry.name
        assert not reads_inline(entry, 4096)
    assert not reads_inline(registry.provider("mtd1"), 1)
    assert not reads_inline(registry.provider("u-boot-env0"), 1)
