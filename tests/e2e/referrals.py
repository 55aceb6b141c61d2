"""A client's toolkit for the referrals end-to-end tests
(`test_referrals_*.py`): the referrals mutations with what a client selects
after each, the queries, a meetup held with its attendance, and waiting until
the referrals service has learnt (from the other services' events) what a
step needs: the network's members, a hub's members and rule, attendance.

Time never passes by sleeping: the tests move the shared MovableClock and
wait on conditions (`eventually`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from services.runtime.clock import MovableClock
from tests.e2e.conftest import ERROR_FIELDS, Session, System
from tests.e2e.meetups import BISTROT, Club, local, move_to, ok, thursday_lunch
from tests.support.waiting import eventually

MONEY = "amount currency"
SLIP = (
    "id referralId about warmth inside status givenAt updatedAt"
    " prospect { name company email phone }"
    f" value {{ {MONEY} }}"
    " history { status at reason by { id } }"
    " giver { id displayName } receiver { id displayName } prospectMember { id }"
    " hub { id } meetup { id }"
)
THANKS = f"thanksId about at value {{ {MONEY} }} giver {{ id }} receiver {{ id }} referral {{ id }} hub {{ id }}"
ONE_TO_ONE = "id oneToOneId metOn status loggedAt answeredAt loggedBy { id } other { id }"
NEED = (
    "id needId activityCodes words description deadline status windowEndsAt matchCount"
    " matchesMe postedAt poster { id } matches { id displayName } metBy { id }"
    " answers { message at member { id } }"
)
RESULTS = (
    "scope subjectId since until meetupsAttended referralsGiven referralsReceived"
    f" referralsWon valueGiven {{ {MONEY} }} valueReceived {{ {MONEY} }} oneToOnes"
    " missionsDone needsPosted needsMetInside member { id } hub { id }"
)
SETTINGS = (
    "coreMeetups coreDays driftingWeeks needWindowDays lightMonths greenMeetups"
    " amberMeetups greenReferrals amberReferrals greenOneToOnes amberOneToOnes"
)

MUTATIONS: dict[str, tuple[str, str]] = {
    # name: (input type, selection of its success type)
    "giveReferral": ("GiveReferralInput", f"... on SlipPayload {{ slip {{ {SLIP} }} }}"),
    "acceptReferral": ("ReferralInput", f"... on SlipPayload {{ slip {{ {SLIP} }} }}"),
    "declineReferral": ("DeclineReferralInput", f"... on SlipPayload {{ slip {{ {SLIP} }} }}"),
    "markReferralContacted": ("ReferralInput", f"... on SlipPayload {{ slip {{ {SLIP} }} }}"),
    "markReferralWon": ("MarkReferralWonInput", f"... on SlipPayload {{ slip {{ {SLIP} }} }}"),
    "markReferralLost": ("MarkReferralLostInput", f"... on SlipPayload {{ slip {{ {SLIP} }} }}"),
    "recordThanks": ("RecordThanksInput", f"... on ThanksPayload {{ thanks {{ {THANKS} }} }}"),
    "logOneToOne": (
        "LogOneToOneInput",
        f"... on OneToOnePayload {{ oneToOne {{ {ONE_TO_ONE} }} }}",
    ),
    "confirmOneToOne": (
        "OneToOneInput",
        f"... on OneToOnePayload {{ oneToOne {{ {ONE_TO_ONE} }} }}",
    ),
    "declineOneToOne": (
        "OneToOneInput",
        f"... on OneToOnePayload {{ oneToOne {{ {ONE_TO_ONE} }} }}",
    ),
    "postNeed": ("PostNeedInput", f"... on NeedPayload {{ need {{ {NEED} }} }}"),
    "answerNeed": ("AnswerNeedInput", f"... on NeedPayload {{ need {{ {NEED} }} }}"),
    "markNeedMet": ("MarkNeedMetInput", f"... on NeedPayload {{ need {{ {NEED} }} }}"),
    "releaseNeed": ("NeedInput", f"... on NeedPayload {{ need {{ {NEED} }} }}"),
    "setEngagementSettings": (
        "EngagementSettingsInput",
        f"... on EngagementSettingsPayload {{ settings {{ {SETTINGS} }} }}",
    ),
}

SLIP_QUERY = f"query($id: ID!) {{ slip(id: $id) {{ {SLIP} }} }}"
NODE_QUERY = "query($id: ID!) { node(id: $id) { __typename id } }"
SLIPS_QUERY = f"""
query($direction: LedgerDirection!, $hubId: ID, $status: ReferralStatus, $first: Int!) {{
  slips(direction: $direction, hubId: $hubId, status: $status, first: $first) {{
    totalCount edges {{ node {{ {SLIP} }} }}
  }}
}}
"""
THANKS_QUERY = f"""
query($direction: LedgerDirection!) {{
  thanks(direction: $direction, first: 50) {{ totalCount edges {{ node {{ {THANKS} }} }} }}
}}
"""
NEEDS_QUERY = f"""
query($mine: Boolean!) {{ needs(mine: $mine, first: 50) {{ totalCount edges {{ node {{ {NEED} }} }} }} }}
"""
RESULTS_QUERY = f"""
query($scope: ResultsScope!, $subjectId: ID, $since: DateTime, $until: DateTime) {{
  results(scope: $scope, subjectId: $subjectId, since: $since, until: $until) {{ {RESULTS} }}
}}
"""
ENGAGEMENT_QUERY = """
query($hubId: ID!) {
  hubEngagement(hubId: $hubId) {
    hubId hub { id } core { id } drifting { id }
    members {
      memberId member { id } light setBy meetupsInCoreWindow inCore drifting lastMeetupAt
      measures { measure value light }
    }
  }
}
"""


def mutation_document(name: str) -> str:
    input_type, success = MUTATIONS[name]
    return (
        f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ __typename {success}"
        f" ...Err }} }}{ERROR_FIELDS}"
    )


async def refer(
    system: System,
    name: str,
    input: dict[str, Any],
    who: Session | None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one referrals mutation as `who` (or nobody); its result, a success
    or an error type (a top-level error fails the test)."""
    all_headers = dict(headers or {})
    if who is not None:
        all_headers["Authorization"] = f"Bearer {who.access}"
    response = await system.client.post(
        "/graphql",
        json={"query": mutation_document(name), "variables": {"input": input}},
        headers=all_headers,
    )
    answer = response.json()
    assert "errors" not in answer, (name, answer)
    result: dict[str, Any] = answer["data"][name]
    return result


async def done(
    system: System, name: str, input: dict[str, Any], who: Session, typename: str
) -> dict[str, Any]:
    result = await refer(system, name, input, who)
    assert result["__typename"] == typename, (name, result)
    return result


async def ask(
    system: System, document: str, variables: dict[str, Any], who: Session
) -> dict[str, Any]:
    answer = await system.gql(document, variables, who.access)
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


async def slip_as(system: System, slip_id: str, who: Session) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (await ask(system, SLIP_QUERY, {"id": slip_id}, who))["slip"]
    return found


async def results(
    system: System, who: Session, scope: str, subject: str | None = None
) -> dict[str, Any]:
    variables = {"scope": scope, "subjectId": subject}
    found: dict[str, Any] = (await ask(system, RESULTS_QUERY, variables, who))["results"]
    return found


async def referrals_events(system: System) -> int:
    return await system.event_count("referrals")


# -- what the referrals service has learnt from the others' events ----------------------


def _read(system: System, query: Callable[[sa.Connection], Any]) -> Any:
    with system.hosts["referrals"].engine.connect() as conn:
        return query(conn)


async def members_known(system: System, club: Club) -> None:
    """Referrals knows the network's members and the hub's (identity's and
    hubs' events reach it in the background)."""
    from services.referrals.views import directory

    tenant_id, hub_id = club.net.tenant_id, club.hub["hubId"]
    network = 1 + 1 + len(club.members) + 1  # admin, facilitator, members, outsider
    hub = 1 + 1 + len(club.members)

    def known(conn: sa.Connection) -> bool:
        m, h = directory.members, directory.hub_members
        in_network = conn.execute(
            sa.select(sa.func.count()).select_from(m).where(m.c.tenant_id == tenant_id)
        ).scalar_one()
        in_hub = conn.execute(
            sa.select(sa.func.count())
            .select_from(h)
            .where(h.c.tenant_id == tenant_id, h.c.hub_id == hub_id)
        ).scalar_one()
        return bool(in_network >= network and in_hub >= hub)

    await eventually(lambda: _read(system, known))


async def rule_known(system: System, club: Club, days: int | None) -> None:
    """Referrals applies the hub's rule `referralsMeetingDays` as changed."""
    from services.referrals.views import directory

    def known(conn: sa.Connection) -> bool:
        row = directory.hub_row(conn, club.net.tenant_id, club.hub["hubId"])
        return row is not None and row.meeting_days == days

    await eventually(lambda: _read(system, known))


async def attendance_known(system: System, club: Club, meetup_id: str, present: int) -> None:
    """Referrals knows who was present at a meetup (meetups' events)."""
    from services.referrals.views import directory

    a = directory.attendance

    def known(conn: sa.Connection) -> bool:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(a)
            .where(
                a.c.tenant_id == club.net.tenant_id,
                a.c.meetup_id == meetup_id,
                a.c.present.is_(True),
            )
        ).scalar_one()
        return bool(count >= present)

    await eventually(lambda: _read(system, known))


async def hold_lunch(
    system: System, club: Club, clock: MovableClock, present: list[Session], weeks: int = 0
) -> dict[str, Any]:
    """The facilitator schedules a Thursday lunch (`weeks` later), the clock
    moves to five minutes past its start, attendance is taken (`present`),
    and referrals learns it. Returns the meetup."""
    day = thursday_lunch(clock, weeks)
    lunch = (
        await ok(
            system,
            "scheduleMeetup",
            {"hubId": club.hub_id, "localStart": local(day), "title": "Déjeuner", "venue": BISTROT},
            club.facilitator,
            "MeetupPayload",
        )
    )["meetup"]
    move_to(clock, lunch["startsAt"], timedelta(minutes=5))
    await ok(
        system,
        "recordAttendance",
        {
            "meetupId": lunch["id"],
            "entries": [{"memberId": m.id, "status": "PRESENT"} for m in present],
        },
        club.facilitator,
        "AttendancePayload",
    )
    await attendance_known(system, club, lunch["meetupId"], len(present))
    return dict(lunch)


def prospect(name: str = "Boulangerie Dupain") -> dict[str, Any]:
    return {"name": name, "company": name, "email": "contact@dupain.example", "phone": "0102030405"}
