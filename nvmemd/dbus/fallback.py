"""A fallback vtable for dbus-fast: one interface definition served on many paths.

dbus-fast wants one :class:`~dbus_fast.service.ServiceInterface` instance per
exported object, and each instance costs an ``inspect.getmembers()`` of its
class plus a handler table per bus (about 3.3 KB and 60–90 µs).  For objects that
exist by the ten thousand (nvmemd's cells), that is most of the daemon's start
time and memory.  sd-bus has "fallback vtables" for this; here it is:

- the interface is still *defined* as a ``ServiceInterface`` class with
  ``@method``/``@dbus_property`` members, so signatures and introspection stay
  in one place; :class:`FallbackInterface` takes the member tables from one
  instance of it (the *prototype*) and never exports it;
- each object is any small object carrying what the members read from
  ``self``; the members run with that object as ``self``;
- :meth:`FallbackInterface.handle_call` answers a method call to one such
  object, before dbus-fast's own dispatch (``MessageBus.add_message_handler``),
  and replies exactly as dbus-fast does for an exported instance: same error
  names and messages for ``org.freedesktop.DBus.Properties``, the same
  introspection XML, coroutine methods run in a task.  Whatever it does not
  answer (``Peer``, unknown members) it leaves to dbus-fast, whose answer for a
  path without exports is the same as for an exported one.

Which paths are objects, the introspection of their parents and
``GetManagedObjects`` are the caller's business (nvmemd.dbus.service).

Uses only what both dbus-fast 5.x and Debian bookworm's 1.84 provide.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from dbus_fast import DBusError, Message, MessageFlag, Variant
from dbus_fast import introspection as intr
from dbus_fast.constants import ErrorType
from dbus_fast.service import ServiceInterface

log = logging.getLogger(__name__)

PROPERTIES_IFACE: Final = "org.freedesktop.DBus.Properties"
INTROSPECTABLE_IFACE: Final = "org.freedesktop.DBus.Introspectable"
#: dbus-fast answers Get/Set on these with UnknownProperty and GetAll with {}.
STANDARD_IFACES: Final = ("org.freedesktop.DBus.Properties",
                          "org.freedesktop.DBus.Introspectable",
                          "org.freedesktop.DBus.Peer",
                          "org.freedesktop.DBus.ObjectManager")
_PROPERTY_METHODS: Final = {"Get": "ss", "Set": "ssv", "GetAll": "s"}
_PLACEHOLDER: Final = "/nvmemd_fallback_placeholder"


def expects_reply(msg: Message) -> bool:
    return not msg.flags & MessageFlag.NO_REPLY_EXPECTED


def error_reply(msg: Message, exc: BaseException) -> Message:
    """What dbus-fast's ``SendReply`` answers when a handler raised *exc*."""
    if isinstance(exc, DBusError):
        return Message.new_error(msg, exc.type, exc.text)
    log.error("Service interface raised an exception",
              exc_info=(type(exc), exc, exc.__traceback__))
    return Message.new_error(msg, ErrorType.SERVICE_ERROR,
                             f"The service interface raised an error: {type(exc).__name__}")


def default_node(path: str, interfaces: Sequence[intr.Interface],
                 children: Sequence[str] = ()) -> str:
    """Introspection XML of an object at *path*, as dbus-fast writes it for an export."""
    node = intr.Node.default(path)
    node.interfaces.extend(interfaces)
    node.nodes = [intr.Node(name) for name in children]
    return node.tostring()


def bare_node(path: str, children: Sequence[str]) -> str:
    """Introspection XML of a path without objects, only children (dbus-fast's answer)."""
    node = intr.Node(path)
    node.nodes = [intr.Node(name) for name in children]
    return node.tostring()


class FallbackInterface:
    """The members of one ``ServiceInterface`` class, served without instances.

    *prototype* is an instance of the class, made once: only its member tables
    and introspection are used.  The definition must be read-only with plain
    (not coroutine) property getters; methods may be coroutines.  Replies to
    coroutine methods leave through *send* (``MessageBus.send``).
    """

    def __init__(self, prototype: ServiceInterface, send: Callable[[Message], object]) -> None:
        self.name: str = prototype.name
        self._send = send
        self.introspection: intr.Interface = prototype.introspect()
        # dbus-fast looks methods up by name, then compares the signature.
        self.methods = {m.name: m for m in ServiceInterface._get_methods(prototype)}
        self.properties = list(ServiceInterface._get_properties(prototype))
        for prop in self.properties:
            if prop.access.writable() or inspect.iscoroutinefunction(prop.prop_getter):
                raise ValueError(f"{self.name}.{prop.name}: a fallback interface has "
                                 "read-only, synchronous properties only")
        xml = default_node(_PLACEHOLDER, [self.introspection])
        head, sep, tail = xml.partition(f'<node name="{_PLACEHOLDER}">')
        if not sep:
            raise RuntimeError("unexpected introspection XML from dbus-fast")
        self._xml_head = head + '<node name="'
        self._xml_tail = '">' + tail
        self._pending: set[asyncio.Future[Any]] = set()

    # --- what the manager-side code needs ---------------------------------------------

    def introspect_xml(self, path: str) -> str:
        """``Introspect()`` of an object at *path* (object paths need no XML escaping)."""
        return self._xml_head + path + self._xml_tail

    def signal_properties(self, obj: object) -> dict[str, Variant]:
        """Every property as a Variant (``InterfacesAdded``; like ``interface_properties``)."""
        return {p.name: Variant(p.signature, p.prop_getter(obj))
                for p in self.properties if not p.disabled}

    def all_properties(self, obj: object) -> dict[str, Variant]:
        """``GetAll()``'s answer (dbus-fast: enabled, readable properties); may raise."""
        return {p.name: Variant(p.signature, p.prop_getter(obj))
                for p in self.properties if not p.disabled and p.access.readable()}

    # --- calls --------------------------------------------------------------------------

    def handle_call(self, msg: Message, obj: object) -> Message | bool | None:
        """Answer a method call to *obj* (a message handler's return value).

        None leaves the call to dbus-fast: ``Peer``, and every member this
        interface lacks (dbus-fast's UnknownMethod reads the same for a path
        with or without exports).
        """
        iface = msg.interface
        if iface == PROPERTIES_IFACE:
            reply = self._properties(msg, obj)
        elif iface == INTROSPECTABLE_IFACE:
            if msg.member != "Introspect" or msg.signature != "":
                return None
            assert msg.path is not None
            reply = Message.new_method_return(msg, "s", [self.introspect_xml(msg.path)])
        elif iface is None or iface == self.name:
            method = self.methods.get(msg.member or "")
            if method is None or method.disabled or method.in_signature != msg.signature:
                return None
            return self._call(msg, obj, method)
        else:
            return None
        return reply if expects_reply(msg) else True

    def _call(self, msg: Message, obj: object, method: Any) -> bool:
        """Run a method in a task (coroutine methods) and reply when it is done."""
        try:
            result = method.fn(obj, *msg.body)
        except Exception as e:  # a plain method that raised
            if expects_reply(msg):
                self._send(error_reply(msg, e))
            return True
        if not inspect.isawaitable(result):
            if expects_reply(msg):
                self._send(self._method_return(msg, method, result))
            return True
        fut = asyncio.ensure_future(result)
        self._pending.add(fut)
        if not expects_reply(msg):
            fut.add_done_callback(self._done_without_reply)
            return True

        def done(fut: asyncio.Future[Any]) -> None:
            self._pending.discard(fut)
            try:
                value = fut.result()
            except BaseException as e:  # dbus-fast's SendReply answers any exception
                self._send(error_reply(msg, e))
                return
            self._send(self._method_return(msg, method, value))

        fut.add_done_callback(done)
        return True

    def _done_without_reply(self, fut: asyncio.Future[Any]) -> None:
        self._pending.discard(fut)
        try:
            fut.result()
        except asyncio.CancelledError:
            pass
        except Exception as e:
            log.exception("unexpected exception in future", exc_info=e)

    @staticmethod
    def _method_return(msg: Message, method: Any, value: Any) -> Message:
        try:
            body, fds = ServiceInterface._fn_result_to_body(value, method.out_signature_tree,
                                                            replace_fds=False)
            return Message.new_method_return(msg, method.out_signature, body, fds)
        except Exception as e:
            return error_reply(msg, e)

    # --- org.freedesktop.DBus.Properties (dbus-fast's _default_properties_handler) ------

    def _properties(self, msg: Message, obj: object) -> Message:
        member, signature = msg.member, msg.signature
        if _PROPERTY_METHODS.get(member or "") != signature:
            return Message.new_error(
                msg, ErrorType.UNKNOWN_METHOD,
                f'properties interface doesn\'t have method "{member}" with signature '
                f'"{signature}"')
        interface_name = msg.body[0]
        if interface_name == "":
            return Message.new_error(
                msg, ErrorType.NOT_SUPPORTED,
                "getting and setting properties with an empty interface string is not "
                "supported yet")
        if interface_name != self.name:
            if interface_name in STANDARD_IFACES:
                if member == "GetAll":
                    return Message.new_method_return(msg, "a{sv}", [{}])
                return Message.new_error(
                    msg, ErrorType.UNKNOWN_PROPERTY,
                    f'interface "{interface_name}" does not have property "{msg.body[1]}"')
            return Message.new_error(
                msg, ErrorType.UNKNOWN_INTERFACE,
                f'could not find an interface "{interface_name}" at path: "{msg.path}"')
        if member == "GetAll":
            try:
                return Message.new_method_return(msg, "a{sv}", [self.all_properties(obj)])
            except Exception as e:
                return error_reply(msg, e)
        prop_name = msg.body[1]
        match = [p for p in self.properties if p.name == prop_name and not p.disabled]
        if not match:
            return Message.new_error(
                msg, ErrorType.UNKNOWN_PROPERTY,
                f'interface "{interface_name}" does not have property "{prop_name}"')
        prop = match[0]
        if member == "Set":
            # FallbackInterface refuses writable properties
            return Message.new_error(msg, ErrorType.PROPERTY_READ_ONLY,
                                     "the property is readonly")
        if not prop.access.readable():
            return Message.new_error(msg, ErrorType.UNKNOWN_PROPERTY,
                                     "the property does not have read access")
        try:
            return Message.new_method_return(
                msg, "v", [Variant(prop.signature, prop.prop_getter(obj))])
        except Exception as e:
            return error_reply(msg, e)
