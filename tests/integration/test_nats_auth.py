"""The bus with authentication on, as `quartier up` configures its embedded
server (infra/nats_auth.py): each process its own NATS user. What it must
refuse — an unauthenticated connection, a service publishing another's events
or answering another's requests, a forged request to a service it does not
need, the gateway publishing events, consumers reading what is not theirs,
`quartier stream` without the operator's credentials — and that the services,
the gateway and the CLI work with their own.

The other tests run on an open server (tests/conftest.py) for speed; these
start one with the generated configuration (about as cheap)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import nats
import nats.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from structlog.testing import capture_logs

from infra import cli, nats_auth
from infra.nats_server import NatsServer, start_nats_server
from services import registry
from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.clock import ShiftedClock
from services.runtime.errors import Unavailable
from services.runtime.host import ServiceHost
from services.runtime.messages import Actor, Envelope, encoder
from services.runtime.settings import Settings
from services.runtime.stream import (
    STREAM,
    EventReader,
    Position,
    read_tenant_events,
    stream_config,
)
from services.runtime.tenancy import RequestContext
from tests.support.env import make_settings
from tests.support.identity import PASSWORD, as_member, card, create_network, mailed_tokens
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

VOLTAIRE = hc.Area(centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5)
IN_11E = {"lat": 48.8560, "lon": 2.3750, "postcode": "75011"}
REFUSED = 0.5  # seconds to wait for what the server will not deliver


@dataclass
class Secured:
    """A server on the generated configuration, and each user's settings."""

    server: NatsServer
    data_dir: Path
    clock: ShiftedClock  # answers `quartier clock`
    hosts: dict[str, ServiceHost] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def settings(self, user: str | None, **extra: str) -> Settings:
        env = dict(extra)
        if user is not None:
            env["QUARTIER_NATS_USER"] = user
            env["QUARTIER_NATS_PASSWORD_FILE"] = str(nats_auth.password_file(self.data_dir, user))
        return make_settings(self.data_dir, self.url, **env)

    async def bus(self, user: str | None, stack: AsyncExitStack) -> Bus:
        s = self.settings(user)
        bus = Bus(self.url, f"test-{user}", request_timeout=5, credentials=s.nats_credentials)
        await bus.connect(wait=5)
        stack.push_async_callback(bus.close)
        return bus

    async def start(self, *names: str) -> None:
        """Each service with its own NATS user, as `quartier up` starts them."""
        for spec in registry.with_needs(names):
            if spec.name not in self.hosts:
                host = spec.builder()(self.settings(spec.name), clock=self.clock)
                await host.start()
                self.hosts[spec.name] = host


@pytest.fixture
def secured_server(tmp_path: Path) -> Iterator[tuple[NatsServer, Path]]:
    data_dir = tmp_path / "data"
    config = nats_auth.write_server_config(data_dir)
    server = start_nats_server(tmp_path / "nats", config=config)
    yield server, data_dir
    server.stop()


@pytest_asyncio.fixture
async def secured(secured_server: tuple[NatsServer, Path]) -> AsyncIterator[Secured]:
    server, data_dir = secured_server
    system = Secured(server, data_dir, ShiftedClock())
    yield system
    for host in reversed(list(system.hosts.values())):
        await host.stop()


@dataclass
class Raw:
    """A plain nats-py connection as one user, recording what the server refused."""

    nc: Client
    errors: list[str]

    def refused(self, what: str) -> bool:
        return any("permissions violation" in e and what.lower() in e for e in self.errors)


async def raw(secured: Secured, user: str, stack: AsyncExitStack) -> Raw:
    errors: list[str] = []

    async def on_error(e: Exception) -> None:
        errors.append(str(e).lower())

    creds = secured.settings(user).nats_credentials
    assert creds is not None
    nc = await nats.connect(
        servers=[secured.url],
        user=creds.user,
        password=creds.password,
        inbox_prefix=creds.inbox_prefix,
        error_cb=on_error,
        allow_reconnect=False,
    )
    stack.push_async_callback(nc.close)
    return Raw(nc, errors)


async def refused(r: Raw, what: str) -> bool:
    """Whether the server told `r` it may not do `what` (it says so at once)."""
    await r.nc.flush()
    return bool(await eventually(lambda: r.refused(what), timeout=REFUSED * 2))


async def admin_stream(secured: Secured, stack: AsyncExitStack) -> Raw:
    """The embedded server's admin (no Quartier process uses it), to look."""
    admin = await raw(secured, nats_auth.ADMIN, stack)
    js = admin.nc.jetstream()
    try:
        await js.stream_info(STREAM)
    except nats.js.errors.NotFoundError:
        await js.add_stream(stream_config())
    return admin


def forged(tenant_id: str) -> bytes:
    """A request envelope claiming a tenant admin of `tenant_id`."""
    return encoder.encode(
        Envelope(
            tenant_id=tenant_id,
            actor=Actor(kind="member", member_id="m", tenant_id=tenant_id, roles=("tenant_admin",)),
            correlation_id="forged",
            body=msgspec.Raw(encoder.encode(hc.ListHubs())),
        )
    )


# -- authentication --------------------------------------------------------------------


async def test_an_unauthenticated_or_mistaken_connection_is_refused(secured: Secured) -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable, match="refused the connection \\(no user\\)"):
        await Bus(secured.url, "anonymous").connect(wait=10)
    assert time.monotonic() - started < 5  # said at once, not after the wait
    wrong = secured.settings("hubs").nats_credentials
    assert wrong is not None
    with pytest.raises(Unavailable, match="refused the connection \\(user 'hubs'\\)"):
        await Bus(
            secured.url, "mistaken", credentials=type(wrong)("hubs", "not its password")
        ).connect(wait=10)
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(servers=[secured.url], allow_reconnect=False)
    async with AsyncExitStack() as stack:
        bus = await secured.bus("gateway", stack)
        assert bus.is_connected


# -- the system with its own credentials ---------------------------------------------


async def test_services_gateway_and_cli_work_with_their_own_credentials(
    secured: Secured, capsys: pytest.CaptureFixture[str]
) -> None:
    """A co-optation through identity and back, as in
    test_hubs_service.py, each process as its own NATS user: requests between
    services, relays, reactions' durable consumers, the gateway's and the
    CLI's reads of the stream; and not one refusal logged."""
    with capture_logs() as logs:
        await secured.start("identity", "hubs")
        async with AsyncExitStack() as stack:
            gateway = await secured.bus("gateway", stack)
            tenant, admin = await create_network(gateway, "pole-11e")
            hub = await gateway.request(  # hubs asks identity where the founder works
                hc.CreateHub(name="Voltaire", kind="neighbourhood", area=VOLTAIRE),
                as_member(admin),
            )
            nomination = await gateway.request(  # hubs has identity invite the candidate
                hc.NominateCandidate(hub_id=hub.hub_id, email="n@pole.example"),
                as_member(admin),
            )
            token = mailed_tokens(secured.settings(None).mail_dir)["n@pole.example"]
            await gateway.request(
                idc.AcceptInvitation(
                    token=token, password=PASSWORD, card=card("N", "baker", work=IN_11E)
                ),
                RequestContext(),
            )

            async def opened() -> bool:  # hubs' reaction to identity's MemberJoined
                n = await gateway.request(
                    hc.GetNomination(hub_id=hub.hub_id, nomination_id=nomination.nomination_id),
                    as_member(admin),
                )
                return n.status == "open"

            await eventually(opened)
            hubs = secured.hosts["hubs"]
            assert {c.durable for c in hubs.reactions if c.handled} == {
                "hubs-directory",
                "hubs-admissions",
                "hubs-erasure",  # reads identity's events, acts on MemberErased only
            }

            async def relayed() -> list[bytes]:  # the gateway reads the tenant's stream
                found = [
                    raw_event
                    async for raw_event in read_tenant_events(
                        gateway.jetstream(), tenant.tenant_id, from_start=True, follow=False
                    )
                ]
                types = {json.loads(e)["type"] for e in found}
                return found if "quartier.hubs.CandidateJoinedNetwork.v1" in types else []

            history = await eventually(relayed)
            # the resumable reader of `GET /v1/events`: its own pull consumer,
            # single messages for a position's hint, and resuming after one
            read = [e async for e in EventReader(gateway.jetstream(), tenant.tenant_id) if e]
            assert [e.event.id for e in read] == [json.loads(e)["id"] for e in history]
            after = Position.decode(read[0].position, tenant.tenant_id)
            rest = [
                e async for e in EventReader(gateway.jetstream(), tenant.tenant_id, after=after)
            ]
            assert [e.event.id for e in rest if e] == [e.event.id for e in read[1:]]

        # the CLI, as the operator
        code = await cli.stream(secured.settings("operator"), "pole-11e", True, False, None)
        assert code == 0
        printed = capsys.readouterr().out.splitlines()
        assert len(printed) == len(history)
        assert await cli.clock(secured.settings("operator"), None) == 0
        # `quartier stream rebuild`: the operator asks, each relay reads its
        # events' headers through its own consumer; nothing was lost
        assert await cli.stream_rebuild(secured.settings("operator"), ["identity", "hubs"], 60) == 0
    denied = [e for e in logs if e["event"] in ("nats.permission_denied", "nats.refused")]
    assert denied == []


# -- what a service's credential cannot do ------------------------------------------


async def test_a_service_cannot_publish_another_services_events(secured: Secured) -> None:
    async with AsyncExitStack() as stack:
        admin = await admin_stream(secured, stack)
        hubs = await raw(secured, "hubs", stack)
        with pytest.raises(nats.errors.TimeoutError):
            await hubs.nc.jetstream().publish(
                "quartier.evt.t1.identity.MemberJoined", b"{}", timeout=REFUSED
            )
        assert await refused(hubs, 'publish to "quartier.evt.t1.identity.memberjoined"')
        own = await hubs.nc.jetstream().publish("quartier.evt.t1.hubs.HubCreated", b"{}")
        assert own.seq == 1  # its own, yes
        info = await admin.nc.jetstream().stream_info(STREAM, subjects_filter=">")
        assert info.state.subjects == {"quartier.evt.t1.hubs.HubCreated": 1}


async def test_the_gateway_cannot_publish_events(secured: Secured) -> None:
    async with AsyncExitStack() as stack:
        admin = await admin_stream(secured, stack)
        gateway = await raw(secured, "gateway", stack)
        for subject in ("quartier.evt.t1.identity.MemberJoined", "quartier.evt.t1.gateway.X"):
            with pytest.raises(nats.errors.TimeoutError):
                await gateway.nc.jetstream().publish(subject, b"{}", timeout=REFUSED)
            assert await refused(gateway, f'publish to "{subject}"')
        assert (await admin.nc.jetstream().stream_info(STREAM)).state.messages == 0


async def test_a_service_cannot_answer_another_services_requests(secured: Secured) -> None:
    await secured.start("identity")
    async with AsyncExitStack() as stack:
        hubs = await raw(secured, "hubs", stack)
        heard: list[bytes] = []

        async def impostor(msg: Any) -> None:
            heard.append(msg.data)
            await msg.respond(b"forged answer")

        for subject, queue in (
            ("quartier.qry.identity.>", "identity"),
            ("quartier.cmd.identity.Login", ""),
            ("quartier.ping.identity", ""),
        ):
            await hubs.nc.subscribe(subject, queue=queue, cb=impostor)
            assert await refused(hubs, f'subscription to "{subject.lower()}"')
        # nor overhear the answers to anyone else
        for inbox in ("_INBOX.>", "_INBOX.gateway.>", ">"):
            await hubs.nc.subscribe(inbox, cb=impostor)
            assert await refused(hubs, f'subscription to "{inbox.lower()}"')
        gateway = await secured.bus("gateway", stack)
        tenant, _ = await create_network(gateway, "pole-11e")
        found = await gateway.request(idc.GetTenant(slug="pole-11e"), RequestContext())
        assert found == tenant  # identity answered, nobody else heard
        assert heard == []


async def test_a_forged_request_to_a_service_not_needed_goes_nowhere(secured: Secured) -> None:
    """identity needs no service: its credential cannot ask hubs anything,
    while hubs' subjects have a responder (which the gateway reaches)."""
    async with AsyncExitStack() as stack:
        hubs = await raw(secured, "hubs", stack)
        received: list[bytes] = []

        async def responder(msg: Any) -> None:
            received.append(msg.data)
            await msg.respond(b"answer")

        await hubs.nc.subscribe("quartier.qry.hubs.>", queue="hubs", cb=responder)
        await hubs.nc.flush()
        identity = await raw(secured, "identity", stack)
        with pytest.raises(nats.errors.TimeoutError):
            await identity.nc.request("quartier.qry.hubs.ListHubs", forged("t1"), timeout=REFUSED)
        assert await refused(identity, 'publish to "quartier.qry.hubs.listhubs"')
        assert received == []
        gateway = await raw(secured, "gateway", stack)
        answer = await gateway.nc.request("quartier.qry.hubs.ListHubs", forged("t1"), timeout=5)
        assert answer.data == b"answer" and len(received) == 1
        # nor may the launcher or the CLI's operator user answer as hubs
        for user in ("operator", "launcher"):
            other = await raw(secured, user, stack)
            await other.nc.subscribe("quartier.qry.hubs.>", cb=responder)
            assert await refused(other, 'subscription to "quartier.qry.hubs.>"')
        # and the operator's user asks only the CLI's requests
        operator = await raw(secured, "operator", stack)
        with pytest.raises(nats.errors.TimeoutError):
            await operator.nc.request("quartier.qry.hubs.ListHubs", forged("t1"), timeout=REFUSED)
        assert await refused(operator, 'publish to "quartier.qry.hubs.listhubs"')


# -- consumers ----------------------------------------------------------------------------


def pull_config(name: str, filter_subject: str) -> ConsumerConfig:
    return ConsumerConfig(
        name=name,
        durable_name=name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        filter_subject=filter_subject,
    )


async def test_consumers_read_only_what_they_are_allowed(secured: Secured) -> None:
    async with AsyncExitStack() as stack:
        admin = await admin_stream(secured, stack)
        ajs = admin.nc.jetstream()
        await ajs.publish("quartier.evt.t1.identity.MemberJoined", b"{}")
        await ajs.publish("quartier.evt.t1.hubs.HubCreated", b"{}")
        # another service's durable consumer
        await ajs.add_consumer(STREAM, pull_config("events-hub-directory", "quartier.evt.*.hubs.>"))

        hubs = await raw(secured, "hubs", stack)
        js = hubs.nc.jetstream(timeout=REFUSED)
        # its own consumer, on the events of a service it needs: yes
        await js.add_consumer(STREAM, pull_config("hubs-directory", "quartier.evt.*.identity.>"))
        mine = await js.pull_subscribe_bind(durable="hubs-directory", stream=STREAM)
        (msg,) = await mine.fetch(1, timeout=5)
        assert msg.subject == "quartier.evt.t1.identity.MemberJoined"
        await msg.ack_sync()
        # ...but not over the whole stream, not under another name, not on its own
        # events' neighbours, and no ephemeral reader either
        for name, subject in (
            ("hubs-directory", "quartier.evt.>"),
            ("hubs-spy", "quartier.evt.*.identity.>"),
            ("events-hub-directory", "quartier.evt.*.hubs.>"),
        ):
            with pytest.raises(nats.errors.TimeoutError):
                await js.add_consumer(STREAM, pull_config(name, subject))
            assert await refused(hubs, f"consumer.create.quartier_events.{name}.")
        with pytest.raises(nats.errors.TimeoutError):
            await js.subscribe("quartier.evt.t1.>", stream=STREAM, ordered_consumer=True)
        assert await refused(hubs, 'publish to "$js.api.consumer.create.quartier_events"')
        # nor read or acknowledge another's consumer
        theirs = await js.pull_subscribe_bind(durable="events-hub-directory", stream=STREAM)
        with pytest.raises(nats.errors.TimeoutError):
            await theirs.fetch(1, timeout=REFUSED)
        assert await refused(hubs, "consumer.msg.next.quartier_events.events-hub-directory")
        info = await ajs.consumer_info(STREAM, "events-hub-directory")
        assert info.num_pending == 1 and info.num_ack_pending == 0

        # the gateway reads through ephemeral consumers only
        gateway = await raw(secured, "gateway", stack)
        gjs = gateway.nc.jetstream(timeout=REFUSED)
        with pytest.raises(nats.errors.TimeoutError):
            await gjs.add_consumer(STREAM, pull_config("gateway-spy", "quartier.evt.>"))
        legacy = json.dumps(
            {
                "stream_name": STREAM,
                "config": {"durable_name": "gateway-spy", "ack_policy": "explicit"},
            }
        ).encode()
        answer = await gateway.nc.request(f"$JS.API.CONSUMER.CREATE.{STREAM}", legacy, timeout=5)
        assert "expected to be ephemeral" in json.loads(answer.data)["error"]["description"]
        # (it pulls from consumers the server names, so it could pull from a
        # service's too: docs/security.md, "The bus", says why that is accepted)
        sub = await gateway.nc.jetstream().subscribe(
            "quartier.evt.t1.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        assert (await sub.next_msg(timeout=5)).subject == "quartier.evt.t1.identity.MemberJoined"
        await sub.unsubscribe()


# -- the CLI ------------------------------------------------------------------------------


async def test_stream_needs_the_operators_credentials_and_token(
    secured: Secured, capsys: pytest.CaptureFixture[str]
) -> None:
    await secured.start("identity")
    async with AsyncExitStack() as stack:
        await create_network(await secured.bus("gateway", stack), "pole-11e")
    # no NATS credentials: refused at the door
    with pytest.raises(Unavailable, match="refused"):
        await cli.stream(secured.settings(None), "pole-11e", True, False, None)
    # the operator's NATS user, with a wrong operator token
    wrong = secured.settings("operator").with_(operator_token="not-the-token")
    assert await cli.stream(wrong, "pole-11e", True, False, None) == 2
    assert "error (forbidden): only the platform operator" in capsys.readouterr().err
    # a service's NATS user, even with the token: the stream is not its to read
    as_hubs = secured.settings("hubs", QUARTIER_REQUEST_TIMEOUT="1")
    assert await cli.stream(as_hubs, "pole-11e", True, False, None) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "error (unavailable)" in out.err
    # both right
    assert await cli.stream(secured.settings("operator"), "pole-11e", True, False, None) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["type"] == "quartier.identity.TenantRegistered.v1"
