"""The referrals service over real NATS, with identity, hubs and meetups
started from the registry: what it learns from their events (members,
hubs, the rule "referrals only between members who met", attendance)
changes what it allows; a redelivered upstream event applies once; a need
goes first to the members identity finds, by mail and in the API, and is
released only after its window; results and engagement follow attendance;
bad inputs are typed errors that change nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import nats.js.errors
import pytest

from services.events import contract as ec
from services.hubs import contract as hc
from services.identity import contract as idc
from services.referrals import contract as c
from services.referrals.mail import outcomes
from services.referrals.views import directory
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    QuartierError,
    RuleViolation,
    Unauthenticated,
)
from services.runtime.host import ServiceHost
from services.runtime.settings import Settings
from services.runtime.stream import STREAM
from services.runtime.tenancy import RequestContext
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.meetups import IN_11E, VENUE, VOLTAIRE, local, read_mails, text_of
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

MET_30 = hc.Rules(admission_mode="open", non_competition=False, referrals_meeting_days=30)
PROSPECT = c.Prospect(name="Boulangerie Martin", email="contact@martin.example")


def count(host: ServiceHost) -> int:
    """The events referrals has stored."""
    n: int = host.context["app"].max_notification_id()
    return n


@dataclass
class Network:
    tenant: idc.Tenant
    admin: idc.Session
    people: dict[str, idc.Session]
    hub: hc.Hub

    def ctx(self, name: str) -> Any:
        return as_member(self.admin if name == "admin" else self.people[name])

    def id(self, name: str) -> str:
        return (self.admin if name == "admin" else self.people[name]).member_id


async def network(
    bus: Bus,
    referrals: ServiceHost,
    slug: str,
    people: dict[str, tuple[str, str]],
    rules: hc.Rules = MET_30,
) -> Network:
    """A network whose admin founds a hub with `rules` that `people` (name →
    activity, offer) join; returns once referrals knows them all."""
    tenant, admin = await create_network(bus, slug, f"admin@{slug}.example", f"Admin {slug}")
    hub = await bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE, rules=rules),
        as_member(admin),
    )
    sessions = {}
    for name, (activity, offers) in people.items():
        s = await add_member(
            bus,
            tenant.tenant_id,
            f"{name}@{slug}.example",
            card(name.title(), activity, work=IN_11E, offers=offers),
        )
        await bus.request(hc.JoinHub(hub_id=hub.hub_id), as_member(s))
        sessions[name] = s
    wanted = {admin.member_id} | {s.member_id for s in sessions.values()}

    def known() -> bool:
        with referrals.engine.connect() as conn:
            members = set(directory.members_of(conn, tenant.tenant_id, hub.hub_id))
            active = set(directory.active_among(conn, tenant.tenant_id, sorted(wanted)))
        return wanted <= members and wanted <= active

    await eventually(known)
    return Network(tenant, admin, sessions, hub)


def meeting_days(referrals: ServiceHost, net: Network) -> int | None:
    with referrals.engine.connect() as conn:
        row = directory.hub_row(conn, net.tenant.tenant_id, net.hub.hub_id)
    return None if row is None else row.meeting_days


async def lunch(
    bus: Bus,
    referrals: ServiceHost,
    clock: MovableClock,
    net: Network,
    present: list[str],
    absent: list[str] = (),  # type: ignore[assignment]
) -> ec.Meetup:
    """A meetup of the hub tomorrow; the clock moves past its start, the
    admin records who came; returns once referrals knows."""
    meetup = await bus.request(
        ec.ScheduleMeetup(
            hub_id=net.hub.hub_id, local_start=local(clock.now(), 1), venue=VENUE, title="Lunch"
        ),
        net.ctx("admin"),
    )
    clock.advance(meetup.starts_at - clock.now() + timedelta(minutes=5))
    entries = [ec.AttendanceRecordInput(member_id=net.id(n), status="excused") for n in absent]
    entries += [ec.AttendanceRecordInput(member_id=net.id(n), status="present") for n in present]
    await bus.request(
        ec.RecordAttendance(meetup_id=meetup.meetup_id, entries=entries), net.ctx("admin")
    )

    def known() -> bool:
        with referrals.engine.connect() as conn:
            rows = directory.meetup_attendance(conn, net.tenant.tenant_id, meetup.meetup_id)
        return len(rows) == len(entries)

    await eventually(known)
    return meetup


def refer(net: Network, to: str, **extra: Any) -> c.GiveReferral:
    values: dict[str, Any] = {
        "about": "a bakery needs a new oven",
        "warmth": 4,
        "prospect": PROSPECT,
    }
    return c.GiveReferral(receiver_id=net.id(to), **(values | extra))


async def refused(bus: Bus, referrals: ServiceHost, request: Any, ctx: Any, kind: type) -> Any:
    """`request` is refused with a `kind` error and stores nothing."""
    before = count(referrals)
    with pytest.raises(kind) as info:
        await bus.request(request, ctx)
    assert count(referrals) == before
    return info.value


async def republish(bus: Bus, subject: str, reaction: Any) -> None:
    """The last event on `subject` again, under another message id (as after
    a re-publication past JetStream's duplicate window), and wait until the
    reaction has seen it."""
    handled = reaction.handled
    js = bus.jetstream()
    last = await js.get_last_msg(STREAM, subject)
    await js.publish(last.subject, last.data, headers={"Nats-Msg-Id": f"again-{subject}"})
    await eventually(lambda: reaction.handled > handled)


def consumer(host: ServiceHost, durable: str) -> Any:
    return next(r for r in host.reactions if r.durable == durable)


# -- the rule "referrals only between members who met" ------------------------------------


async def test_attendance_and_rules_from_upstream_decide_who_may_refer(
    referrals: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    bus = client_bus
    net = await network(
        bus,
        referrals,
        "pole-met",
        {
            "alice": ("plumber", "leaks"),
            "bruno": ("baker", "bread"),
            "chloe": ("lawyer", "contracts"),
        },
    )
    # the rule came with HubCreated.rules: no HubRulesChanged needed
    assert await eventually(lambda: meeting_days(referrals, net) == 30)
    violation = await refused(bus, referrals, refer(net, "bruno"), net.ctx("alice"), RuleViolation)
    assert violation.rule == "referrals_between_members_who_met"
    assert "30 days" in violation.message and "one-to-one" in violation.message

    # a lunch where Alice and Bruno are present, Chloe excused
    meetup = await lunch(bus, referrals, clock, net, ["alice", "bruno"], ["chloe"])
    slip = await bus.request(refer(net, "bruno", meetup_id=meetup.meetup_id), net.ctx("alice"))
    assert slip.status == "given" and slip.meetup_id == meetup.meetup_id
    assert slip.prospect == PROSPECT and slip.hub_id is None
    v = await refused(bus, referrals, refer(net, "chloe"), net.ctx("alice"), RuleViolation)
    assert v.rule == "referrals_between_members_who_met"
    # a meetup where they were not both present is not where they met
    v = await refused(
        bus,
        referrals,
        refer(net, "chloe", meetup_id=meetup.meetup_id),
        net.ctx("alice"),
        RuleViolation,
    )
    assert v.rule == "not_met_at_meetup"
    await refused(
        bus, referrals, refer(net, "bruno", meetup_id="no-such-meetup"), net.ctx("alice"), NotFound
    )

    # the window's edge: exactly 30 days after the lunch began, still allowed
    clock.advance(meetup.starts_at + timedelta(days=30) - clock.now())
    await bus.request(refer(net, "bruno"), net.ctx("alice"))
    clock.advance(timedelta(seconds=1))
    await refused(bus, referrals, refer(net, "bruno"), net.ctx("alice"), RuleViolation)

    # a confirmed one-to-one in the window counts (a date: its first day too)
    first_day = (clock.now() - timedelta(days=30)).date()
    logged = await bus.request(
        c.LogOneToOne(other_id=net.id("alice"), met_on=first_day), net.ctx("chloe")
    )
    # logged, not confirmed: counts for nothing
    await refused(bus, referrals, refer(net, "chloe"), net.ctx("alice"), RuleViolation)
    # only the other member confirms
    await refused(
        bus,
        referrals,
        c.ConfirmOneToOne(one_to_one_id=logged.one_to_one_id),
        net.ctx("chloe"),
        Forbidden,
    )
    confirmed = await bus.request(
        c.ConfirmOneToOne(one_to_one_id=logged.one_to_one_id), net.ctx("alice")
    )
    assert confirmed.status == "confirmed"
    assert await bus.request(c.ListOneToOnes(), net.ctx("alice")) == [confirmed]
    assert await bus.request(c.ListOneToOnes(), net.ctx("bruno")) == []
    await bus.request(refer(net, "chloe"), net.ctx("alice"))
    await bus.request(refer(net, "alice"), net.ctx("chloe"))  # either way
    # confirming again changes nothing; nobody else, of this network or another, may
    again = await bus.request(
        c.ConfirmOneToOne(one_to_one_id=logged.one_to_one_id), net.ctx("alice")
    )
    assert again == confirmed
    await refused(
        bus,
        referrals,
        c.DeclineOneToOne(one_to_one_id=logged.one_to_one_id),
        net.ctx("bruno"),
        Forbidden,
    )
    _, stranger = await create_network(bus, "pole-stranger", "s@stranger.example", "S")
    await eventually(lambda: _active(referrals, stranger.tenant_id, stranger.member_id))
    await refused(
        bus,
        referrals,
        c.ConfirmOneToOne(one_to_one_id=logged.one_to_one_id),
        as_member(stranger),
        NotFound,
    )
    anonymous = RequestContext(tenant_id=net.tenant.tenant_id)
    await refused(bus, referrals, refer(net, "bruno"), anonymous, Unauthenticated)
    clock.advance(timedelta(days=1))  # the one-to-one's day is out of the window
    await refused(bus, referrals, refer(net, "chloe"), net.ctx("alice"), RuleViolation)

    # the hub turns the rule off (HubRulesChanged): anyone may refer
    await bus.request(
        hc.ChangeRules(hub_id=net.hub.hub_id, changes=hc.RulesChanges(referrals_meeting_days=None)),
        net.ctx("admin"),
    )
    await eventually(lambda: meeting_days(referrals, net) is None)
    await bus.request(refer(net, "chloe"), net.ctx("alice"))

    # HubCreated again (redelivered after the change): applied once, the rule stays off
    hubs_reaction = consumer(referrals, "referrals-hubs")
    await republish(bus, f"quartier.evt.{net.tenant.tenant_id}.hubs.HubCreated", hubs_reaction)
    assert meeting_days(referrals, net) is None
    await bus.request(refer(net, "bruno"), net.ctx("chloe"))

    # an attendance corrected (Bruno was in fact excused), then the first
    # record redelivered: the correction stands
    await bus.request(
        hc.ChangeRules(hub_id=net.hub.hub_id, changes=hc.RulesChanges(referrals_meeting_days=365)),
        net.ctx("admin"),
    )
    await eventually(lambda: meeting_days(referrals, net) == 365)
    meetups_reaction = consumer(referrals, "referrals-meetups")
    subject = f"quartier.evt.{net.tenant.tenant_id}.events.AttendanceRecorded"
    js = bus.jetstream()
    first = await js.get_last_msg(STREAM, subject)  # Bruno present: the lunch's last entry
    handled = meetups_reaction.handled
    await bus.request(
        ec.RecordAttendance(
            meetup_id=meetup.meetup_id,
            entries=[ec.AttendanceRecordInput(member_id=net.id("bruno"), status="excused")],
        ),
        net.ctx("admin"),
    )
    await eventually(lambda: meetups_reaction.handled > handled)
    with referrals.engine.connect() as conn:
        rows = directory.meetup_attendance(conn, net.tenant.tenant_id, meetup.meetup_id)
    assert {r.member_id: r.present for r in rows}[net.id("bruno")] is False
    handled = meetups_reaction.handled
    await js.publish(first.subject, first.data, headers={"Nats-Msg-Id": "again-attendance"})
    await eventually(lambda: meetups_reaction.handled > handled)
    with referrals.engine.connect() as conn:
        rows = directory.meetup_attendance(conn, net.tenant.tenant_id, meetup.meetup_id)
    assert {r.member_id: r.present for r in rows}[net.id("bruno")] is False
    # Alice and Bruno met only at that meetup (and no one-to-one): refused now
    await refused(bus, referrals, refer(net, "bruno"), net.ctx("alice"), RuleViolation)


# -- ask the network first ------------------------------------------------------------------


async def test_a_need_goes_first_to_the_members_whose_offer_matches(
    referrals: ServiceHost, client_bus: Bus, clock: MovableClock, settings: Settings
) -> None:
    bus = client_bus
    net = await network(
        bus,
        referrals,
        "pole-need",
        {
            "alice": ("plumber", "urgent leaks and boilers"),
            "bruno": ("plumber", "bathrooms"),
            "chloe": ("lawyer", "contracts and leases"),
            "david": ("baker", "bread"),
        },
        rules=hc.Rules(admission_mode="open", non_competition=False),
    )
    posted = await bus.request(
        c.PostNeed(
            activity_codes=["plumber"],
            words="boilers",
            description="Our boiler broke down",
            deadline=clock.now().date() + timedelta(days=10),
        ),
        net.ctx("david"),
    )
    # identity's search: both plumbers, Alice first (her offer has the word too)
    assert posted.matches == [net.id("alice"), net.id("bruno")]
    assert posted.status == "open"
    assert posted.window_ends_at == clock.now() + timedelta(days=7)  # the default window

    # told by mail, once each, even when NeedPosted is redelivered
    def need_mails() -> list[Any]:
        return [
            m for m in read_mails(settings.mail_dir) if m["X-Quartier-Kind"] == "referrals-need"
        ]

    await eventually(lambda: len(need_mails()) == 2)
    to = sorted(str(m["To"]) for m in need_mails())
    assert to == ["Alice <alice@pole-need.example>", "Bruno <bruno@pole-need.example>"]
    message = need_mails()[0]
    assert message["Content-Language"] == "fr" and "David" in message["Subject"]
    assert "Our boiler broke down" in text_of(message)
    mail_reaction = consumer(referrals, "referrals-mail")
    await republish(bus, f"quartier.evt.{net.tenant.tenant_id}.referrals.NeedPosted", mail_reaction)
    await eventually(
        lambda: (
            [r.outcome for r in outcomes(referrals.engine, net.tenant.tenant_id)]
            == ["sent", "sent"]
        )
    )
    assert len(need_mails()) == 2

    # and listed for them, not for the others
    for name, listed in (("alice", 1), ("bruno", 1), ("chloe", 0)):
        page = await bus.request(c.ListNeeds(), net.ctx(name))
        assert page.total == listed
    mine = await bus.request(c.ListNeeds(mine=True), net.ctx("david"))
    assert [n.need_id for n in mine.items] == [posted.need_id]

    # Bruno answers; only David sees every answer
    await bus.request(
        c.AnswerNeed(need_id=posted.need_id, message="I can come tomorrow"), net.ctx("bruno")
    )
    await refused(
        bus,
        referrals,
        c.AnswerNeed(need_id=posted.need_id, message="again"),
        net.ctx("bruno"),
        QuartierError,
    )
    seen = await bus.request(c.GetNeed(need_id=posted.need_id), net.ctx("david"))
    assert [a.member_id for a in seen.answers] == [net.id("bruno")]
    seen = await bus.request(c.GetNeed(need_id=posted.need_id), net.ctx("alice"))
    assert seen.answers == []

    # released only once the window has passed, by its poster
    clock.advance(posted.window_ends_at - clock.now() - timedelta(seconds=1))
    early = await refused(
        bus, referrals, c.ReleaseNeed(need_id=posted.need_id), net.ctx("david"), RuleViolation
    )
    assert early.rule == "ask_the_network_first"
    clock.advance(timedelta(seconds=1))
    await refused(
        bus, referrals, c.ReleaseNeed(need_id=posted.need_id), net.ctx("alice"), Forbidden
    )
    released = await bus.request(c.ReleaseNeed(need_id=posted.need_id), net.ctx("david"))
    assert released.status == "released"
    await refused(
        bus,
        referrals,
        c.MarkNeedMet(need_id=posted.need_id, member_id=net.id("bruno")),
        net.ctx("david"),
        RuleViolation,
    )

    # a second need, met inside by Chloe; a tenant setting shortens the window
    await refused(
        bus,
        referrals,
        c.SetEngagementSettings(settings=c.EngagementSettings(need_window_days=2)),
        net.ctx("david"),
        Forbidden,
    )
    await bus.request(
        c.SetEngagementSettings(settings=c.EngagementSettings(need_window_days=2)),
        net.ctx("admin"),
    )
    lease = await bus.request(c.PostNeed(words="leases"), net.ctx("david"))
    assert lease.matches == [net.id("chloe")]
    assert lease.window_ends_at == clock.now() + timedelta(days=2)
    met = await bus.request(
        c.MarkNeedMet(need_id=lease.need_id, member_id=net.id("chloe")), net.ctx("david")
    )
    assert met.status == "met" and met.met_by == net.id("chloe")
    results = await bus.request(c.GetResults(scope="member"), net.ctx("david"))
    assert (results.needs_posted, results.needs_met_inside) == (2, 1)
    # the mail planned for Chloe, if not yet sent, is dropped: the need is met
    await eventually(
        lambda: all(r.done_at is not None for r in outcomes(referrals.engine, net.tenant.tenant_id))
    )
    assert outcomes(referrals.engine, net.tenant.tenant_id)[-1].outcome in (
        "sent",
        "skipped:need_closed",
    )

    # another network's member: its needs are not found
    _, stranger = await create_network(bus, "pole-else", "x@else.example", "X")
    await eventually(lambda: _active(referrals, stranger.tenant_id, stranger.member_id))
    for request in (
        c.GetNeed(need_id=lease.need_id),
        c.AnswerNeed(need_id=lease.need_id, message="me"),
        c.ReleaseNeed(need_id=lease.need_id),
        c.MarkNeedMet(need_id=lease.need_id, member_id=net.id("chloe")),
    ):
        await refused(bus, referrals, request, as_member(stranger), NotFound)
    assert (await bus.request(c.ListNeeds(), as_member(stranger))).total == 0

    # bad needs: nothing asked, nothing stored
    for bad in (
        c.PostNeed(activity_codes=["not-a-profession"]),
        c.PostNeed(words=" \u200b "),
        c.PostNeed(words="x" * 201),
        c.PostNeed(activity_codes=["plumber"] * 11),
        c.PostNeed(words="boilers", deadline=clock.now().date() - timedelta(days=1)),
        c.PostNeed(words="boilers", description="y" * 2001),
    ):
        await refused(bus, referrals, bad, net.ctx("david"), InvalidInput)


# -- results, engagement, and bad inputs -----------------------------------------------------


async def test_results_and_engagement_follow_attendance_and_bad_inputs_change_nothing(
    referrals: ServiceHost, client_bus: Bus, clock: MovableClock
) -> None:
    bus = client_bus
    net = await network(
        bus,
        referrals,
        "pole-core",
        {"alice": ("plumber", "leaks"), "bruno": ("baker", "bread"), "chloe": ("lawyer", "law")},
        rules=hc.Rules(admission_mode="open", non_competition=False),
    )
    # three lunches in three weeks: Alice at all three, Bruno at one, Chloe at none
    await lunch(bus, referrals, clock, net, ["alice", "bruno"], ["chloe"])
    for _ in range(2):
        clock.advance(timedelta(days=6))
        last = await lunch(bus, referrals, clock, net, ["alice"], ["bruno"])
    # the last one closes; Alice draws a mission card and does it
    closed = await bus.request(
        ec.CloseMeetup(meetup_id=last.meetup_id, next_local_start=local(clock.now(), 30)),
        net.ctx("admin"),
    )
    (draw,) = closed.draws
    assert draw.member_id == net.id("alice")
    await bus.request(ec.CompleteCard(draw_id=draw.draw_id), net.ctx("alice"))

    async def missions() -> int:
        r = await bus.request(c.GetResults(scope="member"), net.ctx("alice"))
        return r.missions_done

    assert await eventually(missions) == 1
    hub = await bus.request(c.GetHubEngagement(hub_id=net.hub.hub_id), net.ctx("bruno"))
    assert hub.core == [net.id("alice")]  # 3 meetups in 90 days
    by_member = {e.member_id: e for e in hub.members}
    assert by_member[net.id("alice")].meetups_in_core_window == 3
    assert by_member[net.id("bruno")].meetups_in_core_window == 1
    assert net.id("chloe") in hub.drifting and net.id("alice") not in hub.drifting
    light = {m.measure: m for m in by_member[net.id("alice")].measures}
    assert light["meetups"].value == 3 and light["meetups"].light == "red"  # below amber (6)
    # a tenant admin lowers the thresholds: the light says which measure set it
    lowered = c.SetEngagementSettings(
        settings=c.EngagementSettings(core_meetups=4, amber_meetups=3, green_meetups=3)
    )
    assert (await bus.request(lowered, net.ctx("admin"))).core_meetups == 4
    before = count(referrals)
    assert await bus.request(lowered, net.ctx("admin")) == lowered.settings  # again: nothing
    assert count(referrals) == before
    assert await bus.request(c.GetEngagementSettings(), net.ctx("bruno")) == lowered.settings
    hub = await bus.request(c.GetHubEngagement(hub_id=net.hub.hub_id), net.ctx("admin"))
    assert hub.core == []  # now 4 are needed
    alice = {e.member_id: e for e in hub.members}[net.id("alice")]
    assert {m.measure: m.light for m in alice.measures}["meetups"] == "green"
    # drifting: no meetup in 6 weeks
    clock.advance(timedelta(weeks=6, days=1))
    hub = await bus.request(c.GetHubEngagement(hub_id=net.hub.hub_id), net.ctx("admin"))
    assert net.id("alice") in hub.drifting

    # results: a won referral and its thanks, per member, hub and network
    slip = await bus.request(refer(net, "bruno"), net.ctx("alice"))
    bruno = net.ctx("bruno")
    for step in (c.AcceptReferral, c.MarkContacted):
        await bus.request(step(referral_id=slip.referral_id), bruno)
    won = await bus.request(
        c.MarkWon(referral_id=slip.referral_id, value=c.Money(amount=Decimal("1200.5"))), bruno
    )
    assert won.status == "won" and won.value == c.Money(amount=Decimal("1200.50"))
    assert str(won.value.amount) == "1200.50"  # the currency's decimals, not the store's
    mine = await bus.request(c.GetResults(scope="member"), net.ctx("alice"))
    assert mine.referrals_given == 1 and mine.value_given.items == [
        c.Money(amount=Decimal("1200.50"))
    ]
    assert str(mine.value_given.items[0].amount) == "1200.50"
    assert mine.meetups_attended == 3  # the last 90 days
    whole = await bus.request(  # the tenant admin: exact figures (a member's are coarsened)
        c.GetResults(scope="tenant", since=clock.now() - timedelta(days=120)), net.ctx("admin")
    )
    assert whole.meetups_attended == 4 and whole.referrals_won == 1
    # the hub's admin sees the slip whole; the stream carries no prospect nor text
    seen = await bus.request(c.GetSlip(referral_id=slip.referral_id), net.ctx("admin"))
    assert seen.prospect == PROSPECT and seen.value == won.value
    js = bus.jetstream()
    for kind in ("ReferralGiven", "ReferralWon", "ThanksRecorded"):
        subject = f"quartier.evt.{net.tenant.tenant_id}.referrals.{kind}"
        msg = await eventually(lambda s=subject: _last(js, s))
        raw = msg.data.decode()
        assert "Martin" not in raw and "oven" not in raw and "contact@" not in raw
    # Chloe cannot read the pair's slip nor its value, nor Alice's results
    await refused(
        bus, referrals, c.GetSlip(referral_id=slip.referral_id), net.ctx("chloe"), NotFound
    )
    await refused(
        bus,
        referrals,
        c.GetResults(scope="member", subject_id=net.id("alice")),
        net.ctx("chloe"),
        NotFound,
    )

    # another network: the same ids are not found there
    other_tenant, stranger = await create_network(bus, "pole-other", "x@other.example", "X")
    await eventually(lambda: _active(referrals, other_tenant.tenant_id, stranger.member_id))
    outsider = as_member(stranger)
    for request in (
        c.GetSlip(referral_id=slip.referral_id),
        c.AcceptReferral(referral_id=slip.referral_id),
        c.GiveReferral(receiver_id=net.id("bruno"), about="x", warmth=3, prospect=PROSPECT),
        c.GetHubEngagement(hub_id=net.hub.hub_id),
    ):
        await refused(bus, referrals, request, outsider, NotFound)

    # Chloe leaves her only hub: a former member, no referral nor one-to-one
    # with her; but a member who never joined a hub is a member still
    await bus.request(hc.LeaveHub(hub_id=net.hub.hub_id), net.ctx("chloe"))

    def chloe_former() -> bool:
        with referrals.engine.connect() as conn:
            return directory.is_former(conn, net.tenant.tenant_id, net.id("chloe"))

    await eventually(chloe_former)
    v = await refused(bus, referrals, refer(net, "chloe"), net.ctx("alice"), RuleViolation)
    assert v.rule == "former_member"
    v = await refused(
        bus,
        referrals,
        c.LogOneToOne(other_id=net.id("chloe"), met_on=clock.now().date()),
        net.ctx("alice"),
        RuleViolation,
    )
    assert v.rule == "former_member"
    newcomer = await add_member(
        bus, net.tenant.tenant_id, "eve@pole-core.example", card("Eve", "florist", work=IN_11E)
    )
    await eventually(lambda: _active(referrals, net.tenant.tenant_id, newcomer.member_id))
    await bus.request(
        c.GiveReferral(
            receiver_id=newcomer.member_id, about="flowers", warmth=2, prospect=PROSPECT
        ),
        net.ctx("alice"),
    )

    # invalid: each a typed error, nothing stored
    alice = net.ctx("alice")
    for bad, kind in (
        (refer(net, "alice"), RuleViolation),  # to themself
        (refer(net, "bruno", warmth=6), InvalidInput),
        (refer(net, "bruno", about="a" * 1001), InvalidInput),
        (refer(net, "bruno", prospect=None), InvalidInput),
        (refer(net, "bruno", prospect=c.Prospect(name="M", email="not-an-address")), InvalidInput),
        (refer(net, "bruno", about="bad\u202etext"), InvalidInput),
        (c.GiveReferral(receiver_id="nobody", about="x", warmth=3, prospect=PROSPECT), NotFound),
        (
            c.RecordThanks(
                giver_id=net.id("bruno"), value=c.Money(amount=Decimal("-5")), about="x"
            ),
            InvalidInput,
        ),
        (
            c.RecordThanks(
                giver_id=net.id("bruno"), value=c.Money(amount=Decimal("1e12")), about="x"
            ),
            InvalidInput,
        ),
        (
            c.RecordThanks(
                giver_id=net.id("bruno"),
                value=c.Money(amount=Decimal("5"), currency="XYZ"),
                about="x",
            ),
            InvalidInput,
        ),
        (
            c.RecordThanks(
                giver_id=net.id("bruno"), value=c.Money(amount=Decimal("5.001")), about="x"
            ),
            InvalidInput,
        ),
        (
            c.LogOneToOne(other_id=net.id("bruno"), met_on=clock.now().date() + timedelta(days=1)),
            InvalidInput,
        ),
        (c.SetEngagementSettings(settings=c.EngagementSettings(core_days=1)), Forbidden),
    ):
        await refused(bus, referrals, bad, alice, kind)
    # unauthorised: only the receiver moves a slip; a won slip does not move again
    await refused(bus, referrals, c.MarkLost(referral_id=slip.referral_id), alice, Forbidden)
    await refused(bus, referrals, c.MarkLost(referral_id=slip.referral_id), bruno, RuleViolation)
    await refused(
        bus,
        referrals,
        c.SetEngagementSettings(settings=c.EngagementSettings(core_days=1)),
        net.ctx("admin"),
        InvalidInput,
    )

    # repeated: the same idempotency key gets the first outcome, nothing more
    keyed = replace(alice, idempotency_key="thanks-bruno-1")
    thanks = c.RecordThanks(
        giver_id=net.id("bruno"), value=c.Money(amount=Decimal("80"), currency="USD"), about="bread"
    )
    first = await bus.request(thanks, keyed)
    before = count(referrals)
    assert await bus.request(thanks, keyed) == first
    assert count(referrals) == before
    for request in (
        refer(net, "bruno", about="another one"),
        c.LogOneToOne(other_id=net.id("bruno"), met_on=clock.now().date()),
        c.PostNeed(words="bread"),
    ):
        keyed = replace(alice, idempotency_key=f"again-{type(request).__name__}")
        first_reply = await bus.request(request, keyed)
        before = count(referrals)
        assert await bus.request(request, keyed) == first_reply
        assert count(referrals) == before


async def _last(js: Any, subject: str) -> Any:
    try:
        return await js.get_last_msg(STREAM, subject)
    except nats.js.errors.NotFoundError:  # not relayed yet
        return None


def _active(referrals: ServiceHost, tenant_id: str, member_id: str) -> bool:
    with referrals.engine.connect() as conn:
        return directory.is_active_member(conn, tenant_id, member_id)
