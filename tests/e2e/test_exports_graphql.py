"""Exports through the GraphQL gateway, over real HTTP, as an admin console
would: start a network export (a repeat answers the same one), follow it to
READY, download the zip from its short-lived link; a member may not export
the network (a typed error, nothing started) but gets their own data; a
tampered link is refused; a tenant API key with the `export` scope
exports the network, one without it or asking ME is Forbidden; a member
starting ME exports again and again reaches their own limit (RuleViolation
`max_own_exports`) while the admin and a key still export the network; downloads
are rate-limited per export and per client address (429, `Retry-After`).
A refusal is said in the language the request asks for (`Accept-Language`)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import pytest

from gateway.exports import DOWNLOADS_PER_MINUTE
from services.exports.job import OWN_PER_DAY
from tests.e2e.conftest import System, join, open_network, serve_gateway
from tests.e2e.test_api_keys import create_key
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

START = (
    "mutation($input: StartExportInput!) { startExport(input: $input) { __typename"
    " ... on ExportStarted { export { id exportId scope status progress downloadUrl } }"
    " ... on Forbidden { code message } ... on Unauthenticated { code }"
    " ... on RuleViolation { rule message } } }"
)
EXPORTS = (
    "{ exports(first: 5) { totalCount edges { node { id exportId scope status progress"
    " requestedAt readyAt expiresAt downloadUrl } } } }"
)


async def ready_export(system: System, token: str, export_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        answer = await system.gql(EXPORTS, None, token)
        for edge in answer["data"]["exports"]["edges"]:
            node = edge["node"]
            if node["exportId"] == export_id and node["status"] in ("READY", "FAILED"):
                return dict(node)
        return None

    found: dict[str, Any] = await eventually(check, timeout=60)
    return found


async def test_an_admin_exports_the_network_and_a_member_their_own_data(system: System) -> None:
    net = await open_network(system, "x-gql")
    member = await join(system, net, f"m@{net.slug}.example", "Member")
    admin = net.admin.access

    started = await system.gql(START, {"input": {"scope": "NETWORK"}}, admin)
    export = started["data"]["startExport"]["export"]
    assert export["status"] in ("QUEUED", "RUNNING", "READY") and export["scope"] == "NETWORK"
    refused = await system.gql(START, {"input": {"scope": "NETWORK"}}, member.access)
    assert refused["data"]["startExport"]["__typename"] == "Forbidden"

    node = await ready_export(system, admin, export["exportId"])
    assert node["status"] == "READY" and node["progress"] == 1.0
    url = node["downloadUrl"]
    assert url and url.startswith(system.settings.public_url)
    response = await system.client.get(url.removeprefix(system.settings.public_url))
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        manifest = json.loads(z.read("manifest.json"))
        counts = {f["name"]: f["rows"] for f in manifest["files"]}
    assert counts["members.csv"] == 2 and manifest["scope"] == "network"

    tampered = url.removeprefix(system.settings.public_url)[:-3] + "xyz"
    bad = await system.client.get(tampered)
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "invalid_token"

    own = await system.gql(START, {"input": {"scope": "ME"}}, member.access)
    own_id = own["data"]["startExport"]["export"]["exportId"]
    mine = await ready_export(system, member.access, own_id)
    listed = await system.gql(EXPORTS, None, member.access)
    assert [e["node"]["exportId"] for e in listed["data"]["exports"]["edges"]] == [own_id]
    got = await system.client.get(mine["downloadUrl"].removeprefix(system.settings.public_url))
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        members = z.read("members.csv").decode()
    assert member.email in members and net.admin.email not in members


async def test_an_api_key_with_the_export_scope_exports_the_network(system: System) -> None:
    net = await open_network(system, "x-key")
    key, _ = await create_key(system, net, ["EXPORT"])
    stream_only, _ = await create_key(system, net, ["EVENTS_READ"])

    refused = await system.gql(START, {"input": {"scope": "NETWORK"}}, stream_only)
    assert refused["data"]["startExport"]["__typename"] == "Forbidden"
    own = await system.gql(START, {"input": {"scope": "ME"}}, key)
    assert own["data"]["startExport"]["__typename"] == "Forbidden"  # a key is no member

    started = await system.gql(START, {"input": {"scope": "NETWORK"}}, key)
    assert started["data"]["startExport"]["__typename"] == "ExportStarted", started
    export = started["data"]["startExport"]["export"]
    node = await ready_export(system, key, export["exportId"])
    assert node["status"] == "READY", node
    got = await system.client.get(node["downloadUrl"].removeprefix(system.settings.public_url))
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        assert net.admin.email in z.read("members.csv").decode()
    admins = await system.gql(EXPORTS, None, net.admin.access)  # the admins see it too
    assert export["exportId"] in {e["node"]["exportId"] for e in admins["data"]["exports"]["edges"]}


async def test_a_member_starting_exports_again_and_again_never_blocks_the_network(
    system: System,
) -> None:
    """The tryout's flood: a member's own exports stop at their own limit
    (a typed RuleViolation naming it), and the admin and an API key still
    start the network's export."""
    net = await open_network(system, "x-flood")
    member = await join(system, net, f"m@{net.slug}.example", "Member")
    key, _ = await create_key(system, net, ["EXPORT"])
    for _ in range(OWN_PER_DAY):
        started = await system.gql(START, {"input": {"scope": "ME"}}, member.access)
        own_id = started["data"]["startExport"]["export"]["exportId"]
        assert (await ready_export(system, member.access, own_id))["status"] == "READY"
    for _ in range(3):
        refused = (await system.gql(START, {"input": {"scope": "ME"}}, member.access))["data"]
        assert refused["startExport"]["__typename"] == "RuleViolation", refused
        assert refused["startExport"]["rule"] == "max_own_exports"
        assert refused["startExport"]["message"].startswith(
            f"you may start at most {OWN_PER_DAY} exports of scope ME in 24 hours"
        )

    started = await system.gql(START, {"input": {"scope": "NETWORK"}}, net.admin.access)
    assert started["data"]["startExport"]["__typename"] == "ExportStarted", started
    export_id = started["data"]["startExport"]["export"]["exportId"]
    by_key = await system.gql(START, {"input": {"scope": "NETWORK"}}, key)
    assert by_key["data"]["startExport"]["__typename"] == "ExportStarted", by_key
    assert by_key["data"]["startExport"]["export"]["scope"] == "NETWORK"
    assert (await ready_export(system, key, export_id))["status"] == "READY"


async def test_export_refusals_are_said_in_the_language_asked_for(system: System) -> None:
    net = await open_network(system, "x-lang")
    member = await join(system, net, f"m@{net.slug}.example", "Member")
    key, _ = await create_key(system, net, ["EXPORT"])

    async def start(scope: str, token: str, language: str | None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if language is not None:
            headers["Accept-Language"] = language
        response = await system.client.post(
            "/graphql",
            json={"query": START, "variables": {"input": {"scope": scope}}},
            headers=headers,
        )
        answer: dict[str, Any] = response.json()["data"]["startExport"]
        return answer

    for scope, token, language, said in (
        (
            "NETWORK",
            member.access,
            "fr",
            "seul un administrateur du réseau peut exporter ses données",
        ),
        ("NETWORK", member.access, None, "only a tenant admin may export the network"),
        ("ME", key, "fr", "une clé d'API n'exporte que le réseau (portée NETWORK)"),
        ("ME", key, None, "an API key exports the network (scope NETWORK) only"),
    ):
        refused = await start(scope, token, language)
        assert refused == {"__typename": "Forbidden", "code": "forbidden", "message": said}
    listed = await system.gql(EXPORTS, None, net.admin.access)
    assert listed["data"]["exports"]["totalCount"] == 0  # nothing started


GUESS = "00000000-0000-4000-8000-{:012d}"  # an export id someone guesses


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.headers["cache-control"] == "no-store"


async def test_downloads_are_rate_limited_per_export_and_per_address(system: System) -> None:
    net = await open_network(system, "x-rate")
    started = await system.gql(START, {"input": {"scope": "ME"}}, net.admin.access)
    export_id = started["data"]["startExport"]["export"]["exportId"]
    node = await ready_export(system, net.admin.access, export_id)
    link = node["downloadUrl"].removeprefix(system.settings.public_url)

    # a leaked link hammered: the export's downloads a minute, then 429 (from
    # any address: a fresh gateway whose address budget is ample)
    ample = system.settings.with_(rate_limit_per_minute=1000, member_rate_limit_per_minute=1000)
    async with serve_gateway(ample) as gateway:
        for _ in range(DOWNLOADS_PER_MINUTE):
            got = await gateway.client.get(link)
            assert got.status_code == 200 and got.content[:2] == b"PK"
        assert_rate_limited(await gateway.client.get(link))
        assert_rate_limited(await gateway.client.get(link[:-3] + "xyz"))  # any link to it
        other = await gateway.client.get(f"/v1/exports/{GUESS.format(0)}/download?token=x")
        assert other.status_code == 403  # another export has its own downloads

    # one address guessing links: its request budget, then 429
    tight = system.settings.with_(member_rate_limit_per_minute=3)
    async with serve_gateway(tight) as gateway:
        statuses = [
            (
                await gateway.client.get(f"/v1/exports/{GUESS.format(n)}/download?token=x")
            ).status_code
            for n in range(3)
        ]
        assert statuses == [403, 403, 403]
        assert_rate_limited(await gateway.client.get(link))
