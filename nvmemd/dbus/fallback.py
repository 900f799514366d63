"""A fallback vtable for dbus-fast: one interface definition served on many paths.

dbus-fast wants one :class:`~dbus_fast.service.ServiceInterface` instance per
exported object, and each instance costs an ``inspect.getmembers()`` of its
class plus a handler table per bus (about 3.3 KB and 60–90 µs).  For objects that
exist by the ten thousand (nvmemd's cells), that is most of the daemon's start
time and memory.  sd-bus has "fallback vtables" for this; here it is:

- the interface is still *defined* as a ``ServiceInterface`` class with
  ``@method``/``@dbus_property`` members (nvmemd.dbus.interfaces), so
  signatures live in one place; :class:`FallbackInterface` takes the member
  tables from one instance of it (the *prototype*) and never exports it;
- each object is any small object carrying what the members read from
  ``self``; the members run with that object as ``self``;
- :class:`FallbackInterface` answers calls of its own interface and of
  ``org.freedesktop.DBus.Properties`` for one such object, with the standard
  errors sd-bus answers (InvalidArgs for a wrong signature, UnknownMethod,
  UnknownProperty, PropertyReadOnly); coroutine methods run in a task.

Routing a message to an object, introspection and ``GetManagedObjects`` are
the caller's business (nvmemd.dbus.service).  Every error reply leaves through
:func:`error_reply`: nvmemd errors become ``org.nvmemd.Nvmem1.Error.*`` with
their message, anything unexpected is logged here and answered with a bare
``org.nvmemd.Nvmem1.Error.Failed: internal error``.

Uses only what both dbus-fast 5.x and Debian bookworm's 1.84 provide.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Final

from dbus_fast import DBusError, Message, Variant
from dbus_fast.service import ServiceInterface

from ..errors import InvalidArgumentError, NvmemError, error_from_os
from ..limits import check_arguments, quote
from .flow import LIMITER, expects_reply
from .names import (
    ERROR_FAILED,
    ERROR_INVALID_ARGS,
    ERROR_PROPERTY_READ_ONLY,
    ERROR_UNKNOWN_INTERFACE,
    ERROR_UNKNOWN_METHOD,
    ERROR_UNKNOWN_PROPERTY,
    PROPERTIES_IFACE,
    error_name_for,
)

log = logging.getLogger(__name__)

_PROPERTY_METHODS: Final = {"Get": "ss", "Set": "ssv", "GetAll": "s"}


def error_reply(msg: Message, exc: BaseException) -> Message:
    """The error reply to *msg* for a handler that raised *exc*: the one place exceptions
    become D-Bus errors, without leaking internals."""
    if isinstance(exc, DBusError):
        return Message.new_error(msg, exc.type, exc.text)
    if isinstance(exc, NvmemError):
        return Message.new_error(msg, error_name_for(exc), str(exc))
    if isinstance(exc, asyncio.CancelledError):  # shutdown: the reply is usually dropped
        return Message.new_error(msg, ERROR_FAILED, "nvmemd is stopping")
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        return Message.new_error(msg, error_name_for(InvalidArgumentError()), "name too long")
    if isinstance(exc, OSError) and exc.errno is not None:
        # One a handler did not turn into an NvmemError: its errno still says what kind
        # of error it is (EACCES: AccessDenied), but its file name may be the host's.
        log.warning("%s.%s on %s: unconverted %s", msg.interface, msg.member, msg.path,
                    quote(str(exc), 200))
        converted = error_from_os(exc, "")
        return Message.new_error(msg, error_name_for(converted), str(converted))
    # Arguments and message cut short: a caller must not be able to fill the journal.
    frames = "".join(traceback.format_tb(exc.__traceback__, limit=-8))
    log.error("internal error answering %s.%s on %s(%s): %s: %s\n%s", msg.interface,
              msg.member, msg.path, ", ".join(quote(str(a)) for a in msg.body),
              type(exc).__name__, quote(str(exc), 200), frames.rstrip())
    return Message.new_error(msg, ERROR_FAILED, "internal error")


async def _limited(sender: str | None, call: Callable[[], Awaitable[Any]]) -> Any:
    """Run a method handler once the call limiter (nvmemd.dbus.flow) admits *sender*."""
    async with LIMITER.slot(sender):
        return await call()


def error(msg: Message, name: str, text: str) -> Message:
    return Message.new_error(msg, name, text)


def invalid_signature(msg: Message, expected: str) -> Message:
    """sd-bus's answer to a known member called with the wrong signature."""
    return error(msg, ERROR_INVALID_ARGS,
                 f"Invalid arguments '{msg.signature}' to call {msg.interface or ''}."
                 f"{msg.member}(), expecting '{expected}'.")


class FallbackInterface:
    """The members of one ``ServiceInterface`` class, served without instances.

    *prototype* is an instance of the class, made once: only its member tables
    are used.  The definition must be read-only with plain (not coroutine)
    property getters; methods may be coroutines.  Replies to coroutine methods
    leave through *send* (``MessageBus.send``).
    """

    def __init__(self, prototype: ServiceInterface, send: Callable[[Message], object]) -> None:
        from .introspection import interface_xml, members

        self.name: str = prototype.name
        self._send = send
        self.methods = {m.name: m for m in ServiceInterface._get_methods(prototype)
                        if not m.disabled}
        self.properties = {p.name: p for p in ServiceInterface._get_properties(prototype)
                           if not p.disabled}
        for prop in self.properties.values():
            if prop.access.writable() or inspect.iscoroutinefunction(prop.prop_getter):
                raise ValueError(f"{self.name}.{prop.name}: a fallback interface has "
                                 "read-only, synchronous properties only")
        #: EmitsChangedSignal of each property (nvmemd.dbus.introspection)
        self.emits = {m.name: next(iter(m.annotations.values()))
                      for m in members(prototype) if m.kind == "property"}
        #: This interface's ``<interface>`` element in Introspect() answers.
        self.xml: str = interface_xml(prototype)
        self._pending: set[asyncio.Future[Any]] = set()

    # --- properties ---------------------------------------------------------------------

    def all_properties(self, obj: object) -> dict[str, Variant]:
        """Every property as a Variant: GetAll, GetManagedObjects, InterfacesAdded."""
        return {p.name: Variant(p.signature, p.prop_getter(obj))
                for p in self.properties.values()}

    def get_property(self, obj: object, name: str) -> Variant | None:
        prop = self.properties.get(name)
        return None if prop is None else Variant(prop.signature, prop.prop_getter(obj))

    # --- calls --------------------------------------------------------------------------

    def has_method(self, member: str | None) -> bool:
        return (member or "") in self.methods

    def call(self, msg: Message, obj: object) -> Message | bool:
        """Answer a call of one of this interface's methods (:meth:`has_method`)."""
        method = self.methods[msg.member or ""]
        if method.in_signature != msg.signature:
            return self._reply(msg, invalid_signature(msg, method.in_signature))
        try:
            fn: Any = method.fn
            check_arguments(fn.__name__, msg.body)  # nvmemd.limits: before any work
            if inspect.iscoroutinefunction(fn):
                # bounded per caller and in total, the handler starts once admitted
                result: Any = _limited(msg.sender, lambda: fn(obj, *msg.body))
            else:
                result = method.fn(obj, *msg.body)  # type: ignore[arg-type]
        except Exception as e:  # a plain method that raised
            return self._reply(msg, error_reply(msg, e))
        if not inspect.isawaitable(result):
            return self._reply(msg, self._method_return(msg, method, result))
        fut = asyncio.ensure_future(result)
        self._pending.add(fut)
        if not expects_reply(msg):
            fut.add_done_callback(self._done_without_reply)
            return True

        def done(fut: asyncio.Future[Any]) -> None:
            self._pending.discard(fut)
            try:
                value = fut.result()
            except BaseException as e:  # every exception is answered
                self._send(error_reply(msg, e))
                return
            self._send(self._method_return(msg, method, value))

        fut.add_done_callback(done)
        return True

    @staticmethod
    def _reply(msg: Message, reply: Message) -> Message | bool:
        return reply if expects_reply(msg) else True

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


def properties_call(msg: Message, obj: object, interfaces: list[FallbackInterface],
                    others: tuple[str, ...]) -> Message:
    """``org.freedesktop.DBus.Properties`` of an object with *interfaces* (and the
    property-less *others*), as sd-bus answers it; an empty interface name means all."""
    member, signature = msg.member or "", msg.signature
    expected = _PROPERTY_METHODS.get(member)
    if expected is None:
        return error(msg, ERROR_UNKNOWN_METHOD,
                     f"Unknown method {member} or interface {PROPERTIES_IFACE}.")
    if signature != expected:
        return invalid_signature(msg, expected)
    iface_name = msg.body[0]
    if iface_name == "":
        chosen = interfaces
    else:
        chosen = [i for i in interfaces if i.name == iface_name]
        if not chosen and iface_name not in others:
            return error(msg, ERROR_UNKNOWN_INTERFACE, f"Unknown interface '{iface_name}'.")
    try:
        if member == "GetAll":
            props: dict[str, Variant] = {}
            for iface in chosen:
                props.update(iface.all_properties(obj))
            return Message.new_method_return(msg, "a{sv}", [props])
        prop_name = msg.body[1]
        for iface in chosen:
            if prop_name not in iface.properties:
                continue
            if member == "Set":
                return error(msg, ERROR_PROPERTY_READ_ONLY,
                             f"Property '{prop_name}' is not writable.")
            return Message.new_method_return(msg, "v", [iface.get_property(obj, prop_name)])
        return error(msg, ERROR_UNKNOWN_PROPERTY, f"Unknown property '{prop_name}'"
                     + (f" on interface '{iface_name}'." if iface_name else "."))
    except Exception as e:
        return error_reply(msg, e)
