"""The registry: every provider with the cells the kernel would give it.

:func:`scan` builds an immutable :class:`Registry`; :func:`scan_provider` one
entry.  The daemon swaps whole entries, so a reader never sees half a
provider.  The order of steps mirrors ``nvmem_register()``: legacy cells
(``nvmem_add_cells_from_legacy_of``), then the layout
(``nvmem_populate_layout``), then the sysfs file names
(``nvmem_populate_sysfs_cells``).
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from .cells import CellInfo, add_cells_from_dt, decode_cell
from .config import Config
from .devicetree import DeviceTree, DtNode
from .errors import (
    AmbiguousError,
    DeviceTreeError,
    InvalidArgumentError,
    LayoutError,
    NotFoundError,
    NvmemError,
    ProviderGoneError,
    ProviderIOError,
    SysrootError,
)
from .kernel_rules import CellRules, cell_rules
from .layouts import (
    LayoutContext,
    LayoutDriver,
    Validity,
    match_layout,
    match_provider_driver,
    matched_compatible,
)
from .providers import Provider, list_provider_names, read_provider
from .read_bounds import CellReadError, read_cell_raw
from .reader import read_range
from .sysroot import Sysroot

log = logging.getLogger(__name__)

#: The kernel's sysfs cell file name, ``name@offset,bit`` in hex.
_SYSFS_NAME = re.compile(r"^(?P<name>.+)@(?P<offset>[0-9a-fA-F]+),(?P<bit>[0-9a-fA-F]+)$")


@dataclass(frozen=True)
class ProviderEntry:
    provider: Provider
    rules: CellRules
    cells: tuple[CellInfo, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    rejected: bool = False  # the kernel would fail this provider's registration
    validity: tuple[Validity, ...] = ()
    standby_of: str | None = None  # redundant U-Boot env copy not in use: the one in use

    @property
    def name(self) -> str:
        return self.provider.name


@dataclass(frozen=True)
class BrokenProvider:
    """A provider listed in sysfs that could not be described at all."""

    name: str
    error: str
    gone: bool = False  # it vanished while being scanned: reads say ProviderGone


@dataclass(frozen=True)
class Registry:
    sysroot: Sysroot
    config: Config
    entries: dict[str, ProviderEntry] = field(default_factory=dict)
    broken: dict[str, BrokenProvider] = field(default_factory=dict)
    tree: DeviceTree | None = field(default=None, compare=False)

    def with_provider(self, name: str, result: ProviderEntry | BrokenProvider | None
                      ) -> Registry:
        """A new registry where provider *name* is *result* (None: removed).

        The daemon's hot-plug path: one provider rescanned, the rest kept, and
        the cross-provider steps of :func:`scan` run again.
        """
        entries = {n: e for n, e in self.entries.items() if n != name}
        broken = {n: b for n, b in self.broken.items() if n != name}
        if isinstance(result, BrokenProvider):
            broken[name] = result
        elif result is not None:
            entries[name] = result
        tree = DeviceTree(self.sysroot)
        return Registry(self.sysroot, self.config, relate_providers(entries, tree),
                        dict(sorted(broken.items())), tree)

    def __iter__(self) -> Iterator[ProviderEntry]:
        return iter(self.entries.values())

    def cells(self) -> Iterator[tuple[ProviderEntry, CellInfo]]:
        for entry in self.entries.values():
            for cell in entry.cells:
                yield entry, cell

    def provider(self, name: str) -> ProviderEntry:
        try:
            return self.entries[name]
        except KeyError:
            if name in self.broken:
                broken = self.broken[name]
                if broken.gone:
                    raise ProviderGoneError(broken.error) from None
                raise ProviderIOError(broken.error) from None
            raise NotFoundError(f"no nvmem provider named '{name}'") from None

    def find_cells(self, spec: str, provider: str | None = None
                   ) -> list[tuple[ProviderEntry, CellInfo]]:
        """Every cell *spec* names (see :func:`match_spec`), in registry order."""
        if provider is None and ":" in spec and not spec.startswith("/"):
            head, _, rest = spec.partition(":")
            if head in self.entries or head in self.broken:
                provider, spec = head, rest
        if provider is None:
            scope = list(self.entries.values())
        elif provider in self.broken:
            scope = []  # a broken provider has no cells (yet: `wait` keeps waiting)
        else:
            scope = [self.provider(provider)]
        found = [(e, c) for e in scope for c in e.cells if match_spec(self, spec, c)]
        label = spec[1:] if spec.startswith("&") else spec
        if not found and self.tree is not None and label.isidentifier():
            target = self.tree.label_path(label)
            if target:
                found = [(e, c) for e in scope for c in e.cells if c.of_node == target]
        return found

    def resolve_cell(self, spec: str, provider: str | None = None
                     ) -> tuple[ProviderEntry, CellInfo]:
        """The one cell *spec* names; NotFoundError or AmbiguousError otherwise."""
        if not spec:
            raise InvalidArgumentError("empty cell specification")
        found = self.find_cells(spec, provider)
        if not found:
            named = provider if provider is not None else spec.partition(":")[0]
            if named in self.broken:
                self.provider(named)  # raises why it has no cells (gone, I/O error)
            where = f" on provider '{provider}'" if provider else ""
            raise NotFoundError(f"no cell matches '{spec}'{where}")
        if len(found) > 1:
            # A redundant U-Boot environment: prefer the copy in use (layouts/u_boot_env.py).
            in_use = [(e, c) for e, c in found if e.standby_of is None]
            found = in_use or found
        if len(found) > 1:
            raise AmbiguousError(spec, [f"{e.name}:{c.sysfs_name}" for e, c in found])
        return found[0]

    def read_cell(self, entry: ProviderEntry, cell: CellInfo,
                  cell_id: str | None = None, index: int = 0) -> bytes:
        """What the kernel's ``cells/`` file (or a consumer with *cell_id*/*index*) returns."""
        p = entry.provider
        # the driver's reg_read bounds on this kernel (read_bounds.READ_BOUNDS)
        raw = read_cell_raw(self.sysroot, p, entry.rules.access, cell.offset, cell.raw_len,
                            self.config.series(), cell.sysfs_name)
        if len(raw) < cell.raw_len:
            raise ProviderIOError(
                f"{p.name}: cell {cell.sysfs_name} ({cell.raw_len} bytes at {cell.offset:#x}) "
                f"extends past the end of the provider ({p.size} bytes)"
            )
        try:
            return decode_cell(cell, raw, cell_id, index)
        except LayoutError as e:
            # read_post_process() refused the value: -EINVAL from the cells/ read
            raise CellReadError(f"{p.name}: cell {cell.sysfs_name}: {e}",
                                os.strerror(errno.EINVAL)) from None
        except NvmemError as e:
            raise ProviderIOError(f"{p.name}: cell {cell.sysfs_name}: {e}") from None

    def read_provider(self, entry: ProviderEntry, offset: int, length: int) -> bytes:
        p = entry.provider
        if offset < 0 or length < 0:
            raise InvalidArgumentError("offset and length must not be negative")
        if offset > p.size:
            raise InvalidArgumentError(f"offset {offset:#x} is past the end of {p.name} "
                                       f"({p.size} bytes)")
        length = min(length, p.size - offset)
        return read_range(self.sysroot, p.name, p.nvmem_path, offset, length, entry.rules.access)


def match_spec(registry: Registry, spec: str, cell: CellInfo) -> bool:
    """Does *spec* name *cell*: a DT path, ``name@off,bit``, or a plain name."""
    if spec.startswith("/"):
        return cell.of_node == spec.rstrip("/")
    m = _SYSFS_NAME.match(spec)
    if m:
        return (cell.name == m["name"] and cell.offset == int(m["offset"], 16)
                and cell.bit_offset == int(m["bit"], 16))
    return cell.name == spec


def _check_duplicate_names(cells: list[CellInfo], provider: str) -> str | None:
    dup = [n for n, k in Counter(c.sysfs_name for c in cells).items() if k > 1]
    if dup:
        return (f"{provider}: cannot create duplicate filename 'cells/{dup[0]}' "
                "(two cells share name, offset and bit offset)")
    return None


def build_entry(sysroot: Sysroot, tree: DeviceTree, provider: Provider, config: Config
                ) -> ProviderEntry:
    """All cells of one provider, with the kernel's error consequences."""
    rules = cell_rules(provider, config.legacy_mode(), config.extra_legacy_compatibles,
                       config.series())
    notes: list[str] = [rules.reason]
    errors: list[str] = []
    if provider.of_node is None:
        notes.append("no of_node: the kernel creates no device-tree cells for it")
        return ProviderEntry(provider, rules, notes=tuple(notes))
    if not rules.of_node_used:
        return ProviderEntry(provider, rules, notes=tuple(notes))
    np = tree.node(provider.of_node)
    if not np.exists():
        errors.append(f"{provider.name}: of_node {provider.of_node} is missing from the "
                      "device tree")
        return ProviderEntry(provider, rules, errors=tuple(errors), notes=tuple(notes))

    cells: list[CellInfo] = []
    if rules.legacy_cells:
        legacy = add_cells_from_dt(np, rules.access, "legacy", rules.fixup)
        dup = _check_duplicate_names(legacy.cells, provider.name)
        if legacy.errors or dup:
            why = str(legacy.errors[0]) if legacy.errors else dup
            errors.append(f"{provider.name}: {why}; the kernel fails the whole provider "
                          "registration (nvmem_register), so it has no cells")
            errors.extend(f"{provider.name}: {e} (also invalid)" for e in legacy.errors[1:])
            return ProviderEntry(provider, rules, errors=tuple(errors), notes=tuple(notes),
                                 rejected=True)
        cells.extend(legacy.cells)
    else:
        ignored = [c.path for c in np.children() if c.name != "nvmem-layout" and c.has_prop("reg")]
        if ignored:
            notes.append(f"{len(ignored)} legacy child cell(s) ignored: " + ", ".join(ignored))

    validity: list[Validity] = []
    own = match_provider_driver(provider)
    if own is not None:
        # A platform driver that builds its provider's cells itself (drivers/nvmem/
        # u-boot-env.c, brcm_nvram.c), parsing the provider's own node.
        cells = _run_driver(sysroot, provider, rules, own, np,
                            matched_compatible(provider.compatible, own), cells, errors,
                            validity, notes, "driver")
    layout_np = np.child_by_name("nvmem-layout")
    if layout_np is not None:
        compatibles = layout_np.compatible()
        driver = match_layout(compatibles) if compatibles else None
        if not compatibles:
            notes.append(f"skipping {layout_np.path}, no compatible prop")
        elif driver is None:
            notes.append(f"no layout driver for {layout_np.path} ({', '.join(compatibles)})")
        else:
            cells = _run_driver(sysroot, provider, rules, driver, layout_np,
                                matched_compatible(compatibles, driver), cells, errors,
                                validity, notes, "layout")
    return ProviderEntry(provider, rules, tuple(cells), tuple(errors), tuple(notes),
                         validity=tuple(validity))


def _run_driver(sysroot: Sysroot, provider: Provider, rules: CellRules, driver: LayoutDriver,
                node: DtNode, compatible: str, cells: list[CellInfo], errors: list[str],
                validity: list[Validity], notes: list[str], kind: str) -> list[CellInfo]:
    """Run a layout (or provider) driver's parser; returns the provider's cells after it."""
    ctx = LayoutContext(
        provider=provider.name,
        size=provider.size,
        access=rules.access,
        node=node,
        read=lambda off, n: _bounded_read(sysroot, provider, rules, off, n),
        compatible=compatible,
        series=rules.series,
    )
    if driver.note:
        notes.append(driver.note)
    try:
        result = driver.parse(ctx)
    except NvmemError as exc:
        errors.append(f"{provider.name}: {driver.name} {kind}: {exc}")
        return cells
    layout_cells = result.cells
    dup = _check_duplicate_names(cells + layout_cells, provider.name)
    if dup:
        errors.append(f"{dup}; the {driver.name} {kind} probe fails and all cells "
                      "are removed")
        cells = []
        layout_cells = []
    for i, e in enumerate(result.errors):
        errors.append(f"{provider.name}: {driver.name} {kind}: {e}"
                      + ("; cells before it are kept" if layout_cells and i == 0 else ""))
    if result.not_created:
        notes.append(f"not created, after the first invalid cell: {', '.join(result.not_created)}")
    if result.validity:
        validity.append(result.validity)
    return cells + layout_cells


def _bounded_read(sysroot: Sysroot, provider: Provider, rules: CellRules, offset: int,
                  length: int) -> bytes:
    if offset < 0 or offset >= provider.size:
        return b""
    length = min(length, provider.size - offset)
    return read_range(sysroot, provider.name, provider.nvmem_path, offset, length, rules.access)


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
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        log.warning("%s: skipped: %s", name, reason)
        return BrokenProvider(name, f"{name}: {reason}")
    try:
        entry = build_entry(sysroot, tree, provider, config)
    except (OSError, SysrootError, DeviceTreeError) as e:
        log.warning("%s: device tree unusable: %s", name, e)
        return BrokenProvider(name, f"{name}: device tree unusable: {e}")
    for err in entry.errors:
        log.error("%s", err)
    return entry


def scan(sysroot: Sysroot, config: Config, only: str | None = None) -> Registry:
    """Every provider under the sysroot, or just provider *only* when a caller
    names it (``get P:NAME``, ``cells P``): the answer about one provider never
    depends on the others, and a board may have hundreds."""
    tree = DeviceTree(sysroot)
    entries: dict[str, ProviderEntry] = {}
    broken: dict[str, BrokenProvider] = {}
    for name in list_provider_names(sysroot):
        if only is not None and name != only:
            continue
        result = scan_provider(sysroot, tree, name, config)
        if isinstance(result, BrokenProvider):
            broken[name] = result
        else:
            entries[name] = result
    return Registry(sysroot, config, relate_providers(entries, tree), broken, tree)


def relate_providers(entries: dict[str, ProviderEntry], tree: DeviceTree
                     ) -> dict[str, ProviderEntry]:
    """The steps that look at several providers at once, after each was described.

    Today: pairing redundant U-Boot environments held in two providers.
    """
    entries = dict(sorted(entries.items()))
    if not any(v.layout == "u-boot-env" for e in entries.values() for v in e.validity):
        return entries  # nothing to pair; spares importing the U-Boot env parser
    from .layouts.u_boot_env import select_redundant_copies

    return select_redundant_copies(entries, tree)
