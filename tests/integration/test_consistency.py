"""A question asked in reaction to an event sees that event's effects: the
relay publishes an event only once its service's read models reflect it. The
window is made wide on purpose — identity's projection of a new member takes
a second — so that without the rule hubs would ask identity about a member
its read model does not yet know, and refuse the candidate as having no
place on their card (what happened about 1 time in 5)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from services.hubs import contract as hc
from services.identity import contract as idc
from services.identity.domain import Member
from services.runtime.bus import Bus
from services.runtime.host import ServiceHost
from services.runtime.tenancy import RequestContext
from tests.support.identity import PASSWORD, as_member, card, create_network, mailed_tokens
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}
SLOW = 1.0  # seconds identity's projection takes for a new member


async def test_a_reaction_sees_the_effects_of_the_event_it_reacts_to(
    identity: ServiceHost, hubs: ServiceHost, client_bus: Bus, settings: Any
) -> None:
    projector = identity.context["projector"]
    apply = projector.projection.apply

    def slow_apply(conn: Any, event: Any) -> None:
        if isinstance(event, Member.Joined) and event.card.get("display_name") == "Neighbour":
            time.sleep(SLOW)  # a slow read model, while the event is already stored
        apply(conn, event)

    projector.projection.apply = slow_apply
    _, admin = await create_network(client_bus, "pole-consistent")
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    nomination = await client_bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, email="neighbour@pole.example"), as_member(admin)
    )
    token = mailed_tokens(settings.mail_dir)["neighbour@pole.example"]
    await client_bus.request(
        idc.AcceptInvitation(
            token=token, password=PASSWORD, card=card("Neighbour", "baker", work=IN_11E)
        ),
        RequestContext(),
    )

    async def decided() -> hc.Nomination | None:
        n = await client_bus.request(
            hc.GetNomination(hub_id=hub.hub_id, nomination_id=nomination.nomination_id),
            as_member(admin),
        )
        return n if n.status != "invited" else None

    n = await eventually(decided, timeout=20)
    assert n.status == "open", (n.status, n.decision_reason)  # inside the area: the window opens
