"""The runtime's text policy holds for every service: bad text in any field
of any request is refused with a typed error naming the field, and nothing
is stored (on PostgreSQL too, where a NUL once stopped a projection for every
tenant)."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.errors import InvalidCredentials, InvalidInput
from services.runtime.host import ServiceHost
from services.runtime.tenancy import RequestContext
from tests.support.identity import PASSWORD, add_member, as_member, card, create_network

pytestmark = pytest.mark.asyncio

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
BAD = ["Nul\u0000Tester", "line\u0085break", "abc\u202etxt.exe", "\u2066isolate", "x\ufffe"]


async def event_counts(*hosts: ServiceHost) -> list[int]:
    return [host.context["app"].max_notification_id() for host in hosts]


async def test_bad_text_is_refused_in_every_service_and_nothing_is_stored(
    identity: ServiceHost, hubs: ServiceHost, client_bus: Bus
) -> None:
    _, admin = await create_network(client_bus, "pole-text")
    hub = await client_bus.request(
        hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE), as_member(admin)
    )
    before = await event_counts(identity, hubs)
    for bad in BAD:
        attempts: list[tuple[Any, str]] = [
            (
                idc.UpdateProfileCard(changes=idc.CardChanges(display_name=bad)),
                "changes.display_name",
            ),
            (
                idc.UpdateProfileCard(changes=idc.CardChanges(links=["https://a.example", bad])),
                "changes.links",
            ),
            (
                idc.UpdateProfileCard(changes=idc.CardChanges(work=idc.Place(postcode=bad))),
                "changes.work.postcode",
            ),
            (hc.CreateHub(name=bad, kind="neighbourhood", area=VOLTAIRE), "name"),
            (
                hc.CreateHub(name="ok", kind="neighbourhood", area=hc.Area(postcodes=[bad])),
                "area.postcodes",
            ),
            (hc.NominateCandidate(hub_id=hub.hub_id, email="a@b.example", note=bad), "note"),
            (hc.ChangeRules(hub_id=hub.hub_id, changes=hc.RulesChanges(), reason=bad), "reason"),
        ]
        for request, field in attempts:
            with pytest.raises(InvalidInput) as info:
                await client_bus.request(request, as_member(admin))
            assert info.value.field == field, (request, info.value)
    assert await event_counts(identity, hubs) == before


async def test_names_of_only_invisible_characters_are_refused(
    identity: ServiceHost, client_bus: Bus
) -> None:
    _, admin = await create_network(client_bus, "pole-invisible")
    for invisible in ("\u200b", "\u200b\u200d", "\u00a0\ufeff"):
        with pytest.raises(InvalidInput) as info:
            await client_bus.request(
                idc.UpdateProfileCard(changes=idc.CardChanges(display_name=invisible)),
                as_member(admin),
            )
        assert info.value.field == "display_name"


async def test_one_address_whatever_its_unicode_form(
    identity: ServiceHost, client_bus: Bus
) -> None:
    tenant, _ = await create_network(client_bus, "pole-nfc")
    composed = "hélène@pole.example"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    await add_member(client_bus, tenant.tenant_id, decomposed, card("Hélène", "baker"))
    for address in (composed, decomposed):
        session = await client_bus.request(
            idc.Login(tenant_slug="pole-nfc", email=address, password=PASSWORD), RequestContext()
        )
        assert session.tenant_id == tenant.tenant_id
    with pytest.raises(InvalidCredentials):
        await client_bus.request(
            idc.Login(tenant_slug="pole-nfc", email=composed, password="wrong password!"),
            RequestContext(),
        )
