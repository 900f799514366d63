"""docs/kernel-rules-by-version.md is generated from the rule tables: it must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_rules_doc_is_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "render-kernel-rules.py"),
                           "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
