"""Meetups' mails, composed in the network's language (French or English):
pure functions from what a mail says to an `EmailMessage`; sending and
deciding who gets what are `notify.py`'s.

Kinds (the `X-Quartier-Kind` header is `meetup-<kind>`):

* `scheduled`: a new meetup, one link per answer (yes / maybe / no) and the
  .ics;
* `rescheduled`: the meetup changed (time, place, length): its updated .ics
  (SEQUENCE bumped) and the links again;
* `cancelled`: its .ics with STATUS:CANCELLED, and the reason;
* `promoted`: a seat freed up for a member on the waitlist: the .ics, and a
  link to give the seat back;
* `visitor`: a non-member is invited: yes / no links and the .ics;
* `poll`: a date poll: one link per slot and vote (yes / if need be / no);
* `reminder`: before the meetup (the series' lead times), with the links and
  a one-click unsubscribe (`List-Unsubscribe` and `List-Unsubscribe-Post`,
  RFC 8058), which turns reminders off.

Plain text (every client shows and follows the links; no remote content, no
tracking), with the .ics as an attachment (`text/calendar; method=PUBLISH`).
Links are personal: the text says so. Nothing here logs anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import icalendar

from services.events import contract as c
from services.runtime.i18n import format_local, format_time, locale_of

KINDS = ("scheduled", "rescheduled", "cancelled", "promoted", "visitor", "poll", "reminder")
ANSWER_ORDER = ("yes", "maybe", "no")
VOTE_ORDER = ("yes", "if_need_be", "no")
DASH = " \u2013 "  # an en dash between the start and the end of a time range


@dataclass(frozen=True)
class Network:
    name: str
    slug: str
    locale: str


@dataclass(frozen=True)
class Slot:
    """A date poll's slot: its local start and one link per vote."""

    local_start: datetime
    votes: list[tuple[str, str]]  # (vote, url), in VOTE_ORDER


@dataclass(frozen=True)
class Letter:
    """What one mail says, to one person."""

    kind: str
    network: Network
    sender: str
    to_address: str
    to_name: str
    hub_name: str
    message_id: str  # without angle brackets
    date: datetime
    title: str
    timezone: str
    duration_minutes: int
    venue: c.Venue
    local_start: datetime | None = None  # meetups (polls: per slot)
    topic: str | None = None  # workshops
    cancel_reason: str | None = None
    answers: list[tuple[str, str]] = field(default_factory=list)  # (answer, url)
    slots: list[Slot] = field(default_factory=list)
    current: str | None = None  # the recipient's answer so far
    lead_hours: int | None = None  # reminders
    ics: str | None = None
    unsubscribe_url: str | None = None


TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "hello": "Bonjour {name},",
        "hello_anonymous": "Bonjour,",
        "subject.scheduled": "{hub} : {title}, {when}",
        "subject.rescheduled": "Changement — {hub} : {title}, {when}",
        "subject.cancelled": "Annulé — {hub} : {title}, {when}",
        "subject.promoted": "Une place pour vous — {hub} : {title}, {when}",
        "subject.visitor": "Invitation — {hub} : {title}, {when}",
        "subject.poll": "Quelle date ? — {hub} : {title}",
        "subject.reminder": "Rappel — {hub} : {title}, {when}",
        "intro.scheduled": "Une rencontre du club {hub} est prévue. Serez-vous là ?",
        "intro.rescheduled": "La rencontre du club {hub} a changé : voici ce qui vaut désormais.",
        "intro.cancelled": "La rencontre du club {hub} est annulée.",
        "intro.promoted": "Une place s'est libérée : vous êtes inscrit·e à la rencontre du club {hub}.",
        "intro.visitor": "{network} vous invite à une rencontre de son club {hub}, pour faire connaissance.",
        "intro.poll": "Le club {hub} cherche une date. Dites pour chaque créneau s'il vous convient.",
        "intro.reminder.hours": "Rappel : la rencontre du club {hub} a lieu dans {hours} heures.",
        "intro.reminder.days": "Rappel : la rencontre du club {hub} a lieu dans {days} jours.",
        "what": "Quoi : {title}",
        "topic": "Sujet : {topic}",
        "when": "Quand : {when}{dash}{end} ({zone})",
        "where": "Où : {venue}",
        "reason": "Motif : {reason}",
        "length": "Durée : {minutes} minutes ({zone})",
        "answer_prompt": "Un clic suffit, sans connexion :",
        "answer_again": "Vous pouvez changer votre réponse, sans connexion :",
        "give_back": "Vous ne pouvez plus venir ? Libérez la place, sans connexion :",
        "poll_prompt": "Un clic par créneau, sans connexion :",
        "current": "Votre réponse : {answer}.",
        "no_answer": "Vous n'avez pas encore répondu.",
        "answer.yes": "Oui, je viens",
        "answer.maybe": "Peut-être",
        "answer.no": "Non, je ne viens pas",
        "visitor.yes": "Oui, je viens",
        "visitor.no": "Non, pas cette fois",
        "state.yes": "oui",
        "state.maybe": "peut-être",
        "state.no": "non",
        "vote.yes": "Oui",
        "vote.if_need_be": "Si besoin",
        "vote.no": "Non",
        "personal": "Ces liens sont personnels : ne transférez pas ce message.",
        "ics": "Le fichier joint (.ics) ajoute la rencontre à votre agenda, ou l'y met à jour.",
        "ics_cancelled": "Le fichier joint (.ics) la retire de votre agenda.",
        "unsubscribe": "Ne plus recevoir ces rappels : {url}",
        "signature": "— {network}, avec Quartier",
    },
    "en": {
        "hello": "Hello {name},",
        "hello_anonymous": "Hello,",
        "subject.scheduled": "{hub}: {title}, {when}",
        "subject.rescheduled": "Changed — {hub}: {title}, {when}",
        "subject.cancelled": "Cancelled — {hub}: {title}, {when}",
        "subject.promoted": "A seat for you — {hub}: {title}, {when}",
        "subject.visitor": "Invitation — {hub}: {title}, {when}",
        "subject.poll": "Which date? — {hub}: {title}",
        "subject.reminder": "Reminder — {hub}: {title}, {when}",
        "intro.scheduled": "A meetup of the {hub} club is scheduled. Will you come?",
        "intro.rescheduled": "The meetup of the {hub} club has changed: here is what holds now.",
        "intro.cancelled": "The meetup of the {hub} club is cancelled.",
        "intro.promoted": "A seat came free: you are now booked for the meetup of the {hub} club.",
        "intro.visitor": "{network} invites you to a meetup of its {hub} club, to get to know each other.",
        "intro.poll": "The {hub} club is looking for a date. Say for each slot whether it suits you.",
        "intro.reminder.hours": "Reminder: the meetup of the {hub} club is in {hours} hours.",
        "intro.reminder.days": "Reminder: the meetup of the {hub} club is in {days} days.",
        "what": "What: {title}",
        "topic": "Topic: {topic}",
        "when": "When: {when}{dash}{end} ({zone})",
        "where": "Where: {venue}",
        "reason": "Reason: {reason}",
        "length": "Length: {minutes} minutes ({zone})",
        "answer_prompt": "One click is enough, no sign-in needed:",
        "answer_again": "You can change your answer, no sign-in needed:",
        "give_back": "Can't come after all? Give the seat back, no sign-in needed:",
        "poll_prompt": "One click per slot, no sign-in needed:",
        "current": "Your answer: {answer}.",
        "no_answer": "You have not answered yet.",
        "answer.yes": "Yes, I'll come",
        "answer.maybe": "Maybe",
        "answer.no": "No, I won't come",
        "visitor.yes": "Yes, I'll come",
        "visitor.no": "No, not this time",
        "state.yes": "yes",
        "state.maybe": "maybe",
        "state.no": "no",
        "vote.yes": "Yes",
        "vote.if_need_be": "If need be",
        "vote.no": "No",
        "personal": "These links are personal: please do not forward this message.",
        "ics": "The attached file (.ics) adds the meetup to your calendar, or updates it there.",
        "ics_cancelled": "The attached file (.ics) removes it from your calendar.",
        "unsubscribe": "Stop these reminders: {url}",
        "signature": "— {network}, with Quartier",
    },
}


def _t(lang: str, key: str, **values: object) -> str:
    return TEXTS[lang][key].format(**values)


def _venue(v: c.Venue) -> str:
    return ", ".join(part for part in (v.name, v.address) if part)


def _link_lines(lang: str, prefix: str, links: list[tuple[str, str]]) -> list[str]:
    return [
        f"  {_t(lang, f'{prefix}.{answer}')} : {url}"
        if lang == "fr"
        else f"  {_t(lang, f'{prefix}.{answer}')}: {url}"
        for answer, url in links
    ]


def body(letter: Letter) -> str:
    """The text of the mail."""
    lang = locale_of(letter.network.locale)
    hub, kind = letter.hub_name, letter.kind
    lines = [
        _t(lang, "hello", name=letter.to_name) if letter.to_name else _t(lang, "hello_anonymous"),
        "",
    ]
    if kind == "reminder":
        hours = letter.lead_hours or 0
        if hours >= 48 and hours % 24 == 0:
            lines.append(_t(lang, "intro.reminder.days", hub=hub, days=hours // 24))
        else:
            lines.append(_t(lang, "intro.reminder.hours", hub=hub, hours=hours))
    else:
        lines.append(_t(lang, f"intro.{kind}", hub=hub, network=letter.network.name))
    lines += ["", _t(lang, "what", title=letter.title)]
    if letter.topic:
        lines.append(_t(lang, "topic", topic=letter.topic))
    if letter.local_start is not None:
        end = letter.local_start + timedelta(minutes=letter.duration_minutes)
        lines.append(
            _t(
                lang,
                "when",
                when=format_local(letter.local_start, lang),
                end=format_time(end.time(), lang),
                zone=letter.timezone,
                dash=DASH,
            )
        )
    else:
        lines.append(_t(lang, "length", minutes=letter.duration_minutes, zone=letter.timezone))
    if _venue(letter.venue):
        lines.append(_t(lang, "where", venue=_venue(letter.venue)))
    if kind == "cancelled" and letter.cancel_reason:
        lines.append(_t(lang, "reason", reason=letter.cancel_reason))
    lines.append("")
    if kind == "reminder":
        if letter.current in ANSWER_ORDER:
            answer = _t(lang, f"state.{letter.current}")
            lines += [_t(lang, "current", answer=answer)]
        else:
            lines += [_t(lang, "no_answer")]
    if letter.answers:
        if kind == "promoted":
            prompt = "give_back"
        elif kind in ("reminder", "rescheduled"):
            prompt = "answer_again"
        else:
            prompt = "answer_prompt"
        prefix = "visitor" if kind == "visitor" else "answer"
        lines += [_t(lang, prompt), *_link_lines(lang, prefix, letter.answers), ""]
    if letter.slots:
        lines += [_t(lang, "poll_prompt"), ""]
        for slot in letter.slots:
            end = slot.local_start + timedelta(minutes=letter.duration_minutes)
            lines.append(
                f"{format_local(slot.local_start, lang)}{DASH}{format_time(end.time(), lang)}"
            )
            lines += [*_link_lines(lang, "vote", slot.votes), ""]
    if letter.answers or letter.slots:
        lines.append(_t(lang, "personal"))
    if letter.ics:
        lines.append(_t(lang, "ics_cancelled" if kind == "cancelled" else "ics"))
    if letter.unsubscribe_url:
        lines += ["", _t(lang, "unsubscribe", url=letter.unsubscribe_url)]
    lines += ["", _t(lang, "signature", network=letter.network.name), ""]
    return "\n".join(lines)


def subject(letter: Letter) -> str:
    lang = locale_of(letter.network.locale)
    when = format_local(letter.local_start, lang) if letter.local_start is not None else ""
    return _t(lang, f"subject.{letter.kind}", hub=letter.hub_name, title=letter.title, when=when)


def with_method(ics: str, method: str = "PUBLISH") -> str:
    """The calendar with its iTIP METHOD (RFC 5546), which the attachment's
    Content-Type repeats."""
    cal = icalendar.Calendar.from_ical(ics)
    if "METHOD" not in cal:
        cal.add("method", method)
    text: bytes = cal.to_ical()
    return text.decode()


def compose(letter: Letter) -> EmailMessage:
    """The message of a letter: headers, text, and the .ics if any."""
    if letter.kind not in KINDS:
        raise ValueError(f"unknown mail kind {letter.kind!r}")
    lang = locale_of(letter.network.locale)
    message = EmailMessage()
    message["From"] = letter.sender
    message["To"] = Address(display_name=letter.to_name, addr_spec=letter.to_address)
    message["Subject"] = subject(letter)
    message["Date"] = format_datetime(letter.date)
    message["Message-ID"] = f"<{letter.message_id}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no automatic replies
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Quartier-Kind"] = f"meetup-{letter.kind}"
    if letter.unsubscribe_url:
        # RFC 8058: a POST to this URL with "List-Unsubscribe=One-Click" unsubscribes
        message["List-Unsubscribe"] = f"<{letter.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(body(letter))
    if letter.ics:
        message.add_attachment(
            with_method(letter.ics).encode(),  # bytes: its CRLF line ends kept (RFC 5545)
            maintype="text",
            subtype="calendar",
            filename="meetup.ics",
            params={"charset": "utf-8", "method": "PUBLISH"},
        )
    message["Content-Language"] = lang  # after set_content, which resets Content-* headers
    return message
