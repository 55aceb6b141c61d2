"""Who may spend how much of a gateway replica: request rates and query
costs in token buckets, and each network's share of the work in flight.

Keys, checked in this order, each only if the previous allowed it (so a
refused request takes nothing from the next bucket):

1. the **caller**: a member (`member:<tenant>:<member id>`), the operator,
   or an anonymous client address (`address:<ip>`, see `client_address`);
2. the caller's **network** (`tenant:<tenant id>`), for members.

A member's own rates are below their network's (a quarter of its requests
and half its cost, by default), so one member's flood empties their own bucket and is refused
there, before it reaches the network's: the others of the network, their
admin among them, keep being served. Each bucket holds a request count
(`QUARTIER_RATE_LIMIT` a minute for a network, `QUARTIER_MEMBER_RATE_LIMIT`
for a member or address) and a cost (`gateway.costs`: fields times page sizes;
`QUARTIER_COST_LIMIT` a minute for a network, `QUARTIER_MEMBER_COST_LIMIT`
for a member or address), each refilled continuously. A request bucket holds
a minute's worth; a network's cost bucket ten seconds' (`COST_BURST_SECONDS`),
a member's twenty (`MEMBER_COST_BURST_SECONDS`): a burst is served at once,
a sustained flood of costly questions gets the rate.

A refusal says when to come back: `Retry-After` (seconds, rounded up) is
when the bucket will hold what the request needs.

**Fair sharing** (`services.runtime.fairness.FairQueue`). At most
`Limits.concurrency` operations run at once on a replica, and at most
`QUARTIER_TENANT_CONCURRENCY` of one network; the next ones wait in a queue
of their network (at most `Limits.tenant_queue` deep: past that, 429 at
once), and a freed turn goes to the networks in rotation. A network that
sends more than its share waits behind itself, never in front of another
network's request, and one that waits longer than `QUARTIER_REQUEST_TIMEOUT`
is refused with 429.

Buckets live in one replica's memory: with N replicas behind a balancer a
caller gets up to N times the limits (docs/security.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from services.runtime.fairness import FairQueue, QueueFull
from services.runtime.i18n import request_locale, t, translate

MAX_KEYS = 100_000
"""Buckets kept at most (the least recently used are dropped: a dropped
bucket is a full one, which favours no attacker: a new key starts full)."""


COST_BURST_SECONDS = 10.0
"""A network's cost bucket holds ten seconds' worth: a burst of costly
questions is served, a sustained flood of them gets the rate. (A request
bucket holds a minute's.) Short, because a burst is work the other networks
share the replica with (docs/performance.md, tenant isolation)."""

MEMBER_COST_BURST_SECONDS = 20.0
"""A member's cost bucket holds twenty seconds' worth: at the defaults (half
the network's rate) as much as the network's, two queries of the largest
cost allowed (`gateway.costs.MAX_COST`) or a few console pages at once,
while a member's sustained flood gets half the network's rate and leaves
the other half to the others."""


@dataclass
class Bucket:
    tokens: float
    at: float


class Buckets:
    """Token buckets by key, each refilled at `per_minute / 60` a second up
    to `burst_seconds` worth (at least 10 tokens, or the whole minute's when
    that is less)."""

    def __init__(
        self,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        burst_seconds: float = 60.0,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(self.rate * burst_seconds, min(float(per_minute), 10.0), 1.0)
        self.clock = clock
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    def _bucket(self, key: str) -> Bucket:
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(self.capacity, now)
            if len(self.buckets) > MAX_KEYS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket

    def wait(self, key: str, amount: float) -> float:
        """Seconds until `amount` can be taken (0: now). An amount larger
        than the capacity is asked as the whole capacity."""
        bucket = self._bucket(key)
        missing = min(amount, self.capacity) - bucket.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, key: str, amount: float) -> None:
        bucket = self._bucket(key)
        bucket.tokens -= min(amount, self.capacity)


@dataclass(frozen=True)
class Limits:
    """Per minute, per replica (see the module)."""

    tenant_requests: int = 1200
    member_requests: int = 300
    tenant_cost: int = 120_000
    member_cost: int = 60_000
    tenant_concurrency: int = 4
    queue_timeout: float = 10.0
    concurrency: int = 16
    """Operations running at once on a replica, all networks together."""
    tenant_queue: int = 16
    """Operations of one network waiting for a turn, at most (then 429 at once)."""


class Refused(Exception):
    """Over a budget: come back in `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = str(message)
        self.text = message  # a `t()` message, said in the request's language
        self.retry_after = max(1, math.ceil(retry_after))

    def said(self) -> str:
        """The message in the request's language (`Accept-Language`)."""
        return translate(self.text, request_locale())


class Budgets:
    """The buckets of one replica (see the module)."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.requests = {
            "caller": Buckets(limits.member_requests, clock),
            "tenant": Buckets(limits.tenant_requests, clock),
        }
        self.costs = {
            "caller": Buckets(limits.member_cost, clock, MEMBER_COST_BURST_SECONDS),
            "tenant": Buckets(limits.tenant_cost, clock, COST_BURST_SECONDS),
        }
        self.turns = FairQueue(
            max(limits.concurrency, limits.tenant_concurrency),
            per_key=limits.tenant_concurrency,
            max_waiting=limits.tenant_queue,
        )
        self.clock = clock
        self.blocked: OrderedDict[str, float] = OrderedDict()

    def _block(self, key: str, wait: float) -> None:
        """Refuse `key` at the door for `wait` seconds (see `request`)."""
        self.blocked[key] = self.clock() + wait
        self.blocked.move_to_end(key)
        if len(self.blocked) > MAX_KEYS:
            self.blocked.popitem(last=False)

    def _check_blocked(self, keys: Iterable[str]) -> None:
        now = self.clock()
        for key in keys:
            until = self.blocked.get(key)
            if until is None:
                continue
            if until <= now:
                del self.blocked[key]
                continue
            raise Refused(t("the cost budget is spent: come back after Retry-After"), until - now)

    def _charge(
        self, kind: dict[str, Buckets], keys: Iterable[tuple[str, str]], amount: float
    ) -> tuple[str, float] | None:
        """Take `amount` from each key's bucket if all have it; else take
        nothing and answer the key refused and its wait."""
        wanted = [(kind[level], key) for level, key in keys if key]
        for buckets, key in wanted:
            wait = buckets.wait(key, amount)
            if wait > 0:
                return key, wait  # the caller's bucket first: the network's is not touched
        for buckets, key in wanted:
            buckets.take(key, amount)
        return None

    def request(self, caller: str, tenant: str | None) -> None:
        """One request of `caller` (of network `tenant`), or Refused: over
        the request rate, or still within the wait a cost refusal gave
        (refused at the door, before its document is even parsed: a client
        that ignores `Retry-After` costs next to nothing)."""
        tenant_key = f"tenant:{tenant}" if tenant else ""
        self._check_blocked(k for k in (caller, tenant_key) if k)
        refused = self._charge(self.requests, (("caller", caller), ("tenant", tenant_key)), 1)
        if refused:
            raise Refused(t("too many requests: slow down"), refused[1])

    def cost(self, caller: str, tenant: str | None, cost: int) -> None:
        """An operation of this cost, or Refused (and the caller, or the
        network, refused at the door until the wait is over)."""
        tenant_key = f"tenant:{tenant}" if tenant else ""
        refused = self._charge(self.costs, (("caller", caller), ("tenant", tenant_key)), cost)
        if refused:
            key, wait = refused
            self._block(key, wait)
            raise Refused(
                t(
                    "this operation costs {cost} and the budget is spent: slow down or ask for less",
                    cost=cost,
                ),
                wait,
            )

    @asynccontextmanager
    async def turn(self, tenant: str | None) -> AsyncIterator[None]:
        """A network's turn to run an operation (see "Fair sharing")."""
        if tenant is None:
            yield
            return
        try:
            async with asyncio.timeout(self.limits.queue_timeout):
                await self.turns.acquire(tenant)
        except (TimeoutError, QueueFull):
            raise Refused(t("this network has too many operations running: retry"), 1) from None
        try:
            yield
        finally:
            self.turns.release(tenant)


def client_address(peer: str | None, forwarded_for: str | None, trusted: frozenset[str]) -> str:
    """The address a client is counted by (`_client_address`), an IPv6 one
    by its /64: one subscriber holds a whole /64, and rotating addresses in
    it would otherwise give fresh budgets and throttles at will."""
    return per_subnet(_client_address(peer, forwarded_for, trusted))


def per_subnet(address: str) -> str:
    """An IPv6 address as its /64 network (`2001:db8:1:2::/64`); anything
    else as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return address


def _client_address(peer: str | None, forwarded_for: str | None, trusted: frozenset[str]) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted
    proxy (`QUARTIER_TRUSTED_PROXIES`, addresses or networks); then the
    right-most address of `X-Forwarded-For` that is not itself a trusted
    proxy (each proxy appends the address it received from; only the
    right-most entries were written by proxies we trust, the left-most by
    whoever sent the request)."""
    if not peer or not forwarded_for or not _trusted(peer, trusted):
        return peer or "unknown"
    hops = [h.strip() for h in forwarded_for.split(",")][-32:]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled header: the proxy's own address
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, trusted: frozenset[str]) -> bool:
    if not trusted:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(t, strict=False) for t in trusted)


FOLLOW_RETRY_SECONDS = 30
"""`Retry-After` of a refused `follow=true` stream: open streams end when
their clients hang up, not at a time the gateway knows; half a minute is a
reasonable wait before trying again."""


class OpenStreams:
    """Long responses open at once on a replica (`GET /v1/events?follow=true`),
    counted per network and per caller (a key or a member): at most `per_tenant`
    of one network and `per_caller` of one caller. `open` answers a release
    (call it once, when the response ends) or raises Refused."""

    def __init__(self, per_tenant: int, per_caller: int | None = None) -> None:
        self.per_tenant = max(1, per_tenant)
        self.per_caller = max(1, per_caller if per_caller is not None else -(-per_tenant // 4))
        self.counts: dict[str, int] = {}

    def open(self, tenant: str, caller: str) -> Callable[[], None]:
        tenant_key, caller_key = f"tenant:{tenant}", f"caller:{caller}"
        if self.counts.get(caller_key, 0) >= self.per_caller:
            raise Refused(
                t(
                    "this credential has {count} following streams open already "
                    "(the most per key or member): close one, or read without follow",
                    count=self.per_caller,
                ),
                FOLLOW_RETRY_SECONDS,
            )
        if self.counts.get(tenant_key, 0) >= self.per_tenant:
            raise Refused(
                t(
                    "this network has {count} following streams open already "
                    "(QUARTIER_STREAM_FOLLOWS): close one, or read without follow",
                    count=self.per_tenant,
                ),
                FOLLOW_RETRY_SECONDS,
            )
        for key in (tenant_key, caller_key):
            self.counts[key] = self.counts.get(key, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            for key in (tenant_key, caller_key):
                left = self.counts.get(key, 0) - 1
                if left > 0:
                    self.counts[key] = left
                else:
                    self.counts.pop(key, None)

        return release
