"""What a tenant API key may do beyond the stream (docs/api-keys.md): manage
webhooks with `events:read`, read referral reports with `reports:read` —
each within its scope and its own network only, recorded as done by the key,
never as a member."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Network, System, mutate, open_network
from tests.e2e.test_api_keys import create_key

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

ERRORS = "... on Error { __typename code message }"
CREATE_ENDPOINT = (
    "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) {"
    f" __typename ... on WebhookEndpointSecret {{ endpoint {{ id endpointId }} }} {ERRORS} }} }}"
)
DELETE_ENDPOINT = (
    "mutation($input: WebhookEndpointInput!) { deleteWebhookEndpoint(input: $input) {"
    f" __typename {ERRORS} }} }}"
)
ENDPOINTS = "{ webhookEndpoints(first: 5) { totalCount edges { node { endpointId url } } } }"
NETWORK_RESULTS = "{ results(scope: TENANT) { scope subjectId referralsGiven } }"
MEMBER_RESULTS = "query($s: ID) { results(scope: MEMBER, subjectId: $s) { scope referralsGiven } }"


def codes(answer: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in answer.get("errors", [])]


async def test_an_events_read_key_manages_the_networks_webhooks_only(system: System) -> None:
    net: Network = await open_network(system, "key-webhooks")
    other: Network = await open_network(system, "key-webhooks-other")
    key, _ = await create_key(system, net, ["EVENTS_READ"])
    reports_only, _ = await create_key(system, net, ["REPORTS_READ"])

    made = await system.gql(CREATE_ENDPOINT, {"input": {"url": "http://127.0.0.1:9/hook"}}, key)
    created = made["data"]["createWebhookEndpoint"]
    assert created["__typename"] == "WebhookEndpointSecret", made
    listed = await system.gql(ENDPOINTS, None, key)
    assert listed["data"]["webhookEndpoints"]["totalCount"] == 1, listed
    # the admin sees the endpoint the key made; the other network does not
    seen = await system.gql(ENDPOINTS, None, net.admin.access)
    assert seen["data"]["webhookEndpoints"]["totalCount"] == 1
    elsewhere = await system.gql(ENDPOINTS, None, other.admin.access)
    assert elsewhere["data"]["webhookEndpoints"]["totalCount"] == 0

    # a key without the scope: refused, nothing made
    refused = await system.gql(
        CREATE_ENDPOINT, {"input": {"url": "http://127.0.0.1:9/other"}}, reports_only
    )
    assert refused["data"]["createWebhookEndpoint"]["code"] == "forbidden", refused
    assert codes(await system.gql(ENDPOINTS, None, reports_only)) == ["FORBIDDEN"]
    after = await system.gql(ENDPOINTS, None, net.admin.access)
    assert after["data"]["webhookEndpoints"]["totalCount"] == 1

    deleted = await system.gql(
        DELETE_ENDPOINT, {"input": {"endpointId": created["endpoint"]["id"]}}, key
    )
    assert deleted["data"]["deleteWebhookEndpoint"]["__typename"] == "WebhookEndpointDeleted"


async def test_a_reports_read_key_reads_reports_and_nothing_else(system: System) -> None:
    net: Network = await open_network(system, "key-reports")
    other: Network = await open_network(system, "key-reports-other")
    key, _ = await create_key(system, net, ["REPORTS_READ"])
    events_only, _ = await create_key(system, net, ["EVENTS_READ"])

    answer = await system.gql(NETWORK_RESULTS, None, key)
    assert "errors" not in answer, answer
    report = answer["data"]["results"]
    assert report["scope"] == "TENANT" and report["referralsGiven"] == 0

    mine = await system.gql(MEMBER_RESULTS, {"s": net.admin.id}, key)
    assert mine["data"]["results"]["scope"] == "MEMBER", mine
    # a key is nobody: a member's report names its member
    assert codes(await system.gql(MEMBER_RESULTS, {"s": None}, key)) == ["INVALID_INPUT"]
    # another network's member is not found through this key
    theirs = await system.gql(MEMBER_RESULTS, {"s": other.admin.id}, key)
    assert codes(theirs) == ["NOT_FOUND"], theirs
    # without the scope, or for a member's own things: forbidden
    assert codes(await system.gql(NETWORK_RESULTS, None, events_only)) == ["FORBIDDEN"]
    assert codes(await system.gql("{ me { id } }", None, key)) == ["FORBIDDEN"]


HUB_RESULTS = "query($s: ID) { results(scope: HUB, subjectId: $s) { scope subjectId } }"
NAMED = "query($s: ID) { results(scope: MEMBER, subjectId: $s) { member { displayName } } }"
HUB_NAMED = "query($s: ID) { results(scope: HUB, subjectId: $s) { hub { name } } }"


async def test_a_reports_key_is_told_what_it_may_ask_for(system: System) -> None:
    """A hub's report names its hub (INVALID_INPUT naming subjectId, as a
    member's report for a key); a key reads figures and ids, not cards
    (FORBIDDEN: it is authenticated)."""
    net: Network = await open_network(system, "key-report-shapes")
    key, _ = await create_key(system, net, ["REPORTS_READ"])
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
    hub_id = hub["hub"]["id"]
    for token in (key, net.admin.access):
        refused = await system.gql(HUB_RESULTS, {"s": None}, token)
        assert codes(refused) == ["INVALID_INPUT"], refused
        assert "subjectId" in refused["errors"][0]["message"]
        found = await system.gql(HUB_RESULTS, {"s": hub_id}, token)
        assert found["data"]["results"]["scope"] == "HUB", found
        assert found["data"]["results"]["subjectId"] == hub["hub"]["hubId"], found
    for query, subject in [(NAMED, net.admin.id), (HUB_NAMED, hub_id)]:
        answer = await system.gql(query, {"s": subject}, key)
        assert codes(answer) == ["FORBIDDEN"], answer
        assert "subjectId" in answer["errors"][0]["message"]
    # the admin, a member, reads the names
    named = await system.gql(NAMED, {"s": net.admin.id}, net.admin.access)
    assert named["data"]["results"]["member"]["displayName"], named
    hub_named = await system.gql(HUB_NAMED, {"s": hub_id}, net.admin.access)
    assert hub_named["data"]["results"]["hub"]["name"] == "Cercle Voltaire", hub_named
