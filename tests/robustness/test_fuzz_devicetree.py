"""Fuzzing the device-tree side: nothing a tree, a blob or an image holds escapes as a crash.

Hypothesis builds random providers: random node names (any bytes but ``/`` and
NUL, so non-UTF-8 too, with and without ``@unit``), random properties (random
bytes for ``reg``/``bits``/``compatible``, odd lengths, huge values), random
layouts, random ``nvmem`` images and random ``/sys/firmware/fdt`` blobs.  Then:

- ``registry.scan`` and ``scan_provider`` return a ProviderEntry or a
  BrokenProvider and never raise; reading every cell gives bytes or an
  NvmemError; every error names its provider, and a device-tree error the node;
- ``nvmemd-query`` exits with a documented code (0–7), never prints a traceback
  nor an "internal error".

Bounded: fixed max_examples, no per-example deadline (the machine is shared),
derandomized so that CI runs the same examples every time.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mksysroot import DT_BASE, add_provider

from nvmemd.cli import main as cli
from nvmemd.config import Config
from nvmemd.devicetree import DeviceTree
from nvmemd.errors import NvmemError
from nvmemd.model import BrokenProvider, ProviderEntry
from nvmemd.registration import scan_provider
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DOCUMENTED_EXIT_CODES = set(range(8))

# --- strategies ---------------------------------------------------------------------


def _be32(*values: int) -> bytes:
    return b"".join((v & 0xFFFFFFFF).to_bytes(4, "big") for v in values)


u32 = st.one_of(st.integers(0, 64), st.integers(0, 0xFFFFFFFF),
                st.sampled_from([0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF8]))
raw = st.binary(max_size=20)
small_reg = st.builds(_be32, st.integers(0, 300), st.integers(0, 40))
reg = st.one_of(small_reg, small_reg, raw, st.builds(_be32, u32, u32),
                st.builds(_be32, u32, u32, u32))
bits = st.one_of(st.builds(_be32, st.integers(0, 16), st.integers(0, 70)), raw,
                 st.builds(_be32, u32, u32))
name_bytes = st.binary(min_size=1, max_size=10).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))
unit = st.one_of(st.just(b""), st.builds(lambda n: b"@" + n, st.one_of(
    st.integers(0, 0x1000).map(lambda i: f"{i:x}".encode()), name_bytes)))
node_name = st.builds(lambda n, u: n + u, name_bytes, unit).filter(lambda b: len(b) < 200)


def _strings(*names: str) -> bytes:
    return b"".join(n.encode() + b"\0" for n in names)


provider_compatible = st.one_of(
    st.sampled_from(["nvmem-rmem", "fsl,imx8mq-ocotp", "qcom,qfprom", "mediatek,efuse",
                     "u-boot,env", "brcm,nvram", "atmel,24c02"]).map(_strings),
    raw)
layout_compatible = st.sampled_from(
    ["fixed-layout"] * 5 + ["onie,tlv-layout", "kontron,sl28-vpd", "u-boot,env",
                            "u-boot,env-redundant-bool", "RAW", "NONE"]).flatmap(
    lambda c: st.none() if c == "NONE" else raw if c == "RAW" else st.just(_strings(c)))


@st.composite
def cell_nodes(draw: Any, min_cells: int = 0) -> list[tuple[bytes, dict[str, bytes]]]:
    cells = []
    for _ in range(draw(st.integers(min_cells, 5))):
        props: dict[str, bytes] = {}
        if draw(st.booleans()) or not props:
            props["reg"] = draw(reg)
        if draw(st.integers(0, 3)) == 0:
            props["bits"] = draw(bits)
        if draw(st.integers(0, 4)) == 0:
            props["compatible"] = draw(raw)
        if draw(st.integers(0, 4)) == 0:
            props[draw(st.sampled_from(["#nvmem-cell-cells", "label", "max-size", "x"]))] = \
                draw(raw)
        cells.append((draw(node_name), props))
    return cells


@st.composite
def boards(draw: Any) -> dict[str, Any]:
    image = draw(st.one_of(st.binary(max_size=300),
                           st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=4),
                                     st.integers(1, 200))))
    return {
        "compatible": draw(st.one_of(provider_compatible, st.none())),
        "legacy": draw(cell_nodes()),
        "layout": (None if draw(st.integers(0, 4)) == 0
                   else (draw(layout_compatible), draw(cell_nodes(1)))),
        "image": image,
        "mode": draw(st.sampled_from(["0444", "0400", "0644", "0600"])),
        "fdt": draw(st.one_of(st.none(), st.binary(max_size=80),
                              st.builds(lambda b: b"\xd0\x0d\xfe\xed" + b,
                                        st.binary(max_size=80)))),
        "of_node": draw(st.sampled_from(["ok"] * 8 + ["dangling", "none"])),
    }


# --- building a sysroot -------------------------------------------------------------


def _write_node(directory: bytes, props: dict[str, bytes]) -> None:
    os.makedirs(directory, exist_ok=True)
    for key, value in props.items():
        with open(directory + b"/" + key.encode(), "wb") as f:
            f.write(value)


def build(root: Path, board: dict[str, Any]) -> str:
    """Write the fuzzed provider 'fuzz0' (and a sane neighbour 'good0'); return its node."""
    base = os.fsencode(root / DT_BASE)
    os.makedirs(base)
    node = b"/fuzz@0"
    props = {} if board["compatible"] is None else {"compatible": board["compatible"]}
    _write_node(base + node, props)
    for name, cprops in board["legacy"]:
        _write_node(base + node + b"/" + name, cprops)
    if board["layout"] is not None:
        compat, cells = board["layout"]
        lprops = {"#address-cells": _be32(1), "#size-cells": _be32(1)}
        if compat is not None:
            lprops["compatible"] = compat
        _write_node(base + node + b"/nvmem-layout", lprops)
        for name, cprops in cells:
            _write_node(base + node + b"/nvmem-layout/" + name, cprops)
    _write_node(base + b"/good@0", {"compatible": b"nvmem-rmem\0"})
    _write_node(base + b"/good@0/nvmem-layout", {"compatible": b"fixed-layout\0"})
    _write_node(base + b"/good@0/nvmem-layout/ok@0", {"reg": _be32(0, 4)})
    if board["fdt"] is not None:
        (root / "sys/firmware/fdt").write_bytes(board["fdt"])
    (root / "proc").mkdir()
    os.symlink("../sys/firmware/devicetree/base", root / "proc/device-tree")
    of_node = {"ok": "/fuzz@0", "dangling": "/gone@0", "none": None}[board["of_node"]]
    spec: dict[str, Any] = {"name": "fuzz0", "device": "platform/fuzz.sram", "bus": "platform",
                            "driver": "rmem", "mode": board["mode"], "size": len(board["image"]),
                            "image": {"fill": 0}}
    if of_node:
        spec["of_node"] = of_node
    dev = add_provider(root, spec)
    (dev / "nvmem").chmod(0o600)
    (dev / "nvmem").write_bytes(board["image"])
    (dev / "nvmem").chmod(int(board["mode"], 8))
    add_provider(root, {"name": "good0", "of_node": "/good@0", "device": "platform/good.sram",
                        "bus": "platform", "driver": "rmem", "size": 8,
                        "image": {"fill": 0x5A}})
    return os.fsdecode(node)


@contextlib.contextmanager
def fuzzed_sysroot(board: dict[str, Any]) -> Any:
    tmp = Path(tempfile.mkdtemp(prefix="nvmemd-fuzz-"))
    try:
        build(tmp / "root", board)
        yield tmp / "root"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- checks -------------------------------------------------------------------------

DT_ERROR_WORDS = ("invalid reg", "invalid bits", "unaligned to nvmem")


def check_errors_name_their_node(name: str, errors: tuple[str, ...] | list[str]) -> None:
    for err in errors:
        assert err.startswith(f"{name}:"), err
        if any(w in err for w in DT_ERROR_WORDS):
            assert " on /" in err, f"a device-tree error that names no node: {err}"


@FUZZ
@given(board=boards())
def test_scan_never_raises(board: dict[str, Any]) -> None:
    with fuzzed_sysroot(board) as root:
        registry = scan(Sysroot(str(root)), Config())
        assert set(registry.entries) | set(registry.broken) == {"fuzz0", "good0"}
        # The sane neighbour is never hurt by the fuzzed provider.
        good = registry.entries["good0"]
        assert [c.sysfs_name for c in good.cells] == ["ok@0,0"]
        assert registry.read_cell(good, good.cells[0]) == b"\x5a" * 4
        for entry in registry.entries.values():
            check_errors_name_their_node(entry.name, entry.errors)
            for cell in entry.cells:
                assert cell.of_node is None or cell.of_node.startswith("/")
                try:
                    value = registry.read_cell(entry, cell)
                except NvmemError as e:
                    assert str(e).startswith(f"{entry.name}:"), e
                else:
                    assert len(value) == cell.bytes
        fuzz = registry.entries.get("fuzz0")
        event("broken" if fuzz is None else
              f"cells={min(len(fuzz.cells), 3)} errors={bool(fuzz.errors)} "
              f"rejected={fuzz.rejected}")
        for broken in registry.broken.values():
            assert broken.error.startswith(f"{broken.name}:"), broken.error
        # scan_provider alone, with a fresh tree, agrees with the full scan.
        one = scan_provider(Sysroot(str(root)), DeviceTree(Sysroot(str(root))), "fuzz0", Config())
        assert isinstance(one, ProviderEntry | BrokenProvider)
        if isinstance(one, ProviderEntry) and "fuzz0" in registry.entries:
            assert one.cells == registry.entries["fuzz0"].cells


def run_cli(argv: list[str]) -> tuple[int, bytes, str]:
    """nvmemd-query in this process: (exit code, stdout, stderr)."""
    out = io.BytesIO()
    err = io.StringIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8")
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    except SystemExit as e:  # argparse
        code = int(e.code or 0)
    stdout.flush()
    return code, out.getvalue(), err.getvalue()


@settings(FUZZ, max_examples=40)
@given(board=boards(), command=st.sampled_from([
    ["providers"], ["providers", "--json"], ["cells"], ["cells", "--json"],
    ["cells", "fuzz0"], ["get", "fuzz0:reg"], ["get", "/fuzz@0/nvmem-layout"],
    ["dump", "fuzz0", "--length", "64"], ["verify"]]))
def test_cli_exits_with_a_documented_code(board: dict[str, Any], command: list[str]) -> None:
    with fuzzed_sysroot(board) as root:
        code, _, err = run_cli(["--sysroot", str(root), "--direct", *command])
        assert code in DOCUMENTED_EXIT_CODES, (code, err)
        assert "Traceback" not in err, err
        assert "internal error" not in err, err


@settings(FUZZ, max_examples=8)
@given(board=boards())
def test_cli_process_never_prints_a_traceback(board: dict[str, Any]) -> None:
    """The same as a user runs it: a separate process, stderr as bytes."""
    with fuzzed_sysroot(board) as root:
        for command in (["cells", "--json"], ["providers"]):
            proc = subprocess.run(
                [sys.executable, "-m", "nvmemd.cli", "--sysroot", str(root), "--direct",
                 *command], capture_output=True, timeout=60)
            assert proc.returncode in DOCUMENTED_EXIT_CODES, proc.stderr
            assert b"Traceback" not in proc.stderr, proc.stderr
            assert b"internal error" not in proc.stderr, proc.stderr
