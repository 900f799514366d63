"""Issue 11, follow-up: names from media never reach the terminal as control characters.

A DT node name or a U-Boot variable name can hold ESC sequences (``\\x1b]0;…\\x07``
retitles a terminal, ``\\x1b[2J`` clears it), C1 controls (``\\x9b`` is CSI) or DEL;
nvmemd-query's tables, its ``--names`` lists and its error lines print them as
``\\xNN`` (JSON output is escaped by json.dumps).
"""

from __future__ import annotations

import argparse
import io
from typing import Any

import pytest

from nvmemd.cli import main as cli
from nvmemd.errors import NotFoundError

HOSTILE = "env\x1b]0;pwned\x07\x1b[2J\x9b31m\x7f\n"
CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]


class FakeBackend:
    def providers(self) -> list[dict[str, Any]]:
        return [{"name": "u-boot-env0", "type": "Unknown", "size": 16, "cells": 1,
                 "of_node": "/soc/" + HOSTILE, "notes": ["first", "note " + HOSTILE],
                 "errors": ["cell " + HOSTILE + ": overlaps"]}]

    def cells(self, provider: str | None) -> list[dict[str, Any]]:
        return [{"provider": "u-boot-env0", "name": HOSTILE, "sysfs_name": HOSTILE + "@0,0",
                 "bytes": 4, "source": "layout", "value": "41424344"}]

    def errors(self, provider: str | None) -> list[str]:
        return ["u-boot-env0: variable " + HOSTILE + " is not terminated"]


def _clean(text: str) -> None:
    for line in text.splitlines():
        bad = [c for c in line if c in CONTROLS]
        assert not bad, repr(line)
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\x7f\\x0a" in text, text


@pytest.mark.parametrize(("command", "names"), [("providers", False), ("providers", True),
                                                ("cells", False), ("cells", True)])
def test_tables_escape_controls(command: str, names: bool,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = io.BytesIO()
    args = argparse.Namespace(names=names, json=False, provider=None)
    fn = cli.cmd_providers if command == "providers" else cli.cmd_cells
    assert fn(FakeBackend(), args, out) == 0  # type: ignore[arg-type]
    text = out.getvalue().decode()
    if names and command == "providers":
        assert text == "u-boot-env0\n"
        return
    _clean(text)
    if not names:
        _clean(capsys.readouterr().err)


class FakeIdentityBackend:
    def identity(self) -> dict[str, Any]:
        return {"serial_number": {"value": "SN" + HOSTILE, "source": "p:serial#@0,0"},
                "interfaces": [{"name": "eth0", "mac_address": "02:00:00:00:00:01",
                                "source": "device-tree:/soc/" + HOSTILE + "/mac-address",
                                "consumer": "/soc/" + HOSTILE}],
                "conflicts": [], "protected": [], "errors": ["eth0: cell " + HOSTILE]}


def test_identity_escapes_controls() -> None:
    from nvmemd.cli import identity

    out = io.BytesIO()
    args = argparse.Namespace(json=False)
    assert identity.run(FakeIdentityBackend(), args, out) == 0
    _clean(out.getvalue().decode())


def test_error_line_escapes_controls(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    def fail(args: argparse.Namespace, out: Any) -> int:
        raise NotFoundError(f"no cell named {HOSTILE}")

    monkeypatch.setattr(cli, "run", fail)
    assert cli.main(["--direct", "providers"]) == cli.EXIT_NOT_FOUND
    _clean(capsys.readouterr().err)
