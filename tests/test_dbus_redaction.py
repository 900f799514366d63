"""Root-only providers publish no byte-derived metadata to unprivileged callers (issue 11).

Every reply and signal ``nobody`` can get is searched for every checksum, flag
and header value the daemon knows about root-only media.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import StartDaemon
from .dbus_fixtures import AS_NOBODY, NAME, ROOT, TIMEOUT, Daemon, managed_objects

pytestmark = pytest.mark.integration

PROVIDER = "org.nvmemd.Nvmem1.Provider"
DENIED = "org.nvmemd.Nvmem1.Error.AccessDenied"


@pytest.fixture
def daemon(start_daemon: StartDaemon, demo_copy: Path) -> Daemon:
    # The demo board's U-Boot environment, root-only (mode 0400 like an MTD partition):
    # its CRCs and flag are derived from the bytes.
    (demo_copy / "sys/bus/nvmem/devices/u-boot-env0/nvmem").resolve().chmod(0o400)
    return start_daemon(["--sysroot", str(demo_copy)])


def _secrets(daemon: Daemon) -> tuple[dict[str, str], set[str]]:
    """Root-only provider paths → name, and every byte-derived string GetDetails() shows."""
    objects = managed_objects(daemon)
    protected = {p: i[PROVIDER]["Name"] for p, i in objects.items()
                 if PROVIDER in i and i[PROVIDER]["RootOnly"]}
    secrets: set[str] = set()
    for path in protected:
        (details,) = daemon.call(path, PROVIDER, "GetDetails")
        for v in details["validity"]["data"]:
            for key in ("expected", "found"):
                if key in v:
                    secrets.add(v[key]["data"])
        secrets.update(e for e in details["errors"]["data"] if "0x" in e or "b'" in e)
    return protected, secrets


def test_nobody_sees_no_bytes_of_root_only_media(daemon: Daemon) -> None:
    protected, secrets = _secrets(daemon)
    assert protected and secrets  # the demo board has root-only U-Boot env/ONIE/... media
    blobs = [json.dumps(managed_objects(daemon, nobody=True))]
    for path in protected:
        blobs.append(daemon.busctl("--json=short", "call", NAME, path,
                                   "org.freedesktop.DBus.Properties", "GetAll", "s", PROVIDER,
                                   nobody=True).stdout)
        name, _ = daemon.call_error(path, PROVIDER, "GetDetails", nobody=True)
        assert name == DENIED
    # the signals: a reload re-announces changed providers while nobody listens
    mon = subprocess.Popen([*AS_NOBODY, "busctl", f"--address={daemon.bus.address}", "monitor",
                            "--json=short", NAME], stdout=subprocess.PIPE, text=True, cwd="/")
    try:
        daemon.call(ROOT, "org.nvmemd.Nvmem1.Manager", "Reload")
    finally:
        mon.terminate()
        out, _ = mon.communicate(timeout=TIMEOUT)
    blobs.append(out)
    for blob in blobs:
        for secret in secrets:
            assert secret not in blob, secret


def test_nobody_gets_the_cached_reply_without_secrets(daemon: Daemon) -> None:
    """GetManagedObjects is built once per generation, for every caller alike
    (nvmemd.dbus.managed): the body root's call built is what nobody gets, and it
    holds nothing derived from root-only bytes — before and after a rescan."""
    built = "GetManagedObjects: built the reply"
    for generation in (1, 2):
        protected, secrets = _secrets(daemon)  # root's GetManagedObjects builds the body
        assert protected and secrets
        assert daemon.log().count(built) == generation
        blob = json.dumps(managed_objects(daemon, nobody=True))
        assert daemon.log().count(built) == generation  # nobody's reply: the same body
        for secret in secrets:
            assert secret not in blob, secret
        daemon.call(ROOT, "org.nvmemd.Nvmem1.Manager", "Reload")
