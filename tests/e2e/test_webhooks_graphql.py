"""Webhooks through the GraphQL gateway, over real HTTP, as an admin console
would: register an endpoint (its secret shown once), receive the network's
events signed (verified with the `standardwebhooks` library) at a real
receiver, read deliveries and attempts, replay; a member who is no admin,
and an invalid URL, get their typed errors and change nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from standardwebhooks import Webhook

from infra.catalogue import event_schemas
from tests.e2e.conftest import System, join, open_network
from tests.e2e.test_event_schemas import validate_published
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

ERRORS = "... on ValidationError { code message field } ... on Forbidden { code message }"
CREATE = (
    "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) {"
    " __typename ... on WebhookEndpointSecret { secret endpoint { id endpointId url enabled } }"
    f" {ERRORS} }} }}"
)
ENDPOINTS = (
    "{ webhookEndpoints(first: 1) { totalCount edges { node { id url pending"
    " deliveries { totalCount edges { node { id eventId eventType status attemptCount"
    " attempts { number statusCode ok durationMs error } } } } } } } }"
)
REPLAY = (
    "mutation($input: ReplayWebhookDeliveryInput!) { replayWebhookDelivery(input: $input) {"
    f" __typename ... on WebhookReplayed {{ queued deliveryIds }} {ERRORS} }} }}"
)
UPDATE = (
    "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) {"
    f" __typename ... on WebhookEndpointPayload {{ endpoint {{ enabled disabledReason }} }} {ERRORS} }} }}"
)
DELETE = (
    "mutation($input: WebhookEndpointInput!) { deleteWebhookEndpoint(input: $input) {"
    f" __typename ... on WebhookEndpointDeleted {{ endpointId }} {ERRORS} }} }}"
)
RETRY = (
    "mutation($input: WebhookEndpointInput!) { retryWebhookDeliveries(input: $input) {"
    f" __typename ... on WebhookEndpointPayload {{ endpoint {{ enabled pending owner }} }} {ERRORS} }} }}"
)
NODE = "query($id: ID!) { node(id: $id) { __typename ... on WebhookEndpoint { url } } }"


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def deliveries(system: System, token: str) -> list[dict[str, Any]]:
    answer = await system.gql(ENDPOINTS, None, token)
    assert "errors" not in answer, answer
    (endpoint,) = answer["data"]["webhookEndpoints"]["edges"]
    return [e["node"] for e in endpoint["node"]["deliveries"]["edges"]]


async def test_an_admin_registers_an_endpoint_and_reads_its_signed_deliveries(
    system: System, receiver: Receiver
) -> None:
    net = await open_network(system, "wh-gql")
    token = net.admin.access
    made = await system.gql(CREATE, {"input": {"url": receiver.url, "description": "crm"}}, token)
    result = made["data"]["createWebhookEndpoint"]
    assert result["__typename"] == "WebhookEndpointSecret", made
    secret = result["secret"]
    # the endpoint's own creation is an event of the network: it is delivered to it
    await eventually(lambda: receiver.delivered, timeout=20)
    event = Webhook(secret).verify(receiver.delivered[0].body, receiver.delivered[0].headers)
    assert event["type"] == "quartier.webhooks.EndpointCreated.v1"
    assert (
        "secret" not in receiver.delivered[0].body and "token=t" not in receiver.delivered[0].body
    )
    # the body is the CloudEvent as the stream has it (which adds only its position)
    response = await system.client.get(
        "/v1/events?types=quartier.webhooks.", headers={"Authorization": f"Bearer {token}"}
    )
    (line,) = [json.loads(x) for x in response.text.splitlines() if x]
    assert {k: v for k, v in line.items() if k != "position"} == event

    async def delivered() -> list[dict[str, Any]] | None:
        found = await deliveries(system, token)
        return found if found and found[-1]["status"] == "DELIVERED" else None

    (first, *_) = reversed(await eventually(delivered, timeout=20))
    assert first["eventId"] == event["id"]
    assert first["attempts"][0]["statusCode"] == 200 and first["attempts"][0]["ok"]
    replayed = await system.gql(REPLAY, {"input": {"deliveryId": first["id"]}}, token)
    assert replayed["data"]["replayWebhookDelivery"]["queued"] == 1, replayed
    await eventually(
        lambda: [r.headers["webhook-id"] for r in receiver.delivered].count(event["id"]) == 2,
        timeout=20,
    )
    node = await system.gql(NODE, {"id": result["endpoint"]["id"]}, token)
    assert node["data"]["node"] == {"__typename": "WebhookEndpoint", "url": receiver.url}

    member = await join(system, net, "m@wh-gql.example", "Member")
    refused = await system.gql(CREATE, {"input": {"url": receiver.url}}, member.access)
    assert refused["data"]["createWebhookEndpoint"]["code"] == "forbidden", refused
    invalid = await system.gql(CREATE, {"input": {"url": "ftp://example.org"}}, token)
    assert invalid["data"]["createWebhookEndpoint"]["field"] == "url", invalid
    assert invalid["data"]["createWebhookEndpoint"]["message"] == (
        "a webhook URL starts with https:// (or http://)"
    )
    in_french = await system.client.post(  # the refusal in the language asked for
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"url": "ftp://example.org"}}},
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "fr"},
    )
    assert in_french.json()["data"]["createWebhookEndpoint"]["message"] == (
        "l'URL d'un webhook commence par https:// (ou http://)"
    )
    listed = await system.gql(ENDPOINTS, None, token)
    assert listed["data"]["webhookEndpoints"]["totalCount"] == 1


async def test_endpoints_events_are_on_the_stream_without_secrets_and_match_their_schemas(
    system: System, receiver: Receiver
) -> None:
    net = await open_network(system, "wh-events")
    token = net.admin.access
    made = await system.gql(CREATE, {"input": {"url": receiver.url}}, token)
    result = made["data"]["createWebhookEndpoint"]
    secret, endpoint_id = result["secret"], result["endpoint"]["id"]
    for change in ({"description": "warehouse"}, {"enabled": False}):
        answer = await system.gql(UPDATE, {"input": {"endpointId": endpoint_id, **change}}, token)
        assert answer["data"]["updateWebhookEndpoint"]["__typename"] == "WebhookEndpointPayload"
    retried = await system.gql(RETRY, {"input": {"endpointId": endpoint_id}}, token)
    payload = retried["data"]["retryWebhookDeliveries"]
    assert payload["__typename"] == "WebhookEndpointPayload", retried
    assert payload["endpoint"]["owner"] and not payload["endpoint"]["owner"].startswith("key:")
    gone = await system.gql(DELETE, {"input": {"endpointId": endpoint_id}}, token)
    assert gone["data"]["deleteWebhookEndpoint"]["endpointId"] == endpoint_id

    async def history() -> list[dict[str, Any]] | None:
        response = await system.client.get(
            "/v1/events?types=quartier.webhooks.", headers={"Authorization": f"Bearer {token}"}
        )
        lines = [line for line in response.text.splitlines() if line]
        return [json.loads(line) for line in lines] if len(lines) == 4 else None

    events = await eventually(history, timeout=20)
    seen = await validate_published(system, events)
    assert seen == {t for t in event_schemas() if t.startswith("quartier.webhooks.")}
    raw = json.dumps(events)
    assert secret not in raw and secret.removeprefix("whsec_") not in raw
    assert "token=t" not in raw and "/hook" not in raw  # the URL's host only
    assert events[2]["data"]["reason"] == "admin"
