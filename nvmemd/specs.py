"""Cell specifications: the one place that splits ``PROVIDER:NAME`` and ``PROVIDER/NAME``.

A spec is a cell name, ``name@offset,bit`` (the kernel's ``cells/`` file name),
an absolute DT path (``/soc/...``), a DT label (``&label`` or ``label``), or one
of these qualified by a provider: ``PROVIDER:NAME`` or ``PROVIDER/NAME`` (the
form ``systemd-escape`` turns into an instance name).  DT node names and labels
contain neither ``:`` nor ``/``, so a relative spec holding one names a provider.
No imports: the CLI's fast path uses this before anything else is loaded.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (start-up, issue 12)
if TYPE_CHECKING:
    from collections.abc import Iterable

SEPARATORS = (":", "/")


def split_provider(spec: str) -> tuple[str | None, str]:
    """``(provider, rest)`` of a qualified spec, ``(None, spec)`` for any other."""
    if spec.startswith(("/", "&")):
        return None, spec
    for i, ch in enumerate(spec):
        if ch in SEPARATORS:
            head, rest = spec[:i], spec[i + 1:]
            if head and rest:
                return head, rest
            return None, spec
    return None, spec


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def split_sysfs_name(spec: str) -> tuple[str, int, int] | None:
    """``(name, offset, bit)`` of the kernel's cell file name ``name@offset,bit`` (hex,
    ``nvmem_populate_sysfs_cells()``: ``"%s@%x,%x"``), or None for any other spec."""
    name, at, place = spec.rpartition("@")
    offset, comma, bit = place.partition(",")
    if not (name and at and comma) or "\n" in name:
        return None
    if not offset or not bit or not _HEX_DIGITS.issuperset(offset) or not _HEX_DIGITS.issuperset(
            bit):
        return None
    return name, int(offset, 16), int(bit, 16)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the names closest to *name* (a typo), else ``""``."""
    import difflib  # error paths only

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
