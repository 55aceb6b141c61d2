"""Meetups' policies for hubs' published events: the local hub directory
(hubs, their members, co-admins, facilitator and `max_visits` rule), kept in
one tracked transaction per event, so a redelivered event changes nothing.
This service never reads hubs' tables."""

from __future__ import annotations

import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.events.views import directory
from services.hubs import contract as hc
from services.runtime.host import ServiceHost
from services.runtime.reactions import Reaction, decode_data
from services.runtime.stream import CloudEvent

HANDLED = {
    cls.type_name(): cls
    for cls in (
        hc.HubCreated,
        hc.MemberAdmitted,
        hc.MemberLeft,
        hc.MemberRemoved,
        hc.CoAdminAdded,
        hc.CoAdminRemoved,
        hc.FacilitatorChanged,
        hc.HubRulesChanged,
    )
}


def apply(conn: sa.Connection, e: object) -> None:
    match e:
        case hc.HubCreated():
            directory.hub_created(conn, e.tenant_id, e.hub_id, e.name, e.founder_id)
            if e.rules is not None:  # the rules it was created with
                directory.update_hub(conn, e.tenant_id, e.hub_id, max_visits=e.rules.max_visits)
        case hc.MemberAdmitted():
            directory.add_member(conn, e.tenant_id, e.hub_id, e.member_id)
        case hc.MemberLeft() | hc.MemberRemoved():
            directory.remove_member(conn, e.tenant_id, e.hub_id, e.member_id)
        case hc.CoAdminAdded():
            directory.set_co_admin(conn, e.tenant_id, e.hub_id, e.member_id, True)
        case hc.CoAdminRemoved():
            directory.set_co_admin(conn, e.tenant_id, e.hub_id, e.member_id, False)
        case hc.FacilitatorChanged():
            directory.update_hub(conn, e.tenant_id, e.hub_id, facilitator_id=e.facilitator_id)
        case hc.HubRulesChanged():
            directory.update_hub(conn, e.tenant_id, e.hub_id, max_visits=e.rules.max_visits)


def hub_directory(host: ServiceHost) -> Reaction:
    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        kind = HANDLED.get(event.type)
        data = decode_data(event, kind) if kind is not None else None
        await host.offload(
            directory.DIRECTORY.apply,
            host.engine,
            tracking,
            lambda conn: apply(conn, data) if data is not None else None,
        )

    return Reaction(name="hub-directory", upstream="hubs", handle=handle)
