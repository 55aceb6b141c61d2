"""The erasure search (issue #10): a member writes unique marker strings in
every personal field they can reach — their card and address, a hub
nomination's note, a visitor they bring, a workshop's description, the name
of who stood in for them, a referral's prospect and text, a need, an answer,
a refusal's reason, thanks — is erased, and then no marker is left in any
SQLite file (raw bytes, with its -wal and -shm), any table of the PostgreSQL
schemas used, the JetStream store directory or the data directory (mail
drop decoded too). Other members' ledgers and counts do not change and the
member reads as a former member (docs/erasure.md). One system start."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from infra.nats_server import NatsServer
from services.events import contract as ec
from services.hubs import contract as hc
from services.identity import contract as idc
from services.referrals import contract as rc
from services.runtime.bus import Bus
from services.runtime.clock import MovableClock
from services.runtime.messages import Actor
from services.runtime.personal import mail_text
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.meetups import IN_11E, OPEN_RULES, VENUE, VOLTAIRE, local, members_known
from tests.support.services import Services

pytestmark = pytest.mark.asyncio

M = "qzv7"  # every marker starts with it: nothing else in a store does
MARKERS = {
    "name": f"{M}name",
    "email": f"{M}mail",
    "business": f"{M}business",
    "activity": f"{M}activity",
    "offers": f"{M}offers",
    "seeks": f"{M}seeks",
    "available": f"{M}available",
    "bio": f"{M}bio",
    "link": f"{M}link",
    "postcode": "Q7ZV9",
    "note": f"{M}note",
    "visitor_name": f"{M}visitorname",
    "visitor_email": f"{M}visitormail",
    "workshop": f"{M}workshop",
    "substitute": f"{M}substitute",
    "about": f"{M}about",
    "prospect_name": f"{M}prospectname",
    "prospect_company": f"{M}prospectco",
    "prospect_email": f"{M}prospectmail",
    "prospect_phone": "+33 7 77 13 57 91",
    "need_words": f"{M}needwords",
    "need_text": f"{M}needtext",
    "answer": f"{M}answer",
    "decline": f"{M}decline",
    "thanks": f"{M}thanks",
    "exception": f"{M}exception",
}


def found_in(data: bytes) -> set[str]:
    low = data.lower()
    return {k for k, v in MARKERS.items() if v.lower().encode() in low}


def search_files(root: Path) -> dict[str, set[str]]:
    """Every file under `root`, raw bytes (mails decoded as well)."""
    hits: dict[str, set[str]] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        found = found_in(data)
        if path.suffix == ".eml":
            found |= found_in(mail_text(data).encode())
        if found:
            hits[str(path.relative_to(root))] = found
    return hits


def search_postgres(settings: Settings) -> dict[str, set[str]]:
    """Every row of every table of this run's schemas, bytes decoded."""
    assert settings.database_url
    url = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    hits: dict[str, set[str]] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema LIKE %s AND table_type = 'BASE TABLE'",
            (settings.db_schema_prefix + "%",),
        ).fetchall()
        assert tables
        for schema, table in tables:
            query = sql.SQL("SELECT * FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            for row in conn.execute(query):
                for value in row:
                    data = bytes(value) if isinstance(value, bytes | memoryview) else str(value)
                    found = found_in(data if isinstance(data, bytes) else data.encode())
                    if found:
                        hits.setdefault(f"{schema}.{table}", set()).update(found)
    return hits


def as_admin_of(session: idc.Session) -> RequestContext:
    return RequestContext(
        tenant_id=session.tenant_id,
        actor=Actor(
            kind="member",
            member_id=session.member_id,
            tenant_id=session.tenant_id,
            roles=("tenant_admin",),
        ),
    )


async def test_no_marker_of_an_erased_member_remains_anywhere(
    services: Services,
    settings: Settings,
    clock: MovableClock,
    client_bus: Bus,
    request: pytest.FixtureRequest,
) -> None:
    await services.start("referrals")  # and what it needs: identity, hubs, meetups
    hosts = services.hosts
    bus = client_bus
    tenant, admin = await create_network(bus, "erase-all", "admin@erase-all.example")
    tid = tenant.tenant_id
    adm = as_admin_of(admin)
    subject = await add_member(
        bus,
        tid,
        f"{MARKERS['email']}@example.org",
        card(
            MARKERS["name"],
            "photographer",
            business_name=MARKERS["business"],
            activity_text=MARKERS["activity"],
            offers=MARKERS["offers"],
            seeks=MARKERS["seeks"],
            available_for=MARKERS["available"],
            bio=MARKERS["bio"],
            links=[f"https://{MARKERS['link']}.example.org/"],
            work={**IN_11E, "postcode": MARKERS["postcode"]},
        ),
    )
    other = await add_member(
        bus, tid, "other@erase-all.example", card("Olga", "baker", work=IN_11E)
    )
    third = await add_member(
        bus, tid, "third@erase-all.example", card("Theo", "lawyer", work=IN_11E)
    )
    me, them = as_member(subject), as_member(other)

    # hubs: an open hub; the subject co-opts a member with a note
    hub = await bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE, rules=OPEN_RULES), adm
    )
    for session in (subject, other):
        await bus.request(hc.JoinHub(hub_id=hub.hub_id), as_member(session))
    await bus.request(
        hc.NominateCandidate(
            hub_id=hub.hub_id, candidate_id=third.member_id, note=f"{MARKERS['note']} a friend"
        ),
        me,
    )
    # an admin nominates the subject to another hub, with an exception reason about them
    club = await bus.request(
        hc.CreateHub(name="Club photo", kind="trade_club", area=VOLTAIRE, rules=hc.Rules()), adm
    )
    await bus.request(
        hc.NominateCandidate(
            hub_id=club.hub_id,
            candidate_id=subject.member_id,
            note="welcome",
            exception_reason=f"{MARKERS['exception']} the second one",
        ),
        adm,
    )
    await members_known(hosts["events"], tid, hub.hub_id, 4)

    # meetups: a visitor brought by the subject, a workshop, a substitute
    meetup = await bus.request(
        ec.ScheduleMeetup(
            hub_id=hub.hub_id, local_start=local(clock.now(), 1), venue=VENUE, title="Lunch"
        ),
        adm,
    )
    await bus.request(
        ec.InviteVisitor(
            meetup_id=meetup.meetup_id,
            name=MARKERS["visitor_name"],
            email=f"{MARKERS['visitor_email']}@example.net",
        ),
        me,
    )
    await bus.request(
        ec.ProposeWorkshop(hub_id=hub.hub_id, topic="Light", description=MARKERS["workshop"]), me
    )
    clock.advance(meetup.starts_at - clock.now() + timedelta(minutes=5))
    await bus.request(
        ec.RecordAttendance(
            meetup_id=meetup.meetup_id,
            entries=[
                ec.AttendanceRecordInput(
                    member_id=subject.member_id, status="replaced", substitute=MARKERS["substitute"]
                ),
                ec.AttendanceRecordInput(member_id=other.member_id, status="present"),
            ],
        ),
        adm,
    )

    # referrals: a slip with a prospect (with an idempotency key: its reply is kept),
    # a need, an answer, a refusal's reason, thanks
    given = await bus.request(
        rc.GiveReferral(
            receiver_id=other.member_id,
            about=MARKERS["about"],
            warmth=4,
            prospect=rc.Prospect(
                name=MARKERS["prospect_name"],
                company=MARKERS["prospect_company"],
                email=f"{MARKERS['prospect_email']}@example.com",
                phone=MARKERS["prospect_phone"],
            ),
        ),
        RequestContext(tenant_id=tid, actor=me.actor, idempotency_key="erase-all-slip-1"),
    )
    await bus.request(rc.AcceptReferral(referral_id=given.referral_id), them)
    await bus.request(rc.MarkContacted(referral_id=given.referral_id), them)
    await bus.request(
        rc.MarkWon(
            referral_id=given.referral_id, value=rc.Money(amount=Decimal("1200"), currency="EUR")
        ),
        them,
    )
    offered = await bus.request(
        rc.GiveReferral(
            receiver_id=subject.member_id,
            about="a lead from Olga",
            warmth=2,
            prospect=rc.Prospect(name="Someone Else"),
        ),
        them,
    )
    await bus.request(
        rc.DeclineReferral(referral_id=offered.referral_id, reason=MARKERS["decline"]), me
    )
    await bus.request(
        rc.PostNeed(
            activity_codes=["baker"], words=MARKERS["need_words"], description=MARKERS["need_text"]
        ),
        me,
    )
    their_need = await bus.request(
        rc.PostNeed(activity_codes=["photographer"], words="photos", description="a shoot"), them
    )
    await bus.request(rc.AnswerNeed(need_id=their_need.need_id, message=MARKERS["answer"]), me)
    await bus.request(
        rc.RecordThanks(
            giver_id=other.member_id,
            value=rc.Money(amount=Decimal("300"), currency="EUR"),
            about=MARKERS["thanks"],
        ),
        me,
    )
    await services.settle()

    data_dir = Path(settings.data_dir)
    nats: NatsServer = request.getfixturevalue("nats_server")
    before = search_files(data_dir)
    if settings.database_url:
        before |= search_postgres(settings)
    reached = set().union(*before.values())
    # the markers were written where the search looks (else it would prove nothing)
    assert {"name", "email", "prospect_name", "need_text", "visitor_name", "exception"} <= reached
    results_before = await bus.request(
        rc.GetResults(scope="member", subject_id=other.member_id), adm
    )
    hub_before = await bus.request(hc.GetHub(hub_id=hub.hub_id), adm)

    done = await bus.request(idc.RequestErasure(member_id=subject.member_id), adm)
    assert done.status == "completed"
    await services.settle()

    left = search_files(data_dir) | {
        f"nats:{k}": v for k, v in search_files(nats.store_dir).items()
    }
    if settings.database_url:
        left |= search_postgres(settings)
    assert left == {}

    # other members' ledgers and the counts are as they were
    results_after = await bus.request(
        rc.GetResults(scope="member", subject_id=other.member_id), adm
    )
    assert results_after == results_before
    hub_after = await bus.request(hc.GetHub(hub_id=hub.hub_id), adm)
    assert hub_after.member_count == hub_before.member_count
    slip = await bus.request(rc.GetSlip(referral_id=given.referral_id), them)
    assert slip.status == "won" and slip.prospect is None and slip.about == ""
    cards = await bus.request(idc.GetMembers(member_ids=[subject.member_id]), them)
    # named in the network's locale (French by default); no activity either
    assert cards[0].display_name == "ancien membre" and cards[0].erased
    assert cards[0].activity_code is None and cards[0].activity_label is None
