"""Relay conventions of the gateway (gateway/nodes.py): global ids and page
cursors round-trip, and anything malformed is an `InvalidInput` naming the
argument (never an internal error)."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.nodes import (
    MAX_OFFSET,
    MAX_PAGE,
    decode_global_id,
    from_global_id,
    global_type,
    offset_cursor,
    page_info,
    parse_page,
    split_raw_id,
    to_global_id,
)
from services.runtime.errors import InvalidInput


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode()


# -- global ids ----------------------------------------------------------------


# parametrised values are the same in every process (pytest-xdist compares
# the ids its workers collected): a fixed UUID, not uuid4()
SOME_UUID = uuid.UUID("5f0c6a2e-8d3b-4e71-9a45-1c2b3d4e5f60")


@pytest.mark.parametrize("type_name", ["Member", "Invitation", "Tenant"])
def test_global_ids_round_trip(type_name: str) -> None:
    raw = str(uuid.uuid4())
    gid = to_global_id(type_name, raw)
    assert gid != raw
    assert from_global_id(gid) == raw
    assert from_global_id(gid, type_name) == raw
    assert global_type(gid) == (type_name, raw)


@given(st.uuids(), st.sampled_from(["Member", "Invitation", "Tenant", "Hub"]))
def test_any_global_id_round_trips(raw: uuid.UUID, type_name: str) -> None:
    gid = to_global_id(type_name, str(raw))
    assert from_global_id(gid, type_name, field="memberId") == str(raw)
    assert global_type(gid) == (type_name, str(raw))


@pytest.mark.parametrize(
    ("type_name", "context"),
    [("Nomination", (str(uuid.uuid4()),)), ("Tenant", ("pole-11e",)), ("Thing", ("a", "b"))],
)
def test_global_ids_may_carry_what_finds_them_again(
    type_name: str, context: tuple[str, ...]
) -> None:
    raw = str(uuid.uuid4())
    gid = to_global_id(type_name, raw, *context)
    assert decode_global_id(gid) == (type_name, ":".join((raw, *context)))
    assert split_raw_id(":".join((raw, *context))) == (raw, *context)
    # an argument that takes such an id reads its uuid
    assert from_global_id(gid, type_name) == raw
    assert global_type(gid) == (type_name, raw)


@given(st.uuids(), st.lists(st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True), max_size=2))
def test_any_global_id_with_context_round_trips(raw: uuid.UUID, context: list[str]) -> None:
    gid = to_global_id("Nomination", str(raw), *context)
    type_name, raw_id = decode_global_id(gid) or ("", "")
    assert type_name == "Nomination"
    assert split_raw_id(raw_id) == (str(raw), *context)


@pytest.mark.parametrize("raw_id", ["", "x", ":", f":{SOME_UUID}", "not-a-uuid:also"])
def test_a_raw_id_must_start_with_a_uuid(raw_id: str) -> None:
    assert split_raw_id(raw_id) is None


def test_a_global_id_of_another_type_is_refused() -> None:
    gid = to_global_id("Invitation", str(uuid.uuid4()))
    with pytest.raises(InvalidInput) as caught:
        from_global_id(gid, "Member", field="memberId")
    assert caught.value.field == "memberId"
    assert "Member" in caught.value.message


MALFORMED_IDS = [
    "",
    "garbage",
    "!!!",
    str(SOME_UUID),  # a raw UUID is not a global id
    b64("Member"),  # no separator
    b64("Member:"),
    b64("Member:not-a-uuid"),
    b64(f"Member:{SOME_UUID.hex[:-1]}"),
    b64(b"Member:\xff\xfe"),  # not UTF-8
    b64("Member") + "=",  # bad padding
]


@pytest.mark.parametrize("gid", MALFORMED_IDS)
def test_malformed_global_ids_are_invalid_input_naming_the_field(gid: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        from_global_id(gid, "Member", field="invitationId")
    assert caught.value.field == "invitationId"
    assert caught.value.message == "not a valid id"
    with pytest.raises(InvalidInput) as caught:
        from_global_id(gid)
    assert caught.value.field == "id"  # the default field
    assert global_type(gid) is None


@given(st.text())
def test_any_text_is_an_id_or_invalid_input(text: str) -> None:
    try:
        raw = from_global_id(text, field="id")
    except InvalidInput as e:
        assert e.field == "id"
        assert global_type(text) is None
    else:
        uuid.UUID(raw)
        assert global_type(text) is not None


# -- cursors and pages ---------------------------------------------------------


def test_first_page_and_the_pages_after_a_cursor() -> None:
    assert parse_page(20, None) == (0, 20)
    assert parse_page(1, None) == (0, 1)
    assert parse_page(MAX_PAGE, None) == (0, MAX_PAGE)
    # a cursor names the last item seen: the next page starts after it
    assert parse_page(2, offset_cursor(0)) == (1, 2)
    assert parse_page(2, offset_cursor(41)) == (42, 2)
    assert parse_page(5, offset_cursor(MAX_OFFSET - 1)) == (MAX_OFFSET, 5)


@given(st.integers(min_value=0, max_value=MAX_OFFSET - 1), st.integers(1, MAX_PAGE))
def test_cursors_round_trip(offset: int, first: int) -> None:
    assert parse_page(first, offset_cursor(offset)) == (offset + 1, first)


@pytest.mark.parametrize("first", [0, -1, MAX_PAGE + 1, 10**9])
def test_page_size_is_bounded(first: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_page(first, None)
    assert caught.value.field == "first"
    with pytest.raises(InvalidInput) as caught:
        parse_page(first, offset_cursor(3))
    assert caught.value.field == "first"


MALFORMED_CURSORS = [
    "",
    "garbage",
    "!!!",
    b64("o"),  # no separator
    b64("o:"),
    b64("o:abc"),
    b64("x:1"),  # another tag
    b64("o:-1"),  # before the first item
    b64("o:-5"),
    b64(f"o:{MAX_OFFSET}"),  # beyond any list (and any SQL integer nearby)
    b64("o:9223372036854775807"),
    b64("o:100000000000000000000"),
    b64(b"o:\xff"),  # not UTF-8
    to_global_id("Member", str(SOME_UUID)),  # an id is not a cursor
]


@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
def test_malformed_cursors_are_invalid_input_naming_after(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_page(10, cursor)
    assert caught.value.field == "after"
    assert caught.value.message == "not a valid cursor"


@given(st.text())
def test_any_text_is_a_cursor_or_invalid_input(text: str) -> None:
    try:
        offset, limit = parse_page(10, text)
    except InvalidInput as e:
        assert e.field == "after"
    else:
        assert 1 <= offset <= MAX_OFFSET and limit == 10


def test_page_info() -> None:
    first = page_info(0, 2, 5)
    assert (first.has_next_page, first.has_previous_page) == (True, False)
    assert first.start_cursor == offset_cursor(0) and first.end_cursor == offset_cursor(1)
    assert parse_page(2, first.end_cursor) == (2, 2)
    last = page_info(4, 1, 5)
    assert (last.has_next_page, last.has_previous_page) == (False, True)
    assert last.start_cursor == last.end_cursor == offset_cursor(4)
    empty = page_info(10, 0, 5)
    assert (empty.has_next_page, empty.has_previous_page) == (False, True)
    assert empty.start_cursor is None and empty.end_cursor is None
