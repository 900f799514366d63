#!/usr/bin/python3
"""A sysfs device directory served by FUSE whose ``nvmem`` read fails with an errno.

Run with Debian's /usr/bin/python3 (python3-fusepy, libfuse2) as root:

    fuse_device.py MOUNTPOINT SPEC.json

SPEC maps entry names to ``{"file": HEX, "mode": M}``, ``{"link": TARGET}`` or
``{"fail": ERRNO, "size": N, "mode": M}`` (a regular file of N bytes whose
every read fails with ERRNO: EIO is what a dying I2C EEPROM gives, ENODEV what
a read of a removed device's attribute gives).  Prints ``ready`` once mounted;
serves until unmounted.
"""

import errno
import json
import stat
import sys
import time

from fusepy import FUSE, FuseOSError, Operations


class Device(Operations):
    def __init__(self, spec):
        self.spec = spec
        self.now = time.time()

    def init(self, path):
        print("ready", flush=True)

    def _times(self):
        return {"st_atime": self.now, "st_mtime": self.now, "st_ctime": self.now}

    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, **self._times()}
        entry = self.spec.get(path[1:])
        if entry is None:
            raise FuseOSError(errno.ENOENT)
        if "link" in entry:
            return {"st_mode": stat.S_IFLNK | 0o777, "st_nlink": 1,
                    "st_size": len(entry["link"]), **self._times()}
        size = entry["size"] if "fail" in entry else len(bytes.fromhex(entry["file"]))
        return {"st_mode": stat.S_IFREG | entry.get("mode", 0o444), "st_nlink": 1,
                "st_size": size, **self._times()}

    def readdir(self, path, fh):
        return [".", "..", *self.spec]

    def readlink(self, path):
        entry = self.spec.get(path[1:])
        if entry is None or "link" not in entry:
            raise FuseOSError(errno.EINVAL)
        return entry["link"]

    def read(self, path, size, offset, fh):
        entry = self.spec.get(path[1:])
        if entry is None:
            raise FuseOSError(errno.ENOENT)
        if "fail" in entry:
            raise FuseOSError(entry["fail"])
        if "sleep" in entry:  # a read that hangs (tests/robustness/test_hostile.py)
            time.sleep(entry["sleep"])
        data = bytes.fromhex(entry["file"])
        return data[offset:offset + size]


def main():
    mountpoint, spec_path = sys.argv[1:3]
    with open(spec_path) as f:
        spec = json.load(f)
    FUSE(Device(spec), mountpoint, foreground=True, ro=True, direct_io=True, nonempty=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
