"""Given a network with a hub and members (over the bus, as the gateway
would ask), for the meetups service's tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.host import ServiceHost
from services.runtime.tenancy import RequestContext
from tests.support.identity import add_member, as_member, card, create_network
from tests.support.waiting import eventually

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}
ACTIVITIES = ["plumber", "baker", "lawyer", "graphic-designer", "photographer", "florist"]


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
    members admitted to the hub (an open hub: they join), known to the meetups
    service's hub directory."""
    tenant, admin = await create_network(bus, slug)
    hub = await bus.request(
        hc.CreateHub(
            name="Cercle Voltaire",
            kind="neighbourhood",
            area=VOLTAIRE,
            rules=hc.Rules(admission_mode="open", non_competition=False),
        ),
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
    await known_to_meetups(events, tenant.tenant_id, hub.hub_id, 1 + members)
    return GivenHub(tenant=tenant, admin=admin, members=sessions, hub=hub)


async def known_to_meetups(events: ServiceHost, tenant_id: str, hub_id: str, count: int) -> None:
    """Wait until the meetups service's directory knows the hub's members."""
    from services.events.views import directory

    def known() -> Any:
        with events.engine.connect() as conn:
            return len(directory.hub_members(conn, tenant_id, hub_id)) >= count

    await eventually(known)
