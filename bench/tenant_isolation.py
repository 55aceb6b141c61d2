"""Tenant isolation benchmark: does one network's load raise another's latency?

NATS, the identity service and the gateway run as separate processes (as
deployed, `bench/write_path.py`'s `System`); the load comes from this
process. Two networks:

* **quiet** (B): one member asks a modest question (`me` and a page of 10
  members) at a steady `--rate` a second, open loop (a request is sent on
  schedule whether or not the previous one came back);
* **flood** (A): `--flooders` members of another network ask, together
  `--flood-rate` times a second (15, the attack of issue #9; 0: each as
  fast as its connection allows), the most expensive question the schema
  lets them (`members(first: 50)` with every card field): legal, under the
  request rate limit, and many times over the network's cost budget; they
  ignore `Retry-After`.

Phase 1 measures B alone, phase 2 B while A floods. It prints B's p50 and
p99 in each phase and **the ratio of B's p99 loaded to unloaded** (issue #9:
within 20%, i.e. a ratio up to 1.2), and what A got: served, refused with
429 (and their median latency: refusals must stay cheap). It asserts
nothing. `--limits off` raises every budget out of reach, to compare with
the gateway without them.

    .venv/bin/python bench/tenant_isolation.py
    .venv/bin/python bench/tenant_isolation.py --seconds 20 --limits off
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from write_path import OPERATOR_TOKEN, PASSWORD, System

from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.messages import Actor
from services.runtime.tenancy import RequestContext

QUIET = "{ me { id displayName } members(first: 10) { edges { node { id displayName } } } }"
FLOOD = (
    "{ members(first: 50) { totalCount edges { cursor node { id memberId displayName"
    " businessName activityCode activityLabel activityText offers seeks availableFor bio"
    " links workPostcode homePostcode roles isTenantAdmin } } } }"
)


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    refused_ms: list[float] = field(default_factory=list)
    failures: int = 0

    def percentile(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def open_network(nats_url: str, slug: str, members: int) -> list[str]:
    """A network and `members` members (the first its admin); their access tokens."""
    bus = Bus(nats_url, f"quartier-bench-{slug}", request_timeout=30)
    await bus.connect(wait=30)
    try:
        created = await bus.request(
            idc.CreateTenant(slug=slug, name=f"Network {slug}", admin_email=f"m0@{slug}.example"),
            RequestContext(actor=Actor(kind="operator"), credential=OPERATOR_TOKEN),
        )
        operator = RequestContext(
            tenant_id=created.tenant.tenant_id,
            actor=Actor(kind="operator"),
            credential=OPERATOR_TOKEN,
        )
        tokens = [created.admin_invitation.token]
        for i in range(1, members):
            sent = await bus.request(idc.InviteMember(email=f"m{i}@{slug}.example"), operator)
            tokens.append(sent.token)
        sessions = await asyncio.gather(
            *(
                bus.request(
                    idc.AcceptInvitation(
                        token=token,
                        password=PASSWORD,
                        card=idc.CardChanges(
                            display_name=f"Member {i}",
                            activity_code="plumber",
                            offers="repairs " * 20,
                            bio="A plumber of the 11th. " * 20,
                        ),
                    ),
                    RequestContext(),
                )
                for i, token in enumerate(tokens)
            )
        )
    finally:
        await bus.close()
    return [s.access_token for s in sessions]


async def ask(client: httpx.AsyncClient, query: str, token: str, tally: Tally) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(
            "/graphql", json={"query": query}, headers={"authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError:
        tally.failures += 1
        return
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code == 429:
        tally.refused_ms.append(elapsed)
    elif response.status_code == 200 and "errors" not in response.json():
        tally.latencies_ms.append(elapsed)
    else:
        tally.failures += 1


async def quiet_load(url: str, token: str, rate: float, seconds: float) -> Tally:
    tally = Tally()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        n = 0
        while (due := start + n / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(ask(client, QUIET, token, tally)))
            n += 1
        await asyncio.gather(*tasks)
    return tally


async def flood_load(url: str, tokens: list[str], rate: float, stop: asyncio.Event) -> Tally:
    """The flood: `rate` expensive questions a second, open loop, spread over
    the members (`rate` 0: each member as fast as its connection allows)."""
    tally = Tally()

    async def flooder(token: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            while not stop.is_set():
                await ask(client, FLOOD, token, tally)

    if rate <= 0:
        await asyncio.gather(*(flooder(t) for t in tokens))
        return tally
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for _ in tokens]
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    n = 0
    while not stop.is_set():
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        k = n % len(tokens)
        tasks.append(asyncio.create_task(ask(clients[k], FLOOD, tokens[k], tally)))
        n += 1
    await asyncio.gather(*tasks)
    for client in clients:
        await client.aclose()
    return tally


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="quartier-bench-isolation-", dir=args.data_dir))
    system = System(workdir, None, "processes", "test")
    if args.limits == "off":
        for name in ("RATE_LIMIT", "MEMBER_RATE_LIMIT", "COST_LIMIT", "MEMBER_COST_LIMIT"):
            system.gateway_env[f"QUARTIER_{name}"] = "1000000000"
        system.gateway_env["QUARTIER_TENANT_CONCURRENCY"] = "100000"
    else:
        for name in (
            "RATE_LIMIT",
            "MEMBER_RATE_LIMIT",
            "COST_LIMIT",
            "MEMBER_COST_LIMIT",
            "TENANT_CONCURRENCY",
        ):
            system.gateway_env.pop(f"QUARTIER_{name}", None)  # the defaults
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(system.stop)
        await system.start()
        quiet_tokens = await open_network(system.nats.url, "quiet", 10)
        flood_tokens = await open_network(system.nats.url, "flood", 50)
        print(f"ready: limits {args.limits}; warming up", flush=True)
        await quiet_load(system.url, quiet_tokens[1], args.rate, 2)

        alone = await quiet_load(system.url, quiet_tokens[1], args.rate, args.seconds)
        stop = asyncio.Event()
        flood = asyncio.create_task(
            flood_load(system.url, flood_tokens[: args.flooders], args.flood_rate, stop)
        )
        await asyncio.sleep(1)  # the flood is under way
        loaded = await quiet_load(system.url, quiet_tokens[1], args.rate, args.seconds)
        stop.set()
        flooded = await flood

    def line(label: str, t: Tally) -> str:
        return (
            f"  {label:<22} {len(t.latencies_ms):>6} served  "
            f"p50 {t.percentile(t.latencies_ms, 50):8.1f} ms  "
            f"p99 {t.percentile(t.latencies_ms, 99):8.1f} ms  "
            f"failures {t.failures}"
        )

    print(f"quiet network, {args.rate:g}/s for {args.seconds:g}s each phase:")
    print(line("alone", alone))
    print(line("while the other floods", loaded))
    print(
        f"flood network ({args.flooders} members, {args.flood_rate:g}/s): "
        f"{len(flooded.latencies_ms)} served "
        f"(p50 {flooded.percentile(flooded.latencies_ms, 50):.1f} ms), "
        f"{len(flooded.refused_ms)} refused with 429 "
        f"(p50 of refusals {flooded.percentile(flooded.refused_ms, 50):.1f} ms), "
        f"failures {flooded.failures}"
    )
    ratio = loaded.percentile(loaded.latencies_ms, 99) / alone.percentile(alone.latencies_ms, 99)
    print(f"p99 ratio, loaded / unloaded: {ratio:.2f} (issue #9: within 20%, i.e. <= 1.20)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each phase (default 10)")
    parser.add_argument(
        "--rate", type=float, default=4.0, help="quiet requests a second (within a member's budget)"
    )
    parser.add_argument("--flooders", type=int, default=8, help="flooding members")
    parser.add_argument(
        "--flood-rate",
        type=float,
        default=15.0,
        help="expensive questions a second from the flooding network, open loop "
        "(issue #9's attack: 15/s); 0: as fast as each connection allows",
    )
    parser.add_argument("--limits", choices=("on", "off"), default="on")
    parser.add_argument("--data-dir", default=None, help="where the run's files go")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
