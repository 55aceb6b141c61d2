"""Outgoing mail. Invitation links are sent here and nowhere else (the token is
never stored in clear, nor returned to the member who invited).

* `QUARTIER_SMTP_URL=smtp://user:pass@host:port` (or `smtps://`): sent by SMTP.
* Otherwise the message is written as an `.eml` file to `QUARTIER_MAIL_DIR`
  (default `.quartier/mail`), a mail drop that development and tests read.
"""

from __future__ import annotations

import smtplib
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class FileMailer:
    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(bytes(message))
        tmp.rename(self.directory / name)


class SmtpMailer:
    def __init__(self, url: str):
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps"):
            raise ValueError("QUARTIER_SMTP_URL must start with smtp:// or smtps://")
        self.tls = parsed.scheme == "smtps"
        self.host = parsed.hostname or "localhost"
        self.port = parsed.port or (465 if self.tls else 25)
        self.user = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None

    def send(self, message: EmailMessage) -> None:
        smtp_cls = smtplib.SMTP_SSL if self.tls else smtplib.SMTP
        with smtp_cls(self.host, self.port, timeout=10) as smtp:
            if not self.tls and smtp.has_extn("starttls"):
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


def invitation_message(
    *, sender: str, to: str, network: str, accept_url: str, expires: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"Invitation à rejoindre {network}"
    message["X-Quartier-Kind"] = "invitation"
    message.set_content(
        f"Bonjour,\n\nVous êtes invité·e à rejoindre le réseau « {network} » sur Quartier.\n"
        f"Pour accepter, choisissez un mot de passe et remplissez votre fiche de présentation :\n\n"
        f"  {accept_url}\n\nCe lien est personnel, utilisable une seule fois, et expire le "
        f"{expires}.\n"
    )
    return message
