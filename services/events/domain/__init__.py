"""Meetups' domain: meetups and answers (meetup.py), series and their
rhythms (series.py, calendar.py), date polls (poll.py), mission cards
(cards.py), hub agenda settings (agenda.py), visitors and members' settings
(people.py), workshops (workshops.py), calendar feeds (feeds.py). Pure: no I/O;
time and other services' facts come in as arguments."""

from services.events.domain.agenda import HubAgenda, agenda_id
from services.events.domain.cards import DEFAULT_DECK, Card, deal
from services.events.domain.feeds import CalendarFeed
from services.events.domain.meetup import Meetup, Rsvp, rsvp_id
from services.events.domain.people import MemberSettings, Visitor
from services.events.domain.poll import DatePoll
from services.events.domain.series import MeetupSeries
from services.events.domain.values import Draw, Mark, Venue
from services.events.domain.workshops import WorkshopProposal

__all__ = [
    "DEFAULT_DECK",
    "CalendarFeed",
    "Card",
    "DatePoll",
    "Draw",
    "HubAgenda",
    "Mark",
    "Meetup",
    "MeetupSeries",
    "MemberSettings",
    "Rsvp",
    "Venue",
    "Visitor",
    "WorkshopProposal",
    "agenda_id",
    "deal",
    "rsvp_id",
]
