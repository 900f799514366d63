#!/usr/bin/python3
"""Plays the kernel for the udev tests: a umockdev testbed driven over stdin.

Run with Debian's /usr/bin/python3 (python3-gi, gir1.2-umockdev-1.0) under
``umockdev-wrapper``: the process that sends uevents must itself be wrapped.
The first line printed is the testbed root (pass it to the daemon as
``UMOCKDEV_DIR``).  Then one JSON command per input line, one reply line each
(``ok`` or ``error: ...``):

    {"op": "dt", "node": "/soc/eeprom@50", "props": {"compatible": "<hex>"}}
    {"op": "rmdt", "node": "/soc/eeprom@50/nvmem-layout"}
    {"op": "add", "text": "P: /devices/...\\nE: SUBSYSTEM=nvmem\\nH: nvmem=00ff\\n"}
    {"op": "uevent", "path": "/sys/devices/...", "action": "change"}
    {"op": "remove", "path": "/sys/devices/..."}
    {"op": "rm", "path": "/sys/devices/.../nvmem"}      (delete a file, no uevent)
"""

import json
import os
import shutil
import sys

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402

DT_BASE = "sys/firmware/devicetree/base"


def main() -> int:
    testbed = UMockdev.Testbed.new()
    root = testbed.get_root_dir()
    os.makedirs(os.path.join(root, DT_BASE), exist_ok=True)
    os.makedirs(os.path.join(root, "proc"), exist_ok=True)
    # Relative: umockdev resolves absolute links against the real root.
    os.symlink("../sys/firmware/devicetree/base", os.path.join(root, "proc/device-tree"))
    print(root, flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "dt":
                node = os.path.join(root, DT_BASE, cmd["node"].lstrip("/"))
                os.makedirs(node, exist_ok=True)
                for name, value in cmd.get("props", {}).items():
                    with open(os.path.join(node, name), "wb") as f:
                        f.write(bytes.fromhex(value))
            elif op == "rmdt":
                shutil.rmtree(os.path.join(root, DT_BASE, cmd["node"].lstrip("/")))
            elif op == "add":
                if not testbed.add_from_string(cmd["text"]):
                    raise RuntimeError("add_from_string failed")
            elif op == "uevent":
                testbed.uevent(cmd["path"], cmd["action"])
            elif op == "remove":
                # The kernel's remove uevent carries SUBSYSTEM; remove_device()'s
                # own one is built after the files are gone.
                testbed.uevent(cmd["path"], "remove")
                testbed.remove_device(cmd["path"])
            elif op == "rm":
                os.unlink(os.path.join(root, cmd["path"].lstrip("/")))
            else:
                raise ValueError(f"unknown op {op}")
            print("ok", flush=True)
        except Exception as e:  # report, keep serving
            print(f"error: {e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
