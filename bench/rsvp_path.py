"""RSVP benchmark (issue #7, "Done means"): the cost of answering an RSVP by
link does not grow with the number of answers already on the meetup.

Built from `write_path.py`'s helpers and read the same way: phases, each for
`--seconds` after a `--warmup`, on one store per run (SQLite, and PostgreSQL
when it answers); rates, p50/p99, ratios against a baseline measured in this
process, and the CPU each process used per answer. It never asserts a
threshold and is not part of `make test`.

The system runs as deployed: NATS, identity, hubs, the meetups service
(`services/events`) and the gateway are separate processes; the load
generator is this process. The set-up, through the services' own commands:
one network, its admin, and `1 + max(levels) + --answerers` members, all
working in the hub's area; an open hub they all join. Then, for each level N
(default 0, 300 and 1,000 answers), two meetups of the hub with `--capacity`
seats (50 by default: past it, a "yes" waits in line), each already holding N
answers of N other members (7 in 10 yes, 2 maybe, 1 no):

(a)  The floor: raw `Meetups.answer` calls — the application's own command,
     with its rules (the meetup's seat bookkeeping and the member's answer,
     saved together) — in this process, one thread, on a `Meetups`
     application opened on the very store the running service uses
     (configured as the service is: snapshots every 50 events of a meetup,
     the aggregate cache), on a meetup of its own whose N answers were written
     the same way. No NATS, no link to check, no read model; nobody is
     promoted from the waitlist (the service reads who is first in line from
     its read model). The baseline of the ratios, at each level.
(l)  `AnswerByLink` over NATS, as the gateway's link page sends it when the
     member presses the button: no login, the signed token (an RSVP link of
     the member for that meetup, signed here with the system's link key, as
     the mails sign them) is the credential. The service verifies the link,
     answers, brings its read models up to date and replies with the seat.
     `--clients` requesters (one by default: the cost of one answer; with
     more, answers to the one meetup collide and the service answers some
     with `Conflict`, "try again", counted as failures).

Every answer is a real change: the `--answerers` members (beyond the N who
answered before) alternate "yes" and "no", so the meetup keeps N + answerers
answers while the phase runs, and every request records a new answer (a "yes"
takes a seat or a place in line, a "no" gives it back). What should not grow
with N: the aggregate's load (snapshots and the cache bound it), the answer's
own row, the counts the reply reads.

    .venv/bin/python bench/rsvp_path.py                    # SQLite, and PostgreSQL if it answers
    .venv/bin/python bench/rsvp_path.py --no-postgres --seconds 4 --levels 0,300,1000
    .venv/bin/python bench/rsvp_path.py --clients 1 --answerers 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nomination_path import CENTRE, POSTCODE, RADIUS_KM, card
from write_path import (
    JWT_SECRET,
    CpuMeter,
    Phase,
    Seat,
    System,
    add_common_arguments,
    create_members,
    drive,
    load_average,
    merge,
    print_cpu,
    print_phases,
    raw_phase,
    stores_to_run,
)

from services.events import contract as ec
from services.events.application import Meetups
from services.events.links import Link, link_key, sign
from services.hubs import contract as hc
from services.runtime.bus import Bus
from services.runtime.errors import Conflict, Forbidden, NotFound, QuartierError
from services.runtime.logging import configure_logging
from services.runtime.store import Store
from services.runtime.tenancy import RequestContext

RAW, LINK = "raw", "link"
VENUE = ec.Venue(name="Le Bistrot Voltaire", address="12 boulevard Voltaire")
PREFILL_CONCURRENCY = 32


def prefill_answer(i: int) -> ec.Answer:
    """The i-th earlier answer: 7 in 10 yes, 2 maybe, 1 no."""
    return "yes" if i % 10 < 7 else "maybe" if i % 10 < 9 else "no"


@dataclass
class LevelMeetups:
    level: int
    service: ec.Meetup  # answered through the service (l)
    raw: ec.Meetup  # answered by raw application calls (a)


@dataclass
class RsvpResult:
    store: str
    levels: list[int]
    phases: dict[tuple[str, int], Phase]

    def rate(self, key: str, level: int) -> float:
        return self.phases[(key, level)].rate

    def summary(self) -> dict[str, Any]:
        first = self.levels[0]
        return {
            "store": self.store,
            "cpus": os.cpu_count(),
            "levels": {
                str(level): {
                    "raw": self.phases[(RAW, level)].summary(),
                    "link": self.phases[(LINK, level)].summary(),
                    "ratio_link_over_raw": round(self.rate(LINK, level) / self.rate(RAW, level), 3),
                    "link_vs_first_level": round(
                        self.rate(LINK, level) / self.rate(LINK, first), 3
                    ),
                    "raw_vs_first_level": round(self.rate(RAW, level) / self.rate(RAW, first), 3),
                }
                for level in self.levels
            },
        }


# -- set-up --------------------------------------------------------------------


async def open_hub(bus: Bus, admin: Seat, members: list[Seat]) -> hc.Hub:
    """An open hub around the members' place, which every member joins."""
    hub = await bus.request(
        hc.CreateHub(
            name="Bench lunch club",
            kind="neighbourhood",
            area=hc.Area(
                centre=hc.Point(lat=CENTRE[0], lon=CENTRE[1]),
                radius_km=RADIUS_KM,
                postcodes=[POSTCODE],
            ),
            rules=hc.Rules(admission_mode="open", non_competition=False),
        ),
        admin.as_member(),
    )
    # one at a time: 32 concurrent joins of one hub made the hubs service
    # answer `internal error` (seen on SQLite; reported, not investigated here)
    for seat in members:
        await retrying(
            lambda seat=seat: bus.request(hc.JoinHub(hub_id=hub.hub_id), seat.as_member())
        )
    return hub


async def retrying(call: Callable[[], Awaitable[Any]], timeout: float = 120.0) -> Any:
    """Again while a service has not learnt the member or the hub yet (from
    another service's events): NotFound, Forbidden; and on a Conflict (two
    answers to one meetup at once: the service records one and asks the
    other to try again)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await call()
        except (Forbidden, NotFound, Conflict):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def schedule(bus: Bus, admin: Seat, hub: hc.Hub, capacity: int, title: str) -> ec.Meetup:
    day = (datetime.now(UTC) + timedelta(days=30)).date()
    meetup: ec.Meetup = await retrying(
        lambda: bus.request(
            ec.ScheduleMeetup(
                hub_id=hub.hub_id,
                local_start=datetime(day.year, day.month, day.day, 12, 30),
                title=title,
                venue=VENUE,
                capacity=capacity,
            ),
            admin.as_member(),
        )
    )
    return meetup


async def prefill_service(bus: Bus, meetup: ec.Meetup, members: list[Seat]) -> None:
    """The level's earlier answers, through the service (GiveRsvp)."""
    gate = asyncio.Semaphore(PREFILL_CONCURRENCY)

    async def answer(i: int, seat: Seat) -> None:
        async with gate:
            await retrying(
                lambda: bus.request(
                    ec.GiveRsvp(meetup_id=meetup.meetup_id, answer=prefill_answer(i)),
                    seat.as_member(),
                    timeout=60,
                )
            )

    await asyncio.gather(*(answer(i, s) for i, s in enumerate(members)))


def no_one_in_line(_meetup_id: str, _leaving: str) -> str | None:
    return None


def prefill_raw(app: Meetups, meetup: ec.Meetup, members: list[Seat]) -> None:
    """The raw meetup's earlier answers, by raw application calls."""
    for i, seat in enumerate(members):
        app.answer(
            seat.tenant_id,
            meetup.meetup_id,
            seat.member_id,
            prefill_answer(i),
            datetime.now(UTC),
            no_one_in_line,
        )


# -- senders ---------------------------------------------------------------------


class Toggle:
    """Each answerer alternates yes and no: every answer is a real change."""

    def __init__(self) -> None:
        self.last: dict[str, str] = {}

    def next(self, member_id: str) -> str:
        answer = "no" if self.last.get(member_id) == "yes" else "yes"
        self.last[member_id] = answer
        return answer


def link_sender(
    bus: Bus, meetup: ec.Meetup, groups: list[list[Seat]], toggle: Toggle
) -> Callable[[int, Seat, str], Awaitable[str | None]]:
    """Requester k answers for its own members in turn, by link."""
    key = link_key(JWT_SECRET)
    tokens: dict[tuple[str, str], str] = {}
    for group in groups:
        for seat in group:
            for answer in ("yes", "no"):
                tokens[(seat.member_id, answer)] = sign(
                    key,
                    Link(
                        kind="rsvp",
                        tenant_id=seat.tenant_id,
                        target_id=meetup.meetup_id,
                        holder_id=seat.member_id,
                        answer=answer,
                        slot_id=None,
                        version=0,
                        expires_at=meetup.ends_at,
                    ),
                )
    turns = [0] * len(groups)

    async def send(k: int, _seat: Seat, _text: str) -> str | None:
        group = groups[k]
        seat = group[turns[k] % len(group)]
        turns[k] += 1
        token = tokens[(seat.member_id, toggle.next(seat.member_id))]
        try:
            await bus.request(ec.AnswerByLink(token=token), RequestContext(), timeout=60)
        except QuartierError as e:
            return f"{e.code}: {e.message}"
        return None

    return send


def raw_writer(app: Meetups, meetup: ec.Meetup, toggle: Toggle) -> Callable[[Seat, str], None]:
    def write(seat: Seat, _text: str) -> None:
        app.answer(
            seat.tenant_id,
            meetup.meetup_id,
            seat.member_id,
            toggle.next(seat.member_id),
            datetime.now(UTC),
            no_one_in_line,
        )

    return write


# -- one store -------------------------------------------------------------------


async def run_store(store: str, database_url: str | None, args: argparse.Namespace) -> RsvpResult:
    workdir = Path(tempfile.mkdtemp(prefix=f"quartier-bench-rsvp-{store}-", dir=args.data_dir))
    system = System(
        workdir,
        database_url,
        "processes",
        args.gateway_env,
        services=("identity", "hubs", "events"),
    )
    levels = sorted(args.levels)
    rounds: dict[tuple[str, int], list[Phase]] = {
        (key, level): [] for key in (RAW, LINK) for level in levels
    }
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(system.stop)
            await system.start()
            total = 1 + levels[-1] + args.answerers
            print(f"  {store}: ready; signing up {total} members", flush=True)
            seats = await create_members(system.nats.url, total, card)
            admin, earlier, answerers = (
                seats[0],
                seats[1 : 1 + levels[-1]],
                seats[1 + levels[-1] :],
            )
            bus = Bus(system.nats.url, "quartier-bench-client", request_timeout=60)
            await bus.connect(wait=30)
            stack.push_async_callback(bus.close)
            print(f"  {store}: {total - 1} members join a hub", flush=True)
            hub = await open_hub(bus, admin, seats[1:])
            events_store = Store.for_service("events", system.settings)
            raw_app = Meetups(env=replace(events_store, pool_size=2).application_env("events"))
            stack.callback(raw_app.close)
            meter = CpuMeter(system.cpu_groups())
            clients = max(1, min(args.clients, len(answerers)))
            groups = [answerers[k::clients] for k in range(clients)]

            for r in range(args.rounds):
                for level in levels:
                    print(f"  {store}: round {r + 1}/{args.rounds}: {level} answers", flush=True)
                    meetups = LevelMeetups(
                        level,
                        await schedule(bus, admin, hub, args.capacity, f"service {level} {r}"),
                        await schedule(bus, admin, hub, args.capacity, f"raw {level} {r}"),
                    )
                    await prefill_service(bus, meetups.service, earlier[:level])
                    await asyncio.to_thread(prefill_raw, raw_app, meetups.raw, earlier[:level])
                    await asyncio.sleep(args.settle)  # the set-up's relay, projections, mails

                    raw_ids = [s for g in groups for s in g]
                    write = raw_writer(raw_app, meetups.raw, Toggle())

                    await asyncio.to_thread(
                        raw_phase, "warm-up", write, [raw_ids], args.warmup, meter
                    )
                    raw = await asyncio.to_thread(
                        raw_phase,
                        f"(a) raw Meetups.answer @{level}",
                        write,
                        [raw_ids],
                        args.seconds,
                        meter,
                    )
                    rounds[(RAW, level)].append(raw)

                    send = link_sender(bus, meetups.service, groups, Toggle())
                    firsts = [g[0] for g in groups]
                    await drive("warm-up", firsts, send, args.warmup, meter)
                    link = await drive(
                        f"(l) AnswerByLink over NATS @{level}, {clients} clients",
                        firsts,
                        send,
                        args.seconds,
                        meter,
                    )
                    rounds[(LINK, level)].append(link)
                    await asyncio.sleep(args.settle)
        return RsvpResult(store, levels, {key: merge(p) for key, p in rounds.items()})
    finally:
        if args.keep:
            print(f"  {store}: data and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# -- output ----------------------------------------------------------------------


def report(result: RsvpResult) -> None:
    phases = {f"{key} {level}": p for (key, level), p in sorted(result.phases.items())}
    print_phases(result.store, "processes", phases)
    first = result.levels[0]
    print(
        f"{'answers on the meetup':<24} {'(l)/(a)':>9} {'(l) vs ' + str(first):>12} "
        f"{'(a) vs ' + str(first):>12}"
    )
    for level in result.levels:
        print(
            f"{level:<24} {result.rate(LINK, level) / result.rate(RAW, level):>9.3f} "
            f"{result.rate(LINK, level) / result.rate(LINK, first):>12.3f} "
            f"{result.rate(RAW, level) / result.rate(RAW, first):>12.3f}"
        )
    print_cpu([result.phases[(LINK, level)] for level in result.levels])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="RSVP by link at 0, 300 and 1,000 answers already on the meetup."
    )
    add_common_arguments(parser)
    # the gateway only has to start (nothing here goes through it); as `prod` it would
    # now need a NATS user of its own, which System does not give it
    parser.set_defaults(clients=1, seconds=5.0, warmup=1.0, settle=1.0, gateway_env="test")
    parser.add_argument(
        "--levels",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[0, 300, 1000],
        help="answers already on the meetup, comma-separated (default 0,300,1000)",
    )
    parser.add_argument(
        "--answerers", type=int, default=16, help="members who answer during a phase"
    )
    parser.add_argument("--capacity", type=int, default=50, help="seats of each meetup")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("console", "warning")
    print(f"load average before: {load_average()}")
    results = []
    for store, url in stores_to_run(args):
        result = asyncio.run(run_store(store, url, args))
        report(result)
        results.append(result)
    print(f"load average after: {load_average()}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.summary() for r in results], indent=2))


if __name__ == "__main__":
    main()
