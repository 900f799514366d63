"""Checksum status of self-describing media on D-Bus (Provider.Validity), via busctl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nvmemd.dbus.paths import provider_path

pytestmark = pytest.mark.integration

PROVIDER = "org.nvmemd.Nvmem1.Provider"


def validity(daemon: Any, name: str) -> list[dict[str, Any]]:
    reply = daemon.busctl_json("get-property", "org.nvmemd.Nvmem1", provider_path(name),
                               PROVIDER, "Validity")
    return [{k: v["data"] for k, v in item.items()} for item in reply["data"]]


def test_validity_of_a_valid_and_a_corrupted_environment(
        start_daemon: Any, demo_copy: Path) -> None:
    sysroot = demo_copy
    daemon = start_daemon(["--sysroot", str(sysroot)])
    [env] = validity(daemon, "u-boot-env0")
    assert env["layout"] == "u-boot-env" and env["status"] == "valid"
    assert env["expected"] == env["found"]
    assert validity(daemon, "board-eeprom1") == []  # a fixed layout has no checksum

    nvmem = (sysroot / "sys/bus/nvmem/devices/u-boot-env0/nvmem").resolve()
    data = bytearray(nvmem.read_bytes())
    data[10] ^= 0xFF
    nvmem.write_bytes(bytes(data))
    daemon.call("/org/nvmemd/Nvmem1", "org.nvmemd.Nvmem1.Manager", "Reload")
    [env] = validity(daemon, "u-boot-env0")
    assert env["status"] == "invalid" and env["expected"] != env["found"]
    assert daemon.query("cells", "u-boot-env0", "--json").stdout.strip() == b"[]"
