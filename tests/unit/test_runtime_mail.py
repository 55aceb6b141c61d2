"""The shared mailer (services/runtime/mail.py) and the dates and times of
mails and pages in both languages (services/runtime/i18n.py)."""

from __future__ import annotations

import email.parser
import email.policy
from datetime import UTC, datetime, time
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.runtime.i18n import format_instant, format_local, format_time, locale_of
from services.runtime.mail import FileMailer, SmtpMailer, mailer_for, sender_domain
from services.runtime.settings import Settings


def message(subject: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Quartier <no-reply@example.org>"
    m["To"] = "someone@example.org"
    m["Subject"] = subject
    m.set_content("Bonjour\n")
    return m


def test_the_mail_drop_keeps_each_message_whole_in_sending_order(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path / "mail")
    for n in range(5):
        mailer.send(message(f"n°{n}"))
    files = sorted((tmp_path / "mail").glob("*.eml"))
    parse = email.parser.BytesParser(policy=email.policy.default)
    assert [parse.parsebytes(f.read_bytes())["Subject"] for f in files] == [
        f"n°{n}" for n in range(5)
    ]
    assert not list((tmp_path / "mail").glob(".*"))  # nothing half-written is left


def test_the_mailer_follows_the_settings(tmp_path: Path) -> None:
    drop = mailer_for(Settings(mail_dir=tmp_path))
    assert isinstance(drop, FileMailer) and drop.directory == tmp_path
    smtp = mailer_for(Settings(smtp_url="smtps://us%40er:p%3Ass@mail.example.org"))
    assert isinstance(smtp, SmtpMailer)
    assert (smtp.tls, smtp.host, smtp.port, smtp.user, smtp.password) == (
        True,
        "mail.example.org",
        465,
        "us@er",
        "p:ss",
    )
    plain = SmtpMailer("smtp://localhost:2525")
    assert (plain.tls, plain.port, plain.user) == (False, 2525, None)
    with pytest.raises(ValueError, match="smtp://"):
        SmtpMailer("http://mail.example.org")


def test_message_ids_use_the_sender_domain() -> None:
    assert sender_domain("Quartier <no-reply@Pole.example.org>") == "Pole.example.org"
    assert sender_domain("no-reply@example.net") == "example.net"
    assert sender_domain("Quartier") == "quartier.localhost"


def test_dates_and_times_in_french_and_english() -> None:
    start = datetime(2026, 1, 8, 12, 30)
    assert format_local(start, "fr") == "jeudi 8 janvier 2026 à 12 h 30"
    assert format_local(start, "en") == "Thursday 8 January 2026 at 12:30"
    assert format_local(datetime(2026, 5, 1, 9, 5), "fr") == "vendredi 1er mai 2026 à 9 h 05"
    assert format_time(time(19, 0), "en") == "19:00"
    # an instant shown in a zone: summer time in Paris is UTC+2
    at = datetime(2026, 7, 2, 10, 30, tzinfo=UTC)
    assert format_instant(at, "fr", "Europe/Paris") == (
        "jeudi 2 juillet 2026 à 12 h 30 (Europe/Paris)"
    )
    assert format_instant(at, "en") == "Thursday 2 July 2026 at 10:30 (UTC)"
    assert [locale_of(x) for x in ("en", "fr", None, "de")] == ["en", "fr", "fr", "fr"]
