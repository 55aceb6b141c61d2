"""Attendance and visitors: the facilitator takes attendance, members check
in, and members invite non-members a limited number of times."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.events.meetups import AttendanceEntry, Meetup, load_meetup
from gateway.kit import command, optional_raw_id, raw_id, result_union
from gateway.nodes import to_global_id
from services.events import contract as c


@strawberry.enum(description="What the facilitator records for a member (a visitor: PRESENT).")
class AttendanceMark(Enum):
    PRESENT = "present"
    LATE = "late"
    ABSENT = "absent"
    EXCUSED = "excused"
    REPLACED = "replaced"


@strawberry.type
class AttendancePayload:
    attendance: list[AttendanceEntry]


@strawberry.type(description="The visit is counted; the visitor's name and address stay here.")
class VisitorInvited:
    visitor_id: strawberry.ID
    visits: int = strawberry.field(description="Visits to this hub's meetups, this one included.")
    max_visits: int = strawberry.field(description="The hub's limit, after which they must apply.")
    meetup_id_raw: strawberry.Private[str]

    @strawberry.field
    async def meetup(self, info: Info[Context, Any]) -> Meetup | None:
        return await load_meetup(info, self.meetup_id_raw)


@strawberry.input(description="A member (`memberId`) or a visitor (`visitorId`).")
class AttendanceEntryInput:
    status: AttendanceMark
    member_id: strawberry.ID | None = None
    visitor_id: strawberry.ID | None = None
    substitute: str | None = strawberry.field(
        default=None, description="Who came instead: with REPLACED only."
    )


@strawberry.input
class RecordAttendanceInput:
    meetup_id: strawberry.ID
    entries: list[AttendanceEntryInput]


@strawberry.input
class MeetupInput:
    meetup_id: strawberry.ID


@strawberry.input(
    description="The visitor's name and address are kept by the meetups service only."
)
class InviteVisitorInput:
    meetup_id: strawberry.ID
    name: str
    email: str


AttendanceResult = result_union("AttendanceResult", AttendancePayload)


InviteVisitorResult = result_union("InviteVisitorResult", VisitorInvited)


def _attendance(reply: list[c.AttendanceEntry]) -> AttendancePayload:
    return AttendancePayload(attendance=[AttendanceEntry.from_contract(a) for a in reply])


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="The facilitator or a hub admin takes attendance (from an hour before)."
    )
    async def record_attendance(
        self, info: Info[Context, Any], input: RecordAttendanceInput
    ) -> AttendanceResult:
        return await command(
            info,
            lambda: c.RecordAttendance(
                meetup_id=raw_id(input.meetup_id, "Meetup", "meetup_id"),
                entries=[
                    c.AttendanceRecordInput(
                        status=x.status.value,
                        member_id=optional_raw_id(x.member_id, "Member", "member_id"),
                        visitor_id=optional_raw_id(x.visitor_id, "Visitor", "visitor_id"),
                        substitute=x.substitute,
                    )
                    for x in input.entries
                ],
            ),
            _attendance,
            fields={"entries.substitute": "substitute"},  # as the service's own checks name it
        )

    @strawberry.mutation(description="A member of the hub checks in while the meetup runs.")
    async def check_in(self, info: Info[Context, Any], input: MeetupInput) -> AttendanceResult:
        return await command(
            info,
            lambda: c.CheckIn(meetup_id=raw_id(input.meetup_id, "Meetup", "meetup_id")),
            _attendance,
        )

    @strawberry.mutation(
        description="A member of the hub invites a non-member; past the hub's `maxVisits` the "
        "visitor must apply (RuleViolation `max_visits`)."
    )
    async def invite_visitor(
        self, info: Info[Context, Any], input: InviteVisitorInput
    ) -> InviteVisitorResult:
        return await command(
            info,
            lambda: c.InviteVisitor(
                meetup_id=raw_id(input.meetup_id, "Meetup", "meetup_id"),
                name=input.name,
                email=input.email,
            ),
            lambda v: VisitorInvited(
                visitor_id=to_global_id("Visitor", v.visitor_id),
                visits=v.visits,
                max_visits=v.max_visits,
                meetup_id_raw=v.meetup_id,
            ),
        )
