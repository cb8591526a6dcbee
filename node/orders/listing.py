"""An offer as an order is checked against it: the catalogue's copy of the FEP-0837
``Proposal`` (ours or a peer's) read into :class:`node.orders.model.ForSale`.

Both sides check with the same rules (:mod:`node.orders.rules`): the buyer's node to
tell its member at once what the seller would refuse, the seller's node to decide."""

from __future__ import annotations

import json
from decimal import Decimal

from node.errors import NotFound
from node.offers.model import UNITS
from node.offers.remote import RemoteOffer, RemoteOfferError, from_proposal
from node.offers.store import Shown
from node.orders.model import ForSale, Policy


def wire_unit(unit: str) -> str:
    """The om2 name an offer's unit goes by on the wire (our names map to one)."""
    known = UNITS.get(unit)
    return known.wire if known is not None else unit


def proposal_of(shown: Shown) -> RemoteOffer:
    try:
        return from_proposal(json.loads(shown.document))
    except (ValueError, RemoteOfferError) as exc:
        raise NotFound(f"the offer {shown.uri} cannot be read: {exc}") from None


def for_sale(
    shown: Shown,
    *,
    available: Decimal | None,
    policy: Policy = Policy.MANUAL,
) -> ForSale:
    """``shown`` as an order is checked against it. ``available`` is the stock as the
    seller counts it (the seller's stock table, or the peer's last word)."""
    offer = proposal_of(shown)
    price = offer.price
    return ForSale(
        uri=shown.uri,
        offer_id=shown.id,
        withdrawn=shown.withdrawn,
        end_time=offer.end_time,
        unit=wire_unit(offer.unit),
        price=None if price is None else price.amount,
        currency=None if price is None else (price.currency or price.currency_uri),
        minimum=offer.minimum,
        available=available,
        delivery=(*offer.delivery.known, *offer.delivery.other),
        payment=(*offer.payment.known, *offer.payment.other),
        policy=policy,
    )
