"""Members and their profile cards: the DataLoader other services' modules
show members through, reading members (the signed-in one, one by id, a
search by activity, words and distance), and updating one's own card."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.context import Context
from gateway.kit import (
    Connection,
    ask,
    command,
    connection,
    public,
    public_errors,
    require_member,
    result_union,
)
from gateway.nodes import Node, from_global_id, parse_page, split_raw_id, to_global_id
from services.identity import contract as c


def member_loader(info: Info[Context, Any]) -> DataLoader[str, c.MemberCard | None]:
    ctx = info.context

    def make() -> DataLoader[str, c.MemberCard | None]:
        async def load(ids: list[str]) -> list[c.MemberCard | None]:
            rctx = ctx.request_context()
            cards = await ctx.ask(c.GetMembers(member_ids=list(ids)), rctx)
            by_id = {card.member_id: card for card in cards}
            return [by_id.get(i) for i in ids]

        return DataLoader(load_fn=load, max_batch_size=200)

    return ctx.loader("identity.members", make)


async def load_member(info: Info[Context, Any], member_id: str | None) -> Member | None:
    if not member_id:
        return None
    with public_errors():
        card = await member_loader(info).load(member_id)
    return Member.from_card(card) if card else None


async def load_members(info: Info[Context, Any], member_ids: list[str]) -> list[Member]:
    """Several members in one batch, in order; unknown ids are left out."""
    with public_errors():
        cards = await member_loader(info).load_many(member_ids)
    return [Member.from_card(card) for card in cards if card]


# -- types ---------------------------------------------------------------------


@strawberry.type(
    description="A point and/or a postcode. Coordinates are shown only to their owner."
)
class Place:
    lat: float | None
    lon: float | None
    postcode: str | None


@strawberry.type(
    description="A member and their profile card (visible to members of the same network)."
)
class Member(Node):
    member_id: strawberry.ID = strawberry.field(
        description="The member's UUID, as on the event stream."
    )
    display_name: str
    business_name: str
    activity_code: str | None
    activity_label: str | None
    activity_text: str
    offers: str = strawberry.field(description='"I offer"')
    seeks: str = strawberry.field(description='"I seek"')
    available_for: str = strawberry.field(description='"I am available for"')
    bio: str
    links: list[str]
    work_postcode: str | None
    home_postcode: str | None
    roles: list[str]
    joined_at: datetime
    email: str | None = strawberry.field(
        description="Only for the member themself and tenant admins."
    )
    work: Place | None = strawberry.field(description="Only for the member themself.")
    home: Place | None = strawberry.field(description="Only for the member themself.")
    distance_km: float | None = strawberry.field(
        description="In a search near a point: distance of the nearer of work and home, rounded."
    )
    erased: bool = strawberry.field(
        description=(
            "A former member whose personal data was erased: the name reads "
            '"former member" in the network\'s language, the card is empty.'
        )
    )

    @strawberry.field
    def is_tenant_admin(self) -> bool:
        return "tenant_admin" in self.roles

    @classmethod
    def from_card(cls, card: c.MemberCard) -> Member:
        return cls(
            id=to_global_id("Member", card.member_id),
            member_id=strawberry.ID(card.member_id),
            display_name=card.display_name,
            business_name=card.business_name,
            activity_code=card.activity_code,
            activity_label=card.activity_label,
            activity_text=card.activity_text,
            offers=card.offers,
            seeks=card.seeks,
            available_for=card.available_for,
            bio=card.bio,
            links=list(card.links),
            work_postcode=card.work_postcode,
            home_postcode=card.home_postcode,
            roles=list(card.roles),
            joined_at=card.joined_at,
            email=card.email,
            work=Place(**msgspec.structs.asdict(card.work)) if card.work else None,
            home=Place(**msgspec.structs.asdict(card.home)) if card.home else None,
            distance_km=card.distance_km,
            erased=card.erased,
        )


@strawberry.type
class ProfileCardUpdated:
    member: Member


# -- inputs --------------------------------------------------------------------


@strawberry.input
class PlaceInput:
    lat: float | None = None
    lon: float | None = None
    postcode: str | None = None


@strawberry.input
class GeoPointInput:
    lat: float
    lon: float


@strawberry.input(description="Fields left out are unchanged; `work: null` clears the place.")
class ProfileCardInput:
    display_name: str | None = strawberry.UNSET
    business_name: str | None = strawberry.UNSET
    activity_code: str | None = strawberry.UNSET
    activity_text: str | None = strawberry.UNSET
    offers: str | None = strawberry.UNSET
    seeks: str | None = strawberry.UNSET
    available_for: str | None = strawberry.UNSET
    bio: str | None = strawberry.UNSET
    links: list[str] | None = strawberry.UNSET
    work: PlaceInput | None = strawberry.UNSET
    home: PlaceInput | None = strawberry.UNSET

    def to_contract(self) -> c.CardChanges:
        values: dict[str, Any] = {}
        for name in c.CardChanges.__struct_fields__:
            value = getattr(self, name)
            if value is strawberry.UNSET:
                continue
            if name in ("work", "home"):
                value = (
                    None
                    if value is None
                    else c.Place(lat=value.lat, lon=value.lon, postcode=value.postcode)
                )
            elif value is None:
                value = [] if name == "links" else ""
            values[name] = value
        return c.CardChanges(**values)


UpdateProfileCardResult = result_union("UpdateProfileCardResult", ProfileCardUpdated)


# -- queries and mutations -------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in member, or null.")
    async def me(self, info: Info[Context, Any]) -> Member | None:
        p = info.context.principal
        if p.refused is not None:  # an expired or forged token is not "signed out"
            raise public(p.refused)
        if p.key_id is not None:  # an API key is no member
            require_member(info)
        if p.actor.kind != "member":
            return None
        return await load_member(info, p.actor.member_id)

    @strawberry.field(description="A member of your network by global id, or null.")
    async def member(self, info: Info[Context, Any], id: strawberry.ID) -> Member | None:
        with public_errors():
            raw = from_global_id(id, "Member")
        require_member(info)
        return await load_member(info, raw)

    @strawberry.field(
        description="Members of your network: by activity, by words of what they offer and seek, near a point."
    )
    async def members(
        self,
        info: Info[Context, Any],
        first: int = 20,
        after: str | None = None,
        activity: str | None = None,
        text: str | None = None,
        near: GeoPointInput | None = None,
        radius_km: float | None = None,
    ) -> Connection[Member]:
        rctx = require_member(info)
        with public_errors():
            offset, limit = parse_page(first, after)
        page = await ask(
            info,
            c.SearchMembers(
                activity_code=activity,
                text=text,
                near=c.Point(lat=near.lat, lon=near.lon) if near else None,
                radius_km=radius_km,
                offset=offset,
                limit=limit,
            ),
            rctx,
        )
        return connection(page.items, offset, page.total, Member.from_card)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Update your own profile card.")
    async def update_profile_card(
        self,
        info: Info[Context, Any],
        input: ProfileCardInput,
    ) -> UpdateProfileCardResult:
        return await command(
            info,
            lambda: c.UpdateProfileCard(changes=input.to_contract()),
            lambda card: ProfileCardUpdated(member=Member.from_card(card)),
            fields={"changes.": ""},  # the input is the changes: `bio`, not `changes.bio`
        )


async def member_node(info: Info[Context, Any], raw_id: str) -> Member | None:
    """A member of your network, like `member(id:)`."""
    parts = split_raw_id(raw_id)
    if parts is None:
        return None
    require_member(info)
    return await load_member(info, parts[0])
