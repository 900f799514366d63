"""``drivers/nvmem/layouts/fixed-layout.c``: the cells of ``nvmem-layout { compatible =
"fixed-layout"; }`` are its ``reg`` children, parsed like legacy cells."""

from __future__ import annotations

from ..cells import add_cells_from_dt
from . import LayoutContext, LayoutResult


def parse(ctx: LayoutContext) -> LayoutResult:
    """``fixed_layout_add_cells()`` → ``nvmem_add_cells_from_dt(nvmem, layout node)``."""
    r = add_cells_from_dt(ctx.node, ctx.access, "fixed-layout")
    return LayoutResult(cells=r.cells, errors=list(r.errors), not_created=r.not_created)
