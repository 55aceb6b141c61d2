"""A real HTTP receiver on localhost for webhook tests: it answers each
request as its script says (a status, a hang until the client gives up, a
redirect), and keeps what it received."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    answered: int | None  # the status answered; None: it hung


@dataclass
class Receiver:
    """`script`: what to answer next, in order ("hang", "redirect:<url>" or
    a status code); once spent, `default`."""

    default: int | str = 200
    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token=t"

    def then(self, answers: Iterable[int | str]) -> None:
        self.script.extend(answers)

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = (await reader.readexactly(int(headers.get("content-length", "0")))).decode()
            answer = self.script.pop(0) if self.script else self.default
            if answer == "hang":
                self.received.append(Received(headers, body, None))
                await reader.read()  # until the client gives up and closes
                return
            location = ""
            status = answer
            if isinstance(answer, str) and answer.startswith("redirect:"):
                status, location = 302, f"Location: {answer[len('redirect:') :]}\r\n"
            self.received.append(Received(headers, body, int(status)))
            writer.write(
                f"HTTP/1.1 {status} X\r\n{location}Content-Length: 2\r\n"
                "Connection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
