"""What both of ``nvmemd-query``'s front doors share: exit codes, back-end choice, ``get``.

:mod:`nvmemd.cli.fast` (``get`` without argparse) and :mod:`nvmemd.cli.main`
(every command, argparse) run the same code from here.  Start-up matters
(issue 12): this module imports only :mod:`nvmemd.errors` and the standard
library modules ``python -c pass`` has loaded already; everything else is
imported where it is used.  *args* is an ``argparse.Namespace`` or
:class:`nvmemd.cli.fast.GetArgs` (the same attribute names).
"""

from __future__ import annotations

import os
import sys

from ..errors import (
    AccessDeniedError,
    ConfigError,
    InvalidArgumentError,
    NotFoundError,
    NvmemError,
    OutputError,
    ProviderGoneError,
    ProviderIOError,
    SysrootError,
    describe,
)
from .formats import INTEGER_FORMATS, env_line, env_name, format_value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO, Final

    from ..records import CellRecord
    from .backend import Backend

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
    (OutputError, EXIT_IO),
)


def exit_code_for(error: NvmemError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return EXIT_FAILURE


def exit_code_for_os_error(error: OSError) -> int:
    """EACCES/EPERM: 4 (as a root-only provider); every other OS error: 5 (I/O)."""
    return EXIT_ACCESS if isinstance(error, PermissionError) else EXIT_IO


#: C0 controls, DEL and C1 controls (ESC and CSI start terminal escape sequences).
_CONTROLS: Final = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}


def printable(text: str) -> str:
    """*text* safe for a terminal: control characters as ``\\xNN`` (names come from media)."""
    return text.translate(_CONTROLS)


def warn(message: str) -> None:
    """*message* on stderr, control characters escaped; its continuation lines (a
    newline and two spaces: the candidates of an ambiguous name) stay lines."""
    text = "\n  ".join(printable(part) for part in message.split("\n  "))
    sys.stderr.write(f"nvmemd-query: {text}\n")


def print_json(out: BinaryIO, data: Any) -> None:
    import json  # only for --json: 2 ms of start-up otherwise

    out.write(json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n")


def setup_logging(verbose: int) -> Any:
    """Logging to stderr at the -v level (none: silent); returns the nvmemd logger.

    Called only where logging is imported anyway (the direct back end's library
    modules log) or asked for: the D-Bus path does not pay for the import.
    """
    import logging

    if not logging.getLogger().handlers:
        level = {0: logging.CRITICAL, 1: logging.WARNING}.get(verbose, logging.DEBUG)
        logging.basicConfig(level=level, format="nvmemd-query: %(message)s")
    return logging.getLogger("nvmemd")


def guarded(run: Callable[[BinaryIO], int], verbose: int) -> int:
    """*run* (stdout as its argument) with errors as one line and an exit code."""
    if sys.stdout is None:  # started with fd 1 closed (`>&-`)
        warn("standard output is closed: nowhere to write")
        return EXIT_IO
    out: BinaryIO = _StandardOutput(sys.stdout.buffer)  # type: ignore[assignment]
    try:
        code = run(out)
        out.flush()
        return code
    except NvmemError as e:
        warn(str(e))
        return exit_code_for(e)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as e:
        warn(describe(e))
        return exit_code_for_os_error(e)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # never a traceback for users; -v shows it
        setup_logging(verbose).error("internal error", exc_info=True)
        warn(f"internal error: {e!r} (please report; run with -v for details)")
        return EXIT_FAILURE


class _StandardOutput:
    """``sys.stdout.buffer`` whose failed writes name standard output (a full disk, a
    closed file); a reader that went away stays BrokenPipeError."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        try:
            return self._stream.write(data)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(f"standard output: {e.strerror or e}") from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(f"standard output: {e.strerror or e}") from None


def check_options(args: Any) -> None:
    """Options that contradict each other: the daemon reads the real system with its own
    configuration, not a sysroot or another file; a snapshot reads sysfs itself."""
    bus = "--address" if args.address else "--session" if args.session else None
    if args.address and args.session:
        raise InvalidArgumentError("--address and --session both name a bus: give one")
    if bus and args.sysroot:
        raise InvalidArgumentError(f"--sysroot conflicts with {bus}: the daemon reads the "
                                   f"real system; drop {bus} to read the sysroot directly")
    if bus and args.config:
        raise InvalidArgumentError(f"--config conflicts with {bus}: the daemon reads its "
                                   f"own configuration; drop {bus} to read with this one")
    if bus and args.direct:
        raise InvalidArgumentError(f"--direct conflicts with {bus}")
    if bus and args.command == "snapshot":
        raise InvalidArgumentError(f"snapshot reads sysfs itself: {bus} does not apply")


# --- back ends -----------------------------------------------------------------------


def _names_a_consumer(args: Any) -> bool:
    return getattr(args, "consumer", None) is not None or getattr(args, "netdev", None) is not None


def named_providers(args: Any) -> frozenset[str] | None:
    """The providers a command is about, when it names them; else None (all).

    ``get A/x B/y`` scans A and B only.  Only providers that exist narrow the
    scan; an absent one is reported by the full registry, with the names it
    might have meant.
    """
    from ..specs import split_provider

    if args.command in ("cells", "dump"):
        heads = {args.provider} if args.provider else {None}
    elif args.command not in ("get", "wait") or _names_a_consumer(args):
        return None
    elif args.provider:
        heads = {args.provider}
    else:
        specs = args.spec if isinstance(args.spec, list) else [args.spec]
        heads = {split_provider(s.partition("=")[2] if "=" in s else s)[0] for s in specs}
    if None in heads:
        return None
    from ..providers import NVMEM_BUS
    from ..sysroot import Sysroot

    root = Sysroot.from_arg(args.sysroot)
    if all(os.path.lexists(root.host_path(f"{NVMEM_BUS}/{head}")) for head in heads):
        return frozenset(h for h in heads if h is not None)
    return None


#: Where the system bus listens when $DBUS_SYSTEM_BUS_ADDRESS is unset.
SYSTEM_BUS_SOCKET: Final = "/run/dbus/system_bus_socket"


def system_bus_present() -> bool:
    """A cheap look for the system bus, before connecting to it."""
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


def dbus_backend(args: Any) -> Backend | None:
    """The D-Bus back end when the daemon is to be asked, else None (direct mode).

    ``--address``/``--session`` insist on the daemon; otherwise it is used when
    it owns its name on the system bus, unless ``--direct`` or a sysroot other
    than ``/`` is given (the daemon reads the real system).
    """
    explicit = bool(args.address or args.session)
    if args.direct or args.config:
        return None
    if not explicit:
        sysroot = args.sysroot or os.environ.get("NVMEMD_SYSROOT")
        if sysroot and os.path.abspath(sysroot) != "/":
            return None
        if not system_bus_present():
            return None
    from ..dbus.client import DBusBackend

    return DBusBackend.connect(args.address, args.session, require_daemon=explicit)


def open_backend(args: Any) -> Backend:
    backend = dbus_backend(args)
    if backend is not None:
        return backend
    from ..sysroot import Sysroot
    from .direct import DirectBackend

    if args.verbose or "logging" in sys.modules:
        # Without -v the library's messages go nowhere: it hands them to logging
        # only once something has imported it (nvmemd.logs), which a get does not.
        setup_logging(args.verbose)
    warning = Sysroot.from_arg(args.sysroot).validate()
    if warning:
        warn(warning)
    return DirectBackend.open(args.sysroot, args.config, named_providers(args))


# --- get ---------------------------------------------------------------------------


def _get_one(backend: Backend, spec: str, args: Any) -> tuple[CellRecord, bytes]:
    if args.consumer is None and args.netdev is None:
        record, value = backend.get(spec, args.provider)
        return record, value
    return backend.get_consumer(spec, consumer=args.consumer, netdev=args.netdev)


def cmd_get(backend: Backend, args: Any, out: BinaryIO) -> int:
    if args.index and (args.consumer is not None or args.netdev is not None):
        raise InvalidArgumentError("--index conflicts with --consumer/--netdev: the "
                                   "consumer's nvmem-cells argument is the index")
    if args.format != "mac" and (args.index or args.mac_mode != "48"):
        raise InvalidArgumentError("--index and --mac-mode derive a MAC address: "
                                   "use --format mac")
    if args.env and (args.json or args.format == "raw"):
        raise InvalidArgumentError("--env prints text lines: not with --json or --format raw")
    if args.endian is not None and args.format not in INTEGER_FORMATS:
        raise InvalidArgumentError("--endian is the byte order of "
                                   + "/".join(INTEGER_FORMATS) + ": use one of those formats")
    if args.format == "raw" and len(args.spec) > 1:
        raise InvalidArgumentError("--format raw reads one cell (raw values have no separator)")
    named = [s.partition("=") if args.env and "=" in s else ("", "", s) for s in args.spec]
    if not args.env and any(var for var, _, _ in named):
        raise InvalidArgumentError("VAR=SPEC names an --env variable: use --env")
    # Every cell first, then the output: a failing spec prints nothing at all.
    results = []
    variables: set[str] = set()
    for var, _, spec in named:
        record, value = _get_one(backend, spec, args)
        try:
            if args.format == "mac":
                value = mac_value(record, value, args)
            formatted = format_value(value, args.format, args.endian or "little")
        except InvalidArgumentError as e:  # which of the cells, when there are several
            raise InvalidArgumentError(f"{record['provider']}: cell {record['sysfs_name']}: "
                                       f"{e}") from None
        if args.env:
            var = var or env_name(str(record["name"]))
            if var in variables:
                raise InvalidArgumentError(f"variable {var} given twice: name one with VAR=SPEC")
            variables.add(var)
            formatted = env_line(var, formatted)
        results.append((record, value, formatted))
    if args.json:
        records = []
        for record, value, formatted in results:
            rec: dict[str, Any] = dict(record, value=value.hex())
            if args.format not in ("hex", "raw"):
                rec["formatted"] = formatted.decode().rstrip("\n")
            records.append(rec)
        print_json(out, records[0] if len(records) == 1 else records)
        return EXIT_OK
    out.write(b"".join(formatted for _, _, formatted in results))
    return EXIT_OK


def mac_value(record: CellRecord, value: bytes, args: Any) -> bytes:
    """The MAC a ``--format mac`` read prints: mac-base decoded, then ``--index`` added."""
    from ..macaddr import decode_mac_base, derive

    if record.get("mac_base"):
        # nvmemd extension (OpenWrt's mac-base decoding; mainline returns the raw cell)
        index = int(record.get("consumer", {}).get("index", 0))
        value = decode_mac_base(value, index)
    num_macs = record.get("num_macs")
    if args.index and num_macs is not None and args.index >= int(num_macs):
        allotted = f"--index 0 to {int(num_macs) - 1}" if int(num_macs) else "none"
        raise InvalidArgumentError(f"--index {args.index} is past the range the ONIE EEPROM "
                                   f"allots (num-macs {num_macs}: {allotted})")
    if args.index:
        value = derive(value, args.index, args.mac_mode, strict=True)
    return value
