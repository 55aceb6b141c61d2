"""Hubs' policies for identity's and the meetups service's published events.

* `directory`: keeps each member's activity code (MemberJoined,
  ProfileCardUpdated) in hubs' own database, for the one-per-profession rule;
  an erased member's (MemberErased) is dropped, in order with the others.
* `admissions`: when a candidate nominated by e-mail accepts identity's
  invitation (MemberJoined with that invitation), continues the admission:
  asks identity where they are, checks them, and opens the objection window.
* `facilitator_terms`: each meetup closed (the meetups service's
  MeetupClosed) counts in its hub's current facilitator term; when the
  term's meetups are done, the next volunteer takes over.

Each records the upstream position in the same transaction as its effects,
so a redelivered event changes nothing.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking

from services.events import contract as ec
from services.hubs.application import Hubs
from services.hubs.domain import CandidatePlaces, Hub
from services.hubs.views import directory, nominations
from services.identity import contract as idc
from services.runtime.errors import Unavailable
from services.runtime.host import ServiceHost
from services.runtime.i18n import t
from services.runtime.logging import get_logger
from services.runtime.messages import Actor
from services.runtime.projection import Projector
from services.runtime.reactions import Reaction, decode_data
from services.runtime.stream import CloudEvent
from services.runtime.tenancy import RequestContext

log = get_logger("quartier.hubs.reactions")

JOINED = idc.MemberJoined.type_name()
CARD_UPDATED = idc.ProfileCardUpdated.type_name()
ERASED = idc.MemberErased.type_name()
MEETUP_CLOSED = ec.MeetupClosed.type_name()


def directory_reaction(host: ServiceHost) -> Reaction:
    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        data: idc.MemberJoined | idc.ProfileCardUpdated | idc.MemberErased
        if event.type == JOINED:
            data = decode_data(event, idc.MemberJoined)
        elif event.type == CARD_UPDATED:
            data = decode_data(event, idc.ProfileCardUpdated)
        elif event.type == ERASED:
            data = decode_data(event, idc.MemberErased)
        else:
            return
        if data.tenant_id != event.tenant:
            return
        activity = None if isinstance(data, idc.MemberErased) else data.activity_code
        await host.offload(
            directory.DIRECTORY.apply,
            host.engine,
            tracking,
            lambda conn: directory.record_activity(conn, data.tenant_id, data.member_id, activity),
        )

    return Reaction(name="directory", upstream="identity", handle=handle)


async def places_of_new_member(
    host: ServiceHost, query: idc.MemberPlaces, ask: RequestContext
) -> idc.Places:
    """Where a member who has just joined is. Identity publishes MemberJoined
    only once its read models (which answer MemberPlaces) reflect it, so the
    member is known; if not (a read model rebuilt meanwhile), the reaction
    fails as for an unavailable service and retries the event — it never
    takes the empty answer for a card without places, which would refuse the
    candidate as outside the area."""
    places = await host.bus.request(query, ask)
    if not places.items:
        raise Unavailable(t("identity does not know the member who joined yet"))
    return places.items[0]


def admissions(host: ServiceHost, app: Hubs) -> Reaction:
    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        if event.type != JOINED:
            return
        joined = decode_data(event, idc.MemberJoined)
        invitation_id = joined.invitation_id
        if invitation_id is None:
            return
        tenant_id = joined.tenant_id

        def lookup() -> list[tuple[Any, Hub]]:
            with host.engine.connect() as conn:
                rows = nominations.invited_by_invitation(conn, tenant_id, invitation_id)
            return [(row, app.get(tenant_id, row.hub_id, Hub)) for row in rows]

        found = await host.offload(lookup)
        # the same address nominated to several hubs has one invitation: each
        # hub's nomination goes on; the upstream position is recorded with the last
        for index, (row, hub) in enumerate(found):
            last = index == len(found) - 1
            await _candidate_joined(host, app, joined, row, hub, tracking if last else None)

    return Reaction(name="admissions", upstream="identity", handle=handle)


async def _candidate_joined(
    host: ServiceHost,
    app: Hubs,
    joined: idc.MemberJoined,
    row: Any,
    hub: Hub,
    tracking: Tracking | None,
) -> None:
    tenant_id = joined.tenant_id
    area = hub.area
    centre = (
        idc.Point(lat=area.lat, lon=area.lon)
        if area.lat is not None and area.lon is not None
        else None
    )
    ask = RequestContext(tenant_id=tenant_id, actor=Actor(kind="service"))
    p = await places_of_new_member(
        host, idc.MemberPlaces(member_ids=[joined.member_id], centre=centre), ask
    )
    where = CandidatePlaces(p.work_km, p.home_km, p.work_postcode, p.home_postcode)

    def unit() -> bool:
        with host.engine.connect() as conn:
            activities = directory.activities(conn, tenant_id, hub.members)
        return app.candidate_joined(
            tenant_id,
            row.hub_id,
            row.nomination_id,
            joined.member_id,
            joined.activity_code,
            where,
            activities,
            host.clock.now(),
            tracking,
        )

    applied = await host.offload(unit)
    log.info("admission.candidate_joined", nomination_id=row.nomination_id, applied=applied)


def facilitator_terms(host: ServiceHost, app: Hubs, projector: Projector) -> Reaction:
    """Counts the meetups closed in each hub's current facilitator term. The
    meetup's hub is looked up in the tenant the event belongs to: another
    tenant's hub (or an unknown one) counts nothing."""

    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        if event.type != MEETUP_CLOSED:
            return
        closed = decode_data(event, ec.MeetupClosed)
        if closed.tenant_id != event.tenant:
            log.warning("facilitator_terms.tenant_mismatch", meetup_id=closed.meetup_id)
            return

        def unit() -> bool:
            applied = app.meetup_closed(
                closed.tenant_id, closed.hub_id, closed.meetup_id, host.clock.now(), tracking
            )
            if applied:
                projector.after_write()  # the scheduler reads the new term's end
            return applied

        applied = await host.offload(unit)
        log.info(
            "facilitator_terms.meetup_closed",
            hub_id=closed.hub_id,
            meetup_id=closed.meetup_id,
            applied=applied,
        )

    return Reaction(name="facilitator-terms", upstream="events", handle=handle)
