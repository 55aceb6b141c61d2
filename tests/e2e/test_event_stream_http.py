"""The event stream over HTTP (`GET /v1/events`, NDJSON and Server-Sent
Events) and the published schemas (`/v1/schemas`), as an analytics consumer
uses them: read a network's history, resume after any event with no gap and
no duplicate (also across forced disconnects while events are being
written), filter by type, follow with a heartbeat; never another network's
events, and a clear JSON error for every bad input."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from infra.catalogue import envelope_schema, event_schemas
from services.runtime.stream import STREAM as JETSTREAM_STREAM
from services.runtime.stream import Position
from tests.e2e.conftest import (
    Network,
    Session,
    System,
    join,
    mutate,
    open_network,
    subscription_results,
)
from tests.support.env import OPERATOR_TOKEN
from tests.support.waiting import eventually

# one system per store for the module: each test reads only its own networks
pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"


# -- a consumer's toolkit -----------------------------------------------------------


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ndjson(
    system: System, token: str, headers: dict[str, str] | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every event of a (non-following) NDJSON read."""
    async with system.client.stream(
        "GET", "/v1/events", params=params, headers={**auth(token), **(headers or {})}
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith(NDJSON)
        return [json.loads(line) async for line in response.aiter_lines() if line.strip()]


def sse_messages(text: str) -> list[dict[str, str]]:
    """Server-Sent Events messages (fields; comments under ':')."""
    found = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        message: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            message[name] = message.get(name, "") + value.removeprefix(" ")
        found.append(message)
    return found


async def expected_ids(system: System, tenant_id: str) -> list[str]:
    """The network's public events, as the services' logs hold them."""

    def collect() -> list[str]:
        found = []
        for name, host in system.hosts.items():
            for relay in host.relays:
                app = relay.app
                for n in app.notifications_after(0, 1_000_000):
                    public = relay.translate(app.mapper.to_domain_event(n))
                    if public is not None and public.tenant_id == tenant_id:
                        found.append(f"{name}:{n.id}")
        return found

    return await asyncio.to_thread(collect)


async def settled(system: System, net: Network) -> list[dict[str, Any]]:
    """The network's whole history, once every service has published it."""
    expected = set(await expected_ids(system, net.tenant_id))

    async def complete() -> list[dict[str, Any]] | None:
        events = await ndjson(system, net.admin.access)
        return events if {e["id"] for e in events} == expected else None

    return await eventually(complete)


def per_service_order_holds(ids: list[str]) -> bool:
    last: dict[str, int] = {}
    for i in ids:
        service, n = i.split(":")
        if int(n) <= last.get(service, 0):
            return False
        last[service] = int(n)
    return True


async def two_networks(system: System) -> tuple[Network, Network, Session]:
    """Two networks whose events interleave; the first with a hub."""
    net = await open_network(system, "pole-11e")
    other = await open_network(system, "other-net")
    karim = await join(system, net, "karim@pole.example", "Karim Plombier")
    await join(system, other, "someone@other.example", "Someone")
    hub = await mutate(
        system,
        "createHub",
        {
            "name": "Cercle Voltaire",
            "kind": "NEIGHBOURHOOD",
            "area": {"centre": {"lat": 48.8575, "lon": 2.3795}, "radiusKm": 1.5},
        },
        net.admin.access,
    )
    assert hub["__typename"] == "HubPayload", hub
    await mutate(system, "updateProfileCard", {"offers": "Chauffe-eau"}, karim.access)
    await mutate(system, "updateProfileCard", {"offers": "Pain"}, other.admin.access)
    return net, other, karim


# -- reading and resuming -------------------------------------------------------------


async def test_a_history_read_and_resumed_after_each_event(system: System) -> None:
    net, other, _ = await two_networks(system)
    history = await settled(system, net)
    ids = [e["id"] for e in history]
    assert len(ids) == len(set(ids)) >= 7
    assert per_service_order_holds(ids)
    assert {e["tenant"] for e in history} == {net.tenant_id}
    assert {e["data"]["tenant_id"] for e in history} == {net.tenant_id}
    assert {e["source"] for e in history} == {"quartier/identity", "quartier/hubs"}
    for event in history:
        assert event["specversion"] == "1.0" and event["position"]
    # after any event: exactly the events after it
    for i, event in enumerate(history):
        rest = await ndjson(system, net.admin.access, after=event["position"])
        assert [e["id"] for e in rest] == ids[i + 1 :], i
        if rest:  # the positions are the same wherever the read started
            assert rest[0]["position"] == history[i + 1]["position"]
    # the other network has its own, and only its own
    theirs = await settled(system, other)
    assert {e["tenant"] for e in theirs} == {other.tenant_id}
    assert not {e["id"] for e in theirs} & set(ids)


async def test_server_sent_events_resume_with_last_event_id(system: System) -> None:
    net, _, _ = await two_networks(system)
    history = await settled(system, net)
    response = await system.client.get(
        "/v1/events", headers={**auth(net.admin.access), "Accept": SSE}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(SSE)
    assert response.headers["cache-control"] == "no-store"
    messages = sse_messages(response.text)
    assert messages[0] == {"retry": "3000"}
    events = [m for m in messages if "data" in m]
    assert [json.loads(m["data"])["id"] for m in events] == [e["id"] for e in history]
    assert [m["id"] for m in events] == [e["position"] for e in history]
    # a browser reconnecting sends the last id it had; it beats the URL's `after`
    resumed = await system.client.get(
        "/v1/events",
        params={"after": history[0]["position"]},
        headers={**auth(net.admin.access), "Accept": SSE, "Last-Event-ID": events[2]["id"]},
    )
    rest = [json.loads(m["data"]) for m in sse_messages(resumed.text) if "data" in m]
    assert [e["id"] for e in rest] == [e["id"] for e in history[3:]]
    # NDJSON is the default, also for */*; SSE wins when preferred
    for accept, expected in [
        ("*/*", NDJSON),
        ("application/x-ndjson", NDJSON),
        ("text/event-stream, application/x-ndjson;q=0.5", SSE),
        ("application/*;q=0.2, text/*", SSE),
        ("text/html, */*;q=0.1", NDJSON),
    ]:
        got = await system.client.get(
            "/v1/events", params={"limit": 1}, headers={**auth(net.admin.access), "Accept": accept}
        )
        assert got.headers["content-type"].startswith(expected), accept


async def test_types_filters_and_positions_that_cover_what_was_filtered_out(
    system: System,
) -> None:
    net, _, _ = await two_networks(system)
    history = await settled(system, net)
    hubs = await ndjson(system, net.admin.access, types="quartier.hubs.")
    assert hubs and {e["type"].split(".")[1] for e in hubs} == {"hubs"}
    assert [e["id"] for e in hubs] == [e["id"] for e in history if e["source"] == "quartier/hubs"]
    chosen = await ndjson(
        system,
        net.admin.access,
        types="quartier.identity.MemberJoined, quartier.hubs.HubCreated.v1",
    )
    assert [e["type"] for e in chosen] == [
        e["type"]
        for e in history
        if e["type"] in ("quartier.identity.MemberJoined.v1", "quartier.hubs.HubCreated.v1")
    ]
    # repeated `types` parameters add up
    both = await system.client.get(
        "/v1/events?types=quartier.hubs.&types=quartier.identity.TenantRegistered",
        headers=auth(net.admin.access),
    )
    lines = [json.loads(line) for line in both.text.splitlines() if line]
    assert {e["type"] for e in lines} == {"quartier.identity.TenantRegistered.v1"} | {
        e["type"] for e in hubs
    }
    # a filtered event's position covers what the filter skipped before it:
    # resuming without the filter goes on after it, not from the skipped ones
    first_hub = hubs[0]
    rest = await ndjson(system, net.admin.access, after=first_hub["position"])
    index = [e["id"] for e in history].index(first_hub["id"])
    assert [e["id"] for e in rest] == [e["id"] for e in history[index + 1 :]]
    nothing = await ndjson(system, net.admin.access, types="quartier.referrals.")
    assert nothing == []


async def test_limit_and_follow_with_a_heartbeat(system: System) -> None:
    net, _, karim = await two_networks(system)
    history = await settled(system, net)
    two = await ndjson(system, net.admin.access, limit=2)
    assert [e["id"] for e in two] == [e["id"] for e in history[:2]]

    # following: the history, heartbeats while nothing happens, then what comes
    lines: list[str] = []
    async with system.client.stream(
        "GET",
        "/v1/events",
        params={"follow": "true", "heartbeat": 1, "after": history[-1]["position"]},
        headers=auth(net.admin.access),
    ) as response:
        assert response.status_code == 200
        reading = response.aiter_lines()
        lines.append(await asyncio.wait_for(anext(reading), 3))  # a heartbeat within a second
        assert lines == [""]
        await mutate(system, "updateProfileCard", {"seeks": "Clients"}, karim.access)
        while True:
            line = await asyncio.wait_for(anext(reading), 5)
            if line:
                break
    event = json.loads(line)
    assert event["type"] == "quartier.identity.ProfileCardUpdated.v1"
    assert event["data"]["member_id"] == karim.member_id
    # over SSE a heartbeat is a comment
    async with system.client.stream(
        "GET",
        "/v1/events",
        params={"follow": "1", "heartbeat": 1, "after": event["position"]},
        headers={**auth(net.admin.access), "Accept": SSE},
    ) as response:
        reading = response.aiter_lines()
        assert await asyncio.wait_for(anext(reading), 3) == "retry: 3000"
        assert await asyncio.wait_for(anext(reading), 3) == ""
        assert await asyncio.wait_for(anext(reading), 3) == ": keep-alive"


async def test_resuming_across_forced_disconnects_loses_and_repeats_nothing(
    system: System,
) -> None:
    """A consumer follows the stream while members keep changing their cards;
    its connection is cut every few events (by the client, or by `limit`),
    and it resumes each time from the last position it had."""
    net = await open_network(system, "pole-11e")
    members = [
        await join(system, net, f"m{i}@pole.example", f"Member {i}", "plumber") for i in range(3)
    ]

    async def write() -> None:
        for round in range(6):
            for m in members:
                await mutate(system, "updateProfileCard", {"offers": f"offre {round}"}, m.access)
            await asyncio.sleep(0.05)

    writer = asyncio.create_task(write())
    seen: list[str] = []
    position: str | None = None
    cuts = 0
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        params: dict[str, Any] = {"follow": "true", "heartbeat": 1}
        if position:
            params["after"] = position
        if cuts % 2:
            params["limit"] = 2  # the server ends this one
        async with system.client.stream(
            "GET", "/v1/events", params=params, headers=auth(net.admin.access)
        ) as response:
            taken = 0
            async for line in response.aiter_lines():
                if not line:  # a heartbeat: everything published so far was had
                    if writer.done() and set(seen) == set(
                        await expected_ids(system, net.tenant_id)
                    ):
                        break
                    continue
                event = json.loads(line)
                seen.append(event["id"])
                position = event["position"]
                taken += 1
                if taken == 3:  # the client hangs up in the middle
                    break
        cuts += 1
        if writer.done() and set(seen) == set(await expected_ids(system, net.tenant_id)):
            break
        assert asyncio.get_running_loop().time() < deadline, "the consumer did not catch up"
    await writer
    expected = await expected_ids(system, net.tenant_id)
    assert cuts >= 5
    assert len(seen) == len(set(seen)), "an event came twice"
    assert set(seen) == set(expected), "an event was lost"
    assert per_service_order_holds(seen)
    # every reading's consumer is gone, also those of the clients that hung up
    js = system.hosts["identity"].bus.jetstream()

    async def no_reader_left() -> bool:
        consumers = await js.consumers_info(JETSTREAM_STREAM)
        return not [c for c in consumers if not c.config.durable_name]

    await eventually(no_reader_left)


# -- another network's events never appear --------------------------------------------


async def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


async def test_another_networks_events_never_appear_whatever_the_request(
    system: System,
) -> None:
    net, other, karim = await two_networks(system)
    mine = await settled(system, net)
    theirs = await settled(system, other)
    for params in [
        {},
        {"types": "quartier."},
        {"types": "quartier.identity.,quartier.hubs."},
        {"after": mine[0]["position"]},
        {"limit": 1000},
    ]:
        got = await ndjson(system, net.admin.access, **params)
        assert got and {e["tenant"] for e in got} == {net.tenant_id}, params
    # wildcards and subjects are not type prefixes
    for types in [
        "*",
        ">",
        "quartier.*",
        "quartier.identity.>",
        f"quartier.evt.{other.tenant_id}.>",
        "quartier.hubs.*.v1",
        "identity.MemberJoined",
        "quartier.hubs. ,quartier hubs",
    ]:
        response = await system.client.get(
            "/v1/events", params={"types": types}, headers=auth(net.admin.access)
        )
        assert (await error_of(response, 400, "invalid_input"))["field"] == "types", types
    # a position of the other network is refused, not read in ours or theirs
    response = await system.client.get(
        "/v1/events", params={"after": theirs[1]["position"]}, headers=auth(net.admin.access)
    )
    error = await error_of(response, 400, "invalid_input")
    assert error["field"] == "after" and "another network" in error["message"]
    response = await system.client.get(
        "/v1/events",
        headers={**auth(net.admin.access), "Last-Event-ID": theirs[0]["position"], "Accept": SSE},
    )
    assert (await error_of(response, 400, "invalid_input"))["field"] == "Last-Event-ID"
    # a forged position: edited, truncated, or well formed but of another tenant
    good = mine[2]["position"]
    forged = [
        good[:-2] + ("AA" if good[-2:] != "AA" else "BB"),
        good[:10],
        good + "A",
        Position(other.tenant_id, {"identity": 1}).encode(),
        "bm90IGEgcG9zaXRpb24",
        "../../etc/passwd",
        "x" * 2000,
    ]
    for after in forged:
        response = await system.client.get(
            "/v1/events", params={"after": after}, headers=auth(net.admin.access)
        )
        assert (await error_of(response, 400, "invalid_input"))["field"] == "after", after
    # who may read: tenant admins of the network, no one else
    member = await system.client.get("/v1/events", headers=auth(karim.access))
    await error_of(member, 403, "forbidden")
    operator = await system.client.get("/v1/events", headers=auth(OPERATOR_TOKEN))
    await error_of(operator, 403, "forbidden")
    anonymous = await system.client.get("/v1/events")
    await error_of(anonymous, 401, "unauthenticated")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    for bad in ["Bearer not-a-token", "Basic abc", net.admin.access, f"Bearer {net.admin.access}x"]:
        response = await system.client.get("/v1/events", headers={"Authorization": bad})
        await error_of(response, 401, "unauthenticated")


async def test_bad_inputs_are_refused_with_a_json_error(system: System) -> None:
    net = await open_network(system, "pole-11e")
    token = net.admin.access
    for params, field in [
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "99999999999999999999"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"follow": "maybe"}, "follow"),
        ({"heartbeat": "0"}, "heartbeat"),
        ({"heartbeat": "1.5"}, "heartbeat"),
        ({"after": ""}, "after"),
        ({"after": "!!!"}, "after"),
        ({"types": "quartier.hubs.%"}, "types"),
        ({"types": ",".join(f"quartier.t{i}" for i in range(30))}, "types"),
        ({"types": ",".join(f"quartier.t{i}" for i in range(21))}, "types"),
        ({"types": ""}, "types"),  # a filter lost on the way reads nothing, not everything
        ({"types": " , "}, "types"),
        ({"type": "quartier.hubs."}, "type"),
        ({"from": "start"}, "from"),
    ]:
        response = await system.client.get("/v1/events", params=params, headers=auth(token))
        error = await error_of(response, 400, "invalid_input")
        assert error["field"] == field, (params, error)
    twice = await system.client.get("/v1/events?limit=1&limit=2", headers=auth(token))
    assert (await error_of(twice, 400, "invalid_input"))["field"] == "limit"
    for accept in ["text/html", "application/json", "application/x-ndjson;q=0, text/*;q=0"]:
        response = await system.client.get("/v1/events", headers={**auth(token), "Accept": accept})
        await error_of(response, 406, "not_acceptable")
    # nothing else is served under /v1/events
    response = await system.client.post("/v1/events", headers=auth(token))
    assert response.status_code == 405


# -- the GraphQL subscription takes the same positions and filters ----------------------

STREAM = (
    "subscription($after: String, $types: [String!], $limit: Int) {"
    " tenantEvents(fromStart: true, after: $after, types: $types, limit: $limit)"
    " { id type tenant position } }"
)


async def test_the_graphql_subscription_shares_positions_and_filters(system: System) -> None:
    net, other, _ = await two_networks(system)
    history = await settled(system, net)
    ids = [e["id"] for e in history]
    results = await subscription_results(
        system, STREAM, {"limit": len(history)}, net.admin.access, len(history)
    )
    streamed = [r["tenantEvents"] for r in results]
    assert [e["id"] for e in streamed] == ids
    assert [e["position"] for e in streamed] == [e["position"] for e in history]
    # resume over HTTP from a GraphQL position, and the other way round
    rest = await ndjson(system, net.admin.access, after=streamed[3]["position"])
    assert [e["id"] for e in rest] == ids[4:]
    results = await subscription_results(
        system,
        STREAM,
        {"after": history[3]["position"], "types": ["quartier.hubs."], "limit": 1},
        net.admin.access,
        1,
    )
    [hub_event] = [r["tenantEvents"] for r in results]
    assert hub_event["id"] == next(e["id"] for e in history[4:] if e["source"] == "quartier/hubs")
    theirs = await settled(system, other)
    answer = await system.gql(
        "{ __typename }", token=net.admin.access
    )  # the gateway is up; now a refused position over WebSocket:
    assert answer["data"]
    from tests.e2e.test_gateway import graphql_ws, receive

    async with graphql_ws(system.gateway, net.admin.access) as ws:
        for op_id, variables, field in [
            ("theirs", {"after": theirs[0]["position"]}, "after"),
            ("wild", {"types": ["quartier.*"]}, "types"),
        ]:
            await ws.send(
                json.dumps(
                    {
                        "id": op_id,
                        "type": "subscribe",
                        "payload": {"query": STREAM, "variables": variables},
                    }
                )
            )
            message = await receive(ws)
            assert message["type"] == "next" and message["payload"]["data"] is None, message
            [error] = message["payload"]["errors"]
            assert error["extensions"]["code"] == "INVALID_INPUT"
            assert error["message"].startswith(field)
            assert await receive(ws) == {"id": op_id, "type": "complete"}


# -- the published contracts --------------------------------------------------------------


async def test_the_schemas_are_served_as_published(system: System) -> None:
    index = await system.client.get("/v1/schemas")
    assert index.status_code == 200
    listed = index.json()
    assert listed["envelope"] == "/v1/schemas/cloudevent"
    assert {e["type"] for e in listed["events"]} == set(event_schemas())
    for entry in listed["events"]:
        response = await system.client.get(entry["schema"])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/schema+json")
        assert response.json() == event_schemas()[entry["type"]]
        assert entry["subject"] == f"quartier.evt.{{tenant}}.{entry['service']}.{entry['name']}"
    assert (await system.client.get("/v1/schemas/cloudevent")).json() == envelope_schema()
    missing = await system.client.get("/v1/schemas/quartier.hubs.Nothing.v1")
    await error_of(missing, 404, "not_found")
