"""The profession taxonomy a member's activity is chosen from (public)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gateway.context import Context
from gateway.kit import ask
from services.identity import contract as c


@strawberry.type(description="An activity of the profession taxonomy.")
class Profession:
    code: str
    label: str
    label_en: str
    sector: str


@strawberry.type
class Query:
    @strawberry.field(description="The profession taxonomy.")
    async def professions(self, info: Info[Context, Any]) -> list[Profession]:
        found = await ask(info, c.ListProfessions(), info.context.anonymous())
        return [
            Profession(code=p.code, label=p.label, label_en=p.label_en, sector=p.sector)
            for p in found
        ]
