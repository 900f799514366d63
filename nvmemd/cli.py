"""``nvmemd-query``: providers and cells for scripts and people.

Direct mode reads sysfs and the device tree itself; it imports neither
pyudev nor dbus-fast, so a ``get`` costs little more than starting Python.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO, Final

from . import __version__
from .errors import (
    AccessDeniedError,
    ConfigError,
    InvalidArgumentError,
    NotFoundError,
    NvmemError,
    ProviderGoneError,
    ProviderIOError,
    SysrootError,
)
from .formats import FORMATS, format_value
from .macaddr import MAC_MODES

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1  # also: `verify` found differences
EXIT_INVALID: Final = 2
EXIT_NOT_FOUND: Final = 3
EXIT_ACCESS: Final = 4
EXIT_IO: Final = 5
EXIT_GONE: Final = 6
EXIT_TIMEOUT: Final = 7

#: Most specific class first.
EXIT_CODES: Final[tuple[tuple[type[NvmemError], int], ...]] = (
    (InvalidArgumentError, EXIT_INVALID),
    (ConfigError, EXIT_INVALID),
    (NotFoundError, EXIT_NOT_FOUND),
    (AccessDeniedError, EXIT_ACCESS),
    (ProviderGoneError, EXIT_GONE),
    (ProviderIOError, EXIT_IO),
    (SysrootError, EXIT_IO),
)


def exit_code_for(error: NvmemError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return EXIT_FAILURE


def _int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="nvmemd-query",
        description="Read NVMEM providers and cells as the Linux kernel defines them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--sysroot", metavar="DIR",
                        help="read sysfs and the device tree below DIR "
                             "(default: $NVMEMD_SYSROOT or /)")
    parser.add_argument("--config", metavar="FILE",
                        help="configuration file "
                             "(default: /etc/nvmemd/nvmemd.toml under the sysroot)")
    parser.add_argument("--direct", action="store_true",
                        help="read sysfs directly even when the daemon is running")
    bus = parser.add_mutually_exclusive_group()
    bus.add_argument("--address", metavar="ADDR",
                     help="ask the daemon on the D-Bus bus at ADDR")
    bus.add_argument("--session", action="store_true",
                     help="ask the daemon on the session bus")
    parser.add_argument("-v", "--verbose", action="store_true", help="log warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("providers", parents=[common], help="list nvmem providers")

    p = sub.add_parser("cells", parents=[common], help="list cells with their values")
    p.add_argument("provider", nargs="?", help="only this provider")

    p = sub.add_parser("get", parents=[common], help="read one cell")
    p.add_argument("spec", help="name, PROVIDER:NAME, NAME@OFFSET,BIT, DT path or DT label; "
                                "with --consumer/--netdev: the consumer's name for the cell")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--provider", metavar="P", help="look only at provider P")
    where.add_argument("--consumer", metavar="NODE",
                       help="read as the DT consumer NODE (path or label) does: its "
                            "nvmem-cell-names entry SPEC, with its index argument")
    where.add_argument("--netdev", metavar="IF",
                       help="like --consumer, for the DT node of network interface IF")
    p.add_argument("--format", "-f", choices=FORMATS, default="hex")
    p.add_argument("--endian", choices=("little", "big"), default="little",
                   help="byte order of the u8..u64 formats")
    p.add_argument("--index", type=_int, default=0, metavar="N",
                   help="with --format mac: address N of the range the cell's MAC starts")
    p.add_argument("--mac-mode", choices=MAC_MODES, default="48",
                   help="how --index adds: 48 = the kernel's eth_addr_add() (carries into "
                        "the OUI), 24 = OpenWrt's macaddr_add (NIC part only)")

    p = sub.add_parser("dump", parents=[common], help="hexdump a provider's raw bytes")
    p.add_argument("provider")
    p.add_argument("--offset", type=_int, default=0)
    p.add_argument("--length", type=_int, default=None, help="default: to the end")

    p = sub.add_parser("verify", parents=[common],
                       help="compare with the kernel's cells/ directories (6.8+)")
    p.add_argument("--findings", action="store_true",
                   help="also what other kernel versions would do differently "
                        "(computed locally: implies --direct)")

    p = sub.add_parser("wait", help="wait until a cell is published (exit 7 on timeout)")
    p.add_argument("spec", help="as for get")
    p.add_argument("--timeout", type=float, default=90.0, metavar="S",
                   help="give up after S seconds (default 90)")

    p = sub.add_parser("snapshot", help="record the nvmem state for a bug report")
    p.add_argument("output", metavar="OUT.tar.gz")
    p.add_argument("--include-protected", action="store_true",
                   help="also record the contents of root-only providers")
    p.add_argument("--max-provider-bytes", type=_int, default=16 * 1024 * 1024, metavar="N",
                   help="record at most N bytes of each provider (default 16 MiB)")
    return parser


# --- output ------------------------------------------------------------------------


def _print_json(out: BinaryIO, data: Any) -> None:
    import json  # only for --json: 2 ms of start-up otherwise

    out.write(json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n")


def _table(out: BinaryIO, rows: list[list[str]]) -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        out.write(line.encode("utf-8", "backslashreplace") + b"\n")


def _short_hex(value: str | None, error: str | None) -> str:
    if value is None:
        return f"<{error or 'unreadable'}>"
    return value if len(value) <= 64 else value[:64] + "…"


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


def run(args: argparse.Namespace, out: BinaryIO) -> int:
    if args.command == "snapshot":
        return snapshot(args, out)
    backend = _dbus_backend(args)
    if backend is not None:
        try:
            if args.command == "wait":
                return EXIT_OK if backend.wait(args.spec, args.timeout) else EXIT_TIMEOUT
            return dispatch(backend, args, out)
        finally:
            backend.close()
    if args.command == "wait":
        return _direct_wait(args)
    from .backend_direct import DirectBackend

    only = named_provider(args)
    return dispatch(DirectBackend.open(args.sysroot, args.config, only), args, out)


def named_provider(args: argparse.Namespace) -> str | None:
    """The one provider a command is about, when it names one; else None (all)."""
    if args.command in ("cells", "dump"):
        return str(args.provider) if args.provider else None
    if args.command != "get" or args.consumer is not None or args.netdev is not None:
        return None
    if args.provider:
        return str(args.provider)
    head, colon, _ = args.spec.partition(":")
    if colon and not args.spec.startswith("/") and head:
        from .providers import NVMEM_BUS
        from .sysroot import Sysroot

        if os.path.lexists(Sysroot.from_arg(args.sysroot).host_path(f"{NVMEM_BUS}/{head}")):
            return str(head)
    return None


#: Where the system bus listens when $DBUS_SYSTEM_BUS_ADDRESS is unset.
SYSTEM_BUS_SOCKET: Final = "/run/dbus/system_bus_socket"


def _system_bus_present() -> bool:
    """A cheap look for the system bus, before paying for the dbus-fast import."""
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    if not address:
        return os.path.exists(SYSTEM_BUS_SOCKET)
    for part in address.split(";"):
        kind, _, params = part.partition(":")
        values = dict(kv.split("=", 1) for kv in params.split(",") if "=" in kv)
        if kind == "unix" and "path" in values:
            if os.path.exists(values["path"]):
                return True
        elif kind:
            return True  # abstract sockets, tcp: just try
    return False


def _dbus_backend(args: argparse.Namespace) -> Any:
    """The D-Bus back end when the daemon is to be asked, else None (direct mode).

    ``--address``/``--session`` insist on the daemon; otherwise it is used when
    it owns its name on the system bus, unless ``--direct`` or a sysroot other
    than ``/`` is given (the daemon reads the real system).
    """
    explicit = bool(args.address or args.session)
    if args.direct or getattr(args, "findings", False):  # --direct forces sysfs
        return None
    if not explicit:
        sysroot = args.sysroot or os.environ.get("NVMEMD_SYSROOT")
        if sysroot and os.path.abspath(sysroot) != "/":
            return None
        if not _system_bus_present():
            return None
    from .backend_dbus import DBusBackend

    return DBusBackend.connect(args.address, args.session, require_daemon=explicit)


def _direct_wait(args: argparse.Namespace) -> int:
    """``wait`` without the daemon: rescan sysfs until the cell is there."""
    import time

    from .config import load_config
    from .registry import scan
    from .sysroot import Sysroot

    if not args.spec:
        raise InvalidArgumentError("empty cell specification")
    root = Sysroot.from_arg(args.sysroot)
    deadline = time.monotonic() + args.timeout
    while True:
        registry = scan(root, load_config(root, args.config))
        try:
            if registry.find_cells(args.spec):
                return EXIT_OK
        except NotFoundError:
            pass  # PROVIDER:NAME of a provider that is not there yet
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return EXIT_TIMEOUT
        time.sleep(min(0.25, remaining))


def snapshot(args: argparse.Namespace, out: BinaryIO) -> int:
    """Always direct: a snapshot records sysfs itself, not the daemon's view."""
    from pathlib import Path

    from .snapshot import take_snapshot
    from .sysroot import Sysroot

    info = take_snapshot(Sysroot.from_arg(args.sysroot), Path(args.output),
                         args.include_protected, args.max_provider_bytes)
    out.write(f"{args.output}: {len(info.providers)} provider(s)\n".encode())
    if info.protected_omitted:
        out.write(("contents of root-only providers left out (use --include-protected): "
                   + ", ".join(info.protected_omitted) + "\n").encode())
    for line in info.truncated + info.unreadable:
        out.write(f"note: {line}\n".encode())
    return EXIT_OK


def dispatch(backend: Any, args: argparse.Namespace, out: BinaryIO) -> int:
    if args.command == "providers":
        providers = backend.providers()
        if args.json:
            _print_json(out, providers)
        else:
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
                    out.write(f"{p['name']}: {note}\n".encode("utf-8", "backslashreplace"))
            for p in providers:
                for err in p.get("errors", []):
                    sys.stderr.write(f"nvmemd-query: {err}\n")
        return EXIT_OK

    if args.command == "cells":
        cells = backend.cells(args.provider)
        if args.json:
            _print_json(out, cells)
        else:
            rows = [["PROVIDER", "CELL", "BYTES", "SOURCE", "VALUE"]]
            for c in cells:
                rows.append([c["provider"], c["sysfs_name"], str(c["bytes"]), c["source"],
                             _short_hex(c.get("value"), c.get("error"))])
            _table(out, rows)
        for err in backend.errors(args.provider):
            sys.stderr.write(f"nvmemd-query: {err}\n")
        return EXIT_OK

    if args.command == "get":
        record, value = _get(backend, args)
        if args.format == "mac":
            value = _mac_value(record, value, args)
        elif args.index or args.mac_mode != "48":
            raise InvalidArgumentError("--index and --mac-mode derive a MAC address: "
                                       "use --format mac")
        formatted = format_value(value, args.format, args.endian)
        if args.json:
            record = dict(record, value=value.hex())
            if args.format not in ("hex", "raw"):
                record["formatted"] = formatted.decode().rstrip("\n")
            _print_json(out, record)
        else:
            out.write(formatted)
        return EXIT_OK

    if args.command == "dump":
        offset = args.offset
        data = backend.dump(args.provider, offset, args.length)
        if args.json:
            _print_json(out, {"provider": args.provider, "offset": offset,
                              "length": len(data), "data": data.hex()})
        else:
            out.write(hexdump(data, offset))
        return EXIT_OK

    if args.command == "verify":
        report = backend.verify()
        if args.findings:  # direct back end only (_dbus_backend)
            report["findings"] = backend.findings()
        if args.json:
            _print_json(out, report)
        else:
            for line in report["checked"]:
                out.write(f"checked {line}\n".encode())
            for line in report["skipped"]:
                out.write(f"skipped {line}\n".encode())
            for line in report["differences"]:
                out.write(f"DIFFERENCE {line}\n".encode())
            for line in report.get("findings", []):
                out.write(f"FINDING {line}\n".encode())
            if not report["checked"]:
                out.write(b"nothing to verify: no provider has a kernel cells/ directory "
                          b"(kernel older than 6.8?)\n")
        return EXIT_FAILURE if report["differences"] else EXIT_OK

    raise InvalidArgumentError(f"unknown command {args.command}")


def _get(backend: Any, args: argparse.Namespace) -> tuple[dict[str, Any], bytes]:
    if args.consumer is None and args.netdev is None:
        record, value = backend.get(args.spec, args.provider)
        return dict(record), value
    if args.index:
        raise InvalidArgumentError("--index conflicts with --consumer/--netdev: the "
                                   "consumer's nvmem-cells argument is the index")
    if not hasattr(backend, "get_consumer"):
        raise InvalidArgumentError("this back end cannot resolve DT consumers; use --direct")
    record, value = backend.get_consumer(args.spec, consumer=args.consumer, netdev=args.netdev)
    return dict(record), value


def _mac_value(record: dict[str, Any], value: bytes, args: argparse.Namespace) -> bytes:
    """The MAC a ``--format mac`` read prints: mac-base decoded, then ``--index`` added."""
    from .macaddr import decode_mac_base, derive

    if record.get("mac_base"):
        # nvmemd extension (OpenWrt's mac-base decoding; mainline returns the raw cell)
        index = int(record.get("consumer", {}).get("index", 0))
        value = decode_mac_base(value, index)
    num_macs = record.get("num_macs")
    if args.index and num_macs is not None and args.index >= int(num_macs):
        raise InvalidArgumentError(f"--index {args.index}: the ONIE EEPROM allots {num_macs} "
                                   "address(es) (num-macs)")
    if args.index:
        value = derive(value, args.index, args.mac_mode)
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL,
                        format="nvmemd-query: %(message)s")
    out = sys.stdout.buffer
    try:
        return run(args, out)
    except NvmemError as e:
        sys.stderr.write(f"nvmemd-query: {e}\n")
        return exit_code_for(e)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # never a traceback for users; -v shows it
        logging.getLogger("nvmemd").debug("internal error", exc_info=True)
        sys.stderr.write(f"nvmemd-query: internal error: {e!r} (please report; "
                         "run with -v for details)\n")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
