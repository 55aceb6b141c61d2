"""How `GET /v1/events` ends when the server ends it (gateway/v1.py `body`,
docs/stream.md): a last line saying why, in NDJSON a JSON object, in SSE an
`error` event; none when the client's own request ends it. The reader here
is a plain async iterator standing for the stream's (no bus involved: the
end-to-end shapes are in tests/e2e/test_api_keys.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.stream import EventsReader
from gateway.v1 import NDJSON, SSE, body
from services.runtime.errors import Forbidden, QuartierError, Unauthenticated, Unavailable

CALLER = EventsReader(tenant_id="t", expires_at=None, who="key:k")


class Reader:
    """Heartbeats (None), then `error` raised (or the end, `expired`)."""

    def __init__(self, error: QuartierError | None = None, expired: bool = False):
        self.error, self.expired, self.delivered, self.closed = error, expired, 0, False

    def __aiter__(self) -> AsyncIterator[None]:
        return self._items()

    async def _items(self) -> AsyncIterator[None]:
        yield None
        if self.error is not None:
            raise self.error

    async def close(self) -> None:
        self.closed = True


async def read(
    reader: Reader,
    media_type: str,
    recheck_error: QuartierError | None = None,
    stopping: asyncio.Event | None = None,
) -> list[str]:
    async def recheck() -> None:
        if recheck_error is not None:
            raise recheck_error

    chunks = [
        chunk
        async for chunk in body(reader, media_type, CALLER, recheck, stopping)  # type: ignore[arg-type]
    ]
    assert reader.closed
    return b"".join(chunks).decode().splitlines()


def last_error(lines: list[str], media_type: str) -> dict[str, Any]:
    if media_type == SSE:
        assert lines[-3:-1] == ["event: error", lines[-2]] and lines[-1] == ""
        assert lines[-2].startswith("data: ")
        error: dict[str, Any] = json.loads(lines[-2].removeprefix("data: "))["error"]
    else:
        error = json.loads(lines[-1])["error"]
    return error


MEDIA = pytest.mark.parametrize("media_type", [NDJSON, SSE], ids=["ndjson", "sse"])


@pytest.mark.parametrize(
    ("media_type", "refusal", "code", "words"),
    [
        (NDJSON, Unauthenticated("this API key has been revoked"), "unauthenticated", "revoked"),
        (SSE, Unauthenticated("this API key has expired"), "unauthenticated", "expired"),
        (SSE, Forbidden("only a network's tenant admins may do this"), "forbidden", "admins"),
    ],
    ids=["revoked-ndjson", "expired-key-sse", "demoted-sse"],
)
async def test_a_credential_that_no_longer_allows_reading(
    media_type: str, refusal: QuartierError, code: str, words: str
) -> None:
    """(Found by the re-check, every `RECHECK_SECONDS`.)"""
    never = Reader(error=None)
    never._items = _forever  # type: ignore[method-assign]
    lines = await asyncio.wait_for(read(never, media_type, recheck_error=refusal), 10)
    error = last_error(lines, media_type)
    assert error["code"] == code and words in error["message"]
    assert "the stream has ended" in error["message"]


async def _forever() -> AsyncIterator[None]:
    while True:
        await asyncio.sleep(3600)
        yield None


@MEDIA
async def test_the_credential_s_expiry(media_type: str) -> None:
    error = last_error(await read(Reader(expired=True), media_type), media_type)
    assert error["code"] == "unauthenticated"
    assert error["message"].startswith("this API key has expired")  # CALLER is a key


@MEDIA
async def test_an_access_token_s_expiry(media_type: str) -> None:
    reader = Reader(expired=True)
    admin = EventsReader(tenant_id="t", expires_at=None, who="member:m")
    chunks = [
        chunk
        async for chunk in body(reader, media_type, admin, _allowed)  # type: ignore[arg-type]
    ]
    error = last_error(b"".join(chunks).decode().splitlines(), media_type)
    assert error["code"] == "unauthenticated"
    assert error["message"].startswith("the credential has expired")
    assert "API key" not in error["message"]


async def _allowed() -> None:
    return None


async def test_a_follow_turn_is_given_back_when_the_response_ends() -> None:
    released: list[bool] = []
    chunks = [
        chunk
        async for chunk in body(
            Reader(),  # type: ignore[arg-type]
            NDJSON,
            CALLER,
            _allowed,
            release=lambda: released.append(True),
        )
    ]
    assert chunks == [b"\n"] and released == [True]


@MEDIA
async def test_the_stream_failing_midway(media_type: str) -> None:
    reader = Reader(error=Unavailable("the event stream cannot be read now: retry"))
    error = last_error(await read(reader, media_type), media_type)
    assert error["code"] == "unavailable" and "resume" in error["message"]


@MEDIA
async def test_the_server_stopping(media_type: str) -> None:
    stopping = asyncio.Event()
    never = Reader()
    never._items = _forever  # type: ignore[method-assign]
    reading = asyncio.ensure_future(read(never, media_type, stopping=stopping))
    await asyncio.sleep(0)
    stopping.set()
    error = last_error(await asyncio.wait_for(reading, 10), media_type)
    assert error["code"] == "unavailable" and "stopping" in error["message"]


@MEDIA
async def test_an_end_the_client_asked_for_has_no_error_line(media_type: str) -> None:
    lines = await read(Reader(), media_type)
    assert not any("error" in line for line in lines)
