"""Registration: one provider's cells, step by step as ``nvmem_register()`` does.

``drivers/nvmem/core.c: nvmem_register()`` runs, for a device-tree provider,
``nvmem_add_cells_from_legacy_of()`` (drivers that set
``add_legacy_fixed_of_cells``), then the driver's own cells (``config->cells``,
or a platform driver such as ``drivers/nvmem/u-boot-env.c`` adding them after
registration), then ``nvmem_populate_layout()`` (the ``nvmem-layout`` child,
matched against the layout drivers), then ``nvmem_populate_sysfs_cells()``.
Each step below returns a small :class:`StepResult`; :func:`register_provider`
chains them with the kernel's consequences (a bad legacy cell fails the whole
provider; a layout that fails keeps the cells the steps before it made).

:func:`relate_providers` is nvmemd's own step across providers: pairing
redundant U-Boot environments held in two partitions.
"""

from __future__ import annotations

import errno

from .cells import add_cells_from_dt
from .config import Config
from .devicetree import DeviceTree, DtNode
from .errors import DeviceTreeError, NvmemError, SysrootError, describe
from .kernel_rules import cell_rules
from .layouts import (
    LayoutContext,
    LayoutDriver,
    match_layout,
    match_provider_driver,
    matched_compatible,
)
from .logs import get_logger
from .model import BrokenProvider, CellInfo, CellRules, Provider, ProviderEntry, Validity
from .providers import read_provider
from .reader import read_range
from .sysroot import Sysroot
from .values import field, record, replace

log = get_logger(__name__)


@record
class StepResult:
    """What one registration step added, and what it had to say."""

    cells: list[CellInfo] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    validity: Validity | None = None
    num_macs: int | None = None
    #: The step failed in a way that fails the whole registration (nvmem_register() errors).
    fatal: bool = False


def _duplicate_name(cells: list[CellInfo], provider: str) -> str | None:
    """``nvmem_populate_sysfs_cells()``: sysfs refuses two files of the same name.

    The files are created in list order, so the first name met a second time fails.
    """
    seen: set[str] = set()
    for cell in cells:
        if cell.sysfs_name in seen:
            return (f"{provider}: cannot create duplicate filename 'cells/{cell.sysfs_name}' "
                    "(two cells share name, offset and bit offset)")
        seen.add(cell.sysfs_name)
    return None


def add_cells_from_legacy_of(provider: Provider, rules: CellRules, np: DtNode) -> StepResult:
    """Mirrors ``drivers/nvmem/core.c: nvmem_add_cells_from_legacy_of()``.

    Only for drivers that opt in (kernel_rules.py); otherwise the ignored
    children are noted, as a pre-6.7 kernel would have created them.
    """
    step = StepResult()
    if not rules.legacy_cells:
        ignored = [c.path for c in np.children() if c.name != "nvmem-layout" and c.has_prop("reg")]
        if ignored:
            step.notes.append(f"{len(ignored)} legacy child cell(s) ignored: "
                              + ", ".join(ignored))
        return step
    legacy = add_cells_from_dt(np, rules.access, "legacy", rules.fixup)
    dup = _duplicate_name(legacy.cells, provider.name)
    if legacy.errors or dup:
        why = str(legacy.errors[0]) if legacy.errors else dup
        step.errors.append(f"{provider.name}: {why}; the kernel fails the whole provider "
                           "registration (nvmem_register), so it has no cells")
        step.errors.extend(f"{provider.name}: {e} (also invalid)" for e in legacy.errors[1:])
        step.fatal = True
        return step
    step.cells = legacy.cells
    return step


def _run_parser(sysroot: Sysroot, provider: Provider, rules: CellRules, driver: LayoutDriver,
                node: DtNode, compatible: str, before: list[CellInfo], what: str) -> StepResult:
    """Run a layout (or provider driver) parser; its cells are added after *before*."""
    ctx = LayoutContext(
        provider=provider.name,
        size=provider.size,
        access=rules.access,
        node=node,
        read=lambda off, n: _bounded_read(sysroot, provider, rules, off, n),
        compatible=compatible,
        series=rules.series,
    )
    step = StepResult()
    if driver.note:
        step.notes.append(driver.note)
    try:
        result = driver.parse(ctx)
    except NvmemError as exc:
        step.errors.append(f"{provider.name}: {driver.name} {what}: {exc}")
        return step
    step.validity = result.validity
    step.num_macs = result.num_macs
    dup = _duplicate_name(before + result.cells, provider.name)
    if dup:
        # The probe fails and nvmem_layout_bus_probe()'s caller removes every cell.
        step.errors.append(f"{dup}; the {driver.name} {what} probe fails and all cells "
                           "are removed")
        step.fatal = True
        return step
    for i, e in enumerate(result.errors):
        step.errors.append(f"{provider.name}: {driver.name} {what}: {e}"
                           + ("; cells before it are kept" if result.cells and i == 0 else ""))
    if result.not_created:
        step.notes.append(f"not created, after the first invalid cell: "
                          f"{', '.join(result.not_created)}")
    step.cells = result.cells
    return step


def add_cells_from_provider_driver(sysroot: Sysroot, provider: Provider, rules: CellRules,
                                   np: DtNode, before: list[CellInfo]) -> StepResult | None:
    """The cells a platform driver adds for its own provider (``config->cells`` or
    ``nvmem_add_one_cell()`` after registration): ``drivers/nvmem/u-boot-env.c:
    u_boot_env_probe()``, ``drivers/nvmem/brcm_nvram.c: brcm_nvram_probe()``."""
    driver = match_provider_driver(provider)
    if driver is None:
        return None
    return _run_parser(sysroot, provider, rules, driver, np,
                       matched_compatible(provider.compatible, driver), before, "driver")


def populate_layout(sysroot: Sysroot, provider: Provider, rules: CellRules, np: DtNode,
                    before: list[CellInfo]) -> StepResult | None:
    """Mirrors ``drivers/nvmem/layouts.c: nvmem_populate_layout()``: the
    ``nvmem-layout`` child matched against the layout drivers' of_match tables."""
    layout_np = np.child_by_name("nvmem-layout")
    if layout_np is None:
        return None
    compatibles = layout_np.compatible()
    if not compatibles:
        return StepResult(notes=[f"skipping {layout_np.path}, no compatible prop"])
    driver = match_layout(compatibles)
    if driver is None:
        return StepResult(notes=[f"no layout driver for {layout_np.path} "
                                 f"({', '.join(compatibles)})"])
    return _run_parser(sysroot, provider, rules, driver, layout_np,
                       matched_compatible(compatibles, driver), before, "layout")


def _bounded_read(sysroot: Sysroot, provider: Provider, rules: CellRules, offset: int,
                  length: int) -> bytes:
    if offset < 0 or offset >= provider.size:
        return b""
    length = min(length, provider.size - offset)
    return read_range(sysroot, provider.name, provider.nvmem_path, offset, length, rules.access)


def register_provider(sysroot: Sysroot, tree: DeviceTree, provider: Provider, config: Config
                      ) -> ProviderEntry:
    """All cells of one provider, with the kernel's error consequences."""
    rules = cell_rules(provider, config.legacy_mode(), config.extra_legacy_compatibles,
                       config.series())
    notes: list[str] = [rules.reason]
    if provider.of_node is None:
        notes.append("no of_node: the kernel creates no device-tree cells for it")
        return ProviderEntry(provider, rules, notes=tuple(notes))
    if not rules.of_node_used:
        return ProviderEntry(provider, rules, notes=tuple(notes))
    np = tree.node(provider.of_node)
    if not np.exists():
        return ProviderEntry(provider, rules, notes=tuple(notes), errors=(
            f"{provider.name}: of_node {provider.of_node} is missing from the device tree",))

    cells: list[CellInfo] = []
    errors: list[str] = []
    validity: list[Validity] = []
    num_macs: int | None = None
    legacy = add_cells_from_legacy_of(provider, rules, np)
    notes += legacy.notes
    errors += legacy.errors
    if legacy.fatal:
        return ProviderEntry(provider, rules, errors=tuple(errors), notes=tuple(notes),
                             rejected=True)
    cells += legacy.cells
    for step_fn in (add_cells_from_provider_driver, populate_layout):
        step = step_fn(sysroot, provider, rules, np, cells)
        if step is None:
            continue
        notes += step.notes
        errors += step.errors
        if step.validity is not None:
            validity.append(step.validity)
        if step.num_macs is not None:
            num_macs = step.num_macs
        cells = [] if step.fatal else cells + step.cells
    return ProviderEntry(provider, rules, tuple(cells), tuple(errors), tuple(notes),
                         validity=tuple(validity), num_macs=num_macs)


def _errno(e: Exception) -> int | None:
    return e.errno if isinstance(e, OSError) else None


def scan_provider(sysroot: Sysroot, tree: DeviceTree, name: str, config: Config
                  ) -> ProviderEntry | BrokenProvider:
    """Describe one provider; never raises for a bad provider, tree or image."""
    try:
        provider = read_provider(sysroot, tree, name)
    except (OSError, SysrootError) as e:
        if isinstance(e, OSError) and e.errno == errno.ENOENT:
            # Listed, but its nvmem attribute (or its whole device) is missing: it is
            # being removed. device_del() drops the attributes before the bus link
            # and the directory, and device_add() creates them before the link, so
            # a registered provider never lacks its nvmem file. The answer a read
            # of a removed provider gets, until the remove uevent drops it.
            log.info("%s: removed while being scanned", name)
            return BrokenProvider(name, f"{name}: provider is gone", gone=True)
        why = describe(e)
        log.warning("%s: skipped: %s", name, why)
        return BrokenProvider(name, f"{name}: {why}", errno=_errno(e))
    try:
        entry = register_provider(sysroot, tree, provider, config)
    except (OSError, SysrootError, DeviceTreeError) as e:
        why = describe(e)
        log.warning("%s: device tree unusable: %s", name, why)
        return BrokenProvider(name, f"{name}: device tree unusable: {why}", errno=_errno(e))
    for err in entry.errors:
        log.error("%s", err)
    return entry


# --- across providers (beyond the kernel) -------------------------------------------


def relate_providers(entries: dict[str, ProviderEntry], tree: DeviceTree
                     ) -> dict[str, ProviderEntry]:
    """The steps that look at several providers at once, after each was described.

    Today: pairing redundant U-Boot environments held in two providers.  Any
    earlier pairing is dropped first, so the daemon can re-relate after each
    hot-plug change.
    """
    entries = {n: replace(e, redundant=None) if e.redundant else e
               for n, e in sorted(entries.items())}
    if not any(v.flag is not None for e in entries.values() for v in e.validity):
        return entries  # nothing to pair; spares importing the U-Boot env parser
    return pair_redundant_environments(entries, tree)


def _env_compatible(tree: DeviceTree, of_node: str, flag_types: dict[str, str]) -> str | None:
    np = tree.node(of_node)
    candidates = list(np.compatible())
    layout = np.child_by_name("nvmem-layout")
    if layout is not None:
        candidates = layout.compatible() + candidates
    return next((c.lower() for c in candidates if c.lower() in flag_types), None)


def _dt_position(order: list[str], member: tuple[ProviderEntry, Validity]) -> int:
    """Where a member's node stands among its siblings (the first copy comes first)."""
    base = (member[0].provider.of_node or "").rsplit("/", 1)[-1]
    return order.index(base) if base in order else len(order)


def pair_redundant_environments(entries: dict[str, ProviderEntry], tree: DeviceTree
                                ) -> dict[str, ProviderEntry]:
    """Pair redundant U-Boot environments and mark the copy not in use.

    Two providers form a pair when their environment has the same redundant
    compatible and their DT nodes are siblings (two partitions of one flash, as
    the two lines of fw_env.config).  Both get a typed :class:`RedundantCopy`
    (the registry's name lookup prefers the copy in use); the cells of both stay
    listed.  The choice follows libubootenv (layouts/u_boot_env.py: choose_copy).
    """
    from .layouts.u_boot_env import REDUNDANT_FLAG_TYPES, SOURCE, EnvCopy, choose_copy
    from .model import RedundantCopy

    groups: dict[tuple[str, str], list[tuple[ProviderEntry, Validity]]] = {}
    for entry in entries.values():
        val = next((v for v in entry.validity if v.layout == SOURCE and v.flag is not None),
                   None)
        of_node = entry.provider.of_node
        if val is None or of_node is None:
            continue
        compat = _env_compatible(tree, of_node, REDUNDANT_FLAG_TYPES)
        if compat is None:
            continue
        parent = of_node.rsplit("/", 1)[0] or "/"
        groups.setdefault((compat, parent), []).append((entry, val))
    out = dict(entries)
    for (compat, parent), members in groups.items():
        if len(members) > 2:
            for entry, _ in members:
                out[entry.name] = replace(entry, notes=(*entry.notes, (
                    f"redundant U-Boot environment: {len(members)} copies under {parent}; "
                    "no copy chosen (two expected)")))
        if len(members) != 2:
            continue
        siblings = [c.basename for c in tree.node(parent).children()]
        members.sort(key=lambda member: _dt_position(siblings, member))
        copies = tuple(EnvCopy(e.name, v.status == "valid", v.flag or 0) for e, v in members)
        assert len(copies) == 2
        chosen = choose_copy(REDUNDANT_FLAG_TYPES[compat], (copies[0], copies[1]))
        for i, (entry, _) in enumerate(members):
            me, other = copies[i], copies[1 - i]
            out[entry.name] = replace(entry, redundant=RedundantCopy(
                compatible=compat, peer=other.provider,
                in_use=None if chosen is None else chosen == i,
                flag=me.flag, peer_flag=other.flag, peer_valid=other.valid))
    return out
