#!/usr/bin/env python3
"""I/O: bytes read from ``nvmem`` files, counted with strace.

``strace -f -y -e trace=pread64,read,openat`` shows every read with the path
behind its file descriptor; the bytes *returned* by reads of ``…/nvmem``
files are summed.

1. Per cell read: ``nvmemd-query --direct get PROVIDER:CELL`` for every cell
   of a generated provider (16 cells, some with ``bits``) and of the demo
   board (imx-ocotp: stride 4 / word size 4; an EEPROM with a fixed layout;
   MTD), and ``Cell.Read()`` on the daemon for the same cells.  Bytes read
   must equal the cell's aligned size (``raw_len``).
2. Start-up on a 1 GiB sparse provider (``truncate -s 1G``): bytes read from
   it by ``nvmemd-query --direct providers``, by ``cells`` (its cells only)
   and by the daemon from start to READY=1.  No whole-provider read.

Baseline, same run: ``cat`` of a kernel-style ``cells/<name>`` file, i.e. the
cell's own size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    NVMEMD,
    QUERY,
    REPO,
    generate_sysroot,
    print_machine,
    private_bus,
    report_table,
    start_daemon,
)
from mksysroot import build_sysroot

from nvmemd.config import Config
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

STRACE = ["strace", "-f", "-y", "-qq", "-e", "trace=pread64,read,openat", "-e", "signal=none"]
_READ = re.compile(r"(?:pread64|read)\((\d+)<([^>]*)>.*\)\s+=\s+(-?\d+)")


def nvmem_bytes(trace: str, only: str | None = None) -> dict[str, int]:
    """Bytes returned by reads of nvmem files, per file (or of *only*)."""
    out: dict[str, int] = {}
    for line in trace.splitlines():
        m = _READ.search(line)
        if not m or not m[2].endswith("/nvmem"):
            continue
        if only is not None and m[2] != only:
            continue
        n = int(m[3])
        if n > 0:
            out[m[2]] = out.get(m[2], 0) + n
    return out


def traced(cmd: list[str], trace_file: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*STRACE, "-o", str(trace_file), *cmd], capture_output=True)


def demo_sysroot(out: Path) -> Path:
    src = REPO / "examples" / "demo-board"
    board = tomllib.loads((src / "board.toml").read_text())
    return build_sysroot(src / "board.dts", board, out)


def cells_of(root: Path, providers: list[str]) -> list[tuple[str, str, int, int, str]]:
    """(provider, sysfs name, bytes, raw_len, real nvmem path) of the providers' cells."""
    reg = scan(Sysroot(str(root)), Config())
    out = []
    for name in providers:
        entry = reg.entries[name]
        host = os.path.realpath(root / "sys/bus/nvmem/devices" / name / "nvmem")
        for c in entry.cells:
            out.append((name, c.sysfs_name, c.bytes, c.raw_len, host))
    return out


async def _dbus_read(address: str, path: str) -> bytes:
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_address=address).connect()
    try:
        r = await bus.call(Message(destination="org.nvmemd.Nvmem1", path=path,
                                   interface="org.nvmemd.Nvmem1.Cell", member="Read"))
        assert r is not None and r.message_type == MessageType.METHOD_RETURN, r and r.body
        return bytes(r.body[0])
    finally:
        bus.disconnect()


def wait_quiet(trace_file: Path, settle: float = 0.3) -> str:
    """The trace once it stopped growing (strace writes as events happen)."""
    last = -1
    while True:
        size = trace_file.stat().st_size
        if size == last:
            return trace_file.read_text(errors="replace")
        last = size
        time.sleep(settle)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-daemon", action="store_true")
    args = ap.parse_args()
    print_machine("I/O: bytes read from nvmem files")
    if not shutil.which("strace"):
        print("strace is not installed (apt install strace)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="nvmemd-bench-io."))
    failures: list[str] = []
    try:
        gen = generate_sysroot(work / "gen", 4)
        demo = demo_sysroot(work / "demo")
        cases = [(gen, c) for c in cells_of(gen, ["rmem1"])]
        demo_providers = [n for n in ("imx-ocotp0", "board-eeprom1", "mtd1")
                          if (demo / "sys/bus/nvmem/devices" / n).exists()]
        cases += [(demo, c) for c in cells_of(demo, demo_providers)]

        # Baseline: the kernel's cells/<name> file of the same size, read by cat.
        kfile = work / "cell"
        kfile.write_bytes(bytes(8))
        tf = work / "cat.trace"
        traced(["cat", str(kfile)], tf)
        cat_bytes = sum(int(m[3]) for m in map(_READ.search, tf.read_text().splitlines())
                        if m and m[2] == str(kfile) and int(m[3]) > 0)
        print(f"\n## baseline: cat of an 8-byte cells/ file reads {cat_bytes} bytes")

        print("\n## per cell read, nvmemd-query --direct get PROVIDER:CELL")
        rows = [["provider", "cell", "bytes", "raw_len", "read from nvmem", "ok"]]
        scan_reads: dict[str, int] = {}
        for i, (root, (prov, cell, nbytes, raw_len, host)) in enumerate(cases):
            tf = work / f"get{i}.trace"
            proc = traced([QUERY, "--sysroot", str(root), "--direct", "get", f"{prov}:{cell}"],
                          tf)
            if proc.returncode != 0:
                failures.append(f"get {prov}:{cell}: exit {proc.returncode}")
            per_file = nvmem_bytes(tf.read_text(errors="replace"))
            got = per_file.get(host, 0)
            for k, v in per_file.items():
                if k != host:
                    scan_reads[k] = v
            ok = got == raw_len
            if not ok:
                failures.append(f"get {prov}:{cell}: read {got}, raw_len {raw_len}")
            rows.append([prov, cell, str(nbytes), str(raw_len), str(got),
                         "yes" if ok else "NO"])
        print(report_table(rows))
        for k, v in scan_reads.items():
            print(f"every get also reads {v} bytes of {k.split('/sys/', 1)[-1]}: the scan "
                  "parses its dynamic layout (U-Boot env, ONIE TLV, ...), which needs the data")

        if not args.no_daemon:
            from nvmemd.dbus.paths import cell_path

            print("\n## per cell read, daemon Cell.Read() (daemon under strace -f)")
            rows = [["provider", "cell", "raw_len", "read from nvmem", "ok"]]
            with private_bus() as bus:
                for root in (gen, demo):
                    tf = work / f"daemon-{root.name}.trace"
                    d = start_daemon(bus, root, wrap=[*STRACE, "-o", str(tf)])
                    try:
                        before = nvmem_bytes(wait_quiet(tf))
                        for r2, (prov, cell, _nb, raw_len, host) in cases:
                            if r2 is not root:
                                continue
                            asyncio.run(_dbus_read(bus.address, cell_path(prov, cell)))
                            after = nvmem_bytes(wait_quiet(tf, 0.15))
                            delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                            got = delta.get(host, 0)
                            others = sum(v for k, v in delta.items() if k != host)
                            ok = got == raw_len and others == 0
                            if not ok:
                                failures.append(f"Cell.Read {prov}:{cell}: read {got} "
                                                f"(+{others} elsewhere), raw_len {raw_len}")
                            rows.append([prov, cell, str(raw_len),
                                         f"{got}" + (f" (+{others} other)" if others else ""),
                                         "yes" if ok else "NO"])
                            before = after
                    finally:
                        d.stop()
            print(report_table(rows))

        print("\n## start-up on a 1 GiB sparse provider (rmem0 of a 4-provider sysroot)")
        big = Path(os.path.realpath(gen / "sys/bus/nvmem/devices/rmem0/nvmem"))
        os.truncate(big, 1 << 30)
        expected_cells = sum(c[3] for c in cells_of(gen, ["rmem0"]))
        rows = [["what", "bytes read from the 1 GiB nvmem", "expected", "ok"]]
        for label, cmd, expect in (
            ("nvmemd-query --direct providers", ["providers"], 0),
            ("nvmemd-query --direct cells", ["cells"], expected_cells),
            ("nvmemd-query --direct get rmem0:cell0@0,0", ["get", "rmem0:cell0@0,0"], 4),
        ):
            tf = work / "big.trace"
            t0 = time.perf_counter()
            proc = traced([QUERY, "--sysroot", str(gen), "--direct", *cmd], tf)
            wall = time.perf_counter() - t0
            got = nvmem_bytes(tf.read_text(errors="replace")).get(str(big), 0)
            ok = proc.returncode == 0 and got == expect
            if not ok:
                failures.append(f"{label}: read {got} bytes of the 1 GiB provider, exit "
                                f"{proc.returncode}")
            rows.append([f"{label} ({wall * 1000:.0f} ms under strace)", str(got), str(expect),
                         "yes" if ok else "NO"])
        if not args.no_daemon:
            with private_bus() as bus:
                tf = work / "daemon-big.trace"
                d = start_daemon(bus, gen, wrap=[*STRACE, "-o", str(tf)])
                try:
                    got = nvmem_bytes(wait_quiet(tf)).get(str(big), 0)
                    rss_mb = d.rss_kib() / 1024
                finally:
                    d.stop()
            ok = got == 0
            if not ok:
                failures.append(f"daemon start: read {got} bytes of the 1 GiB provider")
            rows.append([f"nvmemd start → READY ({d.ready_s * 1000:.0f} ms under strace, "
                         f"RSS {rss_mb:.0f} MB)", str(got), "0", "yes" if ok else "NO"])
        print(report_table(rows))
        print(f"\n(nvmemd: {NVMEMD})")
        print("\n## verdict:", "all reads equal raw_len, no whole-provider read" if not failures
              else "FAILED:\n  " + "\n  ".join(failures))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
