"""udev hot-plug through umockdev: the daemon follows add, change, layout bind and remove.

The test plays the kernel through ``tests/clients/umockdev_driver.py`` (Debian
python3-gi under ``umockdev-wrapper``); the daemon runs under the wrapper
with ``UMOCKDEV_DIR`` and sysroot ``/``, so /sys is the testbed.  A
``GDBusObjectManagerClient`` (tests/clients/gdbus_object_manager.py) must
see the hot-plugged objects come and go.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import StartDaemon
from .dbus_fixtures import CLIENTS, ROOT, SYS_PYTHON, TIMEOUT, Daemon, managed_objects

pytestmark = pytest.mark.integration

PROVIDER_DIR = "/devices/platform/soc/i2c-0/0-0050/0-00500"
PROVIDER_PATH = ROOT + "/providers/_30_2d00500"
NODE = "/soc/eeprom@50"
IMAGE = bytes.fromhex("4e5644303031") + bytes(250)


def _s(text: str) -> str:
    return (text.encode() + b"\0").hex()


def _u32(*values: int) -> str:
    return b"".join(v.to_bytes(4, "big") for v in values).hex()


def _missing() -> str | None:
    if shutil.which("umockdev-wrapper") is None:
        return "umockdev-wrapper not installed"
    probe = ("import gi; gi.require_version('UMockdev', '1.0'); "
             "from gi.repository import UMockdev, Gio")
    if subprocess.run([SYS_PYTHON, "-c", probe], capture_output=True).returncode:
        return "Debian python3-gi with gir1.2-umockdev-1.0 is not installed"
    return None


class Lines:
    """A child process's stdout, line by line, with timeouts."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next(self, timeout: float = TIMEOUT) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no output from helper") from None

    def wait_for(self, wanted: str, timeout: float = TIMEOUT) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.next(max(0.01, deadline - time.monotonic()))
            seen.append(line)
            if line == wanted:
                return seen


class Kernel:
    """The umockdev driver process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["umockdev-wrapper", SYS_PYTHON, str(CLIENTS / "umockdev_driver.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.out = Lines(self.proc)
        self.root = self.out.next()
        assert os.path.isdir(self.root), self.root

    def do(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        reply = self.out.next()
        assert reply == "ok", (cmd, reply)

    def add_provider(self, path: str = PROVIDER_DIR, node: str = NODE,
                     image: bytes = IMAGE) -> None:
        link = os.path.relpath("/sys/firmware/devicetree/base" + node, "/sys" + path)
        self.do(op="add", text=f"P: {path}\nE: SUBSYSTEM=nvmem\nA: type=EEPROM\n"
                               f"H: nvmem={image.hex()}\nL: of_node={link}\n")

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fixed_layout(kernel: Kernel, node: str, cells: dict[str, tuple[int, int]]) -> None:
    kernel.do(op="dt", node=node, props={"compatible": _s("atmel,24c02"), "name": _s("eeprom")})
    layout = node + "/nvmem-layout"
    kernel.do(op="dt", node=layout, props={"compatible": _s("fixed-layout"),
                                           "#address-cells": _u32(1), "#size-cells": _u32(1)})
    for name, (offset, size) in cells.items():
        kernel.do(op="dt", node=f"{layout}/{name}@{offset:x}", props={"reg": _u32(offset, size)})


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    k = Kernel()
    yield k
    k.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "nvmemd.toml"
    path.write_text("")
    return path


def start_udev_daemon(start_daemon: StartDaemon, kernel: Kernel, config: Path) -> Daemon:
    return start_daemon(["--sysroot", "/", "--config", str(config)],
                        prefix=["umockdev-wrapper"], env={"UMOCKDEV_DIR": kernel.root})


def wait_objects(daemon: Daemon, present: set[str], absent: set[str] = frozenset()
                 ) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        objects = managed_objects(daemon)
        if present <= objects.keys() and not absent & objects.keys():
            return objects
        if time.monotonic() > deadline:
            raise AssertionError(f"objects now: {sorted(objects)}\nlog:\n{daemon.log()}")
        time.sleep(0.1)


def cell(name: str, offset: int) -> str:
    from nvmemd.dbus.paths import cell_path

    return cell_path("0-00500", f"{name}@{offset:x},0")


def test_coldplug_add_change_bind_remove(start_daemon: StartDaemon, kernel: Kernel,
                                         config: Path) -> None:
    # coldplug: one provider present before the daemon starts
    fixed_layout(kernel, "/soc/eeprom@51", {"serial": (0, 6)})
    kernel.add_provider("/devices/platform/soc/i2c-0/0-0051/0-00510", "/soc/eeprom@51")
    daemon = start_udev_daemon(start_daemon, kernel, config)
    cold = ROOT + "/providers/_30_2d00510/cells/serial_400_2c0"
    wait_objects(daemon, {cold})
    (value,) = daemon.call(cold, "org.nvmemd.Nvmem1.Cell", "Read")
    assert bytes(value) == IMAGE[:6]

    gio = subprocess.Popen([SYS_PYTHON, str(CLIENTS / "gdbus_object_manager.py"),
                            daemon.bus.address], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    om = Lines(gio)
    try:
        initial = om.wait_for("ready")
        assert f"initial {cold}" in initial

        # add: the provider's node has no layout yet, so no cells
        kernel.do(op="dt", node=NODE, props={"compatible": _s("atmel,24c02")})
        kernel.add_provider()
        wait_objects(daemon, {PROVIDER_PATH})
        assert om.wait_for(f"added {PROVIDER_PATH}")

        # change: a cell appears in the tree (overlay), then a change uevent
        fixed_layout(kernel, NODE, {"serial": (0, 6)})
        kernel.do(op="uevent", path="/sys" + PROVIDER_DIR, action="change")
        wait_objects(daemon, {cell("serial", 0)})
        om.wait_for(f"added {cell('serial', 0)}")

        # layout bind: the layout device appears (add), its cells only by bind
        layout_dev = PROVIDER_DIR + "/0-00500-layout"
        kernel.do(op="add", text=f"P: {layout_dev}\nE: SUBSYSTEM=nvmem-layout\n")
        kernel.do(op="dt", node=NODE + "/nvmem-layout/mac@10",
                  props={"reg": _u32(0x10, 6)})
        kernel.do(op="uevent", path="/sys" + layout_dev, action="bind")
        wait_objects(daemon, {cell("mac", 0x10)})
        om.wait_for(f"added {cell('mac', 0x10)}")
        (value,) = daemon.call(cell("mac", 0x10), "org.nvmemd.Nvmem1.Cell", "Read")
        assert bytes(value) == bytes(6)

        # remove: every object of the provider goes, the other provider stays
        kernel.do(op="remove", path="/sys" + PROVIDER_DIR)
        wait_objects(daemon, {cold}, {PROVIDER_PATH, cell("serial", 0), cell("mac", 0x10)})
        removed = om.wait_for(f"removed {PROVIDER_PATH}")
        assert f"removed {cell('mac', 0x10)}" in removed
    finally:
        assert gio.stdin is not None
        gio.stdin.close()
        gio.wait(timeout=TIMEOUT)
    assert daemon.stop() == 0


def test_provider_removed_while_reads_are_in_flight(start_daemon: StartDaemon, kernel: Kernel,
                                                    config: Path) -> None:
    fixed_layout(kernel, NODE, {"serial": (0, 6)})
    kernel.add_provider()
    daemon = start_udev_daemon(start_daemon, kernel, config)
    target = cell("serial", 0)
    wait_objects(daemon, {target})

    # Files vanish under the daemon first (no uevent yet): the read is in flight
    # against a provider that is gone.
    kernel.do(op="rm", path=f"/sys{PROVIDER_DIR}/nvmem")
    name, message = daemon.call_error(target, "org.nvmemd.Nvmem1.Cell", "Read")
    assert name == "org.nvmemd.Nvmem1.Error.ProviderGone", message

    async def hammer() -> list[str]:
        from dbus_fast import Message, MessageType
        from dbus_fast.aio import MessageBus

        bus = await MessageBus(bus_address=daemon.bus.address).connect()
        try:
            async def one() -> str:
                reply = await bus.call(Message(
                    destination="org.nvmemd.Nvmem1", path=target,
                    interface="org.nvmemd.Nvmem1.Cell", member="Read"))
                assert reply is not None
                if reply.message_type == MessageType.ERROR:
                    return reply.error_name or "?"
                return "value"

            calls = [asyncio.ensure_future(one()) for _ in range(50)]
            await asyncio.sleep(0)
            await asyncio.to_thread(kernel.do, op="remove", path="/sys" + PROVIDER_DIR)
            calls += [asyncio.ensure_future(one()) for _ in range(50)]
            return await asyncio.wait_for(asyncio.gather(*calls), TIMEOUT)
        finally:
            bus.disconnect()

    results = asyncio.run(hammer())
    # 100 calls from one connection: beyond the per-caller bound (nvmemd.dbus.flow) the
    # excess is refused at once with LimitsExceeded, by design.
    allowed = {"org.nvmemd.Nvmem1.Error.ProviderGone", "org.freedesktop.DBus.Error.UnknownObject",
               "org.freedesktop.DBus.Error.UnknownMethod",
               "org.freedesktop.DBus.Error.LimitsExceeded"}
    assert set(results) <= allowed, set(results)
    wait_objects(daemon, set(), {PROVIDER_PATH, target})
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0
