"""Referrals' policies for the other services' published events, each a
tracked reaction (a redelivered event changes nothing):

* identity → the network's members (and tenant admins);
* hubs → hubs, their members and co-admins, and the rule
  "referrals only between members who met" (`referrals_meeting_days`), from
  the rules a hub is created with (`HubCreated.rules`; absent from events
  published before that field: those hubs start with the rule off) and from
  each `HubRulesChanged` after;
* meetups → attendance (present or late) and missions done.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.events import contract as ec
from services.hubs import contract as hc
from services.identity import contract as idc
from services.referrals.views import directory
from services.runtime.host import ServiceHost
from services.runtime.reactions import Reaction, decode_data
from services.runtime.stream import CloudEvent
from services.runtime.views import TrackedTables


def _identity(conn: sa.Connection, e: Any, event: CloudEvent) -> None:
    match e:
        case idc.MemberJoined():
            directory.member_joined(conn, e.tenant_id, e.member_id, list(e.roles))
        case idc.MemberRolesChanged():
            directory.roles_changed(conn, e.tenant_id, e.member_id, list(e.roles))
        case idc.MemberErased() if e.tenant_id == event.tenant:  # in order, tenant's own
            directory.member_erased(conn, e.tenant_id, e.member_id)


def _hubs(conn: sa.Connection, e: Any, event: CloudEvent) -> None:
    match e:
        case hc.HubCreated():
            directory.hub_created(conn, e.tenant_id, e.hub_id, e.founder_id)
            if e.rules is not None:  # the rules it starts with (absent from older events)
                directory.set_rule(conn, e.tenant_id, e.hub_id, e.rules.referrals_meeting_days)
        case hc.MemberAdmitted():
            directory.join_hub(conn, e.tenant_id, e.hub_id, e.member_id)
        case hc.MemberLeft() | hc.MemberRemoved():
            directory.leave_hub(conn, e.tenant_id, e.hub_id, e.member_id)
        case hc.CoAdminAdded():
            directory.set_co_admin(conn, e.tenant_id, e.hub_id, e.member_id, True)
        case hc.CoAdminRemoved():
            directory.set_co_admin(conn, e.tenant_id, e.hub_id, e.member_id, False)
        case hc.HubRulesChanged():
            directory.set_rule(conn, e.tenant_id, e.hub_id, e.rules.referrals_meeting_days)


def _meetups(conn: sa.Connection, e: Any, event: CloudEvent) -> None:
    match e:
        case ec.AttendanceRecorded():
            if e.member_id is not None:
                directory.attended(
                    conn,
                    e.tenant_id,
                    e.hub_id,
                    e.meetup_id,
                    e.member_id,
                    e.status in ("present", "late"),
                    e.starts_at,
                )
        case ec.MissionCardCompleted():  # done when the event was recorded
            directory.mission_done(conn, e.tenant_id, e.hub_id, e.draw_id, e.member_id, event.time)


def _reaction(
    host: ServiceHost,
    name: str,
    upstream: str,
    tables: TrackedTables,
    kinds: tuple[type[Any], ...],
    apply: Any,
) -> Reaction:
    by_type = {kind.type_name(): kind for kind in kinds}

    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        kind = by_type.get(event.type)
        data = decode_data(event, kind) if kind is not None else None
        await host.offload(
            tables.apply,
            host.engine,
            tracking,
            lambda conn: apply(conn, data, event) if data is not None else None,
        )

    return Reaction(name=name, upstream=upstream, handle=handle)


def reactions(host: ServiceHost) -> list[Reaction]:
    return [
        _reaction(
            host,
            "members",
            "identity",
            directory.MEMBERS,
            (idc.MemberJoined, idc.MemberRolesChanged, idc.MemberErased),
            _identity,
        ),
        _reaction(
            host,
            "hubs",
            "hubs",
            directory.HUBS,
            (
                hc.HubCreated,
                hc.MemberAdmitted,
                hc.MemberLeft,
                hc.MemberRemoved,
                hc.CoAdminAdded,
                hc.CoAdminRemoved,
                hc.HubRulesChanged,
            ),
            _hubs,
        ),
        _reaction(
            host,
            "meetups",
            "events",
            directory.MEETUPS,
            (ec.AttendanceRecorded, ec.MissionCardCompleted),
            _meetups,
        ),
    ]
