"""Tenant isolation benchmark: does one network's load raise another's latency?

NATS, the identity service and the gateway run as separate processes (as
deployed, `bench/write_path.py`'s `System`). Two networks:

* **quiet** (B): `--quiet-members` members take turns asking a modest
  question (`me` and a page of 10 members, cost 44) at a steady `--rate` a
  second, open loop (a request is sent on schedule whether or not the
  previous one came back), from this process;
* **flood** (A): `--flooders` members of another network ask, together
  `--flood-rate` times a second (15, the attack of issue #9; 0: each as
  fast as its connection allows), the most expensive question the schema
  lets them (`members(first: 50)` with every card field, cost 1001): legal,
  under the request rate limit, and many times over the network's cost
  budget; they ignore `Retry-After`. The flood runs in a process of its own,
  reniced (`--flood-nice`, 10): parsing its large answers must not delay
  the measuring client's event loop, and a real attacker's client does not
  run on the server's cores.

After a warm-up (both loads, `--warmup` seconds), each of `--rounds` rounds
measures B alone, then B while A floods (the baseline in the same run, next
to the measure). It prints each round's and the pooled p50/p90/p99 of B,
**the ratio of B's p99 loaded to unloaded** (issue #9: within 20%, i.e. a
ratio up to 1.2), what A got (served, refused with 429 and their median
latency: refusals must stay cheap), and the cores each process used in each
phase, "other" being the rest of the machine: a figure taken while "other"
is busy measures the machine, not the system. It asserts nothing.
`--limits off` raises every budget out of reach, to compare.

    .venv/bin/python bench/tenant_isolation.py
    .venv/bin/python bench/tenant_isolation.py --rounds 5 --seconds 20 --limits off
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from write_path import OPERATOR_TOKEN, PASSWORD, CpuMeter, System, load_average

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


async def quiet_load(url: str, tokens: list[str], rate: float, seconds: float) -> Tally:
    """`rate` modest questions a second, open loop, from `tokens` in turn
    (each member stays within their own request budget)."""
    tally = Tally()
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for _ in tokens]
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    n = 0
    while (due := start + n / rate) < start + seconds:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        k = n % len(tokens)
        tasks.append(asyncio.create_task(ask(clients[k], QUIET, tokens[k], tally)))
        n += 1
    await asyncio.gather(*tasks)
    for client in clients:
        await client.aclose()
    return tally


async def flood_load(url: str, tokens: list[str], rate: float, seconds: float) -> Tally:
    """The flood for `seconds`: `rate` expensive questions a second, open
    loop, spread over the members (`rate` 0: each member as fast as its
    connection allows)."""
    tally = Tally()
    deadline = time.perf_counter() + seconds

    async def flooder(token: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            while time.perf_counter() < deadline:
                await ask(client, FLOOD, token, tally)

    if rate <= 0:
        await asyncio.gather(*(flooder(t) for t in tokens))
        return tally
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for _ in tokens]
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    n = 0
    while (due := start + n / rate) < deadline:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        k = n % len(tokens)
        tasks.append(asyncio.create_task(ask(clients[k], FLOOD, tokens[k], tally)))
        n += 1
    await asyncio.gather(*tasks)
    for client in clients:
        await client.aclose()
    return tally


def flood_process(
    url: str, tokens: list[str], rate: float, seconds: float, nice: int, out: Any
) -> None:
    """The flood in a process of its own (its own interpreter and event loop:
    parsing the flood's large answers must not delay the measured client's
    loop), reniced so that it takes less of the two cores than the system
    under test (a real attacker's client runs on another machine)."""
    if nice:
        os.nice(nice)
    tally = asyncio.run(flood_load(url, tokens, rate, seconds))
    out.put((tally.latencies_ms, tally.refused_ms, tally.failures))


@dataclass
class Round:
    alone: Tally
    loaded: Tally
    flood: Tally
    cpu_alone: dict[str, float]
    cpu_loaded: dict[str, float]


async def one_round(
    system: System, args: argparse.Namespace, quiet: list[str], flood: list[str]
) -> Round:
    groups = system.cpu_groups()
    meter = CpuMeter(groups)
    meter.start()
    alone = await quiet_load(system.url, quiet, args.rate, args.seconds)
    cpu_alone = meter.stop()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    flooder = context.Process(
        target=flood_process,
        args=(system.url, flood, args.flood_rate, args.seconds + 2, args.flood_nice, out),
    )
    flooder.start()
    assert flooder.pid is not None
    await asyncio.sleep(1.5)  # the flood is under way (its interpreter started)
    meter = CpuMeter({**groups, "flood (client)": lambda: [flooder.pid or 0]})
    meter.start()
    loaded = await quiet_load(system.url, quiet, args.rate, args.seconds)
    cpu_loaded = meter.stop()
    served, refused, failures = await asyncio.to_thread(out.get)
    await asyncio.to_thread(flooder.join)
    return Round(alone, loaded, Tally(served, refused, failures), cpu_alone, cpu_loaded)


def merged(tallies: list[Tally]) -> Tally:
    return Tally(
        [x for t in tallies for x in t.latencies_ms],
        [x for t in tallies for x in t.refused_ms],
        sum(t.failures for t in tallies),
    )


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
    for setting in args.set:
        name, _, value = setting.partition("=")
        system.gateway_env[name] = value
    rounds: list[Round] = []
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(system.stop)
        system._spawn()  # as system.start(), with more time on a loaded machine
        await system._wait_ready(timeout=300)
        quiet_tokens = await open_network(system.nats.url, "quiet", 10)
        flood_tokens = await open_network(system.nats.url, "flood", 50)
        quiet = quiet_tokens[1 : 1 + args.quiet_members]
        print(f"ready: limits {args.limits}, load average {load_average()}; warming up", flush=True)
        await quiet_load(system.url, quiet, args.rate, args.warmup)
        costs = await calibrate(system, quiet, flood_tokens[: args.flooders])
        await flood_load(system.url, flood_tokens[: args.flooders], args.flood_rate, args.warmup)
        await asyncio.sleep(args.warmup)  # the flood's budget refills, its queue drains
        for k in range(args.rounds):
            rounds.append(await one_round(system, args, quiet, flood_tokens[: args.flooders]))
            print(f"round {k + 1}: {describe(rounds[-1])}", flush=True)
            await asyncio.sleep(args.warmup)
    report(args, rounds)
    print("CPU per answer, one at a time (ms):")
    for label, figures in costs.items():
        shown = ", ".join(f"{name} {ms:.1f}" for name, ms in figures.items())
        print(f"  {label:<6} {shown}")


async def calibrate(
    system: System, quiet: list[str], flood: list[str], n: int = 10
) -> dict[str, dict[str, float]]:
    """The CPU each process spends on one answer of each kind, asked one at
    a time (CPU time, unlike latency, hardly depends on what else the
    machine runs): what one flood answer costs the system next to a quiet
    one."""
    found: dict[str, dict[str, float]] = {}
    for label, query, tokens in (("quiet", QUIET, quiet), ("flood", FLOOD, flood)):
        meter = CpuMeter(system.cpu_groups())
        tally = Tally()
        meter.start()
        async with httpx.AsyncClient(base_url=system.url, timeout=60) as client:
            for i in range(n):
                await ask(client, query, tokens[i % len(tokens)], tally)
        used = meter.stop()
        served = max(1, len(tally.latencies_ms))
        found[label] = {
            name: used.get(name, 0.0) * 1000 / served
            for name in ("gateway", "identity", "nats-server", "bench (client)")
        }
        found[label]["served"] = float(len(tally.latencies_ms))
    return found


def describe(r: Round) -> str:
    p = Tally().percentile
    a, b = r.alone.latencies_ms, r.loaded.latencies_ms
    return (
        f"quiet p50 {p(a, 50):.1f} -> {p(b, 50):.1f} ms, p99 {p(a, 99):.1f} -> {p(b, 99):.1f} ms "
        f"(ratio {p(b, 99) / p(a, 99):.2f}); flood {len(r.flood.latencies_ms)} served, "
        f"{len(r.flood.refused_ms)} refused"
    )


def report(args: argparse.Namespace, rounds: list[Round]) -> None:
    alone = merged([r.alone for r in rounds])
    loaded = merged([r.loaded for r in rounds])
    flooded = merged([r.flood for r in rounds])

    def line(label: str, t: Tally) -> str:
        return (
            f"  {label:<22} {len(t.latencies_ms):>6} served  "
            f"p50 {t.percentile(t.latencies_ms, 50):8.1f} ms  "
            f"p90 {t.percentile(t.latencies_ms, 90):8.1f} ms  "
            f"p99 {t.percentile(t.latencies_ms, 99):8.1f} ms  "
            f"failures {t.failures}"
        )

    print(
        f"quiet network, {args.rate:g}/s over {args.quiet_members} members, "
        f"{args.rounds} rounds of {args.seconds:g}s a phase (pooled):"
    )
    print(line("alone", alone))
    print(line("while the other floods", loaded))
    print(
        f"flood network ({args.flooders} members, {args.flood_rate:g}/s, nice "
        f"{args.flood_nice}): {len(flooded.latencies_ms)} served "
        f"(p50 {flooded.percentile(flooded.latencies_ms, 50):.1f} ms), "
        f"{len(flooded.refused_ms)} refused with 429 "
        f"(p50 of refusals {flooded.percentile(flooded.refused_ms, 50):.1f} ms), "
        f"failures {flooded.failures}"
    )
    names = sorted({n for r in rounds for n in (*r.cpu_alone, *r.cpu_loaded)})
    seconds = args.seconds * len(rounds)
    print("cores busy, alone / loaded:")
    for name in names:
        a = sum(r.cpu_alone.get(name, 0.0) for r in rounds) / seconds
        b = sum(r.cpu_loaded.get(name, 0.0) for r in rounds) / seconds
        print(f"  {name:<16} {a:5.2f} / {b:5.2f}")
    ratios = [
        r.loaded.percentile(r.loaded.latencies_ms, 99)
        / r.alone.percentile(r.alone.latencies_ms, 99)
        for r in rounds
    ]
    pooled = loaded.percentile(loaded.latencies_ms, 99) / alone.percentile(alone.latencies_ms, 99)
    print(f"p99 ratio per round: {', '.join(f'{x:.2f}' for x in ratios)}")
    print(f"p99 ratio, loaded / unloaded (pooled): {pooled:.2f} (issue #9: within 20%, <= 1.20)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="each phase (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="alone/loaded pairs (default 3)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds (default 3)")
    parser.add_argument(
        "--rate", type=float, default=5.0, help="quiet requests a second (default 5)"
    )
    parser.add_argument(
        "--quiet-members",
        type=int,
        default=2,
        help="quiet members taking turns (each stays within a member's request budget)",
    )
    parser.add_argument(
        "--flood-nice", type=int, default=10, help="niceness of the flood's process (default 10)"
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
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a gateway setting, e.g. QUARTIER_COST_LIMIT=60000 (repeatable)",
    )
    parser.add_argument("--data-dir", default=None, help="where the run's files go")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
