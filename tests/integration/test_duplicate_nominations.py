"""The same candidate nominated twice by e-mail (in any letter case, by the
same or another sponsor, or concurrently) makes one nomination and one mail:
identity answers its pending invitation to the address, and the hub refuses a
second pending nomination of that invitation with a Conflict (as it does for a
member nominated twice). Issue #13, "retries must be safe"."""

from __future__ import annotations

import asyncio
import email
from pathlib import Path

import pytest

from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.errors import Conflict
from services.runtime.host import ServiceHost
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext
from tests.support.identity import (
    PASSWORD,
    add_member,
    as_member,
    card,
    create_network,
    mailed_tokens,
    operator,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}


def invitations_to(mail_dir: Path, address: str) -> int:
    count = 0
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes())
        if str(message["To"]).lower() == address and message["X-Quartier-Kind"] == "invitation":
            count += 1
    return count


async def test_an_address_nominated_twice_in_any_case_is_one_nomination_and_one_mail(
    hubs: ServiceHost, client_bus: Bus, settings: Settings
) -> None:
    tenant, admin = await create_network(client_bus, "pole-dup")
    sponsor = await add_member(
        client_bus, tenant.tenant_id, "sam@dup.example", card("Sam", "baker", work=IN_11E)
    )
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    sam = await client_bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=sponsor.member_id), as_member(admin)
    )
    await client_bus.request(
        hc.AdmitCandidate(hub_id=hub.hub_id, nomination_id=sam.nomination_id), as_member(admin)
    )
    first = await client_bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, email="Lea@Dup.example"), as_member(admin)
    )
    for address, by in (
        ("lea@dup.example", admin),  # a retry, in other letter cases
        ("LEA@DUP.EXAMPLE", admin),
        (" lea@dup.EXAMPLE ", sponsor),  # another sponsor
    ):
        with pytest.raises(Conflict, match="already nominated"):
            await client_bus.request(
                hc.NominateCandidate(hub_id=hub.hub_id, email=address), as_member(by)
            )
    listed = await client_bus.request(hc.ListNominations(hub_id=hub.hub_id), as_member(admin))
    assert [n.nomination_id for n in listed if n.candidate_id is None] == [first.nomination_id]
    assert invitations_to(settings.mail_dir, "lea@dup.example") == 1
    pending = await client_bus.request(idc.ListInvitations(status="pending"), as_member(admin))
    assert [i.email.lower() for i in pending.items].count("lea@dup.example") == 1


async def test_concurrent_nominations_of_one_address_make_one(
    hubs: ServiceHost, client_bus: Bus, settings: Settings
) -> None:
    _, admin = await create_network(client_bus, "pole-dup2")
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    answers = await asyncio.gather(
        *(
            client_bus.request(
                hc.NominateCandidate(hub_id=hub.hub_id, email=address), as_member(admin)
            )
            for address in ("max@dup2.example", "Max@dup2.example", "MAX@dup2.example")
        ),
        return_exceptions=True,
    )
    made = [a for a in answers if isinstance(a, hc.Nomination)]
    assert len(made) == 1, answers
    assert all(isinstance(a, hc.Nomination | Conflict) for a in answers), answers
    listed = await client_bus.request(hc.ListNominations(hub_id=hub.hub_id), as_member(admin))
    assert len(listed) == 1
    assert invitations_to(settings.mail_dir, "max@dup2.example") == 1


async def test_the_same_address_may_be_nominated_to_two_hubs_with_one_invitation(
    hubs: ServiceHost, client_bus: Bus, settings: Settings
) -> None:
    tenant, admin = await create_network(client_bus, "pole-dup3")
    first_hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    second_hub = await client_bus.request(
        hc.CreateHub(name="Bakers", kind="trade_club", area=VOLTAIRE), as_member(admin)
    )
    one = await client_bus.request(
        hc.NominateCandidate(hub_id=first_hub.hub_id, email="noa@dup3.example"), as_member(admin)
    )
    two = await client_bus.request(
        hc.NominateCandidate(hub_id=second_hub.hub_id, email="Noa@dup3.example"), as_member(admin)
    )
    assert one.nomination_id != two.nomination_id
    assert invitations_to(settings.mail_dir, "noa@dup3.example") == 1
    # the operator's own invitation of the pending address answers the same one
    sent = await client_bus.request(
        idc.InviteMember(email="NOA@dup3.example"), operator(tenant.tenant_id)
    )
    assert sent.token is None
    assert invitations_to(settings.mail_dir, "noa@dup3.example") == 1
    # when she joins, both hubs' nominations go on (none is left behind)
    await client_bus.request(
        idc.AcceptInvitation(
            token=mailed_tokens(settings.mail_dir)["noa@dup3.example"],
            password=PASSWORD,
            card=card("Noa", "baker", work=IN_11E),
        ),
        RequestContext(),
    )

    async def both_open() -> bool:
        statuses = [
            (
                await client_bus.request(
                    hc.GetNomination(hub_id=hub_id, nomination_id=n.nomination_id),
                    as_member(admin),
                )
            ).status
            for hub_id, n in ((first_hub.hub_id, one), (second_hub.hub_id, two))
        ]
        return statuses == ["open", "open"]

    await eventually(both_open)
