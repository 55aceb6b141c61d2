"""Operators' requests to every service, answered by the service host itself
(no service declares them): parked events (list, retry, skip), and the
rebuild of the event stream from the service's notification log. Each request
class is bound to one service by `for_service`, so its subject is that
service's (`quartier.cmd.<service>.RetryParked`). Only the platform operator
may send them (its token travels in the envelope's credential)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from services.runtime.auth import is_operator_token
from services.runtime.errors import Forbidden
from services.runtime.i18n import t
from services.runtime.messages import Command, Done, Message, Query
from services.runtime.tenancy import RequestContext

Q = TypeVar("Q", bound=type[Any])


class ParkedInfo(Message):
    consumer: str
    position: int
    tenant_id: str | None
    aggregate_id: str
    event_type: str
    error: str
    attempts: int
    status: str
    parked_at: datetime
    updated_at: datetime


class RetryOutcome(Message):
    applied: int
    parked: int  # still parked


class ListParked(Query[list[ParkedInfo]]):
    consumer: str | None = None
    status: str | None = "parked"  # "parked", "skipped", or None for both


class RetryParked(Command[RetryOutcome]):
    """Apply the parked events again (of one consumer, or of all)."""

    consumer: str | None = None


class SkipParked(Command[Done]):
    """Give one parked event up for good (it stays listed as skipped)."""

    consumer: str
    position: int


# -- rebuilding the event stream (`quartier stream rebuild`) ----------------------


class RebuildProgress(Message):
    """Where a service's rebuild of its part of the stream stands."""

    service: str
    rebuild_id: str
    state: str  # "queued", "running", "done" or "failed"
    checked: int = 0  # the service's messages found on the stream
    republished: int = 0  # events it lacked, published again
    purged_tenants: int = 0  # networks whose events were out of order: purged, published again
    lag: int = 0  # events in the service's log not yet on the stream
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None

    @property
    def caught_up(self) -> bool:
        return self.state == "done" and self.lag == 0


class RebuildStream(Command[RebuildProgress]):
    """Publish again, from the service's notification log, every public event
    that the stream lacks (keeping its id, `<service>:<notification id>`),
    in order; then the relay goes on. Answered by the replica that leads the
    relay (another answers `unavailable`: ask again). A rebuild already
    running is answered instead of a new one."""


class GetRebuildProgress(Query[RebuildProgress]):
    rebuild_id: str


# -- the clock of development and demo systems (`quartier clock`) ---------------

CLOCK_SUBJECT = "quartier.clock"  # every replica of every service listens (no queue group)


class MoveClock(Message):
    credential: str
    seconds: float = 0.0  # 0: only tell the time
    move_id: str = ""  # a clock applies one move once, however many times it hears it


class ClockState(Message):
    service: str
    offset_seconds: float
    now: datetime
    error: str | None = None


@cache
def for_service(request: Q, service: str) -> Q:
    """`request` bound to `service` (its subject is that service's)."""
    bound = type(request.__name__, (request,), {"service": service, "__module__": __name__})
    return bound  # type: ignore[return-value]  # type() returns `type`: it is a subclass of Q


def require_operator(ctx: RequestContext, operator_token: str) -> None:
    if ctx.actor.kind != "operator" or not is_operator_token(operator_token, ctx.credential):
        raise Forbidden(t("only the platform operator may do this"))


__all__ = [
    "CLOCK_SUBJECT",
    "ClockState",
    "Done",
    "GetRebuildProgress",
    "ListParked",
    "MoveClock",
    "ParkedInfo",
    "RebuildProgress",
    "RebuildStream",
    "RetryOutcome",
    "RetryParked",
    "SkipParked",
    "for_service",
    "require_operator",
]
