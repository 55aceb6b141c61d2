"""The pages identity's e-mails link to: accepting an invitation and setting
a new password, served by the gateway without login and without script.

* `GET /accept-invitation?token=…&network=<slug>` shows a form: the
  password (twice), the display name and the activity the profile card
  needs. It changes nothing. `POST` (the form) sends `AcceptInvitation`
  through the bus, as GraphQL's `acceptInvitation` does; the page then
  says the account is ready (the session the command opens is closed at
  once: the member signs in from their app, or the console for an admin).
* `GET /reset-password?token=…&network=<slug>` shows a form for the new
  password (twice); `POST` sends `ResetPassword` (every session ends).

The token (and the network) travel in the link's query string; the form
posts back to the same address. As for meetups' pages (gateway/pages.py):
the token is the credential, no cookie is read or set, so a cross-site POST
can do nothing its sender could not do with the link itself; the pages are
not cacheable, not framable, sent with `Referrer-Policy: no-referrer`, one
inline stylesheet allowed by its hash, no script. The token is never
logged. `network` names the network whose language the page speaks (a link
without it, from an older mail, gets both French and English; a reset link
without it cannot be used: `resetPassword` needs the network). A refused
token (unknown, expired, used, withdrawn) gets a page with a 4xx status; a
refused field (a password too short, no name, no activity) the form again
with what to fix, in the network's language.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
from dataclasses import dataclass
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.response import Response

from gateway.pages import PAGE_HEADERS, STYLE, Refused, _ask, _check_rate, _context, _error
from services.identity import contract as idc
from services.runtime import errors as e
from services.runtime.bus import Bus
from services.runtime.i18n import locale_of
from services.runtime.logging import get_logger

log = get_logger("quartier.gateway.pages")

MAX_TOKEN = 200
MAX_FIELD = 1000  # longer than any field identity takes: refused before asking
MIN_PASSWORD, MAX_PASSWORD = 10, 256  # identity's policy, said on the page

FORM_STYLE = (
    STYLE + "label{display:block;margin:.8rem 0 .2rem}"
    "input,select{font:inherit;width:100%;box-sizing:border-box;padding:.4rem;"
    "border:1px solid #999;border-radius:.3rem}"
    ".error{color:#a11;font-weight:600}"
)
_HASH = base64.b64encode(hashlib.sha256(FORM_STYLE.encode()).digest()).decode()
HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "join.title": "Rejoindre {network}",
        "join.title_any": "Rejoindre le réseau",
        "join.intro": "Choisissez votre mot de passe et présentez-vous en deux mots : "
        "les autres membres verront votre nom et votre activité.",
        "join.button": "Créer mon compte",
        "join.done_title": "Bienvenue !",
        "join.done": "Votre compte est prêt. Connectez-vous avec votre adresse e-mail "
        "et le mot de passe que vous venez de choisir (réseau « {slug} »).",
        "join.console": "Vous administrez ce réseau : sa console est à l'adresse {url}.",
        "reset.title": "Nouveau mot de passe",
        "reset.intro": "Choisissez un nouveau mot de passe. Toutes vos sessions ouvertes "
        "seront fermées.",
        "reset.button": "Changer mon mot de passe",
        "reset.done": "C'est fait : votre mot de passe est changé. Connectez-vous avec lui "
        "(réseau « {slug} »).",
        "password": "Mot de passe (au moins {min} caractères)",
        "password_again": "Le même mot de passe, encore une fois",
        "display_name": "Votre nom, tel que les membres le verront",
        "activity": "Votre activité",
        "choose": "— choisissez —",
        "mismatch": "Les deux mots de passe ne sont pas les mêmes.",
        "field.password": "Le mot de passe doit compter de {min} à {max} caractères, "
        "pas seulement des espaces.",
        "field.display_name": "Indiquez votre nom (80 caractères au plus, sur une ligne).",
        "field.activity_code": "Choisissez votre activité dans la liste.",
        "field.other": "Une des valeurs n'est pas acceptée : {message}",
        "already_member": "Cette adresse a déjà un compte dans ce réseau : connectez-vous "
        "(ou demandez un nouveau mot de passe).",
        "invitation_used": "Cette invitation a déjà servi : connectez-vous avec le mot de "
        "passe choisi alors.",
        "invitation_revoked": "Cette invitation a été retirée : demandez-en une nouvelle.",
        "invitation_expired": "Cette invitation a expiré : demandez-en une nouvelle.",
        "reset_used": "Ce lien a déjà servi : demandez un nouveau lien si besoin.",
        "reset_expired": "Ce lien a expiré : demandez-en un nouveau.",
        "reset_superseded": "Le mot de passe a changé depuis l'envoi de ce lien : "
        "demandez-en un nouveau.",
    },
    "en": {
        "join.title": "Join {network}",
        "join.title_any": "Join the network",
        "join.intro": "Choose your password and introduce yourself in a few words: "
        "the other members will see your name and your trade.",
        "join.button": "Create my account",
        "join.done_title": "Welcome!",
        "join.done": "Your account is ready. Sign in with your e-mail address and the "
        "password you just chose (network “{slug}”).",
        "join.console": "You are this network's admin: its console is at {url}.",
        "reset.title": "New password",
        "reset.intro": "Choose a new password. Every open session of yours will end.",
        "reset.button": "Change my password",
        "reset.done": "Done: your password has changed. Sign in with it (network “{slug}”).",
        "password": "Password (at least {min} characters)",
        "password_again": "The same password, once more",
        "display_name": "Your name, as the members will see it",
        "activity": "Your trade",
        "choose": "— choose —",
        "mismatch": "The two passwords are not the same.",
        "field.password": "A password has {min} to {max} characters, not only spaces.",
        "field.display_name": "Give your name (at most 80 characters, on one line).",
        "field.activity_code": "Choose your trade from the list.",
        "field.other": "One of the values is not accepted: {message}",
        "already_member": "This address already has an account in this network: sign in "
        "(or ask for a new password).",
        "invitation_used": "This invitation has already been used: sign in with the "
        "password chosen then.",
        "invitation_revoked": "This invitation has been withdrawn: ask for a new one.",
        "invitation_expired": "This invitation has expired: ask for a new one.",
        "reset_used": "This link has already been used: ask for a new one if need be.",
        "reset_expired": "This link has expired: ask for a new one.",
        "reset_superseded": "The password has changed since this link was sent: ask for a new one.",
    },
}
# identity's InvalidToken says why in its message (no rule code): the page's words
TOKEN_REASONS = (
    ("invitation has already been used", "invitation_used", 410),
    ("invitation has been withdrawn", "invitation_revoked", 410),
    ("invitation has expired", "invitation_expired", 410),
    ("link has already been used", "reset_used", 410),
    ("link has expired", "reset_expired", 410),
    ("password has changed since", "reset_superseded", 410),
)


def _t(lang: str, key: str, **values: object) -> str:
    return TEXTS[lang][key].format(**values)


@dataclass(frozen=True)
class Link:
    token: str
    slug: str | None
    lang: str | None  # None: no network known, both languages
    network: str | None  # its name


def _html(content: str, status: int) -> Response[str]:
    return Response(content, status_code=status, media_type="text/html", headers=dict(HEADERS))


def _document(lang: str, heading: str, body: str) -> str:
    esc = html.escape
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{esc(heading)} · Quartier</title>'
        f"<style>{FORM_STYLE}</style></head><body><main><h1>{esc(heading)}</h1>{body}"
        "</main></body></html>"
    )


def _both(key: str, **values: object) -> str:
    """In the network's language, or both when no network is known."""
    fr, en = _t("fr", key, **values), _t("en", key, **values)
    return fr if fr == en else f"{fr} / {en}"


def _say(link: Link, key: str, **values: object) -> str:
    return _t(link.lang, key, **values) if link.lang else _both(key, **values)


def _token_refused(link: Link, error: e.InvalidToken) -> Response[str]:
    for words, key, status in TOKEN_REASONS:
        if words in error.message:
            _refused(key)
            title = "join.title_any" if key.startswith("invitation") else "reset.title"
            return _notice(link, title, key, status)
    _refused("link_invalid")
    return _error(link.lang, "link_invalid", 404)


def _notice(link: Link, title: str, key: str, status: int) -> Response[str]:
    text = html.escape(_say(link, key))
    return _html(_document(link.lang or "fr", _say(link, title), f"<p>{text}</p>"), status)


def _refused(reason: str) -> None:
    log.info("page.refused", reason=reason)  # never the token


async def _link(state: State, request: Request[Any, Any, Any]) -> Link:
    """The link's token and network (its language), or a page to answer."""
    _check_rate(state, request)
    token = request.query_params.get("token") or ""
    slug = request.query_params.get("network") or None
    if not token or len(token) > MAX_TOKEN or (slug is not None and len(slug) > 40):
        raise Refused(_error(None, "link_invalid", 404))
    if slug is None:
        return Link(token, None, None, None)
    bus: Bus = state.bus
    try:
        tenant = await bus.request(idc.GetTenant(slug=slug), _context())
    except (e.NotFound, e.InvalidInput, UnicodeEncodeError):
        raise Refused(_error(None, "link_invalid", 404)) from None
    except e.QuartierError as error:
        raise Refused(_unavailable(None, error)) from None
    return Link(token, tenant.slug, locale_of(tenant.locale), tenant.name)


def _field(label: str, name: str, kind: str = "password", value: str = "") -> str:
    esc = html.escape
    extra = ' autocomplete="new-password"' if kind == "password" else ""
    shown = f' value="{esc(value)}"' if value else ""
    return (
        f'<label for="{name}">{esc(label)}</label>'
        f'<input id="{name}" name="{name}" type="{kind}" required{extra}{shown}>'
    )


async def _activities(bus: Bus, lang: str) -> list[tuple[str, str]]:
    found = await bus.request(idc.ListProfessions(), _context())
    labelled = [(p.code, p.label_en if lang == "en" else p.label) for p in found]
    return sorted(labelled, key=lambda item: item[1].casefold())


def _join_form(
    link: Link,
    activities: list[tuple[str, str]],
    problem: str | None = None,
    name: str = "",
    activity: str = "",
) -> str:
    esc = html.escape
    lang = link.lang or "fr"

    def say(key: str, **values: object) -> str:
        return _say(link, key, **values)

    options = [f'<option value="">{esc(say("choose"))}</option>']
    for code, label in activities:
        chosen = " selected" if code == activity else ""
        options.append(f'<option value="{esc(code)}"{chosen}>{esc(label)}</option>')
    body = (
        (f'<p class="error">{esc(problem)}</p>' if problem else "")
        + f'<p>{esc(say("join.intro"))}</p><form method="post">'
        + _field(say("password", min=MIN_PASSWORD), "password")
        + _field(say("password_again"), "password_again")
        + _field(say("display_name"), "display_name", "text", name)
        + f'<label for="activity_code">{esc(say("activity"))}</label>'
        + f'<select id="activity_code" name="activity_code" required>{"".join(options)}</select>'
        + f'<button type="submit">{esc(say("join.button"))}</button></form>'
    )
    heading = say("join.title", network=link.network) if link.network else say("join.title_any")
    return _document(lang, heading, body)


def _reset_form(link: Link, problem: str | None = None) -> str:
    esc = html.escape
    lang = link.lang or "fr"
    body = (
        (f'<p class="error">{esc(problem)}</p>' if problem else "")
        + f'<p>{esc(_say(link, "reset.intro"))}</p><form method="post">'
        + _field(_say(link, "password", min=MIN_PASSWORD), "password")
        + _field(_say(link, "password_again"), "password_again")
        + f'<button type="submit">{esc(_say(link, "reset.button"))}</button></form>'
    )
    return _document(lang, _say(link, "reset.title"), body)


def _problem(link: Link, error: e.InvalidInput) -> str:
    key = f"field.{error.field}"
    if key in TEXTS["fr"]:
        return _say(link, key, min=MIN_PASSWORD, max=MAX_PASSWORD)
    return _say(link, "field.other", message=error.message)


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    values = {}
    for name in ("password", "password_again", "display_name", "activity_code"):
        value = form.get(name)
        values[name] = value if isinstance(value, str) and len(value) <= MAX_FIELD else ""
    return values


def _unavailable(lang: str | None, error: e.QuartierError) -> Response[str]:
    """A failure of the service (never its internals)."""
    if isinstance(error, e.Unavailable):
        return _error(lang, "unavailable", 503)
    if isinstance(error, e.RateLimited):
        return _error(lang, "rate_limited", 429)
    return _error(lang, "internal", 500)


@get("/accept-invitation", include_in_schema=False)
async def invitation_page(state: State, request: Request[Any, Any, Any]) -> Response[str]:
    """The form; changes nothing (the token is checked when it is sent)."""
    try:
        link = await _link(state, request)
    except Refused as refused:
        return refused.response
    try:
        activities = await _activities(state.bus, link.lang or "fr")
    except e.QuartierError as error:
        return _unavailable(link.lang, error)
    return _html(_join_form(link, activities), 200)


@post("/accept-invitation", include_in_schema=False, status_code=200)
async def accept_invitation(state: State, request: Request[Any, Any, Any]) -> Response[str]:
    try:
        link = await _link(state, request)
    except Refused as refused:
        return refused.response
    bus: Bus = state.bus
    values = await _form(request)
    name, activity = values["display_name"], values["activity_code"]

    async def again(problem: str) -> Response[str]:
        activities = await _activities(bus, link.lang or "fr")
        return _html(_join_form(link, activities, problem, name, activity), 400)

    try:
        if values["password"] != values["password_again"]:
            return await again(_say(link, "mismatch"))
        card = idc.CardChanges(display_name=name, activity_code=activity)
        session = await _ask(
            bus,
            idc.AcceptInvitation(token=link.token, password=values["password"], card=card),
            _context(),
        )
    except e.InvalidToken as error:
        return _token_refused(link, error)
    except e.InvalidInput as error:
        return await again(_problem(link, error))
    except e.Conflict:
        _refused("already_member")
        return _notice(link, "join.title_any", "already_member", 409)
    except e.QuartierError as error:
        return _unavailable(link.lang, error)
    log.info("page.invitation_accepted")
    # the page signs nobody in: the session the command opened ends here (or expires)
    with contextlib.suppress(e.QuartierError):
        await bus.request(idc.Logout(refresh_token=session.refresh_token), _context())
    if link.lang is None:  # now the network is known: its language
        try:
            tenant = await bus.request(idc.GetTenant(slug=session.tenant_slug), _context())
            link = Link(link.token, tenant.slug, locale_of(tenant.locale), tenant.name)
        except e.QuartierError:
            pass
    lines = [_say(link, "join.done", slug=session.tenant_slug)]
    if "tenant_admin" in session.roles:
        base = str(request.base_url).rstrip("/")
        lines.append(_say(link, "join.console", url=f"{base}/console/"))
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return _html(_document(link.lang or "fr", _say(link, "join.done_title"), body), 200)


@get("/reset-password", include_in_schema=False)
async def reset_page(state: State, request: Request[Any, Any, Any]) -> Response[str]:
    try:
        link = await _link(state, request)
    except Refused as refused:
        return refused.response
    if link.slug is None:
        _refused("link_invalid")
        return _error(None, "link_invalid", 404)
    return _html(_reset_form(link), 200)


@post("/reset-password", include_in_schema=False, status_code=200)
async def reset_password(state: State, request: Request[Any, Any, Any]) -> Response[str]:
    try:
        link = await _link(state, request)
    except Refused as refused:
        return refused.response
    if link.slug is None:
        _refused("link_invalid")
        return _error(None, "link_invalid", 404)
    values = await _form(request)
    if values["password"] != values["password_again"]:
        return _html(_reset_form(link, _say(link, "mismatch")), 400)
    try:
        await _ask(
            state.bus,
            idc.ResetPassword(
                tenant_slug=link.slug, token=link.token, new_password=values["password"]
            ),
            _context(),
        )
    except e.InvalidToken as error:
        return _token_refused(link, error)
    except e.InvalidInput as error:
        return _html(_reset_form(link, _problem(link, error)), 400)
    except e.QuartierError as error:
        return _unavailable(link.lang, error)
    log.info("page.password_reset")
    text = html.escape(_say(link, "reset.done", slug=link.slug))
    return _html(_document(link.lang or "fr", _say(link, "reset.title"), f"<p>{text}</p>"), 200)


routes = [invitation_page, accept_invitation, reset_page, reset_password]
