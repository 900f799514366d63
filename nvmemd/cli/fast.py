"""``nvmemd-query``'s entry point: the common ``get`` forms without argparse.

Boot scripts and units run ``nvmemd-query get PROVIDER/NAME [--format F]``
once per boot step, so its start-up counts (issue 12).  :func:`parse_get`
reads the argv of those forms by hand; anything else (other commands,
``-v``, ``--help``, ``--consumer``, abbreviations, a bad value, an unknown
option) returns None and :func:`nvmemd.cli.main.main` parses it with
argparse, with its messages and suggestions.  Either way the same code
runs the command (:mod:`nvmemd.cli.common`).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import BinaryIO

#: Options valid before and after ``get`` (nvmemd.cli.main._global_options) and
#: whether they take a value; ``-v`` is not here: it is argparse's (and logging's).
_GLOBAL: dict[str, bool] = {"--sysroot": True, "--config": True, "--direct": False,
                            "--address": True, "--session": False, "--json": False}
#: ``get``'s own options handled here (the rest go to argparse).
_GET: dict[str, bool] = {"--provider": True, "--format": True, "-f": True,
                         "--endian": True, "--env": False}
_ENDIANS = ("little", "big")


class GetArgs:
    """What ``build_parser().parse_args()`` returns for a ``get``: the same names."""

    command = "get"
    verbose = 0
    consumer = None
    netdev = None
    index = 0
    mac_mode = "48"

    def __init__(self) -> None:
        self.sysroot: str | None = None
        self.config: str | None = None
        self.direct = False
        self.address: str | None = None
        self.session = False
        self.json = False
        self.provider: str | None = None
        self.format = "hex"
        self.endian: str | None = None  # little unless given (only for u16..u64)
        self.env = False
        self.spec: list[str] = []


def parse_get(argv: Sequence[str]) -> GetArgs | None:
    """*argv* of a plain ``get`` as argparse would parse it, or None: leave it to argparse."""
    from .formats import FORMATS

    args = GetArgs()
    seen_get = in_specs = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            if not seen_get:
                if arg != "get":
                    return None
                seen_get = True
            elif args.spec and not in_specs:
                return None  # argparse takes one run of specs: "get a --json b" is an error
            else:
                args.spec.append(arg)
                in_specs = True
            continue
        in_specs = False
        name, eq, value = arg.partition("=")
        takes = _GLOBAL.get(name)
        if takes is None and seen_get:
            takes = _GET.get(name)
        if takes is None or (eq and (not takes or name == "-f")):
            return None  # -v, --help, --, other options, abbreviations, -fhex, --direct=x
        if takes and not eq:
            if i >= len(argv):
                return None
            value = argv[i]
            i += 1
        if takes and (value.startswith("-") or (not value and name != "--sysroot")):
            return None  # argparse's reading of these is its own
        key = name.lstrip("-")
        if key == "f":
            key = "format"
        if key == "format" and value not in FORMATS:
            return None
        if key == "endian" and value not in _ENDIANS:
            return None
        setattr(args, key, value if takes else True)
    if not seen_get or not args.spec:
        return None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_get(sys.argv[1:] if argv is None else argv)
    if args is None:
        from .main import main as full_main

        return full_main(argv)
    from .common import guarded

    return guarded(lambda out: run_get(args, out), args.verbose)


def run_get(args: GetArgs, out: BinaryIO) -> int:
    from .common import check_options, cmd_get, open_backend

    check_options(args)
    backend = open_backend(args)
    try:
        return cmd_get(backend, args, out)
    finally:
        backend.close()


if __name__ == "__main__":
    sys.exit(main())
