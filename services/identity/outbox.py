"""Identity's background job (`identity-mail`, on the leader): it sends the
password-reset mails and prunes the sign-in throttle's table.

**Password-reset mails, out of the request.** `RequestPasswordReset` used to
look the address up and write the mail while the request waited, for an
existing account only: an attacker could tell which addresses have an
account by the answer's timing, or by an SMTP failure. Now the request does
the same work whatever the address: it writes one row to `reset_outbox` (in
identity's views database) naming the account by the same deterministic key
as the e-mail index (`email_key`: a hash, not the address) and answers. This
job then, row by row: finds the account (none: the row is done,
`skipped:no_account`), makes a fresh single-use link (a `PasswordReset`
aggregate, valid one hour from then) and sends the mail through the runtime's
mailer. A failed send is retried after 5 s, 10 s, 20 s … (at most 10 minutes
apart) and given up after MAX_ATTEMPTS (a link whose mail failed was never
seen; each attempt makes its own). No secret and no address is stored in the
outbox; done rows are deleted after a day.

Built like meetups' and referrals' mail senders (`services/runtime/wakeup.py`,
`run_rounds`): the request wakes the job, which also polls.

**Pruning `credential_attempts`.** A throttle key forgets its attempts after
its policy's `forget` (at most an hour) without one, and its wait ends by
`cap` (at most an hour): a row whose last attempt is older than
`ATTEMPTS_KEPT` (two hours) and that makes nobody wait says nothing any
more. Each round deletes at most PRUNE_BATCH such rows (oldest first), so
the table stays about as large as the last two hours' distinct keys.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.identity import throttle as t
from services.identity.application import Identity
from services.identity.domain import EmailIndex, Member, email_key, normalise_email
from services.identity.mails import password_reset_message
from services.runtime.errors import InvalidInput
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.mail import Mailer
from services.runtime.views import UTCDateTime
from services.runtime.wakeup import Wakeup, run_rounds

log = get_logger("quartier.identity.outbox")

MAX_ATTEMPTS = 8
BATCH = 100
KEEP_DONE = timedelta(days=1)
RESET_TTL = 3600  # seconds a password-reset link works
ATTEMPTS_KEPT = timedelta(hours=2)  # longer than every policy's `forget` and `cap`
PRUNE_BATCH = 1000

metadata = sa.MetaData()

reset_outbox = sa.Table(
    "reset_outbox",
    metadata,
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("account", sa.String(36), nullable=False),  # email_key: no address here
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),  # wall clock (retries)
    sa.Column("done_at", UTCDateTime),
    sa.Column("outcome", sa.String(40)),  # sent, skipped:no_account, failed
    sa.Index("ix_identity_reset_pending", "done_at", "next_attempt_at"),
)


def wall_now() -> datetime:
    """Retries are operational, not domain time: the wall clock."""
    return datetime.now(UTC)


def retry_delay(attempts: int, base: float = 5.0) -> timedelta:
    return timedelta(seconds=min(600.0, base * 2 ** max(0, attempts - 1)))


def account_of(tenant_id: str, email: str) -> str | None:
    """The key a reset request names its account by (None: not an address)."""
    try:
        return str(email_key(tenant_id, normalise_email(email)))
    except InvalidInput:
        return None


def queue_reset(engine: sa.Engine, tenant_id: str, account: str) -> None:
    """The request's whole work, alike for every address: one row."""
    with t.writing(engine) as conn:
        conn.execute(
            reset_outbox.insert().values(
                request_id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                account=account,
                attempts=0,
                next_attempt_at=wall_now(),
            )
        )


def pending_count(engine: sa.Engine) -> int:
    """Reset mails not yet done (tests and operators)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(reset_outbox)
                .where(reset_outbox.c.done_at.is_(None))
            ).scalar_one()
        )


def prune_attempts(engine: sa.Engine, now: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete at most `limit` throttle rows that say nothing any more (last
    attempt older than ATTEMPTS_KEPT, no wait running); oldest first."""
    a = t.attempts
    cutoff = now - ATTEMPTS_KEPT
    with t.writing(engine) as conn:
        stale = (
            sa.select(a.c.key)
            .where(a.c.last_at < cutoff, sa.or_(a.c.wait_until.is_(None), a.c.wait_until < now))
            .order_by(a.c.last_at)
            .limit(limit)
        )
        keys = [row.key for row in conn.execute(stale)]
        if not keys:
            return 0
        return int(conn.execute(a.delete().where(a.c.key.in_(keys))).rowcount)


class IdentityMailer:
    """The job: reset mails due, then a bounded prune of the throttle table."""

    def __init__(
        self,
        host: ServiceHost,
        app: Identity,
        mailer: Mailer,
        poll_interval: float = 30.0,
        retry_base: float = 5.0,
    ):
        self.host = host
        self.app = app
        self.mailer = mailer
        self.engine = host.engine
        self.clock = host.clock
        self.settings = host.settings
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.sent = 0
        self.pruned = 0
        self._purged_at: datetime | None = None
        self._wake = Wakeup()
        metadata.create_all(self.engine)

    def wake(self) -> None:
        self._wake.set_threadsafe()

    async def run(self, stopping: asyncio.Event) -> None:
        await run_rounds(
            "identity-mail",
            stopping,
            self._wake,
            self._round,
            lambda: self.host.offload(self._next_attempt),
            wall_now,
            self.poll_interval,
        )

    async def _round(self) -> None:
        await self.host.offload(self.send_due)
        await self.host.offload(self.housekeeping)

    def housekeeping(self) -> None:
        """Forget done rows, prune the throttle table (at most once a minute)."""
        now = wall_now()
        if self._purged_at is not None and now - self._purged_at < timedelta(minutes=1):
            return
        self._purged_at = now
        with t.writing(self.engine) as conn:
            conn.execute(reset_outbox.delete().where(reset_outbox.c.done_at < now - KEEP_DONE))
        # the throttle runs on the service's clock (movable in tests)
        self.pruned += prune_attempts(self.engine, self.clock.now())

    def _next_attempt(self) -> datetime | None:
        with self.engine.connect() as conn:
            found: datetime | None = conn.execute(
                sa.select(sa.func.min(reset_outbox.c.next_attempt_at)).where(
                    reset_outbox.c.done_at.is_(None)
                )
            ).scalar_one_or_none()
        if found is not None and found.tzinfo is None:  # SQLite: an aggregate loses the type
            found = found.replace(tzinfo=UTC)
        return found

    def send_due(self) -> int:
        sent = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(reset_outbox)
                    .where(
                        reset_outbox.c.done_at.is_(None),
                        reset_outbox.c.next_attempt_at <= wall_now(),
                    )
                    .order_by(reset_outbox.c.next_attempt_at, reset_outbox.c.request_id)
                    .limit(BATCH)
                ).all()
            if not rows:
                return sent
            for row in rows:
                sent += self._send(row)

    def _send(self, row: Any) -> int:
        try:
            index = self.app.find(row.account, EmailIndex)
            if index is None or index.tenant_id != row.tenant_id:
                self._done(row, "skipped:no_account")
                return 0
            member = self.app.get(row.tenant_id, index.member_id, Member)
            tenant = self.app.tenant(row.tenant_id)
            now = self.clock.now()
            found = self.app.request_password_reset(row.tenant_id, member.email, now, RESET_TTL)
            if found is None:
                self._done(row, "skipped:no_account")
                return 0
            _, reset, token = found
            message = password_reset_message(
                sender=self.settings.mail_from,
                to=member.email,
                network=tenant.name,
                reset_url=f"{self.settings.public_url}/reset-password?token={token}&network={tenant.slug}",
                expires_at=reset.expires_at,
                locale=tenant.locale,
                now=now,
            )
            self.mailer.send(message)
        except Exception as e:  # the error's text may hold an address: its type only
            log.warning(
                "password_reset.send_failed",
                request_id=row.request_id,
                attempt=row.attempts + 1,
                error=type(e).__name__,
            )
            self._failed(row, type(e).__name__)
            return 0
        self._done(row, "sent")
        self.sent += 1
        log.info("password_reset.sent", reset_id=str(reset.id), tenant=row.tenant_id)
        return 1

    def _update(self, row: Any, **values: Any) -> None:
        with t.writing(self.engine) as conn:
            conn.execute(
                reset_outbox.update()
                .where(reset_outbox.c.request_id == row.request_id)
                .values(**values)
            )

    def _done(self, row: Any, outcome: str) -> None:
        self._update(row, done_at=wall_now(), outcome=outcome, attempts=row.attempts + 1)

    def _failed(self, row: Any, why: str) -> None:
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.error("password_reset.given_up", request_id=row.request_id, error=why)
            self._update(row, attempts=attempts, done_at=wall_now(), outcome="failed")
        else:
            self._update(
                row,
                attempts=attempts,
                next_attempt_at=wall_now() + retry_delay(attempts, self.retry_base),
            )
