"""Positions in a tenant's stream: opaque, round-trip exactly, refuse what is
damaged, forged or another tenant's with a clear message; type filters are
plain prefixes; the HTTP API's content negotiation and CLI."""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.v1 import ApiError, negotiate
from infra import cli
from services.runtime.errors import InvalidInput
from services.runtime.stream import InvalidPosition, Position, parse_type_prefixes

TENANT = "8f1d2b9c-0000-5000-8000-000000000001"
OTHER = "8f1d2b9c-0000-5000-8000-000000000002"

services = st.sampled_from(["identity", "hubs", "events", "referrals"])
vectors = st.dictionaries(services, st.integers(min_value=1, max_value=2**53), max_size=4)


@st.composite
def positions(draw: st.DrawFn) -> Position:
    vector = draw(vectors)
    if not vector:
        return Position(TENANT)
    last = draw(st.sampled_from(sorted(vector)))
    return Position(
        TENANT,
        vector,
        epoch=draw(st.integers(min_value=0, max_value=2**62)),
        seq=draw(st.integers(min_value=1, max_value=2**62)),
        last=last,
    )


@given(positions())
def test_a_position_round_trips_and_is_url_safe(position: Position) -> None:
    text = position.encode()
    assert Position.decode(text, TENANT) == position
    assert text.isascii() and all(c.isalnum() or c in "-_" for c in text)
    assert len(text) < 200


@given(positions(), st.data())
def test_any_edit_of_a_position_is_refused(position: Position, data: st.DataObject) -> None:
    text = position.encode()
    i = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    )
    edited = text[:i] + replacement + text[i + 1 :]
    if edited == text:
        return
    try:
        decoded = Position.decode(edited, TENANT)
    except InvalidPosition:
        return
    # base64's last character may carry unused bits: the same bytes, the same position
    assert decoded == position


def test_refusals_say_what_is_wrong() -> None:
    mine = Position(TENANT, {"identity": 4, "hubs": 2}, epoch=7, seq=9, last="hubs").encode()
    with pytest.raises(InvalidPosition, match="another network"):
        Position.decode(mine, OTHER)
    for text, why in [
        ("", "not a position"),
        ("***", "not a position"),
        ("x" * 2000, "not a position"),
        ("AAAA", "damaged or forged"),
        (mine[:-6], "damaged or forged"),
    ]:
        with pytest.raises(InvalidPosition, match=why) as refused:
            Position.decode(text, TENANT, "Last-Event-ID")
        assert refused.value.field == "Last-Event-ID"
        assert refused.value.message.startswith("Last-Event-ID: ")
    # well formed and checksummed, but not what a reader writes
    import hashlib

    from services.runtime import stream

    def forge(wire: object) -> str:
        body = msgspec.msgpack.encode(wire)
        key = stream._CHECKSUM_KEY
        checksum = hashlib.blake2b(body, digest_size=4, key=key).digest()
        return base64.urlsafe_b64encode(body + checksum).rstrip(b"=").decode()

    tag = stream.tenant_tag(TENANT)
    assert Position.decode(forge((1, tag, 0, 3, "hubs", [("hubs", 5)])), TENANT).covers("hubs", 5)
    for wire in [
        (2, tag, 0, 3, "hubs", [("hubs", 5)]),  # an unknown format
        (1, tag, 0, 3, "hubs", [("hubs", 0)]),  # ids start at 1
        (1, tag, 0, 3, "Hubs!", [("Hubs!", 5)]),  # not a service name
        (1, tag, 0, 3, "events", [("hubs", 5)]),  # the hint names no service of the vector
        (1, tag, -1, 3, "hubs", [("hubs", 5)]),
        (1, tag, 0, 3, "hubs", [("hubs", 5), ("hubs", 6)]),
        (1, tag, 0, 3, "hubs", "hubs"),
    ]:
        with pytest.raises(InvalidPosition):
            Position.decode(forge(wire), TENANT)


def test_type_filters_are_plain_prefixes() -> None:
    assert parse_type_prefixes(["quartier.hubs., quartier.identity.MemberJoined", ""]) == (
        "quartier.hubs.",
        "quartier.identity.MemberJoined",
    )
    assert parse_type_prefixes(["quartier.hubs.", "quartier.hubs."]) == ("quartier.hubs.",)
    assert parse_type_prefixes([]) == ()
    for bad in ["*", ">", "quartier.*", "quartier.hubs.>", "hubs.", "quartier hubs", "Quartier."]:
        with pytest.raises(InvalidInput) as refused:
            parse_type_prefixes([bad])
        assert refused.value.field == "types"
    with pytest.raises(InvalidInput, match="at most 20"):
        parse_type_prefixes([",".join(f"quartier.x{i}" for i in range(21))])


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/x-ndjson"),
        ("", "application/x-ndjson"),
        ("*/*", "application/x-ndjson"),
        ("text/event-stream", "text/event-stream"),
        ("text/*", "text/event-stream"),
        ("application/x-ndjson;q=0.4, text/event-stream;q=0.5", "text/event-stream"),
        ("text/event-stream;q=0.4, application/x-ndjson", "application/x-ndjson"),
        ("text/html, application/xhtml+xml, */*;q=0.8", "application/x-ndjson"),
        ("*/*, text/event-stream;q=0", "application/x-ndjson"),
        ("TEXT/EVENT-STREAM", "text/event-stream"),
    ],
)
def test_the_format_is_chosen_from_accept(accept: str | None, chosen: str) -> None:
    assert negotiate(accept) == chosen


def test_no_acceptable_format_is_refused() -> None:
    for accept in ["text/html", "application/json", "*/*;q=0", "text/event-stream;q=0"]:
        with pytest.raises(ApiError) as refused:
            negotiate(accept)
        assert refused.value.code == "not_acceptable"


def test_the_rebuild_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.parser().parse_args(["stream", "rebuild", "--service", "hubs", "--timeout", "30"])
    assert (args.command, args.stream_command, args.service, args.timeout) == (
        "stream",
        "rebuild",
        ["hubs"],
        30.0,
    )
    args = cli.parser().parse_args(["stream", "rebuild"])
    assert (args.service, args.timeout) == (None, 600.0)
    args = cli.parser().parse_args(["stream", "--tenant", "pole-11e", "--from-start"])
    assert (args.stream_command, args.tenant, args.from_start) == (None, "pole-11e", True)
    monkeypatch.setenv("QUARTIER_ENV", "test")
    monkeypatch.setenv("QUARTIER_DATA_DIR", str(tmp_path))
    assert cli.main(["stream"]) == 2  # a reading needs its network
