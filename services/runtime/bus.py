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
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
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
from services.runtime.fairness import FairExecutor
from services.runtime.i18n import t
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
from services.runtime.settings import NatsCredentials, nats_servers, redact_url
from services.runtime.tenancy import RequestContext, current, request_scope
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
        # jobs taken round the tenants (services.runtime.fairness)
        self.executor = FairExecutor(workers, name)

    async def __call__(self, fn: Callable[..., R], *args: Any) -> R:
        ctx = contextvars.copy_context()
        job = self.executor.submit_keyed(current().tenant_id or "", ctx.run, fn, *args)
        return await asyncio.wrap_future(job)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)


NO_RESPONDERS_RETRIES = (0.05, 0.1, 0.2, 0.4)
"""Seconds between the tries of a request nobody subscribes to (about 0.75 s
in all) before it is answered `Unavailable`."""

ATTEMPTS = 4
"""Sends of a query or an idempotent command within its timeout, one every
`timeout / ATTEMPTS` seconds while none has answered (`Bus.request`): a
replica that dies holding a request costs its caller a quarter of the
timeout, not all of it."""

RESEND_KEY_PREFIX = "bus-"
"""Of the idempotency key `Bus.request` gives an idempotent command sent
without one, so that its sends are one request to the service."""


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
        # connects to any that answers and learns the others from it. A
        # malformed list raises ConfigurationError here, before any attempt.
        self.servers = nats_servers(url)
        self.shown = ", ".join(redact_url(u) for u in self.servers)  # for logs: no password
        self.name = name
        # Which process served a request, in its log line: the host (a pod's
        # name on Kubernetes) and the process id.
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
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
        self._signalled = asyncio.Event()
        self._unreachable_logged = 0.0  # when the last "unreachable" line was logged

    # -- connection ------------------------------------------------------------

    async def connect(self, wait: float | None = None) -> None:
        """Connect to any of the servers, giving up after `wait` seconds (never
        if None); once connected, reconnect forever. (With these options
        nats-py retries the first connection too, trying each listed server in
        turn, reporting each failure to `_on_error`; while none answers a
        warning is logged every ten seconds.)

        Raises Unavailable, in one line naming the servers (passwords hidden):
        when none answered within `wait`; at once when a server refuses the
        credentials (retrying would not change its mind); and when SIGTERM or
        SIGINT arrives while waiting, if the process handles signals without
        asyncio (uvicorn does: its lifespan start-up would otherwise wait for
        NATS through every SIGTERM)."""
        auth: dict[str, Any] = {}
        if self.credentials is not None:
            auth = {
                "user": self.credentials.user,
                "password": self.credentials.password,
                "inbox_prefix": self.credentials.inbox_prefix,
            }
        nc = NATS()
        self._refused.clear()
        self._signalled.clear()
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
        signalled = asyncio.ensure_future(self._signalled.wait())
        connected = False
        try:
            with _signals_stop(self._signalled):
                done, _ = await asyncio.wait(
                    {connecting, refused, signalled},
                    timeout=wait,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            if connecting not in done:
                if refused in done:
                    who = f"user {self.credentials.user!r}" if self.credentials else "no user"
                    raise Unavailable(
                        t(
                            "NATS at {address} refused the connection ({who}): "
                            "check QUARTIER_NATS_USER and its password",
                            address=self.shown,
                            who=who,
                        )
                    )
                if signalled in done:
                    raise Unavailable(
                        t(
                            "stopped by a signal while waiting for NATS at {address}",
                            address=self.shown,
                        )
                    )
                raise Unavailable(
                    t(
                        "cannot reach NATS at {address} (no server answered within {seconds} s)",
                        address=self.shown,
                        seconds=f"{wait:g}",
                    )
                )
            connecting.result()
            connected = True
        except (OSError, nats.errors.NoServersError) as e:
            raise Unavailable(
                t("cannot reach NATS at {address}: {error}", address=self.shown, error=str(e))
            ) from None
        except nats.errors.Error as e:  # what nats-py says of a list it cannot use
            raise Unavailable(
                t("cannot use NATS at {address}: {error}", address=self.shown, error=str(e))
            ) from None
        finally:
            refused.cancel()
            signalled.cancel()
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
        elif self.nc is None:
            # Not connected yet: nats-py tries each server every second; say
            # so every ten seconds, not at each attempt.
            now = time.monotonic()
            if now - self._unreachable_logged >= 10.0:
                self._unreachable_logged = now
                log.warning("nats.unreachable", servers=self.shown, error=text)
        else:
            log.warning("nats.error", error=text)

    async def _on_disconnected(self) -> None:
        self.connected.clear()
        if not self._closing and self.nc is not None:  # not a first connection given up
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
            raise Unavailable(t("not connected to NATS"))
        return self.nc

    def jetstream(self, timeout: float | None = None) -> JetStreamContext:
        """JetStream, its API requests failing after `timeout` seconds (the
        request timeout by default)."""
        return self.client.jetstream(timeout=timeout or self.request_timeout)

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

    async def wait_to_retry(self, stream: str, stopping: asyncio.Event, delay: float) -> bool:
        """A relay's pause before it tries again after a failure: `delay`
        seconds, unless `stopping` is set, or it ends early, returning True,
        when trying again at once is worth it (and the caller's back-off
        should start again from its shortest delay):

        * the bus reconnected meanwhile (the server it used died; another
          took over);
        * the stream did not answer at first (its leader gone: JetStream says
          "no response from stream" until its replicas elect another) and
          now answers with a leader.

        Without this a relay backing off 0.5, 1, 2, 4, 8 s while a stream's
        leader is elected (about 5-8 s) published again only seconds after
        the new leader was there (docs/deployment.md, "Failover"). The
        stream's state is asked for every 0.25 s (`STREAM.INFO`, allowed to
        every service's NATS user), only while a relay waits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        reconnections = self.reconnections
        leaderless = not await self._stream_led(stream)
        while not stopping.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return False
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=min(left, 0.25))
            if self.reconnections != reconnections:
                return True
            if leaderless and await self._stream_led(stream):
                log.info("nats.stream_leader_back", stream=stream)
                return True
        return False

    async def _stream_led(self, stream: str) -> bool:
        """Whether the stream answers, each within a second, its state with a
        leader (none on a single server) and a read of its last message: a
        newly elected leader may name itself a few seconds before it serves
        reads (measured on nats-server 2.15), and the relay's next request
        would wait its whole timeout for it."""
        js = self.client.jetstream(timeout=1.0)
        try:
            info = await js.stream_info(stream)
            if info.cluster is not None and not info.cluster.leader:
                return False
            if info.state.last_seq:
                await js.get_msg(stream, seq=info.state.last_seq)
        except Exception:
            return False
        return True

    # -- client side -----------------------------------------------------------

    async def request(
        self, message: Request[R], ctx: RequestContext, timeout: float | None = None
    ) -> R:
        """Send a command or query and return its decoded reply, or raise the
        typed error the service answered with.

        A query, or a command that honours an idempotency key, is sent again
        when no answer came within `1/ATTEMPTS` of the timeout (NATS hands it
        to any replica, so not to one that died holding the first), up to
        `ATTEMPTS` sends within the timeout; the first answer to any of them
        wins (a slow replica's late answer is as good as another's). An
        idempotent command always carries a key — the caller's, else one
        made here — and every send carries the same one: the service runs it
        once and answers each send with that outcome. Any other command is
        sent once and waits the whole timeout: sent again, it could be done
        twice (docs/reliability.md, "A reply lost with its replica")."""
        cls = type(message)
        key = None
        if cls.idempotent:
            key = ctx.idempotency_key or f"{RESEND_KEY_PREFIX}{uuid.uuid4().hex}"
        envelope = Envelope(
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            correlation_id=ctx.correlation_id,
            body=msgspec.Raw(encoder.encode(message)),
            credential=ctx.credential,
            idempotency_key=key,
        )
        payload = encoder.encode(envelope)
        headers = {CORRELATION_HEADER: ctx.correlation_id}
        resendable = cls.request_kind == "qry" or cls.idempotent
        sends = ATTEMPTS if resendable else 1
        total = timeout or self.request_timeout
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + total
        step = total / sends
        pending: set[asyncio.Task[Msg | None]] = set()
        held: Reply | None = None  # a resend's "still running", while an earlier send may answer
        refused: Unavailable | None = None  # a send nobody received
        unanswered = False  # a send received, but not answered by the deadline
        unreceived: set[int] = set()  # sends that NATS said nobody received, tried again
        sent = 0
        try:
            while True:
                wait: float | None = None
                if sent < sends:
                    wait = started + sent * step - loop.time()
                    if wait <= 0 and unreceived:
                        wait = 0.05  # a send waits for a replica: another would too
                    elif wait <= 0:
                        sent += 1
                        if sent > 1:
                            self._resent(cls, sent, ctx)
                        pending.add(
                            asyncio.create_task(
                                self._send(cls, payload, headers, deadline, sent, unreceived)
                            )
                        )
                        wait = started + sent * step - loop.time() if sent < sends else None
                done, pending = await asyncio.wait(
                    pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    try:
                        msg = task.result()
                    except _NotReceived as e:
                        refused = Unavailable(str(e))
                        continue
                    if msg is None:  # no answer by the deadline
                        unanswered = True
                        continue
                    reply = reply_decoder.decode(msg.data)
                    if pending and _still_running(reply):
                        held = reply  # an earlier send runs it: its answer is the one
                        continue
                    return _outcome(cls, reply)
                if not pending:
                    if held is not None:
                        return _outcome(cls, held)
                    if refused is not None and not unanswered:
                        raise refused
                    raise Unavailable(_no_answer(cls))
        finally:
            for task in pending:
                task.cancel()

    def _resent(self, cls: type[Request[Any]], attempt: int, ctx: RequestContext) -> None:
        metrics.REQUEST_RESENDS.labels(service=cls.service, request=cls.__name__).inc()
        log.info(
            "request.resent",
            request=cls.__name__,
            service=cls.service,
            attempt=attempt,
            correlation_id=ctx.correlation_id,
        )

    async def _send(
        self,
        cls: type[Request[Any]],
        payload: bytes,
        headers: dict[str, str],
        deadline: float,
        number: int,
        unreceived: set[int],
    ) -> Msg | None:
        """One send of a request: its answer, or None if none came by
        `deadline`. One nobody subscribes to is tried again for about 0.75 s
        (`NO_RESPONDERS_RETRIES`; its `number` is in `unreceived` meanwhile)
        before it raises `_NotReceived`."""
        loop = asyncio.get_running_loop()
        try:
            for delay in (*NO_RESPONDERS_RETRIES, None):
                try:
                    return await self.client.request(
                        cls.subject(),
                        payload,
                        timeout=max(0.001, deadline - loop.time()),
                        headers=headers,
                    )
                except (TimeoutError, nats.errors.TimeoutError):
                    return None
                except nats.errors.ConnectionClosedError:
                    raise Unavailable(t("the message bus is not connected")) from None
                except nats.errors.NoRespondersError:
                    # never delivered, so safe to send again: a replica may be
                    # moments from serving (starting, or taking over)
                    if delay is None or loop.time() + delay >= deadline:
                        break
                    unreceived.add(number)
                    await asyncio.sleep(delay)
            raise _NotReceived(f"the {cls.service} service is not running")
        finally:
            unreceived.discard(number)

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

    async def ping_all(
        self, service: str, expected: int, timeout: float = 2.0
    ) -> list[dict[str, Any]]:
        """What each replica of `service` says of itself (every replica
        answers a ping): the answers that came within `timeout` seconds,
        returned as soon as `expected` came."""
        nc = self.client
        inbox = nc.new_inbox()
        answers: list[dict[str, Any]] = []
        enough = asyncio.Event()

        async def on_answer(msg: Msg) -> None:
            try:
                answers.append(msgspec.json.decode(msg.data))
            except msgspec.DecodeError:
                answers.append({})
            if len(answers) >= expected:
                enough.set()

        sub = await nc.subscribe(inbox, cb=on_answer)
        try:
            await nc.publish(f"quartier.ping.{service}", b"", reply=inbox)
            with suppress(TimeoutError):
                await asyncio.wait_for(enough.wait(), timeout)
        finally:
            await sub.unsubscribe()
        return answers

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
        # One line per request served (docs/operations.md, "Logs"): what,
        # where, for whom and how it ended; never the request's values.
        (log.info if endpoint.request.request_kind == "cmd" else log.debug)(
            "request.handled",
            subject=endpoint.request.subject(),
            request=name,
            service=service,
            replica=self.replica,
            tenant=ctx.tenant_id,
            actor=ctx.actor.kind,
            correlation_id=ctx.correlation_id,
            outcome=outcome,
            ms=round(elapsed * 1000, 1),
        )
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


@contextmanager
def _signals_stop(stop: asyncio.Event) -> Iterator[None]:
    """While connecting: where a Python handler of SIGTERM or SIGINT only
    takes note (uvicorn's asks the server to exit, later), the signal also
    sets `stop`, then runs that handler. Nothing changes where asyncio
    handles them (`loop.add_signal_handler`, as the service host and the
    launcher do: they cancel the connection themselves), where Python's
    defaults apply (SIGINT raises KeyboardInterrupt, SIGTERM ends the
    process: the CLI), where they are ignored, or outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(stop.set)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)

    for sig in (signal.SIGTERM, signal.SIGINT):
        before = signal.getsignal(sig)
        if (
            not callable(before)  # SIG_DFL, SIG_IGN, or not set from Python
            or before is signal.default_int_handler
            or getattr(before, "__name__", "") == "_sighandler_noop"  # asyncio's
        ):
            continue
        previous[sig] = before
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before if before is not None else signal.SIG_DFL)


def _field_of(e: msgspec.ValidationError) -> str | None:
    text = str(e)
    marker = "at `$."
    if marker in text:
        return text.split(marker, 1)[1].split("`", 1)[0].split("[", 1)[0]
    return None


def _error_info(e: QuartierError) -> ErrorInfo:
    return ErrorInfo(
        code=e.code,
        message=e.message,
        field=e.field,
        rule=e.rule,
        retry_after=e.retry_after,
        translations=e.all_translations(),
    )


class _NotReceived(Exception):
    """No replica subscribed to a send (NATS said so): it was never run."""


def _still_running(reply: Reply) -> bool:
    """A resend's answer that the first send of its idempotency key still runs."""
    e = reply.error
    return e is not None and e.code == "conflict" and e.message == idempotency.STILL_RUNNING


def _no_answer(cls: type[Request[Any]]) -> str:
    if cls.request_kind == "cmd":
        return (
            f"the {cls.service} service did not answer in time: "
            "the command may or may not have taken effect"
        )
    return f"the {cls.service} service did not answer in time"


def _outcome(cls: type[Request[R]], reply: Reply) -> R:
    """A reply's value, or the typed error it carries, raised."""
    if reply.error is not None:
        e = reply.error
        raise error_from_code(e.code, e.message, e.field, e.rule, e.retry_after, e.translations)
    decoded: R = msgspec.msgpack.decode(reply.ok, type=cls.reply_type())
    return decoded
