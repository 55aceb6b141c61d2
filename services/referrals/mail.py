"""Referrals' mails: the members a need matched are told of it ("ask the
network first", DOMAIN.md "Deontology"), each once.

Built like meetups' mails (docs/mail.md), in two halves, both singletons on
the leader:

* **The planner** is the reaction `mail` of this service to its *own*
  published events (upstream `referrals`; the durable consumer
  `referrals-mail`). For a `NeedPosted` it writes one row per matched member
  to the *mail outbox* (`mail_outbox` in referrals' views database, a table
  this reaction owns: `TrackedTables`) in the same transaction as its
  tracking position: a redelivered event is skipped, and a row's id follows
  from the event and the recipient, so no mail is planned twice. The matches
  are read from the ledger read model (caught up first: at least as new as
  the event). Rows name members by id: **no address is stored here**.
* **The sender** (`NeedMailSender`, the job `mail`) drains the outbox: per
  batch of one network it asks identity for the addresses, display names and
  the network's name and locale (`MemberContacts`, as a service), composes
  each mail from the need as it is *then*, sends it through the runtime's
  mailer (`services/runtime/mail.py`: SMTP or the mail drop) and marks the
  row done: `sent`, or `skipped:<reason>` when it no longer makes sense (the
  need was met or released meanwhile: `need_closed`; the member has no
  address any more: `no_contact`). A failed send is retried after 5 s, 10 s,
  20 s … (at most 10 minutes apart) and given up after MAX_ATTEMPTS
  (`failed`, logged as `mail.given_up`).

The mail says who asks (display name), what (activities, words, the
description, the deadline) and until when the network has it first; it is
answered in the app (`AnswerNeed`), where the member also finds it
(`ListNeeds`). Plain text, in the network's language (French by default,
English), headers `Auto-Submitted: auto-generated`, `Content-Language`,
a stable `Message-ID` (the row's id), `X-Quartier-Kind: referrals-need`.
Logs name mails by id, never by address or content.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from uuid import uuid5

import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.identity import contract as idc
from services.referrals import contract as c
from services.referrals.domain.ledger import NAMESPACE
from services.referrals.views import directory, ledger
from services.runtime.errors import QuartierError
from services.runtime.host import ServiceHost
from services.runtime.i18n import format_date, format_instant, locale_of
from services.runtime.logging import get_logger
from services.runtime.mail import Mailer, sender_domain
from services.runtime.messages import Actor
from services.runtime.projection import Projector
from services.runtime.reactions import Reaction, decode_data
from services.runtime.stream import CloudEvent
from services.runtime.tenancy import RequestContext, scoped
from services.runtime.views import TrackedTables, UTCDateTime
from services.runtime.wakeup import Wakeup, run_rounds

log = get_logger("quartier.referrals.mail")

MAX_ATTEMPTS = 8
BATCH = 200  # rows per round; one MemberContacts request per network in it
KEEP_DONE = timedelta(days=30)

metadata = sa.MetaData()

outbox = sa.Table(
    "mail_outbox",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("mail_id", sa.String(36), primary_key=True),  # from the event id and recipient
    sa.Column("kind", sa.String(20), nullable=False),  # need
    sa.Column("need_id", sa.String(36), nullable=False),
    sa.Column("recipient_id", sa.String(36), nullable=False),
    sa.Column("event_seq", sa.BigInteger, nullable=False),  # its place in this service's log
    sa.Column("seq", sa.Integer, nullable=False),  # the match's rank
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),  # wall clock (retries)
    sa.Column("done_at", UTCDateTime),  # wall clock
    sa.Column("outcome", sa.String(40)),  # sent, skipped:<reason>, failed
    sa.Index("ix_referrals_mail_pending", "done_at", "next_attempt_at", "event_seq"),
)

OUTBOX = TrackedTables("mail", metadata)


def wall_now() -> datetime:
    """Retries are operational, not domain time: the wall clock."""
    return datetime.now(UTC)


def retry_delay(attempts: int, base: float = 5.0) -> timedelta:
    """5 s, 10 s, 20 s … at most 10 minutes between attempts."""
    return timedelta(seconds=min(base * 2 ** (attempts - 1), 600))


def mail_id(event_id: str, recipient_id: str) -> str:
    return str(uuid5(NAMESPACE, f"mail:{event_id}:{recipient_id}"))


# -- the planner -------------------------------------------------------------------------


def plan(conn: sa.Connection, e: c.NeedPosted, event_id: str, event_seq: int) -> int:
    """One outbox row per member the need matched; returns how many."""
    row = ledger.need_row(conn, e.tenant_id, e.need_id)
    if row is None or row.status != "open":
        return 0
    rows = [
        {
            "tenant_id": e.tenant_id,
            "mail_id": mail_id(event_id, member_id),
            "kind": "need",
            "need_id": e.need_id,
            "recipient_id": member_id,
            "event_seq": event_seq,
            "seq": rank,
            "attempts": 0,
            "next_attempt_at": wall_now(),
        }
        for rank, member_id in enumerate(row.matches)
    ]
    if rows:
        conn.execute(outbox.insert(), rows)
    return len(rows)


def mail_reaction(host: ServiceHost, projector: Projector, wake: Callable[[], None]) -> Reaction:
    """The planner: this service's own events (upstream `referrals`)."""
    posted = c.NeedPosted.type_name()

    def queue(e: c.NeedPosted, event_id: str, tracking: Tracking) -> int:
        projector.catch_up()  # the ledger at least as new as the event
        planned = [0]

        def change(conn: sa.Connection) -> None:
            planned[0] = plan(conn, e, event_id, tracking.notification_id)

        OUTBOX.apply(host.engine, tracking, change)
        return planned[0]

    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        if event.type != posted:
            return  # no mail; the position moves on with the next event that has some
        planned = await host.offload(queue, decode_data(event, c.NeedPosted), event.id, tracking)
        if planned:
            log.info("mail.planned", event_id=event.id, kind="need", count=planned)
            wake()

    return Reaction(name="mail", upstream=c.SERVICE, handle=handle)


# -- composing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NeedLetter:
    """What one need mail says, to one member."""

    network_name: str
    locale: str
    sender: str
    to_address: str
    to_name: str
    poster_name: str
    message_id: str  # without angle brackets
    date: datetime
    activity_codes: list[str]
    words: str
    description: str
    deadline: dt.date | None
    window_ends_at: datetime


def _what(letter: NeedLetter) -> str:
    return letter.words or ", ".join(letter.activity_codes)


def compose(letter: NeedLetter) -> EmailMessage:
    """The plain-text message of a need mail, in the network's language."""
    lang = locale_of(letter.locale)
    what = _what(letter)
    until = format_instant(letter.window_ends_at, lang, "Europe/Paris")
    if lang == "fr":
        subject = f"{letter.poster_name} demande d'abord au réseau : {what}"[:150]
        lines: list[str | None] = [
            f"Bonjour {letter.to_name},",
            "",
            f"{letter.poster_name} cherche quelqu'un du réseau {letter.network_name}, et votre"
            " fiche correspond.",
            "",
            f"Recherche : {letter.words}" if letter.words else None,
            f"Activités : {', '.join(letter.activity_codes)}" if letter.activity_codes else None,
            f"Échéance : {format_date(letter.deadline, lang)}" if letter.deadline else None,
            "",
            letter.description,
            "",
            f"Le réseau a la priorité jusqu'au {until}. Si vous pouvez aider, répondez"
            " « Je peux aider » dans Quartier (les besoins qui vous correspondent).",
        ]
    else:
        subject = f"{letter.poster_name} asks the network first: {what}"[:150]
        lines = [
            f"Hello {letter.to_name},",
            "",
            f"{letter.poster_name} is looking for someone in {letter.network_name}, and your"
            " card matches.",
            "",
            f"Looking for: {letter.words}" if letter.words else None,
            f"Activities: {', '.join(letter.activity_codes)}" if letter.activity_codes else None,
            f"Deadline: {format_date(letter.deadline, lang)}" if letter.deadline else None,
            "",
            letter.description,
            "",
            f"The network has it first until {until}. If you can help, answer \u201cI can"
            " help\u201d in Quartier (the needs that match you).",
        ]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(line for line in lines if line is not None))
    message = EmailMessage()
    message["From"] = letter.sender
    message["To"] = Address(display_name=letter.to_name, addr_spec=letter.to_address)
    message["Subject"] = subject
    message["Date"] = format_datetime(letter.date)
    message["Message-ID"] = f"<{letter.message_id}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no automatic replies
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Quartier-Kind"] = "referrals-need"
    message.set_content(body.strip() + "\n")
    message["Content-Language"] = lang  # after set_content, which resets Content-* headers
    return message


# -- the sender ----------------------------------------------------------------------------


class Skip(Exception):
    """This mail no longer makes sense (the reason is its outcome)."""


class NeedMailSender:
    def __init__(
        self,
        host: ServiceHost,
        mailer: Mailer,
        poll_interval: float = 30.0,
        retry_base: float = 5.0,
    ):
        self.host = host
        self.mailer = mailer
        self.engine = host.engine
        self.clock = host.clock
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.sender = host.settings.mail_from
        self.domain = sender_domain(self.sender)
        self.sent = 0
        self._purged_at: datetime | None = None
        self._wake = Wakeup()

    def wake(self) -> None:
        self._wake.set_threadsafe()

    async def run(self, stopping: asyncio.Event) -> None:
        await run_rounds(
            "referrals-mail",
            stopping,
            self._wake,
            self._round,
            lambda: self.host.offload(self._next_attempt),
            wall_now,
            self.poll_interval,
        )

    async def _round(self) -> None:
        await self.send_due()
        await self.host.offload(self.purge)

    def purge(self) -> int:
        """Forget mails done more than KEEP_DONE ago (at most once an hour)."""
        now = wall_now()
        if self._purged_at is not None and now - self._purged_at < timedelta(hours=1):
            return 0
        self._purged_at = now
        with self.engine.begin() as conn:
            return int(
                conn.execute(outbox.delete().where(outbox.c.done_at < now - KEEP_DONE)).rowcount
            )

    def _next_attempt(self) -> datetime | None:
        with self.engine.connect() as conn:
            found: datetime | None = conn.execute(
                sa.select(sa.func.min(outbox.c.next_attempt_at)).where(outbox.c.done_at.is_(None))
            ).scalar_one_or_none()
        if found is not None and found.tzinfo is None:  # SQLite: an aggregate loses the type
            found = found.replace(tzinfo=UTC)
        return found

    def _pending(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(outbox)
                    .where(outbox.c.done_at.is_(None), outbox.c.next_attempt_at <= wall_now())
                    .order_by(outbox.c.event_seq, outbox.c.seq)
                    .limit(BATCH)
                ).all()
            )

    async def send_due(self) -> int:
        """Send every mail that is due; returns how many were sent."""
        sent = 0
        while True:
            rows = await self.host.offload(self._pending)
            if not rows:
                return sent
            by_tenant: dict[str, list[Any]] = defaultdict(list)
            for row in rows:
                by_tenant[row.tenant_id].append(row)
            for tenant_id, batch in by_tenant.items():
                sent += await self._send_batch(tenant_id, batch)

    async def _send_batch(self, tenant_id: str, rows: list[Any]) -> int:
        needs = await self.host.offload(self._needs, tenant_id, {r.need_id for r in rows})
        wanted = {r.recipient_id for r in rows} | {n.poster_id for n in needs.values()}
        try:
            contacts = await self.host.bus.request(
                idc.MemberContacts(member_ids=sorted(wanted)),
                RequestContext(tenant_id=tenant_id, actor=Actor(kind="service")),
            )
        except QuartierError as e:
            log.warning("mail.contacts_unavailable", tenant=tenant_id, error=e.code)
            await self.host.offload(self._failed, rows, e.code)
            return 0
        return await self.host.offload(self._deliver, rows, needs, contacts)

    def _needs(self, tenant_id: str, need_ids: set[str]) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                scoped(ledger.needs, tenant_id).where(ledger.needs.c.need_id.in_(need_ids))
            )
            return {r.need_id: r for r in rows}

    def letter(self, row: Any, need: Any, contacts: idc.Contacts) -> NeedLetter:
        """What the row's mail says now; Skip if it makes no sense any more."""
        if need is None or need.status != "open":
            raise Skip("need_closed")
        by_id = {x.member_id: x for x in contacts.items}
        contact = by_id.get(row.recipient_id)
        if contact is None:
            raise Skip("no_contact")
        with self.engine.connect() as conn:
            if not directory.active_among(conn, row.tenant_id, [row.recipient_id]):
                raise Skip("not_member")
        poster = by_id.get(need.poster_id)
        return NeedLetter(
            network_name=contacts.name,
            locale=contacts.locale,
            sender=self.sender,
            to_address=contact.email,
            to_name=contact.display_name,
            poster_name=poster.display_name if poster is not None else "?",
            message_id=f"{row.mail_id}@{self.domain}",
            date=self.clock.now(),
            activity_codes=list(need.activity_codes),
            words=need.words,
            description=need.description,
            deadline=need.deadline,
            window_ends_at=need.window_ends_at,
        )

    def _deliver(self, rows: list[Any], needs: dict[str, Any], contacts: idc.Contacts) -> int:
        sent = 0
        for row in rows:
            try:
                message = compose(self.letter(row, needs.get(row.need_id), contacts))
            except Skip as skip:
                self._done(row, f"skipped:{skip}")
                continue
            except Exception:
                log.exception("mail.compose_failed", mail_id=row.mail_id, kind=row.kind)
                self._failed([row], "compose")
                continue
            try:
                self.mailer.send(message)
            except Exception as e:  # the error's text may hold an address: its type only
                log.warning(
                    "mail.send_failed",
                    mail_id=row.mail_id,
                    kind=row.kind,
                    attempt=row.attempts + 1,
                    error=type(e).__name__,
                )
                self._failed([row], type(e).__name__)
                continue
            self._done(row, "sent")
            sent += 1
            self.sent += 1
            log.info("mail.sent", mail_id=row.mail_id, kind=row.kind, tenant=row.tenant_id)
        return sent

    def _done(self, row: Any, outcome: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.tenant_id == row.tenant_id, outbox.c.mail_id == row.mail_id)
                .values(done_at=wall_now(), outcome=outcome[:40], attempts=row.attempts + 1)
            )

    def _failed(self, rows: list[Any], why: str) -> None:
        with self.engine.begin() as conn:
            for row in rows:
                attempts = row.attempts + 1
                values: dict[str, Any] = {"attempts": attempts}
                if attempts >= MAX_ATTEMPTS:
                    values.update(done_at=wall_now(), outcome="failed")
                    log.error("mail.given_up", mail_id=row.mail_id, kind=row.kind, error=why)
                else:
                    values["next_attempt_at"] = wall_now() + retry_delay(attempts, self.retry_base)
                conn.execute(
                    outbox.update()
                    .where(outbox.c.tenant_id == row.tenant_id, outbox.c.mail_id == row.mail_id)
                    .values(**values)
                )


def outcomes(engine: sa.Engine, tenant_id: str) -> list[Any]:
    """The outbox of a network, in planning order (tests and operators)."""
    with engine.connect() as conn:
        return list(
            conn.execute(scoped(outbox, tenant_id).order_by(outbox.c.event_seq, outbox.c.seq)).all()
        )
