"""Where the running kernel and the device tree disagree, or another kernel would answer
differently: structured findings the front ends print (``nvmemd-query verify``).

So that a kernel upgrade never silently loses a MAC address, three kinds:

``legacy-ignored``
    a provider's direct DT children with ``reg`` that the running kernel ignores (the
    driver does not set ``add_legacy_fixed_of_cells``, v6.7+) but a kernel before 6.7
    created as cells (``nvmem_add_cells_from_legacy_of()`` for every provider then, except
    MTD partitions without ``nvmem-cells``, which had no of_node: ``mtd_nvmem_add()``);
``legacy-differs``
    the rule sets of :mod:`nvmemd.kernel_version` decide the legacy cells differently
    (a driver that opts in on 7.2 only, e.g. ``s32g-ocotp-nvmem``, ``rtc-s35390a``);
``read-bounds``
    a cell whose ``cells/`` read fails on some kernel (:mod:`nvmemd.read_bounds`), or reads
    as something nvmemd cannot know, with the kernels it fails on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from .cells import add_cells_from_dt
from .kernel_rules import cell_rules
from .kernel_version import SERIES, VERIFIED_ON
from .model import ProviderEntry
from .read_bounds import verdict
from .registry import Registry

if TYPE_CHECKING:
    from .kernel_version import Series

FindingKind = Literal["legacy-ignored", "legacy-differs", "read-bounds"]

#: Cells whose loss matters most: the names the bindings give MAC addresses.
_MAC_NAMES: Final = ("mac-address", "mac-base", "ethaddr", "base-mac-address", "mac")


def _is_mac(name: str) -> bool:
    return any(name == n or name.startswith(n + "-") or name.endswith("-" + n)
               for n in _MAC_NAMES) or "ethaddr" in name


def _printable(text: str) -> str:
    """DT node names are bytes (surrogate-escaped): show the non-UTF-8 ones as ``\\xNN``
    (as records.printable does), so that every front end can print a finding."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    provider: str
    message: str  # one line, for people
    cells: tuple[str, ...] = ()  # DT paths (legacy-*) or cells/ file names (read-bounds)
    kernels: tuple[str, ...] = ()  # the kernels the finding is about ("<6.7", "6.12", "7.2")
    source: str = ""  # kernel file: function
    mac: bool = False  # a MAC address is among the cells

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", _printable(self.message))
        object.__setattr__(self, "cells", tuple(_printable(c) for c in self.cells))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cells"] = list(self.cells)
        d["kernels"] = list(self.kernels)
        return d


def _kernel(series: Series) -> str:
    return f"Linux {series} (verified on {VERIFIED_ON[series]})"


def legacy_findings(registry: Registry, entry: ProviderEntry) -> list[Finding]:
    p = entry.provider
    tree = registry.tree
    if tree is None or p.of_node is None or not tree.node(p.of_node).exists():
        return []
    config = registry.config
    running = config.series()
    out: list[Finding] = []
    if not entry.rules.legacy_cells and config.legacy_mode() == "opt-in":
        older = cell_rules(p, "all", config.extra_legacy_compatibles, running)
        node = tree.node(p.of_node)
        children = [c for c in node.children()
                    if c.name != "nvmem-layout" and c.has_prop("reg")]
        if older.legacy_cells and older.of_node_used and children:
            parsed = add_cells_from_dt(node, older.access, "legacy", older.fixup)
            names = [c.path for c in children]
            mac = any(_is_mac(c.name) for c in children)
            what = (f"{len(parsed.cells)} legacy cell(s)" if not parsed.errors else
                    f"{len(children)} legacy child node(s) (one invalid: the older kernel "
                    "failed the whole provider)")
            out.append(Finding(
                "legacy-ignored", p.name,
                f"{p.name}: these {what} are ignored by the running kernel "
                f"({entry.rules.reason}) but were created by kernels before 6.7"
                + ("; a MAC address among them: move it into an nvmem-layout "
                   "(fixed-layout) node" if mac else "")
                + ": " + ", ".join(names),
                tuple(names), ("<6.7",),
                "drivers/nvmem/core.c: nvmem_register() (add_legacy_fixed_of_cells, v6.7 "
                "commit 2cc3b37f5b6d)", mac))
    for other in SERIES:
        if other == running:
            continue
        rules = cell_rules(p, config.legacy_mode(), config.extra_legacy_compatibles, other)
        if rules.legacy_cells == entry.rules.legacy_cells:
            continue
        node = tree.node(p.of_node)
        children = [c for c in node.children() if c.name != "nvmem-layout" and c.has_prop("reg")]
        if not children:
            continue
        verb = "creates" if rules.legacy_cells else "ignores"
        mac = any(_is_mac(c.name) for c in children)
        out.append(Finding(
            "legacy-differs", p.name,
            f"{p.name}: {_kernel(other)} {verb} its {len(children)} legacy child cell(s) "
            f"({rules.reason}); the running rules ({running}) "
            f"{'create' if entry.rules.legacy_cells else 'ignore'} them",
            tuple(c.path for c in children), (other,), rules.reason, mac))
    return out


def bounds_findings(registry: Registry, entry: ProviderEntry) -> list[Finding]:
    p = entry.provider
    running = registry.config.series()
    out: list[Finding] = []
    for cell in entry.cells:
        outcomes = {s: verdict(p, cell.offset, cell.raw_len, s) for s in SERIES}
        failing = {s: v for s, v in outcomes.items()
                   if v.error is not None or v.outcome == "registers"}
        unknown = [s for s, v in outcomes.items() if v.case is not None and v.rule is None]
        if not failing and not unknown:
            continue
        parts = []
        for s in SERIES:
            v = outcomes[s]
            tag = " (running)" if s == running else ""
            if v.case is None:
                parts.append(f"reads on {s}{tag}")
            elif v.rule is None:
                parts.append(f"{v.case}, not modelled for {p.driver or 'this driver'} on {s}{tag}")
            elif v.error is not None:
                parts.append(f"fails with {v.errno_name} on {s}{tag}")
            elif v.outcome == "registers":
                parts.append(f"returns the chip's registers on {s}{tag}")
            else:
                parts.append(f"reads ({v.outcome}) on {s}{tag}")
        rule = next((v.rule for v in outcomes.values() if v.rule is not None), None)
        case = next(v.case for v in outcomes.values() if v.case is not None)
        out.append(Finding(
            "read-bounds", p.name,
            f"{p.name}: cell {cell.sysfs_name} ({cell.raw_len} bytes at {cell.offset:#x}, "
            f"provider {p.size} bytes, {case}): " + "; ".join(parts),
            (cell.sysfs_name,), tuple(sorted(failing)) or tuple(unknown),
            rule.source if rule else "", _is_mac(cell.name)))
    return out


def kernel_findings(registry: Registry) -> list[Finding]:
    """Every finding, provider by provider (registry order)."""
    out: list[Finding] = []
    for entry in registry:
        out.extend(legacy_findings(registry, entry))
        out.extend(bounds_findings(registry, entry))
    return out
