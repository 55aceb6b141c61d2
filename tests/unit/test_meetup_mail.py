"""Meetups' mails as composed (services/events/mail.py), without I/O: every
kind in French and English, their headers (RFC 8058 unsubscribe on
reminders only, RFC 3834 auto-submitted), the links, the .ics parsed back
with icalendar; and when a reminder is still worth sending."""

from __future__ import annotations

import email.parser
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from types import SimpleNamespace
from typing import Any

import icalendar
import pytest

from services.events import calendars, mail
from services.events import contract as c
from services.events.links import Link, link_key, sign, verify
from services.events.notify import mail_id, reminder_is_timely
from services.runtime.errors import InvalidToken

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
VENUE = c.Venue(name="Le Bistrot Voltaire", address="12 boulevard Voltaire")
PARSER = email.parser.BytesParser(policy=email.policy.default)
URL = "https://quartier.example/links/pole-11e/"


def a_meetup(**changes: Any) -> c.Meetup:
    values: dict[str, Any] = {
        "meetup_id": "7b0b5f43-6d55-4c1e-9d39-0f1d1c3c9a10",
        "hub_id": "hub-1",
        "series_id": None,
        "kind": "meetup",
        "title": "Déjeuner du jeudi",
        "topic": None,
        "host_id": None,
        "local_start": datetime(2026, 1, 8, 12, 30),
        "timezone": "Europe/Paris",
        "starts_at": datetime(2026, 1, 8, 11, 30, tzinfo=UTC),
        "ends_at": datetime(2026, 1, 8, 13, 30, tzinfo=UTC),
        "duration_minutes": 120,
        "venue": VENUE,
        "capacity": None,
        "state": "scheduled",
        "cancel_reason": None,
        "rsvp_deadline": datetime(2026, 1, 8, 9, 30, tzinfo=UTC),
        "seated": 0,
        "waiting": 0,
        "maybe": 0,
        "declined": 0,
        "previous_meetup_id": None,
        "next_meetup_id": None,
        "sequence": 0,
    }
    values.update(changes)
    return c.Meetup(**values)


def letter(
    kind: str, locale: str = "fr", meetup: c.Meetup | None = None, **extra: Any
) -> mail.Letter:
    m = meetup or a_meetup()
    values: dict[str, Any] = {
        "kind": kind,
        "network": mail.Network("Pôle Paris 11e", "pole-11e", locale),
        "sender": "Quartier <no-reply@quartier.example>",
        "to_address": "marie.dupont@example.org",
        "to_name": "Marie Dupont",
        "hub_name": "Cercle Voltaire",
        "message_id": f"{mail_id('events:12', 'member-1')}@quartier.example",
        "date": NOW,
        "title": m.title,
        "timezone": m.timezone,
        "duration_minutes": m.duration_minutes,
        "venue": m.venue,
        "local_start": m.local_start,
        "ics": calendars.calendar([m], "Cercle Voltaire", NOW, {m.hub_id: "Cercle Voltaire"}),
    }
    if kind in ("scheduled", "rescheduled", "reminder"):
        values["answers"] = [(a, f"{URL}{a}-token") for a in mail.ANSWER_ORDER]
    values.update(extra)
    return mail.Letter(**values)


def sent(message: EmailMessage) -> EmailMessage:
    """The message as a recipient's client reads it back from the wire."""
    parsed = PARSER.parsebytes(bytes(message))
    assert isinstance(parsed, EmailMessage)
    return parsed


def text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def calendar_of(message: EmailMessage) -> tuple[EmailMessage, icalendar.Calendar]:
    (part,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert isinstance(part, EmailMessage)
    return part, icalendar.Calendar.from_ical(part.get_payload(decode=True))


def test_an_announcement_in_french() -> None:
    m = sent(mail.compose(letter("scheduled")))
    assert m["Subject"] == "Cercle Voltaire : Déjeuner du jeudi, jeudi 8 janvier 2026 à 12 h 30"
    assert m["To"] == "Marie Dupont <marie.dupont@example.org>"
    assert m["From"] == "Quartier <no-reply@quartier.example>"
    assert m["Message-ID"] == f"<{mail_id('events:12', 'member-1')}@quartier.example>"
    assert m["Date"] == "Mon, 05 Jan 2026 09:00:00 +0000"
    assert m["Content-Language"] == "fr"
    assert m["Auto-Submitted"] == "auto-generated"
    assert m["X-Quartier-Kind"] == "meetup-scheduled"
    assert "List-Unsubscribe" not in m and "List-Unsubscribe-Post" not in m
    body = text(m)
    assert body.startswith(
        "Bonjour Marie Dupont,\n\nUne rencontre du club Cercle Voltaire est prévue."
    )
    assert "Quand : jeudi 8 janvier 2026 à 12 h 30 \u2013 14 h 30 (Europe/Paris)" in body
    assert "Où : Le Bistrot Voltaire, 12 boulevard Voltaire" in body
    assert f"  Oui, je viens : {URL}yes-token\n" in body
    assert f"  Peut-être : {URL}maybe-token\n" in body
    assert f"  Non, je ne viens pas : {URL}no-token\n" in body
    assert "Ces liens sont personnels" in body
    assert body.rstrip().endswith("— Pôle Paris 11e, avec Quartier")


def test_an_announcement_in_english() -> None:
    m = sent(mail.compose(letter("scheduled", "en")))
    assert m["Subject"] == "Cercle Voltaire: Déjeuner du jeudi, Thursday 8 January 2026 at 12:30"
    assert m["Content-Language"] == "en"
    body = text(m)
    assert body.startswith(
        "Hello Marie Dupont,\n\nA meetup of the Cercle Voltaire club is scheduled."
    )
    assert "When: Thursday 8 January 2026 at 12:30 \u2013 14:30 (Europe/Paris)" in body
    assert f"  Yes, I'll come: {URL}yes-token\n" in body
    assert f"  No, I won't come: {URL}no-token\n" in body
    assert "please do not forward this message" in body


def test_the_ics_attachment_parses_back_and_keeps_its_line_ends() -> None:
    m = sent(mail.compose(letter("scheduled")))
    part, cal = calendar_of(m)
    assert part.get_content_type() == "text/calendar"
    assert part.get_param("method") == "PUBLISH" and part.get_filename() == "meetup.ics"
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes) and b"\r\nBEGIN:VEVENT\r\n" in raw  # RFC 5545: CRLF
    assert str(cal["METHOD"]) == "PUBLISH"
    (event,) = cal.walk("VEVENT")
    assert str(event["UID"]) == "meetup-7b0b5f43-6d55-4c1e-9d39-0f1d1c3c9a10@quartier"
    start = event.decoded("DTSTART")
    assert (start.replace(tzinfo=None), str(start.tzinfo)) == (
        datetime(2026, 1, 8, 12, 30),
        "Europe/Paris",
    )
    assert event.decoded("DTEND") - start == timedelta(hours=2)
    assert (event["SEQUENCE"], str(event["STATUS"])) == (0, "CONFIRMED")
    assert str(event["LOCATION"]) == "Le Bistrot Voltaire, 12 boulevard Voltaire"
    assert cal.walk("VTIMEZONE")  # the zone travels with it


def test_a_cancellation_carries_the_cancelled_ics_and_no_links() -> None:
    cancelled = a_meetup(state="cancelled", sequence=2, cancel_reason="Le restaurant est fermé")
    m = sent(
        mail.compose(letter("cancelled", meetup=cancelled, cancel_reason=cancelled.cancel_reason))
    )
    assert m["Subject"].startswith("Annulé — Cercle Voltaire : Déjeuner du jeudi")
    body = text(m)
    assert "Motif : Le restaurant est fermé" in body and URL not in body
    assert "la retire de votre agenda" in body
    (event,) = calendar_of(m)[1].walk("VEVENT")
    assert (str(event["STATUS"]), event["SEQUENCE"]) == ("CANCELLED", 2)
    en = text(sent(mail.compose(letter("cancelled", "en", cancelled, cancel_reason="Closed"))))
    assert "The meetup of the Cercle Voltaire club is cancelled." in en and "Reason: Closed" in en


def test_a_change_carries_the_bumped_sequence() -> None:
    moved = a_meetup(local_start=datetime(2026, 1, 9, 19, 0), sequence=1)
    m = sent(mail.compose(letter("rescheduled", meetup=moved)))
    assert m["Subject"].startswith("Changement — Cercle Voltaire : Déjeuner du jeudi, vendredi 9")
    assert "Vous pouvez changer votre réponse" in text(m)
    (event,) = calendar_of(m)[1].walk("VEVENT")
    assert event["SEQUENCE"] == 1
    assert event.decoded("DTSTART").replace(tzinfo=None) == datetime(2026, 1, 9, 19, 0)


def test_a_reminder_has_a_one_click_unsubscribe() -> None:
    unsubscribe = "https://quartier.example/unsubscribe/pole-11e/tok"
    for locale, says in (("fr", "a lieu dans 2 jours"), ("en", "is in 2 days")):
        m = sent(
            mail.compose(
                letter(
                    "reminder", locale, lead_hours=48, current="yes", unsubscribe_url=unsubscribe
                )
            )
        )
        assert m["List-Unsubscribe"] == f"<{unsubscribe}>"
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert says in text(m) and unsubscribe in text(m)
    fr = text(sent(mail.compose(letter("reminder", lead_hours=2, current=None))))
    assert "a lieu dans 2 heures" in fr and "Vous n'avez pas encore répondu." in fr
    en = text(sent(mail.compose(letter("reminder", "en", lead_hours=30, current="maybe"))))
    assert "is in 30 hours" in en and "Your answer: maybe." in en


def test_promotions_visitors_and_workshops() -> None:
    promoted = text(
        sent(mail.compose(letter("promoted", answers=[("no", f"{URL}no-token")], current="yes")))
    )
    assert "vous êtes inscrit·e" in promoted
    assert f"Libérez la place, sans connexion :\n  Non, je ne viens pas : {URL}no-token" in promoted
    visitor = letter(
        "visitor",
        "en",
        to_name="Paul Visiteur",
        to_address="paul@visit.example",
        answers=[("yes", f"{URL}y"), ("no", f"{URL}n")],
    )
    m = sent(mail.compose(visitor))
    assert m["To"] == "Paul Visiteur <paul@visit.example>"
    body = text(m)
    assert "Pôle Paris 11e invites you to a meetup of its Cercle Voltaire club" in body
    assert f"  Yes, I'll come: {URL}y\n  No, not this time: {URL}n" in body
    workshop = a_meetup(kind="workshop", topic="Facturer sans stress")
    body = text(sent(mail.compose(letter("scheduled", meetup=workshop, topic=workshop.topic))))
    assert "Sujet : Facturer sans stress" in body


def test_a_date_poll_has_one_link_per_slot_and_vote() -> None:
    slots = [
        mail.Slot(datetime(2026, 3, day, 19, 0), [(v, f"{URL}{day}-{v}") for v in mail.VOTE_ORDER])
        for day in (12, 19)
    ]
    m = sent(mail.compose(letter("poll", local_start=None, ics=None, slots=slots)))
    assert m["Subject"] == "Quelle date ? — Cercle Voltaire : Déjeuner du jeudi"
    assert not list(m.iter_attachments())
    body = text(m)
    assert "jeudi 12 mars 2026 à 19 h 00 \u2013 21 h 00\n" in body
    assert f"  Oui : {URL}12-yes\n  Si besoin : {URL}12-if_need_be\n  Non : {URL}12-no\n" in body
    assert f"{URL}19-no" in body
    en = text(sent(mail.compose(letter("poll", "en", local_start=None, ics=None, slots=slots))))
    assert f"  If need be: {URL}19-if_need_be" in en


def test_names_that_need_quoting_and_unknown_kinds() -> None:
    m = sent(mail.compose(letter("scheduled", to_name='Dupont, Marie "Mimi"')))
    (address,) = m["To"].addresses
    assert (address.display_name, address.addr_spec) == (
        'Dupont, Marie "Mimi"',
        "marie.dupont@example.org",
    )
    with pytest.raises(ValueError, match="unknown mail kind"):
        mail.compose(letter("birthday"))


def test_signed_links_name_their_network_target_holder_and_answer() -> None:
    key = link_key("x" * 40)
    link = Link(
        "rsvp", "tenant-1", "meetup-1", "member-1", "maybe", None, 3, NOW + timedelta(days=1)
    )
    assert verify(key, sign(key, link), NOW) == link  # expires_at: the same instant
    with pytest.raises(InvalidToken, match="expired"):
        verify(key, sign(key, link), NOW + timedelta(days=2))
    with pytest.raises(InvalidToken, match="not valid"):
        verify(link_key("y" * 40), sign(key, link), NOW)


def row(starts_at: datetime, leads: list[int], state: str = "scheduled") -> Any:
    return SimpleNamespace(starts_at=starts_at, reminder_hours=leads, state=state)


def test_a_reminder_is_mailed_only_while_it_is_the_timely_one() -> None:
    start = NOW + timedelta(days=3)
    meetup = row(start, [48, 2])
    early = NOW - timedelta(days=2)  # announced long before
    at_48 = start - timedelta(hours=47)
    assert reminder_is_timely(meetup, 48, early, at_48)
    # the service (or the clock) was late: the 2-hour one is due too, it alone is sent
    assert not reminder_is_timely(meetup, 48, early, start - timedelta(hours=1))
    assert reminder_is_timely(meetup, 2, early, start - timedelta(hours=1))
    # announced after the 48-hour mark: the announcement was that reminder
    assert not reminder_is_timely(meetup, 48, start - timedelta(hours=30), at_48)
    assert reminder_is_timely(meetup, 48, None, at_48)
    # nothing for a meetup cancelled, or begun
    assert not reminder_is_timely(row(start, [48, 2], "cancelled"), 48, early, at_48)
    assert not reminder_is_timely(meetup, 2, early, start)


def test_a_recorded_reminder_is_published_once_per_lead_time() -> None:
    from services.events.domain import Meetup, Venue
    from services.events.publication import to_public

    meetup = Meetup.new(
        "tenant-1",
        "hub-1",
        datetime(2026, 1, 8, 12, 30),
        "Europe/Paris",
        title="Déjeuner",
        venue=Venue("Le Bistrot", ""),
        now=NOW,
        reminder_hours=[48, 2],
    )
    meetup.reminder_sent(48)
    meetup.reminder_sent(48)  # recorded once
    public = [to_public(e) for e in meetup.collect_events()]
    reminders = [p for p in public if isinstance(p, c.ReminderSent)]
    assert reminders == [
        c.ReminderSent(
            tenant_id="tenant-1", hub_id="hub-1", meetup_id=str(meetup.id), lead_hours=48
        )
    ]
    assert reminders[0].type_name() == "quartier.events.ReminderSent.v1"
