"""`nvmemd-query snapshot`: a snapshot of a sysroot replays to identical cells."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from nvmemd import snapshot
from nvmemd.sysroot import Sysroot

from .sysroots import board_sysroot, break_sysroot, query, query_as_nobody

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


def _demo(tmp: Path) -> Path:
    from mksysroot import build_sysroot

    demo = Path(__file__).parents[1] / "examples" / "demo-board"
    import tomllib

    return build_sysroot(demo / "board.dts", tomllib.loads((demo / "board.toml").read_text()),
                         tmp / "demo")


SOURCES = [*RECORDINGS, None]


@pytest.mark.parametrize("recording", SOURCES,
                         ids=[r.parent.name if r else "demo-board" for r in SOURCES])
def test_snapshot_without_protected_replays_and_says_not_recorded(
        recording: Path | None, tmp_path: Path) -> None:
    """Issue 12 #3: unpacked with plain tar, a snapshot answers providers/cells/get as the
    system did, except the values of root-only providers: their SIZE is the real one and
    their cells say "not recorded" (not "extends past the end of the provider")."""
    import subprocess

    original = unpack(recording, tmp_path / "original") if recording else _demo(tmp_path)
    archive = tmp_path / "snap.tar.gz"
    query(original, "snapshot", "--max-provider-bytes", str(1 << 27), str(archive))
    replay = tmp_path / "replay"
    replay.mkdir()
    subprocess.run(["tar", "-x", "-f", str(archive), "-C", str(replay)], check=True)
    omitted = set(json.loads((replay / "nvmemd-snapshot/info.json").read_text())
                  ["protected_omitted"])

    # Omitted providers keep name, type, SIZE, access; cells a layout parses from the
    # contents (ONIE TLV, U-Boot env) cannot be known: the provider's error says why.
    unchanged = ("cells", "errors", "validity", "notes", "rejected")
    prov_b = json.loads(query(original, "providers", "--json").stdout)
    prov_a = json.loads(query(replay, "providers", "--json").stdout)
    for b, a in zip(prov_b, prov_a, strict=True):
        if b["name"] not in omitted:
            assert a == b
            continue
        assert {k: v for k, v in a.items() if k not in unchanged} == \
            {k: v for k, v in b.items() if k not in unchanged}
        assert all("not recorded" in e for e in a["errors"]), a["errors"]
        assert a["cells"] == b["cells"] or a["errors"], a
    if not omitted:
        assert query(replay, "providers").stdout == query(original, "providers").stdout
    before = json.loads(query(original, "cells", "--json").stdout)
    after = json.loads(query(replay, "cells", "--json").stdout)
    by_name = {(c["provider"], c["sysfs_name"]): c for c in before}
    assert [c for c in before if c["provider"] not in omitted] == \
        [c for c in after if c["provider"] not in omitted]
    readable = [f"{c['provider']}/{c['sysfs_name']}" for c in before
                if c["provider"] not in omitted and c.get("value") is not None]
    for a in after:
        if a["provider"] in omitted:
            b = by_name[(a["provider"], a["sysfs_name"])]
            if a["value"] is not None or "not recorded" not in a["error"]:
                # nothing was read: the driver's bounds decided (read_bounds), as on the
                # original (zero-length cells, cells past the provider's recorded size)
                assert (a["value"], a.get("error")) == (b["value"], b.get("error")), (a, b)
                continue
            assert {k: v for k, v in a.items() if k not in ("value", "error")} == \
                {k: b[k] for k in a if k not in ("value", "error")}
    if readable:
        args = ("get", *readable, "--json")
        assert query(replay, *args).stdout == query(original, *args).stdout
    for provider in sorted(omitted):
        cell = next((c for c in after if c["provider"] == provider), None)
        if cell is not None:
            proc = query(replay, "get", f"{provider}/{cell['sysfs_name']}", check=False)
            assert proc.returncode == 5 and b"not recorded" in proc.stderr, proc.stderr
    if recording is None:
        assert omitted, "the demo board has a root-only provider"


# --- what cannot be read, what cannot be written --------------------------------------


def test_unreadable_devices_directory_is_named_not_the_archive(demo_copy: Path) -> None:
    """As nobody, with sys/bus/nvmem/devices at mode 000: the directory that could not be
    read is the error (4), not the archive (5); no partial archive is left."""
    out_dir = Path(tempfile.mkdtemp(prefix="nvmemd-snap-"))
    try:
        out_dir.chmod(0o777)  # nobody may write here: only the read side fails
        break_sysroot(demo_copy, "000:sys/bus/nvmem/devices")
        proc = query_as_nobody(demo_copy, "snapshot", str(out_dir / "out.tar.gz"))
        assert (proc.returncode, proc.stderr) == (
            4, b"nvmemd-query: /sys/bus/nvmem/devices: permission denied\n")
        assert list(out_dir.iterdir()) == []
    finally:
        shutil.rmtree(out_dir)


def test_provider_link_loop_is_noted_and_recorded(demo_copy: Path, tmp_path: Path) -> None:
    """One provider's nvmem a link loop: noted like an unreadable nvmem, the rest recorded;
    the loop is kept as it is, so the replay says what the system said."""
    nvmem = (demo_copy / "sys/bus/nvmem/devices/mtd1").resolve() / "nvmem"
    nvmem.unlink()
    nvmem.symlink_to("nvmem")
    archive = tmp_path / "snap.tar.gz"
    proc = query(demo_copy, "snapshot", str(archive))
    assert "note: mtd1: too many levels of symbolic links resolving " in proc.stdout.decode()
    replay = tmp_path / "replay"
    replay.mkdir()
    subprocess.run(["tar", "-x", "-f", str(archive), "-C", str(replay)], check=True)
    info = json.loads((replay / "nvmemd-snapshot/info.json").read_text())
    assert "mtd1" in info["providers"] and "u-boot-env0" in info["providers"]
    before = {p["name"]: p for p in json.loads(query(demo_copy, "providers", "--json").stdout)}
    after = {p["name"]: p for p in json.loads(query(replay, "providers", "--json").stdout)}
    assert after["mtd1"] == before["mtd1"]
    assert "too many levels of symbolic links" in after["mtd1"]["errors"][0]
    assert query(replay, "get", "imx-ocotp0/mac-address").stdout == \
        query(demo_copy, "get", "imx-ocotp0/mac-address").stdout


def test_failed_snapshot_leaves_no_partial_file(demo_board_sysroot: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The archive takes its name once complete: a failure late in the snapshot (here an
    interrupt after the device tree) leaves nothing, or the previous archive as it was."""
    tree = snapshot._Writer.tree

    def interrupted(self: snapshot._Writer, *args: object) -> None:
        tree(self, *args)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(snapshot._Writer, "tree", interrupted)
    out = tmp_path / "snap.tar.gz"
    with pytest.raises(KeyboardInterrupt):
        snapshot.write_snapshot(Sysroot(str(demo_board_sysroot)), str(out))
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"the previous archive")
    with pytest.raises(KeyboardInterrupt):
        snapshot.write_snapshot(Sysroot(str(demo_board_sysroot)), str(out))
    assert list(tmp_path.iterdir()) == [out] and out.read_bytes() == b"the previous archive"


def test_snapshot_through_a_link_keeps_the_link(demo_board_sysroot: Path,
                                                tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "snap.tar.gz"
    link.symlink_to("real/board.tar.gz")
    query(demo_board_sysroot, "snapshot", str(link))
    assert link.is_symlink() and tarfile.is_tarfile(tmp_path / "real/board.tar.gz")
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["board.tar.gz"]


# --- what a snapshot could not keep: the provider's size stays, its bytes say why ----------


def _snapshot_and_unpack(demo: Path, tmp: Path, *args: str, as_nobody: bool = False) -> Path:
    out = Path(tempfile.mkdtemp(prefix="nvmemd-snap-", dir=tmp))
    out.chmod(0o777)  # nobody writes the archive here
    run = query_as_nobody if as_nobody else query
    proc = run(demo, "snapshot", *args, str(out / "snap.tar.gz"))
    assert proc.returncode == 0, proc.stderr
    replay = out / "replay"
    replay.mkdir()
    subprocess.run(["tar", "-x", "-f", str(out / "snap.tar.gz"), "-C", str(replay)], check=True)
    return replay


def _sizes(root: Path) -> dict[str, int]:
    return {p["name"]: p["size"] for p in json.loads(query(root, "providers", "--json").stdout)}


def test_snapshot_by_a_user_who_cannot_read_a_provider(demo_copy: Path, tmp_path: Path) -> None:
    """--include-protected as nobody: the root-only providers cannot be read; the replay
    keeps their size and says why their cells have no value (was: SIZE 0, "extends past
    the end of the provider (0 bytes)")."""
    tmp = Path(tempfile.mkdtemp(prefix="nvmemd-"))
    tmp.chmod(0o755)
    try:
        replay = _snapshot_and_unpack(demo_copy, tmp, "--include-protected", as_nobody=True)
        assert _sizes(replay) == _sizes(demo_copy)
        proc = query(replay, "get", "board-eeprom1/serial-number", check=False)
        assert proc.returncode == 5
        message = proc.stderr.decode()
        assert message.startswith("nvmemd-query: board-eeprom1: not recorded (the snapshot "
                                  "could not read it: /sys/devices/"), message
        assert message.endswith("/board-eeprom1/nvmem: permission denied)\n"), message
        # what nobody could read is there, byte for byte
        assert query(replay, "get", "imx-ocotp0/unique-id").stdout == \
            query(demo_copy, "get", "imx-ocotp0/unique-id").stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_snapshot_cut_at_max_provider_bytes_keeps_the_size(demo_copy: Path,
                                                           tmp_path: Path) -> None:
    replay = _snapshot_and_unpack(demo_copy, tmp_path, "--include-protected",
                                  "--max-provider-bytes", "64")
    assert _sizes(replay) == _sizes(demo_copy)
    # a cell inside the first 64 bytes reads as on the board; one past them says why
    assert query(replay, "get", "board-eeprom1/serial-number").stdout == \
        query(demo_copy, "get", "board-eeprom1/serial-number").stdout
    proc = query(replay, "get", "board-eeprom1/mac-address", check=False)
    assert proc.returncode == 5
    assert proc.stderr.decode() == (
        "nvmemd-query: board-eeprom1: bytes from 0x40 not recorded (the snapshot kept the "
        "first 64 bytes (--max-provider-bytes))\n")
    # a snapshot of the replay keeps the real size and the reason
    again = _snapshot_and_unpack(replay, tmp_path, "--include-protected")
    assert _sizes(again) == _sizes(demo_copy)
    assert query(again, "get", "board-eeprom1/mac-address", check=False).stderr == proc.stderr


def test_dump_of_what_a_snapshot_did_not_record(demo_copy: Path, tmp_path: Path) -> None:
    """dump says "not recorded" too (was: an empty dump, exit 0, or "offset past the end
    (0 bytes)")."""
    replay = _snapshot_and_unpack(demo_copy, tmp_path)
    for args in (("dump", "board-eeprom1"), ("dump", "board-eeprom1", "--offset", "16",
                                             "--length", "16")):
        proc = query(replay, *args, check=False)
        assert proc.returncode == 5, (args, proc.stdout)
        assert proc.stderr.decode() == ("nvmemd-query: board-eeprom1: not recorded (root-only; "
                                        "the snapshot was taken without --include-protected)\n")
    assert query(replay, "dump", "imx-ocotp0", "--length", "16").stdout == \
        query(demo_copy, "dump", "imx-ocotp0", "--length", "16").stdout


def test_snapshot_to_a_terminal_is_refused(demo_copy: Path) -> None:
    """As gzip refuses to: compressed bytes on a terminal are no use to anyone."""
    import os
    import sys

    controller, terminal = os.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "nvmemd.cli", "--sysroot", str(demo_copy),
                               "snapshot", "-"], stdout=terminal, stderr=subprocess.PIPE,
                              timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 2
    assert b"standard output is a terminal" in proc.stderr
