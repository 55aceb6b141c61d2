"""The demo network `pole-11e`, loaded idempotently by `quartier up --demo`
through the services' own commands (as the platform operator, then as its
members): its admin and a dozen members of Paris 11e with filled profile
cards; two hubs (a neighbourhood circle around Place Voltaire and a trade
club) with godparents, a pending nomination with an objection, a co-admin and
a facilitator roster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.hubs import contract as hc
from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.errors import InvalidCredentials, NotFound, RateLimited
from services.runtime.logging import get_logger
from services.runtime.messages import Actor
from services.runtime.settings import Settings
from services.runtime.tenancy import RequestContext

log = get_logger(__name__)

SLUG = "pole-11e"
NAME = "Pôle des réseaux de proximité — Paris 11e"
ADMIN_EMAIL = "admin@pole-11e.example"
PASSWORD = "demo-password"


@dataclass(frozen=True)
class DemoMember:
    key: str
    email: str
    card: dict[str, Any]
    admin: bool = False


def _place(lat: float, lon: float, postcode: str) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "postcode": postcode}


MEMBERS: tuple[DemoMember, ...] = (
    DemoMember(
        "claire",
        ADMIN_EMAIL,
        {
            "display_name": "Claire Martin",
            "business_name": "Claire Martin Conseil",
            "activity_code": "management-consultant",
            "activity_text": "Organisation des petites structures, animation de réseaux",
            "offers": "Diagnostic d'organisation, animation d'ateliers, mise en relation",
            "seeks": "Expert-comptable de proximité, graphiste pour une plaquette",
            "available_for": "Animer un atelier sur la prospection locale",
            "bio": "Fondatrice du pôle : vingt ans de conseil, convaincue que le voisinage est un réseau.",
            "links": ["https://claire-martin.example"],
            "work": _place(48.8575, 2.3795, "75011"),
            "home": _place(48.8610, 2.3820, "75011"),
        },
        admin=True,
    ),
    DemoMember(
        "karim",
        "karim.benali@pole-11e.example",
        {
            "display_name": "Karim Benali",
            "business_name": "Plomberie Benali",
            "activity_code": "plumber",
            "activity_text": "Plomberie, rénovation de salles de bains",
            "offers": "Dépannage plomberie sous 24 h, rénovation de salles de bains, chauffe-eau",
            "seeks": "Électricien pour chantiers communs, carreleur",
            "available_for": "Conseils aux copropriétés",
            "bio": "Artisan plombier installé rue de la Roquette depuis 2012.",
            "work": _place(48.8560, 2.3750, "75011"),
        },
    ),
    DemoMember(
        "sophie",
        "sophie.laurent@pole-11e.example",
        {
            "display_name": "Sophie Laurent",
            "business_name": "Cabinet Laurent",
            "activity_code": "accountant",
            "activity_text": "Expertise comptable pour indépendants et TPE",
            "offers": "Comptabilité, déclarations, création d'entreprise, micro-entreprise",
            "seeks": "Développeur pour automatiser la collecte des factures",
            "available_for": "Atelier « bien démarrer en micro-entreprise »",
            "bio": "Expert-comptable, ancienne salariée d'un grand cabinet, installée à Parmentier.",
            "links": ["https://cabinet-laurent.example"],
            "work": _place(48.8652, 2.3746, "75011"),
            "home": _place(48.8590, 2.3900, "75011"),
        },
    ),
    DemoMember(
        "julien",
        "julien.moreau@pole-11e.example",
        {
            "display_name": "Julien Moreau",
            "business_name": "Moreau Web",
            "activity_code": "web-developer",
            "activity_text": "Sites et applications web pour commerçants",
            "offers": "Sites vitrines, boutiques en ligne, automatisation, maintenance",
            "seeks": "Graphiste et photographe pour des projets communs",
            "available_for": "Dépanner un site WordPress, un atelier outils numériques",
            "bio": "Développeur indépendant, ancien de l'agence du coin, fan de vélo.",
            "links": ["https://moreau-web.example", "https://github.com/moreau-web"],
            "work": _place(48.8649, 2.3777, "75011"),
        },
    ),
    DemoMember(
        "amelie",
        "amelie.petit@pole-11e.example",
        {
            "display_name": "Amélie Petit",
            "business_name": "Atelier Petit",
            "activity_code": "graphic-designer",
            "activity_text": "Identité visuelle, édition",
            "offers": "Logos, plaquettes, cartes de visite, signalétique de boutique",
            "seeks": "Imprimeur de proximité, rédacteur",
            "available_for": "Relire vos supports de communication",
            "bio": "Graphiste depuis dix ans, atelier partagé passage Saint-Ambroise.",
            "work": _place(48.8615, 2.3740, "75011"),
        },
    ),
    DemoMember(
        "thomas",
        "thomas.durand@pole-11e.example",
        {
            "display_name": "Thomas Durand",
            "business_name": "Durand Électricité",
            "activity_code": "electrician",
            "activity_text": "Électricité générale, mise aux normes",
            "offers": "Mise aux normes, tableaux électriques, éclairage de boutiques",
            "seeks": "Plombier et menuisier pour des rénovations complètes",
            "available_for": "Diagnostic électrique de locaux commerciaux",
            "bio": "Électricien, vingt ans de métier, intervient surtout dans le 11e.",
            "work": _place(48.8547, 2.3849, "75011"),
        },
    ),
    DemoMember(
        "nadia",
        "nadia.haddad@pole-11e.example",
        {
            "display_name": "Nadia Haddad",
            "business_name": "Haddad Avocat",
            "activity_code": "lawyer",
            "activity_text": "Droit des affaires, baux commerciaux",
            "offers": "Contrats, baux commerciaux, recouvrement, statuts de société",
            "seeks": "Traducteur juridique anglais",
            "available_for": "Une permanence juridique mensuelle",
            "bio": "Avocate au barreau de Paris, cabinet près de la place Léon-Blum.",
            "work": _place(48.8580, 2.3800, "75011"),
        },
    ),
    DemoMember(
        "lucas",
        "lucas.bernard@pole-11e.example",
        {
            "display_name": "Lucas Bernard",
            "business_name": "Lucas Bernard Photographie",
            "activity_code": "photographer",
            "activity_text": "Portrait professionnel, reportage d'entreprise",
            "offers": "Portraits pour profils pro, photos de boutique, reportages d'événements",
            "seeks": "Graphiste, développeur web pour mon portfolio",
            "available_for": "Photographier les rencontres du pôle",
            "bio": "Photographe, studio rue Oberkampf.",
            "links": ["https://lucas-bernard.example"],
            "work": _place(48.8655, 2.3700, "75011"),
        },
    ),
    DemoMember(
        "emilie",
        "emilie.roux@pole-11e.example",
        {
            "display_name": "Émilie Roux",
            "business_name": "Naturopathie Roux",
            "activity_code": "naturopath",
            "activity_text": "Naturopathie, gestion du stress des indépendants",
            "offers": "Consultations, ateliers gestion du stress et sommeil",
            "seeks": "Local partagé à temps partiel, site web",
            "available_for": "Atelier bien-être au travail",
            "bio": "Naturopathe certifiée, reçoit au cabinet partagé de Charonne.",
            "work": _place(48.8530, 2.3830, "75011"),
        },
    ),
    DemoMember(
        "hugo",
        "hugo.lefevre@pole-11e.example",
        {
            "display_name": "Hugo Lefèvre",
            "business_name": "Menuiserie Lefèvre",
            "activity_code": "carpenter",
            "activity_text": "Menuiserie sur mesure, agencement de boutiques",
            "offers": "Agencement de commerces, placards, bibliothèques sur mesure",
            "seeks": "Architecte d'intérieur, électricien",
            "available_for": "Visite de l'atelier",
            "bio": "Menuisier ébéniste, atelier cour Debille depuis 2015.",
            "work": _place(48.8570, 2.3860, "75011"),
        },
    ),
    DemoMember(
        "ines",
        "ines.garcia@pole-11e.example",
        {
            "display_name": "Inès Garcia",
            "business_name": "Garcia Traduction",
            "activity_code": "translator",
            "activity_text": "Traduction juridique et technique anglais, espagnol",
            "offers": "Traduction de contrats, sites web, interprétariat de liaison",
            "seeks": "Avocats et comptables qui travaillent à l'international",
            "available_for": "Relire un texte en anglais ou en espagnol",
            "bio": "Traductrice assermentée, habite et travaille près de Voltaire.",
            "work": _place(48.8590, 2.3780, "75011"),
            "home": _place(48.8595, 2.3785, "75011"),
        },
    ),
    DemoMember(
        "marc",
        "marc.dubois@pole-11e.example",
        {
            "display_name": "Marc Dubois",
            "business_name": "Dubois Assurances",
            "activity_code": "insurance-broker",
            "activity_text": "Courtage en assurances professionnelles",
            "offers": "Responsabilité civile pro, multirisque, prévoyance des indépendants",
            "seeks": "Expert-comptable pour recommandations croisées",
            "available_for": "Audit gratuit des contrats d'assurance",
            "bio": "Courtier indépendant, vingt-cinq ans d'expérience.",
            "work": _place(48.8483, 2.3958, "75011"),
        },
    ),
    DemoMember(
        "lea",
        "lea.fontaine@pole-11e.example",
        {
            "display_name": "Léa Fontaine",
            "business_name": "Fontaine Traiteur",
            "activity_code": "caterer",
            "activity_text": "Traiteur de quartier, buffets d'entreprise",
            "offers": "Buffets, plateaux-repas, déjeuners de réseau",
            "seeks": "Photographe pour mes menus, graphiste",
            "available_for": "Accueillir un déjeuner du pôle",
            "bio": "Cuisinière, boutique rue de Charonne.",
            "work": _place(48.8540, 2.3800, "75011"),
        },
    ),
)


def operator(token: str, tenant_id: str | None = None) -> RequestContext:
    return RequestContext(tenant_id=tenant_id, actor=Actor(kind="operator"), credential=token)


async def ensure_member(
    bus: Bus,
    operator_token: str,
    tenant_id: str,
    member: DemoMember,
    admin: idc.Session | None = None,
) -> idc.Session:
    """The member, invited and accepted if there is no such account yet.
    With the admin's session, the member is looked up through the admin's
    view of the network first (never a sign-in bound to fail: each failed
    one is logged by identity as a refused login): the demo acts as them by
    their id and roles, as it does for everyone, without their password.
    Without it (the admin themselves, on a later start), a sign-in."""
    if admin is not None:
        known = await find_member(bus, admin, member.email)
        if known is not None:
            return known
    else:
        try:
            return await bus.request(
                idc.Login(tenant_slug=SLUG, email=member.email, password=PASSWORD),
                RequestContext(),
            )
        except (InvalidCredentials, RateLimited):
            if member.admin:
                raise DemoError(
                    f"the demo's admin {member.email} no longer signs in with the demo's"
                    " password: give it back (`resetPassword`) or start without --demo"
                ) from None
    sent = await bus.request(
        idc.InviteMember(email=member.email, as_admin=member.admin),
        operator(operator_token, tenant_id),
    )
    assert sent.token is not None
    return await bus.request(
        idc.AcceptInvitation(token=sent.token, password=PASSWORD, card=_card(member.card)),
        RequestContext(),
    )


class DemoError(Exception):
    """The demo network cannot be loaded as it stands (said in one line)."""


async def find_member(bus: Bus, admin: idc.Session, email: str) -> idc.Session | None:
    """The member of that address, as a session the demo acts with (no
    tokens: only their id and current roles), or None."""
    wanted, offset = email.casefold(), 0
    while True:
        page = await bus.request(idc.SearchMembers(offset=offset, limit=50), as_member(admin))
        for card in page.items:
            if card.email is not None and card.email.casefold() == wanted:
                return idc.Session(
                    access_token="",
                    access_expires_at=datetime.now(UTC),
                    refresh_token="",
                    member_id=card.member_id,
                    tenant_id=card.tenant_id,
                    tenant_slug=SLUG,
                    roles=list(card.roles),
                )
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return None


def _card(card: dict[str, Any]) -> idc.CardChanges:
    values = dict(card)
    for key in ("work", "home"):
        if key in values:
            values[key] = idc.Place(**values[key])
    return idc.CardChanges(**values)


async def load_demo(
    bus: Bus, operator_token: str, settings: Settings | None = None
) -> dict[str, idc.Session]:
    """Create what is missing of the demo network; return a session per member.
    After the members and hubs come the meetups (infra/demo_meetups.py: a
    history written on the services' movable clock, never in production) and
    the referrals (infra/demo_referrals.py). `settings`: the system's (the
    environment's by default)."""
    from infra.demo_meetups import load_meetups
    from infra.demo_referrals import load_referrals

    settings = settings or Settings.from_env()
    sessions: dict[str, idc.Session] = {}
    try:
        tenant = await bus.request(idc.GetTenant(slug=SLUG), RequestContext())
    except NotFound:
        created = await bus.request(
            idc.CreateTenant(slug=SLUG, name=NAME, admin_email=ADMIN_EMAIL),
            operator(operator_token),
        )
        tenant = created.tenant
        admin = MEMBERS[0]
        assert created.admin_invitation.token is not None
        first = await bus.request(
            idc.AcceptInvitation(
                token=created.admin_invitation.token, password=PASSWORD, card=_card(admin.card)
            ),
            RequestContext(),
        )
        sessions[admin.key] = first  # a new network: no sign-in to try
    for member in MEMBERS:
        if member.key in sessions:
            continue
        admin_session = sessions.get(MEMBERS[0].key)
        sessions[member.key] = await ensure_member(
            bus, operator_token, tenant.tenant_id, member, admin_session
        )
    hubs = await load_hubs(bus, sessions)
    # each part only where its service runs (QUARTIER_SERVICES may leave it out)
    lunches: list[tuple[str, datetime]] = []
    if "events" in settings.services:
        lunches = await load_meetups(bus, settings, sessions, hubs)
    if "referrals" in settings.services:
        await load_referrals(bus, settings, sessions, hubs, lunches)
    return sessions


# -- hubs ------------------------------------------------------------------------

VOLTAIRE = "Cercle Voltaire"
ARTISANS = "Club des artisans du 11e"

# (hub, sponsor, candidate): who co-opted whom, in order; the godparents.
ADMISSIONS: tuple[tuple[str, str, str], ...] = (
    (VOLTAIRE, "claire", "karim"),
    (VOLTAIRE, "claire", "sophie"),
    (VOLTAIRE, "claire", "julien"),
    (VOLTAIRE, "claire", "nadia"),
    (VOLTAIRE, "nadia", "ines"),
    (VOLTAIRE, "karim", "thomas"),
    (VOLTAIRE, "sophie", "marc"),
    (VOLTAIRE, "julien", "amelie"),
    (VOLTAIRE, "julien", "lucas"),
    (VOLTAIRE, "ines", "emilie"),
    (ARTISANS, "claire", "karim"),
    (ARTISANS, "karim", "thomas"),
    (ARTISANS, "thomas", "hugo"),
    (ARTISANS, "hugo", "lea"),
)
# A nomination still in its objection window, with an objection.
PENDING = (
    VOLTAIRE,
    "julien",
    "lea",
    "Léa nourrit déjà la moitié du quartier : sa place est parmi nous.",
)
OBJECTION = ("marc", "J'aimerais d'abord la rencontrer à un déjeuner.")
ROSTER = (VOLTAIRE, ("sophie", "julien", "ines"))


def as_member(session: idc.Session) -> RequestContext:
    return RequestContext(
        tenant_id=session.tenant_id,
        actor=Actor(
            kind="member",
            member_id=session.member_id,
            tenant_id=session.tenant_id,
            roles=tuple(session.roles),
        ),
    )


def hub_specs() -> dict[str, hc.CreateHub]:
    return {
        VOLTAIRE: hc.CreateHub(
            name=VOLTAIRE,
            kind="neighbourhood",
            area=hc.Area(
                centre=hc.Point(lat=48.8575, lon=2.3795), radius_km=1.5, postcodes=["75011"]
            ),
            rules=hc.Rules(non_competition_lift_at=25, objection_window_days=7),
        ),
        ARTISANS: hc.CreateHub(
            name=ARTISANS,
            kind="trade_club",
            area=hc.Area(postcodes=["75011", "75012", "75020"]),
            rules=hc.Rules(admission_mode="approval", objection_window_days=5),
        ),
    }


async def load_hubs(bus: Bus, sessions: dict[str, idc.Session]) -> dict[str, hc.Hub]:
    """Create what is missing of the demo hubs (idempotent: each step looks first)."""
    admin = as_member(sessions["claire"])
    existing = {h.name: h for h in await bus.request(hc.ListHubs(), admin)}
    hubs: dict[str, hc.Hub] = {}
    for name, spec in hub_specs().items():
        found = existing.get(name)
        hubs[name] = found if found is not None else await bus.request(spec, admin)
    for hub_name, sponsor, candidate in ADMISSIONS:
        await _admit(bus, hubs[hub_name], sessions, sponsor, candidate, admin)
    artisans = await bus.request(hc.GetHub(hub_id=hubs[ARTISANS].hub_id), admin)
    if sessions["karim"].member_id not in artisans.co_admin_ids:
        await bus.request(
            hc.AddCoAdmin(hub_id=artisans.hub_id, member_id=sessions["karim"].member_id), admin
        )
    await _pending(bus, hubs[PENDING[0]], sessions)
    await _roster(bus, hubs[ROSTER[0]], sessions, admin)
    return {name: await bus.request(hc.GetHub(hub_id=h.hub_id), admin) for name, h in hubs.items()}


async def _members(bus: Bus, hub: hc.Hub, ctx: RequestContext) -> set[str]:
    page = await bus.request(hc.ListHubMembers(hub_id=hub.hub_id, limit=50), ctx)
    return {m.member_id for m in page.items}


async def _admit(
    bus: Bus,
    hub: hc.Hub,
    sessions: dict[str, idc.Session],
    sponsor: str,
    candidate: str,
    admin: RequestContext,
) -> None:
    candidate_id = sessions[candidate].member_id
    if candidate_id in await _members(bus, hub, admin):
        return
    pending = [
        n
        for n in await bus.request(hc.ListNominations(hub_id=hub.hub_id), admin)
        if n.candidate_id == candidate_id
    ]
    if pending:
        nomination = pending[0]
    else:
        nomination = await bus.request(
            hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=candidate_id),
            as_member(sessions[sponsor]),
        )
    if nomination.status != "admitted":
        await bus.request(
            hc.AdmitCandidate(hub_id=hub.hub_id, nomination_id=nomination.nomination_id), admin
        )


async def _pending(bus: Bus, hub: hc.Hub, sessions: dict[str, idc.Session]) -> None:
    _, sponsor, candidate, note = PENDING
    objector, reason = OBJECTION
    admin = as_member(sessions["claire"])
    candidate_id = sessions[candidate].member_id
    found = [
        n
        for n in await bus.request(
            hc.ListNominations(
                hub_id=hub.hub_id, statuses=["open", "awaiting_decision", "admitted"]
            ),
            admin,
        )
        if n.candidate_id == candidate_id
    ]
    if found:
        return
    nomination = await bus.request(
        hc.NominateCandidate(hub_id=hub.hub_id, candidate_id=candidate_id, note=note),
        as_member(sessions[sponsor]),
    )
    await bus.request(
        hc.RaiseObjection(hub_id=hub.hub_id, nomination_id=nomination.nomination_id, reason=reason),
        as_member(sessions[objector]),
    )


async def _roster(
    bus: Bus, hub: hc.Hub, sessions: dict[str, idc.Session], admin: RequestContext
) -> None:
    current = await bus.request(hc.GetHub(hub_id=hub.hub_id), admin)
    if current.facilitator_id or current.roster:
        return
    for key in ROSTER[1]:
        await bus.request(hc.VolunteerAsFacilitator(hub_id=hub.hub_id), as_member(sessions[key]))
    await bus.request(hc.HandOverFacilitation(hub_id=hub.hub_id), admin)
