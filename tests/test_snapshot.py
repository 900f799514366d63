"""`nvmemd-query snapshot`: a snapshot of a sysroot replays to identical cells."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from .sysroots import board_sysroot, query

RECORDINGS = sorted((Path(__file__).parent / "fixtures" / "realkernel").glob("*/sysroot.tar.gz"))


def unpack(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="tar")
    return dest


@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.parent.name for r in RECORDINGS])
def test_snapshot_of_a_recording_replays_identically(recording: Path, tmp_path: Path) -> None:
    original = unpack(recording, tmp_path / "original")
    archive = tmp_path / "snap.tar.gz"
    query(original, "snapshot", "--include-protected", "--max-provider-bytes", str(1 << 27),
          str(archive))
    replay = unpack(archive, tmp_path / "replay")
    for command in ("cells", "providers"):
        assert query(replay, command, "--json").stdout == \
            query(original, command, "--json").stdout, command
    info = json.loads((replay / "nvmemd-snapshot/info.json").read_text())
    assert info["protected_omitted"] == [] and info["truncated"] == []


def test_large_providers_are_cut_and_said_so(tmp_path: Path) -> None:
    root = board_sysroot("kernel-rules", tmp_path)
    archive = tmp_path / "snap.tar.gz"
    out = query(root, "snapshot", "--max-provider-bytes", "64", str(archive)).stdout.decode()
    assert "note: imx-ocotp0: first 64 of 256 bytes" in out


def test_protected_contents_need_the_option(tmp_path: Path) -> None:
    root = board_sysroot("kernel-rules", tmp_path)
    cells_dir = (root / "sys/bus/nvmem/devices/rmem4").resolve() / "cells"
    cells_dir.mkdir()
    (cells_dir / "fits@f0,0").write_bytes(b"0123456789abcdef")
    (cells_dir / "fits@f0,0").chmod(0o400)
    archive = tmp_path / "snap.tar.gz"
    out = query(root, "snapshot", str(archive)).stdout.decode()
    assert "left out (use --include-protected): " in out and "rmem4" in out
    replay = unpack(archive, tmp_path / "replay")
    info = json.loads((replay / "nvmemd-snapshot/info.json").read_text())
    assert "rmem4" in info["protected_omitted"] and "imx-ocotp0" not in info["protected_omitted"]
    assert (replay / "sys/bus/nvmem/devices/rmem4/nvmem").read_bytes() == b""
    assert (replay / "sys/bus/nvmem/devices/imx-ocotp0/nvmem").stat().st_size == 256
    assert not (replay / "sys/bus/nvmem/devices/rmem4/cells").exists()
    kernel = json.loads((replay / "nvmemd-snapshot/kernel-cells.json").read_text())
    assert kernel["kernel"] == "6.12.117+deb12-arm64"
    listing = {p["provider"]: p["cells"] for p in kernel["providers"]}
    assert listing["rmem4"] == [{"file": "fits@f0,0", "mode": "0400", "size": 16, "value": None,
                                 "error": "omitted (root-only; use --include-protected)"}]
    assert listing["imx-ocotp0"] is None
    # World-readable providers replay as they are.
    cells = {c["sysfs_name"]: c["value"]
             for c in json.loads(query(replay, "cells", "imx-ocotp0", "--json").stdout)}
    assert cells["mac-address@90,0"] == "112233445566"
