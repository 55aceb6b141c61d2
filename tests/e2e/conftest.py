"""The whole system in-process, as a client sees it: the services (identity
and hubs; the others join the `service_hosts` list) on the parametrised
store, and the GraphQL gateway served by uvicorn on a free port in the same
event loop, reached over real HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from gateway.app import create_app
from services.runtime.host import ServiceHost
from services.runtime.settings import Settings
from tests.support.env import OPERATOR_TOKEN
from tests.support.identity import PASSWORD, mailed_tokens
from tests.support.services import Services, is_shared, shared_stack

STARTUP_TIMEOUT = 15.0
WS_TIMEOUT = 10.0


@dataclass
class Gateway:
    """A gateway served over HTTP, and a client of it."""

    settings: Settings
    base_url: str
    client: httpx.AsyncClient

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/graphql"

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.client.post("/graphql", json=body, headers=headers)

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The JSON answer of a GraphQL operation (`data` and/or `errors`)."""
        response = await self.post(query, variables, token)
        assert response.headers.get("content-type", "").startswith("application/json"), (
            response.status_code,
            response.text[:500],
        )
        return response.json()


@dataclass
class System:
    """The running services and the gateway in front of them. `shared`: the
    tests of a module share it (`pytest.mark.shared_system`, tests/conftest.py)."""

    settings: Settings
    hosts: dict[str, ServiceHost]
    gateway: Gateway
    shared: bool = False
    networks_opened: int = 0

    @property
    def identity(self) -> ServiceHost:
        return self.hosts["identity"]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.gateway.client

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        return await self.gateway.gql(query, variables, token)

    async def event_count(self, service: str = "identity") -> int:
        """How many events the service's store holds (its max notification id)."""
        app = self.hosts[service].context["app"]
        return await asyncio.to_thread(app.max_notification_id)


@asynccontextmanager
async def serve_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """Serve `gateway.app.create_app(settings)` with uvicorn in this event loop,
    on a socket bound beforehand (no race for a free port)."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose
    # proto says TCP, and accepted sockets inherit it; without it every
    # response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="websockets-sansio",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if task.done():
            sock.close()
            task.result()  # raises what stopped it
            raise RuntimeError("the gateway stopped before it started")
        if time.monotonic() > deadline:
            server.should_exit = True
            await task
            sock.close()
            raise RuntimeError(f"the gateway did not start within {STARTUP_TIMEOUT}s")
        await asyncio.sleep(0.01)
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=15.0) as client:
            yield Gateway(settings=settings, base_url=base_url, client=client)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest_asyncio.fixture
async def service_hosts(services: Services) -> dict[str, ServiceHost]:
    """Every registered service, by name, already started (the gateway's
    readiness check expects them all)."""
    return await services.start_all()


@pytest_asyncio.fixture
async def system(
    request: pytest.FixtureRequest, settings: Settings, service_hosts: dict[str, ServiceHost]
) -> AsyncIterator[System]:
    """The services and a gateway in front of them: the test's own, or in a
    module marked `shared_system` the module's (served at its first test)."""
    settings = settings.with_(services=tuple(service_hosts))
    if is_shared(request):
        stack = shared_stack(request)
        if stack.system is None:
            gateway = await stack.extras.enter_async_context(serve_gateway(settings))
            stack.system = System(settings, service_hosts, gateway, shared=True)
        yield stack.system
        return
    async with serve_gateway(settings) as gateway:
        yield System(settings=settings, hosts=service_hosts, gateway=gateway)


@pytest_asyncio.fixture
async def gql(system: System) -> Any:
    """`await gql(query, variables=None, token=None)` → the JSON answer."""
    return system.gql


# -- a GraphQL client's toolkit: mutations, networks and members ----------------

ERROR_FIELDS = """
fragment Err on Error {
  __typename code message
  ... on ValidationError { field }
  ... on Conflict { field }
  ... on RuleViolation { rule }
}
"""
CARD_FIELDS = """
fragment Card on Member {
  id memberId displayName businessName activityCode activityLabel activityText
  offers seeks availableFor bio links workPostcode homePostcode roles isTenantAdmin
  email work { lat lon postcode } home { lat lon postcode }
}
"""
AUTH = (
    "... on AuthPayload { accessToken accessTokenExpiresAt refreshToken tenantSlug"
    " member { ...Card } }"
)
MUTATIONS: dict[str, tuple[str, str]] = {
    # name: (input type, selection of its success type)
    "createTenant": (
        "CreateTenantInput",
        "... on TenantCreated { tenant { id tenantId slug name createdAt }"
        " adminInvitation { invitationId expiresAt token } }",
    ),
    "inviteMember": ("InviteMemberInput", "... on InvitationSent { invitationId expiresAt token }"),
    "revokeInvitation": ("RevokeInvitationInput", "... on InvitationRevoked { invitationId }"),
    "acceptInvitation": ("AcceptInvitationInput", AUTH),
    "login": ("LoginInput", AUTH),
    "refreshSession": ("RefreshSessionInput", AUTH),
    "logout": ("RefreshSessionInput", "... on SignedOut { ok }"),
    "changePassword": ("ChangePasswordInput", "... on PasswordChanged { ok }"),
    "updateProfileCard": ("ProfileCardInput", "... on ProfileCardUpdated { member { ...Card } }"),
    "setTenantAdmin": ("SetTenantAdminInput", "... on TenantAdminSet { member { ...Card } }"),
    "setTenantLocale": ("SetTenantLocaleInput", "... on TenantLocaleSet { tenant { id locale } }"),
}
# hubs: what a client shows after each mutation (profiles through identity)
HUB_SELECTION = (
    "hub { id hubId name kind memberCount rulesVersion nonCompetitionInForce"
    " facilitatorTermEndsAt createdAt area { centre { lat lon } radiusKm postcodes }"
    " rules { admissionMode nonCompetition nonCompetitionLiftAt nonCompetitionLifted"
    " objectionWindowDays maxVisits facilitatorTermDays }"
    " coAdmins { id displayName } facilitator { id displayName }"
    " facilitatorRoster { id displayName } }"
)
NOMINATION_SELECTION = (
    "nomination { id nominationId hubId status note nominatedAt windowClosesAt"
    " objectionCount objections { reason raisedAt objector { id displayName } }"
    " exceptionReason decidedAt decisionReason rule"
    " candidate { id displayName } sponsor { id displayName } }"
)
MEMBERSHIP_SELECTION = (
    "membership { admittedAt rulesVersion exceptionReason isCoAdmin"
    " member { id displayName } godparent { id displayName } }"
)
MUTATIONS.update(
    {
        "createHub": ("CreateHubInput", f"... on HubPayload {{ {HUB_SELECTION} }}"),
        "changeHubRules": ("ChangeHubRulesInput", f"... on HubPayload {{ {HUB_SELECTION} }}"),
        "nominateCandidate": (
            "NominateCandidateInput",
            f"... on NominationPayload {{ {NOMINATION_SELECTION} }}",
        ),
        "joinHub": ("HubInput", f"... on HubMembershipPayload {{ {MEMBERSHIP_SELECTION} }}"),
        "raiseObjection": (
            "RaiseObjectionInput",
            f"... on NominationPayload {{ {NOMINATION_SELECTION} }}",
        ),
        "admitCandidate": (
            "AdmitCandidateInput",
            f"... on NominationPayload {{ {NOMINATION_SELECTION} }}",
        ),
        "rejectCandidate": (
            "RejectCandidateInput",
            f"... on NominationPayload {{ {NOMINATION_SELECTION} }}",
        ),
        "leaveHub": ("HubInput", "... on LeftHub { hubId }"),
        "removeHubMember": ("RemoveHubMemberInput", "... on HubMemberRemoved { hubId memberId }"),
        "addHubCoAdmin": ("HubMemberInput", f"... on HubPayload {{ {HUB_SELECTION} }}"),
        "removeHubCoAdmin": ("HubMemberInput", f"... on HubPayload {{ {HUB_SELECTION} }}"),
        "volunteerAsFacilitator": ("HubInput", f"... on HubPayload {{ {HUB_SELECTION} }}"),
        "withdrawFromFacilitatorRoster": (
            "HubInput",
            f"... on HubPayload {{ {HUB_SELECTION} }}",
        ),
        "handOverFacilitation": ("HubInput", f"... on HubPayload {{ {HUB_SELECTION} }}"),
        "swapFacilitatorTurns": (
            "SwapFacilitatorTurnsInput",
            f"... on HubPayload {{ {HUB_SELECTION} }}",
        ),
    }
)


def mutation_document(name: str) -> str:
    input_type, success = MUTATIONS[name]
    return (
        f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ __typename {success}"
        f" ...Err }} }}{ERROR_FIELDS}{CARD_FIELDS if '...Card' in success else ''}"
    )


async def mutate(
    system: System,
    name: str,
    input: dict[str, Any],
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one mutation of `MUTATIONS`; return its result, a success or an
    error type (a top-level error fails the test). `headers` replaces the
    Bearer `token` (to send malformed credentials)."""
    if headers is None:
        answer = await system.gql(mutation_document(name), {"input": input}, token)
    else:
        response = await system.client.post(
            "/graphql",
            json={"query": mutation_document(name), "variables": {"input": input}},
            headers=headers,
        )
        answer = response.json()
    assert "errors" not in answer, answer
    return answer["data"][name]


def assert_error(
    result: dict[str, Any], typename: str, code: str, *, field: str | None = None, **extra: Any
) -> None:
    """`result` is the error type `typename` with `code` (and, for validation
    errors and conflicts, naming `field`)."""
    assert result["__typename"] == typename, result
    assert result["code"] == code, result
    assert result["message"], result
    if typename in ("ValidationError", "Conflict"):
        assert result["field"] == field, result
    for key, value in extra.items():
        assert result[key] == value, result


@dataclass
class Session:
    access: str
    refresh: str
    id: str  # the member's global id
    member_id: str
    email: str


@dataclass
class Network:
    slug: str
    tenant_id: str
    admin: Session


def session_of(payload: dict[str, Any], email: str) -> Session:
    assert payload["__typename"] == "AuthPayload", payload
    return Session(
        access=payload["accessToken"],
        refresh=payload["refreshToken"],
        id=payload["member"]["id"],
        member_id=payload["member"]["memberId"],
        email=email,
    )


def card_input(name: str, activity: str = "plumber", **extra: Any) -> dict[str, Any]:
    return {"displayName": name, "activityCode": activity, **extra}


async def open_network(system: System, slug: str) -> Network:
    """The operator creates the network; its first admin accepts the mailed
    invitation (a consultant working in Paris 11e, named `Admin <slug>`).
    On a shared system each network gets a slug of its own (`<slug>-<n>`,
    the returned `Network.slug`), so that tests opening "the same" network
    stay apart."""
    name = slug
    if system.shared:
        system.networks_opened += 1
        slug = f"{slug}-{system.networks_opened}"
    email = f"admin@{slug}.example"
    created = await mutate(
        system,
        "createTenant",
        {"slug": slug, "name": f"Network {name}", "adminEmail": email},
        OPERATOR_TOKEN,
    )
    assert created["__typename"] == "TenantCreated", created
    accepted = await mutate(
        system,
        "acceptInvitation",
        {
            "token": mailed_tokens(system.settings.mail_dir)[email],
            "password": PASSWORD,
            "card": card_input(
                f"Admin {name}",
                "management-consultant",
                work={"lat": 48.8575, "lon": 2.3795, "postcode": "75011"},
            ),
        },
    )
    return Network(slug, created["tenant"]["tenantId"], session_of(accepted, email))


async def invite(system: System, net: Network, email: str) -> str:
    """The network's admin invites `email`; returns the token from the mail."""
    sent = await mutate(system, "inviteMember", {"email": email}, net.admin.access)
    assert sent["__typename"] == "InvitationSent", sent
    assert sent["token"] is None  # a member never sees the token: it goes by mail only
    return mailed_tokens(system.settings.mail_dir)[email]


async def join(
    system: System, net: Network, email: str, name: str, activity: str = "plumber", **card: Any
) -> Session:
    """Invited by the admin, `email` accepts with a card and is signed in."""
    token = await invite(system, net, email)
    accepted = await mutate(
        system,
        "acceptInvitation",
        {"token": token, "password": PASSWORD, "card": card_input(name, activity, **card)},
    )
    return session_of(accepted, email)


async def subscription_results(
    system: System,
    query: str,
    variables: dict[str, Any] | None,
    token: str | None,
    count: int,
    timeout: float = WS_TIMEOUT,
) -> list[dict[str, Any]]:
    """The first `count` results (`data`) of a GraphQL subscription over
    graphql-transport-ws, the token in connection_init as browsers send it."""
    found: list[dict[str, Any]] = []
    async with connect(
        system.gateway.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:

        async def receive() -> dict[str, Any]:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif message["type"] != "pong":
                    return message

        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert await receive() == {"type": "connection_ack"}
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        while len(found) < count:
            message = await receive()
            assert message["id"] == "1" and message["type"] == "next", message
            assert "errors" not in message["payload"], message
            found.append(message["payload"]["data"])
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
    return found
