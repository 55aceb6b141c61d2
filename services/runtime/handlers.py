"""Handlers as declared endpoints: the base of every service's `handlers.py`.

A service's handlers say who may do what and make the calls; the wiring is
here. Each endpoint is a method marked `@handles(SomeRequest)`:

* a plain method is one *unit of work*, run on a worker thread (the event
  store and SQLAlchemy are synchronous): load, check, save, bring the read
  models up to the write, read the reply;
* an `async` method first gathers what it needs from other services over the
  bus, then runs its unit with `await self.unit(...)` — one hop to the worker
  pool per command.

Inside a unit, `self.write(change)` runs a change and then projects it, so
that the caller reads its own write, and `self.read(query)` runs a query on
the service's views database.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from services.runtime.bus import Endpoint, Handler
from services.runtime.messages import Request

if TYPE_CHECKING:
    from services.runtime.host import ServiceHost

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__quartier_handles__"


def handles(request: type[Request[Any]]) -> Callable[[F], F]:
    """Declare a method as the endpoint of `request` (a contract's command or query)."""

    def mark(method: F) -> F:
        setattr(method, _MARK, request)
        return method

    return mark


class Handlers:
    def __init__(self, host: ServiceHost):
        self.host = host
        self.service = host.service
        self.settings = host.settings
        self.clock = host.clock
        self.bus = host.bus
        self.offload = host.offload
        self.engine = host.engine

    # -- inside a unit of work (a worker thread) --------------------------------

    def read(self, query: Callable[[sa.Connection], T]) -> T:
        with self.engine.connect() as conn:
            return query(conn)

    def write(self, change: Callable[[], T]) -> T:
        """Run `change` (which saves), then bring this service's read models up
        to what it saved. The change is committed whatever happens next."""
        result = change()
        self.project()
        return result

    def project(self) -> None:
        for projector in self.host.projectors:
            projector.after_write()

    # -- on the event loop --------------------------------------------------------

    async def unit(self, work: Callable[[], T]) -> T:
        """Run one unit of work on the worker pool."""
        return await self.offload(work)

    def endpoints(self) -> list[Endpoint]:
        """One endpoint per `@handles` method; a plain method is offloaded whole."""
        found: dict[type[Request[Any]], Endpoint] = {}
        for name in dir(type(self)):
            method = getattr(self, name)
            request = getattr(method, _MARK, None)
            if request is None:
                continue
            if request in found:
                raise TypeError(f"{request.__name__} has two handlers")
            found[request] = Endpoint(request, self._as_handler(method))
        return list(found.values())

    def _as_handler(self, method: Callable[..., Any]) -> Handler:
        if inspect.iscoroutinefunction(method):
            handler: Handler = method
            return handler

        async def offloaded(request: Any, ctx: Any) -> Any:
            return await self.offload(method, request, ctx)

        offloaded.__name__ = method.__name__
        return offloaded
