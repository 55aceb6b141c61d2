"""Meetups' mails over a real NATS server and real stores, beside identity and
hubs: each mail planned from the service's own published events and sent
once, even when an event is redelivered; reminders once per lead time as the
clock moves, never to members who turned them off; the waitlist, visitors,
date polls, cancelled and changed meetups; the network's language; and no
mail ever reaches another network's members."""

from __future__ import annotations

import smtplib
from datetime import time, timedelta
from email.message import EmailMessage

import icalendar
import pytest

from services.events import contract as ec
from services.events.links import Link, link_key, sign, verify
from services.events.notify import outcomes
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import Forbidden, InvalidToken, Unauthenticated
from services.runtime.host import ServiceHost
from services.runtime.mail import Mailer
from services.runtime.settings import Settings
from services.runtime.stream import STREAM
from services.runtime.tenancy import RequestContext
from tests.support.identity import as_member
from tests.support.meetups import (
    UNSUBSCRIBE,
    VENUE,
    Club,
    ics_of,
    links_of,
    local,
    mails_settled,
    meetup_mails,
    open_club,
    start_events,
    text_of,
)
from tests.support.services import Services
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def events(services: Services) -> ServiceHost:
    return await start_events(services)


def addresses(slug: str, *names: str) -> set[str]:
    return {f"{n.lower()}@{slug}.example" for n in names}


def to_address(message) -> str:  # type: ignore[no-untyped-def]
    return str(message["To"].addresses[0].addr_spec)


async def schedule(
    bus: Bus, club: Club, clock: MovableClock, days: float = 4, **extra: object
) -> ec.Meetup:
    return await bus.request(
        ec.ScheduleMeetup(
            hub_id=club.hub.hub_id,
            local_start=local(clock.now(), days),
            title="Déjeuner du jeudi",
            venue=VENUE,
            **extra,  # type: ignore[arg-type]
        ),
        as_member(club.admin),
    )


async def settle(events: ServiceHost) -> None:
    await eventually(lambda: mails_settled(events))


async def moved(events: ServiceHost, clock: MovableClock, delta: timedelta) -> None:
    """Move the clock, and wait until the reminder scheduler has looked at
    the new time and every mail it called for is out."""
    scheduler = events.context["reminders"]
    now = clock.advance(delta)
    await eventually(lambda: (scheduler.checked_until or now - delta) >= now)
    await settle(events)


async def test_a_scheduled_meetup_mails_each_member_once_even_when_redelivered(
    events: ServiceHost, client_bus: Bus, settings: Settings, clock: MovableClock
) -> None:
    club = await open_club(client_bus, events, "pole-a", ["Marie", "Karim"])
    meetup = await schedule(client_bus, club, clock)
    await eventually(lambda: len(meetup_mails(settings.mail_dir, "scheduled")) == 3)
    await settle(events)
    mails = meetup_mails(settings.mail_dir, "scheduled")
    assert {to_address(m) for m in mails} == addresses("pole-a", "admin", "marie", "karim")
    key = link_key(settings.jwt_secret)
    for message in mails:
        assert message["Content-Language"] == "fr"
        assert message["Auto-Submitted"] == "auto-generated"
        assert "List-Unsubscribe" not in message  # announcements are not reminders
        assert "Déjeuner du jeudi" in message["Subject"]
        text = text_of(message)
        assert "Le Bistrot Voltaire, 12 boulevard Voltaire" in text
        links = links_of(message)
        assert [slug for slug, _ in links] == ["pole-a"] * 3
        decoded = [verify(key, token, clock.now()) for _, token in links]
        assert [(d.kind, d.answer) for d in decoded] == [
            ("rsvp", "yes"),
            ("rsvp", "maybe"),
            ("rsvp", "no"),
        ]
        assert {d.target_id for d in decoded} == {meetup.meetup_id}
        assert {d.tenant_id for d in decoded} == {club.tenant.tenant_id}
        assert decoded[0].expires_at == meetup.ends_at  # the links stop working after it
        (holder,) = {d.holder_id for d in decoded}
        assert holder in {s.member_id for s in club.everyone}
        cal = icalendar.Calendar.from_ical(ics_of(message))
        (vevent,) = cal.walk("VEVENT")
        assert str(vevent["UID"]) == f"meetup-{meetup.meetup_id}@quartier"
        assert vevent["SEQUENCE"] == 0 and str(vevent["STATUS"]) == "CONFIRMED"
        assert vevent.decoded("DTSTART").replace(tzinfo=None) == meetup.local_start
        assert str(cal["METHOD"]) == "PUBLISH"
    # each member's links are their own
    assert len({verify(key, links_of(m)[0][1], clock.now()).holder_id for m in mails}) == 3

    # the MeetupScheduled event again, under another message id (as after a
    # re-publication past JetStream's duplicate window): nothing is mailed twice
    planner = next(r for r in events.reactions if r.durable == "events-mail")
    handled = planner.handled
    js = client_bus.jetstream()
    last = await js.get_last_msg(
        STREAM, f"quartier.evt.{club.tenant.tenant_id}.events.MeetupScheduled"
    )
    await js.publish(last.subject, last.data, headers={"Nats-Msg-Id": "again-later"})
    await eventually(lambda: planner.handled > handled)
    await settle(events)
    assert len(meetup_mails(settings.mail_dir)) == 3
    assert len(outcomes(events.context["engine"], club.tenant.tenant_id)) == 3


async def test_reminders_once_per_lead_time_and_never_to_who_turned_them_off(
    events: ServiceHost, client_bus: Bus, settings: Settings, clock: MovableClock
) -> None:
    club = await open_club(client_bus, events, "pole-a", ["Marie", "Karim", "Lea"])
    admin, marie, karim, lea = club.everyone
    start = local(clock.now(), 5, 19, 0)
    series = await client_bus.request(
        ec.CreateSeries(
            hub_id=club.hub.hub_id,
            name="Afterwork",
            rrule="FREQ=WEEKLY",
            starts_on=start.date(),
            start_time=time(19, 0),
            venue=VENUE,
            reminder_hours=[48, 2],
            rsvp_deadline_hours=1,
        ),
        as_member(admin),
    )
    meetup = await client_bus.request(
        ec.ScheduleMeetup(hub_id=club.hub.hub_id, local_start=start, series_id=series.series_id),
        as_member(admin),
    )
    await client_bus.request(ec.SetReminders(reminders=False), as_member(karim))
    await client_bus.request(ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="no"), as_member(marie))
    await client_bus.request(ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="yes"), as_member(lea))
    await settle(events)
    assert meetup_mails(settings.mail_dir, "reminder") == []
    app = events.context["app"]

    def reminders_recorded(*leads: int) -> bool:
        from services.events.domain import Meetup

        return app.get(club.tenant.tenant_id, meetup.meetup_id, Meetup).reminders_sent == list(
            leads
        )

    # 48 hours before: Karim turned them off, Marie said no
    clock.advance(meetup.starts_at - clock.now() - timedelta(hours=47))
    await eventually(lambda: reminders_recorded(48))
    await settle(events)
    first = meetup_mails(settings.mail_dir, "reminder")
    assert {to_address(m) for m in first} == addresses("pole-a", "admin", "lea")
    by_address = {to_address(m): m for m in first}
    lea_mail = by_address["lea@pole-a.example"]
    assert "dans 2 jours" in text_of(lea_mail) and "Votre réponse : oui." in text_of(lea_mail)
    unsubscribe = lea_mail["List-Unsubscribe"]
    assert lea_mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    slug, token = UNSUBSCRIBE.search(str(unsubscribe)).groups()  # type: ignore[union-attr]
    assert slug == "pole-a" and str(unsubscribe).startswith(f"<{settings.public_url}/")
    assert len(links_of(lea_mail)) == 3

    # the clock moves on, not yet to the next lead time: nothing more
    await moved(events, clock, timedelta(hours=20))
    assert reminders_recorded(48)
    assert len(meetup_mails(settings.mail_dir, "reminder")) == 2

    # Lea unsubscribes in one click (RFC 8058) from the first reminder
    tenant = club.tenant.tenant_id
    gateway_ctx = RequestContext(tenant_id=tenant)
    info = await client_bus.request(ec.DescribeUnsubscribeLink(token=token), gateway_ctx)
    assert (info.valid, info.reminders) == (True, True)
    done = await client_bus.request(ec.UnsubscribeByLink(token=token), gateway_ctx)
    assert done.reminders is False
    again = await client_bus.request(ec.UnsubscribeByLink(token=token), gateway_ctx)
    assert again.reminders is False  # a second click changes nothing
    settings_now = await client_bus.request(ec.GetReminderSettings(), as_member(lea))
    assert settings_now.reminders is False

    # 2 hours before: only the admin still wants them
    clock.advance(meetup.starts_at - clock.now() - timedelta(hours=1))
    await eventually(lambda: reminders_recorded(48, 2))
    await settle(events)
    reminders = meetup_mails(settings.mail_dir, "reminder")
    assert len(reminders) == 3
    assert to_address(reminders[-1]) == "admin@pole-a.example"
    assert "dans 2 heures" in text_of(reminders[-1])
    # past the meetup, nothing is ever due again
    await moved(events, clock, timedelta(days=2))
    assert len(meetup_mails(settings.mail_dir, "reminder")) == 3
    skipped = [
        (row.recipient_id, row.outcome)
        for row in outcomes(events.context["engine"], tenant)
        if row.kind == "reminder" and row.outcome != "sent"
    ]
    assert sorted(skipped) == sorted(
        [(karim.member_id, "skipped:reminders_off")] * 2
        + [(lea.member_id, "skipped:reminders_off")]
    )


async def test_an_unsubscribe_link_of_another_network_or_kind_is_refused(
    events: ServiceHost, client_bus: Bus, settings: Settings, clock: MovableClock
) -> None:
    club = await open_club(client_bus, events, "pole-a", ["Marie"])
    other = await open_club(client_bus, events, "pole-b", ["Paul"])
    meetup = await schedule(client_bus, club, clock, days=3)
    await settle(events)
    (marie_mail,) = [
        m
        for m in meetup_mails(settings.mail_dir, "scheduled")
        if to_address(m) == "marie@pole-a.example"
    ]
    _, rsvp_token = links_of(marie_mail)[0]
    before = events.context["app"].max_notification_id()
    theirs = RequestContext(tenant_id=other.tenant.tenant_id)
    info = await client_bus.request(ec.DescribeUnsubscribeLink(token=rsvp_token), theirs)
    assert (info.valid, info.reason_code) == (False, "link_invalid")
    for token, ctx in (
        (rsvp_token, RequestContext(tenant_id=club.tenant.tenant_id)),  # an RSVP link
        ("garbage", RequestContext(tenant_id=club.tenant.tenant_id)),
    ):
        with pytest.raises(InvalidToken):
            await client_bus.request(ec.UnsubscribeByLink(token=token), ctx)
    # an RSVP link opened at another network's address is not valid either
    described = await client_bus.request(ec.DescribeLink(token=rsvp_token), theirs)
    assert (described.valid, described.reason_code) == (False, "link_invalid")
    with pytest.raises(InvalidToken):
        await client_bus.request(ec.AnswerByLink(token=rsvp_token), theirs)
    # a genuine unsubscribe link: without a network, or expired
    marie = club.members[0].member_id
    key = link_key(settings.jwt_secret)

    def unsubscribe_token(expires_in: timedelta) -> str:
        link = Link(
            "unsubscribe",
            club.tenant.tenant_id,
            marie,
            marie,
            "off",
            None,
            0,
            clock.now() + expires_in,
        )
        return sign(key, link)

    with pytest.raises(Unauthenticated):
        await client_bus.request(
            ec.UnsubscribeByLink(token=unsubscribe_token(timedelta(days=1))), RequestContext()
        )
    expired = unsubscribe_token(-timedelta(seconds=1))
    ours = RequestContext(tenant_id=club.tenant.tenant_id)
    with pytest.raises(InvalidToken) as caught:
        await client_bus.request(ec.UnsubscribeByLink(token=expired), ours)
    assert caught.value.rule == "link_expired"
    info = await client_bus.request(ec.DescribeUnsubscribeLink(token=expired), ours)
    assert (info.valid, info.reason_code, info.reminders) == (False, "link_expired", None)
    assert events.context["app"].max_notification_id() == before
    assert (
        await client_bus.request(ec.GetReminderSettings(), as_member(club.members[0]))
    ).reminders
    seen = await client_bus.request(
        ec.GetMeetup(meetup_id=meetup.meetup_id), as_member(club.members[0])
    )
    assert seen.my_rsvp is None and seen.seated == 0


async def test_the_waitlist_visitors_polls_changes_and_cancellations(
    events: ServiceHost, client_bus: Bus, settings: Settings, clock: MovableClock
) -> None:
    club = await open_club(client_bus, events, "pole-a", ["Marie", "Karim"])
    admin, marie, karim = club.everyone
    meetup = await schedule(client_bus, club, clock, capacity=1)
    await client_bus.request(
        ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="yes"), as_member(marie)
    )
    await client_bus.request(
        ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="yes"), as_member(karim)
    )
    await client_bus.request(ec.GiveRsvp(meetup_id=meetup.meetup_id, answer="no"), as_member(marie))
    await settle(events)
    key = link_key(settings.jwt_secret)

    # Marie's seat went to Karim, first in line: he is told, with a link to give it back
    (promoted,) = meetup_mails(settings.mail_dir, "promoted")
    assert to_address(promoted) == "karim@pole-a.example"
    assert [verify(key, t, clock.now()).answer for _, t in links_of(promoted)] == ["no"]
    assert ics_of(promoted) is not None

    # a visitor: name and address kept only here, yes / no links and the .ics
    await client_bus.request(
        ec.InviteVisitor(
            meetup_id=meetup.meetup_id, name="Paul Visiteur", email="paul@visit.example"
        ),
        as_member(marie),
    )
    await settle(events)
    (invited,) = meetup_mails(settings.mail_dir, "visitor")
    assert str(invited["To"]) == "Paul Visiteur <paul@visit.example>"
    assert [
        (d.kind, d.answer) for d in (verify(key, t, clock.now()) for _, t in links_of(invited))
    ] == [
        ("visitor", "yes"),
        ("visitor", "no"),
    ]
    assert "Network pole-a" in text_of(invited)

    # a date poll: one link per slot and vote
    poll = await client_bus.request(
        ec.OpenDatePoll(
            hub_id=club.hub.hub_id,
            title="Afterwork de mars",
            slots=[local(clock.now(), 10, 19), local(clock.now(), 11, 19)],
            venue=VENUE,
        ),
        as_member(admin),
    )
    await settle(events)
    polls = meetup_mails(settings.mail_dir, "poll")
    assert {to_address(m) for m in polls} == addresses("pole-a", "admin", "marie", "karim")
    votes = [verify(key, t, clock.now()) for _, t in links_of(polls[0])]
    assert [(v.slot_id, v.answer) for v in votes] == [
        (s.slot_id, vote) for s in poll.slots for vote in ("yes", "if_need_be", "no")
    ]
    assert {v.kind for v in votes} == {"vote"} and ics_of(polls[0]) is None

    # moved: the updated .ics (SEQUENCE bumped) and the links again, to everyone and the visitor
    await client_bus.request(
        ec.RescheduleMeetup(meetup_id=meetup.meetup_id, local_start=local(clock.now(), 5)),
        as_member(admin),
    )
    await settle(events)
    moved = meetup_mails(settings.mail_dir, "rescheduled")
    assert {to_address(m) for m in moved} == addresses("pole-a", "admin", "marie", "karim") | {
        "paul@visit.example"
    }
    (vevent,) = icalendar.Calendar.from_ical(ics_of(moved[0])).walk("VEVENT")
    assert vevent["SEQUENCE"] == 1
    assert vevent.decoded("DTSTART").date() == local(clock.now(), 5).date()

    # cancelled: STATUS:CANCELLED, to all but Marie, who had said no
    await client_bus.request(
        ec.CancelMeetup(meetup_id=meetup.meetup_id, reason="Le restaurant est fermé"),
        as_member(admin),
    )
    await settle(events)
    cancelled = meetup_mails(settings.mail_dir, "cancelled")
    assert {to_address(m) for m in cancelled} == addresses("pole-a", "admin", "karim") | {
        "paul@visit.example"
    }
    assert "Motif : Le restaurant est fermé" in text_of(cancelled[0])
    assert links_of(cancelled[0]) == []
    (vevent,) = icalendar.Calendar.from_ical(ics_of(cancelled[0])).walk("VEVENT")
    assert (str(vevent["STATUS"]), vevent["SEQUENCE"]) == ("CANCELLED", 2)


async def test_the_next_meetup_fixed_at_a_close_is_announced_in_the_network_language(
    events: ServiceHost, client_bus: Bus, settings: Settings, clock: MovableClock
) -> None:
    club = await open_club(client_bus, events, "pole-a", ["Marie"])
    await client_bus.request(idc.SetTenantLocale(locale="en"), as_member(club.admin))
    meetup = await schedule(client_bus, club, clock, days=1)
    clock.advance(meetup.starts_at - clock.now() + timedelta(minutes=5))
    await client_bus.request(ec.CheckIn(meetup_id=meetup.meetup_id), as_member(club.members[0]))
    closed = await client_bus.request(
        ec.CloseMeetup(meetup_id=meetup.meetup_id, next_local_start=local(clock.now(), 7)),
        as_member(club.admin),
    )
    await settle(events)
    announced = [
        m
        for m in meetup_mails(settings.mail_dir, "scheduled")
        if closed.next.meetup_id
        in {verify(link_key(settings.jwt_secret), t, clock.now()).target_id for _, t in links_of(m)}
    ]
    assert {to_address(m) for m in announced} == addresses("pole-a", "admin", "marie")
    for message in announced:
        assert message["Content-Language"] == "en"
        assert message["Subject"].startswith("Voltaire: Déjeuner du jeudi,")
        text = text_of(message)
        assert "A meetup of the Voltaire club is scheduled. Will you come?" in text
        assert "Yes, I'll come: " in text and "Maybe: " in text
        assert f"{closed.next.local_start.day} " in text


async def test_no_mail_reaches_another_networks_members(
    events: ServiceHost, client_bus: Bus, settings: Settings, clock: MovableClock
) -> None:
    a = await open_club(client_bus, events, "pole-a", ["Marie", "Karim"])
    b = await open_club(client_bus, events, "pole-b", ["Paul"], hub_name="Bastille")
    for club in (a, b):
        await schedule(client_bus, club, clock, days=3)
        await client_bus.request(
            ec.OpenDatePoll(
                hub_id=club.hub.hub_id,
                title="Quelle date ?",
                slots=[local(clock.now(), 8), local(clock.now(), 9)],
                venue=VENUE,
            ),
            as_member(club.admin),
        )
    await settle(events)
    mails = meetup_mails(settings.mail_dir)
    assert len(mails) == 2 * (3 + 2)
    key = link_key(settings.jwt_secret)
    tenants = {"pole-a": a.tenant.tenant_id, "pole-b": b.tenant.tenant_id}
    for message in mails:
        slug = to_address(message).split("@")[1].removesuffix(".example")
        hub = "Voltaire" if slug == "pole-a" else "Bastille"
        assert message["Subject"].startswith(f"{hub} : ") or hub in message["Subject"]
        for link_slug, token in links_of(message):
            assert link_slug == slug
            assert verify(key, token, clock.now()).tenant_id == tenants[slug]
    # identity answers a service only about the asking network's members
    with pytest.raises(Forbidden):
        await client_bus.request(
            idc.MemberContacts(member_ids=[b.admin.member_id]), as_member(a.admin)
        )


class FlakyMailer:
    """A mail server that refuses the first `failures` messages."""

    def __init__(self, inner: Mailer, failures: int):
        self.inner = inner
        self.failures = failures
        self.refused = 0

    def send(self, message: EmailMessage) -> None:
        if self.refused < self.failures:
            self.refused += 1
            raise smtplib.SMTPServerDisconnected("connection lost")
        self.inner.send(message)


async def test_a_mail_the_server_refused_is_retried_and_still_sent_once(
    events: ServiceHost, client_bus: Bus, settings: Settings, clock: MovableClock
) -> None:
    sender = events.context["mail"]
    flaky = FlakyMailer(sender.mailer, failures=3)
    sender.mailer, sender.retry_base = flaky, 0.05
    club = await open_club(client_bus, events, "pole-a", ["Marie"])
    await schedule(client_bus, club, clock)
    await settle(events)
    assert flaky.refused == 3
    mails = meetup_mails(settings.mail_dir, "scheduled")
    assert sorted(to_address(m) for m in mails) == sorted(addresses("pole-a", "admin", "marie"))
    rows = outcomes(events.context["engine"], club.tenant.tenant_id)
    assert [r.outcome for r in rows] == ["sent", "sent"]
    assert sum(r.attempts for r in rows) == 2 + 3  # each sent once, after 3 refusals in all
    assert sender.purge(force=True) == 0  # sent just now: kept a while
