"""Helpers for tests of the meetups service and its mails: starting it beside
the services it needs, a network with an open hub and members, and reading
the mail drop."""

from __future__ import annotations

import email.parser
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from services import registry
from services.events import contract as ec
from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.host import ServiceHost
from services.runtime.tenancy import RequestContext
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.services import Services
from tests.support.waiting import eventually

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}
ACTIVITIES = ["plumber", "baker", "lawyer", "graphic-designer", "photographer", "florist"]
VENUE = ec.Venue(name="Le Bistrot Voltaire", address="12 boulevard Voltaire")
OPEN_RULES = hc.Rules(admission_mode="open", non_competition=False)
LINK = re.compile(r"/links/([a-z0-9-]+)/([A-Za-z0-9_.-]+)")
UNSUBSCRIBE = re.compile(r"/unsubscribe/([a-z0-9-]+)/([A-Za-z0-9_.-]+)")
PARSER = email.parser.BytesParser(policy=email.policy.default)


async def start_events(services: Services) -> ServiceHost:
    """The meetups service, after identity and hubs. Until it has its line
    in services/registry.py (with its GraphQL module), it is built here."""
    if "events" in registry.BY_NAME:
        return await services.start("events")
    await services.start("hubs")
    if "events" not in services.hosts:
        from services.events.service import build

        host = build(services.settings, clock=services.clock)
        await host.start()
        services.hosts["events"] = host
    return services.hosts["events"]


@dataclass
class Club:
    """A network with an open hub: its admin (the hub's co-admin) and members."""

    tenant: idc.Tenant
    admin: idc.Session
    members: list[idc.Session]
    hub: hc.Hub

    @property
    def everyone(self) -> list[idc.Session]:
        return [self.admin, *self.members]


async def open_club(
    bus: Bus, events: ServiceHost, slug: str, names: list[str], hub_name: str = "Voltaire"
) -> Club:
    """A network `slug` whose admin opens a hub that `names` join (addresses
    `<name>@<slug>.example`); returns once meetups knows every member."""
    tenant, admin = await create_network(bus, slug, f"admin@{slug}.example", f"Admin {slug}")
    hub = await bus.request(
        hc.CreateHub(name=hub_name, kind="neighbourhood", area=VOLTAIRE, rules=OPEN_RULES),
        as_member(admin),
    )
    members = []
    for name in names:
        session = await add_member(
            bus, tenant.tenant_id, f"{name.lower()}@{slug}.example", card(name, work=IN_11E)
        )
        await bus.request(hc.JoinHub(hub_id=hub.hub_id), as_member(session))
        members.append(session)
    club = Club(tenant, admin, members, hub)
    await known_to_meetups(events, club)
    return club


async def known_to_meetups(events: ServiceHost, club: Club) -> None:
    """Wait until meetups' hub directory (kept from hubs' events) has them all."""
    from services.events.views import directory

    engine = events.context["engine"]
    wanted = {s.member_id for s in club.everyone}

    def known() -> bool:
        with engine.connect() as conn:
            found = directory.hub_members(conn, club.tenant.tenant_id, club.hub.hub_id)
        return wanted <= set(found)

    await eventually(known)


def local(now: datetime, days: float, hour: int = 12, minute: int = 30) -> datetime:
    """A naive local start `days` after `now` at hour:minute (Paris)."""
    day = (now + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, minute)


def read_mails(mail_dir: Path) -> list[EmailMessage]:
    """Every message of the mail drop, in sending order."""
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = PARSER.parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def meetup_mails(mail_dir: Path, kind: str | None = None) -> list[EmailMessage]:
    """The meetups service's mails (of one kind: X-Quartier-Kind)."""
    return [
        m
        for m in read_mails(mail_dir)
        if str(m.get("X-Quartier-Kind", "")).startswith("meetup-")
        and (kind is None or m["X-Quartier-Kind"] == f"meetup-{kind}")
    ]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    content: Any = body.get_content()
    return str(content)


def ics_of(message: EmailMessage) -> str | None:
    for part in message.iter_attachments():
        if part.get_content_type() == "text/calendar":
            content: Any = part.get_content()
            return content if isinstance(content, str) else content.decode()
    return None


def links_of(message: EmailMessage) -> list[tuple[str, str]]:
    """(slug, token) of each answer link in the text, in order."""
    return LINK.findall(text_of(message))


async def mails_settled(events: ServiceHost) -> bool:
    """Every event of meetups is on the stream, its mail planner has handled
    all of them, and its outbox is empty: no mail is on its way."""
    from services.events.notify import outbox
    from services.runtime.stream import STREAM

    app = events.context["app"]
    relay = events.relays[0]
    if getattr(relay, "_position", None) != app.max_notification_id():
        return False
    info = await events.bus.jetstream().consumer_info(STREAM, "events-mail")
    if info.num_pending or info.num_ack_pending:
        return False
    with events.context["engine"].connect() as conn:
        pending = conn.execute(outbox.select().where(outbox.c.done_at.is_(None))).first()
    return pending is None


@dataclass
class GivenHub:
    tenant: idc.Tenant
    admin: idc.Session
    members: list[idc.Session]  # admitted to the hub, not co-admins
    hub: hc.Hub

    def ctx(self, who: idc.Session) -> RequestContext:
        return as_member(who)


async def given_hub(
    bus: Bus, events: ServiceHost, slug: str = "pole-meet", members: int = 4
) -> GivenHub:
    """A network, its admin (founder and co-admin of the hub) and `members`
    members of different activities admitted to the hub (an open hub: they
    join), known to the meetups service's hub directory."""
    tenant, admin = await create_network(bus, slug)
    hub = await bus.request(
        hc.CreateHub(name="Cercle Voltaire", kind="neighbourhood", area=VOLTAIRE, rules=OPEN_RULES),
        as_member(admin),
    )
    sessions = []
    for i in range(members):
        s = await add_member(
            bus,
            tenant.tenant_id,
            f"m{i}@{slug}.example",
            card(f"Member {i}", ACTIVITIES[i % 6], work=IN_11E),
        )
        await bus.request(hc.JoinHub(hub_id=hub.hub_id), as_member(s))
        sessions.append(s)
    await members_known(events, tenant.tenant_id, hub.hub_id, 1 + members)
    return GivenHub(tenant=tenant, admin=admin, members=sessions, hub=hub)


async def members_known(events: ServiceHost, tenant_id: str, hub_id: str, count: int) -> None:
    """Wait until the meetups service's directory knows `count` members of the hub."""
    from services.events.views import directory

    def known() -> Any:
        with events.engine.connect() as conn:
            return len(directory.hub_members(conn, tenant_id, hub_id)) >= count

    await eventually(known)
