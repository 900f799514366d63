#!/usr/bin/env python3
"""D-Bus throughput: round trips per second against the daemon and the bus itself.

Each client is its own process with one dbus-fast connection doing sequential
round trips (send, await the reply, repeat) for --duration seconds; 1 client,
then 8 concurrent clients (rates summed).  Calls:

- ``org.freedesktop.DBus.GetId`` to the bus: the floor, what the bus and the
  client library manage with no service behind them (baseline, same run);
- ``org.nvmemd.Nvmem1.Cell.Read()`` on a 8-byte cell;
- ``org.freedesktop.DBus.Properties.GetAll`` on the same cell object;
- ``org.freedesktop.DBus.Peer.Ping`` on the daemon (dbus-fast answers it in
  the library: the daemon's own floor).

Target: Cell.Read ≥ 40 % of the GetId floor.  Daemon CPU time over each run
is reported too (the machine has 2 cores: 8 clients + bus + daemon share them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PYTHON,
    generate_sysroot,
    median,
    print_machine,
    private_bus,
    report_table,
    start_daemon,
)

from nvmemd.dbus.paths import cell_path

TARGET = 0.40
CELL = cell_path("rmem3", "cell5@50,0")

CLIENT = r"""
import asyncio, sys, time
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

address, kind, duration, start_at, cell = sys.argv[1:6]
duration = float(duration); start_at = float(start_at)
CALLS = {
    "GetId": dict(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                  interface="org.freedesktop.DBus", member="GetId"),
    "Cell.Read": dict(destination="org.nvmemd.Nvmem1", path=cell,
                      interface="org.nvmemd.Nvmem1.Cell", member="Read"),
    "GetAll": dict(destination="org.nvmemd.Nvmem1", path=cell,
                   interface="org.freedesktop.DBus.Properties", member="GetAll",
                   signature="s", body=["org.nvmemd.Nvmem1.Cell"]),
    "Ping": dict(destination="org.nvmemd.Nvmem1", path="/org/nvmemd/Nvmem1",
                 interface="org.freedesktop.DBus.Peer", member="Ping"),
}

async def main():
    bus = await MessageBus(bus_address=address).connect()
    kw = CALLS[kind]
    r = await bus.call(Message(**kw))
    assert r.message_type == MessageType.METHOD_RETURN, (r.error_name, r.body)
    while time.time() < start_at:
        await asyncio.sleep(0.005)
    n = errors = 0
    t0 = time.perf_counter()
    end = t0 + duration
    while time.perf_counter() < end:
        r = await bus.call(Message(**kw))
        if r.message_type != MessageType.METHOD_RETURN:
            errors += 1
        n += 1
    elapsed = time.perf_counter() - t0
    print(n, errors, elapsed, flush=True)
    bus.disconnect()

asyncio.run(main())
"""


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_clients(address: str, kind: str, clients: int, duration: float,
                daemon_pid: int | None) -> tuple[float, int, float | None]:
    """(calls per second summed over clients, errors, daemon CPU share)."""
    start_at = time.time() + 1.0 + 0.15 * clients
    procs = [subprocess.Popen([PYTHON, "-c", CLIENT, address, kind, str(duration),
                               str(start_at), CELL], stdout=subprocess.PIPE)
             for _ in range(clients)]
    cpu0 = None
    if daemon_pid is not None:
        while time.time() < start_at:
            time.sleep(0.01)
        cpu0 = cpu_s(daemon_pid)
    rate = 0.0
    errors = 0
    for p in procs:
        out, _ = p.communicate(timeout=duration + 60)
        n, err, elapsed = out.split()
        rate += int(n) / float(elapsed)
        errors += int(err)
    share = None
    if daemon_pid is not None and cpu0 is not None:
        share = (cpu_s(daemon_pid) - cpu0) / duration
    return rate, errors, share


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", default="1,8")
    args = ap.parse_args()
    print_machine("D-Bus throughput (dbus-fast clients, sequential round trips)")
    work = Path(tempfile.mkdtemp(prefix="nvmemd-bench-dbus."))
    verdicts = []
    try:
        root = generate_sysroot(work / "s", 10)
        with private_bus() as bus:
            d = start_daemon(bus, root)
            try:
                rows = [["clients", "call", "calls/s (median)", "runs", "errors",
                         "daemon CPU", "% of GetId floor"]]
                for n in [int(c) for c in args.clients.split(",")]:
                    figures: dict[str, tuple[float, int, float | None, list[float]]] = {}
                    samples: dict[str, list[tuple[float, int, float | None]]] = {
                        k: [] for k in ("GetId", "Cell.Read", "GetAll", "Ping")}
                    for _ in range(args.repeat):  # round-robin: load changes hit all alike
                        for kind in samples:
                            samples[kind].append(run_clients(
                                bus.address, kind, n, args.duration,
                                None if kind == "GetId" else d.pid))
                    for kind, runs in samples.items():
                        rates = [r for r, _, _ in runs]
                        shares = [s for _, _, s in runs if s is not None]
                        figures[kind] = (median(rates), sum(e for _, e, _ in runs),
                                         median(shares) if shares else None, rates)
                    floor = figures["GetId"][0]
                    for kind, (rate, errs, share, rates) in figures.items():
                        rows.append([str(n), kind, f"{rate:,.0f}",
                                     " ".join(f"{r:,.0f}" for r in rates), str(errs),
                                     "-" if share is None else f"{share * 100:.0f} %",
                                     f"{rate / floor * 100:.0f} %"])
                    ratio = figures["Cell.Read"][0] / floor
                    verdicts.append(f"{n} client(s): Cell.Read {figures['Cell.Read'][0]:,.0f}/s "
                                    f"= {ratio * 100:.0f} % of the floor "
                                    f"({floor:,.0f}/s): "
                                    f"{'met' if ratio >= TARGET else 'MISSED'} "
                                    f"(target ≥ {TARGET * 100:.0f} %)")
                    print(f"# {n} client(s) done", flush=True)
            finally:
                d.stop()
        print(f"\n## results ({args.repeat} runs of {args.duration:.0f} s each)")
        print(report_table(rows))
        print("\n## targets")
        for v in verdicts:
            print(v)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
