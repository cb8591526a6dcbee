"""Offers: the model, its validation, and its FEP-0837 form on the wire.

Pure code: no storage and no HTTP. The JSON API and the CLI call
:func:`parse_offer_input` and :func:`apply_update`; publishing calls :func:`to_proposal`
and :func:`to_note`; the inbox calls :func:`from_proposal` for peers' offers.
"""

from __future__ import annotations

from node.offers.images import CheckedImage, check_image, check_image_size
from node.offers.markdown import render_markdown, sanitise_html
from node.offers.model import Image, Kind, Location, Offer, Options, Price, Status
from node.offers.remote import RemoteOffer, RemoteOfferError, RemotePrice
from node.offers.validation import apply_update, offer_to_input, parse_offer_input
from node.offers.wire import format_price, from_proposal, to_note, to_proposal

__all__ = [
    "CheckedImage",
    "Image",
    "Kind",
    "Location",
    "Offer",
    "Options",
    "Price",
    "RemoteOffer",
    "RemoteOfferError",
    "RemotePrice",
    "Status",
    "apply_update",
    "check_image",
    "check_image_size",
    "format_price",
    "from_proposal",
    "offer_to_input",
    "parse_offer_input",
    "render_markdown",
    "sanitise_html",
    "to_note",
    "to_proposal",
]
