"""systemd integration without the C extension: sd_notify, watchdog, journal logging.

The notify protocol is one AF_UNIX datagram to ``$NOTIFY_SOCKET`` (a leading
``@`` names the abstract namespace), as ``sd_notify(3)`` describes.  Without a
service manager every call is a no-op.  Logging goes to the journal through
systemd-python's ``JournalHandler`` only when standard error *is* the journal
stream (``$JOURNAL_STREAM`` equals ``st_dev:st_ino`` of fd 2, per
``systemd.exec(5)``), to standard error otherwise.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

LOG_FORMAT = "nvmemd: %(levelname)s: %(message)s"


def notify(state: str) -> bool:
    """Send *state* (``READY=1``, ``STATUS=…``) to the service manager; False if none."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as e:
        log.debug("sd_notify(%r) failed: %s", state, e)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 2 / 1_000_000


def stderr_is_journal() -> bool:
    """``$JOURNAL_STREAM`` names fd 2 (``device:inode``)."""
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def setup_logging(level: str) -> str:
    """Configure the root logger; returns ``"journal"`` or ``"stderr"``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level.upper())
    if stderr_is_journal():
        try:
            from systemd.journal import JournalHandler
        except ImportError:
            pass
        else:
            root.addHandler(JournalHandler(SYSLOG_IDENTIFIER="nvmemd"))
            return "journal"
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    return "stderr"
