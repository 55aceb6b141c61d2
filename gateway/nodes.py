"""Relay conventions: global object ids (`base64("Type:uuid")`), the Node
interface, and connections with opaque cursors and a bounded page size."""

from __future__ import annotations

import base64
import binascii
import uuid

import strawberry

from services.runtime.errors import InvalidInput

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


def to_global_id(type_name: str, raw_id: str) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{raw_id}".encode()).decode())


def from_global_id(global_id: str, expected: str | None = None, field: str = "id") -> str:
    """The raw id inside a global id; a malformed one, or one of another type,
    is an invalid input naming `field`."""
    found = global_type(global_id)
    if found is None:
        raise InvalidInput("not a valid id", field=field)
    type_name, raw = found
    if expected is not None and type_name != expected:
        raise InvalidInput(f"this id is not a {expected} id", field=field)
    return raw


def global_type(global_id: str) -> tuple[str, str] | None:
    """(type name, canonical UUID) of a global id, or None if malformed."""
    try:
        type_name, raw = base64.urlsafe_b64decode(global_id.encode()).decode().split(":", 1)
        return type_name, str(uuid.UUID(raw))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def offset_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def parse_page(first: int, after: str | None) -> tuple[int, int]:
    """(offset, limit) from Relay's `first`/`after`."""
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    if after is None:
        return 0, first
    try:
        tag, value = base64.urlsafe_b64decode(after.encode()).decode().split(":", 1)
        offset = int(value) + 1
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("not a valid cursor", field="after") from None
    if tag != "o" or not 1 <= offset <= MAX_OFFSET:
        raise InvalidInput("not a valid cursor", field="after")
    return offset, first


def page_info(offset: int, count: int, total: int) -> PageInfo:
    return PageInfo(
        has_next_page=offset + count < total,
        has_previous_page=offset > 0,
        start_cursor=offset_cursor(offset) if count else None,
        end_cursor=offset_cursor(offset + count - 1) if count else None,
    )
