"""The admin console in a real browser (Debian's chromium, driven by
Playwright) against one `quartier up --demo` system for the module: how it
is served; signing in (and a wrong password, in French); a member who sees
how many objections a nomination has, not what they say; approving the
pending nomination; changing a rule and seeing it in the history; what a
member who is no admin sees (and the data page saying it is the admins');
the sole admin not offered for erasure; the demo's lights in every colour;
taking attendance on a phone; closing a meetup (refused without the next
date, done with it); and axe-core's accessibility check on every page.

The tests run in file order on the shared demo network: the admission and
the rule change come first; the attendance and the close move the services'
clock to the next lunch (`quartier clock`), so they come last, then the
accessibility check."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import expect

from infra.demo import ADMIN_EMAIL, SLUG
from infra.demo import OBJECTION as DEMO_OBJECTION
from tests.browser.system import LAPTOP, PHONE, DemoSystem, sign_in

LEA = "Léa Fontaine"
OBJECTION = DEMO_OBJECTION[1]
VOLTAIRE = "Cercle Voltaire"

HUBS_QUERY = "{ hubs { id name rulesVersion rules { objectionWindowDays } } }"
MEMBERS_QUERY = """query M($id: ID!) { hub(id: $id) {
  members(first: 50) { edges { node { member { displayName } } } } } }"""
LUNCH_QUERY = """{ hubs { name meetups(when: UPCOMING, first: 3) { edges { node {
  id title startsAt series { nextLocalStart } attendance { status member { displayName } } } } } } }"""


def voltaire(demo: DemoSystem) -> dict[str, Any]:
    hubs = demo.graphql(HUBS_QUERY, demo.token())["hubs"]
    (hub,) = [h for h in hubs if h["name"] == VOLTAIRE]
    return hub


def voltaire_members(demo: DemoSystem) -> list[str]:
    hub = demo.graphql(MEMBERS_QUERY, demo.token(), id=voltaire(demo)["id"])["hub"]
    return [e["node"]["member"]["displayName"] for e in hub["members"]["edges"]]


def next_lunch(demo: DemoSystem) -> dict[str, Any]:
    hubs = demo.graphql(LUNCH_QUERY, demo.token())["hubs"]
    lunches = [
        e["node"]
        for h in hubs
        if h["name"] == VOLTAIRE
        for e in h["meetups"]["edges"]
        if e["node"]["title"] == "Déjeuner du jeudi"
    ]
    return lunches[0]


# -- how it is served ----------------------------------------------------------------


def test_the_console_is_served_with_its_types_caching_and_policy(demo: DemoSystem) -> None:
    page = httpx.get(demo.console_url)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    again = httpx.get(demo.console_url, headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert httpx.get(f"{demo.base_url}/console").text == page.text

    script = httpx.get(f"{demo.base_url}/console/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    vendored = re.search(r'"\./vendor/([^"]+)"', script.text)
    assert vendored is not None
    library = httpx.get(f"{demo.base_url}/console/vendor/{vendored.group(1)}")
    assert library.status_code == 200
    assert "immutable" in library.headers["cache-control"]
    css = httpx.get(f"{demo.base_url}/console/style.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"

    for missing in ("nope.js", "..%2F..%2Fpyproject.toml", "__init__.py", "static/app.js"):
        refused = httpx.get(f"{demo.base_url}/console/{missing}")
        assert refused.status_code == 404, missing
        assert "content-security-policy" in refused.headers


# -- signing in ------------------------------------------------------------------------


def test_sign_in_speaks_the_networks_language_and_keeps_no_token_in_sight(
    page: Any, demo: DemoSystem
) -> None:
    page.goto(demo.console_url)
    page.locator("#tenant").fill(f" {SLUG.upper()} ")  # as typed on a phone: tidied
    page.locator("#email").fill(ADMIN_EMAIL)
    page.locator("#password").fill("not-the-password")
    page.locator("form button[type=submit]").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Adresse e-mail ou mot de passe incorrect")
    expect(page.locator(".network-name")).to_have_text("Pôle des réseaux de proximité — Paris 11e")
    assert page.locator("#password").input_value() == "not-the-password"

    sign_in(page, demo.base_url)
    expect(page.locator("header.top")).to_contain_text("Claire Martin")
    expect(page.get_by_role("navigation")).to_contain_text("Admissions")
    assert page.evaluate("document.documentElement.lang") == "fr"
    refresh = page.evaluate("sessionStorage.getItem('quartier.console.refresh')")
    assert refresh and refresh not in page.content()
    assert page.evaluate("Object.keys(localStorage).length") == 0
    assert page.context.cookies() == []

    # a reload keeps the session (the refresh token is traded for new tokens)
    page.reload()
    expect(page.locator("header.top")).to_contain_text("Claire Martin")
    assert page.evaluate("sessionStorage.getItem('quartier.console.refresh')") != refresh

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.locator("#tenant")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('quartier.console.refresh')") is None


def test_requests_say_the_consoles_language(browser: Any, demo: DemoSystem) -> None:
    """Every GraphQL request carries `Accept-Language: <the console's
    language>` (the API words its refusals in it): the browser's before the
    network is known (English here), then the network's (French)."""
    context = browser.new_context(locale="en-US", viewport=LAPTOP)
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        sent: list[Any] = []
        page.on("request", lambda r: sent.append(r) if r.url.endswith("/graphql") else None)
        page.goto(demo.console_url)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        sign_in(page, demo.base_url)
        page.locator("nav a[href='#/results']").click()
        page.locator("table.lights-table tbody tr").first.wait_for()
        langs = [r.all_headers().get("accept-language") for r in sent]
        assert len(langs) > 3 and langs[0] == "en", langs  # the network's slug looked up
        assert langs[-1] == "fr", langs
        first_fr = langs.index("fr")
        assert set(langs[:first_fr]) == {"en"} and set(langs[first_fr:]) == {"fr"}, langs
        logins = [r for r in sent if "mutation Login" in (r.post_data or "")]
        assert logins and logins[0].all_headers()["accept-language"] == "fr"
    finally:
        context.close()


def test_a_forgotten_password_is_asked_from_the_sign_in(page: Any, demo: DemoSystem) -> None:
    page.goto(demo.console_url)
    page.locator("#tenant").fill(SLUG)
    page.locator("#tenant").press("Tab")  # the network's language
    page.locator(".network-name").wait_for()
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    expect(page.get_by_label("Réseau (identifiant)")).to_have_value(SLUG)
    page.get_by_label("Adresse e-mail").fill("nobody@pole-11e.example")
    page.get_by_role("button", name="Envoyer le lien").click()
    # answered alike whether or not the address has an account
    expect(page.get_by_role("status")).to_contain_text("si un compte correspond")
    page.get_by_role("link", name="Retour à la connexion").click()
    expect(page.get_by_role("button", name="Se connecter")).to_be_visible()


# -- admissions ----------------------------------------------------------------------


def test_a_member_sees_how_many_objections_not_what_they_say(page: Any, demo: DemoSystem) -> None:
    sign_in(page, demo.base_url, email="emilie.roux@pole-11e.example")
    page.get_by_role("link", name="Admissions").click()
    card = page.locator("article.nomination", has_text=LEA)
    expect(card).to_contain_text("Objections (1)")
    # the count and what follows agree: the content is the hub's admins'
    expect(card).to_contain_text("Leur contenu n'est montré qu'aux administrateurs du pôle.")
    expect(card).not_to_contain_text("Aucune objection")
    expect(card).not_to_contain_text(OBJECTION)
    expect(card.get_by_role("button", name="Admettre")).to_have_count(0)


def test_approve_the_pending_nomination(page: Any, demo: DemoSystem) -> None:
    sign_in(page, demo.base_url)
    page.get_by_role("link", name="Admissions").click()
    card = page.locator("article.nomination", has_text=LEA)
    expect(card).to_contain_text("Julien Moreau")  # the godparent
    expect(card).to_contain_text("Marc Dubois")  # the objection, with its reason
    expect(card).to_contain_text(OBJECTION)
    expect(card.locator(".countdown")).to_contain_text("il reste ")

    # an objection was raised: the admission asks for a confirmation first
    card.get_by_role("button", name="Admettre").click()
    confirm = card.get_by_role("group", name="Cette candidature a reçu des objections")
    expect(confirm).to_be_visible()
    expect(confirm.get_by_role("button", name="Confirmer l'admission")).to_be_focused()
    confirm.get_by_role("button", name="Annuler").click()
    expect(confirm).to_have_count(0)
    assert LEA not in voltaire_members(demo)
    card.get_by_role("button", name="Admettre").click()
    card.get_by_role("button", name="Confirmer l'admission").click()
    expect(page.get_by_role("status")).to_contain_text("Admis·e.")
    expect(page.locator("article.nomination", has_text=LEA)).to_have_count(0)
    assert LEA in voltaire_members(demo)


NOMINATE = """mutation N($input: NominateCandidateInput!) { nominateCandidate(input: $input) {
  __typename ... on NominationPayload { nomination { id } } ... on Error { code message } } }"""


def test_an_invited_candidate_is_admitted_only_once_joined(page: Any, demo: DemoSystem) -> None:
    """A nomination by e-mail waits for the invitation: no Admit button that
    could only fail, a word saying why; Reject still works."""
    done = demo.graphql(
        NOMINATE,
        demo.token(),
        input={"hubId": voltaire(demo)["id"], "email": "pas.encore@example.org"},
    )["nominateCandidate"]
    assert done["__typename"] == "NominationPayload", done
    sign_in(page, demo.base_url)
    page.goto(f"{demo.console_url}#/admissions?hub={voltaire(demo)['id']}")
    page.reload()
    card = page.locator("article.nomination", has_text="pas encore inscrit")
    expect(card.locator(".awaiting")).to_contain_text("n'a pas encore rejoint le réseau")
    expect(card.get_by_role("button", name="Admettre")).to_have_count(0)
    card.get_by_role("button", name="Refuser").click()
    card.get_by_label("Raison du refus").fill("Finalement pas dans le quartier")
    card.get_by_role("button", name="Refuser").click()
    expect(page.locator("article.nomination", has_text="pas encore inscrit")).to_have_count(0)


def test_admit_past_the_one_per_profession_rule_with_a_reason(page: Any, demo: DemoSystem) -> None:
    """Two graphic designers nominated to the artisans' club; the first is
    admitted; the second is refused by the rule until an admin gives the
    exception's reason."""
    admin = demo.token()
    lucas = demo.token("lucas.bernard@pole-11e.example")
    changed = demo.graphql(
        "mutation C($input: ProfileCardInput!) { updateProfileCard(input: $input) {"
        " __typename ... on Error { message } } }",
        lucas,
        input={"activityCode": "graphic-designer"},
    )
    assert changed["updateProfileCard"]["__typename"] == "ProfileCardUpdated", changed
    hubs = demo.graphql(
        "{ hubs { id name } members(first: 50) { edges { node { id displayName } } } }", admin
    )
    (artisans,) = [h["id"] for h in hubs["hubs"] if h["name"] != VOLTAIRE]
    people = {e["node"]["displayName"]: e["node"]["id"] for e in hubs["members"]["edges"]}
    nominations = {}
    for name in ("Amélie Petit", "Lucas Bernard"):
        done = demo.graphql(
            NOMINATE, admin, input={"hubId": artisans, "candidateId": people[name]}
        )["nominateCandidate"]
        assert done["__typename"] == "NominationPayload", done
        nominations[name] = done["nomination"]["id"]
    admitted = demo.graphql(
        "mutation A($input: AdmitCandidateInput!) { admitCandidate(input: $input) { __typename } }",
        admin,
        input={"hubId": artisans, "nominationId": nominations["Amélie Petit"]},
    )
    assert admitted["admitCandidate"]["__typename"] == "NominationPayload"

    sign_in(page, demo.base_url)
    page.goto(f"{demo.console_url}#/admissions?hub={artisans}")
    page.reload()
    card = page.locator("article.nomination", has_text="Lucas Bernard")
    card.get_by_role("button", name="Admettre").click()
    expect(card.get_by_role("alert")).to_contain_text("La règle « un par métier » s'applique")
    card.get_by_label("Raison de l'exception").fill("Photographe avant tout : pas de concurrence")
    card.get_by_role("button", name="Admettre par exception").click()
    expect(page.get_by_role("status")).to_contain_text("Admis·e.")
    members = demo.graphql(
        "query H($id: ID!) { hub(id: $id) { members(first: 50) { edges { node {"
        " exceptionReason member { displayName } } } } } }",
        admin,
        id=artisans,
    )["hub"]["members"]["edges"]
    reasons = {e["node"]["member"]["displayName"]: e["node"]["exceptionReason"] for e in members}
    assert reasons["Lucas Bernard"] == "Photographe avant tout : pas de concurrence"


# -- hubs ------------------------------------------------------------------------------


def test_change_a_rule_and_see_it_in_the_history(page: Any, demo: DemoSystem) -> None:
    before = voltaire(demo)
    assert before["rules"]["objectionWindowDays"] == 7
    sign_in(page, demo.base_url)
    page.get_by_role("link", name="Pôles").click()
    expect(page.get_by_role("img", name=re.compile("1,5 km"))).to_be_visible()  # the area
    page.get_by_label("Fenêtre d'objection (jours)").fill("10")
    page.get_by_label("Raison").fill("Plus de temps pour se rencontrer")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_contain_text("Nouvelle version des règles")

    newest = page.locator(f"li.version[data-version='{before['rulesVersion'] + 1}']")
    expect(newest).to_contain_text("Claire Martin")
    expect(newest).to_contain_text("Plus de temps pour se rencontrer")
    expect(newest.locator(".diff li")).to_have_count(1)
    expect(newest.locator(".diff li")).to_contain_text("Fenêtre d'objection (jours) : 7 → 10")
    after = voltaire(demo)
    assert after["rulesVersion"] == before["rulesVersion"] + 1
    assert after["rules"]["objectionWindowDays"] == 10

    # saving again with nothing changed claims no new version
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_contain_text("Aucune règle n'a changé")
    assert voltaire(demo)["rulesVersion"] == after["rulesVersion"]


# -- a member who is no admin ---------------------------------------------------------


def test_a_member_sees_only_member_things(page: Any, demo: DemoSystem) -> None:
    sign_in(page, demo.base_url, email="emilie.roux@pole-11e.example")
    nav = page.get_by_role("navigation")
    expect(nav).to_contain_text("Membres")
    expect(nav).not_to_contain_text("Données")
    expect(page.locator("header.top")).to_contain_text("(membre)")
    expect(page.locator("article.member").first).to_be_visible()
    expect(page.get_by_role("heading", name="Invitations")).to_have_count(0)
    expect(page.get_by_role("button", name="Nommer administrateur")).to_have_count(0)
    # the data page is not theirs: opened by its address, it says so
    page.goto(f"{demo.console_url}#/data")
    page.reload()
    expect(page.get_by_role("heading", name="Données", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Réservé aux administrateurs du réseau")
    expect(page.get_by_role("heading", name="Webhooks")).to_have_count(0)
    # a hub's rules are shown, not offered for change
    page.goto(f"{demo.console_url}#/hubs")
    expect(page.get_by_role("heading", name="Règles", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Enregistrer")).to_have_count(0)


# -- data ------------------------------------------------------------------------------


def test_an_api_keys_secret_is_shown_once(page: Any, demo: DemoSystem) -> None:
    sign_in(page, demo.base_url)
    page.locator("nav a[href='#/data']").click()
    page.get_by_label("Nom de la clé").fill("Tableau de bord")
    page.get_by_label("Lire les rapports").check()
    page.get_by_role("button", name="Créer une clé").click()
    shown = page.get_by_test_id("secret-once")
    expect(shown).to_contain_text("qk_")
    secret = shown.inner_text().strip()
    row = page.locator("tr", has_text="Tableau de bord")
    expect(row).to_contain_text(secret[:15])  # its prefix
    keys = demo.graphql("{ apiKeys { edges { node { name prefix scopes } } } }", demo.token())
    (key,) = [e["node"] for e in keys["apiKeys"]["edges"] if e["node"]["name"] == "Tableau de bord"]
    assert set(key["scopes"]) == {"EVENTS_READ", "REPORTS_READ"}
    assert secret.startswith(key["prefix"])
    page.reload()
    expect(row).to_be_visible()
    assert secret not in page.content()
    assert secret not in str(page.evaluate("JSON.stringify(sessionStorage)"))


def test_export_the_network_and_get_its_download_link(page: Any, demo: DemoSystem) -> None:
    sign_in(page, demo.base_url)
    page.locator("nav a[href='#/data']").click()
    page.get_by_role("button", name="Exporter les données du réseau").click()
    expect(page.get_by_role("status").filter(has_text="Export lancé.")).to_be_visible()
    link = page.locator("ul.exports").get_by_role("link", name="Télécharger")
    expect(link).to_be_visible(timeout=120_000)  # the page follows the export until it is ready
    href = link.get_attribute("href")
    assert href
    archive = httpx.get(httpx.URL(demo.console_url).join(href), timeout=60)
    assert archive.status_code == 200 and archive.content[:2] == b"PK"  # a zip


def test_erase_a_members_personal_data_once_confirmed(page: Any, demo: DemoSystem) -> None:
    sign_in(page, demo.base_url)
    page.locator("nav a[href='#/data']").click()
    # the network's sole admin is not offered, and the form says why
    expect(page.locator(".sole-admin")).to_contain_text("Claire Martin n'est pas proposé·e")
    expect(page.locator("#erase-who option", has_text="Claire Martin")).to_have_count(0)
    page.locator("#erase-who").select_option(label="Hugo Lefèvre")
    button = page.get_by_role("button", name="Effacer ce membre")
    expect(button).to_be_disabled()  # not before it is confirmed
    page.get_by_label("Je confirme : c'est définitif").check()
    button.click()
    # every service erases its part before the answer: slow on a busy machine
    done = page.get_by_role("status").filter(has_text="Données effacées.")
    expect(done).to_be_visible(timeout=90_000)
    expect(page.locator("#erase-who option", has_text="Hugo Lefèvre")).to_have_count(0)
    expect(
        page.locator("li", has_text=re.compile("^Effacement fait le .+ — ancien membre$"))
    ).to_be_visible()
    erasures = demo.graphql("{ erasures { edges { node { status } } } }", demo.token())
    assert [e["node"]["status"] for e in erasures["erasures"]["edges"]] == ["COMPLETED"]


# -- results -------------------------------------------------------------------------


def test_the_demos_lights_come_in_every_colour(page: Any, demo: DemoSystem) -> None:
    sign_in(page, demo.base_url)
    page.locator("nav a[href='#/results']").click()
    table = page.locator("table.lights-table")
    for colour in ("Vert", "Orange", "Rouge"):
        expect(table.locator("td", has_text=re.compile(f"^{colour}$")).first).to_be_visible()
    expect(table.locator("th").first).to_have_text("Membre")


# -- a phone -------------------------------------------------------------------------


def test_every_page_fits_a_phone(phone: Any, demo: DemoSystem) -> None:
    """At 390 px wide no page scrolls sideways (tables become cards or scroll
    in their own box, long addresses wrap), and the menu shows the current
    page's entry."""
    width = PHONE["width"]

    def fits(what: str) -> None:
        scroll = phone.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"{what}: {scroll} px wide"

    phone.goto(demo.console_url)
    phone.locator("#tenant").wait_for()
    fits("sign-in")
    phone.get_by_role("link", name="Mot de passe oublié ?").click()
    phone.locator("#reset-email").wait_for()
    fits("password reset")
    phone.goto(demo.console_url + "#/")
    sign_in(phone, demo.base_url)
    for name, shown in PAGE_CONTENT.items():
        phone.locator(f"nav a[href='#/{name}']").click()
        settled(phone)
        phone.locator(shown).first.wait_for()
        fits(name)
        assert serious(phone) == [], name  # a table scrolling in its box included
        current = phone.locator("nav a[aria-current=page]")
        expect(current).to_have_attribute("href", f"#/{name}")
        expect(current).to_be_in_viewport(ratio=1)
        box = current.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box)


# -- meetups: at the table, then the close --------------------------------------------


def test_take_attendance_on_a_phone(phone: Any, demo: DemoSystem) -> None:
    lunch = next_lunch(demo)
    # the console judges by the browser's clock: the services' time
    phone.clock.set_system_time(demo.clock())
    sign_in(phone, demo.base_url)
    phone.get_by_role("link", name="Rencontres").click()
    phone.get_by_role("link", name="Déjeuner du jeudi").click()
    # before its start: neither the roll call nor the close
    expect(phone.locator(".not-started")).to_contain_text("La rencontre n'a pas encore commencé")
    expect(phone.get_by_role("button", name="Clore la rencontre")).to_have_count(0)
    demo.move_clock_to(datetime.fromisoformat(lunch["startsAt"]) + timedelta(minutes=10))
    phone.clock.set_system_time(demo.clock())
    phone.reload()
    phone.get_by_role("button", name="Enregistrer les présences").wait_for()
    expect(phone.locator(".not-started")).to_have_count(0)
    assert serious(phone) == []
    marks = {"Claire Martin": "Présent·e", "Karim Benali": "En retard", "Nadia Haddad": "Excusé·e"}
    for name, mark in marks.items():
        row = phone.get_by_role("group", name=re.compile(name))
        row.get_by_text(mark, exact=True).click()
    phone.get_by_role("button", name="Enregistrer les présences").click()
    expect(phone.get_by_role("status")).to_contain_text("Présences enregistrées.")
    # nothing wider than the phone
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    recorded = {
        a["member"]["displayName"]: a["status"]
        for a in next_lunch(demo)["attendance"]
        if a["member"]
    }
    assert recorded == {
        "Claire Martin": "PRESENT",
        "Karim Benali": "LATE",
        "Nadia Haddad": "EXCUSED",
    }


def test_close_a_meetup_only_with_the_next_date(page: Any, demo: DemoSystem) -> None:
    lunch = next_lunch(demo)
    proposed = lunch["series"]["nextLocalStart"]
    page.clock.set_system_time(demo.clock())  # started, by the services' clock
    sign_in(page, demo.base_url)
    page.get_by_role("link", name="Rencontres").click()
    page.get_by_role("link", name="Déjeuner du jeudi").click()
    date = page.get_by_label("Date de la prochaine rencontre")
    assert date.input_value() == proposed[:16]  # proposed by the series' rhythm

    date.fill("")
    page.get_by_role("button", name="Clore la rencontre").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Une rencontre ne se clôt qu'avec la date de la suivante")
    expect(alert).to_contain_text("Message de l'API")
    # the API's own words, in the console's language (Accept-Language: fr)
    expect(alert).to_contain_text("une rencontre ne se clôt qu'avec la suivante fixée")
    expect(alert).not_to_contain_text("closes only with")
    assert next_lunch(demo)["id"] == lunch["id"]  # still open

    date.fill(proposed[:16])
    page.get_by_role("button", name="Clore la rencontre").click()
    expect(page.get_by_role("status").first).to_contain_text("Rencontre close")
    expect(page.locator(".meetup-detail")).to_contain_text("close")
    after = demo.graphql(
        "query M($id: ID!) { meetup(id: $id) { state nextMeetup { localStart } cards { title } } }",
        demo.token(),
        id=lunch["id"],
    )["meetup"]
    assert after["state"] == "CLOSED"
    assert after["nextMeetup"]["localStart"] == proposed
    assert after["cards"]  # the members present drew their mission cards


# -- accessibility ----------------------------------------------------------------------

PAGES = ["members", "admissions", "hubs", "roster", "meetups", "results", "data"]
# each page, and what shows that its data is there
PAGE_CONTENT = {
    "members": "table.invitations tbody tr",
    "admissions": "main h2",
    "hubs": "ol.history li",
    "roster": "ol.roster li",
    "meetups": "ul.meetups li",
    "results": "table.ledger tbody tr",
    "data": "#era-h",
}


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands
    (axe is injected once per document: the console's pages share one)."""
    from axe_playwright_python.sync_playwright import Axe

    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(Axe().axe_script)
    response = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def settled(page: Any) -> None:
    """The page's heading is out and nothing is loading any more."""
    page.locator("main h1").wait_for()
    expect(page.locator("[aria-busy=true]")).to_have_count(0)


def test_no_serious_accessibility_violation_on_any_page(page: Any, demo: DemoSystem) -> None:
    page.goto(demo.console_url)
    page.locator("#tenant").wait_for()
    found = {"sign-in": serious(page)}
    sign_in(page, demo.base_url)
    for name in PAGES:
        page.locator(f"nav a[href='#/{name}']").click()
        settled(page)
        found[name] = serious(page)
    page.locator("nav a[href='#/meetups']").click()
    page.get_by_role("button", name="Passées").click()
    page.get_by_role("link", name="Déjeuner du jeudi").first.click()
    page.locator(".meetup-detail").wait_for()
    settled(page)
    found["a past meetup"] = serious(page)
    assert not any(found.values()), found
