"""The JetStream stream QUARTIER_EVENTS and the CloudEvents envelope on it.

Subjects: `quartier.evt.<tenant_id>.<service>.<EventType>`. The stream is a
replayable, derived copy of the services' notification logs: it keeps every
event (no age limit) and de-duplicates re-publications by `Nats-Msg-Id`
within `DUPLICATE_WINDOW`.

Consumers read a tenant's events from a `Position` (opaque, stable across a
rebuild of the stream) with an `EventReader` (docs/stream.md).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from services.runtime.errors import InvalidInput, Unavailable
from services.runtime.i18n import t
from services.runtime.logging import get_logger

log = get_logger("quartier.stream")

STREAM = "QUARTIER_EVENTS"
SUBJECT_PREFIX = "quartier.evt"
DUPLICATE_WINDOW = 20 * 60.0  # seconds


def event_subject(tenant_id: str, service: str, event_name: str) -> str:
    return f"{SUBJECT_PREFIX}.{tenant_id}.{service}.{event_name}"


def tenant_filter(tenant_id: str, service: str = "*") -> str:
    return f"{SUBJECT_PREFIX}.{tenant_id}.{service}.>"


def service_filter(service: str) -> str:
    return f"{SUBJECT_PREFIX}.*.{service}.>"


def rebuild_consumer(service: str) -> str:
    """The consumer through which a service's relay reads which of its events
    the stream holds (`quartier stream rebuild`); the bus's permissions name it."""
    return f"{service}-rebuild"


class CloudEvent(msgspec.Struct, kw_only=True, omit_defaults=False):
    """CloudEvents 1.0, JSON format, with the `tenant` and `sequence` extensions.

    `id` is `<service>:<notification id>`, stable across re-publications;
    `sequence` is the notification id in the source service's log.
    """

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    datacontenttype: str = "application/json"
    tenant: str
    sequence: int
    data: msgspec.Raw

    @property
    def service(self) -> str:
        return self.source.rsplit("/", 1)[-1]


cloud_event_decoder = msgspec.json.Decoder(CloudEvent)
json_encoder = msgspec.json.Encoder()


def stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=STREAM,
        description="Quartier domain events, one subject tree per tenant",
        subjects=[f"{SUBJECT_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW,
        num_replicas=replicas,
        allow_direct=True,
    )


async def ensure_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the stream if it does not exist. An existing stream is left as
    it is (an operator may have tuned it): only a mismatch is logged. Safe to
    call from every service at start-up."""
    try:
        info = await js.stream_info(STREAM)
    except NotFoundError:
        try:
            await js.add_stream(stream_config(replicas))
            log.info("stream.created", stream=STREAM, replicas=replicas)
        except BadRequestError:
            pass  # another service created it meanwhile
        return
    config = info.config
    if f"{SUBJECT_PREFIX}.>" not in (config.subjects or []) or config.num_replicas != replicas:
        log.warning(
            "stream.config_differs",
            stream=STREAM,
            subjects=config.subjects,
            replicas=config.num_replicas,
            expected_replicas=replicas,
        )


async def tenant_history_size(js: JetStreamContext, tenant_id: str) -> int:
    info = await js.stream_info(STREAM, subjects_filter=tenant_filter(tenant_id))
    return sum((info.state.subjects or {}).values())


async def read_tenant_events(
    js: JetStreamContext,
    tenant_id: str,
    *,
    from_start: bool,
    follow: bool,
    limit: int | None = None,
    idle_timeout: float | None = None,
) -> AsyncIterator[bytes]:
    """Yield a tenant's events (CloudEvents JSON) in stream order, through an
    ephemeral ordered consumer: from the beginning or only new ones; stop at
    the end of the history unless `follow`."""
    if limit is not None and limit <= 0:
        return
    if from_start and not follow and await tenant_history_size(js, tenant_id) == 0:
        return
    sub = await js.subscribe(
        tenant_filter(tenant_id),
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL if from_start else DeliverPolicy.NEW,
    )
    count = 0
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_timeout or 3600)
            except TimeoutError:
                if follow and idle_timeout is None:
                    continue
                return
            yield msg.data
            count += 1
            if limit is not None and count >= limit:
                return
            if from_start and not follow and msg.metadata.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()


# -- positions: where a consumer of a tenant's stream stands ---------------------
#
# A position is "after this event" in a tenant's stream. It must survive a
# rebuild of the stream (where JetStream sequence numbers change and the
# services' events may interleave differently), so it is a *vector*: for each
# service, the notification id of the last of its events that the consumer has
# had (the relay publishes a service's events of a tenant in notification-id
# order, so "every event of S with an id <= n" is exactly what it has seen). A
# hint rides along: the JetStream sequence of that last event in the stream
# incarnation that delivered it (the stream's creation time), to start reading
# at once; when the hint no longer matches (another incarnation, the message
# purged or replaced), the start is found again from the vector.
#
# The encoding is opaque: base64url of a msgpack array (format version, a tag
# of the tenant, the hint, the vector) and a checksum. Positions are not
# secrets: they only ever select among the caller's own tenant's events.

POSITION_VERSION = 1
MAX_POSITION_LENGTH = 1024
MAX_SERVICES = 32
_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_POSITION_TEXT = re.compile(r"^[A-Za-z0-9_-]+$")
_CHECKSUM_KEY = b"quartier-stream-position"
_Wire = tuple[int, bytes, int, int, str, list[tuple[str, int]]]


class InvalidPosition(InvalidInput):
    """A position that is malformed, damaged, or of another tenant's stream."""


def tenant_tag(tenant_id: str) -> bytes:
    return hashlib.blake2b(tenant_id.encode(), digest_size=6).digest()


def _checksum(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=4, key=_CHECKSUM_KEY).digest()


@dataclass(frozen=True)
class Position:
    """After an event of a tenant's stream: for each service, the last
    notification id covered; and a hint (stream incarnation, sequence and
    service of that event) to start reading fast."""

    tenant_id: str
    vector: Mapping[str, int] = field(default_factory=dict)
    epoch: int = 0  # the stream's creation time (microseconds) when the hint was taken
    seq: int = 0  # the hint: JetStream sequence of the event
    last: str = ""  # the service of that event

    def covers(self, service: str, notification_id: int) -> bool:
        return notification_id <= self.vector.get(service, 0)

    def encode(self) -> str:
        body = msgspec.msgpack.encode(
            (
                POSITION_VERSION,
                tenant_tag(self.tenant_id),
                self.epoch,
                self.seq,
                self.last,
                sorted(self.vector.items()),
            )
        )
        return base64.urlsafe_b64encode(body + _checksum(body)).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str, tenant_id: str, field_name: str = "after") -> Position:
        """The position `text` of `tenant_id`'s stream, or InvalidPosition
        saying what is wrong with it."""

        def refuse(why: str) -> InvalidPosition:
            return InvalidPosition(f"{field_name}: {why}", field=field_name)

        if not text or len(text) > MAX_POSITION_LENGTH or not _POSITION_TEXT.match(text):
            raise refuse("not a position (use the `position` of an event, as given)")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise refuse("not a position (use the `position` of an event, as given)") from None
        body, checksum = raw[:-4], raw[-4:]
        if len(raw) < 8 or not hmac.compare_digest(_checksum(body), checksum):
            raise refuse("a damaged or forged position (use the `position` of an event, as given)")
        try:
            version, tag, epoch, seq, last, pairs = msgspec.msgpack.decode(body, type=_Wire)
        except msgspec.DecodeError:
            raise refuse("not a position of this stream") from None
        if version != POSITION_VERSION:
            raise refuse(f"a position of an unknown format ({version})")
        if not hmac.compare_digest(tag, tenant_tag(tenant_id)):
            raise refuse("a position of another network's stream")
        vector: dict[str, int] = {}
        for service, notification_id in pairs:
            if not _SERVICE_NAME.match(service) or notification_id < 1 or service in vector:
                raise refuse("not a position of this stream")
            vector[service] = notification_id
        if (
            len(vector) > MAX_SERVICES
            or epoch < 0
            or seq < 0
            or (last and last not in vector)
            or (seq > 0 and not last)
        ):
            raise refuse("not a position of this stream")
        return cls(tenant_id, vector, epoch, seq, last)


# -- type filters ----------------------------------------------------------------

MAX_TYPE_PREFIXES = 20
_TYPE_PREFIX = re.compile(r"^quartier\.[A-Za-z0-9_.]{0,200}$")


def parse_type_prefixes(values: Iterable[str], field_name: str = "types") -> tuple[str, ...]:
    """Comma-separated prefixes of CloudEvents types (`quartier.hubs.`,
    `quartier.hubs.Member`, `quartier.identity.MemberJoined.v1`): plain
    prefixes, no wildcards. Empty: no filter."""
    prefixes: list[str] = []
    for value in values:
        for part in value.split(","):
            prefix = part.strip()
            if not prefix:
                continue
            if not _TYPE_PREFIX.match(prefix):
                raise InvalidInput(
                    t(
                        "{field}: {prefix} is not a prefix of event types: they start "
                        "with `quartier.` and hold letters, digits, `_` and `.` only, no wildcards "
                        "(e.g. `quartier.hubs.` or `quartier.identity.MemberJoined`)",
                        field=field_name,
                        prefix=repr(prefix[:60]),
                    ),
                    field=field_name,
                )
            if prefix not in prefixes:
                prefixes.append(prefix)
    if len(prefixes) > MAX_TYPE_PREFIXES:
        raise InvalidInput(
            t("{field}: at most {limit} prefixes", field=field_name, limit=MAX_TYPE_PREFIXES),
            field=field_name,
        )
    return tuple(prefixes)


# -- reading a tenant's stream from a position -------------------------------------


@dataclass(frozen=True)
class StreamedEvent:
    """An event as a reader delivers it: the CloudEvent, its JSON as
    published, and the position just after it."""

    event: CloudEvent
    raw: bytes
    position: str

    def json_with_position(self) -> bytes:
        """The CloudEvent's JSON with the `position` extension attribute."""
        raw = self.raw.rstrip()
        return raw[:-1] + b',"position":"' + self.position.encode() + b'"}'


_CLEANUPS: set[asyncio.Task[None]] = set()
HEARTBEAT = None  # what a reader yields when it has been quiet for `heartbeat` seconds


def stream_epoch(created: datetime | None) -> int:
    """A stream incarnation's identity: its creation time in microseconds."""
    if created is None:
        return 0
    return (created - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def notification_id_of(headers: Mapping[str, str] | None, data: bytes | None) -> int:
    """The notification id of a message on the stream: from `Nats-Msg-Id`
    (`<service>:<id>`, or `<service>:<rebuild>:<id>` for one republished by
    a rebuild), else from the CloudEvent itself."""
    message_id = (headers or {}).get("Nats-Msg-Id", "")
    try:
        return int(message_id.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return cloud_event_decoder.decode(data or b"").sequence


def subject_service(subject: str) -> tuple[str, str]:
    """(tenant, service) of an event subject."""
    parts = subject.split(".")
    return (parts[2], parts[3]) if len(parts) >= 5 else ("", "")


class EventReader:
    """A tenant's events, in stream order, after a position (or from the
    start, or only new ones), through an ephemeral pull consumer on the
    tenant's subjects: each fetch asks for at most `batch` messages, and the
    next fetch waits until the caller has taken them, so a slow caller holds
    at most one batch here while the rest waits in JetStream.

    Iterating yields `StreamedEvent`s, and `HEARTBEAT` (None) when `heartbeat`
    seconds passed without anything to yield (following only). It stops at the
    end of the history unless `follow`, after `limit` events, or at
    `deadline` (a `time.monotonic()` value; `expired` then tells)."""

    INACTIVE_THRESHOLD = 120.0  # JetStream deletes a consumer forgotten that long
    MAX_WAIT = 30.0  # longest fetch
    CHECK_INTERVAL = 30.0  # how often a quiet reader checks that its consumer is still there

    def __init__(
        self,
        js: JetStreamContext,
        tenant_id: str,
        *,
        after: Position | None = None,
        from_start: bool = True,
        types: tuple[str, ...] = (),
        follow: bool = False,
        limit: int | None = None,
        heartbeat: float | None = None,
        deadline: float | None = None,
        batch: int = 64,
    ):
        self.js = js
        self.tenant_id = tenant_id
        self.after = after
        self.from_start = from_start
        self.types = types
        self.follow = follow
        self.limit = limit
        self.heartbeat = heartbeat
        self.deadline = deadline
        self.batch = max(1, batch)
        self.expired = False
        self.vector: dict[str, int] = dict(after.vector) if after else {}
        self.epoch = 0
        self.next_seq = 1  # the next stream sequence to read
        self.pending: int | None = None  # messages left when opened (not following)
        self.fetched = 0  # messages fetched from JetStream (tests watch the buffer)
        self.delivered = 0  # events yielded
        self._sub: JetStreamContext.PullSubscription | None = None
        self._consumer: str | None = None
        self._fetched_at = 0.0
        self._checked_at = time.monotonic()

    @property
    def subject(self) -> str:
        return tenant_filter(self.tenant_id)

    # -- where to start ----------------------------------------------------------

    async def open(self) -> None:
        """Find where to start and create the consumer. Raises Unavailable
        when the stream cannot be read."""
        try:
            await self._open()
        except Unavailable:
            raise
        except NotFoundError:
            raise Unavailable(t("the event stream does not exist (yet)")) from None
        except (TimeoutError, nats.errors.Error) as e:
            raise Unavailable(t("the event stream cannot be read now: retry")) from e

    async def _open(self) -> None:
        info = await self.js.stream_info(STREAM, subjects_filter=self.subject)
        self.epoch = stream_epoch(info.created)
        state = info.state
        services = sorted({subject_service(s)[1] for s in (state.subjects or {})} - {""})
        if self.after is not None:
            self.next_seq = await self._start_after(
                self.after, state.first_seq, state.last_seq, services
            )
        elif self.from_start:
            self.next_seq = max(1, state.first_seq)
        else:
            self.next_seq = await self._start_at_end(state.last_seq, services)
        await self._subscribe()

    async def _start_after(
        self, after: Position, first_seq: int, last_seq: int, services: list[str]
    ) -> int:
        if after.seq and after.epoch == self.epoch and await self._hint_matches(after):
            return after.seq + 1
        # Another incarnation of the stream, or the hinted message is gone:
        # for each service, the first of its events that the position does
        # not cover (its events of a tenant are in notification-id order).
        starts = [
            s
            for service in services
            if (
                s := await self._first_uncovered(
                    service, after.vector.get(service, 0), first_seq, last_seq
                )
            )
            is not None
        ]
        return min(starts) if starts else last_seq + 1

    async def _hint_matches(self, after: Position) -> bool:
        try:
            msg = await self.js.get_msg(STREAM, seq=after.seq)
        except NotFoundError:
            return False
        tenant, service = subject_service(msg.subject or "")
        return (
            tenant == self.tenant_id
            and service == after.last
            and notification_id_of(msg.headers, msg.data) == after.vector.get(after.last)
        )

    async def _next_of(self, service: str, seq: int) -> tuple[int, int] | None:
        """(sequence, notification id) of the tenant's first event of
        `service` at or after `seq`."""
        try:
            msg = await self.js.get_msg(
                STREAM, seq=max(1, seq), next=True, subject=tenant_filter(self.tenant_id, service)
            )
        except NotFoundError:
            return None
        return msg.seq or 0, notification_id_of(msg.headers, msg.data)

    async def _first_uncovered(
        self, service: str, covered: int, first_seq: int, last_seq: int
    ) -> int | None:
        """The stream sequence of the tenant's first event of `service` whose
        notification id is above `covered` (a binary search: ids grow with
        sequences), or None if there is none yet."""
        found = await self._next_of(service, first_seq)
        if found is None or found[1] > covered:
            return found[0] if found else None
        lo, hi = found[0] + 1, last_seq + 1  # the answer is in [lo, hi]; hi: none
        while lo < hi:
            mid = (lo + hi) // 2
            at = await self._next_of(service, mid)
            if at is None or at[1] > covered:
                hi = mid
            else:
                lo = at[0] + 1
        at = await self._next_of(service, lo) if lo <= last_seq else None
        return at[0] if at is not None and at[1] > covered else None

    async def _start_at_end(self, last_seq: int, services: list[str]) -> int:
        """New events only: the position after the stream's last message."""
        for service in services:
            try:
                msg = await self.js.get_last_msg(STREAM, tenant_filter(self.tenant_id, service))
            except NotFoundError:
                continue
            if (msg.seq or 0) <= last_seq:
                self.vector[service] = notification_id_of(msg.headers, msg.data)
            else:  # published since: cover what came before it
                found = await self._next_of(service, last_seq + 1)
                if found is not None and found[1] > 1:
                    self.vector[service] = found[1] - 1
        return last_seq + 1

    # -- reading -----------------------------------------------------------------

    async def _subscribe(self) -> None:
        await self._unsubscribe()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, self.next_seq),
            ack_policy=AckPolicy.NONE,
            filter_subject=self.subject,
            inactive_threshold=self.INACTIVE_THRESHOLD,
            mem_storage=True,
            num_replicas=1,
        )
        try:
            info = await self.js.add_consumer(STREAM, config)
            self._consumer = info.name
            self._sub = await self.js.pull_subscribe_bind(
                stream=STREAM,
                name=info.name,
                pending_msgs_limit=self.batch * 4,
                pending_bytes_limit=self.batch * 4 * 1024 * 1024,
            )
        except NotFoundError:
            raise Unavailable(t("the event stream does not exist (yet)")) from None
        except (TimeoutError, nats.errors.Error) as e:
            raise Unavailable(t("the event stream cannot be read now: retry")) from e
        self.pending = info.num_pending
        self._fetched_at = time.monotonic()

    async def _unsubscribe(self) -> None:
        sub, name = self._sub, self._consumer
        self._sub = self._consumer = None
        if sub is not None:
            with suppress(Exception):
                await sub.unsubscribe()
        if name is not None:
            with suppress(Exception):
                await self.js.delete_consumer(STREAM, name)

    async def close(self) -> None:
        """Delete the consumer (in a task of its own, so that a caller being
        cancelled — a client gone — still cleans up)."""
        if self._sub is None and self._consumer is None:
            return
        task = asyncio.ensure_future(self._unsubscribe())
        _CLEANUPS.add(task)
        task.add_done_callback(_CLEANUPS.discard)
        await asyncio.shield(task)

    def _matches(self, event_type: str) -> bool:
        return not self.types or any(event_type.startswith(p) for p in self.types)

    def _position_after(self, service: str, seq: int) -> str:
        return Position(self.tenant_id, self.vector, self.epoch, seq, service).encode()

    async def __aiter__(self) -> AsyncIterator[StreamedEvent | None]:
        if self._sub is None:
            await self.open()
        try:
            if not self.follow and self.pending == 0:
                return
            quiet_since = time.monotonic()
            while True:
                if self.limit is not None and self.delivered >= self.limit:
                    return
                now = time.monotonic()
                if self.deadline is not None and now >= self.deadline:
                    self.expired = True
                    return
                wait = self.MAX_WAIT
                if self.deadline is not None:
                    wait = min(wait, self.deadline - now)
                if self.heartbeat is not None:
                    wait = min(wait, max(0.01, quiet_since + self.heartbeat - now))
                if not self.follow:
                    wait = min(wait, 5.0)
                messages = await self._fetch(max(0.01, wait))
                if not messages and not self.follow:
                    return  # the history ended (purged meanwhile)
                for msg in messages:
                    meta = msg.metadata
                    self.next_seq = meta.sequence.stream + 1
                    delivered = self._take(msg)
                    if delivered is not None:
                        yield delivered
                        quiet_since = time.monotonic()
                        self.delivered += 1
                        if self.limit is not None and self.delivered >= self.limit:
                            return
                    if not self.follow and meta.num_pending == 0:
                        return
                # quiet for a while (nothing new, or nothing that the types
                # filter lets through): say the connection is alive
                if self.heartbeat is not None and time.monotonic() - quiet_since >= self.heartbeat:
                    quiet_since = time.monotonic()
                    yield HEARTBEAT
        finally:
            await self.close()

    def _take(self, msg: Msg) -> StreamedEvent | None:
        tenant, service = subject_service(msg.subject)
        if tenant != self.tenant_id:  # the filter says it cannot be: never let it out
            log.error("stream.foreign_event", subject=msg.subject)
            return None
        try:
            event = cloud_event_decoder.decode(msg.data)
        except msgspec.DecodeError:
            log.error("stream.undecodable_event", subject=msg.subject)
            return None
        if event.tenant != self.tenant_id:
            log.error("stream.foreign_event", subject=msg.subject)
            return None
        if event.sequence <= self.vector.get(service, 0):
            return None  # covered by the position: had already
        self.vector[service] = event.sequence
        if not self._matches(event.type):
            return None
        return StreamedEvent(
            event, msg.data, self._position_after(service, msg.metadata.sequence.stream)
        )

    async def _fetch(self, wait: float) -> list[Msg]:
        """At most `batch` messages (fewer when the limit is near), waiting
        up to `wait` seconds; []: none came. A consumer JetStream dropped (a
        caller that stalled longer than its inactivity threshold) is created
        again where the reading stands."""
        if time.monotonic() - self._fetched_at > self.INACTIVE_THRESHOLD / 2:
            await self._subscribe()
        want = self.batch
        if self.limit is not None:
            want = max(1, min(want, self.limit - self.delivered))
        for attempt in (1, 2):
            assert self._sub is not None
            self._fetched_at = time.monotonic()
            try:
                messages = await self._sub.fetch(want, timeout=wait)
            except (TimeoutError, nats.errors.TimeoutError):
                await self._check_consumer()
                return []
            except (nats.errors.Error, nats.js.errors.Error) as e:
                if attempt == 2:
                    raise Unavailable(t("the event stream cannot be read now: retry")) from e
                await self._subscribe()
                continue
            self.fetched += len(messages)
            self._checked_at = time.monotonic()
            return messages
        return []

    async def _check_consumer(self) -> None:
        """Quiet for a while: is the consumer still there? (A NATS server
        restarted, or a cluster that lost it, answers pulls with silence.)"""
        if time.monotonic() - self._checked_at < self.CHECK_INTERVAL:
            return
        self._checked_at = time.monotonic()
        assert self._sub is not None
        try:
            await self._sub.consumer_info()
        except NotFoundError:
            log.info("stream.consumer_recreated", tenant=self.tenant_id)
            await self._subscribe()
        except (TimeoutError, nats.errors.Error):
            pass  # NATS itself is away: the next fetch tells
