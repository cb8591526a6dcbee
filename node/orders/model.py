"""An order as the node holds it, on either side: plain, already validated values.

Quantities and amounts are exact: ``Decimal`` here, integers times 10,000 in the
database (as offers' prices are), never floats. Nothing here touches storage, HTTP or
a clock of its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


class Side(enum.StrEnum):
    BUYER = "buyer"  # a member of this co-op (or the co-op itself) ordered
    SELLER = "seller"  # this co-op's offer was ordered from


class State(enum.StrEnum):
    PENDING = "pending"  # sent (buyer) or held and waiting for the seller (seller)
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"
    EXPIRED = "expired"  # waited longer than the seller's hold: the stock is released


FINAL = frozenset({State.REJECTED, State.CANCELLED, State.FULFILLED, State.EXPIRED})
# The states in which a seller's order holds its quantity out of the offer's stock.
HOLDING = frozenset({State.PENDING, State.ACCEPTED})

# Which state may follow which: anything else is refused (a late or replayed answer).
NEXT: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.ACCEPTED, State.REJECTED, State.CANCELLED, State.EXPIRED}),
    State.ACCEPTED: frozenset({State.FULFILLED, State.CANCELLED}),
}


def may_become(current: State, target: State) -> bool:
    return target in NEXT.get(current, frozenset())


class Policy(enum.StrEnum):
    """How an offer's orders are answered."""

    AUTO = "auto"  # accepted at once while in stock
    MANUAL = "manual"  # held for the seller (the offer's author or an admin)


class Refusal(enum.StrEnum):
    """Why a seller's node refuses an order: the code stored and sent, with its words
    (:data:`REASONS`) in the ``Reject``'s content."""

    NO_SUCH_OFFER = "no_such_offer"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    OUT_OF_STOCK = "out_of_stock"
    UNDER_MINIMUM = "under_minimum"
    NOT_WHOLE_UNITS = "not_whole_units"
    WRONG_UNIT = "wrong_unit"
    WRONG_PRICE = "wrong_price"
    UNKNOWN_DELIVERY = "unknown_delivery"
    UNKNOWN_PAYMENT = "unknown_payment"
    BLOCKED = "blocked"
    TOO_LARGE = "too_large"
    SELLER_REJECTED = "seller_rejected"  # the seller said no (their note says why)
    HOLD_EXPIRED = "hold_expired"
    UNDELIVERED = "undelivered"  # the seller's server refused the order, or is gone
    UNANSWERED = "unanswered"  # the seller's server never answered


REASONS: dict[Refusal, str] = {
    Refusal.NO_SUCH_OFFER: "this offer is not one of ours",
    Refusal.WITHDRAWN: "this offer was withdrawn",
    Refusal.EXPIRED: "this offer has expired",
    Refusal.OUT_OF_STOCK: "out of stock: fewer units are left than ordered",
    Refusal.UNDER_MINIMUM: "under the minimum quantity of this offer",
    Refusal.NOT_WHOLE_UNITS: "order a whole number of units",
    Refusal.WRONG_UNIT: "the order's unit is not the offer's",
    Refusal.WRONG_PRICE: "the order's price is not the offer's price for that quantity",
    Refusal.UNKNOWN_DELIVERY: "this offer has no such delivery option",
    Refusal.UNKNOWN_PAYMENT: "this offer has no such payment option",
    Refusal.BLOCKED: "this co-op does not trade with your server",
    Refusal.TOO_LARGE: "the order's total is more than an order may be",
    Refusal.SELLER_REJECTED: "the seller rejected the order",
    Refusal.HOLD_EXPIRED: "the seller did not answer in time; the stock was released",
    Refusal.UNDELIVERED: "the seller's server did not take the order",
    Refusal.UNANSWERED: "the seller never answered; the order is closed",
}


@dataclass(frozen=True, slots=True)
class Terms:
    """What is ordered: the offer's goods for the price, as both sides record them."""

    offer_uri: str  # the FEP-0837 Proposal's id
    quantity: Decimal  # in the offer's unit, > 0
    unit: str  # the wire unit name (om2's "one", "kilogram"...)
    total: Decimal | None  # the price for the whole quantity; None: no price asked
    currency: str | None  # as the offer names it: an ISO 4217 code or a URI
    delivery: str | None = None  # the chosen delivery option (a known name or free text)
    payment: str | None = None
    note: str = ""  # the buyer's words to the seller


@dataclass(frozen=True, slots=True)
class ForSale:
    """What the seller's node checks an order against: one of its own offers, now."""

    uri: str
    offer_id: int
    withdrawn: bool
    end_time: datetime | None
    unit: str  # wire unit name
    price: Decimal | None  # per unit
    currency: str | None
    minimum: Decimal | None
    available: Decimal | None  # None: stock not counted
    delivery: tuple[str, ...]  # known names then free texts, as offered
    payment: tuple[str, ...]
    policy: Policy = Policy.MANUAL
