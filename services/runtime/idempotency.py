"""Idempotency keys: a client that did not hear the answer to a command can
send it again with the same key and get the first outcome, not a second
effect (the IETF's Idempotency-Key header; Stripe's practice).

Commands opt in (`idempotent = True` on the contract class: the create-like
ones). The gateway passes the `Idempotency-Key` header in the envelope; the
service keeps, per (tenant, actor, command, key), a fingerprint of the
request and its reply, for `TTL`, in its views database (shared by its
replicas). A second request with the same key:

* while the first runs: waits for it (at most half the request timeout, so
  that its caller hears the answer), then answers the same, or `conflict`
  ("still running": send it again);
* after: answers the stored reply (a success or a typed refusal);
* with a different body: `invalid_input` (a key names one request);
* when the first was cut short — its process killed after it claimed the
  key, before it kept the reply — and no reply came within `stale_after`
  (three request timeouts): `conflict` on the field `idempotency_key`, at
  once. The first may or may not have taken effect (its events and the reply
  are not in one transaction); the client looks, and sends it again with a
  new key if it did not. Running it again here could apply it twice.

Transient failures (`unavailable`, `internal`) are not kept: the retry runs.
Replies that carry a secret are not kept either (commands whose reply holds a
token do not opt in).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.runtime.errors import Conflict, InvalidInput
from services.runtime.i18n import t
from services.runtime.views import UTCDateTime

TTL = timedelta(hours=24)
MAX_KEY = 200
POLL = 0.05  # seconds between looks while a first request runs
STALE = 3  # request timeouts after which a claim without its reply was cut short
INTERRUPTED = (
    "the first request with this idempotency key was cut short (its service stopped) before"
    " its answer was kept: it may or may not have taken effect; look, and send it again with"
    " a new key if it did not"
)
TRANSIENT = ("unavailable", "internal")
STILL_RUNNING = "a request with this idempotency key is still running"

metadata = sa.MetaData()

replies = sa.Table(
    "idempotent_replies",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # sha256 of who, what and the key
    sa.Column("fingerprint", sa.String(64), nullable=False),  # sha256 of the request body
    sa.Column("reply", sa.LargeBinary),  # None while the first request runs
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_idempotent_replies_created", "created_at"),
)

Offload = Callable[..., Awaitable[Any]]


def key_of(tenant_id: str | None, actor: str, request: str, idempotency_key: str) -> str:
    raw = "\x1f".join((tenant_id or "", actor, request, idempotency_key))
    return hashlib.sha256(raw.encode()).hexdigest()


def check_key(idempotency_key: str) -> str:
    if not 1 <= len(idempotency_key) <= MAX_KEY or not idempotency_key.isprintable():
        raise InvalidInput(
            t("an idempotency key is 1 to {limit} printable characters", limit=MAX_KEY),
            field="idempotency_key",
        )
    return idempotency_key


class IdempotencyStore:
    """`wait` is the callers' request timeout: a retry that finds the first
    request still running waits for it at most half of that, so that the
    retry's caller hears the answer (`conflict`, "still running") rather than
    timing out itself. A claim still without its reply after `stale_after`
    (default `STALE` request timeouts) is taken for cut short."""

    def __init__(
        self,
        engine: sa.Engine,
        offload: Offload,
        wait: float = 10.0,
        stale_after: float | None = None,
    ):
        self.engine = engine
        self.offload = offload
        self.wait = wait
        self.stale_after = STALE * wait if stale_after is None else stale_after

    def create(self) -> None:
        metadata.create_all(self.engine)

    async def run(
        self, key: str, fingerprint: str, produce: Callable[[], Awaitable[tuple[bytes, str | None]]]
    ) -> bytes:
        """The reply for `key`: the stored one, or `produce()`'s, stored
        unless its error code is transient. `produce` returns (reply bytes,
        error code or None)."""
        claimed = await self.offload(self._claim, key, fingerprint)
        if not claimed:
            return await self._first_reply(key, fingerprint)
        try:
            reply, error = await produce()
        except BaseException:
            await self.offload(self._forget, key)
            raise
        if error in TRANSIENT:
            await self.offload(self._forget, key)
        else:
            await self.offload(self._keep, key, reply)
        return reply

    async def _first_reply(self, key: str, fingerprint: str) -> bytes:
        deadline = asyncio.get_running_loop().time() + self.wait / 2
        while True:
            row = await self.offload(self._row, key)
            if row is None:  # the first one failed transiently meanwhile: the caller retries
                raise Conflict(t("a request with this idempotency key failed: send it again"))
            if row.fingerprint != fingerprint:
                raise InvalidInput(
                    t("this idempotency key was used for another request"), field="idempotency_key"
                )
            if row.reply is not None:
                return bytes(row.reply)
            if datetime.now(UTC) - row.created_at > timedelta(seconds=self.stale_after):
                raise Conflict(INTERRUPTED, field="idempotency_key")
            if asyncio.get_running_loop().time() > deadline:
                raise Conflict(STILL_RUNNING)
            await asyncio.sleep(POLL)

    # -- on a worker thread ---------------------------------------------------------------

    def _claim(self, key: str, fingerprint: str) -> bool:
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    replies.delete().where(replies.c.key == key, replies.c.created_at < now - TTL)
                )
                conn.execute(
                    replies.insert().values(
                        key=key, fingerprint=fingerprint, reply=None, created_at=now
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def _row(self, key: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(replies).where(replies.c.key == key)).first()

    def _keep(self, key: str, reply: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(replies.update().where(replies.c.key == key).values(reply=reply))

    def _forget(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(replies.delete().where(replies.c.key == key))

    def purge(self) -> int:
        """Forget replies older than TTL; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(
                replies.delete().where(replies.c.created_at < datetime.now(UTC) - TTL)
            ).rowcount
