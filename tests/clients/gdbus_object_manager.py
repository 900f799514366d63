#!/usr/bin/python3
"""A GDBusObjectManagerClient on nvmemd, run with Debian's /usr/bin/python3 (python3-gi).

Usage: gdbus_object_manager.py ADDRESS.  Prints ``initial PATH`` for each
object present at start, then ``ready``, then ``added PATH`` / ``removed PATH``
as GDBus reports them.  Exits when standard input closes (or after 120 s).
"""

import sys

from gi.repository import Gio, GLib

NAME = "org.nvmemd.Nvmem1"
ROOT = "/org/nvmemd/Nvmem1"


def main() -> int:
    conn = Gio.DBusConnection.new_for_address_sync(
        sys.argv[1],
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    manager = Gio.DBusObjectManagerClient.new_sync(
        conn, Gio.DBusObjectManagerClientFlags.NONE, NAME, ROOT, None, None, None)
    for obj in sorted(manager.get_objects(), key=lambda o: o.get_object_path()):
        print("initial", obj.get_object_path(), flush=True)
    manager.connect("object-added", lambda _m, o: print("added", o.get_object_path(),
                                                        flush=True))
    manager.connect("object-removed", lambda _m, o: print("removed", o.get_object_path(),
                                                          flush=True))
    loop = GLib.MainLoop()
    GLib.io_add_watch(GLib.IOChannel.unix_new(0), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP,
                      lambda *_: (loop.quit(), False)[1])
    GLib.timeout_add_seconds(120, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
