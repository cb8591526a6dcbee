"""An offer as the node holds it: plain, already validated values.

:func:`node.offers.validation.parse_offer_input` builds an :class:`Offer` from what a
member sends; :mod:`node.offers.wire` turns it into the FEP-0837 ``Proposal`` peers read.
Nothing here touches storage, HTTP or a clock of its own: the time is passed in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

# --- limits (each refusal names the one it hit) ----------------------------------------

MAX_LANGUAGES = 8
MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000  # Markdown source, per language
MAX_CATEGORIES = 10
MAX_IMAGES = 8
MAX_IMAGE_DESCRIPTION_LENGTH = 1_500  # Mastodon's limit for alt text
MAX_URL_LENGTH = 2_048
MAX_LOCATION_NAME_LENGTH = 200
MAX_OPTIONS = 10  # claims, delivery options, payment options: each list
MAX_OPTION_TEXT_LENGTH = 100
MAX_DECIMAL_PLACES = 4
MAX_AMOUNT = Decimal("999999999.9999")  # prices and quantities
MAX_VALIDITY = timedelta(days=5 * 366)  # how far ahead an end_time may be

# --- closed vocabularies ----------------------------------------------------------------


class Status(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"  # final: on the wire a Delete, and a Tombstone stays
    EXPIRED = "expired"  # never stored: derived from end_time and the clock


class Kind(enum.StrEnum):
    """What is offered. FEP-0837 sends a good with the ValueFlows action ``transfer``
    and a service with ``deliverService``."""

    GOOD = "good"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit offers are priced and counted in."""

    name: str  # what members and the JSON API use
    wire: str  # the om2 unit name FEP-0837 asks for in hasUnit
    labels: Mapping[str, str]


def _units(*units: Unit) -> Mapping[str, Unit]:
    return MappingProxyType({unit.name: unit for unit in units})


# Wire names are Ontology of units of Measure 2.0 local names, as FEP-0837 requires
# ("one" for countable items). A night, a person and a box have no om2 unit; they are
# sent under their own name, which coopnode peers read back and others show as is.
UNITS = _units(
    Unit("piece", "one", MappingProxyType({"en": "piece", "fr": "pièce"})),
    Unit("kg", "kilogram", MappingProxyType({"en": "kg", "fr": "kg"})),
    Unit("g", "gram", MappingProxyType({"en": "g", "fr": "g"})),
    Unit("litre", "litre", MappingProxyType({"en": "litre", "fr": "litre"})),
    Unit("hour", "hour", MappingProxyType({"en": "hour", "fr": "heure"})),
    Unit("day", "day", MappingProxyType({"en": "day", "fr": "jour"})),
    Unit("week", "week", MappingProxyType({"en": "week", "fr": "semaine"})),
    Unit("night", "night", MappingProxyType({"en": "night", "fr": "nuit"})),
    Unit("person", "person", MappingProxyType({"en": "person", "fr": "personne"})),
    Unit("box", "box", MappingProxyType({"en": "box", "fr": "panier"})),
)
UNIT_BY_WIRE_NAME = MappingProxyType({unit.wire: unit for unit in UNITS.values()})
DEFAULT_UNIT = "piece"

# The known values of each option list. Anything else a member wants to say goes in
# as free text ({"name": "..."}), which peers show as written.
CLAIMS = ("fair_trade", "organic", "coop_made", "local")
DELIVERY_OPTIONS = ("pickup", "local_delivery", "postal_shipping", "on_site", "online")
PAYMENT_OPTIONS = (
    "cash",
    "card",
    "bank_transfer",
    "cheque",
    "mobile_payment",
    "local_currency",
    "time_bank",
)

# --- values -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Price:
    amount: Decimal  # per one unit of the offer, >= 0
    currency: str  # ISO 4217 code, one of node.offers.currencies


@dataclass(frozen=True, slots=True)
class Location:
    """A place, as ActivityStreams describes one: a name, coordinates, or both."""

    name: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class Image:
    """A reference to an image the node stores and serves; the bytes live elsewhere."""

    url: str
    media_type: str
    description: str = ""  # alt text
    size: int | None = None  # bytes
    media_id: str | None = None  # the node's own id for the stored file


@dataclass(frozen=True, slots=True)
class Options:
    """One of the option lists (claims, delivery, payment): known values, in the order
    given, then free text."""

    known: tuple[str, ...] = ()
    other: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.known or self.other)


@dataclass(frozen=True, slots=True)
class Offer:
    titles: Mapping[str, str]  # language -> title; the first is the main language
    categories: tuple[str, ...]  # slugs from node.offers.categories
    kind: Kind
    unit: str  # a key of UNITS
    descriptions: Mapping[str, str] = field(default_factory=dict)  # language -> Markdown
    descriptions_html: Mapping[str, str] = field(default_factory=dict)  # sanitised
    price: Price | None = None  # None: no price asked (a gift, or on request)
    available: Decimal | None = None  # units in stock; None: not counted
    minimum: Decimal | None = None  # smallest number of units per order
    location: Location | None = None
    images: tuple[Image, ...] = ()
    end_time: datetime | None = None  # aware, UTC; None: open-ended
    claims: Options = Options()
    delivery: Options = Options()
    payment: Options = Options()
    withdrawn: bool = False

    @property
    def language(self) -> str:
        """The main language: the first one the member gave a title in."""
        return next(iter(self.titles))

    @property
    def title(self) -> str:
        return self.titles[self.language]

    def status(self, now: datetime) -> Status:
        """Withdrawn is final; otherwise expired once ``now`` reaches ``end_time``."""
        if self.withdrawn:
            return Status.WITHDRAWN
        if self.end_time is not None and now >= self.end_time:
            return Status.EXPIRED
        return Status.ACTIVE
