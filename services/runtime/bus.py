"""The NATS bus: a connection that reconnects forever, request/reply endpoints
served by a queue group per service, and the client side of those requests.

Requests travel in a msgspec `Envelope` (tenant, actor, correlation id, body);
replies are `{ok}` or `{error: {code, message, field, rule}}`, and the client
raises the matching `QuartierError` again.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import nats
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from services.runtime import idempotency, metrics
from services.runtime.errors import (
    InternalError,
    InvalidInput,
    QuartierError,
    Unavailable,
    error_from_code,
)
from services.runtime.idempotency import IdempotencyStore
from services.runtime.logging import get_logger
from services.runtime.messages import (
    Envelope,
    ErrorInfo,
    Reply,
    Request,
    encoder,
    envelope_decoder,
    reply_decoder,
)
from services.runtime.settings import NatsCredentials
from services.runtime.tenancy import RequestContext, request_scope
from services.runtime.text import clean_request

log = get_logger("quartier.bus")

CORRELATION_HEADER = "Quartier-Correlation-Id"
R = TypeVar("R")

Handler = Callable[[Any, RequestContext], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    request: type[Request[Any]]
    handle: Handler


class Offloader:
    """Runs blocking work (the eventsourcing library, SQLAlchemy) off the event
    loop, in a bounded thread pool, keeping the request's context variables."""

    def __init__(self, workers: int, name: str):
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def __call__(self, fn: Callable[..., R], *args: Any) -> R:
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.executor, ctx.run, fn, *args)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)


class Bus:
    def __init__(
        self,
        url: str,
        name: str,
        request_timeout: float = 10.0,
        max_in_flight: int = 512,
        credentials: NatsCredentials | None = None,
    ):
        self.url = url
        # Who this process is on NATS (None: no authentication). With a user,
        # replies come to `_INBOX.<user>.…`, the only inboxes its permissions
        # may let it read (docs/security.md, "The bus").
        self.credentials = credentials
        # A cluster is a comma-separated list of its servers' URLs: nats-py
        # connects to any that answers and learns the others from it.
        self.servers = [u.strip() for u in url.split(",") if u.strip()]
        self.name = name
        self.request_timeout = request_timeout
        self.nc: NATS | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._subs: list[Subscription] = []
        self.connected = asyncio.Event()
        self.reconnections = 0  # relays check the stream after each one
        self._idempotency: IdempotencyStore | None = None
        self._closing = False
        self._refused = asyncio.Event()

    # -- connection ------------------------------------------------------------

    async def connect(self, wait: float | None = None) -> None:
        """Connect, giving up after `wait` seconds (never if None); once
        connected, reconnect forever. (With these options nats-py retries the
        first connection too, reporting each failure to `_on_error`.) A server
        that refuses the credentials fails the first connection at once:
        retrying would not change its mind."""
        auth: dict[str, Any] = {}
        if self.credentials is not None:
            auth = {
                "user": self.credentials.user,
                "password": self.credentials.password,
                "inbox_prefix": self.credentials.inbox_prefix,
            }
        nc = NATS()
        self._refused.clear()
        connecting = asyncio.ensure_future(
            nc.connect(
                servers=self.servers,
                name=self.name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                connect_timeout=2,
                allow_reconnect=True,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                closed_cb=self._on_closed,
                **auth,
            )
        )
        refused = asyncio.ensure_future(self._refused.wait())
        connected = False
        try:
            done, _ = await asyncio.wait(
                {connecting, refused}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            if refused in done and connecting not in done:
                who = f"user {self.credentials.user!r}" if self.credentials else "no user"
                raise Unavailable(
                    f"NATS at {self.url} refused the connection ({who}): "
                    "check QUARTIER_NATS_USER and its password"
                )
            if connecting not in done:
                raise TimeoutError
            connecting.result()
            connected = True
        except (TimeoutError, OSError, nats.errors.NoServersError) as e:
            raise Unavailable(f"cannot reach NATS at {self.url}") from e
        finally:
            refused.cancel()
            if not connected:  # given up, refused, or this task cancelled (a signal)
                connecting.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await connecting
                with suppress(Exception):
                    await nc.close()
        self.nc = nc
        self.connected.set()

    async def _on_error(self, e: Exception) -> None:
        text = str(e) or type(e).__name__
        if "authorization violation" in text.lower() or isinstance(
            e, nats.errors.AuthorizationError
        ):
            if self.nc is None:  # the first connection: `connect` says so
                self._refused.set()
                return
            log.error("nats.refused", error=text)
        elif "permissions violation" in text.lower():
            # What this process's NATS user may not do (a bug in the
            # permissions, or a request to a service it has no business with).
            log.error("nats.permission_denied", error=text)
        else:
            log.warning("nats.error", error=text)

    async def _on_disconnected(self) -> None:
        self.connected.clear()
        if not self._closing:
            log.warning("nats.disconnected")

    async def _on_reconnected(self) -> None:
        self.connected.set()
        self.reconnections += 1
        metrics.NATS_RECONNECTS.labels(process=self.name).inc()
        log.info("nats.reconnected")

    async def _on_closed(self) -> None:
        self.connected.clear()

    @property
    def is_connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    @property
    def client(self) -> NATS:
        if self.nc is None:
            raise Unavailable("not connected to NATS")
        return self.nc

    def jetstream(self) -> JetStreamContext:
        return self.client.jetstream(timeout=self.request_timeout)

    async def stop_serving(self) -> None:
        """Stop taking requests and let the ones in flight finish."""
        for sub in self._subs:
            try:
                await sub.drain()
            except Exception:
                log.debug("nats.drain_failed")
        self._subs.clear()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self.request_timeout)

    async def close(self) -> None:
        await self.stop_serving()
        self._closing = True
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception:
                with suppress(Exception):
                    await self.nc.close()

    # -- client side -----------------------------------------------------------

    async def request(
        self, message: Request[R], ctx: RequestContext, timeout: float | None = None
    ) -> R:
        """Send a command or query and return its decoded reply, or raise the
        typed error the service answered with."""
        cls = type(message)
        envelope = Envelope(
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            correlation_id=ctx.correlation_id,
            body=msgspec.Raw(encoder.encode(message)),
            credential=ctx.credential,
            idempotency_key=ctx.idempotency_key if cls.idempotent else None,
        )
        try:
            msg = await self.client.request(
                cls.subject(),
                encoder.encode(envelope),
                timeout=timeout or self.request_timeout,
                headers={CORRELATION_HEADER: ctx.correlation_id},
            )
        except nats.errors.NoRespondersError:
            raise Unavailable(f"the {cls.service} service is not running") from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise Unavailable(f"the {cls.service} service did not answer in time") from None
        except nats.errors.ConnectionClosedError:
            raise Unavailable("the message bus is not connected") from None
        reply = reply_decoder.decode(msg.data)
        if reply.error is not None:
            e = reply.error
            raise error_from_code(e.code, e.message, e.field, e.rule, e.retry_after)
        decoded: R = msgspec.msgpack.decode(reply.ok, type=cls.reply_type())
        return decoded

    async def ping(self, service: str, timeout: float = 1.0) -> bool:
        return await self.health(service, timeout) is not None

    async def health(self, service: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """What a replica of `service` says of itself, or None if none answers."""
        try:
            msg = await self.client.request(f"quartier.ping.{service}", b"", timeout=timeout)
        except Exception:
            return None
        try:
            found: dict[str, Any] = msgspec.json.decode(msg.data)
        except msgspec.DecodeError:
            found = {}
        return found

    # -- server side -----------------------------------------------------------

    async def serve(
        self,
        service: str,
        endpoints: Iterable[Endpoint],
        health: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        idempotency: IdempotencyStore | None = None,
    ) -> None:
        """Subscribe every endpoint with the service's queue group, so that
        replicas share the load, plus a ping endpoint for health checks that
        answers `health()` as JSON (e.g. how many events are parked)."""
        nc = self.client
        self._idempotency = idempotency
        for endpoint in endpoints:
            if endpoint.request.service != service:
                raise ValueError(f"{endpoint.request.__name__} is not a {service} request")
            self._subs.append(
                await nc.subscribe(
                    endpoint.request.subject(), queue=service, cb=self._dispatcher(endpoint)
                )
            )

        async def pong(msg: Msg) -> None:
            detail: dict[str, Any] = {}
            if health is not None:
                try:
                    detail = await health()
                except Exception:
                    detail = {"error": "health check failed"}
            await msg.respond(msgspec.json.encode({"service": service, **detail}))

        self._subs.append(await nc.subscribe(f"quartier.ping.{service}", cb=pong))
        await nc.flush()  # the server knows every subscription before we say we serve

    async def subscribe(self, subject: str, callback: Callable[[Msg], Awaitable[None]]) -> None:
        """A plain subscription, every replica receiving (no queue group),
        drained on stop with the endpoints."""
        self._subs.append(await self.client.subscribe(subject, cb=callback))

    def _dispatcher(self, endpoint: Endpoint) -> Callable[[Msg], Awaitable[None]]:
        decoder = msgspec.msgpack.Decoder(endpoint.request)

        async def on_message(msg: Msg) -> None:
            # nats-py runs one callback at a time per subscription: hand each
            # request to its own task so that slow ones do not queue the rest.
            await self._slots.acquire()
            task = asyncio.create_task(self._handle(endpoint, decoder, msg))
            self._in_flight.add(task)
            task.add_done_callback(self._done)

        return on_message

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()

    async def _handle(
        self, endpoint: Endpoint, decoder: msgspec.msgpack.Decoder[Request[Any]], msg: Msg
    ) -> None:
        try:
            envelope = envelope_decoder.decode(msg.data)
        except msgspec.DecodeError:
            await self._reply(
                msg, Reply(error=ErrorInfo(code="invalid_input", message="bad envelope"))
            )
            return
        ctx = RequestContext(
            tenant_id=envelope.tenant_id,
            actor=envelope.actor,
            correlation_id=envelope.correlation_id,
            credential=envelope.credential,
            idempotency_key=envelope.idempotency_key,
        )
        with request_scope(ctx):
            reply = await self._run(endpoint, decoder, envelope, ctx)
        await self._reply(msg, reply)

    async def _run(
        self,
        endpoint: Endpoint,
        decoder: msgspec.msgpack.Decoder[Request[Any]],
        envelope: Envelope,
        ctx: RequestContext,
    ) -> Reply:
        started = time.perf_counter()
        if envelope.idempotency_key and endpoint.request.idempotent and self._idempotency:
            reply = await self._answer_once(endpoint, decoder, envelope, ctx, self._idempotency)
        else:
            reply = await self._answer(endpoint, decoder, envelope, ctx)
        service, name = endpoint.request.service, endpoint.request.__name__
        outcome = reply.error.code if reply.error is not None else "ok"
        elapsed = time.perf_counter() - started
        metrics.REQUESTS.labels(service=service, request=name, outcome=outcome).inc()
        metrics.REQUEST_SECONDS.labels(service=service, request=name).observe(elapsed)
        log.debug("request.handled", request=name, outcome=outcome, ms=round(elapsed * 1000, 1))
        return reply

    async def _answer_once(
        self,
        endpoint: Endpoint,
        decoder: msgspec.msgpack.Decoder[Request[Any]],
        envelope: Envelope,
        ctx: RequestContext,
        store: IdempotencyStore,
    ) -> Reply:
        """The first outcome for this idempotency key (services/runtime/idempotency.py)."""
        try:
            key = idempotency.key_of(
                envelope.tenant_id,
                envelope.actor.member_id or envelope.actor.kind,
                endpoint.request.__name__,
                idempotency.check_key(envelope.idempotency_key or ""),
            )
            fingerprint = hashlib.sha256(bytes(envelope.body)).hexdigest()

            async def produce() -> tuple[bytes, str | None]:
                reply = await self._answer(endpoint, decoder, envelope, ctx)
                return encoder.encode(reply), reply.error.code if reply.error else None

            return reply_decoder.decode(await store.run(key, fingerprint, produce))
        except QuartierError as e:
            return Reply(error=_error_info(e))

    async def _answer(
        self,
        endpoint: Endpoint,
        decoder: msgspec.msgpack.Decoder[Request[Any]],
        envelope: Envelope,
        ctx: RequestContext,
    ) -> Reply:
        try:
            try:
                request = decoder.decode(envelope.body)
            except msgspec.ValidationError as e:
                raise InvalidInput(str(e), field=_field_of(e)) from None
            request = clean_request(request)  # the one text policy, for every service
            result = await endpoint.handle(request, ctx)
            return Reply(ok=msgspec.Raw(encoder.encode(result)))
        except QuartierError as e:
            if isinstance(e, InternalError):
                log.error(
                    "request.internal_error", request=endpoint.request.__name__, error=e.message
                )
            return Reply(error=_error_info(e))
        except Exception:
            log.exception("request.failed", request=endpoint.request.__name__)
            return Reply(
                error=ErrorInfo(
                    code="internal",
                    message=f"internal error (correlation id {ctx.correlation_id})",
                )
            )

    async def _reply(self, msg: Msg, reply: Reply) -> None:
        if not msg.reply:
            return
        try:
            await msg.respond(encoder.encode(reply))
        except Exception as e:
            log.warning("request.reply_failed", error=str(e))


def _field_of(e: msgspec.ValidationError) -> str | None:
    text = str(e)
    marker = "at `$."
    if marker in text:
        return text.split(marker, 1)[1].split("`", 1)[0].split("[", 1)[0]
    return None


def _error_info(e: QuartierError) -> ErrorInfo:
    return ErrorInfo(
        code=e.code, message=e.message, field=e.field, rule=e.rule, retry_after=e.retry_after
    )
