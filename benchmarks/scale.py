#!/usr/bin/env python3
"""Scale: 10, 100 and 1000 providers × 16 cells.

Figures (medians of --repeat runs):

- daemon start → READY=1 (``nvmemd --address <private bus>`` with
  ``NOTIFY_SOCKET`` on a datagram socket this script listens on; READY=1 is
  sent once the coldplug objects are exported and the name is owned);
- VmRSS of the daemon right after READY;
- wall time of ``nvmemd-query --direct cells --json``;
- per-cell cost and the growth exponent between sizes, both raw and net of
  the fixed cost (the same figure on an empty sysroot, measured in this run).

Baselines, measured in the same run: ``python -c pass``; ``python -c "import
dbus_fast.aio"`` (what any dbus-fast service pays before its own code); the
daemon and the CLI on a sysroot with no provider.

Targets (2-core machine): READY ≤ 1 s and RSS ≤ 60 MB at 1000 × 16; linear growth.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from _common import (
    PYTHON,
    QUERY,
    cpu_timed,
    generate_sysroot,
    growth,
    median,
    ms,
    print_machine,
    private_bus,
    report_table,
    start_daemon,
    status_kib,
    timed,
)

CELLS = 16
READY_TARGET_S = 1.0
RSS_TARGET_MB = 60.0


def python_rss_kib(code: str) -> int:
    """VmRSS of a python process that ran *code* and then waits."""
    import subprocess

    proc = subprocess.Popen([PYTHON, "-c", code + "\nimport sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdout.readline()
    rss = status_kib(proc.pid, "VmRSS")
    proc.stdin.close()
    proc.wait()
    return rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-daemon", action="store_true", help="only the direct-mode CLI")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print_machine("scale: providers × 16 cells")
    work = Path(tempfile.mkdtemp(prefix="nvmemd-bench-scale."))
    results: dict[str, dict[str, float]] = {}
    try:
        roots: dict[int, Path] = {}
        for n in [0, *sizes]:
            t0 = time.perf_counter()
            roots[n] = generate_sysroot(work / f"s{n}", n, CELLS)
            print(f"# generated {n:5d} × {CELLS} in {time.perf_counter() - t0:.1f} s",
                  flush=True)

        base = {
            "python -c pass": timed([PYTHON, "-c", "pass"], args.repeat),
            "python -c 'import dbus_fast.aio'": timed(
                [PYTHON, "-c", "import dbus_fast.aio"], args.repeat),
        }
        base_rss = {
            "python -c pass": python_rss_kib("print(1, flush=True)"),
            "python + dbus_fast.aio": python_rss_kib(
                "import dbus_fast.aio; print(1, flush=True)"),
        }
        print("\n## baselines")
        for k, v in base.items():
            print(f"{k:40s} {ms(median(v))}")
        for k, kib in base_rss.items():
            print(f"RSS {k:36s} {kib / 1024:.1f} MB")

        for n in [0, *sizes]:
            r: dict[str, float] = {}
            cli, cli_cpu = cpu_timed([QUERY, "--sysroot", str(roots[n]), "--direct", "cells",
                                      "--json"], args.repeat)
            r["cli_s"] = median(cli)
            r["cli_cpu_s"] = median(cli_cpu)
            if not args.no_daemon:
                ready: list[float] = []
                ready_cpu: list[float] = []
                rss: list[int] = []
                with private_bus() as bus:
                    for _ in range(args.repeat):
                        d = start_daemon(bus, roots[n])
                        try:
                            ready.append(d.ready_s)
                            ready_cpu.append(d.ready_cpu_s)
                            rss.append(d.rss_kib())
                        finally:
                            d.stop()
                r["ready_s"] = median(ready)
                r["ready_cpu_s"] = median(ready_cpu)
                r["rss_mb"] = median(rss) / 1024
            results[str(n)] = r
            print(f"# measured {n} providers: " + ", ".join(f"{k}={v:.3f}" for k, v in r.items()),
                  flush=True)

        print(f"\n## results (median of {args.repeat})")
        rows = [["providers", "cells", "cli cells --json (CPU)", "per cell (net)",
                 "READY (CPU)", "per cell (net)", "RSS after READY"]]
        zero = results["0"]
        for n in sizes:
            r = results[str(n)]
            cells = n * CELLS
            row = [str(n), str(cells), f"{ms(r['cli_s'])} ({ms(r['cli_cpu_s'])})",
                   f"{(r['cli_s'] - zero['cli_s']) / cells * 1e6:.1f} µs"]
            if "ready_s" in r:
                net = (r["ready_s"] - zero["ready_s"]) / cells
                row += [f"{ms(r['ready_s'])} ({ms(r['ready_cpu_s'])})", f"{net * 1e6:.1f} µs",
                        f"{r['rss_mb']:.1f} MB"]
            else:
                row += ["-", "-", "-"]
            rows.append(row)
        row0 = ["0 (empty)", "0", f"{ms(zero['cli_s'])} ({ms(zero['cli_cpu_s'])})", "-"]
        row0 += ([f"{ms(zero['ready_s'])} ({ms(zero['ready_cpu_s'])})", "-",
                  f"{zero['rss_mb']:.1f} MB"] if "ready_s" in zero else ["-", "-", "-"])
        rows.insert(1, row0)
        print(report_table(rows))

        print("\n## growth exponent k (t ∝ n^k; 1.0 = linear), raw / net of the empty-sysroot cost")
        keys = ["cli_s", "cli_cpu_s"] + ([] if args.no_daemon else
                                         ["ready_s", "ready_cpu_s", "rss_mb"])
        for a, b in itertools.pairwise(sizes):
            parts = []
            for k in keys:
                ra, rb = results[str(a)][k], results[str(b)][k]
                za = zero[k]
                parts.append(f"{k}: {growth(a, ra, b, rb):.2f} / "
                             f"{growth(a, ra - za, b, rb - za):.2f}")
            print(f"{a} → {b}: " + "; ".join(parts))

        big = str(max(sizes))
        if not args.no_daemon and int(big) >= 1000:
            r = results[big]
            print("\n## targets at", big, "×", CELLS)
            ok_ready = r["ready_s"] <= READY_TARGET_S
            ok_rss = r["rss_mb"] <= RSS_TARGET_MB
            print(f"READY {ms(r['ready_s'])} (CPU {ms(r['ready_cpu_s'])}) ≤ "
                  f"{READY_TARGET_S * 1000:.0f} ms: {'met' if ok_ready else 'MISSED'}")
            print(f"RSS {r['rss_mb']:.1f} MB ≤ {RSS_TARGET_MB:.0f} MB: "
                  f"{'met' if ok_rss else 'MISSED'}")
        if args.json:
            Path(args.json).write_text(json.dumps(
                {"results": results, "baselines_s": {k: median(v) for k, v in base.items()},
                 "baseline_rss_kib": base_rss}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
