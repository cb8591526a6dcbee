"""What the seller's node checks an order against before it holds any stock: pure
functions of the offer as it stands and the order's terms, no I/O and no clock.

The checks run in a fixed order and the first that fails names the refusal, so that a
buyer hears the most basic reason first (an offer withdrawn says more than a price that
no longer matches it), and both sides' tests can rely on which reason comes back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

from node.offers.model import MAX_AMOUNT
from node.orders.model import ForSale, Refusal, Terms

# Amounts are kept to four decimals (ten-thousandths in the database).
FOUR_DECIMALS = Decimal("0.0001")

# Units that count things, ordered only in whole numbers. FEP-0837's ``unitBased``
# prices are per one unit: for om2's "one" (a piece) that is one item, and half a jar is
# no sale. The units this node offers that count people, nights or baskets are counts
# too. Measured units (kilogram, gram, litre, hour, day, week) take any quantity with up
# to four decimals: 1.5 kg of apples, or half a day's work.
COUNTED_UNITS = frozenset({"one", "night", "person", "box"})


def total_for(price: Decimal, quantity: Decimal) -> Decimal:
    """The price of ``quantity`` units at ``price`` each, to four decimals.

    The product is computed exactly (a wide enough context) and only then rounded,
    half up: a price and a quantity of four decimals each make a product of up to eight,
    which the tables cannot hold. Half up is the rounding people do by hand, and both
    sides compute the same total from the same terms, so the buyer can state the total
    it expects and the seller compare it with an equality.
    """
    with localcontext() as context:
        context.prec = 80
        return (price * quantity).quantize(FOUR_DECIMALS, rounding=ROUND_HALF_UP)


def is_whole(quantity: Decimal) -> bool:
    return quantity == quantity.to_integral_value()


def check(offer: ForSale, terms: Terms, *, now: datetime) -> Refusal | None:
    """Why the seller refuses an order of ``terms`` for ``offer`` at ``now``, or
    ``None`` when it may be held (and accepted, by the offer's policy).

    In this order: withdrawn; expired; another unit; a fraction of a counted unit;
    under the minimum; a delivery or payment option the offer does not list (an order
    naming none is refused too when the offer lists some: the seller would not know how
    to hand it over or be paid); a total or currency other than the offer's price for
    that quantity (when the offer asks a price); more than the stock left, when it is
    counted.
    """
    if offer.withdrawn:
        return Refusal.WITHDRAWN
    if offer.end_time is not None and offer.end_time <= now:
        return Refusal.EXPIRED
    if terms.unit != offer.unit:
        return Refusal.WRONG_UNIT
    if offer.unit in COUNTED_UNITS and not is_whole(terms.quantity):
        return Refusal.NOT_WHOLE_UNITS
    if offer.minimum is not None and terms.quantity < offer.minimum:
        return Refusal.UNDER_MINIMUM
    if offer.delivery and terms.delivery not in offer.delivery:
        return Refusal.UNKNOWN_DELIVERY
    if offer.payment and terms.payment not in offer.payment:
        return Refusal.UNKNOWN_PAYMENT
    if offer.price is not None and total_for(offer.price, terms.quantity) > MAX_AMOUNT:
        return Refusal.TOO_LARGE
    if offer.price is not None and (
        terms.total is None
        or terms.currency != offer.currency
        or terms.total != total_for(offer.price, terms.quantity)
    ):
        return Refusal.WRONG_PRICE
    if offer.available is not None and terms.quantity > offer.available:
        return Refusal.OUT_OF_STOCK
    return None
