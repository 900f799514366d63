"""nvmemd.sysroot: links resolve inside the sysroot, loops are reported."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from nvmemd.errors import SysrootError
from nvmemd.providers import list_provider_names
from nvmemd.sysroot import Sysroot

from .sysroots import break_sysroot


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


# --- validate(): absent is a warning, anything else an error ---------------------------


def test_validate_warns_only_when_the_bus_is_absent(tmp_path: Path) -> None:
    (tmp_path / "sys").mkdir()
    warning = Sysroot(str(tmp_path)).validate()
    assert warning is not None and warning.startswith(f"no /sys/bus/nvmem under {tmp_path}:")
    (tmp_path / "sys/bus/nvmem/devices").mkdir(parents=True)
    assert Sysroot(str(tmp_path)).validate() is None


@pytest.mark.parametrize(("how", "message"), [
    ("loop:sys/bus/nvmem", "too many levels of symbolic links resolving /sys/bus/nvmem"),
    ("loop:sys/bus/nvmem/devices",
     "too many levels of symbolic links resolving /sys/bus/nvmem/devices"),
    ("file:sys/bus/nvmem", "/sys/bus/nvmem: not a directory"),
    ("file:sys/bus/nvmem/devices", "/sys/bus/nvmem/devices: not a directory"),
])
def test_validate_refuses_a_bus_it_cannot_list(tmp_path: Path, how: str, message: str) -> None:
    (tmp_path / "sys/bus/nvmem/devices").mkdir(parents=True)
    break_sysroot(tmp_path, how)
    with pytest.raises(SysrootError) as e:
        Sysroot(str(tmp_path)).validate()  # not the warning "no /sys/bus/nvmem"
    assert str(e.value) == message


def test_devices_that_is_a_file_is_no_empty_bus(tmp_path: Path) -> None:
    (tmp_path / "sys/bus/nvmem").mkdir(parents=True)
    (tmp_path / "sys/bus/nvmem/devices").write_bytes(b"")
    with pytest.raises(SysrootError, match=r"^/sys/bus/nvmem/devices: not a directory$"):
        list_provider_names(Sysroot(str(tmp_path)))
    (tmp_path / "sys/bus/nvmem/devices").unlink()
    assert list_provider_names(Sysroot(str(tmp_path))) == []  # absent: no provider yet


# --- OS errors name in-sysroot paths -------------------------------------------------


def test_os_errors_name_the_path_in_the_sysroot(root: Sysroot) -> None:
    os.mkfifo(Path(root.root) / "proc/fifo")
    with pytest.raises(FileNotFoundError) as missing:
        root.read_bytes("/proc/missing")
    assert missing.value.filename == "/proc/missing"
    with pytest.raises(OSError) as fifo:
        root.read_bytes("/proc/fifo")
    assert fifo.value.filename == "/proc/fifo" and "not a regular file" in str(fifo.value)
    with pytest.raises(FileNotFoundError) as stat_missing:
        root.stat_file("/proc/missing")
    assert stat_missing.value.filename == "/proc/missing"
    assert root.inside(root.host_path("/sys/firmware")) == "/sys/firmware"
    assert root.inside(root.root) == "/"


def test_is_dir_tells_absent_from_unreadable(root: Sysroot, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    assert root.is_dir("/sys/firmware") and not root.is_dir("/sys/missing")
    assert not root.is_dir("/sys/firmware/devicetree/base/soc/compatible/x")  # ENOTDIR
    real_stat = os.stat

    def denied(path: str, *args: object, **kwargs: object) -> os.stat_result:
        if str(path).endswith("/soc"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", denied)
    with pytest.raises(PermissionError) as e:
        root.is_dir("/sys/firmware/devicetree/base/soc")
    assert e.value.filename == "/sys/firmware/devicetree/base/soc"
