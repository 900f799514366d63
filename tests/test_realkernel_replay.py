"""Replay sysroots recorded from a real Linux kernel and compare nvmemd with the kernel's answer.

Each ``tests/fixtures/realkernel/<case>/`` was recorded by ``tools/realkernel/record.py``
(``make record-fixtures``): Debian's arm64 Linux 6.12 and 7.2 booted under qemu with the
case's device tree. ``sysroot.tar.gz`` (6.12; ``sysroot-7.2.tar.gz`` for 7.2) is what the
kernel showed in sysfs (without its ``cells/`` directories) and ``kernel-cells.json``
(``kernel-cells-7.2.json``) is what the kernel listed in those ``cells/`` directories.
``nvmemd-query --sysroot DIR --direct cells --json`` must find the same cells: the same
(provider, ``name@offset,bit``) set, the same sizes, the same values, and must fail to read
the cells whose read failed in the kernel, with the kernel's error text (nvmemd picks the
rule set from the sysroot's ``proc/sys/kernel/osrelease``).

Providers marked ``kernel_invisible`` in kernel-cells.json (the U-Boot env platform driver's
``u-boot-env0``) have cells inside the kernel that it never shows in sysfs (no ``cells/``):
for those we check that the kernel listing is indeed absent and that nvmemd lists the
provider's cells with source ``u-boot-env``; their values cannot be compared.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "realkernel"
CASES = sorted(p for p in FIXTURES.glob("*") if (p / "kernel-cells.json").is_file())
#: kernel series -> (sysroot tarball, kernel listing), as tools/realkernel/record.py names them
KERNELS: dict[str, tuple[str, str]] = {
    "6.12": ("sysroot.tar.gz", "kernel-cells.json"),
    "7.2": ("sysroot-7.2.tar.gz", "kernel-cells-7.2.json"),
}
RECORDINGS = [(case, k) for case in CASES for k in KERNELS
              if (case / KERNELS[k][1]).is_file()]


def _listing(case: Path, series: str) -> Any:
    return json.loads((case / KERNELS[series][1]).read_text())

# (test, "case@series") pairs where nvmemd is known to differ from the recorded kernel, with
# the difference. strict=True: when nvmemd is fixed the XPASS fails and the entry must go.
KNOWN_DIVERGENT: dict[tuple[str, str], str] = {}

# Cases where nvmemd deliberately shows more than this kernel's sysfs, by design: the
# cells exist on a kernel that has the layout driver bound before cells/ is populated,
# and nvmemd gives users the same cells on every kernel.  For these, the expected cells
# come from a recording of the *same board and images* on such a kernel, and the
# kernel's own (smaller) listing must be a subset of nvmemd's.
SAME_BOARD_REFERENCE: dict[str, tuple[str, str]] = {
    "rmem-dynamic-layouts-no-modules": (
        "rmem-dynamic-layouts",
        "this kernel has no onie-tlv/sl28vpd/u-boot-env layout modules (Debian's stock "
        "config), so its layout devices stay unbound and it shows no cells/",
    ),
    "mtd-legacy-plus-onie-layout-late": (
        "mtd-legacy-plus-onie-layout-early",
        "the ONIE layout module loaded after the flash: its cells were added after cells/ "
        "had been populated with the legacy cell, so sysfs never shows them "
        "(nvmem_populate_sysfs_cells() runs once)",
    ),
}


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("nvmemd-query")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "nvmemd.cli"]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """case -> its sysroot, unpacked once per module (read-only use)."""
    done: dict[str, Path] = {}

    def get(case: Path, series: str = "6.12") -> Path:
        key = f"{case.name}@{series}"
        if key not in done:
            done[key] = _unpack(case / KERNELS[series][0],
                                tmp_path_factory.mktemp(case.name) / "sysroot")
        return done[key]

    return get


def _unpack(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tf:
        if hasattr(tarfile, "tar_filter"):
            tf.extractall(dest, filter="tar")
        else:  # pragma: no cover - Python < 3.11.4
            tf.extractall(dest)  # our own fixture
    return dest


def _query(sysroot: Path, *args: str) -> Any:
    proc = subprocess.run(
        [*_cli(), "--sysroot", str(sysroot), "--direct", *args, "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"nvmemd-query {args} failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout)


def _file_name(cell: dict[str, Any]) -> str:
    return f"{cell['name']}@{cell['offset']:x},{cell['bit_offset']:x}"


def _params(test: str) -> list[Any]:
    out = []
    for case, series in RECORDINGS:
        marks = []
        key = f"{case.name}@{series}"
        reason = KNOWN_DIVERGENT.get((test, key))
        if reason:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        out.append(pytest.param(case, series, id=key, marks=marks))
    return out


def test_fixtures_present() -> None:
    assert CASES, f"no recorded cases under {FIXTURES}"
    for case in CASES:
        spec = json.loads((case / "case.json").read_text())
        for series, (tarball, listing) in KERNELS.items():
            if series not in spec.get("kernels", KERNELS):
                assert spec.get("kernels_why"), f"{case.name}: say why it is not on {series}"
                continue
            assert (case / tarball).is_file(), (case.name, tarball)
            kernel = json.loads((case / listing).read_text())
            assert kernel["kernel"].startswith(series + "."), (case.name, kernel["kernel"])
            with tarfile.open(case / tarball) as tf:
                member = tf.extractfile("proc/sys/kernel/osrelease")
                assert member is not None
                assert member.read().decode().strip() == kernel["kernel"], case.name


@pytest.mark.parametrize(("case", "series"), _params("cells"))
def test_replay_cells(case: Path, series: str, unpacked: Any) -> None:
    kernel = _listing(case, series)
    sysroot = unpacked(case, series)
    ours = _query(sysroot, "cells")
    own_listing = {(p["provider"], c["file"]): (c["size"], c["value"])
                   for p in kernel["providers"] for c in p["cells"] or []}
    own_errors = {(p["provider"], c["file"]): c.get("error")
                  for p in kernel["providers"] for c in p["cells"] or []}
    if case.name in SAME_BOARD_REFERENCE:
        reference, why = SAME_BOARD_REFERENCE[case.name]
        kernel = _listing(FIXTURES / reference, series)
        assert kernel["providers"] != [], why

    invisible = {p["provider"] for p in kernel["providers"] if p.get("kernel_invisible")}
    want: dict[tuple[str, str], tuple[int, str | None]] = {}
    for prov in kernel["providers"]:
        if prov["provider"] in invisible:
            # the kernel parsed these cells but never published them
            assert prov["cells"] is None, f"{prov['provider']}: kernel listing should be absent"
            continue
        for c in prov["cells"] or []:
            want[(prov["provider"], c["file"])] = (c["size"], c["value"])

    got: dict[tuple[str, str], tuple[int, str | None]] = {}
    got_errors: dict[tuple[str, str], str | None] = {}
    invisible_sources: dict[str, set[str]] = {p: set() for p in invisible}
    for c in ours:
        if c["provider"] in invisible:
            invisible_sources[c["provider"]].add(c["source"])
            continue
        key = (c["provider"], _file_name(c))
        assert key not in got, f"nvmemd lists {key} twice"
        got[key] = (c["bytes"], c["value"])
        got_errors[key] = c.get("error")

    problems = []
    for key in sorted(want.keys() - got.keys()):
        problems.append(f"only the kernel has {key[0]}/{key[1]} {want[key]}")
    for key in sorted(got.keys() - want.keys()):
        problems.append(f"only nvmemd has {key[0]}/{key[1]} {got[key]}")
    for key in sorted(want.keys() & got.keys()):
        (ksize, kval), (osize, oval) = want[key], got[key]
        if ksize != osize:
            problems.append(f"{key[0]}/{key[1]}: size kernel {ksize}, nvmemd {osize}")
        if kval != oval:
            problems.append(f"{key[0]}/{key[1]}: value kernel {kval}, nvmemd {oval}")
    for prov, sources in sorted(invisible_sources.items()):
        if sources != {"u-boot-env"}:
            problems.append(f"{prov} (kernel-invisible): nvmemd sources {sorted(sources)}, "
                            "want cells with source u-boot-env")
    for key, listed in own_listing.items():
        if got.get(key) != listed:
            problems.append(f"this kernel lists {key[0]}/{key[1]} {listed}, nvmemd {got.get(key)}")
        if own_errors[key] is not None and got_errors.get(key) != own_errors[key]:
            problems.append(f"{key[0]}/{key[1]}: read error kernel {own_errors[key]!r}, "
                            f"nvmemd {got_errors.get(key)!r}")
    assert not problems, (f"{case.name} on {series} ({kernel['description']}):\n  "
                          + "\n  ".join(problems))


def test_same_board_references_differ_only_as_documented() -> None:
    """The reference pairs really are the same board, and the kernel really showed less."""
    for case, (reference, _why) in SAME_BOARD_REFERENCE.items():
        for name in ("board.dts", "image.py"):
            assert (FIXTURES / case / name).read_bytes() == \
                (FIXTURES / reference / name).read_bytes(), (case, name)
        for series in KERNELS:
            listings = [_listing(FIXTURES / c, series)["providers"] for c in (case, reference)]
            count = [sum(len(p["cells"] or []) for p in providers) for providers in listings]
            assert count[0] < count[1], (case, series, count)


@pytest.mark.parametrize(("case", "series"), _params("providers"))
def test_replay_providers(case: Path, series: str, unpacked: Any) -> None:
    kernel = _listing(case, series)
    sysroot = unpacked(case, series)
    ours = _query(sysroot, "providers")
    assert sorted(p["name"] for p in ours) == sorted(p["provider"] for p in kernel["providers"])
