"""Identity's mails: the invitation and the password reset, in the network's
language (its locale, French by default). Invitation and reset links are sent
here and nowhere else (their tokens are never stored in clear, nor returned
to the member who invited). Sending is
the runtime's (`services/runtime/mail.py`: SMTP or the mail drop)."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from services.runtime.i18n import format_instant

SUBJECTS = {
    "fr": "Invitation à rejoindre {network}",
    "en": "Invitation to join {network}",
}
BODIES = {
    "fr": (
        "Bonjour,\n\nVous êtes invité·e à rejoindre le réseau « {network} » sur Quartier.\n"
        "Pour accepter, choisissez un mot de passe et remplissez votre fiche de présentation :"
        "\n\n  {url}\n\nCe lien est personnel, utilisable une seule fois, et expire le "
        "{expires}.\n"
    ),
    "en": (
        "Hello,\n\nYou are invited to join the network “{network}” on Quartier.\n"
        "To accept, choose a password and fill in your profile card:\n\n  {url}\n\n"
        "This link is personal, works once, and expires on {expires}.\n"
    ),
}


def invitation_message(
    *,
    sender: str,
    to: str,
    network: str,
    accept_url: str,
    expires_at: datetime,
    locale: str = "fr",
    now: datetime | None = None,
) -> EmailMessage:
    lang = locale if locale in SUBJECTS else "fr"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = SUBJECTS[lang].format(network=network)
    if now is not None:
        message["Date"] = format_datetime(now)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Quartier-Kind"] = "invitation"
    message.set_content(
        BODIES[lang].format(
            network=network, url=accept_url, expires=format_instant(expires_at, lang)
        )
    )
    message["Content-Language"] = lang  # after set_content, which resets Content-* headers
    return message


RESET_SUBJECTS = {
    "fr": "Réinitialiser votre mot de passe sur {network}",
    "en": "Reset your password on {network}",
}
RESET_BODIES = {
    "fr": (
        "Bonjour,\n\nQuelqu'un (vous, sans doute) a demandé à réinitialiser le mot de passe de "
        "votre compte sur le réseau « {network} ».\nPour choisir un nouveau mot de passe :"
        "\n\n  {url}\n\nCe lien est utilisable une seule fois et expire le {expires}. "
        "Toutes vos sessions seront fermées.\nSi vous n'avez rien demandé, ignorez ce message : "
        "votre mot de passe ne change pas.\n"
    ),
    "en": (
        "Hello,\n\nSomeone (probably you) asked to reset the password of your account on the "
        "network “{network}”.\nTo choose a new password:\n\n  {url}\n\n"
        "This link works once and expires on {expires}. All your sessions will be ended.\n"
        "If you did not ask, ignore this message: your password does not change.\n"
    ),
}


def password_reset_message(
    *,
    sender: str,
    to: str,
    network: str,
    reset_url: str,
    expires_at: datetime,
    locale: str = "fr",
    now: datetime | None = None,
) -> EmailMessage:
    """The password-reset mail: its link carries the single-use token."""
    lang = locale if locale in RESET_SUBJECTS else "fr"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = RESET_SUBJECTS[lang].format(network=network)
    if now is not None:
        message["Date"] = format_datetime(now)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Quartier-Kind"] = "password-reset"
    message.set_content(
        RESET_BODIES[lang].format(
            network=network, url=reset_url, expires=format_instant(expires_at, lang)
        )
    )
    message["Content-Language"] = lang
    return message
