"""PropertiesChanged on the bus follows each property's EmitsChangedSignal annotation.

nvmemd's introspection data annotates every property with
``org.freedesktop.DBus.Property.EmitsChangedSignal``: ``const`` (never changes
while the object exists), ``true`` (PropertiesChanged carries the new value),
``invalidates`` (PropertiesChanged names it without the value) or ``false`` (no
signal).  A client may cache on that promise (GDBusProxy, sd-bus, zbus do), so
it is checked on the real private bus with a real monitor (``busctl monitor``):
one rescan (Manager.Reload) changes the demo board so that properties of every
kind change — a provider's Validity, Cells and Details (its U-Boot environment's
CRC broken), RootOnly (its nvmem file made 0400), the manager's BrokenProviders
(a provider whose nvmem attribute is unreadable), a cell's Consumers (a DT
consumer renamed in ``nvmem-cell-names``) — and every property of every object
that outlived the rescan is compared before and after against the signals seen,
driven by the live introspection data, not by a list in this test.  A second
rescan adds cells back: a provider's PropertiesChanged comes after the
InterfacesAdded of the cells its new ``Cells`` value lists.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .dbus_fixtures import NAME, ROOT, TIMEOUT, Daemon, managed_objects

pytestmark = pytest.mark.integration

MANAGER = "org.nvmemd.Nvmem1.Manager"
PROVIDER = "org.nvmemd.Nvmem1.Provider"
CELL = "org.nvmemd.Nvmem1.Cell"
PROPERTIES = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
EMITS = "org.freedesktop.DBus.Property.EmitsChangedSignal"
PROVIDERS = ROOT + "/providers/"
ENV0 = PROVIDERS + "u_2dboot_2denv0"
OCOTP = PROVIDERS + "imx_2docotp0"
OCOTP_MAC = OCOTP + "/cells/mac_2daddress_4090_2c0"
ETHERNET = "sys/firmware/devicetree/base/soc@0/ethernet@30be0000"


def annotations(daemon: Daemon, path: str) -> dict[str, dict[str, str]]:
    """interface → property → EmitsChangedSignal, from the live Introspect() of *path*
    (the interface's annotation applies where a property has none, as the spec says)."""
    (xml,) = daemon.call(path, "org.freedesktop.DBus.Introspectable", "Introspect")
    out: dict[str, dict[str, str]] = {}
    for iface in ET.fromstring(xml).iter("interface"):
        default = "true"
        for a in iface.findall("annotation"):
            if a.get("name") == EMITS:
                default = a.get("value", "true")
        props = {}
        for prop in iface.iter("property"):
            value = default
            for a in prop.findall("annotation"):
                if a.get("name") == EMITS:
                    value = a.get("value", "true")
            props[prop.get("name", "")] = value
        if props:
            out[iface.get("name", "")] = props
    return out


def state(daemon: Daemon) -> dict[str, dict[str, dict[str, Any]]]:
    """Every object with its properties, the manager included (GetAll: not cached)."""
    objects = managed_objects(daemon)
    (props,) = daemon.call(ROOT, PROPERTIES, "GetAll", "s", MANAGER)
    objects[ROOT] = {MANAGER: {k: v["data"] for k, v in props.items()}}
    return objects


@contextmanager
def monitor(daemon: Daemon) -> Iterator[list[dict[str, Any]]]:
    """The signals nvmemd sends while the block runs, as ``busctl monitor`` sees them."""
    signals: list[dict[str, Any]] = []
    lines: list[str] = []
    proc = subprocess.Popen(["busctl", f"--address={daemon.bus.address}", "monitor",
                             "--json=short", NAME], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()

    def ping_seen() -> bool:
        """A Peer.Ping to nvmemd, seen by the monitor (it is listening / it saw all
        that nvmemd sent before: a bus delivers one sender's messages in order)."""
        n = len(lines)
        daemon.call(ROOT, "org.freedesktop.DBus.Peer", "Ping")
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            if any('"member":"Ping"' in line for line in lines[n:]):
                return True
            time.sleep(0.02)
        return False

    try:
        deadline = time.monotonic() + TIMEOUT
        while not ping_seen():
            assert time.monotonic() < deadline, "busctl monitor saw nothing"
        yield signals
        assert ping_seen()
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)
        reader.join(timeout=TIMEOUT)
    for line in lines:
        msg = json.loads(line)
        if msg.get("type") == "signal" and msg.get("path", "").startswith(ROOT):
            signals.append(msg)


def properties_changed(signals: list[dict[str, Any]]
                       ) -> dict[tuple[str, str], tuple[dict[str, Any], set[str]]]:
    """(path, interface) → (changed values, invalidated names), all signals merged."""
    out: dict[tuple[str, str], tuple[dict[str, Any], set[str]]] = {}
    for s in signals:
        if s["interface"] != PROPERTIES or s["member"] != "PropertiesChanged":
            continue
        assert s["payload"]["type"] == "sa{sv}as", s
        iface, changed, invalidated = s["payload"]["data"]
        values, names = out.setdefault((s["path"], iface), ({}, set()))
        values.update({k: v["data"] for k, v in changed.items()})
        names.update(invalidated)
    return out


def check_against_annotations(before: dict[str, Any], after: dict[str, Any],
                              signals: list[dict[str, Any]],
                              emits: dict[str, dict[str, str]]) -> set[tuple[str, str, str]]:
    """Every property of every object that outlived the change behaved as annotated;
    returns (path, property, annotation) of those that changed."""
    seen = properties_changed(signals)
    changed: set[tuple[str, str, str]] = set()
    for path in before.keys() & after.keys():
        for iface, props in after[path].items():
            values, names = seen.pop((path, iface), ({}, set()))
            for prop, value in props.items():
                old = before[path][iface][prop]
                how = emits[iface][prop]
                where = f"{path} {iface}.{prop} ({how})"
                if old != value:
                    changed.add((path, prop, how))
                if how == "const":
                    assert old == value, where
                if how == "true" and old != value:
                    assert values.get(prop) == value, (where, old, value, values)
                if how == "invalidates" and old != value:
                    assert prop in names, where
                if how in ("const", "false", "invalidates"):
                    assert prop not in values, (where, values)
                if how in ("const", "false", "true"):
                    assert prop not in names, (where, names)
                if old == value:  # nothing announced that did not change
                    assert prop not in values and prop not in names, (where, values)
            assert not set(values) - set(props) and not names - set(props), (path, values)
    # no PropertiesChanged from an object that did not outlive the change
    assert not seen, seen
    return changed


def _object_manager(signals: list[dict[str, Any]], member: str) -> list[str]:
    return [s["payload"]["data"][0] for s in signals
            if s["interface"] == OBJECT_MANAGER and s["member"] == member]


def test_properties_changed_as_annotated(daemon: Daemon, sysroot: Path) -> None:
    emits = {**annotations(daemon, ROOT), **annotations(daemon, OCOTP),
             **annotations(daemon, OCOTP_MAC)}
    assert set(emits) == {MANAGER, PROVIDER, CELL}
    kinds = {how for props in emits.values() for how in props.values()}
    assert kinds == {"const", "true", "false"}, (
        "a property annotated 'invalidates' needs a change below that exercises it", kinds)
    before = state(daemon)
    assert before[OCOTP_MAC][CELL]["Consumers"] == [
        ["/soc@0/ethernet@30be0000", "mac-address", 0]]

    env0 = (sysroot / "sys/bus/nvmem/devices/u-boot-env0/nvmem").resolve()
    good_env = env0.read_bytes()
    env0.write_bytes(good_env[:10] + bytes([good_env[10] ^ 0xFF]) + good_env[11:])
    (sysroot / "sys/bus/nvmem/devices/imx-ocotp0/nvmem").resolve().chmod(0o400)
    mtd2 = sysroot / "sys/bus/nvmem/devices/mtd2/nvmem"
    mtd2.unlink()
    mtd2.mkdir()  # unreadable as a provider: BrokenProviders
    (sysroot / ETHERNET / "nvmem-cell-names").write_bytes(b"mac-address-0\0")
    with monitor(daemon) as signals:
        daemon.call(ROOT, MANAGER, "Reload")
    after = state(daemon)

    changed = check_against_annotations(before, after, signals, emits)
    assert {(ENV0, "Validity", "true"), (ENV0, "Cells", "true"), (ENV0, "Details", "true"),
            (OCOTP, "RootOnly", "true"), (OCOTP, "Details", "true"),
            (ROOT, "BrokenProviders", "true"),
            (OCOTP_MAC, "Consumers", "false")} <= changed, changed
    assert after[OCOTP_MAC][CELL]["Consumers"] == [
        ["/soc@0/ethernet@30be0000", "mac-address-0", 0]]
    assert list(after[ROOT][MANAGER]["BrokenProviders"]) == ["mtd2"]
    removed = set(_object_manager(signals, "InterfacesRemoved"))
    assert removed == {p for p in before if p.startswith((ENV0 + "/", PROVIDERS + "mtd2"))}

    # The environment repaired: its cells come back before its Cells property says so.
    env0.write_bytes(good_env)
    with monitor(daemon) as signals:
        daemon.call(ROOT, MANAGER, "Reload")
    again = state(daemon)
    changed = check_against_annotations(after, again, signals, emits)
    assert (ENV0, "Cells", "true") in changed
    new_cells = again[ENV0][PROVIDER]["Cells"]
    assert new_cells and set(new_cells) == set(_object_manager(signals, "InterfacesAdded"))
    order = [(s["member"], s["path"], s["payload"]["data"][0]) for s in signals]
    announced = max(i for i, (m, _, p) in enumerate(order)
                    if m == "InterfacesAdded" and p in new_cells)
    (pc,) = [i for i, (m, path, iface) in enumerate(order)
             if m == "PropertiesChanged" and path == ENV0 and iface == PROVIDER]
    assert announced < pc, order
