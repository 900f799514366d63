"""Shared parts of the benchmarks: machine facts, generated sysroots, a private bus.

Every benchmark measures its baseline in the same run as the figure it is
compared with, and prints medians over repeated runs (the machine is shared).
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
PYTHON = str(VENV / "bin" / "python") if (VENV / "bin" / "python").exists() else sys.executable
NVMEMD = os.environ.get("NVMEMD_BENCH_DAEMON") or str(VENV / "bin" / "nvmemd")
QUERY = str(VENV / "bin" / "nvmemd-query")

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))  # mksysroot

from mksysroot import DT_BASE, add_provider  # noqa: E402

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
"""


# --- machine -------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    py = subprocess.run([PYTHON, "-c", "import sys; print(sys.version.split()[0])"],
                        capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": f"{py} ({PYTHON})",
        "loadavg": load,
    }


def print_machine(title: str) -> None:
    print(f"# {title}")
    for k, v in machine().items():
        print(f"#   {k}: {v}")
    print(f"#   command: {' '.join([Path(sys.executable).name, *sys.argv])}")


# --- statistics ----------------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def growth(n1: float, t1: float, n2: float, t2: float) -> float:
    """The exponent k of t ∝ n^k between two sizes (1.0: linear)."""
    if t1 <= 0 or t2 <= 0:
        return float("nan")
    return math.log(t2 / t1) / math.log(n2 / n1)


def cpu_timed(cmd: Sequence[str], repeat: int) -> tuple[list[float], list[float]]:
    """(wall times, CPU times user+sys) of *repeat* runs: CPU time is what load hides least."""
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd}: exit {proc.returncode}")
        cpus.append(usage.ru_utime + usage.ru_stime)
    return walls, cpus


def proc_cpu_s(pid: int) -> float:
    """CPU time (user + sys) a running process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(cmd: Sequence[str], repeat: int, env: dict[str, str] | None = None,
          check: bool = True) -> list[float]:
    """Wall times of *repeat* runs of *cmd* (stdout discarded)."""
    out: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        out.append(time.perf_counter() - t0)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{cmd}: exit {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return out


def interleaved(cmds: dict[str, Sequence[str]], repeat: int,
                env: dict[str, str] | None = None) -> dict[str, list[float]]:
    """Run the commands round-robin, so that load changes hit them all alike."""
    res: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(repeat):
        for k, cmd in cmds.items():
            res[k] += timed(cmd, 1, env)
    return res


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


# --- generated sysroots --------------------------------------------------------------

#: Cell shapes of a generated provider: (offset, size, bits or None), 16 per provider.
CELL_SHAPES: tuple[tuple[int, int, tuple[int, int] | None], ...] = tuple(
    (i * 16, 4 + (i % 4) * 4, (i % 8, 5) if i % 5 == 4 else None) for i in range(16)
)
PROVIDER_SIZE = 256


def _be32(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "big") for v in values)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def generate_sysroot(root: Path, providers: int, cells: int = 16,
                     size: int = PROVIDER_SIZE, with_fdt: bool = True) -> Path:
    """A sysroot of *providers* nvmem-rmem providers with *cells* fixed-layout cells each.

    The device tree is written directly as the kernel's sysfs shows it (one file
    per property); the provider directories come from mksysroot.add_provider;
    ``sys/firmware/fdt`` is one DTS of the same tree compiled by dtc, so the
    child order comes from the blob as on a real system.
    """
    base = root / DT_BASE
    base.mkdir(parents=True)
    _write(base / "compatible", b"nvmemd,bench\0")
    _write(base / "#address-cells", _be32(1))
    _write(base / "#size-cells", _be32(1))
    dts = ["/dts-v1/;", "/ {", '\tcompatible = "nvmemd,bench";',
           "\t#address-cells = <1>;", "\t#size-cells = <1>;"]
    shapes = CELL_SHAPES[:cells] if cells <= len(CELL_SHAPES) else tuple(
        (i * 16, 4, None) for i in range(cells))
    for p in range(providers):
        node = f"sram@{p:x}"
        nd = base / node
        nd.mkdir()
        _write(nd / "name", b"sram\0")
        _write(nd / "compatible", b"nvmem-rmem\0")
        _write(nd / "reg", _be32(p * 0x1000, 0x1000))
        lay = nd / "nvmem-layout"
        lay.mkdir()
        _write(lay / "name", b"nvmem-layout\0")
        _write(lay / "compatible", b"fixed-layout\0")
        _write(lay / "#address-cells", _be32(1))
        _write(lay / "#size-cells", _be32(1))
        dts += [f"\t{node} {{", '\t\tcompatible = "nvmem-rmem";',
                f"\t\treg = <{p * 0x1000:#x} 0x1000>;",
                "\t\tnvmem-layout {", '\t\t\tcompatible = "fixed-layout";',
                "\t\t\t#address-cells = <1>;", "\t\t\t#size-cells = <1>;"]
        for i, (off, n, bits) in enumerate(shapes):
            cell = f"cell{i}@{off:x}"
            cd = lay / cell
            cd.mkdir()
            _write(cd / "name", f"cell{i}".encode() + b"\0")
            _write(cd / "reg", _be32(off, n))
            line = f"\t\t\t{cell} {{ reg = <{off:#x} {n}>;"
            if bits:
                _write(cd / "bits", _be32(*bits))
                line += f" bits = <{bits[0]} {bits[1]}>;"
            dts.append(line + " };")
        dts += ["\t\t};", "\t};"]
        add_provider(root, {
            "name": f"rmem{p}", "of_node": f"/{node}", "device": f"platform/{p:x}.sram/0",
            "bus": "platform", "driver": "rmem", "type": "Unknown", "mode": "0444",
            "size": size, "image": {"fill": p % 251},
        })
    dts.append("};")
    if with_fdt:
        blob = subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", "-"],
                              input="\n".join(dts).encode(), check=True,
                              capture_output=True).stdout
        _write(root / "sys/firmware/fdt", blob)
        os.chmod(root / "sys/firmware/fdt", 0o400)
    (root / "proc").mkdir(exist_ok=True)
    os.symlink("../sys/firmware/devicetree/base", root / "proc/device-tree")
    (root / "sys/bus/nvmem/devices").mkdir(parents=True, exist_ok=True)
    return root


# --- private bus, daemon -------------------------------------------------------------


@dataclass
class Bus:
    address: str
    proc: subprocess.Popen[bytes]
    directory: Path


@contextlib.contextmanager
def private_bus() -> Iterator[Bus]:
    d = Path(tempfile.mkdtemp(prefix="nvmemd-bench-bus."))
    (d / "bus.conf").write_text(BUS_CONF.format(dir=d))
    proc = subprocess.Popen(["dbus-daemon", "--nofork", "--print-address=1",
                             f"--config-file={d / 'bus.conf'}"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    address = proc.stdout.readline().decode().strip()
    try:
        yield Bus(address, proc, d)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    ready_s: float  # Popen → READY=1
    ready_cpu_s: float = 0.0  # CPU time the daemon had used when READY=1 arrived

    wrapped: bool = False

    @property
    def pid(self) -> int:
        """The daemon's pid (the wrapper's child when it runs under strace & co.)."""
        if not self.wrapped:
            return self.proc.pid
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return int(f.read().split()[0])

    def rss_kib(self) -> int:
        return status_kib(self.pid, "VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def start_daemon(bus: Bus, sysroot: Path, extra: Sequence[str] = (),
                 timeout: float = 60, wrap: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> Daemon:
    """``nvmemd --address BUS --sysroot S``; returns once it sent READY=1."""
    sock_path = Path(tempfile.mkdtemp(prefix="nvmemd-notify.")) / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    e = dict(env if env is not None else os.environ)
    e["NOTIFY_SOCKET"] = str(sock_path)
    cmd = [*wrap, NVMEMD, "--address", bus.address, "--sysroot", str(sysroot),
           *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        while True:
            try:
                msg = sock.recv(4096).decode()
            except TimeoutError:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"nvmemd exited {proc.returncode}: {err[-2000:]}") from None
                if time.perf_counter() - t0 > timeout:
                    proc.kill()
                    raise RuntimeError("nvmemd sent no READY=1") from None
                continue
            if "READY=1" in msg.split("\n"):
                ready = time.perf_counter() - t0
                ready_cpu = proc_cpu_s(proc.pid)
                break
    finally:
        sock.close()
        shutil.rmtree(sock_path.parent, ignore_errors=True)
    # stderr is a pipe: drain it in the background so the daemon never blocks on it.
    if proc.stderr is not None:
        import threading

        def drain(stream: Any) -> None:
            for _ in stream:
                pass

        threading.Thread(target=drain, args=(proc.stderr,), daemon=True).start()
    return Daemon(proc, ready, ready_cpu, wrapped=bool(wrap))


def report_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


