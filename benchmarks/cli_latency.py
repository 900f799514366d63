#!/usr/bin/env python3
"""CLI latency: ``nvmemd-query get`` against starting Python and against ``cat``.

All commands run round-robin in one loop (so load changes hit them alike) and
the medians are compared:

- ``python -c pass`` with the venv's interpreter (the target's baseline), and
  ``python -S -c pass`` (no site, no .pth import hooks) to show what ``site``
  and the editable-install finder cost;
- ``cat`` of a file of the cell's size (what reading the kernel's
  ``cells/<name>`` costs);
- ``nvmemd-query --direct get`` on a generated sysroot of 10 providers × 16
  cells (and 100, 1000 for the scan's share);
- ``nvmemd-query get`` over D-Bus against a running daemon on a private bus,
  (nvmemd/dbus/client.py on nvmemd.client.Client); a minimal
  dbus-fast client calling ``Manager.ReadCellByName`` is measured next to it.

Targets: direct ≤ 3× ``python -c pass``; D-Bus ≤ 4×; ``get`` of 5 cells ≤ 1.2× one.

``-X importtime`` of the direct ``get`` is summarised (top cumulative imports),
and the script checks that direct mode imports neither dbus_fast nor pyudev.

The package is byte-compiled first (``compileall``), as an installed one is
(dh_python3, pip): with ``PYTHONDONTWRITEBYTECODE`` set, a module edited since
its ``.pyc`` was written is compiled again on every run, which measures the
compiler instead of the start-up (it doubled the direct ``get`` here).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PYTHON,
    QUERY,
    REPO,
    generate_sysroot,
    interleaved,
    median,
    ms,
    print_machine,
    private_bus,
    report_table,
    start_daemon,
)

DIRECT_TARGET = 3.0
DBUS_TARGET = 4.0
MULTI_TARGET = 1.2
SPEC = "rmem3/cell5"  # 8 bytes at 0x50
#: Five cells in one call (issue 12 #14): boot scripts pay the start-up once.
SPECS5 = ["rmem3/cell5", "rmem3/cell6", "rmem2/cell1", "rmem1/cell9", "rmem0/cell0"]

CLIENT = r"""
import asyncio, sys
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
async def main():
    bus = await MessageBus(bus_address=sys.argv[1]).connect()
    r = await bus.call(Message(destination="org.nvmemd.Nvmem1", path="/org/nvmemd/Nvmem1",
        interface="org.nvmemd.Nvmem1.Manager", member="ReadCellByName", signature="s",
        body=[sys.argv[2]]))
    assert r.message_type == MessageType.METHOD_RETURN, r.body
    sys.stdout.write(bytes(r.body[0]).hex() + "\n")
asyncio.run(main())
"""


def importtime(cmd: list[str], env: dict[str, str] | None = None) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) from ``-X importtime``."""
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True,
                          text=True, env=env)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append((m[3] + m[4], int(m[1]), int(m[2])))
    return rows


#: nvmemd-query's entry point, with the package taken from the tree in argv[1].
LAUNCHER = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from nvmemd.cli.fast import main; sys.exit(main())")


def checkout(rev: str, work: Path) -> Path:
    """The package of git revision *rev*, unpacked under *work* and byte-compiled."""
    tree = work / f"rev-{rev.replace('/', '_')}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "nvmemd"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(tree / "nvmemd")], check=True)
    return tree


def dbus_backend_available() -> bool:
    return (REPO / "nvmemd" / "dbus" / "client.py").exists()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--no-daemon", action="store_true")
    ap.add_argument("--baseline-rev", metavar="REV",
                    help="also time the direct get of git revision REV (e.g. the commit "
                         "before a change), in the same round-robin")
    args = ap.parse_args()
    print_machine("CLI latency: nvmemd-query get")
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(REPO / "nvmemd")], check=True)

    work = Path(tempfile.mkdtemp(prefix="nvmemd-bench-cli."))
    try:
        roots = {n: generate_sysroot(work / f"s{n}", n) for n in (10, 100, 1000)}
        cell_file = work / "cell"
        cell_file.write_bytes(bytes(8))
        root = str(roots[10])
        cmds: dict[str, list[str]] = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "python -S -c pass": [PYTHON, "-S", "-c", "pass"],
            "cat <8-byte file>": ["cat", str(cell_file)],
            "direct get (10 providers)": [QUERY, "--sysroot", root, "--direct", "get", SPEC],
            "direct get of 5 cells (10 providers)": [QUERY, "--sysroot", root, "--direct",
                                                     "get", *SPECS5],
        }
        if args.baseline_rev:
            # Both trees through the same launcher, so only the package differs.
            for label, tree in ((args.baseline_rev, checkout(args.baseline_rev, work)),
                                ("this tree", REPO)):
                cmds[f"direct get ({label}, python -c launcher)"] = [
                    PYTHON, "-c", LAUNCHER, str(tree), "--sysroot", root, "--direct", "get",
                    SPEC]
        # The same get without site's import hooks: what a non-editable install would pay.
        purelib = sysconfig.get_paths(vars={"base": str(REPO / ".venv"),
                                            "platbase": str(REPO / ".venv")})["purelib"]
        env_nohook = dict(os.environ, PYTHONPATH=f"{REPO}:{purelib}")
        direct_nohook = [PYTHON, "-S", "-m", "nvmemd.cli", "--sysroot", root, "--direct",
                         "get", SPEC]

        dbus_cmds: dict[str, list[str]] = {}
        bus_ctx = None
        daemon = None
        if not args.no_daemon:
            bus_ctx = private_bus()
            bus = bus_ctx.__enter__()
            daemon = start_daemon(bus, roots[10])
            dbus_cmds["dbus-fast client ReadCellByName"] = [PYTHON, "-c", CLIENT, bus.address,
                                                            SPEC]
            if dbus_backend_available():
                env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address)
                os.environ.update(env)
                dbus_cmds["nvmemd-query get (D-Bus)"] = [QUERY, "get", SPEC]
        try:
            all_cmds = {**cmds, **dbus_cmds}
            res = interleaved(all_cmds, args.repeat)
            res["direct get, python -S + PYTHONPATH (no .pth hook)"] = [
                t for _ in range(1)
                for t in interleaved({"x": direct_nohook}, args.repeat, env_nohook)["x"]]
            res["direct get (100 providers)"] = interleaved(
                {"x": [QUERY, "--sysroot", str(roots[100]), "--direct", "get", SPEC]},
                max(5, args.repeat // 3))["x"]
            res["direct get (1000 providers)"] = interleaved(
                {"x": [QUERY, "--sysroot", str(roots[1000]), "--direct", "get", SPEC]},
                max(3, args.repeat // 5))["x"]
        finally:
            if daemon is not None:
                daemon.stop()
            if bus_ctx is not None:
                bus_ctx.__exit__(None, None, None)

        py = median(res["python -c pass"])
        print(f"\n## results (median of {args.repeat} runs, round-robin)")
        rows = [["command", "median", "min", "× python -c pass"]]
        for k, v in res.items():
            rows.append([k, ms(median(v)), ms(min(v)), f"{median(v) / py:.2f}×"])
        print(report_table(rows))

        print("\n## targets")
        direct = median(res["direct get (10 providers)"])
        print(f"direct get {ms(direct)} ≤ {DIRECT_TARGET}× python -c pass "
              f"({ms(py * DIRECT_TARGET)}): "
              f"{'met' if direct <= py * DIRECT_TARGET else 'MISSED'} ({direct / py:.2f}×)")
        multi = median(res["direct get of 5 cells (10 providers)"])
        print(f"direct get of 5 cells {ms(multi)} ≤ {MULTI_TARGET}× one cell: "
              f"{'met' if multi <= direct * MULTI_TARGET else 'MISSED'} ({multi / direct:.2f}×)")
        if "nvmemd-query get (D-Bus)" in res:
            d = median(res["nvmemd-query get (D-Bus)"])
            print(f"D-Bus get {ms(d)} ≤ {DBUS_TARGET}× python -c pass ({ms(py * DBUS_TARGET)}): "
                  f"{'met' if d <= py * DBUS_TARGET else 'MISSED'} ({d / py:.2f}×)")
        elif not args.no_daemon:
            d = median(res["dbus-fast client ReadCellByName"])
            print("D-Bus get: the CLI has no D-Bus back end yet (nvmemd/backend_dbus.py); "
                  f"a minimal dbus-fast client takes {ms(d)} ({d / py:.2f}× python -c pass)")

        print("\n## import costs of direct get (-X importtime, cumulative, top 15)")
        # through the installed entry point (``-m`` would add runpy's own imports)
        rows_it = importtime([PYTHON, QUERY, "--sysroot", root, "--direct", "get", SPEC])
        mods = {name.strip() for name, _, _ in rows_it}
        total = sum(s for _, s, _ in rows_it)
        for name, _, cum in sorted(rows_it, key=lambda r: -r[2])[:15]:
            print(f"{cum / 1000:7.1f} ms  {name}")
        print(f"total import time {total / 1000:.1f} ms over {len(rows_it)} modules")
        heavy = sorted(m for m in mods if m.split(".")[0] in ("dbus_fast", "pyudev", "libfdt",
                                                               "gettext", "pathlib"))
        print("direct mode imports dbus_fast:", any(m.startswith("dbus_fast") for m in mods),
              "| pyudev:", any(m.startswith("pyudev") for m in mods),
              "| others of note:", ", ".join(heavy) or "none")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
