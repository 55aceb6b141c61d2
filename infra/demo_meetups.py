"""The demo network's meetups (issue #7, "Demo"), loaded after its members and
hubs (infra/demo.py) through the meetups service's own commands:

* the Cercle Voltaire's weekly Thursday lunch (a series, capacity 8, answers
  until two hours before): five past lunches, one a week, each with its
  answers, its attendance (present, late, absent, excused, a substitute, one
  member checking in by themself, a visitor), closed with the next date fixed,
  and mission cards drawn (most of them done); the next lunch open, full, with
  a waitlist, a maybe and a no;
* a workshop proposed by Sophie and scheduled after the next lunch;
* the Club des artisans' monthly afterwork (a series) with an open date poll
  for the next one, and votes.

The past needs time: the services run on a movable clock outside production
(services/runtime/clock.py, `quartier clock`). The history is written by moving
their clock back to five weeks and a few days ago, then forward to each step
of each lunch (the day before: answers; ten minutes in: attendance; at its
end: the close, the cards, the visitor's invitation), and finally back to the
offset it had (infra/clock.py), even when a step fails. Every date derives from
the series' first day once it exists, and every step looks before it acts, so
a second load adds nothing, and a load interrupted half-way resumes where it
stopped. In production (no movable clock) the history is skipped with a log
line; what needs no past (the poll, the workshop) is loaded anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog

from infra import clock
from services.events import contract as ec
from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.errors import Forbidden, NotFound
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext

log = structlog.get_logger("demo")

T = TypeVar("T")

PARIS = ZoneInfo("Europe/Paris")
KNOWN_TIMEOUT = 30.0  # seconds for the meetups service to learn the demo's hubs and members

LUNCH = "Déjeuner du jeudi"
LUNCH_RULE = "FREQ=WEEKLY;BYDAY=TH"
LUNCH_TIME = time(12, 30)
LUNCH_MINUTES = 90
LUNCH_CAPACITY = 8
LUNCH_DEADLINE_HOURS = 2  # answers until 10:30 the same day
LUNCH_REMINDER_HOURS = 24
LUNCH_VENUE = ec.Venue(name="Le Bistrot Voltaire", address="12 boulevard Voltaire, 75011 Paris")
THURSDAY = 3  # date.weekday()

# Who came to each past lunch, oldest first ("absent" without an answer
# beforehand; "excused" said no; "replaced" sent the substitute named after
# the colon). Claire (the network's admin) takes the attendance; Julien checks
# himself in. The core: Claire, Sophie, Julien, Inès, Karim (3 lunches or
# more); Émilie never came (drifting), Marc came once, five weeks ago.
ATTENDANCE: tuple[Mapping[str, str], ...] = (
    {
        "claire": "present",
        "sophie": "present",
        "julien": "present",
        "karim": "present",
        "nadia": "present",
        "marc": "present",
        "thomas": "absent",
        "ines": "excused",
    },
    {
        "claire": "present",
        "sophie": "present",
        "julien": "present",
        "karim": "present",
        "ines": "present",
        "lucas": "present",
        "nadia": "excused",
    },
    {
        "claire": "present",
        "sophie": "present",
        "julien": "present",
        "ines": "present",
        "amelie": "present",
        "thomas": "replaced:Paul Durand",
        "karim": "excused",
    },
    {
        "claire": "present",
        "sophie": "present",
        "julien": "present",
        "ines": "present",
        "karim": "present",
        "nadia": "present",
        "lucas": "late",
    },
    {
        "claire": "present",
        "sophie": "present",
        "julien": "present",
        "ines": "present",
        "karim": "present",
        "amelie": "present",
        "thomas": "late",
        "lucas": "absent",
    },
)
SELF_CHECK_IN = "julien"
ORGANISER = "claire"  # the network's admin: an admin of every hub
# A visitor invited by Julien to the fourth lunch (kept by the meetups
# service only; the stream carries an opaque id), who came.
VISITOR = (3, "julien", "Camille Roussel", "camille.roussel@example.com")

# The next lunch: eight seats taken, one in line, a maybe, a no (in this order).
NEXT_ANSWERS: tuple[tuple[str, ec.Answer], ...] = (
    ("claire", "yes"),
    ("sophie", "yes"),
    ("julien", "yes"),
    ("ines", "yes"),
    ("karim", "yes"),
    ("nadia", "yes"),
    ("amelie", "yes"),
    ("thomas", "yes"),
    ("lucas", "yes"),  # the waitlist
    ("marc", "maybe"),
    ("emilie", "no"),
)

WORKSHOP = (
    "sophie",
    "Bien démarrer en micro-entreprise",
    "Statut, déclarations, TVA et premières factures : une heure de questions-réponses.",
)
WORKSHOP_VENUE = ec.Venue(name="Cabinet Laurent", address="40 avenue Parmentier, 75011 Paris")

AFTERWORK = "Afterwork des artisans"
AFTERWORK_RULE = "FREQ=MONTHLY;BYDAY=1TU"
AFTERWORK_TIME = time(19, 0)
AFTERWORK_VENUE = ec.Venue(name="Le Comptoir Charonne", address="75 rue de Charonne, 75011 Paris")
POLL_TITLE = "Afterwork des artisans : quelle date ?"
POLL_VOTES: Mapping[str, tuple[ec.Vote, ...]] = {  # a vote per slot, in order
    "karim": ("yes", "if_need_be", "no"),
    "thomas": ("yes", "yes", "no"),
    "hugo": ("if_need_be", "yes", "yes"),
}


@dataclass(frozen=True)
class Lunches:
    """The lunches' local starts (naive, Paris): the past ones oldest first, and the next."""

    past: tuple[datetime, ...]
    next: datetime


def utc(local: datetime) -> datetime:
    """A naive Paris local time as an aware UTC instant (the earlier offset
    in the autumn overlap, as the meetups service does)."""
    return local.replace(tzinfo=PARIS).astimezone(UTC)


def lunches_from(first: date, now: datetime) -> Lunches:
    """The past lunches, weekly from the series' first day, as many as
    ATTENDANCE; and the next one: a week after the last, or two when that one
    is due for its reminder already (within a day: its answers, its reminder
    and the demo's second load would race)."""
    past = tuple(
        datetime.combine(first + timedelta(weeks=i), LUNCH_TIME) for i in range(len(ATTENDANCE))
    )
    following = past[-1] + timedelta(weeks=1)
    if utc(following) - timedelta(hours=LUNCH_REMINDER_HOURS + 1) <= now:
        following += timedelta(weeks=1)
    return Lunches(past, following)


def first_lunch_day(now: datetime) -> date:
    """The first lunch's day for a history written at `now` (UTC): the last
    lunch a week ago or so, over before `now` (with a margin for writing it)."""
    local = now.astimezone(PARIS).replace(tzinfo=None)
    day = local.date() - timedelta(days=(local.weekday() - THURSDAY) % 7)
    while datetime.combine(day, LUNCH_TIME) + timedelta(minutes=LUNCH_MINUTES + 30) > local:
        day -= timedelta(weeks=1)
    return day - timedelta(weeks=len(ATTENDANCE) - 1)


async def until_known(call: Callable[[], Awaitable[T]], timeout: float = KNOWN_TIMEOUT) -> T:
    """Run `call`, again while the meetups service does not know the hub or
    the member yet (it learns them from hubs' events: `NotFound` "hub not
    found", `Forbidden`), until `timeout` seconds. A refused command changes
    nothing, so trying again is safe."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await call()
        except (Forbidden, NotFound) as e:
            if loop.time() > deadline:
                raise
            log.debug("demo.waiting_for_meetups", reason=e.message)
            await asyncio.sleep(0.2)


async def restore_clock(bus: Bus, settings: Settings, offset_seconds: float) -> None:
    """Put the services' clock back to the offset the demo found. If it
    cannot (a service down meanwhile), say so loudly: the clock stays where
    the demo left it until `quartier clock` moves it."""
    try:
        back = await clock.set_offset(bus, settings, timedelta(seconds=offset_seconds))
    except clock.ClockError as e:
        log.error(
            "demo.clock_not_restored",
            wanted_offset_seconds=offset_seconds,
            error=str(e),
            fix="quartier clock (tells the offset), then quartier clock <the difference>",
        )
        return
    log.info("demo.clock_restored", offset_seconds=back.offset_seconds)


class MeetupsDemo:
    def __init__(
        self,
        bus: Bus,
        settings: Settings,
        sessions: Mapping[str, idc.Session],
        hubs: Mapping[str, hc.Hub],
    ):
        from infra.demo import ARTISANS, VOLTAIRE, as_member

        self.bus = bus
        self.settings = settings
        self.sessions = sessions
        self.as_member = as_member
        self.voltaire = hubs[VOLTAIRE]
        self.artisans = hubs[ARTISANS]
        self.admin = as_member(sessions[ORGANISER])
        self.by_member_id = {s.member_id: key for key, s in sessions.items()}

    def ctx(self, key: str) -> RequestContext:
        return self.as_member(self.sessions[key])

    async def ask(self, request: Any, ctx: RequestContext | None = None) -> Any:
        return await self.bus.request(request, ctx or self.admin)

    # -- what is there -------------------------------------------------------------

    async def series(self, hub: hc.Hub, name: str) -> ec.Series | None:
        found = await until_known(lambda: self.ask(ec.ListSeries(hub_id=hub.hub_id)))
        return next((s for s in found if s.name == name), None)

    async def meetups_of(self, hub: hc.Hub) -> dict[datetime, ec.Meetup]:
        """Every meetup of the hub (past and upcoming) by local start."""
        found: dict[datetime, ec.Meetup] = {}
        for when in ("past", "upcoming"):
            offset = 0
            while True:
                page = await self.ask(
                    ec.ListMeetups(hub_id=hub.hub_id, when=when, offset=offset, limit=50)
                )
                found.update({m.local_start: m for m in page.items})
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    break
        return found

    # -- the whole of it -----------------------------------------------------------

    async def load(self) -> list[tuple[str, datetime]]:
        """Returns the past lunches (id, start in UTC), oldest first."""
        lunch = await self.series(self.voltaire, LUNCH)
        done = False
        if lunch is not None:
            lunches = lunches_from(lunch.starts_on, datetime.now(UTC))
            last = (await self.meetups_of(self.voltaire)).get(lunches.past[-1])
            done = last is not None and last.state == "closed"
        if not done:
            await self.history(lunch)
        await self.next_lunch()
        await self.workshop()
        await self.afterwork()
        lunch = await self.series(self.voltaire, LUNCH)
        if lunch is None:
            return []
        closed = [
            m
            for m in (await self.meetups_of(self.voltaire)).values()
            if m.series_id == lunch.series_id and m.state == "closed"
        ]
        return [(m.meetup_id, m.starts_at) for m in sorted(closed, key=lambda m: m.starts_at)]

    async def history(self, lunch: ec.Series | None) -> None:
        """Move the clock back, write what is missing of the past lunches, and
        put the clock back where it was."""
        if self.settings.is_prod:
            log.warning("demo.meetups_history_skipped", reason="production: no movable clock")
            return
        try:
            start = await clock.move_clock(self.bus, self.settings, 0.0)
        except clock.ClockError as e:
            log.warning("demo.meetups_history_skipped", reason=str(e))
            return
        log.info("demo.meetups_history", offset_seconds=start.offset_seconds)
        try:
            await self._history(lunch, start.now)
        finally:
            await restore_clock(self.bus, self.settings, start.offset_seconds)

    async def at(self, local: datetime) -> None:
        await clock.move_to(self.bus, self.settings, utc(local))

    async def _history(self, lunch: ec.Series | None, now: datetime) -> None:
        first = lunch.starts_on if lunch else first_lunch_day(now)
        lunches = lunches_from(first, now)
        if lunch is None:
            await self.at(lunches.past[0] - timedelta(days=6))
            lunch = await until_known(
                lambda: self.ask(
                    ec.CreateSeries(
                        hub_id=self.voltaire.hub_id,
                        name=LUNCH,
                        rrule=LUNCH_RULE,
                        starts_on=first,
                        start_time=LUNCH_TIME,
                        venue=LUNCH_VENUE,
                        duration_minutes=LUNCH_MINUTES,
                        capacity=LUNCH_CAPACITY,
                        rsvp_deadline_hours=LUNCH_DEADLINE_HOURS,
                        reminder_hours=[LUNCH_REMINDER_HOURS],
                    )
                )
            )
        assert lunch is not None
        series_id = lunch.series_id
        visitor_id: str | None = None
        for i, start in enumerate(lunches.past):
            meetups = await self.meetups_of(self.voltaire)
            meetup = meetups.get(start)
            if meetup is not None and meetup.state == "closed":
                continue
            if meetup is None:
                if i:  # the close of the one before schedules it: a gap in the history
                    raise RuntimeError(f"the demo's lunch of {start} is missing")
                await self.at(start - timedelta(days=6))
                meetup = await self.ask(
                    ec.ScheduleMeetup(
                        hub_id=self.voltaire.hub_id, local_start=start, series_id=series_id
                    )
                )
            following = lunches.past[i + 1] if i + 1 < len(lunches.past) else lunches.next
            visitor_id = await self._lunch(i, meetup, following, visitor_id)

    async def _lunch(
        self, index: int, meetup: ec.Meetup, following: datetime, visitor_id: str | None
    ) -> str | None:
        """One past lunch, from the answers the day before to its close."""
        start = meetup.local_start
        marks = ATTENDANCE[index]
        if meetup.state == "scheduled":
            await self.at(start - timedelta(days=1))
            rsvps = {r.member_id for r in await self.ask(ec.ListRsvps(meetup_id=meetup.meetup_id))}
            for key, mark in marks.items():
                if self.sessions[key].member_id in rsvps or mark == "absent":
                    continue
                answer: ec.Answer = "yes" if mark in ("present", "late") else "no"
                await until_known(
                    partial(
                        self.ask,
                        ec.GiveRsvp(meetup_id=meetup.meetup_id, answer=answer),
                        self.ctx(key),
                    )
                )
            await self.at(start + timedelta(minutes=10))
            if SELF_CHECK_IN in marks:
                await self.ask(ec.CheckIn(meetup_id=meetup.meetup_id), self.ctx(SELF_CHECK_IN))
            entries = []
            for key, mark in marks.items():
                if key == SELF_CHECK_IN:
                    continue
                status, _, substitute = mark.partition(":")
                entries.append(
                    ec.AttendanceRecordInput(
                        status=status,  # type: ignore[arg-type]
                        member_id=self.sessions[key].member_id,
                        substitute=substitute or None,
                    )
                )
            if index == VISITOR[0] and visitor_id is not None:
                entries.append(ec.AttendanceRecordInput(status="present", visitor_id=visitor_id))
            await self.ask(ec.RecordAttendance(meetup_id=meetup.meetup_id, entries=entries))
        await self.at(start + timedelta(minutes=LUNCH_MINUTES))
        closed = await self.ask(
            ec.CloseMeetup(meetup_id=meetup.meetup_id, next_local_start=following)
        )
        # the cards drawn are done, but for the last lunch's (open until the next)
        if index < len(ATTENDANCE) - 1:
            for draw in closed.draws:
                holder = self.by_member_id.get(draw.member_id)
                if holder is not None and draw.done_at is None:
                    await self.ask(ec.CompleteCard(draw_id=draw.draw_id), self.ctx(holder))
        if index + 1 == VISITOR[0]:
            _, host, name, email = VISITOR
            invited = await self.ask(
                ec.InviteVisitor(meetup_id=closed.next.meetup_id, name=name, email=email),
                self.ctx(host),
            )
            return str(invited.visitor_id)
        return visitor_id

    # -- now -----------------------------------------------------------------------

    async def next_lunch(self) -> None:
        """The answers to the next lunch: eight seats, one in line, a maybe, a no."""
        upcoming = await self.ask(
            ec.ListMeetups(hub_id=self.voltaire.hub_id, when="upcoming", limit=1)
        )
        if not upcoming.items:
            log.warning("demo.no_next_lunch")
            return
        meetup = upcoming.items[0]
        answered = {r.member_id for r in await self.ask(ec.ListRsvps(meetup_id=meetup.meetup_id))}
        for key, answer in NEXT_ANSWERS:
            if self.sessions[key].member_id not in answered:
                await until_known(
                    partial(
                        self.ask,
                        ec.GiveRsvp(meetup_id=meetup.meetup_id, answer=answer),
                        self.ctx(key),
                    )
                )

    async def workshop(self) -> None:
        """Sophie's workshop, proposed and scheduled on the Tuesday after next at 18:30."""
        host, topic, description = WORKSHOP
        proposals = await until_known(
            lambda: self.ask(ec.ListWorkshopProposals(hub_id=self.voltaire.hub_id))
        )
        proposal: ec.WorkshopProposal | None = next(
            (p for p in proposals if p.topic == topic), None
        )
        if proposal is None:
            proposal = await until_known(
                partial(
                    self.ask,
                    ec.ProposeWorkshop(
                        hub_id=self.voltaire.hub_id, topic=topic, description=description
                    ),
                    self.ctx(host),
                )
            )
        assert proposal is not None
        if proposal.meetup_id is None:
            today = datetime.now(UTC).astimezone(PARIS).date()
            day = today + timedelta(days=7 + (1 - today.weekday()) % 7)  # a Tuesday
            await self.ask(
                ec.ScheduleWorkshop(
                    proposal_id=proposal.proposal_id,
                    local_start=datetime.combine(day, time(18, 30)),
                    venue=WORKSHOP_VENUE,
                    duration_minutes=60,
                    capacity=15,
                )
            )

    async def afterwork(self) -> None:
        """The artisans' monthly afterwork, and an open date poll for the next
        one (three evenings in the coming weeks) with the members' votes."""
        series = await self.series(self.artisans, AFTERWORK)
        if series is None:
            today = datetime.now(UTC).astimezone(PARIS).date()
            series = await self.ask(
                ec.CreateSeries(
                    hub_id=self.artisans.hub_id,
                    name=AFTERWORK,
                    rrule=AFTERWORK_RULE,
                    starts_on=today,
                    start_time=AFTERWORK_TIME,
                    venue=AFTERWORK_VENUE,
                    duration_minutes=150,
                )
            )
        assert series is not None
        polls = await self.ask(ec.ListDatePolls(hub_id=self.artisans.hub_id))
        poll = next((p for p in polls if p.title == POLL_TITLE), None)
        if poll is None:
            today = datetime.now(UTC).astimezone(PARIS).date()
            tuesday = today + timedelta(days=7 + (1 - today.weekday()) % 7)
            slots = [
                datetime.combine(tuesday + timedelta(days=d), AFTERWORK_TIME) for d in (0, 2, 7)
            ]
            poll = await self.ask(
                ec.OpenDatePoll(
                    hub_id=self.artisans.hub_id,
                    title=POLL_TITLE,
                    slots=slots,
                    venue=AFTERWORK_VENUE,
                    series_id=series.series_id,
                    duration_minutes=150,
                )
            )
        assert poll is not None
        if poll.voters >= len(POLL_VOTES):
            return
        for key, votes in POLL_VOTES.items():
            mine = await self.ask(ec.GetDatePoll(poll_id=poll.poll_id), self.ctx(key))
            if mine.my_votes:
                continue
            choice = {s.slot_id: v for s, v in zip(poll.slots, votes, strict=True)}
            await until_known(
                partial(self.ask, ec.VoteOnPoll(poll_id=poll.poll_id, votes=choice), self.ctx(key))
            )


async def load_meetups(
    bus: Bus,
    settings: Settings,
    sessions: Mapping[str, idc.Session],
    hubs: Mapping[str, hc.Hub],
) -> list[tuple[str, datetime]]:
    """Create what is missing of the demo's meetups (idempotent); return the
    past lunches (id, start in UTC), oldest first."""
    return await MeetupsDemo(bus, settings, sessions, hubs).load()
