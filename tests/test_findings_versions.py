"""Findings on hand-built sysroots: version-gated opt-in, MAC addresses, U-Boot env-size."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from nvmemd.config import Config, load_config
from nvmemd.findings import kernel_findings
from nvmemd.registry import scan
from nvmemd.sysroot import Sysroot

from .sysroots import inline_sysroot, query, query_json

DTS = """/dts-v1/;
/ {
    efuse@400a4000 {
        compatible = "nxp,s32g2-ocotp";
        #address-cells = <1>;
        #size-cells = <1>;
        uid@10 { reg = <0x10 0x8>; };
    };
    eeprom@50 {
        compatible = "atmel,24c02";
        #address-cells = <1>;
        #size-cells = <1>;
        mac-address@0 { reg = <0 6>; };
    };
};
"""


def _providers() -> list[dict[str, object]]:
    return [
        {"name": "s32g-ocotp-nvmem0", "of_node": "/efuse@400a4000",
         "device": "platform/400a4000.efuse", "bus": "platform", "driver": "s32g-ocotp-nvmem",
         "mode": "0444", "size": 64, "image": {"fill": 0x5a}},
        {"name": "0-00500", "of_node": "/eeprom@50", "device": "platform/i2c-0/0-0050",
         "bus": "platform", "driver": "at24", "mode": "0444", "size": 256,
         "image": {"fill": 0x02}},
    ]


def test_version_gated_opt_in_and_mac_findings(tmp_path: Path) -> None:
    root = inline_sysroot(tmp_path, DTS, _providers())
    sysroot = Sysroot(str(root))
    for series, s32g_cells in (("6.12", 0), ("7.2", 1)):
        registry = scan(sysroot, Config(kernel_release=f"{series}.1"))
        assert len(registry.entries["s32g-ocotp-nvmem0"].cells) == s32g_cells, series
        found = kernel_findings(registry)
        differs = [f for f in found if f.kind == "legacy-differs"]
        assert [f.provider for f in differs] == ["s32g-ocotp-nvmem0"]
        other = "7.2" if series == "6.12" else "6.12"
        assert differs[0].kernels == (other,)
        assert ("creates" if other == "7.2" else "ignores") in differs[0].message
        at24 = [f for f in found if f.kind == "legacy-ignored" and f.provider == "0-00500"]
        assert len(at24) == 1 and at24[0].mac
        assert "a MAC address among them" in at24[0].message
    # the default configuration reads the sysroot's release: mksysroot writes 6.12.117
    assert load_config(sysroot).series() == "6.12"


ENV_DTS = """/dts-v1/;
/ {
    sram@0 {
        compatible = "nvmem-rmem";
        nvmem-layout { compatible = "u-boot,env"; env-size = <0x100>; };
    };
};
"""


def _env_image() -> str:
    body = b"ethaddr=02:11:22:33:44:55\0serial#=SIZED\0\0"
    body += b"\0" * (0x100 - 4 - len(body))
    return (struct.pack("<I", zlib.crc32(body)) + body).hex()


def test_u_boot_env_size_only_on_72(tmp_path: Path) -> None:
    provider = {"name": "rmem0", "of_node": "/sram@0", "device": "platform/0.sram",
                "bus": "platform", "driver": "rmem", "mode": "0444", "size": 0x400,
                "image": {"fill": 0xFF, "data": [{"offset": 0, "hex": _env_image()}]}}
    root = inline_sysroot(tmp_path, ENV_DTS, [provider])
    conf = tmp_path / "nvmemd.toml"
    conf.write_text('[kernel]\nkernel_version = "7.2"\n')
    on72 = json.loads(query(root, "--config", str(conf), "cells", "--json").stdout)
    assert {c["name"]: c["value"] for c in on72} == {
        "ethaddr": "021122334455", "serial#": b"SIZED".hex()}
    # 6.12 checks the CRC over the whole 1 KiB device: the layout fails, no cells
    assert query_json(root, "cells") == []
