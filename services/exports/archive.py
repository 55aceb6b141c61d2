"""The archive: one file per kind of record, CSV for flat tables and NDJSON
(one JSON object per line) for records with nested parts, then
`manifest.json` (each file's format, row count, size and JSON Schema of a
row, and the time taken) and `README.txt` (the same, for people), zipped.

Rows are written to temporary files as they come (never the whole network
in memory); the limits (`Limits`) are checked as each row is written, so an
export too large fails before it costs more.

CSV cells of **text columns** (a field typed as a string) that a spreadsheet
would read as a formula are neutralised as OWASP recommends (`neutralise`):
a single quote `'` is put in front. Numbers, amounts, times, booleans and
JSON cells are written as they are (a negative amount stays `-12.50`)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import msgspec
import msgspec.inspect as mi

from services.events import contract as ec
from services.hubs import contract as hc
from services.identity import contract as idc
from services.referrals import contract as rc
from services.webhooks import contract as wc


class TooLarge(Exception):
    """The export passed one of its limits."""


@dataclass(frozen=True)
class Limits:
    max_rows: int = 100_000  # per file
    max_bytes: int = 256 * 1024 * 1024  # the files, uncompressed, in all


@dataclass(frozen=True)
class FileSpec:
    """One file of the archive: its rows are the contract type `row`, with
    `extra` leading columns (e.g. the hub a member row belongs to) and
    without the `drop` fields."""

    name: str
    row: type
    about: str
    extra: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()

    @property
    def format(self) -> str:
        return "csv" if self.name.endswith(".csv") else "ndjson"

    @property
    def columns(self) -> list[str]:
        fields = [f for f in self.row.__struct_fields__ if f not in self.drop]  # type: ignore[attr-defined]
        return [*self.extra, *fields]

    @property
    def text_columns(self) -> frozenset[str]:
        """The columns holding text (a string, a string enum, or either or
        nothing), whose cells `neutralise` escapes; the extra columns are ids."""
        info = mi.type_info(self.row)
        assert isinstance(info, mi.StructType)
        found = {f.name for f in info.fields if _is_text(f.type)}
        return frozenset({*self.extra, *found} - set(self.drop))

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of one row (CSV: a cell holding a list or an
        object holds its JSON)."""
        schema = msgspec.json.schema(self.row)
        defs = schema.get("$defs", {})
        own = defs.get(self.row.__name__, schema)
        properties = own.setdefault("properties", {})
        for name in self.drop:
            properties.pop(name, None)
        own["required"] = [r for r in own.get("required", []) if r not in self.drop]
        for name in reversed(self.extra):
            properties[name] = {"type": "string"}
            own["required"] = [name, *own["required"]]
        own["properties"] = {k: properties[k] for k in self.columns if k in properties}
        return schema


FILES: tuple[FileSpec, ...] = (
    FileSpec(
        "members.csv",
        idc.MemberCard,
        "Members and their profile cards (a member's own export: their card only, "
        "with their e-mail address and places).",
        drop=("distance_km",),
    ),
    FileSpec("hubs.ndjson", hc.Hub, "Hubs: area, current rules, roles."),
    FileSpec(
        "hub_members.csv",
        hc.HubMember,
        "Who belongs to which hub, admitted when, sponsored by whom.",
        extra=("hub_id",),
    ),
    FileSpec(
        "hub_rules_history.ndjson",
        hc.RulesVersion,
        "Every version of every hub's rules, who changed them and why.",
        extra=("hub_id",),
    ),
    FileSpec("meetups.ndjson", ec.Meetup, "Meetups, past and upcoming.", drop=("my_rsvp",)),
    FileSpec(
        "meetup_rsvps.csv", ec.Rsvp, "Answers to meetups (seats, waitlist).", extra=("meetup_id",)
    ),
    FileSpec(
        "meetup_attendance.csv",
        ec.AttendanceEntry,
        "Attendance recorded at meetups (visitors by id only).",
        extra=("meetup_id",),
    ),
    FileSpec(
        "mission_cards.csv",
        ec.CardDraw,
        "Mission cards drawn at meetups: who holds each, done when "
        "(a member's own export: the cards they hold).",
        extra=("meetup_id",),
    ),
    FileSpec(
        "date_polls.ndjson",
        ec.DatePoll,
        "Date polls: their slots with the tallies of votes, the slot chosen.",
        drop=("my_votes",),
    ),
    FileSpec(
        "date_poll_votes.csv",
        ec.PollVote,
        "Each member's vote on each slot of a date poll (a member's own export: theirs).",
    ),
    FileSpec(
        "workshop_proposals.csv",
        ec.WorkshopProposal,
        "Workshop proposals (a member's own export: the ones they proposed).",
    ),
    FileSpec(
        "referrals.ndjson",
        rc.Slip,
        "Referrals with their prospect and status history.",
    ),
    FileSpec("thanks.csv", rc.Thanks, "Thanks for closed business."),
    FileSpec(
        "one_to_ones.csv",
        rc.OneToOne,
        "One-to-ones logged (a member's own export: their latest 200).",
    ),
    FileSpec("needs.ndjson", rc.Need, "Needs posted to the network and their answers."),
    FileSpec(
        "reports.ndjson",
        rc.Results,
        "Results over the last 365 days: the network, each hub and each member "
        "(a member's own export: theirs).",
    ),
    FileSpec(
        "hub_engagement.ndjson",
        rc.HubEngagement,
        "Each hub's engagement now: its core and each member's traffic light.",
    ),
    FileSpec(
        "invitations.csv",
        idc.InvitationInfo,
        "Invitations to join the network, pending, accepted or not (never their secret link; "
        "the network's export only).",
    ),
    FileSpec(
        "webhook_endpoints.csv",
        wc.Endpoint,
        "Webhook endpoints: URL, event types, description, enabled (never their signing "
        "secret; the network's export only).",
    ),
)

BY_NAME = {f.name: f for f in FILES}

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP, CSV Injection)."""


def _is_text(kind: mi.Type) -> bool:
    if isinstance(kind, mi.UnionType):
        return all(_is_text(k) for k in kind.types if not isinstance(k, mi.NoneType))
    if isinstance(kind, mi.LiteralType):
        return all(isinstance(v, str) for v in kind.values)
    return isinstance(kind, mi.StrType)


def neutralise(text: str) -> str:
    """A text cell a spreadsheet would take for a formula, with a single
    quote in front (OWASP): one starting with = + - @, a tab or a carriage
    return, also after leading whitespace (` =1+1`: some spreadsheets trim
    it on import). Any other text is left as it is."""
    if text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS):
        return "'" + text
    return text


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _csv_cell(value: Any, text: bool) -> str:
    found = cell(value)
    return neutralise(found) if text and isinstance(value, str) else found


@dataclass
class Written:
    spec: FileSpec
    path: Path
    handle: IO[str]
    rows: int = 0
    writer: Any = None
    text: frozenset[str] = frozenset()


@dataclass
class ArchiveWriter:
    """Writes rows to one temporary file per FileSpec, then zips them.
    `close()` removes every temporary file."""

    limits: Limits = field(default_factory=Limits)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="quartier-x-")))
    files: dict[str, Written] = field(default_factory=dict)
    total_bytes: int = 0

    def __post_init__(self) -> None:
        for spec in FILES:
            path = self.directory / spec.name
            handle = path.open("w", encoding="utf-8", newline="")
            written = Written(spec, path, handle, text=spec.text_columns)
            if spec.format == "csv":
                written.writer = csv.writer(handle, lineterminator="\r\n")
                written.writer.writerow(spec.columns)
            self.files[spec.name] = written

    def add(self, name: str, rows: Iterable[Any], **extra: str) -> int:
        """Write contract structs (or dicts of their fields) as rows of file
        `name`, with the `extra` columns' values. Raises TooLarge."""
        written = self.files[name]
        spec = written.spec
        count = 0
        for row in rows:
            data: dict[str, Any] = dict(
                row if isinstance(row, Mapping) else msgspec.to_builtins(row)
            )
            for dropped in spec.drop:
                data.pop(dropped, None)
            data = {**extra, **data}
            if spec.format == "csv":
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\r\n").writerow(
                    [_csv_cell(data.get(c), c in written.text) for c in spec.columns]
                )
                line = buffer.getvalue()
            else:
                line = json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
            size = len(line.encode())
            if written.rows + 1 > self.limits.max_rows:
                raise TooLarge(f"{name} would hold more than {self.limits.max_rows} rows")
            if self.total_bytes + size > self.limits.max_bytes:
                raise TooLarge(f"the export would be larger than {self.limits.max_bytes} bytes")
            written.handle.write(line)
            written.rows += 1
            self.total_bytes += size
            count += 1
        return count

    def counts(self) -> dict[str, int]:
        return {name: w.rows for name, w in self.files.items()}

    def finish(self, about: Mapping[str, Any], started: datetime, finished: datetime) -> Path:
        """Zip the files with `manifest.json` and `README.txt`; the zip's path."""
        for written in self.files.values():
            written.handle.close()
        seconds = round((finished - started).total_seconds(), 3)
        entries = [
            {
                "name": w.spec.name,
                "format": w.spec.format,
                "description": w.spec.about,
                "rows": w.rows,
                "bytes": w.path.stat().st_size,
                **({"columns": w.spec.columns} if w.spec.format == "csv" else {}),
                "schema": w.spec.schema(),
            }
            for w in self.files.values()
        ]
        manifest = {
            **about,
            "started_at": started.isoformat(),
            "finished_at": finished.isoformat(),
            "seconds": seconds,
            "files": entries,
        }
        target = self.directory / "export.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(entry("README.txt", finished), readme(manifest))
            archive.writestr(
                entry("manifest.json", finished),
                json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
            )
            for written in self.files.values():
                with (
                    written.path.open("rb") as source,
                    archive.open(entry(written.spec.name, finished), "w") as sink,
                ):
                    shutil.copyfileobj(source, sink)
        return target

    def close(self) -> None:
        for written in self.files.values():
            written.handle.close()
        shutil.rmtree(self.directory, ignore_errors=True)


FILE_MODE = 0o100644  # a regular file, rw-r--r--


def entry(name: str, when: datetime) -> zipfile.ZipInfo:
    """A zip entry as every file of the archive has it: a regular file of
    mode 0644 (Unix attributes), deflated, dated when the export was made
    (UTC). Neither the temporary files' modes (the process's umask) nor
    `writestr`'s default (0600) reach the archive."""
    info = zipfile.ZipInfo(name, date_time=when.utctimetuple()[:6])
    info.create_system = 3  # Unix: unzip honours external_attr's mode
    info.external_attr = FILE_MODE << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def readme(manifest: Mapping[str, Any]) -> str:
    lines = [
        "Quartier export",
        "===============",
        "",
        f"Network: {manifest.get('network', '')}",
        f"Scope: {manifest.get('scope', '')}"
        + (
            " (everything the network holds about one member)"
            if manifest.get("scope") == "me"
            else ""
        ),
        f"Export id: {manifest.get('export_id', '')}",
        f"Requested at: {manifest.get('requested_at', '')}",
        f"Made from {manifest['started_at']} to {manifest['finished_at']} "
        f"({manifest['seconds']} seconds).",
        "",
        "Files (one per kind of record; manifest.json gives each one's JSON Schema):",
        "",
    ]
    for entry in manifest["files"]:
        lines.append(f"* {entry['name']} ({entry['rows']} rows): {entry['description']}")
        if entry["format"] == "csv":
            lines.append(f"    columns: {', '.join(entry['columns'])}")
    lines += [
        "",
        "CSV files: UTF-8, comma-separated, a header line, RFC 4180 quoting, CRLF line ends.",
        "A cell holding a list or an object holds its JSON; an empty cell is a missing value.",
        "A text cell that a spreadsheet would read as a formula (starting with = + - @, a tab",
        "or a carriage return, also after spaces) starts with a single quote ' put there",
        "by the export (OWASP's advice); numbers, amounts and times are written as they are.",
        "NDJSON files: UTF-8, one JSON object per line.",
        "Times are ISO 8601 in UTC (meetups' local_start is local to their time zone);",
        "amounts are exact decimals with an ISO 4217 currency.",
        "",
    ]
    return "\n".join(lines)
