"""Hubs' policies for identity's published events.

* `directory`: keeps each member's activity code (MemberJoined,
  ProfileCardUpdated) in hubs' own database, for the one-per-profession rule.
* `admissions`: when a candidate nominated by e-mail accepts identity's
  invitation (MemberJoined with that invitation), continues the admission:
  asks identity where they are, checks them, and opens the objection window.

Both record the upstream position in the same transaction as their effects,
so a redelivered event changes nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.hubs import views
from services.hubs.application import Hubs
from services.hubs.domain import CandidatePlaces
from services.identity import contract as idc
from services.runtime.bus import Bus, Offloader
from services.runtime.clock import Clock
from services.runtime.logging import get_logger
from services.runtime.messages import Actor
from services.runtime.reactions import Reaction, decode_data, tracked_transaction
from services.runtime.stream import CloudEvent
from services.runtime.tenancy import RequestContext

log = get_logger("quartier.hubs.reactions")

JOINED = idc.MemberJoined.type_name()
CARD_UPDATED = idc.ProfileCardUpdated.type_name()


def directory(engine: sa.Engine, offload: Offloader) -> Reaction:
    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        if event.type == JOINED:
            data = decode_data(event, idc.MemberJoined)
        elif event.type == CARD_UPDATED:
            data = decode_data(event, idc.ProfileCardUpdated)
        else:
            return
        await offload(
            tracked_transaction,
            engine,
            tracking,
            "directory",
            lambda conn: views.record_activity(
                conn, data.tenant_id, data.member_id, data.activity_code
            ),
        )

    return Reaction(name="directory", upstream="identity", handle=handle)


def admissions(
    app: Hubs, engine: sa.Engine, bus: Bus, clock: Clock, offload: Offloader
) -> Reaction:
    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        if event.type != JOINED:
            return
        joined = decode_data(event, idc.MemberJoined)
        if joined.invitation_id is None:
            return

        def lookup() -> tuple[object, dict[str, str | None]] | None:
            with engine.connect() as conn:
                row = views.nomination_for_invitation(
                    conn, joined.tenant_id, joined.invitation_id or ""
                )
                if row is None or row.status != "invited":
                    return None
                hub = app.hub(joined.tenant_id, row.hub_id)
                return (row, hub), views.activities(conn, joined.tenant_id, list(hub.members))

        found = await offload(lookup)
        if found is None:
            return
        (row, hub), activities = found  # type: ignore[misc]
        area = hub.area
        centre = idc.Point(lat=area.lat, lon=area.lon) if area.has_centre else None  # type: ignore[arg-type]
        ask = RequestContext(tenant_id=joined.tenant_id, actor=Actor(kind="service"))
        places = await bus.request(
            idc.MemberPlaces(member_ids=[joined.member_id], centre=centre), ask
        )
        p = (
            places.items[0]
            if places.items
            else idc.Places(
                member_id=joined.member_id,
                work_km=None,
                home_km=None,
                work_postcode=None,
                home_postcode=None,
            )
        )
        applied = await offload(
            app.candidate_joined,
            joined.tenant_id,
            row.hub_id,
            row.nomination_id,
            joined.member_id,
            joined.activity_code,
            CandidatePlaces(p.work_km, p.home_km, p.work_postcode, p.home_postcode),
            activities,
            clock.now(),
            tracking,
        )
        log.info("admission.candidate_joined", nomination_id=row.nomination_id, applied=applied)

    return Reaction(name="admissions", upstream="identity", handle=handle)
