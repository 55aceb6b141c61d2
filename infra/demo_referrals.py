"""The demo network's referrals (issue #8, "Demo"), loaded after its meetups
(infra/demo_meetups.py) through the referrals service's own commands:

* slips among the members of `pole-11e` in every state: given, accepted,
  declined (with a reason), contacted, won (with a value, thanked to the
  giver), lost, and one whose prospect is a member of the network;
* a thanks for business that came without a slip;
* one-to-ones, confirmed and not;
* a need matched and met inside the network, and one released after its
  response window;

so that, with the lunches' attendance, the reports show results, a core and
members drifting away.

The story spans twelve days: on the services' movable clock (outside
production), slips, needs and one-to-ones are written twelve days ago, the
answers eight days ago, the outcomes three days ago, and the clock goes back
to where it was (infra/clock.py); the need is released now, its window
passed. Without a movable clock (production, or a clock that does not
answer) everything happens now, and the release is skipped with a log line.

Every item looks at what is there first (a slip by its giver and subject, a
thanks by its subject, a one-to-one by its pair and day, a need by its
words), so a second load sends nothing and moves no clock. A command the
referrals service refuses or fails is logged (`demo.referrals_step_failed`,
with its step and error) and the rest goes on: the demo never hides it, and
never stops the system for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from services.runtime.operations import ClockState
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext

log = structlog.get_logger("demo")

T = TypeVar("T")

KNOWN_TIMEOUT = 30.0  # seconds for the referrals service to learn the demo's members
GIVEN_DAYS_AGO = 12
ANSWERED_DAYS_AGO = 8
OUTCOME_DAYS_AGO = 3


@dataclass(frozen=True)
class DemoSlip:
    giver: str
    receiver: str
    about: str
    warmth: int
    path: tuple[rc.ReferralStatus, ...]  # the statuses after "given", in order
    prospect: rc.Prospect | None = None
    prospect_member: str | None = None  # inside: a member of the network
    reason: str = ""  # declined or lost
    value: Decimal | None = None  # won
    lunch: int | None = None  # where they met: the index of a past lunch (oldest first)


SLIPS: tuple[DemoSlip, ...] = (
    DemoSlip(
        "karim",
        "thomas",
        "Mise aux normes électrique d'un appartement rue Popincourt",
        5,
        ("accepted", "contacted", "won"),
        prospect=rc.Prospect(name="Mme Lambert", email="lambert@example.com"),
        value=Decimal("2450.00"),
        lunch=4,  # both there (Thomas late): a slip names a meetup where both were present
    ),
    DemoSlip(
        "sophie",
        "marc",
        "Responsabilité civile pro pour une cliente qui ouvre son cabinet",
        4,
        ("accepted", "contacted", "lost"),
        prospect=rc.Prospect(name="Dr Morel", company="Cabinet Morel"),
        reason="La cliente a gardé son assureur actuel.",
    ),
    DemoSlip(
        "julien",
        "amelie",
        "Charte graphique pour une boutique en ligne de céramique",
        3,
        ("accepted", "contacted"),
        prospect=rc.Prospect(name="Atelier Terre & Feu", company="Terre & Feu"),
        lunch=2,
    ),
    DemoSlip(
        "ines",
        "nadia",
        "Contrat de distribution bilingue pour un importateur",
        4,
        ("accepted",),
        prospect=rc.Prospect(name="M. Ortega", company="Ortega Import"),
    ),
    DemoSlip(
        "lucas",
        "julien",
        "Site pour un studio de yoga",
        2,
        ("declined",),
        prospect=rc.Prospect(name="Studio Prana"),
        reason="Plus de disponibilité avant le printemps.",
    ),
    DemoSlip(
        "claire",
        "sophie",
        "Comptabilité de l'association des commerçants de la rue Oberkampf",
        2,
        (),
        prospect=rc.Prospect(name="Association Oberkampf Commerces"),
    ),
    DemoSlip(
        "thomas",
        "hugo",
        "Agencement de la boutique de Léa",
        5,
        ("accepted", "contacted", "won"),
        prospect_member="lea",
        value=Decimal("3800.00"),
    ),
)
# Thanks for business that came from a member without a slip: receiver thanks giver.
THANKS = ("marc", "sophie", "Un client venu par Sophie pour son assurance de local", "600.00")
# One-to-ones: (logged by, the other, days ago, confirmed by the other)
ONE_TO_ONES: tuple[tuple[str, str, int, bool], ...] = (
    ("julien", "lucas", 10, True),
    ("karim", "hugo", 9, True),
    ("amelie", "lea", 4, False),
)
# A need matched and met inside: who posts, activity codes, words; who answers and meets it.
NEED_MET = (
    "lea",
    ["photographer"],
    "Photos de mes plats pour la nouvelle carte",
    "lucas",
    "Je passe à la boutique jeudi avec un éclairage de studio.",
)
# A need nobody inside met: released once its window has passed.
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

    def missing(self, snap: dict[str, Any]) -> bool:
        for s in SLIPS:
            slip = snap["slips"].get((s.giver, s.about))
            if slip is None or slip.status != (s.path[-1] if s.path else "given"):
                return True
        if not any(t.about == THANKS[2] for t in snap["thanks"]):
            return True
        for by, other, _, confirmed in ONE_TO_ONES:
            found = [o for o in snap["one_to_ones"][by] if o.other_id == self.id_of(other)]
            if not found or (confirmed and found[0].status != "confirmed"):
                return True
        met = self.need(snap, NEED_MET[0], NEED_MET[2])
        released = self.need(snap, NEED_RELEASED[0], NEED_RELEASED[1])
        return met is None or met.status != "met" or released is None or released.status == "open"

    @staticmethod
    def need(snap: dict[str, Any], key: str, words: str) -> rc.Need | None:
        return next((n for n in snap["needs"][key] if n.words == words), None)

    # -- the story -----------------------------------------------------------------

    async def load(self, lunches: list[str]) -> None:
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
            await self.story(snap, lunches, start)
        finally:
            if start is not None:
                await restore_clock(self.bus, self.settings, start.offset_seconds)
        await self.release(movable=start is not None)
        if self.failed:
            log.error("demo.referrals_incomplete", failed_steps=self.failed)

    async def at(self, start: ClockState | None, days_ago: int) -> None:
        if start is not None:
            await clock.move_to(self.bus, self.settings, start.now - timedelta(days=days_ago))

    async def story(
        self, snap: dict[str, Any], lunches: list[str], start: ClockState | None
    ) -> None:
        """Twelve days ago the slips and the needs; eight days ago the answers;
        three days ago the outcomes, the thanks and the one-to-ones."""
        slips: dict[int, rc.Slip | None] = {}
        await self.at(start, GIVEN_DAYS_AGO)
        for i, s in enumerate(SLIPS):
            slips[i] = snap["slips"].get((s.giver, s.about)) or await self.step(
                f"give {s.giver}->{s.receiver}", partial(self.ask, self.give(s, lunches), s.giver)
            )
        needs = {}
        for key, codes, words in (
            (NEED_MET[0], NEED_MET[1], NEED_MET[2]),
            (NEED_RELEASED[0], [], NEED_RELEASED[1]),
        ):
            needs[key] = self.need(snap, key, words) or await self.step(
                f"post need {key}",
                partial(self.ask, rc.PostNeed(activity_codes=codes, words=words), key),
            )

        await self.at(start, ANSWERED_DAYS_AGO)
        await self.advance(slips, upto=1)
        need = needs.get(NEED_MET[0])
        poster, _, _, helper, message = NEED_MET
        if need is not None and need.status == "open":
            mine = await self.ask(rc.GetNeed(need_id=need.need_id), helper)
            if not mine.answers:
                await self.step(
                    f"answer need {helper}",
                    partial(self.ask, rc.AnswerNeed(need_id=need.need_id, message=message), helper),
                )

        await self.at(start, OUTCOME_DAYS_AGO)
        await self.advance(slips, upto=3)
        if need is not None and need.status == "open":
            await self.step(
                f"need met {poster}",
                partial(
                    self.ask,
                    rc.MarkNeedMet(need_id=need.need_id, member_id=self.id_of(helper)),
                    poster,
                ),
            )
        if not any(t.about == THANKS[2] for t in snap["thanks"]):
            receiver, giver, about, amount = THANKS
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
        today = (start.now if start is not None else datetime.now(UTC)).date()
        for by, other, days, confirm in ONE_TO_ONES:
            found = [o for o in snap["one_to_ones"][by] if o.other_id == self.id_of(other)]
            logged = (
                found[0]
                if found
                else await self.step(
                    f"one-to-one {by}-{other}",
                    partial(
                        self.ask,
                        rc.LogOneToOne(
                            other_id=self.id_of(other), met_on=today - timedelta(days=days)
                        ),
                        by,
                    ),
                )
            )
            if logged is not None and confirm and logged.status == "logged":
                await self.step(
                    f"confirm one-to-one {by}-{other}",
                    partial(
                        self.ask, rc.ConfirmOneToOne(one_to_one_id=logged.one_to_one_id), other
                    ),
                )

    def give(self, s: DemoSlip, lunches: list[str]) -> rc.GiveReferral:
        met_at = lunches[s.lunch] if s.lunch is not None and s.lunch < len(lunches) else None
        return rc.GiveReferral(
            receiver_id=self.id_of(s.receiver),
            about=s.about,
            warmth=s.warmth,
            prospect=s.prospect,
            prospect_member_id=self.id_of(s.prospect_member) if s.prospect_member else None,
            hub_id=self.voltaire.hub_id if met_at else None,
            meetup_id=met_at,
        )

    async def advance(self, slips: dict[int, rc.Slip | None], upto: int) -> None:
        """Move each slip along its path up to `upto` steps after "given"
        (`slips` follows: each entry becomes the slip as it now is)."""
        for i, s in enumerate(SLIPS):
            slip = slips.get(i)
            if slip is None:
                continue
            statuses = ("given", *s.path)
            done = statuses.index(slip.status) if slip.status in statuses else len(statuses)
            for status in statuses[done + 1 : upto + 1]:
                moved = await self.step(
                    f"{status} {s.giver}->{s.receiver}",
                    partial(self.ask, self.transition(status, slip.referral_id, s), s.receiver),
                )
                if moved is None:
                    break
                slip = slips[i] = moved

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
    lunches: list[str] | None = None,
) -> None:
    """Create what is missing of the demo's referrals (idempotent).
    `lunches`: the ids of the past lunches, oldest first (where givers and
    receivers met)."""
    await ReferralsDemo(bus, settings, sessions, hubs).load(lunches or [])
