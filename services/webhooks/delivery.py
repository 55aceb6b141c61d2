"""Delivery: from the tenant streams to the receivers.

**Queueing** (the reactions). One durable reaction per upstream service
(identity, hubs, meetups, referrals, and webhooks' own events) reads its
events on QUARTIER_EVENTS; for each event, in one transaction with the
reaction's position (`TrackedTables`), it adds one delivery per endpoint of
the event's network that wants its type (domain.wants) and was created
before the event (both wall-clock times, as the event store stamps them): "pending" if the endpoint is enabled, "skipped" if
it is disabled (a range replay can send those later). A redelivered event
changes nothing: exactly-once bookkeeping. The body is the CloudEvent JSON
as on the stream.

**Sending** (the dispatcher, a leader-only job). Each endpoint is a queue,
sent in order: only the oldest pending delivery of an endpoint (its head) is
attempted, and the next only once it succeeded — so order per endpoint is
kept, and the receiver may get a delivery twice (at-least-once: a crash
between its answer and the bookkeeping), never out of order. Endpoints are
served concurrently (at most MAX_PARALLEL at once), each attempt bounded by
the timeout, so a slow or failing receiver or network holds only its own
queue. A failed attempt schedules the next on the host's clock
(domain.RETRY_DELAYS: 10 s doubling to 12 h, three days in all); when the
schedule is spent the delivery is "failed", the endpoint disabled (reason
"failing", an `EndpointDisabled` event) and its network's admins mailed.

**Endpoints of API keys.** An endpoint that a tenant API key created
depends on that key (`endpoint_owners`): the `keys` reaction learns the
network's keys from identity's ApiKeyCreated and ApiKeyRevoked (`api_keys`)
and, on a revocation, disables every enabled endpoint of that key (reason
"api_key_revoked", an `EndpointDisabled` event, the admins mailed). An
expiry is a time, not an event: before each attempt the dispatcher looks
whether the endpoint's key has been revoked or has expired (one read of its
own table, no request to identity) and, if so, disables it (reason
"api_key_expired" or "api_key_revoked") instead of sending.

**Retention** (the dispatcher, at most once an hour of the host's clock).
Finished deliveries (delivered, failed, skipped) created more than
`Options.retention` ago (30 days, `QUARTIER_WEBHOOKS_RETENTION_DAYS`) are
forgotten with their attempts, in batches, and so are attempts that old of
a delivery still pending: the tables hold at most the retention's worth of
traffic. The retention is also the replay window.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import sqlalchemy as sa
from eventsourcing.persistence import Tracking

from services.identity import contract as idc
from services.runtime.errors import NotFound, RuleViolation
from services.runtime.host import ServiceHost
from services.runtime.logging import get_logger
from services.runtime.mail import Mailer
from services.runtime.reactions import Reaction, decode_data
from services.runtime.stream import CloudEvent, json_encoder
from services.runtime.tenancy import RequestContext, as_service
from services.runtime.wakeup import sleep_unless
from services.webhooks import outbound
from services.webhooks.application import Webhooks
from services.webhooks.domain import Endpoint, next_attempt_after, url_host, wants
from services.webhooks.secrets import SecretBox
from services.webhooks.views import (
    DELIVERIES,
    KEYS,
    PRUNE_BATCH,
    RETENTION,
    admins,
    api_keys,
    attempts,
    deliveries,
    endpoints,
    key_endpoints,
    key_stopped,
    prune,
    restarted_after,
)

log = get_logger("quartier.webhooks")

MAX_PARALLEL = 16  # endpoints attempted at once
POLL = 1.0  # seconds between looks at the queues when nothing wakes the dispatcher
PRUNE_EVERY = timedelta(hours=1)  # of the host's clock

UPSTREAMS = (  # (reaction name, upstream service)
    ("identity", "identity"),
    ("hubs", "hubs"),
    ("meetups", "events"),
    ("referrals", "referrals"),
    ("webhooks", "webhooks"),
)


@dataclass
class Options:
    """How the service reaches out. `allow_private`: whether URLs may reach
    private, loopback and link-local addresses (development and tests
    only; QUARTIER_WEBHOOKS_ALLOW_PRIVATE); `timeout`: seconds per attempt in
    all; `resolve`: the name resolver (the system's); `retention`: how long
    finished deliveries and attempts are kept (the module's "Retention")."""

    allow_private: bool = False
    timeout: float = 10.0
    resolve: outbound.Resolver = field(default=outbound.system_resolver)
    retention: timedelta = RETENTION


def enqueue(conn: sa.Connection, event: CloudEvent, body: str, now: datetime) -> int:
    """Queue `event` for every endpoint of its network that wants it.
    Returns how many deliveries were added."""
    rows = conn.execute(
        sa.select(endpoints).where(
            (endpoints.c.tenant_id == event.tenant) & endpoints.c.deleted.is_(False)
        )
    ).all()
    added = 0
    for row in rows:
        if not wants(row.event_types, event.type) or event.time < row.since:
            continue
        conn.execute(
            deliveries.insert().values(
                delivery_id=str(uuid.uuid4()),
                tenant_id=event.tenant,
                endpoint_id=row.endpoint_id,
                event_id=event.id,
                event_type=event.type,
                body=body,
                status="pending" if row.enabled else "skipped",
                attempts=0,
                created_at=now,
                next_attempt_at=now if row.enabled else None,
            )
        )
        added += 1
    return added


def _admins(conn: sa.Connection, e: Any) -> None:
    match e:
        case idc.MemberJoined() | idc.MemberRolesChanged():
            key = (admins.c.tenant_id == e.tenant_id) & (admins.c.member_id == e.member_id)
            conn.execute(admins.delete().where(key))
            if "tenant_admin" in e.roles:
                conn.execute(admins.insert().values(tenant_id=e.tenant_id, member_id=e.member_id))


def reactions(host: ServiceHost, wake: Callable[[], None]) -> list[Reaction]:
    admin_kinds = {k.type_name(): k for k in (idc.MemberJoined, idc.MemberRolesChanged)}

    def reaction(name: str, upstream: str) -> Reaction:
        async def handle(event: CloudEvent, tracking: Tracking) -> None:
            body = json_encoder.encode(event).decode()
            kind = admin_kinds.get(event.type) if upstream == "identity" else None
            data = decode_data(event, kind) if kind is not None else None
            now = host.clock.now()

            def change(conn: sa.Connection) -> None:
                if data is not None:
                    _admins(conn, data)
                enqueue(conn, event, body, now)

            await host.offload(DELIVERIES.apply, host.engine, tracking, change)
            wake()

        return Reaction(name=name, upstream=upstream, handle=handle)

    return [reaction(name, upstream) for name, upstream in UPSTREAMS]


KEY_CREATED = idc.ApiKeyCreated.type_name()
KEY_REVOKED = idc.ApiKeyRevoked.type_name()


def _record_key(conn: sa.Connection, e: idc.ApiKeyCreated | idc.ApiKeyRevoked, at: Any) -> None:
    key = (api_keys.c.tenant_id == e.tenant_id) & (api_keys.c.key_id == e.key_id)
    row = conn.execute(sa.select(api_keys.c.key_id).where(key)).first()
    if isinstance(e, idc.ApiKeyCreated):
        values: dict[str, Any] = {"expires_at": e.expires_at}
    else:
        values = {"revoked_at": at}
    if row is None:
        conn.execute(api_keys.insert().values(key_id=e.key_id, tenant_id=e.tenant_id, **values))
    else:
        conn.execute(api_keys.update().where(key).values(**values))


def key_reaction(host: ServiceHost, dispatcher: Dispatcher) -> Reaction:
    """`keys`: identity's API keys (a durable consumer of its own, which
    reads identity's events from the start). A revocation disables every
    enabled endpoint that depends on the key; handled again (a redelivery),
    it finds none left to disable, and an endpoint a tenant admin has taken
    over since no longer depends on the key. An event whose payload names
    another network than the one it was published for is ignored."""

    async def handle(event: CloudEvent, tracking: Tracking) -> None:
        data: idc.ApiKeyCreated | idc.ApiKeyRevoked
        if event.type == KEY_CREATED:
            data = decode_data(event, idc.ApiKeyCreated)
        elif event.type == KEY_REVOKED:
            data = decode_data(event, idc.ApiKeyRevoked)
        else:
            return
        if data.tenant_id != event.tenant:
            log.warning("webhooks.key_tenant_mismatch", tenant=event.tenant, key=data.key_id)
            return
        found = data
        await host.offload(
            KEYS.apply, host.engine, tracking, lambda conn: _record_key(conn, found, event.time)
        )
        if isinstance(data, idc.ApiKeyRevoked):
            await dispatcher.stop_key_endpoints(data.tenant_id, data.key_id)

    return Reaction(name="keys", upstream="identity", handle=handle)


class Dispatcher:
    """Sends each endpoint's queue in order (see the module's docstring)."""

    def __init__(
        self,
        host: ServiceHost,
        app: Webhooks,
        box: SecretBox,
        options: Options,
        mailer: Mailer,
        project: Callable[[], None],
    ):
        self.host = host
        self.app = app
        self.box = box
        self.options = options
        self.mailer = mailer
        self.project = project
        self.clock = host.clock
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._busy: set[str] = set()
        self._limit = asyncio.Semaphore(MAX_PARALLEL)
        self._pruned_at: datetime | None = None
        on_move = getattr(self.clock, "on_move", None)
        if on_move is not None:
            on_move(lambda _now: self.wake())

    def wake(self) -> None:
        """Look at the queues now (thread-safe)."""
        loop, event = self._loop, self._wakeup
        if loop is None or event is None:
            return
        with suppress(RuntimeError):  # the loop is closed: the service stopped
            loop.call_soon_threadsafe(event.set)

    async def run(self, stopping: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        async with outbound.new_client() as client:
            try:
                while not stopping.is_set():
                    self._wakeup.clear()
                    try:
                        due = await self.host.offload(self._due, self.clock.now())
                    except Exception:
                        log.exception("webhooks.queue_unreadable")
                        due = []
                    try:
                        await self.host.offload(self.prune)
                    except Exception:
                        log.exception("webhooks.prune_failed")
                    for tenant_id, endpoint_id in due:
                        if endpoint_id in self._busy:
                            continue
                        self._busy.add(endpoint_id)
                        task = asyncio.create_task(self._drain(client, tenant_id, endpoint_id))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    await self._sleep(stopping)
            finally:
                # stopping, or leadership lost: an attempt cut short is made
                # again by the next leader (at least once)
                for task in list(tasks):
                    task.cancel()
                if tasks:
                    await asyncio.wait(tasks)

    def prune(self) -> tuple[int, int]:
        """Forget what is older than the retention (at most once an hour);
        answers (deliveries, attempts) forgotten."""
        now = self.clock.now()
        if self._pruned_at is not None and abs(now - self._pruned_at) < PRUNE_EVERY:
            return 0, 0
        self._pruned_at = now
        gone = [0, 0]
        while True:
            with self.host.engine.begin() as conn:
                found = prune(conn, now - self.options.retention)
            gone = [gone[0] + found[0], gone[1] + found[1]]
            if max(found) < PRUNE_BATCH:
                break
        if any(gone):
            log.info("webhooks.pruned", deliveries=gone[0], attempts=gone[1])
        return gone[0], gone[1]

    async def _sleep(self, stopping: asyncio.Event) -> None:
        assert self._wakeup is not None
        waiting = {
            asyncio.ensure_future(self._wakeup.wait()),
            asyncio.ensure_future(sleep_unless(stopping, POLL)),
        }
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in waiting:
                future.cancel()

    def _due(self, now: datetime) -> list[tuple[str, str]]:
        """(tenant, endpoint) of enabled endpoints whose head is due."""
        with self.host.engine.connect() as conn:
            heads = (
                sa.select(deliveries.c.endpoint_id, sa.func.min(deliveries.c.n).label("n"))
                .where(deliveries.c.status == "pending")
                .group_by(deliveries.c.endpoint_id)
                .subquery()
            )
            rows = conn.execute(
                sa.select(
                    deliveries.c.tenant_id, deliveries.c.endpoint_id, deliveries.c.next_attempt_at
                )
                .join(heads, deliveries.c.n == heads.c.n)
                .join(endpoints, endpoints.c.endpoint_id == deliveries.c.endpoint_id)
                .where(endpoints.c.enabled.is_(True))
            ).all()
        return [(r.tenant_id, r.endpoint_id) for r in rows if r.next_attempt_at <= now]

    async def _drain(self, client: httpx.AsyncClient, tenant_id: str, endpoint_id: str) -> None:
        try:
            async with self._limit:
                while not self.host.stopping.is_set():
                    if not await self._attempt_head(client, tenant_id, endpoint_id):
                        return
        except Exception:
            log.exception("webhooks.dispatch_failed", tenant=tenant_id, endpoint=endpoint_id)
        finally:
            self._busy.discard(endpoint_id)

    def _head(
        self, tenant_id: str, endpoint_id: str, now: datetime
    ) -> tuple[Any, Any, list[str], int] | str | None:
        """The endpoint, its due head, the signing secrets and where the
        head's schedule started again; or why the endpoint must be disabled
        instead (its API key stopped working); or None (nothing due)."""
        with self.host.engine.connect() as conn:
            endpoint = conn.execute(
                sa.select(endpoints).where(
                    (endpoints.c.tenant_id == tenant_id)
                    & (endpoints.c.endpoint_id == endpoint_id)
                    & endpoints.c.enabled.is_(True)
                )
            ).first()
            if endpoint is None:
                return None
            head = conn.execute(
                sa.select(deliveries)
                .where(
                    (deliveries.c.endpoint_id == endpoint_id) & (deliveries.c.status == "pending")
                )
                .order_by(deliveries.c.n)
                .limit(1)
            ).first()
            if head is None or head.next_attempt_at > now:
                return None
            stopped = key_stopped(conn, tenant_id, endpoint_id, now)
            if stopped is not None:
                return stopped
            keys = self.box.signing_keys(conn, tenant_id, endpoint_id, now)
            base = restarted_after(conn, head.delivery_id)
        return endpoint, head, [k.secret for k in keys], base

    async def _attempt_head(
        self, client: httpx.AsyncClient, tenant_id: str, endpoint_id: str
    ) -> bool:
        """Attempt the endpoint's head if it is due; True when it was
        delivered (the next may go at once)."""
        found = await self.host.offload(self._head, tenant_id, endpoint_id, self.clock.now())
        if found is None:
            return False
        if isinstance(found, str):
            await self.disable(tenant_id, endpoint_id, found)
            return False
        endpoint, head, secrets, base = found
        if not secrets:
            log.error("webhooks.no_secret", tenant=tenant_id, endpoint=endpoint_id)
            return False
        at = self.clock.now()
        headers = outbound.signature_headers(head.event_id, head.body, secrets)
        outcome = await outbound.post(
            client,
            endpoint.url,
            head.body,
            headers,
            allow_private=self.options.allow_private,
            resolve=self.options.resolve,
            timeout=self.options.timeout,
        )
        client.cookies.clear()
        spent = await self.host.offload(self._record, head, at, outcome, base)
        if spent:
            await self.disable(tenant_id, endpoint_id, "failing")
        return outcome.ok

    def _record(self, head: Any, at: datetime, outcome: outbound.Outcome, base: int = 0) -> bool:
        """Log the attempt and move the delivery on, in one transaction.
        Returns True when the schedule is spent (the delivery failed).
        `base`: attempts made before its schedule started again."""
        number = head.attempts + 1
        values: dict[str, Any] = {"attempts": number, "last_error": outcome.error}
        spent = False
        if outcome.ok:
            values.update(status="delivered", delivered_at=at, next_attempt_at=None)
        else:
            delay = next_attempt_after(max(number - base, 1))
            values["first_failed_at"] = head.first_failed_at or at
            if delay is None:
                values.update(status="failed", next_attempt_at=None)
                spent = True
            else:
                values["next_attempt_at"] = at + delay
        with self.host.engine.begin() as conn:
            conn.execute(
                attempts.insert().values(
                    attempt_id=str(uuid.uuid4()),
                    delivery_id=head.delivery_id,
                    tenant_id=head.tenant_id,
                    endpoint_id=head.endpoint_id,
                    number=number,
                    at=at,
                    status_code=outcome.status_code,
                    duration_ms=outcome.duration_ms,
                    error=outcome.error,
                    ok=outcome.ok,
                )
            )
            conn.execute(
                deliveries.update()
                .where(
                    (deliveries.c.delivery_id == head.delivery_id)
                    & (deliveries.c.status == "pending")
                )
                .values(**values)
            )
        log.info(
            "webhooks.attempt",
            tenant=head.tenant_id,
            endpoint=head.endpoint_id,
            delivery=head.delivery_id,
            number=number,
            status_code=outcome.status_code,
            ok=outcome.ok,
        )
        return spent

    async def stop_key_endpoints(self, tenant_id: str, key_id: str) -> int:
        """Disable every enabled endpoint of the network that depends on this
        (revoked) key; answers how many were disabled."""

        def find() -> list[str]:
            with self.host.engine.connect() as conn:
                return key_endpoints(conn, tenant_id, key_id)

        done = 0
        for endpoint_id in await self.host.offload(find):
            done += await self.disable(tenant_id, endpoint_id, "api_key_revoked")
        return done

    async def disable(self, tenant_id: str, endpoint_id: str, reason: str) -> bool:
        """Disable the endpoint for `reason` ("failing": its head failed for
        three days; "api_key_revoked"/"api_key_expired": the key it depends
        on stopped working) and mail the admins. False if it was disabled
        already (nothing done, nobody mailed)."""
        now = self.clock.now()

        def disable() -> bool:
            try:
                _, changed = self.app.update(
                    tenant_id, endpoint_id, Endpoint, lambda e: e.disable(reason, None, now)
                )
            except (NotFound, RuleViolation):  # deleted meanwhile: nothing left to stop
                return False
            self.project()
            return changed

        if not await self.host.offload(disable):
            return False
        log.warning(
            "webhooks.endpoint_disabled", tenant=tenant_id, endpoint=endpoint_id, reason=reason
        )
        try:
            await self._mail_admins(tenant_id, endpoint_id, reason)
        except Exception:  # the mail is a courtesy: the event and the state are what count
            log.exception("webhooks.mail_failed", tenant=tenant_id, endpoint=endpoint_id)
        return True

    async def _mail_admins(self, tenant_id: str, endpoint_id: str, reason: str) -> None:
        def who() -> tuple[list[str], str]:
            with self.host.engine.connect() as conn:
                ids = list(
                    conn.execute(
                        sa.select(admins.c.member_id).where(admins.c.tenant_id == tenant_id)
                    ).scalars()
                )
                url = conn.execute(
                    sa.select(endpoints.c.url).where(endpoints.c.endpoint_id == endpoint_id)
                ).scalar_one()
            return ids, url

        ids, url = await self.host.offload(who)
        if not ids:
            return
        ctx: RequestContext = as_service(RequestContext(tenant_id=tenant_id))
        contacts = await self.host.bus.request(idc.MemberContacts(member_ids=ids[:500]), ctx)
        host = url_host(url) or url
        for person in contacts.items:
            message = EmailMessage()
            message["From"] = self.host.settings.mail_from
            message["To"] = person.email
            message["Subject"] = f"Webhook endpoint disabled: {host}"
            message.set_content(
                f"Hello {person.display_name},\n\n" + _why(reason, endpoint_id, host)
            )
            await self.host.offload(self.mailer.send, message)


def _why(reason: str, endpoint_id: str, host: str) -> str:
    """The mail's explanation of a disabling."""
    if reason in ("api_key_revoked", "api_key_expired"):
        how = "was revoked" if reason == "api_key_revoked" else "has expired"
        return (
            f"The webhook endpoint {endpoint_id} ({host}) of your network was created "
            f"with an API key that {how}, so it has been disabled: no event goes to it "
            "any more.\n"
            "If you know this endpoint and want it, a tenant admin can enable it again "
            "(it is then theirs); otherwise delete it (docs/webhooks.md).\n"
        )
    return (
        f"The webhook endpoint {endpoint_id} ({host}) of your network has failed "
        "every delivery attempt for three days, so it has been disabled.\n"
        "Its failed delivery and the events since can be replayed once the "
        "receiver works again: enable the endpoint, then replay (docs/webhooks.md).\n"
    )
