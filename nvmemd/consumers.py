"""Device-tree consumers of nvmem cells: who reads which cell, and what they get.

Mirrors ``drivers/nvmem/core.c: of_nvmem_cell_get()``:

1. ``index = of_property_match_string(np, "nvmem-cell-names", id)``;
2. ``of_parse_phandle_with_optional_args(np, "nvmem-cells", "#nvmem-cell-cells",
   index)``: a phandle followed by as many arguments as the target's
   ``#nvmem-cell-cells`` says (0 when absent); more than one argument is -EINVAL;
3. the provider is the cell node's parent, or its grandparent when the parent
   is named ``nvmem-layout``; it is found by its ``of_node``;
4. the cell is found on that provider by its node (``nvmem_find_cell_entry_by_node()``);
5. the read uses ``id`` = the consumer's name for the cell and ``index`` = the
   argument, so post-processing sees them (imx-ocotp reverses a MAC only when
   the consumer calls it "mac-address"; ONIE/sl28/U-Boot add the index).

Several providers can share an of_node (an MTD partition's ``mtdN`` and the
U-Boot env platform driver's ``u-boot-env0``); the kernel's bus lookup takes
the first registered, nvmemd the first that has the cell.

The index of all consumers (for ``cells --json``) is built once per
:class:`~nvmemd.devicetree.DeviceTree`, on first use: a plain ``get`` never
walks the tree.
"""

from __future__ import annotations

from .devicetree import DeviceTree, DtNode, be32_list, string_list
from .errors import InvalidArgumentError, NotFoundError, error_from_os
from .limits import check_consumer, check_name
from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final

    from .model import CellInfo, ProviderEntry
    from .registry import Registry
    from .sysroot import Sysroot

NVMEM_CELLS: Final = "nvmem-cells"
NVMEM_CELL_NAMES: Final = "nvmem-cell-names"
NVMEM_CELL_CELLS: Final = "#nvmem-cell-cells"
#: Nodes dtc -@ adds; __local_fixups__ mirrors nvmem-cells properties with offsets.
_GENERATED: Final = ("/__symbols__", "/__fixups__", "/__local_fixups__")


@value
class ConsumerRef:
    """One ``nvmem-cells`` entry of a consumer node."""

    node: str  # the consumer's DT path
    name: str | None  # its nvmem-cell-names entry (the kernel's `id`), None when unnamed
    index: int  # the #nvmem-cell-cells argument (0 without one)
    position: int  # entry number in nvmem-cells
    cell_node: str | None  # the phandle's target; None when it does not resolve
    error: str | None = None  # why this entry is unusable (-EINVAL, dangling phandle)

    def record(self) -> dict[str, object]:
        return {"node": self.node, "name": self.name, "index": self.index}


def parse_consumer(tree: DeviceTree, node: DtNode) -> list[ConsumerRef]:
    """Every ``nvmem-cells`` entry of *node* (``of_phandle_iterator``)."""
    raw = node.prop(NVMEM_CELLS)
    if raw is None:
        return []
    cells = be32_list(raw)
    names = string_list(node.prop(NVMEM_CELL_NAMES) or b"")
    refs: list[ConsumerRef] = []
    i = 0
    while i < len(cells):
        position = len(refs)
        name = names[position] if position < len(names) else None
        phandle = cells[i]
        i += 1
        if phandle == 0:  # an empty entry
            refs.append(ConsumerRef(node.path, name, 0, position, None, "empty phandle"))
            continue
        target = tree.by_phandle(phandle)
        if target is None:
            refs.append(ConsumerRef(node.path, name, 0, position, None,
                                    f"could not find phandle {phandle}"))
            break  # the argument count is unknown: the rest cannot be parsed
        count_raw = target.prop(NVMEM_CELL_CELLS)
        count = be32_list(count_raw)[0] if count_raw and len(count_raw) >= 4 else 0
        if i + count > len(cells):
            refs.append(ConsumerRef(node.path, name, 0, position, target.path,
                                    f"{NVMEM_CELLS}: arguments longer than property"))
            break
        args = cells[i : i + count]
        i += count
        error = f"-EINVAL: {count} cell arguments (at most 1)" if count > 1 else None
        refs.append(ConsumerRef(node.path, name, args[0] if args else 0, position,
                                target.path, error))
    return refs


def provider_node(cell_node: str) -> str:
    """The provider's DT path: the parent, or the grandparent under ``nvmem-layout``."""
    parent = cell_node.rsplit("/", 1)[0] or "/"
    if parent.rsplit("/", 1)[-1].split("@", 1)[0] == "nvmem-layout":
        parent = parent.rsplit("/", 1)[0] or "/"
    return parent


def consumer_index(tree: DeviceTree) -> dict[str, list[ConsumerRef]]:
    """Every usable consumer reference, by cell node path; built once per tree (and
    kept in it: :attr:`DeviceTree.indexes`)."""
    index: dict[str, list[ConsumerRef]] | None = tree.indexes.get(NVMEM_CELLS)  # type: ignore[assignment]
    if index is None:
        index = {}
        for node in tree.walk(tree.node("/")):
            if node.path.startswith(_GENERATED):
                continue
            for ref in parse_consumer(tree, node):
                if ref.cell_node is not None and ref.error is None:
                    index.setdefault(ref.cell_node, []).append(ref)
        tree.indexes[NVMEM_CELLS] = index
    return index


def consumers_of(tree: DeviceTree | None, cell: CellInfo) -> list[dict[str, object]]:
    """``cells --json`` ``consumers``: who references *cell* (by its of_node)."""
    if tree is None or cell.of_node is None:
        return []
    return [ref.record() for ref in consumer_index(tree).get(cell.of_node, [])]


def lookup(registry: Registry, consumer: str, name: str
           ) -> tuple[ProviderEntry, CellInfo, ConsumerRef]:
    """``of_nvmem_cell_get(np, id)``: the provider, cell and reference a consumer gets."""
    check_consumer(consumer)  # nvmemd.limits: before any walk (the daemon and the CLI)
    check_name(name, "cell name")
    tree = registry.tree
    path = "/" + consumer.strip("/") if consumer.strip("/") else "/"
    node = tree.node(path)
    if not node.exists():
        label = consumer[1:] if consumer.startswith("&") else consumer
        target = tree.label_path(label) if label.isidentifier() else None
        if target is None:
            raise NotFoundError(f"no device-tree node {consumer}")
        node = tree.node(target)
    names = string_list(node.prop(NVMEM_CELL_NAMES) or b"")
    if name not in names:
        listed = ", ".join(names) if names else "none"
        raise NotFoundError(f"{node.path} has no nvmem cell named '{name}' "
                            f"(nvmem-cell-names: {listed})")
    position = names.index(name)
    refs = parse_consumer(tree, node)
    ref = next((r for r in refs if r.position == position), None)
    if ref is None or ref.cell_node is None:
        why = ref.error if ref is not None else "no such entry in nvmem-cells"
        raise NotFoundError(f"{node.path}: nvmem-cells entry {position} ('{name}'): {why}")
    if ref.error is not None:
        raise InvalidArgumentError(f"{node.path}: nvmem-cells entry {position} ('{name}'): "
                                   f"{ref.error}")
    np = provider_node(ref.cell_node)
    holders = [e for e in registry if e.provider.of_node == np]
    if not holders:
        raise NotFoundError(f"{node.path} '{name}': no nvmem provider for {np} "
                            "(the kernel defers the consumer: -EPROBE_DEFER)")
    for entry in holders:
        for cell in entry.cells:
            if cell.of_node == ref.cell_node:
                return entry, cell, ref
    raise NotFoundError(f"{node.path} '{name}': provider {holders[0].name} has no cell "
                        f"{ref.cell_node} (-ENOENT, or -EPROBE_DEFER while a layout binds)")


def netdev_of_node(sysroot: Sysroot, tree: DeviceTree, ifname: str) -> str:
    """The DT node of network interface *ifname* (``/sys/class/net/IF/of_node``).

    Falls back to the parent device's node (``.../IF/device/of_node``), where most
    Ethernet drivers leave it.
    """
    if not ifname or "/" in ifname or ifname in (".", ".."):
        raise InvalidArgumentError(f"not an interface name: '{ifname}'")
    base = f"/sys/class/net/{ifname}"
    try:
        present = sysroot.is_dir(sysroot.resolve(base))
    except OSError as e:  # EACCES on /sys/class/net is no missing interface
        raise error_from_os(e, base) from None
    if not present:
        raise NotFoundError(f"no network interface {ifname}")
    for link in (f"{base}/of_node", f"{base}/device/of_node"):
        target = sysroot.readlink_resolved(link)
        if target:
            path = tree.of_node_path(target)
            if path is not None:
                return path
    raise NotFoundError(f"network interface {ifname} has no device-tree node")
