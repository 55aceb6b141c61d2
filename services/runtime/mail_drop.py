"""Which mail drop a replica writes to, so that replicas can be checked to
share one (docs/deployment.md): an invitation or a meetup mail written to a
directory only one replica sees is lost for the operator looking at another.

SMTP is shared by nature. A mail directory is identified by a random id kept
in it (`.drop-id`, created by the first process that looks): replicas on one
machine, or on machines mounting one volume, read the same id; replicas each
with their own directory read different ones."""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit

from services.runtime.settings import Settings

ID_FILE = ".drop-id"


def mail_drop(settings: Settings) -> str:
    """`smtp://<host>` (the SMTP server, without credentials), or
    `dir:<id>` for a mail directory (created if missing), or
    `dir:unreadable` if the directory cannot be used."""
    if settings.smtp_url:
        return f"smtp://{urlsplit(settings.smtp_url).hostname or ''}"
    path = settings.mail_dir / ID_FILE
    try:
        if not path.exists():
            settings.mail_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".drop-id.{os.getpid()}.tmp")
            tmp.write_text(secrets.token_hex(8))
            try:
                os.link(tmp, path)  # atomic: the first replica to get here wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return f"dir:{path.read_text().strip()}"
    except OSError:
        return "dir:unreadable"
