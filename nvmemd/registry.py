"""The registry: every provider with the cells the kernel would give it.

:func:`scan` builds an immutable :class:`Registry` from registration.py's
entries; the daemon swaps whole entries (:meth:`Registry.with_provider`), so a
reader never sees half a provider.  The registry answers lookups (a spec to a
cell) and reads (a cell's value as the kernel's ``cells/`` file returns it).
"""

from __future__ import annotations

import errno
import os

from .cells import decode_cell
from .config import Config
from .devicetree import DeviceTree
from .errors import (
    DENIED_ERRNOS,
    AccessDeniedError,
    AmbiguousError,
    InvalidArgumentError,
    LayoutError,
    NotFoundError,
    NvmemError,
    ProviderGoneError,
    ProviderIOError,
)
from .limits import check_name, check_spec
from .model import BrokenProvider, CellInfo, ProviderEntry
from .providers import list_provider_names
from .read_bounds import CellReadError, read_cell_raw
from .reader import read_range
from .registration import relate_providers, scan_provider
from .specs import did_you_mean, split_provider, split_sysfs_name
from .sysroot import Sysroot
from .values import field, value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Iterator


@value
class Registry:
    sysroot: Sysroot
    config: Config
    tree: DeviceTree = field(compare=False)
    entries: dict[str, ProviderEntry] = field(default_factory=dict)
    broken: dict[str, BrokenProvider] = field(default_factory=dict)

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
        return Registry(self.sysroot, self.config, tree, relate_providers(entries, tree),
                        dict(sorted(broken.items())))

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
                if broken.errno in DENIED_ERRNOS:
                    raise AccessDeniedError(broken.error) from None
                raise ProviderIOError(broken.error) from None
            raise NotFoundError(f"no nvmem provider named '{name}'" + did_you_mean(
                name, [*self.entries, *self.broken])) from None

    def find_cells(self, spec: str, provider: str | None = None
                   ) -> list[tuple[ProviderEntry, CellInfo]]:
        """Every cell *spec* names (see :func:`match_spec`), in registry order.

        A spec qualified by a provider that is not there (``P:NAME``, ``P/NAME``)
        names no cell: :meth:`resolve_cell` says which provider is missing.
        """
        check_spec(spec)  # nvmemd.limits: the daemon and the CLI alike
        if provider is not None:
            check_name(provider, "provider name")
        if provider is None:
            provider, spec = split_provider(spec)
        if provider is None:
            scope = list(self.entries.values())
        elif provider in self.broken or provider not in self.entries:
            scope = []  # a broken or absent provider has no cells (yet: `wait` keeps waiting)
        else:
            scope = [self.entries[provider]]
        found = [(e, c) for e in scope for c in e.cells if match_spec(spec, c)]
        label = spec[1:] if spec.startswith("&") else spec
        if not found and label.isidentifier():
            target = self.tree.label_path(label)
            if target:
                found = [(e, c) for e in scope for c in e.cells if c.of_node == target]
        return found

    def resolve_cell(self, spec: str, provider: str | None = None
                     ) -> tuple[ProviderEntry, CellInfo]:
        """The one cell *spec* names; NotFoundError or AmbiguousError otherwise."""
        if not spec:
            raise InvalidArgumentError("empty cell specification")
        check_spec(spec)
        found = self.find_cells(spec, provider)
        if not found:
            named, name = (provider, spec) if provider is not None else split_provider(spec)
            if named is not None:
                self.provider(named)  # raises why it has no cells (absent, gone, I/O error)
            where = f" on provider '{named}'" if named else ""
            scope = [self.entries[named]] if named else list(self.entries.values())
            raise NotFoundError(f"no cell matches '{spec}'{where}"
                                + did_you_mean(name, {c.name for e in scope for c in e.cells}))
        if len(found) > 1:
            # A redundant U-Boot environment: prefer the copy in use (layouts/u_boot_env.py).
            in_use = [(e, c) for e, c in found if not e.standby]
            found = in_use or found
        if len(found) > 1:
            # PROVIDER/NAME@OFFSET,BIT: each candidate is a spec that names it alone
            raise AmbiguousError(spec, [f"{e.name}/{c.sysfs_name}" for e, c in found])
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
                f"extends past the end of the provider ({self.current_size(entry)} bytes)"
            )
        try:
            return decode_cell(cell, raw, cell_id, index)
        except LayoutError as e:
            # read_post_process() refused the value: -EINVAL from the cells/ read
            raise CellReadError(f"{p.name}: cell {cell.sysfs_name}: {e}",
                                os.strerror(errno.EINVAL)) from None
        except NvmemError as e:
            raise ProviderIOError(f"{p.name}: cell {cell.sysfs_name}: {e}") from None

    def current_size(self, entry: ProviderEntry) -> int:
        """The size of the provider's nvmem file now: it may have changed since the
        scan (the rescan that follows a udev 'change' event catches up)."""
        try:
            size = self.sysroot.stat_file(entry.provider.nvmem_path).st_size
        except OSError:
            return entry.provider.size
        if size >= entry.provider.size:  # sysfs, or a full recording: no marker to look up
            return size
        # shorter than scanned: truncated since, or a snapshot that kept less (whose
        # marker gave the scan its real size)
        marker = self.sysroot.not_recorded(entry.provider.nvmem_path.rsplit("/", 1)[0])
        return size if marker is None else max(size, marker[0])

    def read_provider(self, entry: ProviderEntry, offset: int, length: int) -> bytes:
        p = entry.provider
        if offset < 0 or length < 0:
            raise InvalidArgumentError("offset and length must not be negative")
        size = self.current_size(entry)
        if offset > size:
            raise InvalidArgumentError(f"offset {offset:#x} is past the end of {p.name} "
                                       f"({size} bytes)")
        length = min(length, size - offset)
        return read_range(self.sysroot, p.name, p.nvmem_path, offset, length, entry.rules.access)


def match_spec(spec: str, cell: CellInfo) -> bool:
    """Does *spec* name *cell*: a DT path, ``name@off,bit``, or a plain name."""
    if spec.startswith("/"):
        return cell.of_node == spec.rstrip("/")
    sysfs_name = split_sysfs_name(spec)
    if sysfs_name is not None:
        name, offset, bit = sysfs_name
        return cell.name == name and cell.offset == offset and cell.bit_offset == bit
    return cell.name == spec


def scan(sysroot: Sysroot, config: Config, only: str | frozenset[str] | None = None
         ) -> Registry:
    """Every provider under the sysroot, or just provider(s) *only* when a caller
    names them (``get P:NAME``, ``cells P``): the answer about one provider never
    depends on the others, and a board may have hundreds."""
    wanted = frozenset((only,)) if isinstance(only, str) else only
    tree = DeviceTree(sysroot)
    entries: dict[str, ProviderEntry] = {}
    broken: dict[str, BrokenProvider] = {}
    for name in list_provider_names(sysroot):
        if wanted is not None and name not in wanted:
            continue
        result = scan_provider(sysroot, tree, name, config)
        if isinstance(result, BrokenProvider):
            broken[name] = result
        else:
            entries[name] = result
    return Registry(sysroot, config, tree, relate_providers(entries, tree), broken)
