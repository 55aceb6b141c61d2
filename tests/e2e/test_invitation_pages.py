"""The pages identity's e-mails link to (gateway/account_pages.py), over real
HTTP as a browser without script uses them: the invitation's link opens a
form (GET changes nothing), the form accepts it (the member then signs in),
a refused field shows the form again with what to fix, a used or made-up
link gets a clear 4xx page, all in the network's language; the same for the
password-reset link. The token is never logged.

One system for the module (`shared_system`); each test opens its own network."""

from __future__ import annotations

import email
import re
from urllib.parse import urlsplit

import pytest

from gateway.account_pages import HEADERS
from services.identity.outbox import pending_count
from tests.e2e.conftest import Network, System, invite, join, mutate, open_network
from tests.support.identity import PASSWORD
from tests.support.logs import captured_logs
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.shared_system]

NEW_PASSWORD = "un mot de passe tout neuf"
LOGIN = (
    "mutation($input: LoginInput!) { login(input: $input) { __typename"
    " ... on AuthPayload { member { memberId } } } }"
)
REQUEST_RESET = (
    "mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) {"
    " __typename } }"
)


def mailed_link(system: System, to: str, path: str) -> str:
    """The path and query of the latest link to `path` mailed to `to`."""
    found = ""
    for file in sorted(system.settings.mail_dir.glob("*.eml")):
        message = email.message_from_bytes(file.read_bytes())
        if str(message["To"]) != to:
            continue
        body = message.get_payload(decode=True)
        if isinstance(body, bytes):
            match = re.search(rf"\S+{path}\?token=\S+", body.decode())
            if match:
                parts = urlsplit(match.group(0))
                found = f"{parts.path}?{parts.query}"
    assert found, f"no {path} link mailed to {to}"
    return found


async def sign_in(system: System, net: Network, address: str, password: str) -> str:
    answer = await system.gql(
        LOGIN, {"input": {"tenant": net.slug, "email": address, "password": password}}
    )
    return str(answer["data"]["login"]["__typename"])


def form(password: str, again: str | None = None, **card: str) -> dict[str, str]:
    return {"password": password, "password_again": again or password, **card}


async def test_an_invitation_is_accepted_on_its_page(system: System) -> None:
    net = await open_network(system, "pole-pages")
    address = f"zoe@{net.slug}.example"
    await invite(system, net, address)
    link = mailed_link(system, address, "/accept-invitation")
    assert f"&network={net.slug}" in link
    token = link.split("token=", 1)[1].split("&")[0]
    client = system.client
    with captured_logs() as logs:
        shown = await client.get(link)
        assert shown.status_code == 200, shown.text
        assert shown.headers["content-security-policy"] == HEADERS["Content-Security-Policy"]
        assert shown.headers["referrer-policy"] == "no-referrer"
        assert shown.headers["cache-control"] == "no-store"
        page = shown.text
        assert '<html lang="fr">' in page and "Rejoindre Network pole-pages" in page
        assert 'name="password"' in page and 'name="display_name"' in page
        assert '<option value="plumber">' in page and "<script" not in page
        assert (await client.get(link)).status_code == 200  # again: GET changes nothing

        # refused fields: the form again, in French, the name kept, nothing changed
        mismatch = await client.post(
            link, data=form(NEW_PASSWORD, "autre chose encore", display_name="Zoé")
        )
        assert mismatch.status_code == 400
        assert "Les deux mots de passe ne sont pas les mêmes." in mismatch.text
        short = await client.post(
            link, data=form("court", display_name="Zoé", activity_code="plumber")
        )
        assert short.status_code == 400
        assert "Le mot de passe doit compter de 10 à 256 caractères" in short.text
        assert 'value="Zoé"' in short.text and '<option value="plumber" selected>' in short.text
        no_trade = await client.post(link, data=form(NEW_PASSWORD, display_name="Zoé"))
        assert no_trade.status_code == 400
        assert "Choisissez votre activité dans la liste." in no_trade.text
        assert await sign_in(system, net, address, NEW_PASSWORD) == "InvalidCredentials"

        accepted = await client.post(
            link, data=form(NEW_PASSWORD, display_name="Zoé", activity_code="plumber")
        )
        assert accepted.status_code == 200, accepted.text
        assert "Bienvenue" in accepted.text and f"« {net.slug} »" in accepted.text
        assert await sign_in(system, net, address, NEW_PASSWORD) == "AuthPayload"

        # used: a clear page, not the form
        again = await client.post(
            link, data=form(NEW_PASSWORD, display_name="Zoé", activity_code="plumber")
        )
        assert again.status_code == 410
        assert "Cette invitation a déjà servi" in again.text and "<form" not in again.text
        made_up = await client.post(
            link.replace(token, token[:-4] + "AAAA"),
            data=form(NEW_PASSWORD, display_name="Eve", activity_code="plumber"),
        )
        assert made_up.status_code == 404 and "pas valide" in made_up.text
        unknown_network = await client.get(link.replace(net.slug, "no-such-network"))
        assert unknown_network.status_code == 404
    assert logs and token not in repr(logs)
    secret = token.split(".", 1)[1]
    assert secret not in repr(logs)


async def test_an_old_link_without_its_network_speaks_both_languages(system: System) -> None:
    net = await open_network(system, "pole-bilingual")
    address = f"yann@{net.slug}.example"
    await invite(system, net, address)
    link = mailed_link(system, address, "/accept-invitation").split("&network=")[0]
    shown = await system.client.get(link)
    assert shown.status_code == 200
    assert "Rejoindre le réseau / Join the network" in shown.text
    accepted = await system.client.post(
        link, data=form(NEW_PASSWORD, display_name="Yann", activity_code="plumber")
    )
    assert accepted.status_code == 200
    assert "Bienvenue" in accepted.text  # the network is known once accepted: French


async def test_a_password_is_reset_on_its_page(system: System) -> None:
    net = await open_network(system, "pole-reset")
    member = await join(system, net, f"gus@{net.slug}.example", "Gus")
    answer = await system.gql(REQUEST_RESET, {"input": {"tenant": net.slug, "email": member.email}})
    assert answer["data"]["requestPasswordReset"]["__typename"] == "PasswordResetRequested"
    engine = system.hosts["identity"].context["engine"]
    await eventually(lambda: pending_count(engine) == 0)
    link = mailed_link(system, member.email, "/reset-password")
    assert f"&network={net.slug}" in link
    client = system.client
    shown = await client.get(link)
    assert shown.status_code == 200 and "Nouveau mot de passe" in shown.text
    short = await client.post(link, data=form("court"))
    assert short.status_code == 400 and "de 10 à 256 caractères" in short.text
    assert await sign_in(system, net, member.email, PASSWORD) == "AuthPayload"
    done = await client.post(link, data=form(NEW_PASSWORD))
    assert done.status_code == 200 and "votre mot de passe est changé" in done.text
    assert await sign_in(system, net, member.email, NEW_PASSWORD) == "AuthPayload"
    assert await sign_in(system, net, member.email, PASSWORD) == "InvalidCredentials"
    used = await client.post(link, data=form("encore un autre mot de passe"))
    assert used.status_code == 410 and "Ce lien a déjà servi" in used.text
    without_network = await client.get(link.split("&network=")[0])
    assert without_network.status_code == 404


async def test_an_english_network_s_page_speaks_english(system: System) -> None:
    net = await open_network(system, "pole-english")
    changed = await mutate(system, "setTenantLocale", {"locale": "EN"}, net.admin.access)
    assert changed["__typename"] == "TenantLocaleSet", changed
    address = f"ann@{net.slug}.example"
    await invite(system, net, address)
    link = mailed_link(system, address, "/accept-invitation")
    shown = await system.client.get(link)
    assert '<html lang="en">' in shown.text and "Join Network pole-english" in shown.text
    short = await system.client.post(
        link, data=form("short", display_name="Ann", activity_code="plumber")
    )
    assert short.status_code == 400
    assert "A password has 10 to 256 characters" in short.text
