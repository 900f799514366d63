"""nvmemd/query.py: what every front end answers, as one caller may see it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvmemd.config import load_config
from nvmemd.errors import AccessDeniedError, InvalidArgumentError
from nvmemd.query import DUMP_CHUNK, Query
from nvmemd.registry import Registry, scan
from nvmemd.sysroot import Sysroot


@pytest.fixture(scope="module")
def registry(demo_board_sysroot: Path) -> Registry:
    root = Sysroot(str(demo_board_sysroot))
    return scan(root, load_config(root, None))


def test_an_unprivileged_query_refuses_root_only_bytes(registry: Registry) -> None:
    caller = Query(registry, may_read_protected=False)
    with pytest.raises(AccessDeniedError, match="board-eeprom1: permission denied"):
        caller.get("board-eeprom1:serial-number", None)
    with pytest.raises(AccessDeniedError):
        caller.dump("board-eeprom1", 0, 16)
    # world-readable providers are unaffected
    record, value = caller.get("imx-ocotp0:unique-id", None)
    assert value == bytes.fromhex("0123456789abcdef") and record["provider"] == "imx-ocotp0"


def test_cell_records_say_why_a_value_is_missing(registry: Registry) -> None:
    records = {(r["provider"], r["name"]): r
               for r in Query(registry, may_read_protected=False).cells()}
    denied = records[("board-eeprom1", "serial-number")]
    assert denied["value"] is None and "permission denied" in denied["error"]
    assert records[("imx-ocotp0", "mac-address")]["value"] == "000f12345678"


def test_the_privileged_query_reads_everything(registry: Registry) -> None:
    records = Query(registry).cells()
    assert all(r["value"] is not None for r in records), [r for r in records if not r["value"]]


def test_dump_reads_in_bounded_chunks(registry: Registry) -> None:
    query = Query(registry)
    size = registry.provider("mtd0").provider.size
    assert size > DUMP_CHUNK  # so that the loop runs more than once
    data = query.dump("mtd0", 0, None)
    assert len(data) == size
    assert data[100:200] == registry.read_provider(registry.provider("mtd0"), 100, 100)
    assert query.dump("mtd0", size, None) == b""
    with pytest.raises(InvalidArgumentError, match="past the end"):
        query.dump("mtd0", size + 1, None)


def test_consumer_lookup_follows_the_netdev(registry: Registry) -> None:
    record, value = Query(registry).get_consumer("mac-address", netdev="eth0")
    assert value == bytes.fromhex("000f12345678")  # imx-ocotp's reversal undone
    assert record["consumer"]["index"] == 0


def test_verify_compares_with_the_kernels_cells(tmp_path: Path, demo_board_sysroot: Path
                                                ) -> None:
    import shutil

    root = tmp_path / "root"
    shutil.copytree(demo_board_sysroot, root, symlinks=True)
    sysroot = Sysroot(str(root))
    registry = scan(sysroot, load_config(sysroot, None))
    entry = registry.provider("imx-ocotp0")
    cells = Path(sysroot.host_path(entry.provider.sys_path + "/cells"))
    cells.mkdir()
    for cell in entry.cells:
        (cells / cell.sysfs_name).write_bytes(registry.read_cell(entry, cell))
    (cells / "extra@0,0").write_bytes(b"\0")
    registry = scan(sysroot, load_config(sysroot, None))  # has_kernel_cells now
    report = Query(registry).verify()
    assert report["checked"] == ["imx-ocotp0: 4 kernel cell(s)"]
    assert report["differences"] == ["imx-ocotp0: kernel has cell extra@0,0, nvmemd does not"]
