"""Bad input gets a clear error naming the provider or node, and loses nothing else."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nvmemd.config import load_config
from nvmemd.errors import ProviderGoneError
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

from .sysroots import inline_sysroot, query, query_json

DTS = """/dts-v1/;
/ {
    a@0 {
        compatible = "nvmem-rmem";
        nvmem-layout {
            compatible = "fixed-layout";
            #address-cells = <1>;
            #size-cells = <1>;
            one@0 { reg = <0 4>; };
            two@4 { reg = <4 4>; };
        };
    };
    b@0 {
        compatible = "nvmem-rmem";
        nvmem-layout {
            compatible = "fixed-layout";
            #address-cells = <1>;
            #size-cells = <1>;
            three@0 { reg = <0 2>; };
        };
    };
};
"""


def provider(name: str, node: str, mode: str = "0444") -> dict[str, object]:
    return {"name": name, "of_node": node, "device": f"platform/{name}.sram", "bus": "platform",
            "driver": "rmem", "mode": mode, "size": 16,
            "image": {"fill": 0, "data": [{"offset": 0, "hex": "00112233445566778899"}]}}


@pytest.fixture
def sysroot(tmp_path: Path) -> Path:
    return inline_sysroot(tmp_path, DTS, [provider("rmem0", "/a@0"), provider("rmem1", "/b@0")])


def nvmem(root: Path, name: str) -> Path:
    return (root / "sys/bus/nvmem/devices" / name).resolve() / "nvmem"


def test_baseline(sysroot: Path) -> None:
    values = {c["sysfs_name"]: c["value"] for c in query_json(sysroot, "cells")}
    assert values == {"one@0,0": "00112233", "two@4,0": "44556677", "three@0,0": "0011"}


def test_non_utf8_node_name_is_kept_and_escaped(sysroot: Path) -> None:
    layout = sysroot / "sys/firmware/devicetree/base/a@0/nvmem-layout"
    (layout / "fixed-layout-bad").mkdir()
    bad = Path(os.fsdecode(bytes(layout) + b"/caf\xe9@8"))
    bad.mkdir()
    (bad / "reg").write_bytes(bytes.fromhex("0000000800000002"))
    (sysroot / "sys/firmware/fdt").unlink()  # the blob does not know the new node
    cells = query_json(sysroot, "cells", "rmem0")
    assert [c["sysfs_name"] for c in cells] == ["one@0,0", "two@4,0", "caf\\xe9@8,0"]
    assert cells[2]["value"] == "8899"


def test_dangling_of_node(sysroot: Path) -> None:
    shutil.rmtree(sysroot / "sys/firmware/devicetree/base/a@0")
    providers = {p["name"]: p for p in query_json(sysroot, "providers")}
    assert providers["rmem0"]["cells"] == 0
    assert "of_node /a@0 is missing from the device tree" in providers["rmem0"]["errors"][0]
    assert providers["rmem1"]["cells"] == 1


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_nvmem_not_a_file(sysroot: Path, kind: str) -> None:
    path = nvmem(sysroot, "rmem0")
    path.unlink()
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)
    proc = query(sysroot, "providers", "--json")
    providers = {p["name"]: p for p in json.loads(proc.stdout)}
    assert providers["rmem0"]["rejected"] is True
    assert "rmem0" in providers["rmem0"]["errors"][0]
    assert providers["rmem1"]["cells"] == 1
    proc = query(sysroot, "get", "one", check=False)
    assert proc.returncode == 3  # the broken provider has no cells
    proc = query(sysroot, "get", "rmem0:one", check=False)
    assert proc.returncode == 5 and b"rmem0: " in proc.stderr  # says why it has none
    proc = query(sysroot, "dump", "rmem1", "--offset", "17", check=False)
    assert proc.returncode == 2 and b"offset 0x11 is past the end of rmem1 (16 bytes)" in \
        proc.stderr
    assert query(sysroot, "get", "three").stdout == b"0011\n"


def test_symlink_loop_is_reported_not_followed(sysroot: Path) -> None:
    link = sysroot / "sys/bus/nvmem/devices/loop0"
    os.symlink("loop0", link)
    proc = query(sysroot, "providers", "--json")
    providers = {p["name"]: p for p in json.loads(proc.stdout)}
    assert "too many levels of symbolic links" in providers["loop0"]["errors"][0]
    assert providers["rmem1"]["cells"] == 1


def test_truncated_nvmem_file(sysroot: Path) -> None:
    with open(nvmem(sysroot, "rmem0"), "r+b") as f:
        f.truncate(6)
    cells = {c["sysfs_name"]: c for c in query_json(sysroot, "cells", "rmem0")}
    assert cells["one@0,0"]["value"] == "00112233"
    assert cells["two@4,0"]["value"] is None
    # rmem_read() on 6.12 (read_bounds): -EIO, what `cat cells/two@4,0` says
    assert cells["two@4,0"]["error"] == "Input/output error"
    assert "past the end of the provider (6 bytes)" in cells["two@4,0"]["error_detail"]


def test_provider_removed_between_listing_and_reading(sysroot: Path) -> None:
    root = Sysroot(str(sysroot))
    registry = scan(root, load_config(root))
    entry, cell = registry.resolve_cell("one")
    shutil.rmtree(nvmem(sysroot, "rmem0").parent)
    with pytest.raises(ProviderGoneError, match="rmem0: provider is gone"):
        registry.read_cell(entry, cell)


@pytest.mark.parametrize(("text", "message"), [
    ("[kernel\n", "invalid TOML"),
    ("[kernel]\nlegacy_cells = 'sometimes'\n", "kernel.legacy_cells: must be one of"),
    ("[kernel]\nextra = 1\n", "kernel.extra: unknown key"),
    ("[access]\ngroups = [1]\n", "access.groups: must be a list of non-empty strings"),
    ("[daemon]\n", "daemon: unknown section"),
])
def test_invalid_configuration_names_the_key(sysroot: Path, text: str, message: str) -> None:
    conf = sysroot / "etc/nvmemd/nvmemd.toml"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(text)
    proc = query(sysroot, "cells", check=False)
    assert proc.returncode == 2
    assert "/etc/nvmemd/nvmemd.toml" in proc.stderr.decode() and message in proc.stderr.decode()
    assert b"Traceback" not in proc.stderr


def test_unreadable_explicit_config(sysroot: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "nvmemd.cli", "--sysroot", str(sysroot),
                           "--config", str(tmp_path / "missing.toml"), "cells"],
                          capture_output=True, timeout=60)
    assert proc.returncode == 2 and b"missing.toml: cannot read" in proc.stderr


def test_config_adds_opt_in_compatibles(sysroot: Path) -> None:
    legacy = sysroot / "sys/firmware/devicetree/base/b@0/legacy@8"
    legacy.mkdir()
    (legacy / "reg").write_bytes(bytes.fromhex("0000000800000001"))
    assert "legacy@8,0" not in {c["sysfs_name"] for c in query_json(sysroot, "cells")}
    conf = sysroot / "etc/nvmemd/nvmemd.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text('[kernel]\nextra_legacy_compatibles = ["NVMEM-RMEM"]\n')
    got = {c["sysfs_name"]: c["value"] for c in query_json(sysroot, "cells")}
    assert got["legacy@8,0"] == "88"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged uid")
def test_root_only_provider_denied_to_unprivileged_user(tmp_path: Path) -> None:
    shared = Path("/tmp") / f"nvmemd-perm-{os.getpid()}"
    shutil.rmtree(shared, ignore_errors=True)
    try:
        root = inline_sysroot(shared, DTS, [provider("rmem0", "/a@0", "0400"),
                                            provider("rmem1", "/b@0", "0444")])
        for dirpath, _, _ in os.walk(shared):
            os.chmod(dirpath, 0o755)
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
               sys.executable, "-m", "nvmemd.cli", "--sysroot", str(root), "--direct"]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
        denied = subprocess.run([*cmd, "get", "one"], capture_output=True, env=env, timeout=60)
        assert denied.returncode == 4, denied.stderr
        assert b"rmem0: permission denied" in denied.stderr
        allowed = subprocess.run([*cmd, "get", "three"], capture_output=True, env=env, timeout=60)
        assert allowed.returncode == 0 and allowed.stdout == b"0011\n"
        listing = subprocess.run([*cmd, "cells", "--json"], capture_output=True, env=env,
                                 timeout=60)
        cells = {c["sysfs_name"]: c for c in json.loads(listing.stdout)}
        assert cells["one@0,0"]["value"] is None and "permission denied" in \
            cells["one@0,0"]["error"]
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_verify_against_kernel_cells(sysroot: Path) -> None:
    cells_dir = nvmem(sysroot, "rmem0").parent / "cells"
    cells_dir.mkdir()
    (cells_dir / "one@0,0").write_bytes(bytes.fromhex("00112233"))
    (cells_dir / "two@4,0").write_bytes(bytes.fromhex("44556677"))
    ok = query(sysroot, "verify")
    assert b"checked rmem0: 2 kernel cell(s)" in ok.stdout
    (cells_dir / "two@4,0").write_bytes(bytes.fromhex("deadbeef"))
    (cells_dir / "extra@8,0").write_bytes(b"\0")
    bad = query(sysroot, "verify", check=False)
    assert bad.returncode == 1
    out = bad.stdout.decode()
    assert "rmem0: two@4,0: kernel deadbeef != nvmemd 44556677" in out
    assert "rmem0: kernel has cell extra@8,0, nvmemd does not" in out
