"""Pages that meetups' e-mails link to, served without login, and the
calendar feeds.

* `GET /links/<network slug>/<token>` shows a small page: the meetup (or the
  poll's slot) and the answer its button records. It **changes nothing**
  (mail scanners open links). `POST` to the same address records the answer
  (`AnswerByLink`); a second POST records nothing new.
* `GET /unsubscribe/<network slug>/<token>` shows the page of a reminder's
  unsubscribe link; `POST` to it turns the member's reminders off
  (`UnsubscribeByLink`). It is also the URL of the reminders'
  `List-Unsubscribe` header: a mail provider's RFC 8058 one-click POST
  (`List-Unsubscribe=One-Click`) lands here and gets a 200.
* `GET /calendar/<token>.ics`: the iCalendar feed behind a secret address
  (`GetCalendar`), `text/calendar`.

The token is the credential: no cookie, no session, so a forged cross-site
POST can do nothing its sender could not do with the link itself (CSRF has
nothing to ride on). The slug names the network whose language the page
speaks; a token of another network is refused there like an invalid one. An
invalid, expired, revoked or refused token gets a clear page with a 4xx
status, never a traceback. Pages are small HTML with one inline stylesheet
allowed by its hash in the Content-Security-Policy, no script, no
third-party asset, not cacheable, not framable, and sent with
`Referrer-Policy: no-referrer` (the token is in the URL).
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Response

from gateway.budgets import Budgets, client_address
from gateway.budgets import Refused as OverBudget
from services.events import contract as ec
from services.identity import contract as idc
from services.runtime import errors as e
from services.runtime.bus import Bus
from services.runtime.i18n import format_local, locale_of, t
from services.runtime.logging import get_logger
from services.runtime.messages import new_correlation_id
from services.runtime.tenancy import RequestContext

log = get_logger("quartier.gateway.pages")

MAX_TOKEN = 2000
MAX_SLUG = 40

STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f5f2;color:#1d1d1b}"
    "main{max-width:32rem;margin:3rem auto;padding:1.5rem 2rem;background:#fff;"
    "border-radius:.5rem;box-shadow:0 1px 3px #0002}"
    "h1{font-size:1.3rem;margin:0 0 1rem}p{margin:.5rem 0}.muted{color:#5c5c57}"
    "button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:.4rem;"
    "background:#1f5f8b;color:#fff;cursor:pointer;margin-top:1rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Quartier",
        "when": "Quand : {when} ({zone})",
        "slot": "Créneau : {when} ({zone})",
        "where": "Où : {venue}",
        "current": "Votre réponse actuelle : {answer}.",
        "current_vote": "Votre vote actuel pour ce créneau : {answer}.",
        "no_answer": "Vous n'avez pas encore répondu.",
        "confirm": "Confirmez d'un clic, sans connexion :",
        "button.rsvp.yes": "Oui, je viens",
        "button.rsvp.maybe": "Peut-être",
        "button.rsvp.no": "Non, je ne viens pas",
        "button.visitor.yes": "Oui, je viens",
        "button.visitor.no": "Non, pas cette fois",
        "button.vote.yes": "Oui, ce créneau me convient",
        "button.vote.if_need_be": "Si besoin",
        "button.vote.no": "Non, ce créneau ne me convient pas",
        "answer.yes": "oui",
        "answer.maybe": "peut-être",
        "answer.no": "non",
        "answer.if_need_be": "si besoin",
        "done.rsvp.yes": "C'est noté : vous venez.",
        "done.rsvp.maybe": "C'est noté : peut-être.",
        "done.rsvp.no": "C'est noté : vous ne venez pas.",
        "done.visitor.yes": "Merci, c'est noté : vous venez.",
        "done.visitor.no": "Merci, c'est noté : pas cette fois.",
        "done.vote": "C'est noté : « {answer} » pour ce créneau.",
        "seated": "Une place vous est réservée.",
        "waiting": "La rencontre est complète : vous êtes sur la liste d'attente, "
        "et serez prévenu·e par e-mail si une place se libère.",
        "change": "Vous pouvez changer d'avis avec les autres liens de l'e-mail.",
        "unsubscribe.ask": "Ne plus recevoir de rappels avant les rencontres ?",
        "unsubscribe.button": "Ne plus recevoir de rappels",
        "unsubscribe.already": "Vous ne recevez déjà plus de rappels.",
        "unsubscribe.done": "C'est fait : vous ne recevrez plus de rappels avant les rencontres. "
        "Vous pouvez les réactiver dans l'application.",
        "unsubscribe.note": "Les annonces des rencontres de vos clubs vous parviendront toujours.",
        "error": "Ce lien ne peut pas servir",
        "link_invalid": "Ce lien n'est pas valide. Vérifiez qu'il a été copié en entier.",
        "link_expired": "Ce lien a expiré.",
        "link_revoked": "Ce lien a été remplacé : utilisez celui d'un e-mail plus récent.",
        "link_not_member": "Ce lien n'est plus valable : vous n'êtes plus membre de ce club.",
        "closed": "Cette rencontre est passée ou annulée, ou ce sondage est clos.",
        "answers_closed": "Les réponses ne sont plus possibles : {reason}",
        "not_found": "Ce que ce lien désigne n'existe plus.",
        "bad_request": "Cette demande n'est pas valide.",
        "unavailable": "Le service ne répond pas pour le moment : réessayez dans quelques minutes.",
        "rate_limited": "Trop de demandes : réessayez dans une minute.",
        "internal": "Une erreur s'est produite de notre côté. Réessayez plus tard.",
    },
    "en": {
        "title": "Quartier",
        "when": "When: {when} ({zone})",
        "slot": "Slot: {when} ({zone})",
        "where": "Where: {venue}",
        "current": "Your answer so far: {answer}.",
        "current_vote": "Your vote for this slot so far: {answer}.",
        "no_answer": "You have not answered yet.",
        "confirm": "Confirm in one click, no sign-in needed:",
        "button.rsvp.yes": "Yes, I'll come",
        "button.rsvp.maybe": "Maybe",
        "button.rsvp.no": "No, I won't come",
        "button.visitor.yes": "Yes, I'll come",
        "button.visitor.no": "No, not this time",
        "button.vote.yes": "Yes, this slot suits me",
        "button.vote.if_need_be": "If need be",
        "button.vote.no": "No, this slot does not suit me",
        "answer.yes": "yes",
        "answer.maybe": "maybe",
        "answer.no": "no",
        "answer.if_need_be": "if need be",
        "done.rsvp.yes": "Noted: you are coming.",
        "done.rsvp.maybe": "Noted: maybe.",
        "done.rsvp.no": "Noted: you are not coming.",
        "done.visitor.yes": "Thank you, noted: you are coming.",
        "done.visitor.no": "Thank you, noted: not this time.",
        "done.vote": "Noted: “{answer}” for this slot.",
        "seated": "A seat is yours.",
        "waiting": "The meetup is full: you are on the waiting list, "
        "and will be told by e-mail if a seat comes free.",
        "change": "You can change your mind with the other links of the e-mail.",
        "unsubscribe.ask": "Stop receiving reminders before meetups?",
        "unsubscribe.button": "Stop reminders",
        "unsubscribe.already": "You already receive no reminders.",
        "unsubscribe.done": "Done: you will receive no more reminders before meetups. "
        "You can turn them on again in the app.",
        "unsubscribe.note": "You will still receive the announcements of your clubs' meetups.",
        "error": "This link cannot be used",
        "link_invalid": "This link is not valid. Check that it was copied whole.",
        "link_expired": "This link has expired.",
        "link_revoked": "This link has been replaced: use the one in a more recent e-mail.",
        "link_not_member": "This link no longer works: you are no longer a member of this club.",
        "closed": "This meetup is over or cancelled, or this poll is closed.",
        "answers_closed": "Answers are no longer possible: {reason}",
        "not_found": "What this link points to no longer exists.",
        "bad_request": "This request is not valid.",
        "unavailable": "The service is not answering at the moment: try again in a few minutes.",
        "rate_limited": "Too many requests: try again in a minute.",
        "internal": "Something went wrong on our side. Try again later.",
    },
}
STATUS_OF_REASON = {
    "link_invalid": 404,
    "link_expired": 410,
    "link_revoked": 410,
    "link_not_member": 403,
    "closed": 410,
}
CLOSED_RULES = {
    "fr": {
        "rsvp_deadline": "la date limite est passée.",
        "meetup_cancelled": "la rencontre est annulée.",
        "meetup_closed": "la rencontre est terminée.",
        "poll_closed": "le sondage est clos.",
    },
    "en": {
        "rsvp_deadline": "the deadline has passed.",
        "meetup_cancelled": "the meetup is cancelled.",
        "meetup_closed": "the meetup is over.",
        "poll_closed": "the poll is closed.",
    },
}


def _t(lang: str, key: str, **values: object) -> str:
    return TEXTS[lang][key].format(**values)


def _page(lang: str, heading: str, paragraphs: list[str], button: str | None = None) -> str:
    """A whole page; every argument is plain text (escaped here)."""
    esc = html.escape
    body = "".join(f"<p>{esc(p)}</p>" for p in paragraphs if p)
    form = (
        f'<form method="post"><button type="submit">{esc(button)}</button></form>' if button else ""
    )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{esc(heading)} · Quartier</title>'
        f"<style>{STYLE}</style></head><body><main><h1>{esc(heading)}</h1>{body}{form}"
        "</main></body></html>"
    )


def _html(content: str, status: int) -> Response[str]:
    return Response(
        content,
        status_code=status,
        media_type="text/html",
        headers=dict(PAGE_HEADERS),
    )


def _error(lang: str | None, key: str, status: int, **values: object) -> Response[str]:
    if lang is None:  # no network known: both languages
        texts = [_t("fr", key, **values), _t("en", key, **values)]
        heading = f"{_t('fr', 'error')} / {_t('en', 'error')}"
        return _html(_page("fr", heading, texts), status)
    return _html(_page(lang, _t(lang, "error"), [_t(lang, key, **values)]), status)


@dataclass(frozen=True)
class Network:
    tenant_id: str
    locale: str


class Refused(Exception):
    """A page to answer instead (an error page, already made)."""

    def __init__(self, response: Response[str]):
        self.response = response


def _context(tenant_id: str | None = None) -> RequestContext:
    return RequestContext(tenant_id=tenant_id, correlation_id=new_correlation_id())


def _client(state: State, request: Request[Any, Any, Any]) -> str:
    """The client's address (`X-Forwarded-For` only from a trusted proxy)."""
    return client_address(
        request.client.host if request.client else "local",
        request.headers.get("x-forwarded-for"),
        state.settings.trusted_proxies,
    )


def _over_budget(state: State, request: Request[Any, Any, Any]) -> int | None:
    """Spend one request of the client address's budget (`gateway.budgets`,
    the one its anonymous GraphQL requests spend): None, or the seconds to
    wait (`Retry-After`)."""
    budgets: Budgets = state.budgets
    try:
        budgets.request(f"address:{_client(state, request)}", None)
    except OverBudget as refused:
        return refused.retry_after
    return None


def _check_rate(state: State, request: Request[Any, Any, Any]) -> None:
    wait = _over_budget(state, request)
    if wait is not None:
        page = _error(None, "rate_limited", 429)
        page.headers["Retry-After"] = str(wait)
        raise Refused(page)


async def _network(state: State, request: Request[Any, Any, Any], slug: str, token: str) -> Network:
    _check_rate(state, request)
    if not slug or len(slug) > MAX_SLUG or not token or len(token) > MAX_TOKEN:
        raise Refused(_error(None, "link_invalid", 404))
    bus: Bus = state.bus
    try:
        tenant = await bus.request(idc.GetTenant(slug=slug), _context())
    except (e.NotFound, e.InvalidInput):
        raise Refused(_error(None, "link_invalid", 404)) from None
    except e.QuartierError as error:
        raise Refused(_failure(None, error)) from None
    return Network(tenant.tenant_id, locale_of(tenant.locale))


def _failure(lang: str | None, error: e.QuartierError) -> Response[str]:
    """The page of a service's refusal (never its internals)."""
    if isinstance(error, e.InvalidToken):
        reason = error.rule if error.rule in STATUS_OF_REASON else "link_invalid"
        return _error(lang, reason, STATUS_OF_REASON[reason])
    if isinstance(error, e.RuleViolation):
        rules = CLOSED_RULES[lang or "fr"]
        why = rules.get(error.rule or "", "")
        return _error(lang, "answers_closed", 409, reason=why or error.message)
    if isinstance(error, e.NotFound):
        return _error(lang, "not_found", 404)
    if isinstance(error, e.Unavailable):
        return _error(lang, "unavailable", 503)
    if isinstance(error, e.InvalidInput | e.Conflict | e.Forbidden | e.Unauthenticated):
        return _error(lang, "bad_request", 400)
    return _error(lang, "internal", 500)


def _when_lines(lang: str, info: ec.LinkInfo) -> list[str]:
    lines = []
    if info.local_start is not None:
        key = "slot" if info.kind == "vote" else "when"
        lines.append(
            _t(lang, key, when=format_local(info.local_start, lang), zone=info.timezone or "")
        )
    if info.venue is not None:
        venue = ", ".join(p for p in (info.venue.name, info.venue.address) if p)
        if venue:
            lines.append(_t(lang, "where", venue=venue))
    return lines


def _heading(info: ec.LinkInfo) -> str:
    return f"{info.hub_name} — {info.title}" if info.hub_name else info.title


def _answer_label(lang: str, answer: str | None) -> str:
    return TEXTS[lang].get(f"answer.{answer}", answer or "")


def _link_page(lang: str, info: ec.LinkInfo) -> Response[str]:
    lines = _when_lines(lang, info)
    if info.kind in ("rsvp", "vote"):
        if info.current:
            key = "current_vote" if info.kind == "vote" else "current"
            lines.append(_t(lang, key, answer=_answer_label(lang, info.current)))
        elif info.kind == "rsvp":
            lines.append(_t(lang, "no_answer"))
    lines.append(_t(lang, "confirm"))
    button = TEXTS[lang].get(f"button.{info.kind}.{info.answer}", info.answer or "")
    return _html(_page(lang, _heading(info), lines, button), 200)


def _answered_page(lang: str, info: ec.LinkInfo, done: ec.LinkAnswered) -> Response[str]:
    lines = _when_lines(lang, info)
    if done.kind == "vote":
        lines.insert(0, _t(lang, "done.vote", answer=_answer_label(lang, done.answer)))
    else:
        lines.insert(0, _t(lang, f"done.{done.kind}.{done.answer}"))
        if done.kind == "rsvp" and done.seat in ("seated", "waiting"):
            lines.insert(1, _t(lang, done.seat))
    lines.append(_t(lang, "change"))
    return _html(_page(lang, _heading(info), lines), 200)


async def _ask(bus: Bus, message: Any, ctx: RequestContext) -> Any:
    try:
        return await bus.request(message, ctx)
    except UnicodeEncodeError:  # a lone surrogate in the path: not a token of ours
        raise e.InvalidToken(t("this link is not valid"), rule="link_invalid") from None


LINK_PATH = "/links/{slug:str}/{token:str}"
UNSUBSCRIBE_PATH = "/unsubscribe/{slug:str}/{token:str}"


@get(LINK_PATH, include_in_schema=False)
async def link_page(
    state: State, request: Request[Any, Any, Any], slug: FromPath[str], token: FromPath[str]
) -> Response[str]:
    """What the link's button records; changes nothing."""
    try:
        network = await _network(state, request, slug, token)
    except Refused as refused:
        return refused.response
    lang = network.locale
    try:
        info = await _ask(state.bus, ec.DescribeLink(token=token), _context(network.tenant_id))
    except e.QuartierError as error:
        return _failure(lang, error)
    if not info.valid:
        reason = info.reason_code if info.reason_code in STATUS_OF_REASON else "link_invalid"
        _refused(reason)
        return _error(lang, reason, STATUS_OF_REASON[reason])
    return _link_page(lang, info)


@post(LINK_PATH, include_in_schema=False, status_code=200)
async def link_answer(
    state: State, request: Request[Any, Any, Any], slug: FromPath[str], token: FromPath[str]
) -> Response[str]:
    """Record the link's answer (again: nothing more changes)."""
    try:
        network = await _network(state, request, slug, token)
    except Refused as refused:
        return refused.response
    lang = network.locale
    ctx = _context(network.tenant_id)
    try:
        done = await _ask(state.bus, ec.AnswerByLink(token=token), ctx)
        info = await _ask(state.bus, ec.DescribeLink(token=token), ctx)
    except e.QuartierError as error:
        _refused(error.rule or error.code)
        return _failure(lang, error)
    log.info("page.answered", kind=done.kind)
    return _answered_page(lang, info, done)


@get(UNSUBSCRIBE_PATH, include_in_schema=False)
async def unsubscribe_page(
    state: State, request: Request[Any, Any, Any], slug: FromPath[str], token: FromPath[str]
) -> Response[str]:
    try:
        network = await _network(state, request, slug, token)
    except Refused as refused:
        return refused.response
    lang = network.locale
    try:
        info = await _ask(
            state.bus, ec.DescribeUnsubscribeLink(token=token), _context(network.tenant_id)
        )
    except e.QuartierError as error:
        return _failure(lang, error)
    if not info.valid:
        reason = info.reason_code if info.reason_code in STATUS_OF_REASON else "link_invalid"
        _refused(reason)
        return _error(lang, reason, STATUS_OF_REASON[reason])
    if info.reminders is False:
        return _html(_page(lang, _t(lang, "title"), [_t(lang, "unsubscribe.already")]), 200)
    lines = [_t(lang, "unsubscribe.ask"), _t(lang, "unsubscribe.note")]
    return _html(_page(lang, _t(lang, "title"), lines, _t(lang, "unsubscribe.button")), 200)


@post(UNSUBSCRIBE_PATH, include_in_schema=False, status_code=200)
async def unsubscribe(
    state: State, request: Request[Any, Any, Any], slug: FromPath[str], token: FromPath[str]
) -> Response[str]:
    """The page's button, or a mail provider's RFC 8058 one-click POST."""
    try:
        network = await _network(state, request, slug, token)
    except Refused as refused:
        return refused.response
    lang = network.locale
    try:
        await _ask(state.bus, ec.UnsubscribeByLink(token=token), _context(network.tenant_id))
    except e.QuartierError as error:
        _refused(error.rule or error.code)
        return _failure(lang, error)
    log.info("page.unsubscribed")
    lines = [_t(lang, "unsubscribe.done"), _t(lang, "unsubscribe.note")]
    return _html(_page(lang, _t(lang, "title"), lines), 200)


CALENDAR_HEADERS = {
    "Cache-Control": "private, no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": 'inline; filename="quartier.ics"',
}


@get("/calendar/{name:str}", include_in_schema=False)
async def calendar_feed(
    state: State, request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[str]:
    """`/calendar/<token>.ics`: the feed behind a secret address."""
    plain = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    wait = _over_budget(state, request)
    if wait is not None:
        return Response(
            "Too many requests\n",
            status_code=429,
            media_type="text/plain",
            headers={**plain, "Retry-After": str(wait)},
        )
    token = name.removesuffix(".ics")
    if token == name or not token or len(token) > MAX_TOKEN:
        return Response("Not found\n", status_code=404, media_type="text/plain", headers=plain)
    try:
        found = await _ask(state.bus, ec.GetCalendar(token=token), _context())
    except (e.InvalidToken, e.NotFound):
        _refused("calendar_invalid")
        return Response(
            "This calendar address is not valid (it may have been renewed).\n",
            status_code=404,
            media_type="text/plain",
            headers=plain,
        )
    except e.Unavailable:
        return Response(
            "Try again later\n", status_code=503, media_type="text/plain", headers=plain
        )
    except e.QuartierError:
        return Response("Bad request\n", status_code=400, media_type="text/plain", headers=plain)
    return Response(
        found.ics,
        status_code=200,
        media_type="text/calendar",
        headers=dict(CALENDAR_HEADERS),
    )


def _refused(reason: str) -> None:
    log.info("page.refused", reason=reason)  # never the token


routes = [link_page, link_answer, unsubscribe_page, unsubscribe, calendar_feed]
