#!/usr/bin/env python3
"""An analytics consumer of a Quartier network: a dashboard of weekly
attendance per hub and of referral value per month, drawn as a PNG.

How to start a consumer (README, "Consuming the event stream"):

1. a tenant admin creates an API key with the `events:read` scope
   (GraphQL `createApiKey`, docs/api-keys.md) and gives you its secret;
2. you read `GET /v1/events` with it as a Bearer credential (NDJSON, one
   CloudEvent per line, each with its `position`), and
3. you keep, **with what you computed from the events**, the position of
   the last event you processed: after a restart (or a dropped
   connection) you resume with `after=<position>` and get exactly the
   events after it — none twice, none missing (docs/stream.md).

Here the state (the position and the totals) is one JSON file, replaced
atomically (written aside, then renamed) after each event, so a crash at
any point resumes with no duplicate and no gap.

    python examples/attendance_dashboard.py --url http://127.0.0.1:8000 \\
        --key "$QUARTIER_API_KEY" --state dashboard.json --png dashboard.png [--follow]

Without `--follow` it reads what is there, draws, and stops; with it, it
keeps following (redrawing when the stream is quiet) and reconnects after a
failure from its saved position, until Ctrl-C (one line, the position saved). Only the standard library and matplotlib
(`pip install 'quartier[examples]'`, or just `pip install matplotlib`).

What it counts: `quartier.events.AttendanceRecorded.v1` entries marked
present, late or visitor, per hub and ISO week of the meetup
(`data.starts_at`); `quartier.referrals.ReferralWon.v1` values per month of
the event and currency; hub names from `quartier.hubs.HubCreated.v1`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

TYPES = (
    "quartier.events.AttendanceRecorded.",
    "quartier.referrals.ReferralWon.",
    "quartier.hubs.HubCreated.",
)
ATTENDED = {"present", "late", "visitor"}


class Refused(Exception):
    """The server refused the key (401/403, or a stream ended because the key
    was revoked or expired): no point in retrying with it."""


class Ended(OSError):
    """The server ended the stream for a passing reason (it is stopping, the
    stream failed): resume from the saved position."""


@dataclass
class State:
    position: str | None = None
    processed: int = 0
    hubs: dict[str, str] = field(default_factory=dict)  # hub id: name
    attendance: dict[str, dict[str, int]] = field(default_factory=dict)  # hub id: week: count
    referrals: dict[str, dict[str, str]] = field(default_factory=dict)  # month: currency: amount

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.exists():
            return cls()
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        """Atomically: a crash leaves the previous state or this one."""
        aside = path.with_suffix(path.suffix + ".tmp")
        aside.write_text(json.dumps(asdict(self), sort_keys=True))
        os.replace(aside, path)

    def apply(self, event: dict[str, Any]) -> None:
        """One event's effect on the totals (the position is set by the caller)."""
        data, kind = event.get("data") or {}, event["type"]
        if kind.startswith("quartier.hubs.HubCreated."):
            self.hubs[data["hub_id"]] = data.get("name") or data["hub_id"][:8]
        elif kind.startswith("quartier.events.AttendanceRecorded."):
            if data.get("status") in ATTENDED:
                year, week, _ = datetime.fromisoformat(data["starts_at"]).isocalendar()
                weeks = self.attendance.setdefault(data["hub_id"], {})
                label = f"{year}-W{week:02d}"
                weeks[label] = weeks.get(label, 0) + 1
        elif kind.startswith("quartier.referrals.ReferralWon."):
            value = data.get("value") or {}
            month = datetime.fromisoformat(event["time"]).strftime("%Y-%m")
            currency = (value.get("currency") or "EUR").upper()
            totals = self.referrals.setdefault(month, {})
            totals[currency] = str(Decimal(totals.get(currency, "0")) + Decimal(value["amount"]))


def read_events(
    url: str, key: str, after: str | None, follow: bool, heartbeat: int = 15
) -> Iterator[dict[str, Any] | None]:
    """The network's events after `after`, as dicts; None for a heartbeat
    (the stream is quiet) when following. A last line `{"error": …}` (the
    server ended the stream, docs/stream.md) raises Refused or Ended."""
    params: list[tuple[str, str]] = [("types", ",".join(TYPES))]
    if not url.startswith(("http://", "https://")):
        raise ValueError("the URL must be http:// or https://")
    if after:
        params.append(("after", after))
    if follow:
        params += [("follow", "true"), ("heartbeat", str(heartbeat))]
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        f"{url.rstrip('/')}/v1/events?{urllib.parse.urlencode(params)}",
        headers={"Authorization": f"Bearer {key}", "Accept": "application/x-ndjson"},
    )
    try:
        response = urllib.request.urlopen(request, timeout=heartbeat * 3)  # noqa: S310
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")[:300]
        if e.code in (401, 403):
            raise Refused(f"{e.code}: {detail}") from None
        raise
    with response:
        for line in response:
            text = line.strip()
            item = json.loads(text) if text else None
            if item is not None and "error" in item:
                error = item["error"]
                if error.get("code") in ("unauthenticated", "forbidden"):
                    raise Refused(f"{error.get('code')}: {error.get('message')}")
                raise Ended(f"{error.get('code')}: {error.get('message')}")
            yield item


def draw(state: State, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8))
    weeks = sorted({w for per_hub in state.attendance.values() for w in per_hub})
    for hub_id, per_week in sorted(state.attendance.items()):
        top.plot(
            weeks,
            [per_week.get(w, 0) for w in weeks],
            marker="o",
            label=state.hubs.get(hub_id, hub_id[:8]),
        )
    top.set_title("Weekly attendance per hub")
    top.set_ylabel("attendees")
    if state.attendance:
        top.legend()
    months = sorted(state.referrals)
    currencies = sorted({c for per_month in state.referrals.values() for c in per_month})
    width = 0.8 / max(1, len(currencies))
    for i, currency in enumerate(currencies):
        bottom.bar(
            [m + i * width for m in range(len(months))],
            [float(state.referrals[month].get(currency, 0)) for month in months],
            width=width,
            label=currency,
        )
    bottom.set_xticks(range(len(months)), months)
    bottom.set_title("Referral value won per month")
    if currencies:
        bottom.legend()
    figure.tight_layout()
    aside = png.with_suffix(".tmp.png")
    figure.savefig(aside)
    plt.close(figure)
    os.replace(aside, png)


def run(
    url: str,
    key: str,
    state_path: Path,
    png: Path,
    follow: bool = False,
    stop_after: int | None = None,
    seen_log: Path | None = None,
) -> tuple[State, int]:
    """Read (and follow), keep the state, draw. The state, and how many
    events this run read (after the position it started from).
    `stop_after`: stop after so many events this run (a forced stop, for
    trying resumption); `seen_log`: append each processed event's id there
    (to check it)."""
    state = State.load(state_path)
    done = 0
    backoff = 1.0
    while True:
        try:
            for event in read_events(url, key, state.position, follow):
                if event is None:  # quiet: a good moment to redraw
                    draw(state, png)
                    continue
                state.apply(event)
                state.position = event["position"]
                state.processed += 1
                state.save(state_path)
                if seen_log is not None:
                    with seen_log.open("a") as log:
                        log.write(event["id"] + "\n")
                done += 1
                backoff = 1.0
                if stop_after is not None and done >= stop_after:
                    return state, done
            if not follow:
                draw(state, png)
                return state, done
        except Refused:
            raise
        except (OSError, ValueError) as e:  # a dropped connection: resume from the state
            if not follow:
                raise
            print(f"stream interrupted ({type(e).__name__}); resuming", file=sys.stderr)
            time.sleep(backoff)
            backoff = min(60.0, backoff * 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("QUARTIER_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("QUARTIER_API_KEY"))
    parser.add_argument("--state", type=Path, default=Path("dashboard.json"))
    parser.add_argument("--png", type=Path, default=Path("dashboard.png"))
    parser.add_argument("--follow", action="store_true", help="keep following new events")
    parser.add_argument("--stop-after", type=int, help="stop after so many events (testing)")
    parser.add_argument("--seen-log", type=Path, help="append each processed event id (testing)")
    args = parser.parse_args(argv)
    args.key = (args.key or "").strip()  # (a key stored with its line break)
    if not args.key:
        parser.error("give an API key with --key or QUARTIER_API_KEY")
    resumed = State.load(args.state).position is not None
    try:
        state, read_now = run(
            args.url, args.key, args.state, args.png, args.follow, args.stop_after, args.seen_log
        )
    except Refused as e:
        print(f"the key was refused: {e}", file=sys.stderr)
        return 2
    except Ended as e:  # (following, it resumes by itself)
        print(f"the server ended the stream: {e}; run again to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the state on disk is whole (saved after each event)
        total = State.load(args.state).processed
        print(f"stopped; position saved in {args.state} ({total} processed in all)")
        return 0
    print(summary(read_now, state.processed, resumed))
    print(f"position saved in {args.state}; chart: {args.png}")
    return 0


def summary(read_now: int, total: int, resumed: bool) -> str:
    """What this run read, then the totals: `3 new events read (after the
    saved position); 42 processed in all`."""
    plural = "s" if read_now != 1 else ""
    since = "after the saved position" if resumed else "from the start"
    return f"{read_now} new event{plural} read ({since}); {total} processed in all"


if __name__ == "__main__":
    sys.exit(main())
