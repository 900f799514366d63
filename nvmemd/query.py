"""The query layer: what the daemon and the direct CLI answer, as plain records.

Both front ends (``nvmemd-query --direct`` and the D-Bus service) build their
answers here, so ``--json`` output is the same whichever way the data came.
A :class:`Query` reads through the registry as one caller may: with
``may_read_protected=False`` every read of a root-only provider is refused the
way the kernel refuses it to an unprivileged ``open()``.
"""

from __future__ import annotations

import os

from .consumers import ConsumerRef, consumers_of, lookup, netdev_of_node
from .errors import AccessDeniedError, InvalidArgumentError, NvmemError, error_from_os
from .macaddr import decode_mac_base, format_mac, is_mac_base
from .model import CellInfo, ProviderEntry
from .records import broken_record, cell_record, printable, provider_record
from .registry import Registry
from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Any

    from .records import CellRecord

#: Chunk size of `dump` reads: bounded memory whatever the provider size.
DUMP_CHUNK = 64 * 1024


def denied(entry: ProviderEntry) -> AccessDeniedError:
    """What an unprivileged reader of a root-only provider gets (reader._translate)."""
    return AccessDeniedError(f"{entry.name}: permission denied (root-only provider)")


@value
class Query:
    """Answers about one registry, as a caller that may (or may not) read root-only bytes."""

    registry: Registry
    may_read_protected: bool = True

    # --- reads, as this caller may do them ---------------------------------------

    def read_cell(self, entry: ProviderEntry, cell: CellInfo, cell_id: str | None = None,
                  index: int = 0) -> bytes:
        if entry.provider.root_only and not self.may_read_protected:
            raise denied(entry)
        return self.registry.read_cell(entry, cell, cell_id, index)

    def read_provider(self, entry: ProviderEntry, offset: int, length: int) -> bytes:
        if entry.provider.root_only and not self.may_read_protected:
            raise denied(entry)
        return self.registry.read_provider(entry, offset, length)

    # --- records -------------------------------------------------------------------

    def cell_record_with_value(self, entry: ProviderEntry, cell: CellInfo) -> CellRecord:
        rec = cell_record(entry, cell)
        value: bytes | None = None
        try:
            value = self.read_cell(entry, cell)
            rec["value"] = value.hex()
        except NvmemError as e:
            rec["value"] = None
            # a read the kernel fails: "error" is what `cat cells/...` says (read_bounds)
            kernel_error = getattr(e, "kernel_error", None)
            rec["error"] = printable(kernel_error or str(e))
            if kernel_error:
                rec["error_detail"] = printable(str(e))
        self.add_extensions(rec, entry, cell, value)
        consumers = consumers_of(self.registry.tree, cell)
        if consumers:  # only cells that DT nodes reference carry the key
            rec["consumers"] = consumers
        return rec

    def add_extensions(self, rec: CellRecord, entry: ProviderEntry, cell: CellInfo,
                       value: bytes | None, index: int = 0) -> None:
        """What nvmemd adds beyond the kernel: mac-base decoding (with a consumer's
        *index*: the address that consumer gets), the ONIE MAC range."""
        if is_mac_base(self.registry.tree, cell):
            rec["mac_base"] = True
            if value is not None:
                try:
                    rec["decoded"] = format_mac(decode_mac_base(value, index))
                except NvmemError as e:
                    rec["decoded_error"] = str(e)
        if cell.name == "num-macs" and entry.num_macs is not None and value is not None:
            rec["decoded"] = int.from_bytes(value, "big")
        elif cell.name == "mac-address" and entry.num_macs is not None and value is not None:
            rec["num_macs"] = entry.num_macs

    def providers(self) -> list[dict[str, Any]]:
        records = [provider_record(e) for e in self.registry]
        records += [broken_record(b) for b in self.registry.broken.values()]
        return sorted(records, key=lambda r: str(r["name"]))

    def _entries(self, provider: str | None) -> list[ProviderEntry]:
        if provider is None:
            return list(self.registry)
        return [self.registry.provider(provider)]

    def cells(self, provider: str | None = None) -> list[CellRecord]:
        return [self.cell_record_with_value(e, c)
                for e in self._entries(provider) for c in e.cells]

    def errors(self, provider: str | None = None) -> list[str]:
        errs = [err for e in self._entries(provider) for err in e.errors]
        if provider is None:
            errs += [b.error for b in self.registry.broken.values()]
        return errs

    def get(self, spec: str, provider: str | None) -> tuple[CellRecord, bytes]:
        entry, cell = self.registry.resolve_cell(spec, provider)
        record = cell_record(entry, cell)
        value = self.read_cell(entry, cell)
        self.add_extensions(record, entry, cell, value)
        return record, value

    def resolve_consumer(self, name: str, consumer: str | None = None,
                         netdev: str | None = None
                         ) -> tuple[ProviderEntry, CellInfo, ConsumerRef]:
        """The cell DT node *consumer* (or network interface *netdev*) names *name*."""
        registry = self.registry
        try:
            if netdev is not None:
                consumer = netdev_of_node(registry.sysroot, registry.tree, netdev)
            return lookup(registry, consumer or "/", name)
        except OSError as e:  # a device tree this process may not read: not "no such node"
            raise error_from_os(e) from None

    def get_consumer(self, name: str, consumer: str | None = None, netdev: str | None = None
                     ) -> tuple[CellRecord, bytes]:
        """What the DT consumer (or network interface) gets for its cell *name*."""
        entry, cell, ref = self.resolve_consumer(name, consumer, netdev)
        record = cell_record(entry, cell)
        value = self.read_cell(entry, cell, cell_id=name, index=ref.index)
        self.add_extensions(record, entry, cell, value, ref.index)
        record["consumer"] = ref.record()
        return record, value

    def dump(self, provider: str, offset: int, length: int | None) -> bytes:
        entry = self.registry.provider(provider)
        size = entry.provider.size
        if offset > size:
            raise InvalidArgumentError(f"offset {offset:#x} is past the end of {provider} "
                                       f"({size} bytes)")
        end = size if length is None else min(offset + length, size)
        chunks = [self.read_provider(entry, pos, min(DUMP_CHUNK, end - pos))
                  for pos in range(offset, end, DUMP_CHUNK)]
        if not chunks:
            chunks.append(self.read_provider(entry, offset, 0))  # access and presence
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
                difference = self._compare(entry, ours[name], f"{p.sys_path}/cells/{name}")
                if difference:
                    report["differences"].append(f"{p.name}: {name}: {difference}")
            report["checked"].append(f"{p.name}: {len(kernel)} kernel cell(s)")
        # what another kernel would do differently (legacy cells, read bounds)
        from .findings import kernel_findings

        report["findings"] = [f.message for f in kernel_findings(self.registry)]
        return report

    def _compare(self, entry: ProviderEntry, cell: CellInfo, kernel_file: str
                 ) -> str | None:
        """How the kernel's ``cells/`` file and nvmemd's read of *cell* differ, if they do."""
        try:
            # not following a link out of the sysroot, never blocking on a FIFO
            theirs: bytes | None = self.registry.sysroot.read_file(kernel_file)
        except OSError as e:
            theirs, their_err = None, e.strerror
        try:
            mine: bytes | None = self.read_cell(entry, cell)
        except NvmemError as e:
            mine, my_err = None, str(e)
        if theirs is None and mine is None:
            return None
        if theirs is None:
            return f"kernel read fails ({their_err}), nvmemd reads {mine.hex() if mine else ''}"
        if mine is None:
            return f"kernel reads {theirs.hex()}, nvmemd fails ({my_err})"
        if theirs != mine:
            return f"kernel {theirs.hex()} != nvmemd {mine.hex()}"
        return None
