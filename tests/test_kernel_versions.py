"""Version-aware rules (6.12 / 7.2), the read-bounds table and the findings built on them."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from nvmemd.config import Config, load_config
from nvmemd.findings import kernel_findings
from nvmemd.kernel_rules import cell_rules
from nvmemd.kernel_version import SERIES, VERSION_CHANGES, series_for
from nvmemd.providers import Provider
from nvmemd.read_bounds import CASES, READ_BOUNDS, classify, driver_of, rule_for, verdict
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

from .sysroots import query, query_json

FIXTURES = Path(__file__).parent / "fixtures" / "realkernel"


def _unpack(case: str, series: str, dest: Path) -> Path:
    name = "sysroot.tar.gz" if series == "6.12" else f"sysroot-{series}.tar.gz"
    with tarfile.open(FIXTURES / case / name) as tf:
        tf.extractall(dest, filter="tar")
    return dest


def _provider(name: str = "rmem0", size: int = 0x1000, compatible: tuple[str, ...] = (),
              driver: str | None = None, subsystem: str | None = "platform") -> Provider:
    return Provider(name=name, sys_path=f"/sys/devices/x/{name}", type="Unknown", size=size,
                    mode=0o444, force_ro=None, of_node="/x", compatible=compatible,
                    driver=driver, parent_subsystem=subsystem, mtd_type=None,
                    has_kernel_cells=True)


@pytest.mark.parametrize(("release", "series"), [
    ("6.12.117+deb12-arm64", "6.12"), ("7.2.13+deb14-arm64", "7.2"), ("7.1.9", "6.12"),
    ("7.10.0", "7.2"), ("6.1.0-30-arm64", "6.12"), ("", "6.12"), (None, "6.12"),
    ("7.2", "7.2"),
])
def test_series_for_release(release: str | None, series: str) -> None:
    assert series_for(release) == series


def test_every_modelled_driver_has_one_row_per_series() -> None:
    drivers = {row.driver for row in READ_BOUNDS}
    for d in drivers:
        for s in SERIES:
            rows = [r for r in READ_BOUNDS if r.driver == d and s in r.series]
            assert len(rows) == 1, (d, s, rows)
    for row in READ_BOUNDS:
        # every row cites the kernel file and the function it was read from
        assert re.match(r"^drivers/\S+\.c: \w+\(\)", row.source), row.source


def test_rmem_is_the_driver_whose_bounds_changed() -> None:
    changed = {row.driver for row in READ_BOUNDS if row.series != SERIES}
    assert changed == {"rmem"}
    old, new = rule_for("rmem", "6.12"), rule_for("rmem", "7.2")
    assert old is not None and new is not None
    assert [old.outcome(c) for c in CASES] == ["ok", "ok", "EIO", "EIO"]
    assert [new.outcome(c) for c in CASES] == ["ok", "EIO", "EIO", "EIO"]
    assert {c.key for c in VERSION_CHANGES} >= {"rmem-bounds", "u-boot-env-size",
                                                "s32g-ocotp-legacy", "cell-table-api"}


@pytest.mark.parametrize(("offset", "nbytes", "case"), [
    (0, 4, None), (0xFFC, 4, None), (0x10, 0, "zero-length"), (0x1000, 0, "zero-length"),
    (0x1001, 0, "zero-length-past-end"), (0xFFE, 4, "straddle"), (0x1000, 1, "straddle"),
    (0x1001, 1, "past-end"),
])
def test_classify(offset: int, nbytes: int, case: str | None) -> None:
    assert classify(offset, nbytes, 0x1000) == case


def test_driver_identification() -> None:
    assert driver_of(_provider(compatible=("nvmem-rmem",))) == "rmem"
    assert driver_of(_provider(compatible=("mobileye,eyeq5-bootloader-config",))) == "rmem"
    assert driver_of(_provider(compatible=("brcm,nvram",))) == "brcm-nvram"
    assert driver_of(_provider("u-boot-env0", compatible=("u-boot,env",),
                               subsystem="platform")) == "u-boot-env"
    assert driver_of(_provider("mtd3", subsystem="mtd")) == "mtd"
    assert driver_of(_provider("0-00500", driver="at24", subsystem="i2c")) == "at24"
    assert driver_of(_provider("ds1307_nvram0", driver="rtc-ds1307", subsystem="i2c")) \
        == "rtc-ds1307"
    assert driver_of(_provider("foo0", compatible=("acme,otp",), driver="acme")) is None


def test_verdict_texts_are_the_kernels() -> None:
    p = _provider(compatible=("nvmem-rmem",))
    assert verdict(p, 0x2000, 0, "6.12").error is None
    assert verdict(p, 0x2000, 0, "7.2").error == "Input/output error"
    mtd = _provider("mtd0", subsystem="mtd")
    assert verdict(mtd, 0x2000, 0, "6.12").error == "Invalid argument"
    assert verdict(mtd, 0x1000, 0, "6.12").error is None


def test_version_gated_opt_in() -> None:
    s32g = _provider("s32g-ocotp0", compatible=("nxp,s32g2-ocotp",))
    assert cell_rules(s32g, series="7.2").legacy_cells
    assert not cell_rules(s32g, series="6.12").legacy_cells
    rtc = _provider("s35390a_nvram0", compatible=("sii,s35390a",), driver="rtc-s35390a")
    assert cell_rules(rtc, series="7.2").legacy_cells
    assert not cell_rules(rtc, series="6.12").legacy_cells


def test_config_kernel_version(tmp_path: Path) -> None:
    root = _unpack("rmem-read-bounds", "6.12", tmp_path / "root")
    sysroot = Sysroot(str(root))
    assert load_config(sysroot).series() == "6.12"
    conf = tmp_path / "nvmemd.toml"
    conf.write_text('[kernel]\nkernel_version = "7.2"\n')
    assert load_config(sysroot, str(conf)).series() == "7.2"
    # the running 6.12 kernel read the empty cell past the end; 7.2's rules fail it
    by_name = {c["sysfs_name"]: c for c in query_json(root, "cells")}
    assert by_name["empty-past-end@2000,0"]["value"] == ""
    forced = {c["sysfs_name"]: c
              for c in json.loads(query(root, "--config", str(conf), "cells", "--json").stdout)}
    assert forced["empty-past-end@2000,0"]["value"] is None
    assert forced["empty-past-end@2000,0"]["error"] == "Input/output error"
    assert "rmem_read()" in forced["empty-past-end@2000,0"]["error_detail"]
    conf.write_text('[kernel]\nkernel_version = "6.13"\n')
    bad = query(root, "--config", str(conf), "cells", check=False)
    assert bad.returncode == 2 and b"kernel.kernel_version" in bad.stderr


def test_get_reports_the_kernels_error(tmp_path: Path) -> None:
    root = _unpack("rmem-read-bounds", "7.2", tmp_path / "root")
    out = query(root, "get", "rmem0:empty-past-end@2000,0", check=False)
    assert out.returncode != 0
    assert b"Input/output error" in out.stderr
    assert query(root, "get", "rmem0:empty-at-end@1000,0", "--format", "hex").stdout == b"\n"


def test_findings_read_bounds_name_the_kernels(tmp_path: Path) -> None:
    root = _unpack("rmem-read-bounds", "6.12", tmp_path / "root")
    sysroot = Sysroot(str(root))
    registry = scan(sysroot, load_config(sysroot))
    found = {f.cells[0]: f for f in kernel_findings(registry) if f.kind == "read-bounds"}
    assert found["empty-past-end@2000,0"].kernels == ("7.2",)
    assert "reads (ok) on 6.12 (running)" in found["empty-past-end@2000,0"].message
    assert "fails with EIO on 7.2" in found["empty-past-end@2000,0"].message
    assert found["straddle@ffe,0"].kernels == ("6.12", "7.2")
    assert "empty-at-end@1000,0" not in found and "head@0,0" not in found


def test_findings_legacy_cells_ignored(tmp_path: Path) -> None:
    root = _unpack("imx8mp-i2c-eeprom-rtc", "7.2", tmp_path / "root")
    sysroot = Sysroot(str(root))
    registry = scan(sysroot, load_config(sysroot))
    legacy = [f for f in kernel_findings(registry) if f.kind == "legacy-ignored"]
    assert [f.provider for f in legacy] == ["3-00501"]
    assert legacy[0].cells == ("/soc@0/bus@30800000/i2c@30a50000/eeprom@50/legacy-ignored@0",)
    assert "1 legacy cell(s) are ignored" in legacy[0].message and not legacy[0].mac
    # the opted-in RTC keeps its legacy cells: nothing to say about it
    assert not [f for f in kernel_findings(registry) if f.provider == "ds1307_nvram0"
                and f.kind.startswith("legacy")]
    text = query(root, "verify", check=False).stdout.decode()
    assert "FINDING 3-00501: these 1 legacy cell(s) are ignored" in text


def test_findings_with_legacy_mode_all_say_nothing_about_legacy(tmp_path: Path) -> None:
    root = _unpack("imx8mp-i2c-eeprom-rtc", "7.2", tmp_path / "root")
    sysroot = Sysroot(str(root))
    registry = scan(sysroot, Config(legacy_cells="all", kernel_release="7.2.13"))
    assert not [f for f in kernel_findings(registry) if f.kind == "legacy-ignored"]


def test_snapshot_keeps_the_release_and_so_the_rules(tmp_path: Path) -> None:
    root = _unpack("rmem-read-bounds", "7.2", tmp_path / "root")
    archive = tmp_path / "snap.tar.gz"
    query(root, "snapshot", "--include-protected", str(archive))
    replay = tmp_path / "replay"
    with tarfile.open(archive) as tf:
        tf.extractall(replay, filter="tar")
    assert (replay / "proc/sys/kernel/osrelease").read_text().strip() == "7.2.13+deb14-arm64"
    assert query(replay, "cells", "--json").stdout == query(root, "cells", "--json").stdout
