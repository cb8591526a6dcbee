"""ISO 4217 currency codes and the Wikidata items FEP-0837 names currencies by.

FEP-0837 puts the currency of a price in ``reciprocal.resourceConformsTo`` as a URI; its
examples use Wikidata items (``https://www.wikidata.org/wiki/Q4917``, the US dollar), and
so do Epicyon and PROTOCOL.md. Each item below was checked against at least two
independent tables that map Wikidata items to ISO 4217 codes (see schemas/README.md);
a code we could not confirm is left out rather than guessed. A local offer must use a
code from this table. A remote offer whose currency URI is not here (Mitra prices in
CAIP-19 assets, for instance) is kept with the URI as it came.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

WIKIDATA_ITEM_BASE = "https://www.wikidata.org/wiki/"

_ITEMS: dict[str, str] = {
    # Europe
    "EUR": "Q4916",
    "GBP": "Q25224",
    "CHF": "Q25344",
    "SEK": "Q122922",
    "NOK": "Q132643",
    "DKK": "Q25417",
    "ISK": "Q131473",
    "PLN": "Q123213",
    "CZK": "Q131016",
    "HUF": "Q47190",
    "RON": "Q131645",
    "BGN": "Q172540",
    "RSD": "Q172524",
    "BAM": "Q179620",
    "MKD": "Q177875",
    "UAH": "Q81893",
    "TRY": "Q172872",
    # Africa and the Middle East
    "XOF": "Q861690",
    "XAF": "Q847739",
    "MAD": "Q200192",
    "DZD": "Q199674",
    "TND": "Q4602",
    "EGP": "Q199462",
    "NGN": "Q203567",
    "GHS": "Q183530",
    "ZAR": "Q181907",
    "ILS": "Q131309",
    # The Americas
    "USD": "Q4917",
    "CAD": "Q1104069",
    "MXN": "Q4730",
    "BRL": "Q173117",
    "CLP": "Q200050",
    "COP": "Q244819",
    "PEN": "Q204656",
    "UYU": "Q209272",
    "BOB": "Q200737",
    "CRC": "Q242915",
    "DOP": "Q242922",
    "GTQ": "Q207396",
    "HNL": "Q4719",
    "NIO": "Q207312",
    # Asia and Oceania
    "JPY": "Q8146",
    "CNY": "Q39099",
    "KRW": "Q202040",
    "INR": "Q80524",
    "HKD": "Q31015",
    "TWD": "Q208526",
    "SGD": "Q190951",
    "IDR": "Q41588",
    "MYR": "Q163712",
    "PHP": "Q17193",
    "THB": "Q177882",
    "VND": "Q192090",
    "PKR": "Q188289",
    "BDT": "Q194453",
    "AUD": "Q259502",
    "NZD": "Q1472704",
}

ITEM_BY_CODE: Mapping[str, str] = MappingProxyType(_ITEMS)
CODE_BY_ITEM: Mapping[str, str] = MappingProxyType({q: code for code, q in _ITEMS.items()})

# The spellings of a Wikidata item URI seen in the wild: the page (``/wiki/``), the
# entity (``/entity/``, what SPARQL and the ValueFlows examples use), http or https, with
# or without ``www``.
_WIKIDATA_URI = re.compile(r"^https?://(?:www\.|m\.)?wikidata\.org/(?:wiki|entity)/(Q[1-9][0-9]*)$")
_CODE = re.compile(r"^[A-Z]{3}$")


def is_supported(code: str) -> bool:
    return code in ITEM_BY_CODE


def uri_for(code: str) -> str:
    """The Wikidata URI of ``code``; :class:`KeyError` for a code not in the table."""
    return WIKIDATA_ITEM_BASE + ITEM_BY_CODE[code]


def code_for(uri_or_code: str) -> str | None:
    """The ISO 4217 code for a Wikidata URI in any usual spelling, or for a bare code
    (some software writes ``EUR`` where FEP-0837 expects a URI); ``None`` if unknown."""
    value = uri_or_code.strip()
    if _CODE.match(value.upper()) and value.upper() in ITEM_BY_CODE:
        return value.upper()
    match = _WIKIDATA_URI.match(value)
    if match is None:
        return None
    return CODE_BY_ITEM.get(match.group(1))


def amount_text(amount: Decimal, currency: str | None) -> str:
    """``amount`` written with its currency's minor units ("3.50" EUR, "1200" JPY, "2.500"
    TND, from the CLDR data Babel carries), or as it is where it has more digits than
    those, or the currency is none we know."""
    if currency is None or not is_supported(currency):
        return str(amount)
    # Babel's data load only when an amount is written, not at start-up.
    from babel.numbers import get_currency_precision

    exponent = Decimal(1).scaleb(-get_currency_precision(currency))
    shown = amount.quantize(exponent) if amount == amount.quantize(exponent) else amount
    return str(shown)
