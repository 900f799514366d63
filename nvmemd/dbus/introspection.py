"""Introspection XML of the API, from the interface definitions (nvmemd.dbus.interfaces).

One source for three outputs:

- the live ``Introspect()`` answers (:func:`node_xml`): named in and out
  arguments, ``org.freedesktop.DBus.Property.EmitsChangedSignal`` on every
  property, the standard interfaces as sd-bus lists them, ObjectManager on the
  root object only;
- the interface files installed in ``/usr/share/dbus-1/interfaces/`` (one per
  interface, as systemd installs them), the same XML plus
  ``org.gtk.GDBus.DocString`` annotations taken from the docstrings, for
  ``gdbus-codegen``, ``zbus-xmlgen`` and ``sdbus-c++-xml2cpp``;
- the interface sections of ``org.nvmemd.Nvmem1(5)`` (``man/org.nvmemd.Nvmem1.5.scd``).

``python3 -m nvmemd.dbus.xmlgen --xml DIR`` writes the interface files,
``--man FILE`` rewrites the generated part of the man page.

dbus-fast names out arguments ``arg_0``…, and Debian bookworm's 1.84 writes no
annotations at all, so the XML is built here; the interface classes mark their
members with :func:`returns` (out argument names) and :func:`emits` (when a
property changes), which both dbus-fast versions leave alone.
"""

from __future__ import annotations

import inspect
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_OUT_ARGS: Final = "__nvmemd_out_args__"
_EMITS: Final = "__nvmemd_emits__"
EMITS_CHANGED: Final = "org.freedesktop.DBus.Property.EmitsChangedSignal"
DOC_STRING: Final = "org.gtk.GDBus.DocString"
#: gdbus-codegen maps ``ay`` to a NUL-terminated ``gchar *`` unless told otherwise.
FORCE_GVARIANT: Final = "org.gtk.GDBus.C.ForceGVariant"
#: ``EmitsChangedSignal`` values: never changes while the object exists; changes and
#: PropertiesChanged carries the value; changes and is only invalidated; no signal.
CONST: Final = "const"
TRUE: Final = "true"
INVALIDATES: Final = "invalidates"
FALSE: Final = "false"

DOCTYPE: Final = ('<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
                  '"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n')

#: The standard interfaces, as sd-bus writes them (``bus-introspect.h``).
STANDARD_XML: Final = """ <interface name="org.freedesktop.DBus.Peer">
  <method name="Ping"/>
  <method name="GetMachineId">
   <arg type="s" name="machine_uuid" direction="out"/>
  </method>
 </interface>
 <interface name="org.freedesktop.DBus.Introspectable">
  <method name="Introspect">
   <arg name="xml_data" type="s" direction="out"/>
  </method>
 </interface>
 <interface name="org.freedesktop.DBus.Properties">
  <method name="Get">
   <arg name="interface_name" direction="in" type="s"/>
   <arg name="property_name" direction="in" type="s"/>
   <arg name="value" direction="out" type="v"/>
  </method>
  <method name="GetAll">
   <arg name="interface_name" direction="in" type="s"/>
   <arg name="props" direction="out" type="a{sv}"/>
  </method>
  <method name="Set">
   <arg name="interface_name" direction="in" type="s"/>
   <arg name="property_name" direction="in" type="s"/>
   <arg name="value" direction="in" type="v"/>
  </method>
  <signal name="PropertiesChanged">
   <arg type="s" name="interface_name"/>
   <arg type="a{sv}" name="changed_properties"/>
   <arg type="as" name="invalidated_properties"/>
  </signal>
 </interface>
"""
OBJECT_MANAGER_XML: Final = """ <interface name="org.freedesktop.DBus.ObjectManager">
  <method name="GetManagedObjects">
   <arg type="a{oa{sa{sv}}}" name="object_paths_interfaces_and_properties" direction="out"/>
  </method>
  <signal name="InterfacesAdded">
   <arg type="o" name="object_path"/>
   <arg type="a{sa{sv}}" name="interfaces_and_properties"/>
  </signal>
  <signal name="InterfacesRemoved">
   <arg type="o" name="object_path"/>
   <arg type="as" name="interfaces"/>
  </signal>
 </interface>
"""


def returns(*names: str) -> Callable[[F], F]:
    """Name a method's out arguments (one name per complete type of its signature)."""

    def mark(fn: F) -> F:
        setattr(fn, _OUT_ARGS, names)
        return fn

    return mark


def emits(value: str) -> Callable[[F], F]:
    """A property getter's ``EmitsChangedSignal``: :data:`CONST`, :data:`TRUE`, …"""
    if value not in (CONST, TRUE, INVALIDATES, FALSE):
        raise ValueError(value)

    def mark(fn: F) -> F:
        setattr(fn, _EMITS, value)
        return fn

    return mark


def _types(signature: str) -> list[str]:
    from dbus_fast.signature import get_signature_tree

    return [t.signature for t in get_signature_tree(signature).types] if signature else []


def _doc(obj: Any) -> str:
    """A docstring as one paragraph per blank-line-separated block."""
    text = (inspect.getdoc(obj) or "").replace("``", "`")
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n\n".join(paras)


def _annotate(elem: ET.Element, name: str, value: str) -> None:
    ET.SubElement(elem, "annotation", name=name, value=value)


class Member:
    """What the XML says of one method or property (read from a dbus-fast definition)."""

    def __init__(self, kind: str, name: str, doc: str, args: list[tuple[str, str, str]],
                 annotations: dict[str, str]) -> None:
        self.kind, self.name, self.doc, self.args = kind, name, doc, args
        self.annotations = annotations


def members(prototype: Any) -> list[Member]:
    """The members of a ``ServiceInterface`` instance, methods first, in definition order."""
    from dbus_fast.service import ServiceInterface

    out: list[Member] = []
    for method in ServiceInterface._get_methods(prototype):
        if method.disabled:
            continue
        params = list(inspect.signature(method.fn).parameters)[1:]
        in_types = _types(method.in_signature)
        out_types = _types(method.out_signature)
        names = getattr(method.fn, _OUT_ARGS, None)
        if out_types and (names is None or len(names) != len(out_types)):
            raise ValueError(f"{prototype.name}.{method.name}: name its out arguments "
                             f"({method.out_signature}) with @returns")
        args = [(n, t, "in") for n, t in zip(params, in_types, strict=True)]
        args += [(n, t, "out") for n, t in zip(names or (), out_types, strict=True)]
        out.append(Member("method", method.name, _doc(method.fn), args, {}))
    for prop in ServiceInterface._get_properties(prototype):
        if prop.disabled:
            continue
        value = getattr(prop.prop_getter, _EMITS, None)
        if value is None:
            raise ValueError(f"{prototype.name}.{prop.name}: say when it changes with @emits")
        out.append(Member("property", prop.name, _doc(prop.prop_getter),
                          [("", prop.signature, prop.access.value)], {EMITS_CHANGED: value}))
    methods = [m for m in out if m.kind == "method"]
    props = sorted((m for m in out if m.kind == "property"),
                   key=lambda m: _definition_order(prototype, m.name))
    methods.sort(key=lambda m: _definition_order(prototype, m.name))
    return methods + props


def _definition_order(prototype: Any, name: str) -> int:
    """Position of the member *name* in the class body (dbus-fast sorts by Python name)."""
    for i, value in enumerate(vars(type(prototype)).values()):
        dbus = getattr(value, "__dict__", {}).get("__DBUS_METHOD")
        if dbus is not None and dbus.name == name:
            return i
        if type(value).__name__ == "_Property" and value.name == name:
            return i
    return 1 << 30


def interface_element(prototype: Any, docs: bool) -> ET.Element:
    iface = ET.Element("interface", name=prototype.name)
    if docs:
        _annotate(iface, DOC_STRING, _doc(type(prototype)))
    for m in members(prototype):
        if m.kind == "method":
            elem = ET.SubElement(iface, "method", name=m.name)
            for name, sig, direction in m.args:
                arg = ET.SubElement(elem, "arg", type=sig, name=name, direction=direction)
                if sig == "ay":  # bytes, not a NUL-terminated string, in generated C
                    _annotate(arg, FORCE_GVARIANT, "true")
        else:
            (_, sig, access), = m.args
            elem = ET.SubElement(iface, "property", name=m.name, type=sig, access=access)
        for key, value in m.annotations.items():
            _annotate(elem, key, value)
        if m.kind == "property" and m.args[0][1] == "ay":
            _annotate(elem, FORCE_GVARIANT, "true")
        if docs:
            _annotate(elem, DOC_STRING, m.doc)
    return iface


def interface_xml(prototype: Any, docs: bool = False, indent: int = 1) -> str:
    """One ``<interface>`` element, indented as it sits inside a ``<node>``."""
    elem = interface_element(prototype, docs)
    ET.indent(elem, space=" ", level=indent)
    return " " * indent + ET.tostring(elem, encoding="unicode") + "\n"


def node_xml(interfaces: Iterable[str], children: Iterable[str] = (),
             object_manager: bool = False, standard: bool = True) -> str:
    """An ``Introspect()`` answer: pre-rendered ``<interface>`` XML and child names."""
    parts = [DOCTYPE, "<node>\n"]
    if standard:
        parts.append(STANDARD_XML)
    if object_manager:
        parts.append(OBJECT_MANAGER_XML)
    parts.extend(interfaces)
    parts.extend(f' <node name="{name}"/>\n' for name in children)
    parts.append("</node>\n")
    return "".join(parts)
