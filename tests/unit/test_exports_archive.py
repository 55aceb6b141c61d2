"""The exports service's pure parts: the archive's limits stop an export
before it grows past them; a download link names one export of one network
until it expires, and any change to it is refused."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from services.exports.archive import FILES, ArchiveWriter, Limits, TooLarge
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
