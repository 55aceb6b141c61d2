"""Meetups' mails: who gets which mail, each sent once.

Two halves, both singletons on the leader:

* **The planner** is a reaction of this service to its *own* published events
  (upstream `events` on the stream). For each event that calls for mail it
  writes one row per recipient to the *mail outbox* — a table this reaction
  owns (`TrackedTables`) — in the same transaction as its tracking position:
  a redelivered event is skipped, and a row's id (the event's id and the
  recipient) is unique, so no mail is planned twice. Addresses are not stored:
  a row names a member (or a visitor) by id.
* **The sender** (`MailSender`, a background job) drains the outbox: it asks
  identity for the addresses and the network's language of a batch of rows
  (`MemberContacts`, as a service), composes each mail (`mail.py`) from the
  current state of the meetup, signs the recipient's links (`links.py`),
  sends it (`services/runtime/mail.py`: SMTP or the mail drop) and marks the
  row done. A failed send is retried with a growing delay; after
  `MAX_ATTEMPTS` the row is given up (logged). The only window for a
  duplicate is a crash between the mail server's acceptance and the commit
  of the row's `done_at` (at least once, there): the Message-ID is the row's,
  stable, so a duplicate is recognisable.

Which event mails whom:

| event | recipients | kind |
|---|---|---|
| MeetupScheduled | the hub's members | scheduled |
| MeetupRescheduled | the hub's members, its invited visitors | rescheduled |
| MeetupCancelled | the hub's members and its visitors who had not declined | cancelled |
| PromotedFromWaitlist | the member promoted | promoted |
| VisitorInvited | the visitor | visitor |
| DatePollOpened | the hub's members | poll |
| ReminderSent | the hub's members who have not declined (and, at sending, still want reminders) | reminder |

At sending, a mail that no longer makes sense is dropped, with the reason as
its outcome: a member who left the hub, a meetup cancelled or over before an
announcement went out, a poll closed, a promotion given back, reminders
turned off. Logs name mails by id and kind, never by address.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid5

import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.events import calendars, mail
from services.events import contract as c
from services.events.application import Meetups
from services.events.domain import DatePoll, Meetup, MemberSettings, Visitor
from services.events.domain.calendar import to_utc
from services.events.domain.meetup import NAMESPACE
from services.events.domain.people import settings_id
from services.events.links import POLL_LINK_TTL, UNSUBSCRIBE_TTL, Link, link_key, sign
from services.events.views import directory, meetups, planning
from services.identity import contract as idc
from services.runtime.errors import QuartierError
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.mail import Mailer, sender_domain
from services.runtime.messages import Actor
from services.runtime.projection import Projector
from services.runtime.reactions import Reaction, decode_data
from services.runtime.stream import CloudEvent
from services.runtime.tenancy import RequestContext, scoped
from services.runtime.views import TrackedTables, UTCDateTime
from services.runtime.wakeup import Wakeup, run_rounds

log = get_logger("quartier.events.mail")

MAX_ATTEMPTS = 8  # then the mail is given up (about 20 minutes of retries)
BATCH = 200  # rows per round, per network at most one MemberContacts request


KEEP_DONE = timedelta(days=30)  # then a sent (or dropped) mail's row is purged


def retry_delay(attempts: int, base: float = 5.0) -> timedelta:
    """5 s, 10 s, 20 s … at most 10 minutes between attempts."""
    return timedelta(seconds=min(base * 2 ** (attempts - 1), 600))


# -- the outbox -------------------------------------------------------------------------

metadata = sa.MetaData()

outbox = sa.Table(
    "mail_outbox",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("mail_id", sa.String(36), primary_key=True),  # from the event id and recipient
    sa.Column("kind", sa.String(20), nullable=False),  # one of mail.KINDS
    sa.Column("hub_id", sa.String(36), nullable=False),
    sa.Column("meetup_id", sa.String(36)),
    sa.Column("poll_id", sa.String(36)),
    sa.Column("recipient_kind", sa.String(10), nullable=False),  # member or visitor
    sa.Column("recipient_id", sa.String(36), nullable=False),
    sa.Column("lead_hours", sa.Integer),  # reminders
    sa.Column("event_id", sa.String(80), nullable=False),  # the CloudEvent that called for it
    sa.Column("event_seq", sa.BigInteger, nullable=False),  # its place in this service's log
    sa.Column("queued_at", UTCDateTime, nullable=False),  # the domain clock
    sa.Column("seq", sa.Integer, nullable=False),  # order among the event's mails
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),  # wall clock (retries)
    sa.Column("done_at", UTCDateTime),  # wall clock
    sa.Column("outcome", sa.String(40)),  # sent, skipped:<reason>, failed
    sa.Index("ix_mail_outbox_pending", "done_at", "next_attempt_at", "event_seq"),
    sa.Index("ix_mail_outbox_meetup", "tenant_id", "meetup_id", "kind"),
)

OUTBOX = TrackedTables("mail", metadata)


def wall_now() -> datetime:
    """Retries are operational, not domain time: the wall clock."""
    return datetime.now(UTC)


def mail_id(event_id: str, recipient_id: str) -> str:
    return str(uuid5(NAMESPACE, f"mail:{event_id}:{recipient_id}"))


# -- the planner: who gets what --------------------------------------------------------

HANDLED: dict[str, type[c.EventsEvent]] = {
    cls.type_name(): cls
    for cls in (
        c.MeetupScheduled,
        c.MeetupRescheduled,
        c.MeetupCancelled,
        c.PromotedFromWaitlist,
        c.VisitorInvited,
        c.DatePollOpened,
        c.ReminderSent,
    )
}


def _declined(conn: sa.Connection, tenant_id: str, meetup_id: str) -> set[str]:
    rows = conn.execute(
        sa.select(meetups.rsvps.c.member_id).where(
            meetups.rsvps.c.tenant_id == tenant_id,
            meetups.rsvps.c.meetup_id == meetup_id,
            meetups.rsvps.c.answer == "no",
        )
    )
    return {r.member_id for r in rows}


def _visitors(conn: sa.Connection, tenant_id: str, meetup_id: str) -> list[str]:
    return [v.visitor_id for v in planning.visits_of(conn, tenant_id, meetup_id)]


def _last_announced(conn: sa.Connection, tenant_id: str, meetup_id: str) -> datetime | None:
    """When the meetup was last announced (scheduled or changed), by the
    domain clock."""
    found: datetime | None = conn.execute(
        sa.select(sa.func.max(outbox.c.queued_at)).where(
            outbox.c.tenant_id == tenant_id,
            outbox.c.meetup_id == meetup_id,
            outbox.c.kind.in_(("scheduled", "rescheduled")),
        )
    ).scalar_one_or_none()
    if found is not None and found.tzinfo is None:  # SQLite: an aggregate loses the type
        found = found.replace(tzinfo=UTC)
    return found


def reminder_is_timely(
    row: Any, lead_hours: int, announced: datetime | None, now: datetime
) -> bool:
    """A reminder is mailed unless a nearer one is already due (the clock, or
    the service, was late: the nearer one says it better) or the meetup was
    announced after this reminder's time (the announcement was the reminder)."""
    if row.state != "scheduled" or now >= row.starts_at:
        return False
    due_at = row.starts_at - timedelta(hours=lead_hours)
    nearer_due = any(
        lead < lead_hours and row.starts_at - timedelta(hours=lead) <= now
        for lead in row.reminder_hours
    )
    return not nearer_due and not (announced is not None and announced >= due_at)


def recipients(conn: sa.Connection, e: c.EventsEvent, now: datetime) -> list[tuple[str, str]]:
    """(recipient kind, id) of the mails an event calls for."""
    tenant_id = e.tenant_id
    match e:
        case c.MeetupScheduled() | c.DatePollOpened():
            return [("member", m) for m in directory.hub_members(conn, tenant_id, e.hub_id)]
        case c.MeetupRescheduled():
            members = directory.hub_members(conn, tenant_id, e.hub_id)
            visitors = _visitors(conn, tenant_id, e.meetup_id)
            return [("member", m) for m in members] + [("visitor", v) for v in visitors]
        case c.MeetupCancelled():
            declined = _declined(conn, tenant_id, e.meetup_id)
            members = directory.hub_members(conn, tenant_id, e.hub_id)
            visitors = _visitors(conn, tenant_id, e.meetup_id)
            return [("member", m) for m in members if m not in declined] + [
                ("visitor", v) for v in visitors
            ]
        case c.PromotedFromWaitlist():
            return [("member", e.member_id)]
        case c.VisitorInvited():
            return [("visitor", e.visitor_id)]
        case c.ReminderSent():
            row = meetups.meetup_row(conn, tenant_id, e.meetup_id)
            announced = _last_announced(conn, tenant_id, e.meetup_id)
            if row is None or not reminder_is_timely(row, e.lead_hours, announced, now):
                return []
            declined = _declined(conn, tenant_id, e.meetup_id)
            members = directory.hub_members(conn, tenant_id, e.hub_id)
            return [("member", m) for m in members if m not in declined]
    return []


def kind_of(e: c.EventsEvent) -> str:
    return {
        c.MeetupScheduled: "scheduled",
        c.MeetupRescheduled: "rescheduled",
        c.MeetupCancelled: "cancelled",
        c.PromotedFromWaitlist: "promoted",
        c.VisitorInvited: "visitor",
        c.DatePollOpened: "poll",
        c.ReminderSent: "reminder",
    }[type(e)]


def plan(
    conn: sa.Connection, e: c.EventsEvent, event_id: str, event_seq: int, now: datetime
) -> int:
    """Write the outbox rows an event calls for; returns how many."""
    kind = kind_of(e)
    rows = [
        {
            "tenant_id": e.tenant_id,
            "mail_id": mail_id(event_id, recipient_id),
            "kind": kind,
            "hub_id": getattr(e, "hub_id", ""),
            "meetup_id": getattr(e, "meetup_id", None),
            "poll_id": getattr(e, "poll_id", None),
            "recipient_kind": recipient_kind,
            "recipient_id": recipient_id,
            "lead_hours": getattr(e, "lead_hours", None),
            "event_id": event_id,
            "event_seq": event_seq,
            "queued_at": now,
            "seq": n,
            "attempts": 0,
            "next_attempt_at": wall_now(),
        }
        for n, (recipient_kind, recipient_id) in enumerate(recipients(conn, e, now))
    ]
    if rows:
        conn.execute(outbox.insert(), rows)
    return len(rows)


def mail_reaction(host: ServiceHost, projector: Projector, wake: Callable[[], None]) -> Reaction:
    """The planner: this service's own events (upstream `events`)."""

    def queue(e: c.EventsEvent, event_id: str, tracking: Tracking) -> int:
        projector.catch_up()  # the read models at least as new as the event
        planned = [0]

        def change(conn: sa.Connection) -> None:
            planned[0] = plan(conn, e, event_id, tracking.notification_id, host.clock.now())

        OUTBOX.apply(host.engine, tracking, change)
        return planned[0]

    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        kind = HANDLED.get(event.type)
        if kind is None:
            return  # no mail; the position moves on with the next event that has some
        planned = await host.offload(queue, decode_data(event, kind), event.id, tracking)
        if planned:
            log.info("mail.planned", event_id=event.id, kind=kind.__name__, count=planned)
            wake()

    return Reaction(name="mail", upstream=c.SERVICE, handle=handle)


# -- the sender ----------------------------------------------------------------------------


class Skip(Exception):
    """This mail no longer makes sense (the reason is its outcome)."""


class MailSender:
    def __init__(
        self,
        host: ServiceHost,
        app: Meetups,
        mailer: Mailer,
        poll_interval: float = 30.0,
        retry_base: float = 5.0,
    ):
        self.host = host
        self.app = app
        self.mailer = mailer
        self.engine = host.engine
        self.clock = host.clock
        self.poll_interval = poll_interval
        self.key = link_key(host.settings.jwt_secret)
        self.public_url = host.settings.public_url.rstrip("/")
        self.sender = host.settings.mail_from
        self.domain = sender_domain(self.sender)
        self.retry_base = retry_base
        self.sent = 0
        self._purged_at: datetime | None = None
        self._wake = Wakeup()

    def wake(self) -> None:
        self._wake.set_threadsafe()

    async def run(self, stopping: asyncio.Event) -> None:
        await run_rounds(
            "meetups-mail",
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

    def purge(self, force: bool = False) -> int:
        """Forget mails done more than KEEP_DONE ago (at most once an hour)."""
        now = wall_now()
        if not force and self._purged_at is not None and now - self._purged_at < timedelta(hours=1):
            return 0
        self._purged_at = now
        with self.engine.begin() as conn:
            purged = conn.execute(
                outbox.delete().where(outbox.c.done_at < now - KEEP_DONE)
            ).rowcount
        return int(purged)

    def _next_attempt(self) -> datetime | None:
        with self.engine.connect() as conn:
            found: datetime | None = conn.execute(
                sa.select(sa.func.min(outbox.c.next_attempt_at)).where(outbox.c.done_at.is_(None))
            ).scalar_one_or_none()
        if found is not None and found.tzinfo is None:
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
        members = sorted({r.recipient_id for r in rows if r.recipient_kind == "member"})
        try:
            contacts = await self.host.bus.request(
                idc.MemberContacts(member_ids=members),
                RequestContext(tenant_id=tenant_id, actor=Actor(kind="service")),
            )
        except QuartierError as e:
            log.warning("mail.contacts_unavailable", tenant=tenant_id, error=e.code)
            await self.host.offload(self._failed, rows, e.code)
            return 0
        return await self.host.offload(self._deliver, rows, contacts)

    # -- on a worker thread --------------------------------------------------------------

    def _deliver(self, rows: list[Any], contacts: idc.Contacts) -> int:
        network = mail.Network(contacts.name, contacts.slug, contacts.locale)
        by_id = {x.member_id: x for x in contacts.items}
        cache: dict[tuple[str, ...], Any] = {}  # what every mail of a batch shares
        sent = 0
        for row in rows:
            try:
                message = mail.compose(self.letter(row, network, by_id, cache))
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

    # -- composing one mail ----------------------------------------------------------------

    def _url(self, path: str, slug: str, token: str) -> str:
        return f"{self.public_url}/{path}/{slug}/{token}"

    def _sign(self, slug: str, link: Link) -> str:
        return self._url("links", slug, sign(self.key, link))

    def letter(
        self,
        row: Any,
        network: mail.Network,
        contacts: dict[str, idc.Contact],
        cache: dict[tuple[str, ...], Any] | None = None,
    ) -> mail.Letter:
        """What the outbox row's mail says now; Skip if it makes no sense any
        more. `cache` keeps what the mails of one batch share (the meetup,
        its .ics, the hub) so that a hub of 300 members costs one of each."""
        now = self.clock.now()
        tenant_id = row.tenant_id
        shared = cache if cache is not None else {}

        def once(key: tuple[str, ...], make: Callable[[], Any]) -> Any:
            if key not in shared:
                shared[key] = make()
            return shared[key]

        with self.engine.connect() as conn:
            hub = once(
                ("hub", tenant_id, row.hub_id),
                lambda: directory.hub_row(conn, tenant_id, row.hub_id),
            )
            if hub is None:
                raise Skip("hub_gone")
            if row.recipient_kind == "member":
                contact = contacts.get(row.recipient_id)
                if contact is None:
                    raise Skip("no_contact")
                if not directory.is_member(conn, tenant_id, row.hub_id, row.recipient_id):
                    raise Skip("not_member")
                to_address, to_name = contact.email, contact.display_name
            else:
                visitor = self.app.find(row.recipient_id, Visitor)
                if visitor is None or visitor.tenant_id != tenant_id:
                    raise Skip("no_contact")
                to_address, to_name = visitor.email, visitor.name
            base = {
                "kind": row.kind,
                "network": network,
                "sender": self.sender,
                "to_address": to_address,
                "to_name": to_name,
                "hub_name": hub.name,
                "message_id": f"{row.mail_id}@{self.domain}",
                "date": now,
            }
            if row.kind == "poll":
                poll = once(("poll", row.poll_id), lambda: self.app.find(row.poll_id, DatePoll))
                return self._poll_letter(row, base, poll, now)
            meetup_row = once(
                ("meetup_row", tenant_id, row.meetup_id),
                lambda: meetups.meetup_row(conn, tenant_id, row.meetup_id),
            )
            if meetup_row is None:
                raise Skip("meetup_gone")
            rsvp = (
                meetups.rsvp_of(conn, tenant_id, row.meetup_id, row.recipient_id)
                if row.recipient_kind == "member"
                else None
            )
        meetup = meetups.to_meetup(meetup_row)
        aggregate = once(("meetup", row.meetup_id), lambda: self.app.find(row.meetup_id, Meetup))
        ics = once(
            ("ics", row.meetup_id),
            lambda: calendars.calendar([meetup], hub.name, now, {meetup.hub_id: hub.name}),
        )
        return self._meetup_letter(row, base, meetup, aggregate, ics, rsvp, now)

    def _meetup_letter(
        self,
        row: Any,
        base: dict[str, Any],
        meetup: c.Meetup,
        aggregate: Meetup | None,
        ics: str,
        rsvp: c.Rsvp | None,
        now: datetime,
    ) -> mail.Letter:
        kind, holder = row.kind, row.recipient_id
        if kind == "cancelled":
            if meetup.state != "cancelled":
                raise Skip("not_cancelled")
        elif meetup.state != "scheduled" or now >= meetup.ends_at:
            raise Skip("meetup_over")
        answer: str | None = rsvp.answer if rsvp is not None else None
        if kind == "visitor" or row.recipient_kind == "visitor":
            visitor = self.app.find(holder, Visitor)
            answer = visitor.answers.get(meetup.meetup_id) if visitor is not None else None
        if kind == "cancelled" and answer == "no":
            raise Skip("declined")
        if kind == "promoted" and (rsvp is None or rsvp.seat != "seated"):
            raise Skip("not_seated")
        unsubscribe = None
        if kind == "reminder":
            if answer == "no":
                raise Skip("declined")
            settings = self.app.find(settings_id(row.tenant_id, holder), MemberSettings)
            if settings is not None and not settings.reminders:
                raise Skip("reminders_off")
            unsubscribe = self._url(
                "unsubscribe",
                base["network"].slug,
                sign(
                    self.key,
                    Link(
                        kind="unsubscribe",
                        tenant_id=row.tenant_id,
                        target_id=holder,
                        holder_id=holder,
                        answer="off",
                        slot_id=None,
                        version=0,
                        expires_at=now + UNSUBSCRIBE_TTL,
                    ),
                ),
            )
        answers: list[tuple[str, str]] = []
        if kind != "cancelled":
            if aggregate is None:
                raise Skip("meetup_gone")
            visitor_link = row.recipient_kind == "visitor"
            choices: tuple[str, ...] = ("yes", "no") if visitor_link else mail.ANSWER_ORDER
            if kind == "promoted":
                choices = ("no",)
            answers = [
                (
                    choice,
                    self._sign(
                        base["network"].slug,
                        Link(
                            kind="visitor" if visitor_link else "rsvp",
                            tenant_id=row.tenant_id,
                            target_id=meetup.meetup_id,
                            holder_id=holder,
                            answer=choice,
                            slot_id=None,
                            version=aggregate.link_version(holder),
                            expires_at=meetup.ends_at,
                        ),
                    ),
                )
                for choice in choices
            ]
        return mail.Letter(
            **base,
            title=meetup.title,
            timezone=meetup.timezone,
            duration_minutes=meetup.duration_minutes,
            venue=meetup.venue,
            local_start=meetup.local_start,
            topic=meetup.topic if meetup.kind == "workshop" else None,
            cancel_reason=meetup.cancel_reason,
            answers=answers,
            current=answer,
            lead_hours=row.lead_hours,
            ics=ics,
            unsubscribe_url=unsubscribe,
        )

    def _poll_letter(
        self, row: Any, base: dict[str, Any], poll: DatePoll | None, now: datetime
    ) -> mail.Letter:
        if poll is None or poll.tenant_id != row.tenant_id:
            raise Skip("poll_gone")
        if poll.state != "open":
            raise Skip("poll_closed")
        starts = sorted(poll.slots.items(), key=lambda item: item[1])
        last = max(to_utc(start, poll.timezone) for _, start in starts)
        expires = min(last, now + POLL_LINK_TTL)
        if expires <= now:
            raise Skip("poll_past")
        version = poll.link_version(row.recipient_id)
        slots = [
            mail.Slot(
                local_start=start,
                votes=[
                    (
                        vote,
                        self._sign(
                            base["network"].slug,
                            Link(
                                kind="vote",
                                tenant_id=row.tenant_id,
                                target_id=row.poll_id,
                                holder_id=row.recipient_id,
                                answer=vote,
                                slot_id=slot_id,
                                version=version,
                                expires_at=expires,
                            ),
                        ),
                    )
                    for vote in mail.VOTE_ORDER
                ],
            )
            for slot_id, start in starts
        ]
        return mail.Letter(
            **base,
            title=poll.title,
            timezone=poll.timezone,
            duration_minutes=poll.duration_minutes,
            venue=c.Venue(name=poll.venue.name, address=poll.venue.address),
            slots=slots,
        )


def outcomes(engine: sa.Engine, tenant_id: str) -> list[Any]:
    """The outbox of a network, in planning order (tests and operators)."""
    with engine.connect() as conn:
        return list(
            conn.execute(scoped(outbox, tenant_id).order_by(outbox.c.event_seq, outbox.c.seq)).all()
        )
