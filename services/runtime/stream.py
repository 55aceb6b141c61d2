"""The JetStream stream QUARTIER_EVENTS and the CloudEvents envelope on it.

Subjects: `quartier.evt.<tenant_id>.<service>.<EventType>`. The stream is a
replayable, derived copy of the services' notification logs: it keeps every
event (no age limit) and de-duplicates re-publications by `Nats-Msg-Id`
within `DUPLICATE_WINDOW`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import msgspec
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

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
