"""``nvmemd``: publish NVMEM providers and cells on D-Bus and follow udev.

:meth:`Daemon.run` is a list of steps, in this order:

1. logging (journal when stderr is the journal), configuration;
2. connect to the bus;
3. start the udev monitor (sysroot ``/`` only), *before* enumerating, so
   that a provider added during the scan is not missed;
4. coldplug scan in a worker thread, export every object, request
   ``org.nvmemd.Nvmem1``, then ``READY=1``;
5. serve: udev events and SIGHUP go through one queue to one worker, which
   rescans in a thread and swaps whole :class:`~nvmemd.model.ProviderEntry`
   objects into a new :class:`~nvmemd.registry.Registry`, so a reader never
   sees half a provider;
6. SIGTERM/SIGINT: ``STOPPING=1``, release the name, exit 0 — within
   :data:`STOP_GRACE` seconds even when worker threads hang in a read (they
   are abandoned: their calls get no answer, the bus drops them with the
   connection); SIGHUP and SIGINT are ignored from then on.

Worker threads (``asyncio.to_thread``) come from one pool of at most
:data:`WORKER_THREADS` threads; systemd/nvmemd.service bounds tasks and memory.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Final

from dbus_fast import BusType, DBusError, NameFlag, RequestNameReply
from dbus_fast.aio import MessageBus

from . import __version__
from .cli.common import exit_code_for, exit_code_for_os_error
from .config import Config, load_config
from .consumers import ConsumerRef, consumer_index
from .dbus import flow
from .dbus.names import BUS_NAME
from .dbus.polkit import AccessPolicy
from .dbus.service import Service
from .devicetree import DeviceTree
from .errors import NvmemError, describe
from .model import BrokenProvider, ProviderEntry
from .notify import notify, setup_logging, watchdog_interval
from .providers import NVMEM_BUS
from .registration import scan_provider
from .registry import Registry, scan
from .sysroot import Sysroot

log = logging.getLogger("nvmemd")

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
#: The worker-thread pool (reads of slow providers, rescans): at most this many
#: threads, whatever the number of CPUs (systemd/nvmemd.service: TasksMax=).
WORKER_THREADS: Final = 8
#: After SIGTERM, how long in-flight work may take before nvmemd exits anyway.
STOP_GRACE: Final = 3.0
#: Queue token: rescan everything (SIGHUP, Reload()).
RELOAD: Final = ""
#: Queue item: (provider name or RELOAD, the provider was removed).
Job = tuple[str, bool]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nvmemd", description="Publish NVMEM cells on D-Bus.")
    p.add_argument("--sysroot", metavar="DIR",
                   help="read sysfs and the device tree below DIR (default: $NVMEMD_SYSROOT or /)")
    p.add_argument("--config", metavar="FILE",
                   help="configuration file (default: /etc/nvmemd/nvmemd.toml under the sysroot)")
    bus = p.add_mutually_exclusive_group()
    bus.add_argument("--system", dest="bus", action="store_const", const="system",
                     help="connect to the system bus (default)")
    bus.add_argument("--session", dest="bus", action="store_const", const="session",
                     help="connect to the session bus")
    bus.add_argument("--address", metavar="ADDR", help="connect to the bus at ADDR")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="warning",
                   help="least severe messages to log (default: warning)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


class Daemon:
    """All the daemon's state (hostnamed's ``Context``)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sysroot = Sysroot.from_arg(args.sysroot)
        self.config: Config = Config()
        self.registry: Registry = Registry(self.sysroot, self.config, DeviceTree(self.sysroot))
        self.access = AccessPolicy(())
        self.bus: MessageBus | None = None
        self.service: Service | None = None
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.stop = asyncio.Event()
        self.exit_code = 0
        self._reload_waiters: list[asyncio.Future[None]] = []

    # --- steps ---------------------------------------------------------------

    def load_config(self) -> None:
        self.config = load_config(self.sysroot, self.args.config)
        self.access = AccessPolicy(self.config.access_groups)

    async def connect(self) -> MessageBus:
        if self.args.address:
            bus = MessageBus(bus_address=self.args.address)
        elif self.args.bus == "session":
            bus = MessageBus(bus_type=BusType.SESSION)
        else:
            bus = MessageBus(bus_type=BusType.SYSTEM)
        await flow.connect(bus)  # backpressure and a safe writer (nvmemd.dbus.flow)
        return bus

    def want_udev(self) -> bool:
        """udev events name host devices: follow them only for the real root."""
        return str(self.sysroot.root) == "/"

    def start_udev(self) -> object | None:
        try:
            from .udev import UdevWatcher

            return UdevWatcher()
        except Exception as e:  # no netlink (container), no pyudev: coldplug only
            log.warning("not following udev events: %s", e)
            return None

    def status(self) -> str:
        providers = len(self.registry.entries)
        cells = sum(len(e.cells) for e in self.registry.entries.values())
        broken = len(self.registry.broken)
        text = f"Publishing {cells} cell(s) of {providers} provider(s)"
        if broken:
            text += f", {broken} provider(s) unusable"
        return text

    # --- rescans (worker thread → loop) ----------------------------------------

    def _rescan_one(self, name: str, removed: bool
                    ) -> tuple[str, ProviderEntry | BrokenProvider | None]:
        """Runs in a thread: the new entry of *name*, or None when it is gone."""
        if removed or not self.sysroot.exists(f"{NVMEM_BUS}/{name}"):
            return name, None
        tree = DeviceTree(self.sysroot)
        return name, scan_provider(self.sysroot, tree, name, self.config)

    def _prepare(self, registry: Registry) -> tuple[Registry, dict[str, list[ConsumerRef]]]:
        """Runs in a thread: *registry* with its DT consumer index, so that nothing
        walks the device tree on the loop (Cell.Consumers, GetManagedObjects)."""
        return registry, consumer_index(registry.tree)

    def _coldplug(self) -> tuple[Registry, dict[str, list[ConsumerRef]]]:
        """Runs in a thread: the first scan.  The device tree's root is listed first: a
        tree this process may not read stops the start with one line (OSError), not
        after a warning for every provider it describes."""
        self.sysroot.listdir(DeviceTree(self.sysroot).base)
        return self._prepare(scan(self.sysroot, self.config))

    def _with_one(self, name: str, removed: bool
                  ) -> tuple[Registry, dict[str, list[ConsumerRef]]]:
        """Runs in a thread: the registry with provider *name* rescanned."""
        _, result = self._rescan_one(name, removed)
        return self._prepare(self.registry.with_provider(name, result))

    def _swap(self, prepared: tuple[Registry, dict[str, list[ConsumerRef]]]) -> None:
        self.registry, consumers = prepared
        if self.service is not None:
            self.service.sync(consumers=consumers)
        notify("STATUS=" + self.status())

    async def _full_rescan(self) -> None:
        try:
            self.load_config()
        except NvmemError as e:
            log.error("configuration not reloaded, keeping the old one: %s", e)
        self._swap(await asyncio.to_thread(
            lambda: self._prepare(scan(self.sysroot, self.config))))
        log.info("rescanned: %s", self.status())

    async def worker(self) -> None:
        while True:
            name, removed = await self.queue.get()
            if name == RELOAD:
                await self._reload_job()
                continue
            try:
                self._swap(await asyncio.to_thread(self._with_one, name, removed))
            except Exception:
                log.exception("rescan of %s failed", name)

    async def _reload_job(self) -> None:
        """A full rescan; whatever happens, systemd gets READY=1 after RELOADING=1 and
        every Reload() caller an answer (a failed rescan keeps the old registry)."""
        notify("RELOADING=1")
        error: Exception | None = None
        try:
            await self._full_rescan()
        except (NvmemError, OSError) as e:  # the providers cannot be listed now: one line
            log.error("rescan of all providers failed, keeping the last state: %s",
                      describe(e))
            error = e
        except Exception as e:
            log.exception("rescan of all providers failed")
            error = e
        finally:
            notify("READY=1\nSTATUS=" + self.status())
            waiters, self._reload_waiters = self._reload_waiters, []
            for w in waiters:
                if w.done():
                    continue
                if error is None:
                    w.set_result(None)
                else:  # the caller sees a plain failure, not our exception's text
                    w.set_exception(NvmemError("the rescan failed; see the daemon's log"))

    async def reload(self) -> None:
        """Reload the configuration and rescan; returns when done (Manager.Reload)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reload_waiters.append(fut)
        self.queue.put_nowait((RELOAD, False))
        await fut

    def on_udev(self, event: object) -> None:
        from .udev import ProviderEvent

        assert isinstance(event, ProviderEvent)
        # The kernel sends "remove" before the sysfs directory is gone
        # (device_del()); drop the provider instead of looking at sysfs.
        removed = event.action == "remove" and event.subsystem == "nvmem"
        log.debug("udev %s %s: %s %s", event.action, event.subsystem,
                  "dropping" if removed else "rescanning", event.provider)
        self.queue.put_nowait((event.provider, removed))

    async def watchdog(self, interval: float) -> None:
        while True:
            notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    # --- run -------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        try:
            self.load_config()
        except NvmemError as e:
            return start_up_error(e)
        try:
            self.bus = await self.connect()
        except Exception as e:
            log.error("cannot connect to the bus: %s", e)
            return 1

        watcher = self.start_udev() if self.want_udev() else None
        try:
            self.registry, consumers = await asyncio.to_thread(self._coldplug)
        except (NvmemError, OSError) as e:  # the providers cannot be listed, the DT walked
            return start_up_error(e)
        self.service = Service(self.bus, self, consumers)
        self.service.start()
        try:
            reply = await self.bus.request_name(BUS_NAME, NameFlag.DO_NOT_QUEUE)
        except DBusError as e:
            log.error("cannot own %s: %s", BUS_NAME, e.text)
            return 1
        if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
            log.error("cannot own %s: another nvmemd is running", BUS_NAME)
            return 1

        tasks = [asyncio.create_task(self.worker())]
        if watcher is not None:
            from .udev import UdevWatcher

            assert isinstance(watcher, UdevWatcher)
            watcher.attach(loop, self.on_udev)
        interval = watchdog_interval()
        if interval:
            tasks.append(asyncio.create_task(self.watchdog(interval)))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.queue.put_nowait, (RELOAD, False))

        notify("READY=1\nSTATUS=" + self.status())
        log.info("ready: %s", self.status())
        disconnected = asyncio.create_task(self.bus.wait_for_disconnect())  # type: ignore[no-untyped-call]
        stopped = asyncio.create_task(self.stop.wait())
        await asyncio.wait({disconnected, stopped}, return_when=asyncio.FIRST_COMPLETED)

        notify("STOPPING=1")
        # A second signal during shutdown must not kill us by its default action.
        for sig in (signal.SIGHUP, signal.SIGINT):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
        if disconnected.done():
            log.error("lost the bus connection")
            self.exit_code = 1
        else:
            try:
                await asyncio.wait_for(self.bus.release_name(BUS_NAME), 5)
            except Exception as e:
                log.debug("release_name: %s", e)
            self.bus.disconnect()
        if watcher is not None:
            watcher.close()
        for task in [*tasks, disconnected, stopped]:
            task.cancel()
        return self.exit_code


def start_up_error(error: NvmemError | OSError) -> int:
    """Log why nvmemd cannot start, in one line; the exit status nvmemd-query would give."""
    if isinstance(error, NvmemError):
        log.error("%s", error)
        return exit_code_for(error)
    log.error("%s", describe(error))
    return exit_code_for_os_error(error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        warning = Sysroot.from_arg(args.sysroot).validate()
    except NvmemError as e:  # no sysroot (5), a directory it may not search (4), a loop (5)
        return start_up_error(e)
    if warning:
        log.warning("%s", warning)
    executor = concurrent.futures.ThreadPoolExecutor(WORKER_THREADS, "nvmemd-worker")
    loop = asyncio.new_event_loop()
    loop.set_default_executor(executor)
    try:
        code = loop.run_until_complete(_amain(args))
    except KeyboardInterrupt:
        code = 0
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        # Handlers waiting on a hung worker are cancelled; their threads are not waited for.
        executor.shutdown(wait=False, cancel_futures=True)
        with _suppress():
            loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    return _exit_within_grace(code)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _exit_within_grace(code: int) -> int:
    """Return *code* once the worker threads are done, or exit at once after
    :data:`STOP_GRACE` seconds (a read hanging in the kernel cannot be cancelled)."""
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline:
        if not any(t.name.startswith("nvmemd-worker") for t in threading.enumerate()):
            return code
        time.sleep(0.05)
    log.warning("exiting with worker threads still busy (a read did not return in %.0f s)",
                STOP_GRACE)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _amain(args: argparse.Namespace) -> int:
    return await Daemon(args).run()


if __name__ == "__main__":
    sys.exit(main())
