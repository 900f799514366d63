"""``GetManagedObjects``: the reply body built once per generation of the object tree.

On a board of 1000 providers × 16 cells the reply lists 17 000 objects and is
about 9 MB; building its properties and marshalling them costs about a second
of CPU.  Built for every call on the event loop, a caller repeating the call
made every other caller wait behind the builds (benchmarks/RESULTS.md, flood).
So the marshalled body is kept:

- **per generation**: :class:`~nvmemd.dbus.service.Service` counts its
  ``sync()`` calls (every registry swap ends in one, coldplug included) and a
  body is served only for the generation *and* the registry it was built from;
  ``sync()`` also drops it at once, so an old body never outlives a swap;
- **for every caller alike**: properties are the same for every caller — for a
  root-only provider they carry nothing derived from its bytes
  (``records.redacted_provider_record``), whoever asks; what privileged callers
  may see in addition comes from methods (``Provider.GetDetails``, reads) after
  the access check, never from properties.  So there is one access class, and
  the cache takes no caller input at all: it cannot hand one caller's view to
  another;
- **bounded**: one body kept at a time (and the one being built), at most
  :data:`~nvmemd.limits.MAX_REPLY_BYTES` each (a build stops there and keeps
  only the size: those callers get LimitsExceeded, as before); the old body is
  dropped when the tree changes, before the new one is built;
- **built in slices on the loop**: :data:`SLICE` objects at a time, yielding to
  the loop in between, so that other callers are answered during the first
  build; the calls that arrive meanwhile wait for the same build (one build per
  generation, however many callers).  A build that sees the tree change between
  two slices starts again; after :data:`RESTARTS` restarts it builds in one go.
  A reply describes the tree as it is when the reply leaves (the InterfacesAdded,
  InterfacesRemoved and PropertiesChanged signals of a change precede the first
  reply that shows it), and no caller waits for more than one build: one that
  finds the tree changed again after its build gets a body built on the spot.

Each reply is the body's bytes behind a header marshalled for that call
(:class:`~nvmemd.dbus.flow.PremarshalledReply`); the safe writer queues the
shared body without copying it.  The calls that waited for a build go back to
the call limiter's deferred calls (``CallLimiter.requeue``) rather than being
answered all at once: twenty 9 MB replies queued together would hold up every
other caller until the bus had taken them all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from dbus_fast import Message

from ..limits import MAX_REPLY_BYTES
from .fallback import error_reply
from .flow import ERROR_LIMITS_EXCEEDED, ArrayBodyBuilder, PremarshalledReply
from .names import ROOT_PATH

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)

SIGNATURE: Final = "a{oa{sa{sv}}}"
ELEMENT: Final = "{oa{sa{sv}}}"
#: Objects per slice of a build (about 10 ms of CPU on the benchmark machine, idle).
SLICE: Final = 256
#: Builds started again because the tree changed under them, before one is done in one go.
RESTARTS: Final = 2


class TooLarge:
    """What the cache keeps for a body over MAX_REPLY_BYTES: its size only."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


Body = memoryview | TooLarge


class ManagedObjects:
    """The cached ``GetManagedObjects`` body of one :class:`Service` (module docstring)."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._body: Body | None = None
        self._key: tuple[int, object] | None = None
        self._build: asyncio.Task[None] | None = None
        #: Calls that waited for a build already (sender, serial): they wait for no other.
        self._waited: set[tuple[str, int]] = set()
        #: Bodies built so far (tests and the debug log).
        self.builds = 0

    def _current_key(self) -> tuple[int, object]:
        return self._service.generation, self._service.state.registry

    def _is_current(self, key: tuple[int, object]) -> bool:
        generation, registry = self._current_key()
        return key[0] == generation and key[1] is registry  # the registry by identity

    def invalidate(self) -> None:
        """The tree changed (``Service.sync``): the body is stale."""
        self._body = None
        self._key = None

    def cached(self) -> Body | None:
        if self._body is None or self._key is None or not self._is_current(self._key):
            return None
        return self._body

    # --- answering ---------------------------------------------------------------------

    def answer(self, msg: Message, send: Callable[[Message], object],
               requeue: Callable[[Message], None] | None = None) -> None:
        """Reply to *msg* through *send*, from the body of the current tree.

        If there is none, the call waits for the build (one for all callers) and is then
        handed to *requeue* (the call limiter's deferred calls, nvmemd.dbus.flow: it
        dispatches the call again once the reply queue has room), or answered at once
        without one.  A call that waited for a build once and finds the tree changed
        again gets a body built on the spot, without yielding: every caller is answered,
        with the tree as it is when the reply leaves.  (Always through *send*: dbus-fast
        sends what a message handler returns only when it is exactly a ``Message``.)
        """
        key = (msg.sender or "", msg.serial)
        waited = key in self._waited
        self._waited.discard(key)
        body = self.cached()
        if body is None and waited:
            body = self._build_now()
        if body is not None:
            send(self._reply(msg, body))
            return
        task = self._build
        if task is None or task.done():
            task = self._build = asyncio.get_running_loop().create_task(self._run())

        def done(task: asyncio.Task[None]) -> None:
            try:
                task.result()
            except BaseException as e:  # every waiting caller is answered
                send(error_reply(msg, e))
                return
            self._waited.add(key)
            if requeue is not None:
                requeue(msg)  # dispatched again in its turn: answer() once more
            else:
                self.answer(msg, send)

        task.add_done_callback(done)

    @staticmethod
    def _reply(msg: Message, body: Body) -> Message:
        if isinstance(body, TooLarge):
            return Message.new_error(msg, ERROR_LIMITS_EXCEEDED,
                                     f"the reply would be more than {body.size} bytes, over "
                                     f"the limit of {MAX_REPLY_BYTES} bytes")
        return PremarshalledReply(msg, SIGNATURE, body)

    # --- building ----------------------------------------------------------------------

    async def _run(self) -> None:
        """Build the body of the current tree in slices; start again when the tree
        changes under the build, and after RESTARTS restarts build in one go."""
        for _ in range(RESTARTS + 1):
            t0 = time.monotonic()
            key = self._current_key()
            paths = self._paths()
            builder = ArrayBodyBuilder(ELEMENT)
            for start in range(0, len(paths), SLICE):
                if start:
                    await asyncio.sleep(0)  # let other callers in
                    if not self._is_current(key):
                        break
                if self._add_slice(builder, paths[start:start + SLICE]):
                    break  # too large: no point in going on
            else:
                self._keep(key, builder, t0)
                return
            if self._is_current(key):  # stopped for its size
                self._keep(key, builder, t0)
                return
            log.debug("GetManagedObjects: the objects changed while building; again")
        self._build_now()

    def _build_now(self) -> Body:
        """The body of the current tree, built without yielding to the loop."""
        t0 = time.monotonic()
        key = self._current_key()
        builder = ArrayBodyBuilder(ELEMENT)
        paths = self._paths()
        for start in range(0, len(paths), SLICE):
            if self._add_slice(builder, paths[start:start + SLICE]):
                break
        return self._keep(key, builder, t0)

    def _paths(self) -> list[str]:
        return [p for p in self._service.objects if p != ROOT_PATH]

    def _add_slice(self, builder: ArrayBodyBuilder, paths: list[str]) -> bool:
        """Add the objects of *paths*; True once the body is over the reply limit."""
        service = self._service
        objects = service.objects
        builder.add([[p, service.properties_of(objects[p])] for p in paths])
        return len(builder) > MAX_REPLY_BYTES

    def _keep(self, key: tuple[int, object], builder: ArrayBodyBuilder, t0: float) -> Body:
        size = len(builder)
        body: Body = TooLarge(size) if size > MAX_REPLY_BYTES else builder.finish()
        self._body, self._key = body, key
        self.builds += 1
        log.debug("GetManagedObjects: built the reply of generation %d: %s%d bytes, "
                  "%d objects, %.0f ms", key[0], "over " if isinstance(body, TooLarge) else "",
                  size, len(self._service.objects) - 1, (time.monotonic() - t0) * 1000)
        return body
