"""Who may spend how much of a gateway replica: request rates and query
costs in token buckets, and each network's share of the work in flight.

Keys, checked in this order, each only if the previous allowed it (so a
refused request takes nothing from the next bucket):

1. the **caller**: a member (`member:<tenant>:<member id>`), the operator,
   or an anonymous client address (`address:<ip>`, see `client_address`);
2. the caller's **network** (`tenant:<tenant id>`), for members.

A member's own buckets are smaller than their network's (a quarter, by
default), so one member's flood empties their own bucket and is refused
there, before it reaches the network's: the others of the network, their
admin among them, keep being served. Each bucket holds a request count
(`QUARTIER_RATE_LIMIT` a minute for a network, `QUARTIER_MEMBER_RATE_LIMIT`
for a member or address) and a cost (`gateway.costs`: fields times page sizes;
`QUARTIER_COST_LIMIT` a minute for a network, `QUARTIER_MEMBER_COST_LIMIT`
for a member or address), each refilled continuously; a bucket's capacity is
one minute's refill, so a burst of up to a minute's worth is served.

A refusal says when to come back: `Retry-After` (seconds, rounded up) is
when the bucket will hold what the request needs.

**Fair sharing.** Each network may have at most `QUARTIER_TENANT_CONCURRENCY`
operations running at once on a replica; the next ones wait their turn (in
order) up to `QUARTIER_REQUEST_TIMEOUT`, then are refused with 429. A network
that sends more than its share waits on its own queue: the event loop and the
services' workers stay available to the others.

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

MAX_KEYS = 100_000
"""Buckets kept at most (the least recently used are dropped: a dropped
bucket is a full one, which favours no attacker: a new key starts full)."""


@dataclass
class Bucket:
    tokens: float
    at: float


class Buckets:
    """Token buckets by key, each refilled at `rate` a second up to
    `capacity`."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(max(1.0, per_minute))
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
    tenant_cost: int = 200_000
    member_cost: int = 50_000
    tenant_concurrency: int = 8
    queue_timeout: float = 10.0


class Refused(Exception):
    """Over a budget: come back in `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, math.ceil(retry_after))


class Budgets:
    """The buckets of one replica (see the module)."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.requests = {
            "caller": Buckets(limits.member_requests, clock),
            "tenant": Buckets(limits.tenant_requests, clock),
        }
        self.costs = {
            "caller": Buckets(limits.member_cost, clock),
            "tenant": Buckets(limits.tenant_cost, clock),
        }
        self.running: dict[str, asyncio.Semaphore] = {}

    def _charge(
        self, kind: dict[str, Buckets], keys: Iterable[tuple[str, str]], amount: float
    ) -> float:
        """Take `amount` from each key's bucket if all have it; else take
        nothing and answer the longest wait."""
        wanted = [(kind[level], key) for level, key in keys if key]
        for buckets, key in wanted:
            wait = buckets.wait(key, amount)
            if wait > 0:
                return wait  # the caller's bucket first: the network's is not touched
        for buckets, key in wanted:
            buckets.take(key, amount)
        return 0.0

    def request(self, caller: str, tenant: str | None) -> None:
        """One request of `caller` (of network `tenant`), or Refused."""
        wait = self._charge(self.requests, (("caller", caller), ("tenant", tenant or "")), 1)
        if wait:
            raise Refused("too many requests: slow down", wait)

    def cost(self, caller: str, tenant: str | None, cost: int) -> None:
        """An operation of this cost, or Refused."""
        wait = self._charge(self.costs, (("caller", caller), ("tenant", tenant or "")), cost)
        if wait:
            raise Refused(
                f"this operation costs {cost} and the budget is spent: slow down or ask for less",
                wait,
            )

    @asynccontextmanager
    async def turn(self, tenant: str | None) -> AsyncIterator[None]:
        """A network's turn to run an operation (see "Fair sharing")."""
        if tenant is None:
            yield
            return
        semaphore = self.running.get(tenant)
        if semaphore is None:
            semaphore = self.running[tenant] = asyncio.Semaphore(self.limits.tenant_concurrency)
        try:
            await asyncio.wait_for(semaphore.acquire(), self.limits.queue_timeout)
        except TimeoutError:
            raise Refused("this network has too many operations running: retry", 1) from None
        try:
            yield
        finally:
            semaphore.release()
            if not semaphore.locked() and len(self.running) > MAX_KEYS:
                self.running.pop(tenant, None)


def client_address(peer: str | None, forwarded_for: str | None, trusted: frozenset[str]) -> str:
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
