"""The demo network's referrals (issue #8, "Demo"), loaded after its meetups
(infra/demo_meetups.py) through the referrals service's own commands:

* slips among the members of `pole-11e` in every state: given, accepted,
  declined (with a reason), contacted, won (with a value, thanked to the
  giver), lost, and one whose prospect is a member of the network;
* a thanks for business that came without a slip;
* one-to-ones, confirmed and not;
* a need matched and met inside the network, and one released after its
  response window;
* the network's engagement settings (a young network's thresholds, below);

so that, with the lunches' attendance, the reports show results, a core,
members drifting away, and traffic lights of every colour.

**Dates.** The story spans five months: each step has its own day (days
before the load: each slip's `days`, the thanks', the one-to-ones',
`NEED_DAYS`; a slip that names the lunch where giver and receiver
met is given the day after that lunch), and the steps are written in the
order of their days, the services' movable clock (outside production) moved
to each day first, then back to where it was (infra/clock.py). So the
referrals service records each step at its day: a slip's `given_at` and
history, a thanks' `at`, a one-to-one's confirmation, and the results and
lights computed from them. The need is released now, its window passed.
Without a movable clock (production, or a clock that does not answer)
everything happens now, and the release is skipped with a log line. What
the event stream's CloudEvent `time` says is the recording service's
business (docs/console.md, "The demo's dates").

**Lights.** The demo network sets its engagement settings once (a tenant
admin's `SetEngagementSettings`, only while they are the defaults: a change
made since is kept): a network whose weekly lunch began five weeks ago
measures over three months, green from 4 meetups, 3 referrals given and 2
confirmed one-to-ones, amber from 2, 1 and 1. The story then gives green
(Claire, Sophie, Julien), amber (Karim, Inès, Lucas, Nadia) and red
(Amélie: her one-to-one is not confirmed; Thomas: one lunch; Marc, Émilie).
With the defaults (12 meetups in six months for green) five weeks of lunches
would leave every light red.

Every item looks at what is there first (a slip by its giver and subject, a
thanks by its subject, a one-to-one by its pair, a need by its words), so a
second load sends nothing and moves no clock, and an interrupted load
resumes. A command the referrals service refuses or fails is logged
(`demo.referrals_step_failed`, with its step and error) and the rest goes
on: the demo never hides it, and never stops the system for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import structlog

from infra import clock
from infra.demo_meetups import restore_clock
from services.hubs import contract as hc
from services.identity import contract as idc
from services.referrals import contract as rc
from services.runtime.bus import Bus
from services.runtime.errors import Forbidden, QuartierError, Unavailable
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext

log = structlog.get_logger("demo")

T = TypeVar("T")

KNOWN_TIMEOUT = 30.0  # seconds for the referrals service to learn the demo's members
AFTER_LUNCH = timedelta(days=1)  # a slip naming a lunch is given the day after it

# The demo network's engagement settings (set once, over the defaults only).
ENGAGEMENT = rc.EngagementSettings(
    light_months=3,
    green_meetups=4,
    amber_meetups=2,
    green_referrals=3,
    amber_referrals=1,
    green_one_to_ones=2,
    amber_one_to_ones=1,
)


@dataclass(frozen=True)
class DemoSlip:
    giver: str
    receiver: str
    about: str
    warmth: int
    path: tuple[rc.ReferralStatus, ...]  # the statuses after "given", in order
    days: tuple[int, ...]  # days before the load: given, then each status of `path`
    prospect: rc.Prospect | None = None
    prospect_member: str | None = None  # inside: a member of the network
    reason: str = ""  # declined or lost
    value: Decimal | None = None  # won
    lunch: int | None = None  # where they met: the index of a past lunch (oldest first)


def _outside(name: str, company: str = "", email: str = "") -> rc.Prospect:
    return rc.Prospect(name=name, company=company, email=email)


WON: tuple[rc.ReferralStatus, ...] = ("accepted", "contacted", "won")

# Oldest first (by the day given).
SLIPS: tuple[DemoSlip, ...] = (
    DemoSlip(
        "sophie",
        "nadia",
        "Statuts de SAS pour deux clients qui s'associent",
        4,
        WON,
        (150, 148, 141, 128),
        prospect=_outside("M. Caron", "Caron & Diallo"),
        value=Decimal("1200.00"),
    ),
    DemoSlip(
        "claire",
        "julien",
        "Site vitrine pour un cabinet de kinésithérapie",
        3,
        WON,
        (121, 119, 112, 96),
        prospect=_outside("Cabinet Kiné Voltaire"),
        value=Decimal("1800.00"),
    ),
    DemoSlip(
        "karim",
        "hugo",
        "Placards sur mesure pour une cliente de la rue Saint-Maur",
        4,
        WON,
        (112, 110, 104, 81),
        prospect=_outside("Mme Girard", email="girard@example.com"),
        value=Decimal("2900.00"),
    ),
    DemoSlip(
        "claire",
        "amelie",
        "Plaquette pour une librairie de la rue de la Roquette",
        3,
        WON,
        (70, 68, 60, 45),
        prospect=_outside("Librairie La Roquette"),
        value=Decimal("950.00"),
    ),
    DemoSlip(
        "thomas",
        "hugo",
        "Agencement de la boutique de Léa",
        5,
        WON,
        (64, 62, 57, 34),
        prospect_member="lea",
        value=Decimal("3800.00"),
    ),
    DemoSlip(
        "sophie",
        "ines",
        "Traduction des statuts d'une filiale espagnole",
        3,
        WON,
        (55, 53, 47, 30),
        prospect=_outside("Mme Ruiz", "Ruiz Export"),
        value=Decimal("680.00"),
    ),
    DemoSlip(
        "lucas",
        "julien",
        "Site pour un studio de yoga",
        2,
        ("declined",),
        (44, 41),
        prospect=_outside("Studio Prana"),
        reason="Plus de disponibilité avant le printemps.",
    ),
    DemoSlip(
        "nadia",
        "ines",
        "Relecture d'un contrat de licence en anglais",
        3,
        WON,
        (40, 38, 33, 25),
        prospect=_outside("M. Weber", "Weber Design"),
        value=Decimal("420.00"),
    ),
    DemoSlip(
        "claire",
        "nadia",
        "Bail commercial d'une boutique rue Keller",
        4,
        ("accepted",),
        (35, 33),
        prospect=_outside("Mme Nguyen", "Fleurs Keller"),
    ),
    DemoSlip(
        "sophie",
        "marc",
        "Responsabilité civile pro pour une cliente qui ouvre son cabinet",
        4,
        ("accepted", "contacted", "lost"),
        (33, 31, 27, 12),
        prospect=_outside("Dr Morel", "Cabinet Morel"),
        reason="La cliente a gardé son assureur actuel.",
    ),
    DemoSlip(
        "julien",
        "emilie",
        "Atelier gestion du stress pour l'équipe d'une agence",
        2,
        (),
        (28,),
        prospect=_outside("Agence Pixel & Co"),
    ),
    DemoSlip(
        "karim",
        "thomas",
        "Mise aux normes électrique d'un appartement rue Popincourt",
        5,
        WON,
        (26, 24, 20, 6),
        prospect=_outside("Mme Lambert", email="lambert@example.com"),
        value=Decimal("2450.00"),
    ),
    DemoSlip(
        "sophie",
        "julien",
        "Automatiser la collecte des factures d'un cabinet infirmier",
        3,
        ("accepted", "contacted"),
        (21, 19, 15),
        prospect=_outside("Cabinet infirmier Parmentier"),
    ),
    DemoSlip(
        "julien",
        "lucas",
        "Photos d'équipe pour une jeune pousse du passage Beslay",
        4,
        WON,
        (20, 18, 14, 9),  # given the day after the lunch where they met (below)
        prospect=_outside("M. Petitjean", "Beslay Labs"),
        value=Decimal("540.00"),
        lunch=1,  # both there: a slip names a meetup where both were present
    ),
    DemoSlip(
        "ines",
        "nadia",
        "Contrat de distribution bilingue pour un importateur",
        4,
        ("accepted",),
        (16, 14),
        prospect=_outside("M. Ortega", "Ortega Import"),
    ),
    DemoSlip(
        "julien",
        "amelie",
        "Charte graphique pour une boutique en ligne de céramique",
        3,
        ("accepted", "contacted"),
        (13, 10, 6),  # given the day after the lunch where they met (below)
        prospect=_outside("Atelier Terre & Feu", "Terre & Feu"),
        lunch=2,
    ),
    DemoSlip(
        "claire",
        "sophie",
        "Comptabilité de l'association des commerçants de la rue Oberkampf",
        2,
        (),
        (9,),
        prospect=_outside("Association Oberkampf Commerces"),
    ),
)
# Thanks for business that came from a member without a slip: receiver thanks
# giver, days before the load.
THANKS = ("marc", "sophie", "Un client venu par Sophie pour l'assurance de son local", "600.00", 75)
# One-to-ones: (logged by, the other, days before the load, confirmed by the
# other the day after).
ONE_TO_ONES: tuple[tuple[str, str, int, bool], ...] = (
    ("marc", "sophie", 130, True),
    ("claire", "sophie", 62, True),
    ("ines", "claire", 45, True),
    ("sophie", "nadia", 30, True),
    ("claire", "julien", 20, True),
    ("julien", "lucas", 10, True),
    ("karim", "hugo", 9, True),
    ("amelie", "lea", 4, False),
)
# A need matched and met inside: who posts, activity codes, words; who answers
# and meets it; days before the load: posted, answered, met.
NEED_MET = (
    "lea",
    ["photographer"],
    "Photos de mes plats pour la nouvelle carte",
    "lucas",
    "Je passe à la boutique jeudi avec un éclairage de studio.",
)
NEED_DAYS = (12, 8, 3)
# A need nobody inside met: posted with the other, released once its window has passed.
NEED_RELEASED = ("emilie", "Local partagé à temps partiel près de Charonne")


class ReferralsDemo:
    def __init__(
        self,
        bus: Bus,
        settings: Settings,
        sessions: Mapping[str, idc.Session],
        hubs: Mapping[str, hc.Hub],
    ):
        from infra.demo import VOLTAIRE, as_member

        self.bus = bus
        self.settings = settings
        self.sessions = sessions
        self.as_member = as_member
        self.voltaire = hubs[VOLTAIRE]
        self.failed: list[str] = []

    def ctx(self, key: str) -> RequestContext:
        return self.as_member(self.sessions[key])

    def id_of(self, key: str) -> str:
        return self.sessions[key].member_id

    async def ask(self, request: Any, key: str) -> Any:
        return await self.bus.request(request, self.ctx(key))

    async def step(self, name: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """Run one step; a refusal or a failure of the referrals service is
        logged with the step's name and the error, and the demo goes on
        (None). Unavailable goes up: the launcher tries the demo again."""
        try:
            return await call()
        except Unavailable:
            raise
        except QuartierError as e:
            self.failed.append(name)
            log.error("demo.referrals_step_failed", step=name, code=e.code, error=e.message)
            return None

    async def until_known(self, key: str) -> None:
        """Wait until the referrals service knows the member (it learns
        members from identity's events)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KNOWN_TIMEOUT
        while True:
            try:
                await self.ask(rc.ListOneToOnes(), key)
                return
            except Forbidden:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    # -- what is there -------------------------------------------------------------

    async def slips_given(self, key: str) -> dict[str, rc.Slip]:
        found: dict[str, rc.Slip] = {}
        offset = 0
        while True:
            page = await self.ask(rc.ListSlips(direction="given", offset=offset, limit=50), key)
            found.update({s.about: s for s in page.items})
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return found

    async def snapshot(self) -> dict[str, Any]:
        keys = {s.giver for s in SLIPS} | {THANKS[0], NEED_MET[0], NEED_RELEASED[0]}
        keys |= {o[0] for o in ONE_TO_ONES}
        for key in sorted(keys):
            await self.until_known(key)
        slips = {}
        for giver in sorted({s.giver for s in SLIPS}):
            slips.update({(giver, a): s for a, s in (await self.slips_given(giver)).items()})
        thanks = [
            t
            for direction in ("given", "received")
            for t in (await self.ask(rc.ListThanks(direction=direction, limit=50), THANKS[0])).items
        ]
        one_to_ones = {
            key: await self.ask(rc.ListOneToOnes(), key) for key in {o[0] for o in ONE_TO_ONES}
        }
        needs = {
            key: (await self.ask(rc.ListNeeds(mine=True, limit=50), key)).items
            for key in (NEED_MET[0], NEED_RELEASED[0])
        }
        return {"slips": slips, "thanks": thanks, "one_to_ones": one_to_ones, "needs": needs}

    def one_to_one(self, snap: dict[str, Any], by: str, other: str) -> rc.OneToOne | None:
        return next((o for o in snap["one_to_ones"][by] if o.other_id == self.id_of(other)), None)

    def missing(self, snap: dict[str, Any]) -> bool:
        for s in SLIPS:
            slip = snap["slips"].get((s.giver, s.about))
            if slip is None or slip.status != (s.path[-1] if s.path else "given"):
                return True
        if not any(t.about == THANKS[2] for t in snap["thanks"]):
            return True
        for by, other, _, confirmed in ONE_TO_ONES:
            found = self.one_to_one(snap, by, other)
            if found is None or (confirmed and found.status != "confirmed"):
                return True
        met = self.need(snap, NEED_MET[0], NEED_MET[2])
        released = self.need(snap, NEED_RELEASED[0], NEED_RELEASED[1])
        return met is None or met.status != "met" or released is None or released.status == "open"

    @staticmethod
    def need(snap: dict[str, Any], key: str, words: str) -> rc.Need | None:
        return next((n for n in snap["needs"][key] if n.words == words), None)

    # -- the story -----------------------------------------------------------------

    async def load(self, lunches: list[tuple[str, datetime]]) -> None:
        await self.engagement_settings()
        snap = await self.snapshot()
        if not self.missing(snap):
            return
        start = None
        if self.settings.is_prod:
            log.warning("demo.referrals_history_skipped", reason="production: no movable clock")
        else:
            try:
                start = await clock.move_clock(self.bus, self.settings, 0.0)
            except clock.ClockError as e:
                log.warning("demo.referrals_history_skipped", reason=str(e))
        try:
            await self.story(snap, lunches, start.now if start is not None else None)
        finally:
            if start is not None:
                await restore_clock(self.bus, self.settings, start.offset_seconds)
        await self.release(movable=start is not None)
        if self.failed:
            log.error("demo.referrals_incomplete", failed_steps=self.failed)

    async def engagement_settings(self) -> None:
        """The demo network's thresholds, set once: only over the defaults."""
        current = await self.ask(rc.GetEngagementSettings(), "claire")
        if current == rc.EngagementSettings() and current != ENGAGEMENT:
            await self.step(
                "engagement settings",
                partial(self.ask, rc.SetEngagementSettings(settings=ENGAGEMENT), "claire"),
            )

    def timeline(
        self, snap: dict[str, Any], lunches: list[tuple[str, datetime]], now: datetime
    ) -> list[tuple[datetime, int, Callable[[], Awaitable[None]]]]:
        """Every step of the story at its moment (`now` minus its days), in
        the order they happen (ties in the order written)."""
        steps: list[tuple[datetime, int, Callable[[], Awaitable[None]]]] = []

        def at(moment: datetime, action: Callable[[], Awaitable[None]]) -> None:
            steps.append((moment, len(steps), action))

        def ago(days: int) -> datetime:
            return now - timedelta(days=days)

        slips: dict[int, rc.Slip | None] = {
            i: snap["slips"].get((s.giver, s.about)) for i, s in enumerate(SLIPS)
        }
        for i, s in enumerate(SLIPS):
            given = ago(s.days[0])
            if s.lunch is not None and s.lunch < len(lunches):
                given = min(lunches[s.lunch][1] + AFTER_LUNCH, now)
            at(given, partial(self.give, i, slips, lunches))
            for status, days in zip(s.path, s.days[1:], strict=True):
                at(max(ago(days), given), partial(self.advance, i, slips, status))
        at(ago(THANKS[4]), partial(self.thanks, snap))
        logged: dict[tuple[str, str], rc.OneToOne | None] = {}
        for by, other, days, confirm in ONE_TO_ONES:
            met = ago(days)
            at(met, partial(self.log_one_to_one, snap, logged, by, other, met.date()))
            if confirm:
                at(met + timedelta(days=1), partial(self.confirm_one_to_one, logged, by, other))
        posted, answered, met = (ago(d) for d in NEED_DAYS)
        needs: dict[str, rc.Need | None] = {}
        at(posted, partial(self.post_needs, snap, needs))
        at(answered, partial(self.answer_need, needs))
        at(met, partial(self.meet_need, needs))
        return sorted(steps, key=lambda step: (step[0], step[1]))

    async def story(
        self,
        snap: dict[str, Any],
        lunches: list[tuple[str, datetime]],
        now: datetime | None,
    ) -> None:
        """The steps in the order of their days, the clock moved to each day
        first (`now`: the services' time before; None: no movable clock,
        everything happens now)."""
        last = None
        for moment, _, action in self.timeline(snap, lunches, now or datetime.now(UTC)):
            if now is not None and moment != last:
                await clock.move_to(self.bus, self.settings, moment)
                last = moment
            await action()

    async def give(
        self, i: int, slips: dict[int, rc.Slip | None], lunches: list[tuple[str, datetime]]
    ) -> None:
        s = SLIPS[i]
        if slips[i] is not None:
            return
        met_at = lunches[s.lunch][0] if s.lunch is not None and s.lunch < len(lunches) else None
        slips[i] = await self.step(
            f"give {s.giver}->{s.receiver}",
            partial(
                self.ask,
                rc.GiveReferral(
                    receiver_id=self.id_of(s.receiver),
                    about=s.about,
                    warmth=s.warmth,
                    prospect=s.prospect,
                    prospect_member_id=self.id_of(s.prospect_member) if s.prospect_member else None,
                    hub_id=self.voltaire.hub_id if met_at else None,
                    meetup_id=met_at,
                ),
                s.giver,
            ),
        )

    async def advance(self, i: int, slips: dict[int, rc.Slip | None], target: str) -> None:
        """Move the slip along its path up to `target` (`slips` follows: the
        entry becomes the slip as it now is); nothing if it is there already."""
        s, slip = SLIPS[i], slips[i]
        if slip is None:
            return
        statuses = ("given", *s.path)
        done = statuses.index(slip.status) if slip.status in statuses else len(statuses)
        for status in statuses[done + 1 : statuses.index(target) + 1]:
            moved = await self.step(
                f"{status} {s.giver}->{s.receiver}",
                partial(self.ask, self.transition(status, slip.referral_id, s), s.receiver),
            )
            if moved is None:
                return
            slip = slips[i] = moved

    async def thanks(self, snap: dict[str, Any]) -> None:
        receiver, giver, about, amount, _ = THANKS
        if any(t.about == about for t in snap["thanks"]):
            return
        await self.step(
            f"thanks {receiver}->{giver}",
            partial(
                self.ask,
                rc.RecordThanks(
                    giver_id=self.id_of(giver),
                    value=rc.Money(amount=Decimal(amount)),
                    about=about,
                    hub_id=self.voltaire.hub_id,
                ),
                receiver,
            ),
        )

    async def log_one_to_one(
        self,
        snap: dict[str, Any],
        logged: dict[tuple[str, str], rc.OneToOne | None],
        by: str,
        other: str,
        met_on: date,
    ) -> None:
        """Logged on the day they met (`logged` follows)."""
        logged[by, other] = self.one_to_one(snap, by, other) or await self.step(
            f"one-to-one {by}-{other}",
            partial(self.ask, rc.LogOneToOne(other_id=self.id_of(other), met_on=met_on), by),
        )

    async def confirm_one_to_one(
        self, logged: dict[tuple[str, str], rc.OneToOne | None], by: str, other: str
    ) -> None:
        """Confirmed by the other (the day after they met)."""
        found = logged.get((by, other))
        if found is None or found.status != "logged":
            return
        await self.step(
            f"confirm one-to-one {by}-{other}",
            partial(self.ask, rc.ConfirmOneToOne(one_to_one_id=found.one_to_one_id), other),
        )

    async def post_needs(self, snap: dict[str, Any], needs: dict[str, rc.Need | None]) -> None:
        for key, codes, words in (
            (NEED_MET[0], NEED_MET[1], NEED_MET[2]),
            (NEED_RELEASED[0], [], NEED_RELEASED[1]),
        ):
            needs[key] = self.need(snap, key, words) or await self.step(
                f"post need {key}",
                partial(self.ask, rc.PostNeed(activity_codes=codes, words=words), key),
            )

    async def answer_need(self, needs: dict[str, rc.Need | None]) -> None:
        need = needs.get(NEED_MET[0])
        _, _, _, helper, message = NEED_MET
        if need is None or need.status != "open":
            return
        mine = await self.ask(rc.GetNeed(need_id=need.need_id), helper)
        if not mine.answers:
            await self.step(
                f"answer need {helper}",
                partial(self.ask, rc.AnswerNeed(need_id=need.need_id, message=message), helper),
            )

    async def meet_need(self, needs: dict[str, rc.Need | None]) -> None:
        need = needs.get(NEED_MET[0])
        poster, _, _, helper, _ = NEED_MET
        if need is None or need.status != "open":
            return
        await self.step(
            f"need met {poster}",
            partial(
                self.ask,
                rc.MarkNeedMet(need_id=need.need_id, member_id=self.id_of(helper)),
                poster,
            ),
        )

    @staticmethod
    def transition(status: str, referral_id: str, s: DemoSlip) -> Any:
        if status == "accepted":
            return rc.AcceptReferral(referral_id=referral_id)
        if status == "declined":
            return rc.DeclineReferral(referral_id=referral_id, reason=s.reason)
        if status == "contacted":
            return rc.MarkContacted(referral_id=referral_id)
        if status == "won":
            assert s.value is not None
            return rc.MarkWon(referral_id=referral_id, value=rc.Money(amount=s.value))
        return rc.MarkLost(referral_id=referral_id, reason=s.reason)

    async def release(self, movable: bool) -> None:
        poster, words = NEED_RELEASED
        current = (await self.ask(rc.ListNeeds(mine=True, limit=50), poster)).items
        need = next((n for n in current if n.words == words), None)
        if need is None or need.status != "open":
            return
        if need.window_ends_at > datetime.now(UTC):
            log.warning(
                "demo.need_not_released",
                reason="its response window has not passed (no history on a fixed clock)"
                if not movable
                else "its response window has not passed",
            )
            return
        await self.step(
            f"release need {poster}",
            partial(self.ask, rc.ReleaseNeed(need_id=need.need_id), poster),
        )


async def load_referrals(
    bus: Bus,
    settings: Settings,
    sessions: Mapping[str, idc.Session],
    hubs: Mapping[str, hc.Hub],
    lunches: list[tuple[str, datetime]] | None = None,
) -> None:
    """Create what is missing of the demo's referrals (idempotent).
    `lunches`: the past lunches (id, start in UTC), oldest first (where givers
    and receivers met)."""
    await ReferralsDemo(bus, settings, sessions, hubs).load(lunches or [])
