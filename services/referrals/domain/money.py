"""Money: exact decimals in an ISO 4217 currency, never floats.

The currencies are ISO 4217's active alphabetic codes with their minor units
(the number of decimals an amount may have: 2 for EUR, 0 for JPY, 3 for
TND); an amount with more decimals is refused rather than rounded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from services.runtime.errors import InvalidInput
from services.runtime.i18n import t

# ISO 4217 active codes and minor units (list of 2025; funds and precious
# metals left out: nobody thanks business in XAU).
_MINOR = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
    "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT "
    "LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN "
    "NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
    "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES "
    "WST XCD XCG YER ZAR ZMW ZWG"
)
CURRENCIES: dict[str, int] = {code: 2 for code in _TWO.split()}
for digits, codes in _MINOR.items():
    CURRENCIES.update(dict.fromkeys(codes.split(), digits))

MAX_AMOUNT = Decimal("1000000000")  # a thousand million: beyond, a typo


def check_money(amount: Decimal, currency: str, field: str = "value") -> tuple[Decimal, str]:
    """A positive, finite, plausible amount with no more decimals than its
    currency has; returns it normalised (e.g. 1200.5 EUR → 1200.50) and the
    currency in upper case."""
    code = (currency or "").strip().upper()
    if code not in CURRENCIES:
        raise InvalidInput(
            t("{currency} is not an ISO 4217 currency", currency=repr(currency[:10])),
            field=f"{field}.currency",
        )
    try:
        if not isinstance(amount, Decimal):
            raise InvalidInput(t("an amount is an exact decimal"), field=f"{field}.amount")
        if not amount.is_finite() or amount <= 0:
            raise InvalidInput(t("an amount is more than zero"), field=f"{field}.amount")
        if amount > MAX_AMOUNT:
            raise InvalidInput(
                t("an amount is at most {limit:,}", limit=MAX_AMOUNT), field=f"{field}.amount"
            )
        digits = CURRENCIES[code]
        exponent = amount.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > digits:
            raise InvalidInput(
                t(
                    "{currency} amounts have at most {digits} decimals",
                    currency=code,
                    digits=digits,
                ),
                field=f"{field}.amount",
            )
        return amount.quantize(Decimal(1).scaleb(-digits)), code
    except InvalidOperation:
        raise InvalidInput(t("not an amount"), field=f"{field}.amount") from None


def total(amounts: list[tuple[Decimal, str]]) -> dict[str, Decimal]:
    """Sums per currency (never across currencies)."""
    sums: dict[str, Decimal] = {}
    for amount, currency in amounts:
        sums[currency] = sums.get(currency, Decimal(0)) + amount
    return sums
