#!/usr/bin/env python3
"""``make bench``: every benchmark in turn, output to the terminal and benchmarks/out/.

Not part of ``make test``: the figures depend on the machine and its load.
Each benchmark measures its own baseline in the same run.  Pass
``--quick`` for fewer repetitions (a smoke run, not figures to record).
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    # name, arguments, --quick arguments
    ("cli_latency.py", [], ["--repeat", "5"]),
    ("io_bytes.py", [], []),
    ("dbus_throughput.py", [], ["--repeat", "1", "--duration", "1"]),
    ("scale.py", [], ["--repeat", "1", "--sizes", "10,100"]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("only", nargs="*", help="run only these (e.g. scale.py)")
    args = ap.parse_args()
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    failed = []
    for name, extra, quick in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        cmd = [sys.executable, str(HERE / name), *(quick if args.quick else extra)]
        print(f"\n===== {name} =====", flush=True)
        t0 = time.perf_counter()
        log = out_dir / f"{stamp}-{Path(name).stem}.txt"
        with open(log, "wb") as f:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
                f.write(line)
            rc = proc.wait()
        print(f"===== {name}: exit {rc} in {time.perf_counter() - t0:.0f} s ({log}) =====",
              flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
