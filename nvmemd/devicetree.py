"""The live device tree, read as raw bytes.

The kernel exports one file per property and one directory per node under
``/sys/firmware/devicetree/base`` (``/proc/device-tree`` links there).  A
property's bytes are untyped: this module never guesses a type, it hands out
``bytes`` and leaves decoding to the binding that knows (``reg`` is be32 pairs,
``compatible`` a NUL-separated string list, ...).

``readdir()`` does not return children in DT order, yet the order matters (a
bad cell stops a fixed layout after the cells before it).  The boot blob at
``/sys/firmware/fdt`` has the order; when it can be read it is parsed with
pylibfdt (imported only then).  Otherwise children are sorted by unit address,
which is the order DTS authors use for cells.
"""

from __future__ import annotations

import errno
import itertools
import os

from .limits import DT_MAX_DEPTH
from .logs import get_logger
from .sysroot import Sysroot
from .values import field, value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Iterator

    import libfdt

log = get_logger(__name__)

#: Resolved node paths kept per tree (oldest dropped first): enough for every
#: node of a large board, bounded whatever paths callers ask about.
RESOLVE_CACHE_MAX = 16384

DT_BASES = ("/sys/firmware/devicetree/base", "/proc/device-tree")
FDT_BLOB = "/sys/firmware/fdt"


def node_name(path_or_basename: str) -> str:
    """The node name without ``@unit-address``, as the kernel's ``%pOFn`` prints it."""
    base = path_or_basename.rsplit("/", 1)[-1]
    return base.split("@", 1)[0]


def be32_list(raw: bytes) -> list[int]:
    """Big-endian u32 cells of a property (trailing partial cell ignored)."""
    return [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw) - 3, 4)]


def string_list(raw: bytes) -> list[str]:
    """A NUL-separated string list (``compatible``, ``nvmem-cell-names``)."""
    if not raw:
        return []
    return [s.decode("utf-8", "replace") for s in raw.rstrip(b"\0").split(b"\0")]


def _unit_address_key(basename: str) -> tuple[int, int, str]:
    _, _, unit = basename.partition("@")
    first = unit.split(",", 1)[0]
    try:
        return (0, int(first, 16), basename)
    except ValueError:
        return (1, 0, basename)


@value
class DtNode:
    """One node of the tree, addressed by its full path (``/soc/eeprom@50``)."""

    tree: DeviceTree = field(repr=False, compare=False)
    path: str

    @property
    def basename(self) -> str:
        return self.path.rsplit("/", 1)[-1] or "/"

    @property
    def name(self) -> str:
        """Node name before ``@`` (``%pOFn``)."""
        return node_name(self.basename)

    @property
    def parent(self) -> DtNode | None:
        if self.path == "/":
            return None
        return DtNode(self.tree, self.path.rsplit("/", 1)[0] or "/")

    def prop(self, name: str) -> bytes | None:
        """The raw bytes of property *name*, or None when it is absent."""
        return self.tree.read_property(self.path, name)

    def has_prop(self, name: str) -> bool:
        return self.prop(name) is not None

    def compatible(self) -> list[str]:
        return string_list(self.prop("compatible") or b"")

    def is_compatible(self, compat: str) -> bool:
        """``of_device_is_compatible()``: any entry, compared case-insensitively."""
        wanted = compat.lower()
        return any(c.lower() == wanted for c in self.compatible())

    def children(self) -> list[DtNode]:
        """Child nodes in DT order (see the module docstring)."""
        return [DtNode(self.tree, _join(self.path, b)) for b in self.tree.child_names(self.path)]

    def child_by_name(self, name: str) -> DtNode | None:
        """``of_get_child_by_name()``: the first child whose name before ``@`` matches."""
        for child in self.children():
            if child.name == name:
                return child
        return None

    def exists(self) -> bool:
        return self.tree.node_exists(self.path)


def _join(parent: str, basename: str) -> str:
    return ("" if parent == "/" else parent) + "/" + basename


class DeviceTree:
    """The tree under a sysroot; cheap to create, reads lazily."""

    def __init__(self, sysroot: Sysroot) -> None:
        self.sysroot = sysroot
        self.base = next((b for b in DT_BASES if sysroot.exists(b)), DT_BASES[0])
        # DT path → (resolved in-sysroot path, links followed): every node is
        # resolved once per tree, from its parent's result (a scan reads a
        # dozen properties per cell node).
        self._resolved: dict[str, tuple[str, int]] = {}
        # Built on first use, kept as long as the tree (one per scan).
        self._phandle_index: dict[int, str] | None = None
        #: Indexes the layers above build over the whole tree, by name (the
        #: consumers of each cell: consumers.consumer_index()), kept as long as it.
        self.indexes: dict[str, object] = {}
        self._fdt: libfdt.Fdt | None = None  # the boot blob, opened on first use
        self._fdt_unusable = False

    def node(self, path: str) -> DtNode:
        return DtNode(self, path if path.startswith("/") else "/" + path)

    def node_exists(self, path: str) -> bool:
        """Whether node *path* is in the tree; a directory on the way that cannot be
        searched (EACCES) raises OSError naming it: it is not an absent node."""
        return self.sysroot.is_dir(self._resolve(path)[0])

    def _resolve(self, path: str) -> tuple[str, int]:
        cache = self._resolved
        if path.count("/") > DT_MAX_DEPTH + 1:
            # Deeper than any tree the kernel unflattens: no such node, nothing cached.
            return "/.nvmemd-no-such-node/" + str(DT_MAX_DEPTH), 0
        if len(cache) > RESOLVE_CACHE_MAX:
            for key in list(itertools.islice(cache, len(cache) - RESOLVE_CACHE_MAX // 2)):
                del cache[key]
        names: list[str] = []
        p = path or "/"
        while p not in cache:
            if p == "/":
                cache["/"] = self.sysroot.resolve_from("/", self.base, 0, self.base)
                break
            p, _, name = p.rpartition("/")
            p = p or "/"
            names.append(name)
        hit = cache[p]
        while names:
            name = names.pop()
            p = p.rstrip("/") + "/" + name
            hit = self.sysroot.resolve_from(hit[0], name, hit[1], self.base + p)
            cache[p] = hit
        return hit

    def read_property(self, path: str, name: str) -> bytes | None:
        """The bytes of property *name* of node *path*; None when absent, or not a
        regular file (a FIFO, a device: refused, never opened blocking)."""
        try:
            return self.sysroot.read_file(self._resolve(path)[0] + "/" + name)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ELOOP, errno.ENAMETOOLONG):
                raise
            return None

    def child_names(self, path: str) -> list[str]:
        resolved, hops = self._resolve(path)
        host = self.sysroot.host_path(resolved)
        try:
            with os.scandir(host) as it:
                live = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:  # EACCES: not a node without children
            raise self.sysroot.named(e, resolved) from None
        # A real directory is no link: its resolution is known without a readlink().
        prefix = path.rstrip("/") + "/"
        cache = self._resolved
        for name in live:
            cache.setdefault(prefix + name, (resolved + "/" + name, hops))
        order = self._fdt_children(path)
        if order is None:
            return sorted(live, key=_unit_address_key)
        live_set = set(live)
        ordered = [n for n in order if n in live_set]
        # Nodes added after boot (overlays) come last, in unit-address order.
        seen = set(ordered)
        ordered += sorted((n for n in live if n not in seen), key=_unit_address_key)
        return ordered

    def of_node_path(self, host_link_target: str) -> str | None:
        """The DT path of an in-sysroot path below a device-tree base."""
        for base in DT_BASES:
            if host_link_target == base:
                return "/"
            if host_link_target.startswith(base + "/"):
                return host_link_target[len(base) :]
        return None

    def label_path(self, label: str) -> str | None:
        """The node a ``__symbols__`` label names, if the tree exports symbols."""
        raw = self.read_property("/__symbols__", label)
        if raw is None:
            return None
        return raw.rstrip(b"\0").decode("utf-8", "replace")

    def by_phandle(self, phandle: int) -> DtNode | None:
        path = self._phandles().get(phandle)
        return DtNode(self, path) if path else None

    def _phandles(self) -> dict[int, str]:
        """phandle -> node path, from one walk of the whole tree (on first use)."""
        if self._phandle_index is None:
            out: dict[int, str] = {}
            for node in self.walk(self.node("/")):
                raw = node.prop("phandle") or node.prop("linux,phandle")
                if raw and len(raw) == 4:
                    out[int.from_bytes(raw, "big")] = node.path
            self._phandle_index = out
        return self._phandle_index

    def walk(self, start: DtNode) -> Iterator[DtNode]:
        """*start* and every node below it, depth first, at most :data:`DT_MAX_DEPTH` levels
        below ``/`` (deeper nodes are skipped, with a warning: the kernel refuses them)."""
        stack = [start]
        warned = False
        while stack:
            node = stack.pop()
            yield node
            if node.path.count("/") >= DT_MAX_DEPTH:
                if not warned:
                    log.warning("device tree deeper than %d levels below %s: ignoring the rest",
                                DT_MAX_DEPTH, node.path[:200])
                    warned = True
                continue
            stack.extend(reversed(node.children()))

    def _fdt_children(self, path: str) -> list[str] | None:
        """The children of node *path* in the boot blob's order; None when the blob
        is unreadable or has no such node (added after boot by an overlay)."""
        if self._fdt is None:
            if self._fdt_unusable:
                return None
            self._fdt = self._open_fdt()
            if self._fdt is None:
                self._fdt_unusable = True
                return None
        try:
            return fdt_children(self._fdt, path)
        except Exception:  # a name libfdt cannot take (not UTF-8), a corrupt node
            return None

    def _open_fdt(self) -> libfdt.Fdt | None:
        try:
            blob = self.sysroot.read_bytes(FDT_BLOB)
        except (OSError, ValueError):
            return None
        import libfdt  # Debian python3-libfdt / PyPI pylibfdt; only needed here

        try:
            return libfdt.Fdt(blob)  # checks the header
        except Exception as e:  # a corrupt blob must not stop the scan
            log.warning("ignoring unreadable %s: %s", FDT_BLOB, e)
            return None


def fdt_children(fdt: libfdt.Fdt, path: str) -> list[str] | None:
    """The names of node *path*'s children in the flattened tree, in order (only the
    nodes a scan lists are looked up: a board's blob has thousands)."""
    import libfdt

    offset = fdt.path_offset(path, libfdt.QUIET_NOTFOUND)
    if offset < 0:
        return None
    names: list[str] = []
    child = fdt.first_subnode(offset, libfdt.QUIET_NOTFOUND)
    while child >= 0:
        names.append(fdt.get_name(child))
        child = fdt.next_subnode(child, libfdt.QUIET_NOTFOUND)
    return names
