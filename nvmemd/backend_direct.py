"""The CLI's direct back end: the registry built from sysfs, in this process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .config import load_config
from .devicetree import DeviceTree
from .errors import InvalidArgumentError, NvmemError
from .records import (
    CellRecord,
    add_extensions,
    broken_record,
    cell_record,
    cell_record_with_value,
    provider_record,
)
from .registry import Registry, scan
from .sysroot import Sysroot

#: Chunk size of `dump` reads: bounded memory whatever the provider size.
DUMP_CHUNK = 64 * 1024


@dataclass
class DirectBackend:
    registry: Registry

    @classmethod
    def open(cls, sysroot: str | None, config: str | None, only: str | None = None
             ) -> DirectBackend:
        """The registry of every provider, or of provider *only* (see registry.scan)."""
        root = Sysroot.from_arg(sysroot)
        return cls(scan(root, load_config(root, config), only))

    def providers(self) -> list[dict[str, Any]]:
        records = [provider_record(e) for e in self.registry]
        records += [broken_record(b) for b in self.registry.broken.values()]
        return sorted(records, key=lambda r: str(r["name"]))

    def _entries(self, provider: str | None) -> list[Any]:
        if provider is None:
            return list(self.registry)
        return [self.registry.provider(provider)]

    def cells(self, provider: str | None = None) -> list[CellRecord]:
        return [cell_record_with_value(self.registry, e, c)
                for e in self._entries(provider) for c in e.cells]

    def errors(self, provider: str | None = None) -> list[str]:
        errs = [err for e in self._entries(provider) for err in e.errors]
        if provider is None:
            errs += [b.error for b in self.registry.broken.values()]
        return errs

    def get(self, spec: str, provider: str | None) -> tuple[CellRecord, bytes]:
        entry, cell = self.registry.resolve_cell(spec, provider)
        record = cell_record(entry, cell)
        value = self.registry.read_cell(entry, cell)
        add_extensions(record, self.registry, entry, cell, value)
        return record, value

    def get_consumer(self, name: str, consumer: str | None = None, netdev: str | None = None
                     ) -> tuple[CellRecord, bytes]:
        """What the DT consumer (or network interface) gets for its cell *name*."""
        from .consumers import lookup, netdev_of_node

        registry = self.registry
        if netdev is not None:
            tree = registry.tree or DeviceTree(registry.sysroot)
            consumer = netdev_of_node(registry.sysroot, tree, netdev)
        entry, cell, ref = lookup(registry, consumer or "/", name)
        record = cell_record(entry, cell)
        value = registry.read_cell(entry, cell, cell_id=name, index=ref.index)
        add_extensions(record, registry, entry, cell, value)
        record["consumer"] = ref.record()
        return record, value

    def dump(self, provider: str, offset: int, length: int | None) -> bytes:
        entry = self.registry.provider(provider)
        if offset > entry.provider.size:
            raise InvalidArgumentError(f"offset {offset:#x} is past the end of {provider} "
                                       f"({entry.provider.size} bytes)")
        end = entry.provider.size if length is None else min(offset + length, entry.provider.size)
        chunks: list[bytes] = []
        pos = offset
        while pos < end or (pos == offset and not chunks):
            n = min(DUMP_CHUNK, end - pos)
            chunks.append(self.registry.read_provider(entry, pos, n))
            pos += n
            if n <= 0:
                break
        return b"".join(chunks)

    def verify(self) -> dict[str, list[str]]:
        """Compare every provider that has a kernel ``cells/`` directory."""
        report: dict[str, list[str]] = {"checked": [], "skipped": [], "differences": []}
        sysroot = self.registry.sysroot
        for entry in self.registry:
            p = entry.provider
            if not p.has_kernel_cells:
                if entry.cells:
                    report["skipped"].append(f"{p.name}: the kernel shows no cells/ directory")
                continue
            cells_dir = sysroot.host_path(p.sys_path + "/cells")
            kernel = set(os.listdir(cells_dir))
            ours = {c.sysfs_name: c for c in entry.cells}
            for name in sorted(kernel - ours.keys()):
                report["differences"].append(f"{p.name}: kernel has cell {name}, nvmemd does not")
            for name in sorted(ours.keys() - kernel):
                report["differences"].append(f"{p.name}: nvmemd has cell {name}, kernel does not")
            for name in sorted(kernel & ours.keys()):
                try:
                    theirs: bytes | None = (cells_dir / name).read_bytes()
                except OSError as e:
                    theirs = None
                    their_err = e.strerror
                try:
                    mine: bytes | None = self.registry.read_cell(entry, ours[name])
                except NvmemError as e:
                    mine = None
                    my_err = str(e)
                if theirs is None and mine is None:
                    continue
                if theirs is None:
                    report["differences"].append(
                        f"{p.name}: {name}: kernel read fails ({their_err}), nvmemd reads "
                        f"{mine.hex() if mine is not None else ''}")
                elif mine is None:
                    report["differences"].append(
                        f"{p.name}: {name}: kernel reads {theirs.hex()}, nvmemd fails ({my_err})")
                elif theirs != mine:
                    report["differences"].append(
                        f"{p.name}: {name}: kernel {theirs.hex()} != nvmemd {mine.hex()}")
            report["checked"].append(f"{p.name}: {len(kernel)} kernel cell(s)")
        return report

    def findings(self) -> list[str]:
        """What another kernel would do differently (legacy cells, read bounds)."""
        from .findings import kernel_findings

        return [f.message for f in kernel_findings(self.registry)]


