"""Write-path benchmark: a nomination into a hub, raw and through the whole system.

The companion of `write_path.py` (profile-card updates), built from its helpers
and read the same way: phases, each for `--seconds` after a `--warmup`, on one
store per run (SQLite, and PostgreSQL when it answers); rates, p50/p99, the
ratio against raw saves in this process, and the CPU each process used per
write. It never asserts a threshold.

The system runs as deployed (`--mode processes`): NATS, the identity service,
the hubs service and the gateway are separate processes; the load generator is
this process. The set-up, through the services' own commands: one network, its
tenant admin, `--clients` sponsors and `--candidates` candidates, every card
working within 1.3 km of the centre of the hubs' area (so that every
nomination passes the area check); then, before each phase of each round,
`--hubs` new hubs (default: one per sponsor), each created by the admin with
the one-per-profession rule off, open for the sponsors to join, then switched
to co-optation, so that a nomination stays pending. Every hub has two members:
the admin and its sponsor.

(a)  The floor: raw `eventsourcing` saves of the same domain change, in this
     process, one thread: `hub = app.repository.get(id); hub.nominate(...);
     app.save(hub)` with a `Hubs` application opened on the very store the
     running hubs service uses (configured as the service is, with its aggregate
     cache), going round the phase's hubs. The candidate is a new id each time,
     with the places and activity that identity would answer, and the hub
     members' activities are given: none of the look-ups the service makes.
     This is the baseline of the ratios.
(n)  `NominateCandidate` sent over NATS by `--clients` concurrent requesters,
     each as its sponsor (as the gateway sends it), each to its own hub, naming
     candidates who are members of the network: the hubs service checks the
     hub, asks identity for the candidate's places (and activity), reads the
     hub members' activities from its directory, nominates, saves, brings its
     read models up to it and answers from them.
(b)  The GraphQL mutation `nominateCandidate`, the same requests through the
     gateway (one httpx client and one access token per sponsor). Only replies
     whose `__typename` is `NominationPayload` count.

Spreading the load: requester k nominates into hub k mod `--hubs`, and every
hub is new at the start of its phase, so with the default (one hub per
requester) no two requests race on one hub's version, and every phase starts
on hubs of the same size (a hub only grows: each nomination stays pending).
Fewer hubs than requesters measure the version conflicts too (retried by the
service). Each hub takes each candidate once (a candidate cannot be nominated
twice while pending), so a phase can send at most `--candidates` nominations
per hub; a requester that runs out stops, and the phase says so.

    .venv/bin/python bench/nomination_path.py                  # SQLite, and PostgreSQL if it answers
    .venv/bin/python bench/nomination_path.py --rounds 2 --seconds 4 --no-postgres
    .venv/bin/python bench/nomination_path.py --py-spy /tmp/prof --py-spy-format raw
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa
from write_path import (
    CpuMeter,
    Exhausted,
    Phase,
    Seat,
    Send,
    System,
    add_common_arguments,
    create_members,
    drive,
    load_average,
    merge,
    print_cpu,
    print_phases,
    raw_phase,
    sampled,
    stores_to_run,
)

from services.hubs import contract as hc
from services.hubs.application import Hubs
from services.hubs.domain import Candidate, CandidatePlaces
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.errors import QuartierError
from services.runtime.logging import configure_logging
from services.runtime.store import Store

RAW, NATS, GRAPHQL = "raw", "nats", "graphql"
CENTRE = (48.8575, 2.3795)  # Place Voltaire
RADIUS_KM = 2.0
POSTCODE = "75011"
ACTIVITY = "plumber"
# What identity answers for a card 0 to 1.3 km from the centre; the raw phase's candidates.
RAW_PLACES = CandidatePlaces(work_km=0.5, home_km=None, work_postcode=POSTCODE, home_postcode=None)
MUTATION = """
mutation($input: NominateCandidateInput!) {
  nominateCandidate(input: $input) {
    __typename
    ... on NominationPayload { nomination { id status } }
    ... on Error { message }
  }
}
"""


def card(i: int) -> idc.CardChanges:
    """Member i works 0 to 1.3 km from the centre, in the hubs' postcode."""
    lat = CENTRE[0] + (i % 10) * 0.0008
    lon = CENTRE[1] + (i // 10 % 10) * 0.0008
    return idc.CardChanges(
        display_name=f"Member {i}",
        activity_code=ACTIVITY,
        offers="repairs",
        work=idc.Place(lat=lat, lon=lon, postcode=POSTCODE),
    )


def global_id(type_name: str, raw_id: str) -> str:
    """The gateway's opaque id of a hub or a member."""
    return base64.urlsafe_b64encode(f"{type_name}:{raw_id}".encode()).decode()


# -- set-up --------------------------------------------------------------------


def wait_for_rows(store: Store, query: str, count: int, what: str, timeout: float = 120.0) -> None:
    """Until `query` (a count on the hubs service's read models) reaches `count`."""
    engine = store.views_engine()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(sa.exc.DBAPIError), engine.connect() as conn:
                if (conn.execute(sa.text(query)).scalar() or 0) >= count:
                    return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise RuntimeError(f"the hubs service did not {what} within {timeout:.0f}s")


def wait_for_directory(store: Store, count: int) -> None:
    """Until the hubs service's directory (kept from identity's events) knows
    every member: a nomination then finds its members' activities locally."""
    wait_for_rows(
        store, "SELECT count(*) FROM member_activities", count, f"learn the {count} members"
    )


def prefill(app: Hubs, store: Store, hubs: list[BenchHub], count: int) -> None:
    """`count` pending nominations in each hub, saved at once: the state a hub
    reaches after a long life (it keeps every nomination it has had); then
    wait until the service has projected them."""
    for h in hubs:
        hub = app.repository.get(UUID(h.hub_id))
        for i in range(count):
            hub.nominate(
                str(uuid.uuid4()),
                h.sponsor_ids[0],
                Candidate(member_id=str(uuid.uuid4()), activity_code=ACTIVITY, places=RAW_PLACES),
                f"earlier nomination {i}",
                {},
                None,
                datetime.now(UTC),
            )
        app.save(hub)
    ids = ", ".join(f"'{h.hub_id}'" for h in hubs)
    wait_for_rows(
        store,
        f"SELECT count(*) FROM nominations WHERE hub_id IN ({ids})",  # noqa: S608 (our uuids)
        count * len(hubs),
        "project the prefilled nominations",
    )


@dataclass(frozen=True)
class BenchHub:
    hub_id: str
    sponsor_ids: tuple[str, ...]


async def create_hubs(
    bus: Bus, admin: Seat, sponsors: list[Seat], count: int, tag: str
) -> list[BenchHub]:
    """`count` new hubs; sponsor k joins hub k mod count while it is open,
    then each is switched to co-optation (nominations stay pending)."""
    area = hc.Area(centre=hc.Point(lat=CENTRE[0], lon=CENTRE[1]), radius_km=RADIUS_KM)
    rules = hc.Rules(admission_mode="open", non_competition=False)
    created = await asyncio.gather(
        *(
            bus.request(
                hc.CreateHub(name=f"{tag} {h}", kind="neighbourhood", area=area, rules=rules),
                admin.as_member(),
            )
            for h in range(count)
        )
    )
    groups: list[list[Seat]] = [sponsors[h::count] for h in range(count)]

    async def join(hub_id: str, members: list[Seat]) -> None:
        for seat in members:  # one at a time: no version conflicts in the set-up
            await bus.request(hc.JoinHub(hub_id=hub_id), seat.as_member())
        await bus.request(
            hc.ChangeRules(
                hub_id=hub_id,
                changes=hc.RulesChanges(admission_mode="cooptation"),
                reason="benchmark",
            ),
            admin.as_member(),
        )

    await asyncio.gather(
        *(join(hub.hub_id, group) for hub, group in zip(created, groups, strict=True))
    )
    return [
        BenchHub(hub.hub_id, tuple(s.member_id for s in group))
        for hub, group in zip(created, groups, strict=True)
    ]


class Targets:
    """Requester k nominates into hub k mod len(hubs), each hub taking the
    candidates in turn, each once."""

    def __init__(self, hubs: list[BenchHub], candidates: list[str]):
        self.hubs = hubs
        self.candidates = candidates
        self._next = [itertools.count() for _ in hubs]

    def next(self, k: int) -> tuple[str, str]:
        h = k % len(self.hubs)
        i = next(self._next[h])
        if i >= len(self.candidates):
            raise Exhausted(f"every candidate is pending in hub {h}: raise --candidates")
        return self.hubs[h].hub_id, self.candidates[i]


# -- (a) raw eventsourcing saves ------------------------------------------------


@dataclass(frozen=True)
class RawTarget:
    hub_id: UUID
    sponsor_id: str
    activities: dict[str, str | None]


def raw_nominate(app: Hubs, target: RawTarget, note: str) -> None:
    hub = app.repository.get(target.hub_id)
    hub.nominate(
        str(uuid.uuid4()),
        target.sponsor_id,
        Candidate(member_id=str(uuid.uuid4()), activity_code=ACTIVITY, places=RAW_PLACES),
        note,
        target.activities,
        None,
        datetime.now(UTC),
    )
    app.save(hub)


# -- (n) and (b) ----------------------------------------------------------------


def bus_sender(bus: Bus, targets: Targets) -> Send:
    async def send(k: int, seat: Seat, text: str) -> str | None:
        hub_id, candidate_id = targets.next(k)
        command = hc.NominateCandidate(hub_id=hub_id, candidate_id=candidate_id, note=text)
        try:
            await bus.request(command, seat.as_member(), timeout=60)
        except QuartierError as e:
            return f"{e.code}: {e.message}"
        return None

    return send


def graphql_sender(clients: list[httpx.AsyncClient], targets: Targets) -> Send:
    async def send(k: int, seat: Seat, text: str) -> str | None:
        hub_id, candidate_id = targets.next(k)
        variables = {
            "input": {
                "hubId": global_id("Hub", hub_id),
                "candidateId": global_id("Member", candidate_id),
                "note": text,
            }
        }
        try:
            response = await clients[k].post(
                "/graphql",
                json={"query": MUTATION, "variables": variables},
                headers={"Authorization": f"Bearer {seat.access_token}"},
            )
        except httpx.HTTPError as e:
            return f"{type(e).__name__}: {e}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        body = response.json()
        result = (body.get("data") or {}).get("nominateCandidate") or {}
        if result.get("__typename") != "NominationPayload":
            return json.dumps(body)[:300]
        return None

    return send


# -- one store -----------------------------------------------------------------


@dataclass
class NominationResult:
    store: str
    clients: int
    hubs: int
    phases: dict[str, Phase]
    per_hub: dict[str, float]  # nominations per hub at the end of each phase (mean)
    prefill: int = 0

    def ratio(self, key: str) -> float:
        raw = self.phases[RAW].rate
        return self.phases[key].rate / raw if raw and key in self.phases else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "path": "nomination",
            "clients": self.clients,
            "hubs": self.hubs,
            "prefill": self.prefill,
            "cpus": os.cpu_count(),
            "ratio_n_over_a": round(self.ratio(NATS), 3),
            "ratio_b_over_a": round(self.ratio(GRAPHQL), 3),
            "nominations_per_hub": {k: round(v, 1) for k, v in self.per_hub.items()},
            "phases": {key: p.summary() for key, p in self.phases.items()},
        }


async def run_store(
    store: str, database_url: str | None, args: argparse.Namespace
) -> NominationResult:
    workdir = Path(tempfile.mkdtemp(prefix=f"quartier-bench-nom-{store}-", dir=args.data_dir))
    system = System(
        workdir, database_url, "processes", args.gateway_env, services=("identity", "hubs")
    )
    keys = [RAW, NATS] + ([] if args.no_graphql else [GRAPHQL])
    rounds: dict[str, list[Phase]] = {key: [] for key in keys}
    per_hub: dict[str, list[float]] = {key: [] for key in keys}
    hub_count = args.hubs or args.clients
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(system.stop)
            await system.start()
            total = 1 + args.clients + args.candidates
            print(f"  {store}: ready; signing up {total} members", flush=True)
            seats = await create_members(system.nats.url, total, card)
            admin, sponsors = seats[0], seats[1 : 1 + args.clients]
            candidates = [s.member_id for s in seats[1 + args.clients :]]
            hubs_store = Store.for_service("hubs", system.settings)
            await asyncio.to_thread(wait_for_directory, hubs_store, total)
            meter = CpuMeter(system.cpu_groups())

            # (a): a Hubs application of our own, on the service's store.
            raw_app = Hubs(env=replace(hubs_store, pool_size=2).application_env("hubs"))
            stack.callback(raw_app.close)
            bus = Bus(system.nats.url, "quartier-bench-client", request_timeout=60)
            await bus.connect(wait=30)
            stack.push_async_callback(bus.close)
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=system.url, limits=httpx.Limits(max_connections=1), timeout=60
                    )
                )
                for _ in sponsors
            ]
            activities = {s.member_id: ACTIVITY for s in seats[: 1 + args.clients]}

            def raw(hubs: list[BenchHub]) -> Callable[[str, float], Awaitable[Phase]]:
                targets = [RawTarget(UUID(h.hub_id), h.sponsor_ids[0], activities) for h in hubs]

                def write(target: RawTarget, note: str) -> None:
                    raw_nominate(raw_app, target, note)

                async def run(label: str, seconds: float) -> Phase:
                    return await asyncio.to_thread(
                        raw_phase, label, write, [targets], seconds, meter
                    )

                return run

            def driven(send: Send) -> Callable[[str, float], Awaitable[Phase]]:
                async def run(label: str, seconds: float) -> Phase:
                    return await drive(label, sponsors, send, seconds, meter)

                return run

            plan: dict[str, tuple[str, Callable[[list[BenchHub]], Any], list[str]]] = {
                RAW: ("(a) raw app.save, 1 writer", raw, ["bench"]),
                NATS: (
                    f"(n) NominateCandidate over NATS, {len(sponsors)} clients",
                    lambda hubs: driven(bus_sender(bus, Targets(hubs, candidates))),
                    ["hubs", "identity", "bench"],
                ),
                GRAPHQL: (
                    f"(b) GraphQL via gateway, {len(sponsors)} clients",
                    lambda hubs: driven(graphql_sender(clients, Targets(hubs, candidates))),
                    ["hubs", "identity", "gateway", "bench"],
                ),
            }
            profile = Path(args.py_spy) if args.py_spy else None
            for r in range(args.rounds):
                for key in keys:
                    label, make, sample = plan[key]
                    hubs = await create_hubs(bus, admin, sponsors, hub_count, f"{key} {r}")
                    if args.prefill:
                        await asyncio.to_thread(prefill, raw_app, hubs_store, hubs, args.prefill)
                    await asyncio.sleep(args.settle)  # the set-up's relay and projection
                    run = make(hubs)
                    print(f"  {store}: round {r + 1}/{args.rounds}: {label}", flush=True)
                    warm = await run("warm-up", args.warmup)
                    pids = {n: pid for n, pid in system.python_pids().items() if n in sample}
                    with sampled(
                        profile if r == 0 else None,
                        f"nomination-{store}-{key}",
                        pids,
                        args.seconds,
                        args.py_spy_format,
                        args.py_spy_gil,
                    ):
                        phase = await run(label, args.seconds)
                    rounds[key].append(phase)
                    per_hub[key].append(args.prefill + (warm.writes + phase.writes) / len(hubs))
                    await asyncio.sleep(args.settle)
        return NominationResult(
            store,
            args.clients,
            hub_count,
            {key: merge(p) for key, p in rounds.items()},
            {key: sum(v) / len(v) for key, v in per_hub.items()},
            args.prefill,
        )
    finally:
        if args.keep:
            print(f"  {store}: data and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# -- output --------------------------------------------------------------------


def report(result: NominationResult) -> None:
    print_phases(result.store, "processes", result.phases)
    ratios = [f"(n)/(a) = {result.ratio(NATS):.3f}"]
    if GRAPHQL in result.phases:
        ratios.append(f"(b)/(a) = {result.ratio(GRAPHQL):.3f}")
    print("ratio " + "   ".join(ratios))
    print(
        f"{result.hubs} hubs per phase; nominations per hub at the end of a phase: "
        + ", ".join(f"{key} {n:.0f}" for key, n in result.per_hub.items())
    )
    print_cpu(list(result.phases.values()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Nominations into hubs: raw eventsourcing saves vs NATS and GraphQL."
    )
    add_common_arguments(parser)
    parser.add_argument(
        "--hubs",
        type=int,
        default=0,
        help="hubs per phase (default: one per client, so no two requests race on a hub)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=64,
        help="members who can be nominated (each at most once per hub and phase)",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        metavar="N",
        help="give every hub N pending nominations before its phase (a hub with a history)",
    )
    parser.add_argument("--no-graphql", action="store_true", help="skip (b)")
    args = parser.parse_args(argv)
    if args.mode != "processes":
        parser.error("the nomination path runs as deployed only (--mode processes)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("console", "warning")
    stores = stores_to_run(args)
    print(
        f"nomination path: {args.clients} clients, {args.hubs or args.clients} hubs per phase "
        f"({args.prefill} nominations each at its start), "
        f"{args.seconds:g}s per phase after a {args.warmup:g}s warm-up, {args.rounds} round(s), "
        f"{os.cpu_count()} CPUs, load average {load_average()}",
        flush=True,
    )
    results = []
    for store, url in stores:
        result = asyncio.run(run_store(store, url, args))
        report(result)
        results.append(result)
    if len(results) > 1:
        print()
        print(
            f"{'store':<10} {'(a) /s':>9} {'(n) /s':>9} {'(b) /s':>9} {'(n)/(a)':>8} {'(b)/(a)':>8}"
        )
        for r in results:
            b = r.phases.get(GRAPHQL)
            print(
                f"{r.store:<10} {r.phases[RAW].rate:>9.1f} {r.phases[NATS].rate:>9.1f} "
                f"{b.rate if b else float('nan'):>9.1f} {r.ratio(NATS):>8.3f} "
                f"{r.ratio(GRAPHQL):>8.3f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps([r.summary() for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
