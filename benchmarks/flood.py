#!/usr/bin/env python3
"""Flood (issue 11): how nvmemd holds up under a Provider.Read flood from one caller.

For the demo board and a generated 1000-provider board: the daemon's VmRSS at
idle, then FLOODERS client connections each keeping CONCURRENCY
``Provider.Read(0, LENGTH)`` calls in flight on a world-readable provider for
SECONDS, while a bystander connection calls ``Cell.Read`` every 20 ms.  ``--call
GetManagedObjects`` floods with that instead.  Prints
calls/s served to the flood, refused calls (LimitsExceeded), the bystander's
p50/p99/max latency and errors, the daemon's peak VmRSS / VmHWM and whether it
survived.  ``--code DIR`` runs the daemon from another source tree (the
"before" figures: ``git archive <commit> nvmemd | tar -x -C DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

from _common import REPO, generate_sysroot, print_machine, private_bus, start_daemon, status_kib
from mksysroot import build_sysroot


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def client(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.robustness.flood", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def run(board: str, sysroot: Path, provider: str, cell: str, args: argparse.Namespace) -> None:
    env = dict(os.environ)
    if args.code:
        env["PYTHONPATH"] = args.code
    with private_bus() as bus:
        daemon = start_daemon(bus, sysroot, env=env)
        pid = daemon.pid
        time.sleep(1)
        idle = status_kib(pid, "VmRSS")
        peak = [idle]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], status_kib(pid, "VmRSS"))
                except (OSError, KeyError):
                    return
                time.sleep(0.1)

        threading.Thread(target=sample, daemon=True).start()
        if args.call == "GetManagedObjects":
            floods = [client("--flood", bus.address, str(args.seconds), str(args.concurrency),
                             "/org/nvmemd/Nvmem1", "org.freedesktop.DBus.ObjectManager",
                             "GetManagedObjects", "", "[]") for _ in range(args.flooders)]
        else:
            floods = [client(bus.address, str(args.seconds), str(args.concurrency), provider,
                             "0", str(args.length)) for _ in range(args.flooders)]
        by = client("--bystander", bus.address, str(args.seconds), cell)
        results = [json.loads(p.communicate(timeout=300)[0].splitlines()[-1]) for p in floods]
        bystander = json.loads(by.communicate(timeout=300)[0].splitlines()[-1])
        done.set()
        alive = daemon.proc.poll() is None
        hwm = status_kib(pid, "VmHWM") if alive else 0
        lat = bystander["latencies_ms"]
        errors: dict[str, int] = {}
        for r in results:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        what = (args.call if args.call == "GetManagedObjects"
                else f"Provider.Read({args.length})")
        print(f"{board}: {args.flooders}×{args.concurrency} {what} for {args.seconds} s")
        survived = "yes" if alive else f"NO (exit {daemon.proc.returncode})"
        print(f"  daemon survived: {survived}")
        print(f"  flood calls served: {sum(r['ok'] for r in results)} "
              f"({sum(r['calls_per_s'] for r in results):.0f}/s); errors: {errors}")
        print(f"  bystander Cell.Read: {bystander['ok']} ok, errors {bystander['errors']}; "
              f"p50 {percentile(lat, 0.5):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, "
              f"max {max(lat, default=float('nan')):.1f} ms")
        print(f"  VmRSS idle {idle / 1024:.1f} MiB, peak {peak[0] / 1024:.1f} MiB, "
              f"VmHWM {hwm / 1024:.1f} MiB")
        if alive:
            daemon.proc.terminate()
            daemon.proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--flooders", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--length", type=int, default=65536)
    ap.add_argument("--code", metavar="DIR", help="run the daemon from this source tree")
    ap.add_argument("--call", choices=("Read", "GetManagedObjects"), default="Read",
                    help="what the flooders call (default: Provider.Read)")
    ap.add_argument("--boards", default="demo,1000")
    args = ap.parse_args()
    print_machine("flood")
    with tempfile.TemporaryDirectory(prefix="nvmemd-flood.") as tmp:
        for board in args.boards.split(","):
            if board == "demo":
                demo = REPO / "examples" / "demo-board"
                root = build_sysroot(demo / "board.dts",
                                     tomllib.loads((demo / "board.toml").read_text()),
                                     Path(tmp) / "demo")
                run("demo board", root, "/org/nvmemd/Nvmem1/providers/u_2dboot_2denv0",
                    "/org/nvmemd/Nvmem1/providers/imx_2docotp0/cells/mac_2daddress_4090_2c0",
                    args)
            else:
                n = int(board)
                root = generate_sysroot(Path(tmp) / f"p{n}", n, size=65536)
                run(f"{n} providers × 16 cells", root,
                    "/org/nvmemd/Nvmem1/providers/rmem0",
                    "/org/nvmemd/Nvmem1/providers/rmem1/cells/cell0_400_2c0", args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
