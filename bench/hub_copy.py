"""Micro-benchmark: what the aggregate cache's copy of a hub costs.

The eventsourcing library's `Repository.get` deep-copies the cached aggregate
on every load (`deepcopy_from_cache`, on by default), so a hub command pays
`copy.deepcopy(hub)` once per load, and the copy grows with every nomination
the hub holds (decided ones included). This builds a `Hub` with the domain
code of the checkout it runs in, and prints the CPU time of one copy for a few
sizes. It needs no database and no
service; run it in two worktrees to compare two commits.

    .venv/bin/python bench/hub_copy.py
    .venv/bin/python bench/hub_copy.py --trial-deepcopy   # with __deepcopy__ on the value classes

`--trial-deepcopy` patches, in this process only, a `__deepcopy__` onto the hub's
value classes (the kit's typed state, `services/hubs/domain/values.py`): the
frozen ones return themselves, `Membership` and `Nomination` are copied field
by field (a nomination's list of objections too). It shows what such a change
would save; it changes no file.
"""

from __future__ import annotations

import argparse
import copy
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from services.hubs.domain import Area, Candidate, CandidatePlaces, Hub, Rules

AT = datetime.now(UTC)
PLACES = CandidatePlaces(work_km=0.5, work_postcode="75011")
FOUNDER = str(uuid.uuid4())


def candidate() -> Candidate:
    return Candidate(member_id=str(uuid.uuid4()), activity_code="plumber", places=PLACES)


def hub_with(nominations: int) -> Hub:
    hub = Hub.new(
        str(uuid.uuid4()),
        "bench",
        "neighbourhood",
        Area(lat=48.8575, lon=2.3795, radius_km=2.0),
        Rules(non_competition=False),
        FOUNDER,
        "plumber",
        AT,
    )
    for i in range(nominations):
        hub.nominate(
            str(uuid.uuid4()), FOUNDER, candidate(), f"note {i}", {FOUNDER: "plumber"}, None, AT
        )
    hub.collect_events()
    return hub


def per_call(fn: Callable[[], Any], budget: float = 0.5) -> float:
    """CPU microseconds per call of `fn`, over about `budget` seconds."""
    calls, started = 0, time.process_time()
    while time.process_time() - started < budget:
        fn()
        calls += 1
    return (time.process_time() - started) / calls * 1e6


def patch_deepcopy() -> None:
    from services.hubs.domain import values

    def share(self: Any, memo: dict[int, Any]) -> Any:
        return self

    for cls in (values.Area, values.Rules, values.RulesVersion, values.Objection, PLACES.__class__):
        cls.__deepcopy__ = share  # type: ignore[attr-defined]
    values.Membership.__deepcopy__ = lambda self, memo: replace(self)  # type: ignore[attr-defined]
    values.Nomination.__deepcopy__ = lambda self, memo: replace(  # type: ignore[attr-defined]
        self, objections=list(self.objections)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="0,20,100,200,500", help="nominations held")
    parser.add_argument("--trial-deepcopy", action="store_true", help="see the module docstring")
    args = parser.parse_args()
    if args.trial_deepcopy:
        patch_deepcopy()
    print(f"{'nominations':>11} {'deepcopy µs':>12}")
    for size in (int(x) for x in args.sizes.split(",")):
        hub = hub_with(size)
        print(f"{size:>11} {per_call(lambda hub=hub: copy.deepcopy(hub)):>12.1f}")


if __name__ == "__main__":
    main()
