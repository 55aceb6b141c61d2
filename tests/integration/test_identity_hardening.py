"""Three defects of identity, fixed and held: a password-reset request does
the same work whether or not the address has an account (the mail is sent
by a background job, also when the mail server fails); a session started by
a sign-in racing a password change or reset is over; the sign-in throttle's
table is pruned, a bounded number of rows per round."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa

from services.identity import contract as idc
from services.identity import throttle as t
from services.identity.outbox import ATTEMPTS_KEPT, prune_attempts, reset_outbox
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import InvalidToken, Unauthenticated
from services.runtime.host import ServiceHost
from services.runtime.messages import Actor
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext
from tests.support.identity import PASSWORD, add_member, card, create_network
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

ANON = RequestContext()
NEW_PASSWORD = "a brand new passphrase"


def outbox_rows(identity: ServiceHost) -> list[Any]:
    with identity.context["engine"].connect() as conn:
        return list(conn.execute(sa.select(reset_outbox)).all())


class FailingMailer:
    """A mail server that refuses everything, then accepts."""

    def __init__(self, real: Any):
        self.real = real
        self.failing = True
        self.tried = 0

    def send(self, message: EmailMessage) -> None:
        self.tried += 1
        if self.failing:
            raise ConnectionRefusedError("smtp down")
        self.real.send(message)


async def test_a_reset_request_costs_the_same_with_or_without_an_account(
    identity: ServiceHost, client_bus: Bus, settings: Settings
) -> None:
    tenant, _ = await create_network(client_bus, "pole-same", "admin@same.example")
    await add_member(client_bus, tenant.tenant_id, "ana@same.example", card("Ana"))
    job = identity.context["mail"]
    failing = FailingMailer(job.mailer)
    job.mailer, job.retry_base = failing, 0.05
    app = identity.context["app"]
    events = app.max_notification_id()

    for address in ("ana@same.example", "nobody@same.example"):
        done = await client_bus.request(
            idc.RequestPasswordReset(tenant_slug="pole-same", email=address), ANON
        )
        assert done.__class__.__name__ == "Done"
    # the request wrote one row each, naming no address, and nothing else
    rows = outbox_rows(identity)
    assert len(rows) == 2
    assert "same.example" not in repr(rows)
    # the mail server fails: the request did not notice; the job retries
    await eventually(lambda: failing.tried >= 2)
    failing.failing = False
    await eventually(lambda: all(r.done_at for r in outbox_rows(identity)))
    outcomes = sorted(r.outcome for r in outbox_rows(identity))
    assert outcomes == ["sent", "skipped:no_account"]
    assert app.max_notification_id() > events  # the link (PasswordReset) made by the job


async def session_of(bus: Bus, session: idc.Session) -> RequestContext:
    return RequestContext(
        tenant_id=session.tenant_id,
        actor=Actor(
            kind="member",
            member_id=session.member_id,
            tenant_id=session.tenant_id,
            roles=tuple(session.roles),
            session_id=str(UUID(hex=session.refresh_token.split(".")[0])),
        ),
    )


async def is_on(bus: Bus, session: idc.Session) -> bool:
    try:
        await bus.request(idc.CurrentSession(), await session_of(bus, session))
    except Unauthenticated:
        return False
    return True


@pytest.mark.parametrize("change", ["change", "reset"])
async def test_a_sign_in_racing_a_password_change_keeps_no_session(
    identity: ServiceHost, client_bus: Bus, clock: MovableClock, change: str
) -> None:
    """The race, step by step: the sign-in checks the old password, the
    change (or reset) commits and ends the sessions it sees, then the
    sign-in saves its session. That session is over."""
    tenant, _ = await create_network(client_bus, f"pole-race-{change}", "admin@race.example")
    bo = await add_member(client_bus, tenant.tenant_id, "bo@race.example", card("Bo"))
    app, handlers = identity.context["app"], identity.context["handlers"]

    # 1. the sign-in has checked the old password
    member = app.authenticate(tenant.tenant_id, "bo@race.example", PASSWORD)
    # 2. the password changes meanwhile (the member's own device, or a reset)
    if change == "change":
        await client_bus.request(
            idc.ChangePassword(current_password=PASSWORD, new_password=NEW_PASSWORD),
            await session_of(client_bus, bo),
        )
    else:
        found = app.request_password_reset(tenant.tenant_id, "bo@race.example", clock.now(), 3600)
        assert found is not None
        await client_bus.request(
            idc.ResetPassword(
                tenant_slug=f"pole-race-{change}", token=found[2], new_password=NEW_PASSWORD
            ),
            ANON,
        )
    # 3. the sign-in saves its session, with what it had read
    refresh = handlers.write(lambda: handlers._start(member))
    raced = handlers._session(member, refresh)

    assert not await is_on(client_bus, raced)
    with pytest.raises(InvalidToken, match="password has changed"):
        await client_bus.request(idc.RefreshSession(refresh_token=raced.refresh_token), ANON)
    # the device that changed the password goes on; a new sign-in works
    assert await is_on(client_bus, bo) == (change == "change")
    fresh = await client_bus.request(
        idc.Login(
            tenant_slug=f"pole-race-{change}", email="bo@race.example", password=NEW_PASSWORD
        ),
        ANON,
    )
    assert await is_on(client_bus, fresh)
    listed = await client_bus.request(idc.ListSessions(), await session_of(client_bus, fresh))
    raced_id = str(UUID(hex=raced.refresh_token.split(".")[0]))
    assert raced_id not in {x.session_id for x in listed} and len(listed) >= 1
    again = await client_bus.request(idc.RefreshSession(refresh_token=fresh.refresh_token), ANON)
    assert await is_on(client_bus, again)


async def test_the_throttle_table_is_pruned_in_bounded_rounds(
    identity: ServiceHost, clock: MovableClock
) -> None:
    engine = identity.context["engine"]
    throttle = identity.context["handlers"].throttle
    old = clock.now()
    for i in range(5):
        throttle.attempt([(t.LOGIN_PAIR, t.key(t.LOGIN_PAIR, "old", str(i)))], old, "sign-in")
    clock.advance(ATTEMPTS_KEPT + timedelta(minutes=1))
    # an old key whose wait still runs (no policy waits that long: a safeguard) is kept
    waiting = t.key(t.LOGIN_ADDRESS, "198.51.100.9")
    with engine.begin() as conn:
        conn.execute(
            t.attempts.insert().values(
                key=waiting, tally=50, last_at=old, wait_until=clock.now() + timedelta(minutes=15)
            )
        )
    throttle.attempt([(t.LOGIN_PAIR, t.key(t.LOGIN_PAIR, "recent"))], clock.now(), "sign-in")

    def keys() -> set[str]:
        with engine.connect() as conn:
            return {r.key for r in conn.execute(sa.select(t.attempts.c.key))}

    assert len(keys()) == 7
    assert prune_attempts(engine, clock.now(), limit=3) == 3  # bounded
    assert prune_attempts(engine, clock.now(), limit=3) == 2
    assert prune_attempts(engine, clock.now(), limit=3) == 0
    assert keys() == {waiting, t.key(t.LOGIN_PAIR, "recent")}
    # the background job does it too, once its wait is over
    clock.advance(minutes=16)
    job = identity.context["mail"]
    job._purged_at = None
    job.wake()
    await eventually(lambda: waiting not in keys())
    assert t.key(t.LOGIN_PAIR, "recent") in keys()
