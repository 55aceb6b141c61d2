"""The example consumer (examples/attendance_dashboard.py) against a small
network: two lunches with attendance and a won referral. Run as a
consumer runs it (a process of its own, with an API key over HTTP), it is
stopped after two events and started again: it resumes from its saved
position with no duplicate and no gap, and draws its PNG; each run's
summary says what that run read, and the totals."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from services.runtime.clock import MovableClock
from tests.e2e.conftest import System, mutate
from tests.e2e.meetups import lunch_club
from tests.e2e.referrals import done, hold_lunch, members_known, prospect
from tests.support.waiting import eventually

# the consumer is what is tested, not the store: SQLite only
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.shared_system,
    pytest.mark.parametrize("settings", ["sqlite"], indirect=True),
]

EXAMPLE = Path(__file__).parents[2] / "examples" / "attendance_dashboard.py"
TYPES = (
    "quartier.events.AttendanceRecorded.,quartier.referrals.ReferralWon.,quartier.hubs.HubCreated."
)
CREATE = """mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) {
  __typename ... on ApiKeyCreated { secret apiKey { id } } } }"""
REVOKE = """mutation($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) { __typename } }"""
VOLTAIRE = {"centre": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 1.5}


async def run_example(system: System, key: str, tmp: Path, *extra: str) -> str:
    process = await start_example(system, key, tmp, *extra)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def start_example(
    system: System, key: str, tmp: Path, *extra: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--url",
        system.gateway.base_url,
        "--key",
        key,
        "--state",
        str(tmp / "state.json"),
        "--png",
        str(tmp / "dashboard.png"),
        "--seen-log",
        str(tmp / "seen.txt"),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_the_dashboard_follows_resumes_and_draws(
    system: System, clock: MovableClock, tmp_path: Path
) -> None:
    club = await lunch_club(system, "dash")
    ines, paul, lea, _ = club.members
    await members_known(system, club)
    lunch = await hold_lunch(system, club, clock, present=[ines, paul])
    await hold_lunch(system, club, clock, present=[ines, paul, lea], weeks=1)
    given = await done(
        system,
        "giveReferral",
        {
            "receiverId": paul.id,
            "about": "Refaire l'électricité du fournil",
            "warmth": 4,
            "prospect": prospect(),
            "hubId": club.hub_id,
            "meetupId": lunch["id"],
        },
        ines,
        "SlipPayload",
    )
    slip = {"referralId": given["slip"]["id"]}
    await done(system, "acceptReferral", slip, paul, "SlipPayload")
    await done(system, "markReferralContacted", slip, paul, "SlipPayload")
    await done(
        system,
        "markReferralWon",
        {**slip, "value": {"amount": "1200.5", "currency": "EUR"}},
        paul,
        "SlipPayload",
    )
    created = await system.gql(
        CREATE, {"input": {"name": "dashboard", "scopes": ["EVENTS_READ"]}}, club.admin.access
    )
    key = created["data"]["createApiKey"]["secret"]
    key_id = created["data"]["createApiKey"]["apiKey"]["id"]

    async def expected() -> list[dict[str, object]]:
        response = await system.client.get(
            "/v1/events",
            params={"types": TYPES},
            headers={"Authorization": f"Bearer {club.admin.access}"},
        )
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    events = await eventually(
        lambda: _complete(expected()), timeout=30
    )  # every service's events relayed

    # a first run stops after two events (a crash, a deploy), the second resumes
    out = await run_example(system, key, tmp_path, "--stop-after", "2")
    assert len((tmp_path / "seen.txt").read_text().split()) == 2
    assert "2 new events read (from the start); 2 processed in all" in out, out
    out = await run_example(system, key, tmp_path)
    rest = len(events) - 2
    assert (
        f"{rest} new events read (after the saved position); {len(events)} processed in all" in out
    ), out
    # started again with nothing new: it says so, and keeps its totals
    out = await run_example(system, key, tmp_path)
    assert f"0 new events read (after the saved position); {len(events)} processed in all" in out, (
        out
    )

    seen = (tmp_path / "seen.txt").read_text().split()
    assert seen == [e["id"] for e in events]  # each once, in order, none missing
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["position"] == events[-1]["position"]
    (weekly,) = state["attendance"].values()
    assert sorted(weekly.values()) == [2, 3]
    assert state["hubs"] == {club.hub["hubId"]: "Cercle Voltaire"}
    (month,) = state["referrals"].values()
    assert {c: Decimal(v) for c, v in month.items()} == {"EUR": Decimal("1200.5")}
    png = (tmp_path / "dashboard.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000

    # following: a new event comes live; the key is revoked meanwhile: the
    # stream's last line says so, and the consumer stops (no retry loop)
    following = await start_example(system, key, tmp_path, "--follow")
    hub = await mutate(
        system,
        "createHub",
        {"name": "Atelier Oberkampf", "kind": "NEIGHBOURHOOD", "area": VOLTAIRE},
        club.admin.access,
    )
    assert hub["__typename"] == "HubPayload", hub
    await eventually(
        lambda: len((tmp_path / "seen.txt").read_text().split()) == len(events) + 1, timeout=30
    )
    # another follower, stopped by Ctrl-C once caught up: one line, its state saved
    other = tmp_path / "other"
    other.mkdir()
    interrupted = await start_example(system, key, other, "--follow")
    await eventually(
        lambda: (
            (other / "seen.txt").exists()
            and len((other / "seen.txt").read_text().split()) == len(events) + 1
        ),
        timeout=30,
    )
    interrupted.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(interrupted.communicate(), 30)
    assert interrupted.returncode == 0, err.decode()
    assert "Traceback" not in err.decode(), err.decode()
    assert out.decode().splitlines() == [
        f"stopped; position saved in {other / 'state.json'} ({len(events) + 1} processed in all)"
    ]
    assert json.loads((other / "state.json").read_text())["processed"] == len(events) + 1

    revoked = await system.gql(REVOKE, {"input": {"id": key_id}}, club.admin.access)
    assert revoked["data"]["revokeApiKey"]["__typename"] == "ApiKeyRevoked", revoked
    _, err = await asyncio.wait_for(following.communicate(), 60)
    assert following.returncode == 2, err.decode()
    assert "this API key has been revoked: the stream has ended" in err.decode(), err.decode()


async def _complete(pending: object) -> list[dict[str, object]] | None:
    events = await pending  # type: ignore[misc]
    types = [e["type"] for e in events]
    attended = types.count("quartier.events.AttendanceRecorded.v1")
    won = types.count("quartier.referrals.ReferralWon.v1")
    return events if attended >= 5 and won == 1 else None
