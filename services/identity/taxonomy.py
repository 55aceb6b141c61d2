"""The profession taxonomy shipped with Quartier: a small, stable list of
activity codes for solos and very small businesses. A member picks one code
and may add free text ("plumber — bathroom renovation"). The one-per-profession
rule compares codes, so codes are kept coarse enough for that comparison to
mean "competitors".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profession:
    code: str
    label: str  # French, as the networks use it
    label_en: str
    sector: str


PROFESSIONS: tuple[Profession, ...] = tuple(
    Profession(*row)
    for row in (
        # Building and home
        ("plumber", "Plombier·ère", "Plumber", "building"),
        ("electrician", "Électricien·ne", "Electrician", "building"),
        ("carpenter", "Menuisier·ère", "Carpenter", "building"),
        ("painter-decorator", "Peintre décorateur·rice", "Painter and decorator", "building"),
        ("locksmith", "Serrurier·ère", "Locksmith", "building"),
        ("architect", "Architecte", "Architect", "building"),
        ("interior-designer", "Architecte d'intérieur", "Interior designer", "building"),
        ("gardener", "Paysagiste", "Gardener, landscaper", "building"),
        # Business services
        ("accountant", "Expert·e-comptable", "Accountant", "business"),
        ("bookkeeper", "Aide-comptable, gestion", "Bookkeeper", "business"),
        ("lawyer", "Avocat·e", "Lawyer", "business"),
        ("notary", "Notaire", "Notary", "business"),
        ("insurance-broker", "Courtier·ère en assurances", "Insurance broker", "business"),
        ("banker", "Conseiller·ère bancaire", "Banker", "business"),
        ("real-estate-agent", "Agent·e immobilier", "Real-estate agent", "business"),
        (
            "management-consultant",
            "Consultant·e en management",
            "Management consultant",
            "business",
        ),
        ("hr-consultant", "Consultant·e RH, recrutement", "HR consultant", "business"),
        ("business-coach", "Coach professionnel·le", "Business coach", "business"),
        ("trainer", "Formateur·rice", "Trainer", "business"),
        ("translator", "Traducteur·rice, interprète", "Translator, interpreter", "business"),
        ("virtual-assistant", "Assistant·e indépendant·e", "Virtual assistant", "business"),
        # Digital and communication
        ("web-developer", "Développeur·se web", "Web developer", "digital"),
        ("it-support", "Informaticien·ne, dépannage", "IT support", "digital"),
        ("graphic-designer", "Graphiste", "Graphic designer", "digital"),
        ("photographer", "Photographe", "Photographer", "digital"),
        ("videographer", "Vidéaste", "Videographer", "digital"),
        ("copywriter", "Rédacteur·rice", "Copywriter", "digital"),
        ("marketing-consultant", "Consultant·e marketing", "Marketing consultant", "digital"),
        ("community-manager", "Community manager", "Community manager", "digital"),
        ("printer", "Imprimeur·e", "Printer", "digital"),
        # Health and well-being
        ("osteopath", "Ostéopathe", "Osteopath", "health"),
        ("physiotherapist", "Kinésithérapeute", "Physiotherapist", "health"),
        ("psychologist", "Psychologue", "Psychologist", "health"),
        ("naturopath", "Naturopathe", "Naturopath", "health"),
        ("sophrologist", "Sophrologue", "Sophrologist", "health"),
        ("hairdresser", "Coiffeur·se", "Hairdresser", "health"),
        ("beautician", "Esthéticien·ne", "Beautician", "health"),
        ("sports-coach", "Coach sportif·ve", "Sports coach", "health"),
        # Food and trade
        ("caterer", "Traiteur", "Caterer", "food"),
        ("restaurateur", "Restaurateur·rice", "Restaurant owner", "food"),
        ("baker", "Boulanger·ère", "Baker", "food"),
        ("wine-merchant", "Caviste", "Wine merchant", "food"),
        ("florist", "Fleuriste", "Florist", "trade"),
        ("bookseller", "Libraire", "Bookseller", "trade"),
        ("craftsperson", "Artisan·e d'art", "Craftsperson", "trade"),
        ("bike-repairer", "Réparateur·rice de vélos", "Bike repairer", "trade"),
        ("mover", "Déménageur·se", "Mover", "trade"),
        ("event-planner", "Organisateur·rice d'événements", "Event planner", "trade"),
    )
)

BY_CODE: dict[str, Profession] = {p.code: p for p in PROFESSIONS}
