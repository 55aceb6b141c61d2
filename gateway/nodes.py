"""Relay conventions: global object ids, the Node interface, page cursors and
a bounded page size. (Not to be confused with the runtime's outbox relay.)

A global id is `base64("Type:uuid")`, or `base64("Type:uuid:…")` when the
type needs more to be found again by `node(id:)` (a nomination its hub, a
network its slug). Arguments that take an id of a type read only its uuid, so
both forms are accepted there."""

from __future__ import annotations

import base64
import binascii
import uuid

import strawberry

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t

MAX_PAGE = 50
# A cursor is ours and opaque: no real list is this long, and a larger offset
# would overflow the services' encoders and SQL (an internal error, not a bad cursor).
MAX_OFFSET = 2**31 - 1


@strawberry.interface(description="An object with a global id (Relay).")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def to_global_id(type_name: str, raw_id: str, *context: str) -> strawberry.ID:
    """`base64("Type:raw_id")`, followed by `context` (what else `node(id:)`
    needs to find it) separated by colons."""
    text = ":".join((type_name, raw_id, *context))
    return strawberry.ID(base64.urlsafe_b64encode(text.encode()).decode())


def from_global_id(global_id: str, expected: str | None = None, field: str = "id") -> str:
    """The UUID inside a global id (what follows it is ignored); a malformed
    id, or one of another type, is an invalid input naming `field`."""
    found = global_type(global_id)
    if found is None:
        raise InvalidInput(t("not a valid id"), field=field)
    type_name, raw = found
    if expected is not None and type_name != expected:
        raise InvalidInput(t("this id is not a {type} id", type=expected), field=field)
    return raw


def decode_global_id(global_id: str) -> tuple[str, str] | None:
    """(type name, raw id: everything after `Type:`) of a global id, or None if
    it does not decode."""
    try:
        type_name, raw = base64.urlsafe_b64decode(global_id.encode()).decode().split(":", 1)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return type_name, raw


def split_raw_id(raw_id: str) -> tuple[str, ...] | None:
    """(canonical UUID, *context) of a raw id, or None if it does not start
    with a UUID."""
    head, *context = raw_id.split(":")
    try:
        return (str(uuid.UUID(head)), *context)
    except ValueError:
        return None


def global_type(global_id: str) -> tuple[str, str] | None:
    """(type name, canonical UUID) of a global id, or None if malformed."""
    decoded = decode_global_id(global_id)
    parts = split_raw_id(decoded[1]) if decoded else None
    if decoded is None or parts is None:
        return None
    return decoded[0], parts[0]


def offset_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def parse_page(first: int, after: str | None) -> tuple[int, int]:
    """(offset, limit) from Relay's `first`/`after`."""
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput(t("first must be between 1 and {limit}", limit=MAX_PAGE), field="first")
    if after is None:
        return 0, first
    try:
        tag, value = base64.urlsafe_b64decode(after.encode()).decode().split(":", 1)
        offset = int(value) + 1
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(t("not a valid cursor"), field="after") from None
    if tag != "o" or not 1 <= offset <= MAX_OFFSET:
        raise InvalidInput(t("not a valid cursor"), field="after")
    return offset, first


def page_info(offset: int, count: int, total: int) -> PageInfo:
    return PageInfo(
        has_next_page=offset + count < total,
        has_previous_page=offset > 0,
        start_cursor=offset_cursor(offset) if count else None,
        end_cursor=offset_cursor(offset + count - 1) if count else None,
    )
