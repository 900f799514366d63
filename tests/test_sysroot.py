"""nvmemd.sysroot: links resolve inside the sysroot, loops are reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nvmemd.errors import SysrootError
from nvmemd.sysroot import Sysroot


@pytest.fixture
def root(tmp_path: Path) -> Sysroot:
    (tmp_path / "sys/firmware/devicetree/base/soc").mkdir(parents=True)
    (tmp_path / "sys/firmware/devicetree/base/soc/compatible").write_bytes(b"x\0")
    (tmp_path / "proc").mkdir()
    return Sysroot(str(tmp_path))


def test_absolute_link_is_rerooted(root: Sysroot) -> None:
    os.symlink("/sys/firmware/devicetree/base", Path(root.root) / "proc/device-tree")
    assert root.resolve("/proc/device-tree/soc") == "/sys/firmware/devicetree/base/soc"
    assert root.read_bytes("/proc/device-tree/soc/compatible") == b"x\0"


def test_relative_link(root: Sysroot) -> None:
    os.symlink("../sys/firmware/devicetree/base", Path(root.root) / "proc/device-tree")
    assert root.resolve("/proc/device-tree/soc") == "/sys/firmware/devicetree/base/soc"


def test_dotdot_cannot_escape(root: Sysroot, tmp_path: Path) -> None:
    os.symlink("../../../../../../../etc", Path(root.root) / "proc/escape")
    assert root.resolve("/proc/escape/passwd") == "/etc/passwd"
    assert root.host_path(root.resolve("/proc/escape/passwd")) == str(tmp_path / "etc/passwd")
    assert not root.exists("/proc/escape/passwd")


def test_loop_is_reported(root: Sysroot) -> None:
    os.symlink("b", Path(root.root) / "proc/a")
    os.symlink("a", Path(root.root) / "proc/b")
    with pytest.raises(SysrootError, match="too many levels of symbolic links"):
        root.resolve("/proc/a/x")
    assert not root.exists("/proc/a")


def test_from_arg_prefers_option_then_environment(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("NVMEMD_SYSROOT", str(tmp_path / "env"))
    assert Sysroot.from_arg(None).root == str(tmp_path / "env")
    assert Sysroot.from_arg(str(tmp_path / "opt")).root == str(tmp_path / "opt")
    monkeypatch.delenv("NVMEMD_SYSROOT")
    assert Sysroot.from_arg(None).root == "/"
