"""Throttling of credential attempts: sign-in per account and per client
address, password-reset mails per account and per address.

Exponential backoff, never a lockout: each key (hashed, so no address or
e-mail is stored here) allows `free` attempts; each attempt past them makes
the next wait twice as long as the last, from `base` seconds up to `cap`
seconds (so at most `free` attempts in a row, then one per wait), and a
key forgets its attempts after `forget` seconds without one.
An attempt is counted *before* the password is checked (so that concurrent
attempts cannot all slip in before the first failure is written) and the
account's counts are cleared by a success (the address's count loses that
one attempt: it counts failures). Waiting is answered with
`RateLimited` and `retry_after` (seconds); an attempt refused for waiting is
not counted, so retrying early does not lengthen the wait.

The counts live in identity's views database (a plain table, shared by
replicas, lost without harm when the views are rebuilt), and use the
service's clock (movable in development and tests).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from services.runtime.errors import RateLimited
from services.runtime.i18n import Text, t

metadata = sa.MetaData()

attempts = sa.Table(
    "credential_attempts",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("tally", sa.Integer, nullable=False),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("wait_until", sa.DateTime(timezone=True)),
)


@dataclass(frozen=True)
class Policy:
    name: str
    free: int  # attempts before any wait
    base: float  # seconds: the first wait
    cap: float  # seconds: the longest wait
    forget: float  # seconds without an attempt after which the count restarts

    def wait(self, count: int) -> float:
        """Seconds to wait after the `count`-th attempt: none before the
        `free`-th, then `base`, doubling each attempt, at most `cap`."""
        if count < self.free:
            return 0.0
        return float(min(self.cap, self.base * 2 ** min(40, count - self.free)))


# Sign-in. The pair (account, address) is the legitimate user's own typos and
# a single-origin guesser; the account across addresses is a distributed
# guesser (its cap is lower: that is the longest an attacker can make the
# real member wait); the address across accounts is password spraying.
LOGIN_PAIR = Policy("login-pair", free=5, base=1, cap=900, forget=3600)
LOGIN_ACCOUNT = Policy("login-account", free=20, base=1, cap=300, forget=3600)
LOGIN_ADDRESS = Policy("login-address", free=30, base=1, cap=900, forget=3600)
# Password-reset mails: a few per account per hour (more are answered alike
# and mail nothing), and per address (more wait).
RESET_ACCOUNT = Policy("reset-account", free=3, base=3600, cap=3600, forget=3600)
RESET_ADDRESS = Policy("reset-address", free=10, base=60, cap=3600, forget=3600)
# API keys presented as Bearer credentials: failures (unknown, malformed,
# revoked, expired keys) per client address; a good key costs no write.
API_KEY_ADDRESS = Policy("api-key-address", free=20, base=1, cap=900, forget=3600)


Attempted = Literal["sign-in", "password", "password-reset", "API key"]


def too_many(what: Attempted, wait: int) -> Text:
    """The refusal of an attempt that must wait `wait` seconds: whole
    sentences, one per kind of attempt and per number (1 second, or more),
    that each language says its own way (services/runtime/i18n.py)."""
    one = wait == 1
    if what == "sign-in":
        if one:
            return t("too many sign-in attempts: try again in 1 second")
        return t("too many sign-in attempts: try again in {seconds} seconds", seconds=wait)
    if what == "password":
        if one:
            return t("too many password attempts: try again in 1 second")
        return t("too many password attempts: try again in {seconds} seconds", seconds=wait)
    if what == "password-reset":
        if one:
            return t("too many password-reset attempts: try again in 1 second")
        return t("too many password-reset attempts: try again in {seconds} seconds", seconds=wait)
    if one:
        return t("too many API key attempts: try again in 1 second")
    return t("too many API key attempts: try again in {seconds} seconds", seconds=wait)


@contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that reads then writes: it takes SQLite's write lock at
    its start (`BEGIN IMMEDIATE`), so that another writer meanwhile makes it
    wait, not fail with "database is locked" (a stale read snapshot cannot
    be upgraded to a write)."""
    with engine.connect().execution_options(write_lock=True) as conn, conn.begin():
        yield conn


def key(policy: Policy, *parts: str) -> str:
    raw = "\x1f".join((policy.name, *parts)).encode()
    return hashlib.sha256(raw).hexdigest()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Throttle:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        metadata.create_all(engine)

    def waiting(self, keys: list[tuple[Policy, str]], now: datetime) -> int:
        """Seconds until all the keys allow an attempt (0: now)."""
        if not keys:
            return 0
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(attempts.c.wait_until).where(attempts.c.key.in_([k for _, k in keys]))
            ).all()
        longest = max(
            ((_utc(r.wait_until) - now).total_seconds() for r in rows if r.wait_until), default=0
        )
        return math.ceil(longest) if longest > 0 else 0

    def attempt(self, keys: list[tuple[Policy, str]], now: datetime, what: Attempted) -> None:
        """Count an attempt on each key, or raise RateLimited (counting
        nothing) if one of them must wait."""
        wait = self.waiting(keys, now)
        if wait:
            raise RateLimited(too_many(what, wait), retry_after=wait)
        for policy, k in keys:
            self._count(policy, k, now)

    def _count(self, policy: Policy, k: str, now: datetime) -> None:
        for _ in range(3):
            try:
                with writing(self.engine) as conn:
                    row = conn.execute(sa.select(attempts).where(attempts.c.key == k)).first()
                    fresh = row is None or (now - _utc(row.last_at)).total_seconds() > policy.forget
                    count = 1 if fresh or row is None else row.tally + 1
                    wait = policy.wait(count)
                    values = {
                        "tally": count,
                        "last_at": now,
                        "wait_until": now + timedelta(seconds=wait) if wait else None,
                    }
                    if row is None:
                        conn.execute(attempts.insert().values(key=k, **values))
                    else:
                        conn.execute(attempts.update().where(attempts.c.key == k).values(**values))
                return
            except IntegrityError:  # a concurrent first attempt inserted the row
                continue

    def forgive(self, policy: Policy, k: str) -> None:
        """Take back one counted attempt (a success), so that a key counts
        failures only: many members signing in from one address (an office,
        a proxy) are not slowed down by their own successes."""
        with writing(self.engine) as conn:
            row = conn.execute(sa.select(attempts).where(attempts.c.key == k)).first()
            if row is None:
                return
            count = max(0, row.tally - 1)
            wait = policy.wait(count) if count else 0
            conn.execute(
                attempts.update()
                .where(attempts.c.key == k)
                .values(
                    tally=count,
                    wait_until=_utc(row.last_at) + timedelta(seconds=wait) if wait else None,
                )
            )

    def clear(self, keys: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(attempts.delete().where(attempts.c.key.in_(keys)))
