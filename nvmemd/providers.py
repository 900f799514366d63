"""NVMEM providers as sysfs shows them.

Mirrors what ``drivers/nvmem/core.c: nvmem_register()`` publishes under
``/sys/bus/nvmem/devices/<name>``: the ``nvmem`` binary attribute (its mode
encodes root_only / read_only, its size the provider size), ``type``,
``force_ro`` (only when the driver can write) and the ``of_node`` link.
"""

from __future__ import annotations

import os
import stat

from .devicetree import DeviceTree
from .errors import SysrootError, error_from_os
from .logs import get_logger
from .model import Provider, is_mtd_otp_name
from .sysroot import Sysroot

log = get_logger(__name__)

NVMEM_BUS = "/sys/bus/nvmem/devices"

#: include/linux/mtd/mtd.h: mtd_type_is_nand(): MTD_NANDFLASH, MTD_MLCNANDFLASH,
#: as drivers/mtd/mtdcore.c: mtd_type_show() spells them.
MTD_NAND_TYPES = frozenset({"nand", "mlc-nand"})

def list_provider_names(sysroot: Sysroot) -> list[str]:
    """The names under :data:`NVMEM_BUS`, sorted; [] when there is none (no nvmem bus:
    ``Sysroot.validate()`` says so).  A directory that is there but cannot be listed
    is an error, not an empty bus: AccessDeniedError (EACCES), SysrootError (not a
    directory, a link loop, an I/O error), naming the in-sysroot path."""
    try:
        return sorted(os.listdir(sysroot.resolved_host_path(NVMEM_BUS)))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise error_from_os(e, NVMEM_BUS) from None


def _link_basename(sysroot: Sysroot, path: str) -> str | None:
    try:
        target = sysroot.readlink_resolved(path)
    except SysrootError:
        return None
    return target.rsplit("/", 1)[-1] if target else None


def _nearest_driver(sysroot: Sysroot, device_dir: str) -> str | None:
    path = device_dir.rsplit("/", 1)[0]
    while path.startswith("/sys/devices/"):
        name = _link_basename(sysroot, path + "/driver")
        if name:
            return name
        path = path.rsplit("/", 1)[0]
    return None


def _mtd_type(sysroot: Sysroot, name: str, parent: str, parent_subsystem: str | None) -> str | None:
    if parent_subsystem == "mtd":
        return sysroot.read_text(parent + "/type")
    if is_mtd_otp_name(name):
        # mtd_otp_nvmem_register(): config.dev = mtd->dev.parent, the flash device,
        # which holds the mtd class devices in its mtd/ directory.
        for child in sysroot.listdir(parent + "/mtd"):
            kind = sysroot.read_text(f"{parent}/mtd/{child}/type")
            if kind:
                return kind
    return None


def _lstat_mode(sysroot: Sysroot, path: str) -> int:
    try:
        return os.lstat(sysroot.host_path(path)).st_mode
    except OSError:
        return 0


def read_provider(sysroot: Sysroot, tree: DeviceTree, name: str) -> Provider:
    """Describe provider *name*; raises OSError/SysrootError if it is unusable."""
    sys_path = sysroot.resolve(f"{NVMEM_BUS}/{name}")
    st = sysroot.stat_file(sys_path + "/nvmem")  # no link followed out of the sysroot
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{sys_path}/nvmem is not a regular file")
    size = st.st_size
    marker = sysroot.not_recorded(sys_path)  # a snapshot that kept less keeps the real size
    if marker is not None:
        size = max(size, marker[0])
    force_ro_text = sysroot.read_text(sys_path + "/force_ro")
    force_ro = None if force_ro_text is None else force_ro_text.strip() in ("1", "Y", "y")

    of_node: str | None = None
    compatible: tuple[str, ...] = ()
    try:
        link = sysroot.readlink_resolved(sys_path + "/of_node")
    except SysrootError as e:
        raise SysrootError(f"{name}: of_node: {e}") from e
    if link:
        of_node = tree.of_node_path(link)
        if of_node is None:
            log.warning("%s: of_node points outside the device tree: %s", name, link)
        else:
            compatible = tuple(tree.node(of_node).compatible())

    parent = sys_path.rsplit("/", 1)[0]
    parent_subsystem = _link_basename(sysroot, parent + "/subsystem")
    return Provider(
        name=name,
        sys_path=sys_path,
        type=sysroot.read_text(sys_path + "/type") or "Unknown",
        size=size,
        mode=stat.S_IMODE(st.st_mode),
        force_ro=force_ro,
        of_node=of_node,
        compatible=compatible,
        driver=_nearest_driver(sysroot, sys_path),
        parent_subsystem=parent_subsystem,
        mtd_type=_mtd_type(sysroot, name, parent, parent_subsystem),
        has_kernel_cells=stat.S_ISDIR(_lstat_mode(sysroot, sys_path + "/cells")),
    )
