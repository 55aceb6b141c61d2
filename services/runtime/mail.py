"""Outgoing mail, shared by every service that sends any (identity's
invitations, meetups' announcements and reminders).

* `QUARTIER_SMTP_URL=smtp://user:pass@host:port` (or `smtps://`): sent by SMTP
  (STARTTLS when the server offers it on `smtp://`).
* Otherwise each message is written as an `.eml` file to `QUARTIER_MAIL_DIR`
  (default `<data dir>/mail`), a mail drop that development and tests read.
  Files are named `<nanoseconds>-<random>.eml`, so that sorting them by name
  sorts them by sending time; each appears whole (written aside, then renamed).

`send` blocks (SMTP, the file system): call it from a worker thread, never on
the event loop. It raises on failure; the caller decides whether to retry.
Nothing here logs a message's addresses or content.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from services.runtime.settings import Settings


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class FileMailer:
    """The mail drop: one `.eml` file per message."""

    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(bytes(message))
        tmp.rename(self.directory / name)


class SmtpMailer:
    def __init__(self, url: str, timeout: float = 10.0):
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps"):
            raise ValueError("QUARTIER_SMTP_URL must start with smtp:// or smtps://")
        self.tls = parsed.scheme == "smtps"
        self.host = parsed.hostname or "localhost"
        self.port = parsed.port or (465 if self.tls else 25)
        self.user = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        smtp_cls = smtplib.SMTP_SSL if self.tls else smtplib.SMTP
        with smtp_cls(self.host, self.port, timeout=self.timeout) as smtp:
            if not self.tls and smtp.has_extn("starttls"):
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


def mailer_for(settings: Settings) -> Mailer:
    """SMTP when `QUARTIER_SMTP_URL` is set, else the mail drop."""
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url)
    return FileMailer(settings.mail_dir)


def sender_domain(sender: str) -> str:
    """The domain of a From header (`Quartier <no-reply@example.org>` →
    `example.org`), for the Message-IDs of what it sends."""
    address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
    domain = address.rsplit("@", 1)[-1] if "@" in address else ""
    return domain or "quartier.localhost"
