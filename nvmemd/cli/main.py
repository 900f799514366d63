"""``nvmemd-query``: providers and cells for scripts and people.

Direct mode reads sysfs and the device tree itself; it imports neither
pyudev nor dbus-fast.  Each subcommand is one ``cmd_*`` function of
:data:`COMMANDS`, talking to a :class:`~nvmemd.cli.backend.Backend`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from .. import __version__
from ..errors import InvalidArgumentError, NotFoundError, ProviderGoneError, ProviderIOError
from ..macaddr import MAC_MODES
from ..specs import did_you_mean
from .common import (  # noqa: F401  (exit codes and helpers: nvmemd.cli.main's names too)
    EXIT_ACCESS,
    EXIT_CODES,
    EXIT_FAILURE,
    EXIT_GONE,
    EXIT_INVALID,
    EXIT_IO,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_TIMEOUT,
    check_options,
    cmd_get,
    exit_code_for,
    exit_code_for_os_error,
    guarded,
    open_backend,
    printable,
    setup_logging,
)
from .common import print_json as _print_json
from .common import warn as _warn
from .formats import FORMATS, text_of

if TYPE_CHECKING:
    from .backend import Backend

#: Largest --max-provider-bytes (a bug report, not a backup).
MAX_SNAPSHOT_BYTES: Final = 1 << 31


def _int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _size(text: str) -> int:
    value = _int(text)
    if value > MAX_SNAPSHOT_BYTES:
        raise argparse.ArgumentTypeError(f"at most {MAX_SNAPSHOT_BYTES} (2 GiB): {text!r}")
    return value


def _seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for mistyped subcommands, choices and options."""

    def error(self, message: str) -> Any:  # -> NoReturn
        import re

        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            message += did_you_mean(m[1], re.findall(r"'([^']*)'", m[2]))
        return super().error(message)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """As argparse's, but an unknown option is answered for the subcommand it was
        given to: the names that subcommand takes, or which commands take it."""
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(ns, "command", None)
            # the usage of the subcommand the option was given to, as argparse's own errors
            (self._subcommands().get(command or "") or self).error(
                self._unrecognized(command, extras))
        return ns

    def _unrecognized(self, command: str | None, extras: list[str]) -> str:
        message = f"unrecognized arguments: {' '.join(extras)}"
        option = extras[0].split("=")[0]
        if not option.startswith("-"):
            return message
        commands = self._subcommands()
        mine = commands.get(command) if command else None
        options = _option_strings(mine if mine else self)
        if command and mine:
            elsewhere = [name for name, sub in commands.items()
                         if option in _option_strings(sub)]
            if elsewhere:
                hint = _HINTS.get((command, option), "")
                return (f"{option} is not an option of {command} (it is one of "
                        f"{', '.join(elsewhere)}){hint}")
        return message + did_you_mean(option, options)

    def _subcommands(self) -> dict[str, argparse.ArgumentParser]:
        for a in self._actions:
            if isinstance(a, argparse._SubParsersAction):
                return dict(a.choices)
        return {}


#: What to say when an option of one subcommand is given to another.
_HINTS: Final = {("dump", "--provider"): ": dump PROVIDER names it"}


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings]


def _global_options(p: argparse.ArgumentParser, top: bool) -> None:
    """Options valid before and after the subcommand (``cells -v``).

    On subcommands their defaults are SUPPRESS, so that a value given before
    the subcommand is not reset by the subparser.
    """
    d: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--sysroot", metavar="DIR", **d,
                   help="read sysfs and the device tree below DIR "
                        "(default: $NVMEMD_SYSROOT or /); implies --direct")
    p.add_argument("--config", metavar="FILE", **d,
                   help="configuration file "
                        "(default: /etc/nvmemd/nvmemd.toml under the sysroot)")
    p.add_argument("--direct", action="store_true", **d,
                   help="read sysfs directly even when the daemon is running")
    p.add_argument("--address", metavar="ADDR", **d,
                   help="ask the daemon on the D-Bus bus at ADDR")
    p.add_argument("--session", action="store_true", **d,
                   help="ask the daemon on the session bus")
    # After the subcommand -v counts into verbose_after (a subparser starts from a fresh
    # namespace, so it could not add to the count before it); main() adds the two.
    p.add_argument("-v", "--verbose", action="count", **({"default": 0} if top else d),
                   dest="verbose" if top else "verbose_after",
                   help="log warnings and errors (-vv: also debug messages)")
    p.add_argument("--json", action="store_true", **({} if top else d),
                   help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    _global_options(common, top=False)

    parser = Parser(
        prog="nvmemd-query",
        description="Read NVMEM providers and cells as the Linux kernel defines them.",
        epilog="Exit status: 0 ok, 1 failure (verify: differences), 2 invalid argument, "
               "3 not found, 4 permission denied, 5 I/O or sysroot error, 6 provider gone, "
               "7 wait timed out. See nvmemd-query(1).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="see nvmemd-query COMMAND --help",
                                parser_class=Parser)

    p = sub.add_parser("providers", parents=[common], help="list nvmem providers")
    p.add_argument("--names", action="store_true",
                   help="only the names, one a line (scripts, shell completion)")

    p = sub.add_parser("cells", parents=[common], help="list cells with their values")
    p.add_argument("provider", nargs="?", help="only this provider")
    p.add_argument("--provider", metavar="P", dest="provider_option",
                   help="the same as the PROVIDER argument (as get and wait take it)")
    p.add_argument("--names", action="store_true",
                   help="only PROVIDER/NAME of each cell, one a line "
                        "(scripts, shell completion)")

    p = sub.add_parser("get", parents=[common], help="read cells")
    p.add_argument("spec", nargs="+",
                   help="name, PROVIDER:NAME, PROVIDER/NAME, NAME@OFFSET,BIT, DT path or "
                        "DT label; with --consumer/--netdev: the consumer's name for the "
                        "cell; with --env: VAR=SPEC names the variable. Several: one "
                        "line each (a JSON array with --json)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--provider", metavar="P", help="look only at provider P")
    where.add_argument("--consumer", metavar="NODE",
                       help="read as the DT consumer NODE (path or label) does: its "
                            "nvmem-cell-names entry SPEC, with its index argument")
    where.add_argument("--netdev", metavar="IF",
                       help="like --consumer, for the DT node of network interface IF")
    p.add_argument("--format", "-f", choices=FORMATS, default="hex",
                   help="how to print the value (default hex): raw bytes, a MAC address "
                        "(checked as the kernel's is_valid_ether_addr()), UTF-8 text (a C "
                        "string: up to the first NUL, trailing 0xff padding removed; control "
                        "characters refused), an unsigned integer")
    p.add_argument("--endian", choices=("little", "big"), default=None,
                   help="byte order of the u16, u32 and u64 formats (default little)")
    p.add_argument("--index", type=_int, default=0, metavar="N",
                   help="with --format mac: address N of the range the cell's MAC starts")
    p.add_argument("--mac-mode", choices=MAC_MODES, default="48",
                   help="how --index adds: 48 = the kernel's eth_addr_add() (carries into "
                        "the OUI, N up to ff:ff:ff:ff:ff:ff), 24 = OpenWrt's macaddr_add "
                        "(NIC part only, N < 2^24)")
    p.add_argument("--env", action="store_true",
                   help="print VAR=\"value\" lines for sh eval and systemd EnvironmentFile=: "
                        "VAR from VAR=SPEC or the cell name (upper case, [A-Z0-9_])")

    p = sub.add_parser("dump", parents=[common], help="hexdump a provider's raw bytes")
    p.add_argument("provider", help="the provider's name (see providers)")
    p.add_argument("--offset", type=_int, default=0, help="first byte (default 0)")
    p.add_argument("--length", type=_int, default=None, help="bytes (default: to the end)")

    from . import identity  # self-contained subcommand

    identity.add_parser(sub, common)

    sub.add_parser("verify", parents=[common],
                   help="compare with the kernel's cells/ directories (6.8+)")

    p = sub.add_parser("wait", parents=[common],
                       help="wait until a cell can be read as get reads it (exit 7 on timeout)")
    p.add_argument("spec", help="as for get (PROVIDER/NAME: a systemd-escape'd instance name)")
    p.add_argument("--provider", metavar="P", help="look only at provider P")
    p.add_argument("--timeout", type=_seconds, default=90.0, metavar="S",
                   help="give up after S seconds (default 90)")

    p = sub.add_parser("snapshot", parents=[common],
                       help="record the nvmem state for a bug report")
    p.add_argument("output", metavar="OUT.tar.gz", help="the archive; - for standard output")
    p.add_argument("--include-protected", action="store_true",
                   help="also record the contents of root-only providers")
    p.add_argument("--max-provider-bytes", type=_size, default=16 * 1024 * 1024, metavar="N",
                   help="record at most N bytes of each provider (default 16 MiB)")
    return parser


# --- output ------------------------------------------------------------------------


def _table(out: BinaryIO, rows: list[list[str]]) -> None:
    if not rows:
        return
    rows = [[printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        out.write(line.encode("utf-8", "backslashreplace") + b"\n")


def _short_hex(value: str | None, error: str | None) -> str:
    if value is None:
        return f"<{error or 'unreadable'}>"
    return value if len(value) <= 64 else value[:64] + "…"


def _text_column(value: str | None) -> str:
    """The value as a quoted string when `get --format string` prints printable text,
    else ''; inside the quotes ``"`` and ``\\`` are escaped, so that the text is read
    back the one way (as a C or JSON string literal)."""
    if value is None:
        return ""
    text = text_of(bytes.fromhex(value))
    if text is None:
        return ""
    shown = text if len(text) <= 40 else text[:40] + "…"
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'


def hexdump(data: bytes, base: int) -> bytes:
    """``hexdump -C`` style lines."""
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk[:8]) + "  " + " ".join(
            f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{base + i:08x}  {hexes:<49} |{text}|")
    lines.append(f"{base + len(data):08x}")
    return ("\n".join(lines) + "\n").encode()


# --- commands ----------------------------------------------------------------------

Command = Callable[["Backend", argparse.Namespace, BinaryIO], int]


def cmd_providers(backend: Backend, args: argparse.Namespace, out: BinaryIO) -> int:
    providers = backend.providers()
    if args.names:
        out.write("".join(printable(p["name"]) + "\n" for p in providers).encode(
            "utf-8", "backslashreplace"))
        return EXIT_OK
    if args.json:
        _print_json(out, providers)
        return EXIT_OK
    rows = [["NAME", "TYPE", "SIZE", "ACCESS", "CELLS", "LEGACY", "OF_NODE"]]
    for p in providers:
        access = ("root-only " if p.get("root_only") else "") + (
            "ro" if p.get("read_only", True) else "rw")
        rows.append([p["name"], p.get("type", "?"), str(p.get("size", "?")), access,
                     str(p["cells"]) + (" (rejected)" if p.get("rejected") else ""),
                     "yes" if p.get("legacy_cells") else "no", p.get("of_node") or "-"])
    _table(out, rows)
    for p in providers:
        for note in p.get("notes", [])[1:]:
            out.write(printable(f"{p['name']}: {note}").encode("utf-8", "backslashreplace")
                      + b"\n")
    for p in providers:
        for err in p.get("errors", []):
            _warn(err)
    return EXIT_OK


def cmd_cells(backend: Backend, args: argparse.Namespace, out: BinaryIO) -> int:
    cells = backend.cells(args.provider)
    if args.names:
        out.write("".join(printable(f"{c['provider']}/{c['name']}") + "\n" for c in cells).encode(
            "utf-8", "backslashreplace"))
        return EXIT_OK
    if args.json:
        _print_json(out, cells)
    else:
        rows = [["PROVIDER", "CELL", "BYTES", "SOURCE", "VALUE", "TEXT"]]
        for c in cells:
            rows.append([c["provider"], c["sysfs_name"], str(c["bytes"]), c["source"],
                         _short_hex(c.get("value"), c.get("error")),
                         _text_column(c.get("value"))])
        _table(out, rows)
    for err in backend.errors(args.provider):
        _warn(err)
    return EXIT_OK


def cmd_dump(backend: Backend, args: argparse.Namespace, out: BinaryIO) -> int:
    data = backend.dump(args.provider, args.offset, args.length)
    if args.json:
        _print_json(out, {"provider": args.provider, "offset": args.offset,
                          "length": len(data), "data": data.hex()})
    else:
        out.write(hexdump(data, args.offset))
    return EXIT_OK


def cmd_identity(backend: Backend, args: argparse.Namespace, out: BinaryIO) -> int:
    from . import identity

    return identity.run(backend, args, out)


def cmd_verify(backend: Backend, args: argparse.Namespace, out: BinaryIO) -> int:
    report = backend.verify()
    if args.json:
        _print_json(out, report)
    else:
        for line in report["checked"]:
            out.write(f"checked {line}\n".encode())
        for line in report["skipped"]:
            out.write(f"skipped {line}\n".encode())
        for line in report["differences"]:
            out.write(f"DIFFERENCE {line}\n".encode())
        for line in report.get("findings", []):  # kernel-version findings (findings.py)
            out.write(f"FINDING {line}\n".encode())
        if not report["checked"]:
            out.write(b"nothing to verify: no provider has a kernel cells/ directory "
                      b"(kernel older than 6.8?)\n")
    return EXIT_FAILURE if report["differences"] else EXIT_OK


#: What `wait` waits through: the cell may yet appear, or become readable.
_NOT_YET: Final = (NotFoundError, ProviderGoneError, ProviderIOError)


def cmd_wait(backend: Backend, args: argparse.Namespace, out: BinaryIO) -> int:
    """Ready once ``get SPEC`` would succeed: resolved exactly as get does, and read.

    Invalid or ambiguous specs and permission errors fail at once; on timeout
    the last reason the cell was not ready is printed.
    """
    import time

    deadline = time.monotonic() + args.timeout
    while True:
        try:
            record, value = backend.get(args.spec, args.provider)
        except _NOT_YET as e:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _warn(f"timed out after {args.timeout:g} s waiting for '{args.spec}': {e}")
                return EXIT_TIMEOUT
            backend.refresh(remaining)
            continue
        if args.json:
            _print_json(out, dict(record, value=value.hex()))
        return EXIT_OK


def cmd_snapshot(args: argparse.Namespace, out: BinaryIO) -> int:
    """Always direct: a snapshot records sysfs itself, not the daemon's view."""
    from ..snapshot import take_snapshot, write_snapshot
    from ..sysroot import Sysroot

    setup_logging(args.verbose)
    root = Sysroot.from_arg(args.sysroot)
    warning = root.validate()
    if warning:
        _warn(warning)
    if args.output == "-":
        if os.isatty(sys.stdout.fileno()):  # as gzip does: compressed bytes are no text
            raise InvalidArgumentError("snapshot -: standard output is a terminal; redirect "
                                       "it (snapshot - > board.tar.gz) or name a file")
        info = take_snapshot(root, out, args.include_protected, args.max_provider_bytes)
        report = sys.stderr.buffer
    else:
        info = write_snapshot(root, args.output, args.include_protected,
                              args.max_provider_bytes)
        report = out
    if args.json:
        _print_json(report, dict(vars(info), output=args.output))
        return EXIT_OK
    report.write(f"{args.output}: {len(info.providers)} provider(s)\n".encode())
    if info.protected_omitted:
        report.write(("contents of root-only providers left out (use --include-protected): "
                      + ", ".join(info.protected_omitted) + "\n").encode())
    for line in info.truncated + info.unreadable:
        report.write(f"note: {line}\n".encode())
    return EXIT_OK


COMMANDS: Final[dict[str, Command]] = {
    "providers": cmd_providers,
    "cells": cmd_cells,
    "get": cmd_get,
    "dump": cmd_dump,
    "identity": cmd_identity,
    "verify": cmd_verify,
    "wait": cmd_wait,
}


def run(args: argparse.Namespace, out: BinaryIO) -> int:
    check_options(args)
    if args.command == "snapshot":
        return cmd_snapshot(args, out)
    backend = open_backend(args)
    try:
        return COMMANDS[args.command](backend, args, out)
    finally:
        backend.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbose += vars(args).pop("verbose_after", 0)
    if args.command == "cells":
        option = vars(args).pop("provider_option")
        if option is not None and args.provider not in (None, option):
            parser.error(f"cells: PROVIDER {args.provider} and --provider {option} differ")
        args.provider = args.provider or option
    if args.verbose:
        setup_logging(args.verbose)
    return guarded(lambda out: run(args, out), args.verbose)


if __name__ == "__main__":
    sys.exit(main())
