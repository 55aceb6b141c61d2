"""Gathering an export's records: the exports service asks each service over
the bus, **as the export's requester** (their member id, with the roles
identity gives them when the job starts), the queries the API already
answers them. Each service applies its own rules: a network export holds
what the tenant admin may read, a member's own export what the network holds
about them, and nothing else (rows of other members are left out, and a
prospect who is a member of the network is left out of referrals).

Every list is read in pages of at most MAX_PAGE; the writer's limits stop an
export that grows too large before it asks for more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import msgspec

from services.events import contract as ec
from services.exports.archive import ArchiveWriter
from services.hubs import contract as hc
from services.identity import contract as idc
from services.referrals import contract as rc
from services.runtime.bus import Bus
from services.runtime.tenancy import RequestContext
from services.runtime.views import MAX_PAGE
from services.webhooks import contract as wc

REPORT_DAYS = 365

Progress = Callable[[float], Awaitable[None]]


async def pages(fetch: Callable[[int], Awaitable[Any]]) -> list[Any]:
    """Every item of a paged query (`fetch(offset)` answers a page with
    `items` and `total`)."""
    found: list[Any] = []
    offset = 0
    while True:
        page = await fetch(offset)
        found.extend(page.items)
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return found


class Gatherer:
    def __init__(
        self,
        bus: Bus,
        ctx: RequestContext,
        writer: ArchiveWriter,
        progress: Progress,
        now: datetime,
    ):
        self.bus = bus
        self.ctx = ctx
        self.writer = writer
        self.progress = progress
        self.now = now
        self.me = ctx.actor.member_id or ""

    async def ask(self, message: Any) -> Any:
        return await self.bus.request(message, self.ctx)

    # -- the whole network (a tenant admin) -------------------------------------------

    async def network(self) -> None:
        members = await pages(lambda o: self.ask(idc.SearchMembers(offset=o, limit=MAX_PAGE)))
        self.writer.add("members.csv", members)
        await self.progress(0.1)
        hubs = await self.ask(hc.ListHubs())
        self.writer.add("hubs.ndjson", hubs)
        for i, hub in enumerate(hubs):
            await self._hub(hub, own_only=False)
            await self.progress(0.1 + 0.6 * (i + 1) / len(hubs))
        slips = await pages(
            lambda o: self.ask(rc.ListSlips(direction="all", offset=o, limit=MAX_PAGE))
        )
        self.writer.add("referrals.ndjson", slips)
        thanks = await pages(
            lambda o: self.ask(rc.ListThanks(direction="all", offset=o, limit=MAX_PAGE))
        )
        self.writer.add("thanks.csv", thanks)
        one_to_ones = await pages(
            lambda o: self.ask(rc.ListNetworkOneToOnes(offset=o, limit=MAX_PAGE))
        )
        self.writer.add("one_to_ones.csv", one_to_ones)
        needs = await pages(lambda o: self.ask(rc.ListNetworkNeeds(offset=o, limit=MAX_PAGE)))
        self.writer.add("needs.ndjson", needs)
        invitations = await pages(lambda o: self.ask(idc.ListInvitations(offset=o, limit=MAX_PAGE)))
        self.writer.add("invitations.csv", invitations)
        endpoints = await pages(lambda o: self.ask(wc.ListEndpoints(offset=o, limit=MAX_PAGE)))
        self.writer.add("webhook_endpoints.csv", endpoints)
        await self.progress(0.8)
        since, until = self.now - timedelta(days=REPORT_DAYS), self.now
        self.writer.add(
            "reports.ndjson",
            [await self.ask(rc.GetResults(scope="tenant", since=since, until=until))],
        )
        for hub in hubs:
            self.writer.add(
                "reports.ndjson",
                [
                    await self.ask(
                        rc.GetResults(scope="hub", subject_id=hub.hub_id, since=since, until=until)
                    )
                ],
            )
            self.writer.add(
                "hub_engagement.ndjson", [await self.ask(rc.GetHubEngagement(hub_id=hub.hub_id))]
            )
        for member in members:
            result = await self.ask(
                rc.GetResults(scope="member", subject_id=member.member_id, since=since, until=until)
            )
            self.writer.add("reports.ndjson", [result])
        await self.progress(0.95)

    # -- one member (right of access) -----------------------------------------------

    async def member(self) -> None:
        me = self.me
        self.writer.add("members.csv", await self.ask(idc.GetMembers(member_ids=[me])))
        await self.progress(0.1)
        hubs = await self.ask(hc.ListHubs(member_id=me))
        self.writer.add("hubs.ndjson", hubs)
        for i, hub in enumerate(hubs):
            await self._hub(hub, own_only=True)
            await self.progress(0.1 + 0.6 * (i + 1) / len(hubs))
        slips: dict[str, rc.Slip] = {}
        directions: tuple[rc.Direction, ...] = ("given", "received")
        for direction in directions:
            found = await pages(partial(self._slips, direction))
            slips.update((s.referral_id, _own_slip(s)) for s in found)
        self.writer.add("referrals.ndjson", sorted(slips.values(), key=lambda s: s.given_at))
        for direction in directions:
            self.writer.add("thanks.csv", await pages(partial(self._thanks, direction)))
        self.writer.add("one_to_ones.csv", await self.ask(rc.ListOneToOnes()))
        needs = await pages(lambda o: self.ask(rc.ListNeeds(mine=True, offset=o, limit=MAX_PAGE)))
        self.writer.add("needs.ndjson", needs)
        await self.progress(0.8)
        since = self.now - timedelta(days=REPORT_DAYS)
        result = await self.ask(
            rc.GetResults(scope="member", subject_id=me, since=since, until=self.now)
        )
        self.writer.add("reports.ndjson", [result])
        await self.progress(0.95)

    # -- a hub's members, rules and meetups -------------------------------------------

    async def _hub(self, hub: hc.Hub, own_only: bool) -> None:
        hub_id = hub.hub_id
        members = await pages(
            lambda o: self.ask(hc.ListHubMembers(hub_id=hub_id, offset=o, limit=MAX_PAGE))
        )
        if own_only:
            members = [m for m in members if m.member_id == self.me]
        self.writer.add("hub_members.csv", members, hub_id=hub_id)
        if not own_only:
            self.writer.add(
                "hub_rules_history.ndjson",
                await self.ask(hc.RulesHistory(hub_id=hub_id)),
                hub_id=hub_id,
            )
        whens: tuple[ec.When, ...] = ("past", "upcoming")
        for when in whens:
            meetups = await pages(partial(self._meetups, hub_id, when))
            for meetup in meetups:
                await self._meetup(meetup, own_only)
        await self._polls(hub_id, own_only)
        proposals = await self.ask(ec.ListWorkshopProposals(hub_id=hub_id))
        if own_only:
            proposals = [p for p in proposals if p.host_id == self.me]
        self.writer.add("workshop_proposals.csv", proposals)

    async def _polls(self, hub_id: str, own_only: bool) -> None:
        """The hub's date polls with their tallies, and the votes: every
        member's (tenant admins ask them poll by poll), or for a member's
        own export the polls they voted in with their own votes."""
        polls: list[ec.DatePoll] = await self.ask(ec.ListDatePolls(hub_id=hub_id))
        for poll in polls:
            if own_only:
                if not poll.my_votes:
                    continue
                votes = [
                    ec.PollVote(poll_id=poll.poll_id, slot_id=slot, member_id=self.me, vote=vote)
                    for slot, vote in sorted(poll.my_votes.items())
                ]
            else:
                votes = await pages(partial(self._votes, poll.poll_id))
            self.writer.add("date_polls.ndjson", [poll])
            self.writer.add("date_poll_votes.csv", votes)

    async def _votes(self, poll_id: str, offset: int) -> ec.PollVotePage:
        page: ec.PollVotePage = await self.ask(
            ec.ListPollVotes(poll_id=poll_id, offset=offset, limit=MAX_PAGE)
        )
        return page

    async def _meetups(self, hub_id: str, when: ec.When, offset: int) -> ec.MeetupPage:
        page: ec.MeetupPage = await self.ask(
            ec.ListMeetups(hub_id=hub_id, when=when, offset=offset, limit=MAX_PAGE)
        )
        return page

    async def _slips(self, direction: rc.Direction, offset: int) -> rc.SlipPage:
        page: rc.SlipPage = await self.ask(
            rc.ListSlips(direction=direction, offset=offset, limit=MAX_PAGE)
        )
        return page

    async def _thanks(self, direction: rc.Direction, offset: int) -> rc.ThanksPage:
        page: rc.ThanksPage = await self.ask(
            rc.ListThanks(direction=direction, offset=offset, limit=MAX_PAGE)
        )
        return page

    async def _meetup(self, meetup: ec.Meetup, own_only: bool) -> None:
        rsvps = await self.ask(ec.ListRsvps(meetup_id=meetup.meetup_id))
        attendance = await self.ask(ec.GetAttendance(meetup_id=meetup.meetup_id))
        draws = await self.ask(ec.ListDraws(meetup_id=meetup.meetup_id))
        if own_only:
            rsvps = [r for r in rsvps if r.member_id == self.me]
            attendance = [a for a in attendance if a.member_id == self.me]
            draws = [d for d in draws if d.member_id == self.me]
            if not rsvps and not attendance and not draws and meetup.host_id != self.me:
                return  # a meetup of their hub they had nothing to do with
        self.writer.add("meetups.ndjson", [meetup])
        self.writer.add("meetup_rsvps.csv", rsvps, meetup_id=meetup.meetup_id)
        self.writer.add("meetup_attendance.csv", attendance, meetup_id=meetup.meetup_id)
        self.writer.add("mission_cards.csv", draws, meetup_id=meetup.meetup_id)


def _own_slip(slip: rc.Slip) -> rc.Slip:
    """In a member's own export, a prospect who is a member of the network
    is named by id only: their contact details are theirs, not the exporter's."""
    if slip.inside and slip.prospect is not None:
        return msgspec.structs.replace(slip, prospect=None)
    return slip
