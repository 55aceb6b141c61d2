"""The pages meetups' e-mails link to, through the gateway over real HTTP, as a
mail client and a browser would use them: GET shows and changes nothing (mail
scanners open links), POST records, again changes nothing more; invalid,
tampered, other networks', revoked and expired tokens get a clear 4xx page;
the waitlist moves when a seat is given back by link; a reminder's one-click
unsubscribe (RFC 8058); the calendar feed, parsed back and renewed.

The meetups, members and hubs are set up over NATS (the meetups' GraphQL
module is another piece of work); what a mail's recipient does is HTTP.

The tests share one system per store (`shared_system`): each opens networks
of its own (`fresh` slugs) and looks only at its own members' mails."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from datetime import timedelta
from email.message import EmailMessage

import icalendar
import pytest
import pytest_asyncio

from gateway.pages import CSP
from services.events import contract as ec
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.host import ServiceHost
from tests.e2e.conftest import System
from tests.support.identity import as_member
from tests.support.meetups import (
    UNSUBSCRIBE,
    VENUE,
    Club,
    links_of,
    local,
    mails_settled,
    meetup_mails,
    open_club,
    start_events,
)
from tests.support.services import Services
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

_networks = itertools.count(1)


def fresh(slug: str) -> str:
    """A slug no other test's network has (the system is shared)."""
    return f"{slug}-{next(_networks)}"


@pytest_asyncio.fixture
async def service_hosts(services: Services) -> dict[str, ServiceHost]:
    """Every registered service, and meetups."""
    await services.start_all()
    await start_events(services)
    return dict(services.hosts)


@pytest.fixture
def events(system: System) -> ServiceHost:
    return system.hosts["events"]


async def events_count(system: System) -> int:
    return await system.event_count("events")


async def schedule(bus: Bus, club: Club, clock: MovableClock, **extra: object) -> ec.Meetup:
    values: dict[str, object] = {"local_start": local(clock.now(), 4), **extra}
    return await bus.request(
        ec.ScheduleMeetup(
            hub_id=club.hub.hub_id,
            title="Déjeuner du jeudi",
            venue=VENUE,
            **values,  # type: ignore[arg-type]
        ),
        as_member(club.admin),
    )


async def mail_to(system: System, events: ServiceHost, address: str, kind: str) -> EmailMessage:
    """The latest mail of that kind to that address, once every mail is out."""
    await eventually(lambda: mails_settled(events))
    found = [
        m
        for m in meetup_mails(system.settings.mail_dir, kind)
        if m["To"].addresses[0].addr_spec == address
    ]
    assert found, (address, kind)
    return found[-1]


def claims(token: str) -> dict[str, object]:
    """What a link's token says (a JWT: readable by anyone, signed by meetups)."""
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return decoded


def paths(message: EmailMessage) -> dict[str, str]:
    """The mail's answer links as paths of the gateway, by what they record."""
    return {str(claims(token)["a"]): f"/links/{slug}/{token}" for slug, token in links_of(message)}


def mail_about(system: System, address: str, kind: str, meetup_id: str) -> EmailMessage:
    (found,) = [
        m
        for m in meetup_mails(system.settings.mail_dir, kind)
        if m["To"].addresses[0].addr_spec == address
        and {claims(t)["tg"] for _, t in links_of(m)} == {meetup_id}
    ]
    return found


def assert_page(response, status: int, *texts: str, lang: str = "fr") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in response.headers
    body = response.text
    assert body.startswith(f'<!doctype html><html lang="{lang}">')
    assert "<script" not in body and "http" not in body.split("<main>")[0].replace(
        "http-equiv", ""
    )  # nothing fetched from elsewhere
    assert "Traceback" not in body
    # the one inline stylesheet is the one the policy allows, by its hash
    style = body.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CSP and "script-src" not in CSP
    assert "default-src 'none'" in CSP and "frame-ancestors 'none'" in CSP
    for text in texts:
        assert text in body, (text, body)


async def test_get_shows_and_changes_nothing_post_records_once(
    system: System, events: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    pole_a = fresh("pole-a")
    club = await open_club(client_bus, events, pole_a, ["Marie"])
    marie = club.members[0]
    meetup = await schedule(client_bus, club, clock)
    links = paths(await mail_to(system, events, f"marie@{pole_a}.example", "scheduled"))
    assert set(links) == {"yes", "maybe", "no"}

    before = await events_count(system)
    for _ in range(2):  # a mail scanner, then the member
        page = await system.client.get(links["yes"])
        assert_page(
            page,
            200,
            "Voltaire — Déjeuner du jeudi",
            "Où : Le Bistrot Voltaire, 12 boulevard Voltaire",
            "Vous n&#x27;avez pas encore répondu.",
            '<form method="post"><button type="submit">Oui, je viens</button></form>',
        )
    assert await events_count(system) == before
    seen = await client_bus.request(ec.GetMeetup(meetup_id=meetup.meetup_id), as_member(marie))
    assert seen.my_rsvp is None

    answered = await system.client.post(links["yes"])
    assert_page(answered, 200, "C&#x27;est noté : vous venez.", "Une place vous est réservée.")
    after = await events_count(system)
    assert after > before
    seen = await client_bus.request(ec.GetMeetup(meetup_id=meetup.meetup_id), as_member(marie))
    assert seen.my_rsvp is not None and (seen.my_rsvp.answer, seen.my_rsvp.seat) == (
        "yes",
        "seated",
    )
    again = await system.client.post(links["yes"])  # a second click
    assert_page(again, 200, "C&#x27;est noté : vous venez.")
    assert await events_count(system) == after
    assert "Votre réponse actuelle : oui." in (await system.client.get(links["maybe"])).text

    # changing one's mind with another link of the same mail
    assert_page(await system.client.post(links["maybe"]), 200, "C&#x27;est noté : peut-être.")
    seen = await client_bus.request(ec.GetMeetup(meetup_id=meetup.meetup_id), as_member(marie))
    assert seen.my_rsvp is not None and seen.my_rsvp.answer == "maybe" and seen.seated == 0


async def test_refused_tokens_get_a_clear_page_and_change_nothing(
    system: System, events: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    pole_a = fresh("pole-a")
    pole_b = fresh("pole-b")
    club = await open_club(client_bus, events, pole_a, ["Marie"])
    other = await open_club(client_bus, events, pole_b, ["Paul"])
    marie = club.members[0]
    meetup = await schedule(client_bus, club, clock)
    second = await schedule(client_bus, club, clock, local_start=local(clock.now(), 6))
    theirs = await schedule(client_bus, other, clock)
    await eventually(lambda: mails_settled(events))
    links = paths(mail_about(system, f"marie@{pole_a}.example", "scheduled", meetup.meetup_id))
    slug, token = links["yes"].split("/")[2:]
    before = await events_count(system)

    # not a token; a network that does not exist (no language known: both)
    for path in (f"/links/{pole_a}/garbage", f"/links/{pole_a}/" + token[:-3] + "abc"):
        assert_page(await system.client.get(path), 404, "Ce lien n&#x27;est pas valide.")
        assert_page(await system.client.post(path), 404, "Ce lien n&#x27;est pas valide.")
    nowhere = await system.client.get(f"/links/no-such-network/{token}")
    assert_page(nowhere, 404, "Ce lien n&#x27;est pas valide.", "This link is not valid.")

    # the token of a network opened at another network's address
    for method in ("GET", "POST"):
        refused = await system.client.request(method, f"/links/{other.tenant.slug}/{token}")
        assert_page(refused, 404, "Ce lien n&#x27;est pas valide.")

    # the token made to name another meetup (or another network's): the signature breaks
    header, _, signature = token.split(".")
    for target in (second.meetup_id, theirs.meetup_id):
        forged = dict(claims(token), tg=target)
        raw = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
        path = f"/links/{slug}/{header}.{raw}.{signature}"
        assert_page(await system.client.post(path), 404, "Ce lien n&#x27;est pas valide.")
    assert await events_count(system) == before

    # revoked: Marie revokes her links of the meetup; a newer mail would carry new ones
    await client_bus.request(
        ec.RevokeLinks(meetup_id=meetup.meetup_id, member_id=marie.member_id), as_member(marie)
    )
    revoked_at = await events_count(system)
    for method in ("GET", "POST"):
        page = await system.client.request(method, links["yes"])
        assert_page(page, 410, "Ce lien a été remplacé")
    assert await events_count(system) == revoked_at

    # expired: the links of the other meetup stop working once it has ended
    latest = paths(mail_about(system, f"marie@{pole_a}.example", "scheduled", second.meetup_id))
    assert (await system.client.get(latest["no"])).status_code == 200
    clock.advance(second.ends_at - clock.now() + timedelta(minutes=1))
    for method in ("GET", "POST"):
        assert_page(await system.client.request(method, latest["no"]), 410, "Ce lien a expiré.")
    assert await events_count(system) == revoked_at

    # a network in English gets its pages in English
    await client_bus.request(idc.SetTenantLocale(locale="en"), as_member(club.admin))
    english = await system.client.get(latest["no"])
    assert_page(english, 410, "This link has expired.", lang="en")


async def test_a_seat_given_back_by_link_goes_to_the_first_in_line(
    system: System, events: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    pole_a = fresh("pole-a")
    club = await open_club(client_bus, events, pole_a, ["Marie", "Karim"])
    marie, karim = club.members
    meetup = await schedule(client_bus, club, clock, capacity=1)
    marie_links = paths(await mail_to(system, events, f"marie@{pole_a}.example", "scheduled"))
    karim_links = paths(await mail_to(system, events, f"karim@{pole_a}.example", "scheduled"))

    assert_page(await system.client.post(marie_links["yes"]), 200, "Une place vous est réservée.")
    assert_page(
        await system.client.post(karim_links["yes"]), 200, "vous êtes sur la liste d&#x27;attente"
    )
    # Marie cannot come after all: by link, her seat goes to Karim, who is told by mail
    assert_page(await system.client.post(marie_links["no"]), 200, "vous ne venez pas.")
    seen = await client_bus.request(ec.GetMeetup(meetup_id=meetup.meetup_id), as_member(karim))
    assert seen.my_rsvp is not None and seen.my_rsvp.seat == "seated"
    assert (seen.seated, seen.waiting) == (1, 0)
    promoted = await mail_to(system, events, f"karim@{pole_a}.example", "promoted")
    give_back = paths(promoted)
    assert set(give_back) == {"no"}
    page = await system.client.get(give_back["no"])
    assert_page(page, 200, "Votre réponse actuelle : oui.", "Non, je ne viens pas")
    promotions = [
        m
        for m in meetup_mails(system.settings.mail_dir, "promoted")
        if m["To"].addresses[0].addr_spec in (f"marie@{pole_a}.example", f"karim@{pole_a}.example")
    ]
    assert len(promotions) == 1  # Karim's, once
    assert marie.member_id not in json.dumps(claims(give_back["no"].split("/")[3]))


async def test_votes_and_visitors_answer_by_link(
    system: System, events: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    pole_a = fresh("pole-a")
    club = await open_club(client_bus, events, pole_a, ["Marie"])
    marie = club.members[0]
    poll = await client_bus.request(
        ec.OpenDatePoll(
            hub_id=club.hub.hub_id,
            title="Afterwork de mars",
            slots=[local(clock.now(), 10, 19, 0), local(clock.now(), 11, 19, 0)],
            venue=VENUE,
        ),
        as_member(club.admin),
    )
    vote = await mail_to(system, events, f"marie@{pole_a}.example", "poll")
    first_slot_if_need_be = [f"/links/{slug}/{token}" for slug, token in links_of(vote)][
        1
    ]  # slot 1, "if need be"
    page = await system.client.get(first_slot_if_need_be)
    assert_page(page, 200, "Créneau : ", "Si besoin")
    assert_page(
        await system.client.post(first_slot_if_need_be), 200, "« si besoin » pour ce créneau"
    )
    seen = await client_bus.request(ec.GetDatePoll(poll_id=poll.poll_id), as_member(marie))
    assert seen.my_votes == {poll.slots[0].slot_id: "if_need_be"}

    meetup = await schedule(client_bus, club, clock)
    await client_bus.request(
        ec.InviteVisitor(
            meetup_id=meetup.meetup_id, name="Paul Visiteur", email="paul@visit.example"
        ),
        as_member(marie),
    )
    invited = paths(await mail_to(system, events, "paul@visit.example", "visitor"))
    assert set(invited) == {"yes", "no"}
    assert_page(await system.client.get(invited["yes"]), 200, "Oui, je viens")
    assert_page(
        await system.client.post(invited["yes"]), 200, "Merci, c&#x27;est noté : vous venez."
    )


async def test_one_click_unsubscribe_from_a_reminder(
    system: System, events: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    pole_a = fresh("pole-a")
    club = await open_club(client_bus, events, pole_a, ["Marie"])
    marie = club.members[0]
    meetup = await schedule(client_bus, club, clock)  # reminded 24 hours before
    # time passes once the announcement is out (one sent after the reminder's
    # time would be the reminder: none would follow)
    await mail_to(system, events, f"marie@{pole_a}.example", "scheduled")
    clock.advance(meetup.starts_at - clock.now() - timedelta(hours=23))
    marie_at = f"marie@{pole_a}.example"
    await eventually(  # the scheduler sends it once it sees the time
        lambda: [
            m
            for m in meetup_mails(system.settings.mail_dir, "reminder")
            if m["To"].addresses[0].addr_spec == marie_at
        ]
    )
    reminder = await mail_to(system, events, marie_at, "reminder")
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = UNSUBSCRIBE.search(str(reminder["List-Unsubscribe"]))
    assert match is not None
    path = f"/unsubscribe/{match.group(1)}/{match.group(2)}"

    before = await events_count(system)
    page = await system.client.get(path)
    assert_page(page, 200, "Ne plus recevoir de rappels", '<button type="submit">')
    assert await events_count(system) == before

    # what a mail provider sends (RFC 8058): a POST with this body, no cookie
    one_click = await system.client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_page(one_click, 200, "vous ne recevrez plus de rappels")
    off = await client_bus.request(ec.GetReminderSettings(), as_member(marie))
    assert off.reminders is False
    after = await events_count(system)
    assert after > before
    assert (await system.client.post(path)).status_code == 200  # again: nothing more
    assert await events_count(system) == after
    assert_page(await system.client.get(path), 200, "Vous ne recevez déjà plus de rappels.")
    for bad in (f"/unsubscribe/{pole_a}/garbage", "/unsubscribe/no-such-network/" + match.group(2)):
        assert_page(await system.client.post(bad), 404, "Ce lien n&#x27;est pas valide.")
    # an RSVP link is no unsubscribe link
    rsvp = paths(await mail_to(system, events, f"marie@{pole_a}.example", "scheduled"))["no"]
    as_unsubscribe = rsvp.replace("/links/", "/unsubscribe/")
    assert_page(await system.client.post(as_unsubscribe), 404, "Ce lien n&#x27;est pas valide.")
    assert await events_count(system) == after


async def test_the_calendar_feed_parses_back_and_is_renewed(
    system: System, events: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    pole_a = fresh("pole-a")
    club = await open_club(client_bus, events, pole_a, ["Marie"])
    marie = club.members[0]
    meetup = await schedule(client_bus, club, clock)
    feed = await client_bus.request(ec.GetCalendarFeed(scope="member"), as_member(marie))

    response = await system.client.get(f"/calendar/{feed.token}.ics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["referrer-policy"] == "no-referrer"
    cal = icalendar.Calendar.from_ical(response.content)
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["UID"]) == f"meetup-{meetup.meetup_id}@quartier"
    assert vevent.decoded("DTSTART").replace(tzinfo=None) == meetup.local_start
    assert str(vevent["SUMMARY"]) == "Déjeuner du jeudi — Voltaire"

    renewed = await client_bus.request(ec.RevokeCalendarFeed(scope="member"), as_member(marie))
    assert renewed.token != feed.token
    old = await system.client.get(f"/calendar/{feed.token}.ics")
    assert old.status_code == 404 and "Traceback" not in old.text
    assert (await system.client.get(f"/calendar/{renewed.token}.ics")).status_code == 200
    for bad in (f"/calendar/{renewed.token}", "/calendar/garbage.ics", "/calendar/.ics"):
        assert (await system.client.get(bad)).status_code == 404
