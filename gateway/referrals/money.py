"""Money: an exact decimal written as a string (`"1200.50"`) with its ISO
4217 currency, never a float; what the API shows and what it takes."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import strawberry

from services.referrals import contract as c
from services.runtime.errors import InvalidInput
from services.runtime.i18n import t

AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


MAX_AMOUNT_TEXT = 40  # characters of an amount: "1000000000.000" and then some


@strawberry.type(description="An exact amount in an ISO 4217 currency.")
class Money:
    amount: str = strawberry.field(
        description='A decimal string with the currency\'s decimals, e.g. "1200.50" (never a float).'
    )
    currency: str = strawberry.field(description="ISO 4217 code, e.g. EUR.")

    @classmethod
    def from_contract(cls, m: c.Money) -> Money:
        return cls(amount=str(m.amount), currency=m.currency)


def money_or_none(m: c.Money | None) -> Money | None:
    return Money.from_contract(m) if m is not None else None


@strawberry.input(description="An exact amount: a decimal string, never a float.")
class MoneyInput:
    amount: str = strawberry.field(description='e.g. "1200.50"; at most the currency\'s decimals.')
    currency: str = strawberry.field(default="EUR", description="ISO 4217 code.")

    def to_contract(self, field: str = "value") -> c.Money:
        """Plain decimal notation only ("1200.50", "1200"): no exponent, sign,
        spaces, separators or non-ASCII digits, which `Decimal` would take."""
        text = self.amount
        if len(text) > MAX_AMOUNT_TEXT or not AMOUNT.fullmatch(text):
            raise InvalidInput(
                t('not an amount: digits, and a point before the decimals ("1200.50")'),
                field=f"{field}.amount",
            )
        try:
            amount = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            raise InvalidInput(t("not an amount"), field=f"{field}.amount") from None
        return c.Money(amount=amount, currency=self.currency)
