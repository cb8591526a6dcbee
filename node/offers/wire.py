"""An offer as other servers see it: a FEP-0837 ``Proposal``, and a ``Note`` to read.

The ``Proposal`` carries everything (PROTOCOL.md, "Offers"): the ``publishes`` intent
says what is offered and how much is left, the ``reciprocal`` intent the price, with the
currency as a Wikidata URI and every amount as a string, as FEP-0837 writes them. Mastodon
does not show a ``Proposal``, so followers on servers that do not know our vocabulary
also get :func:`to_note`: the title, the price, a link and the hashtags, as a post, with
a FEP-e232 link to the ``Proposal``.

Reading what peers send is :func:`from_proposal` (in :mod:`node.offers.remote`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from node.offers import categories, currencies
from node.offers.markdown import excerpt
from node.offers.model import UNITS, Image, Kind, Offer, Options, Price
from node.offers.remote import RemoteOffer, from_proposal
from node.offers.validation import decimal_text
from node.offers.vocabulary import (
    ACTION_DELIVER_SERVICE,
    ACTION_TRANSFER,
    NOTE_CONTEXT,
    OBJECT_LINK_MEDIA_TYPE,
    PRIMARY_FRAGMENT,
    PROPOSAL_CONTEXT,
    PUBLIC,
    PURPOSE_OFFER,
    RECIPROCAL_FRAGMENT,
    UNIT_ONE,
    category_uri,
)

__all__ = ["RemoteOffer", "format_price", "from_proposal", "to_note", "to_proposal"]

HashtagHref = Callable[[str], str]
"""Where a category's hashtag links to on this node, given its slug."""


def to_proposal(
    offer: Offer,
    *,
    id: str,
    actor: str,
    published: datetime,
    updated: datetime | None = None,
    url: str | None = None,
    followers: str | None = None,
    hashtag_href: HashtagHref,
) -> dict[str, Any]:
    """The offer as a FEP-0837 ``Proposal`` with id ``id``, attributed to ``actor``.

    ``url`` is the offer's HTML page; ``followers`` (the actor's collection) goes in
    ``cc``. A withdrawn offer is not published this way: it is a ``Tombstone``.
    """
    document: dict[str, Any] = {
        "@context": PROPOSAL_CONTEXT,
        "id": id,
        "type": "Proposal",
        "purpose": PURPOSE_OFFER,
        "attributedTo": actor,
        "name": offer.title,
        "nameMap": dict(offer.titles),
    }
    if offer.descriptions_html:
        main = offer.descriptions_html.get(offer.language) or next(
            iter(offer.descriptions_html.values())
        )
        document["content"] = main
        document["contentMap"] = dict(offer.descriptions_html)
        document["mediaType"] = "text/html"
    if url is not None:
        document["url"] = url
    document["published"] = format_datetime(published)
    if updated is not None:
        document["updated"] = format_datetime(updated)
    document["publishes"] = _primary_intent(offer, id)
    if offer.price is not None:
        document["reciprocal"] = _reciprocal_intent(offer.price, id)
    # The price is for one unit, and any whole number of units (from the minimum up)
    # may be ordered: FEP-0837's unitBased.
    document["unitBased"] = True
    if offer.end_time is not None:
        document["endTime"] = format_datetime(offer.end_time)
    if offer.location is not None:
        document["location"] = _place(offer)
    if offer.images:
        document["attachment"] = [_image(image) for image in offer.images]
    document["tag"] = _hashtags(offer, hashtag_href)
    for term, options in (
        ("claims", offer.claims),
        ("deliveryOptions", offer.delivery),
        ("paymentOptions", offer.payment),
    ):
        if options:
            document[term] = _options(options)
    document["to"] = [PUBLIC]
    if followers is not None:
        document["cc"] = [followers]
    return document


def to_note(
    offer: Offer,
    *,
    id: str,
    proposal_id: str,
    actor: str,
    published: datetime,
    updated: datetime | None = None,
    url: str | None = None,
    followers: str | None = None,
    hashtag_href: HashtagHref,
) -> dict[str, Any]:
    """The readable companion of the ``Proposal`` ``proposal_id``: a ``Note`` Mastodon
    shows as a post, in each of the offer's languages (``contentMap``)."""
    link = url or proposal_id
    content_map = {
        language: _note_content(offer, language, link, hashtag_href) for language in offer.titles
    }
    document: dict[str, Any] = {
        "@context": NOTE_CONTEXT,
        "id": id,
        "type": "Note",
        "attributedTo": actor,
        "content": content_map[offer.language],
        "contentMap": content_map,
        "url": link,
        "published": format_datetime(published),
    }
    if updated is not None:
        document["updated"] = format_datetime(updated)
    if offer.images:
        # Mastodon shows Document attachments with a media type as pictures.
        document["attachment"] = [{**_image(image), "type": "Document"} for image in offer.images]
    document["tag"] = [
        *_hashtags(offer, hashtag_href),
        # FEP-e232: a link to the full offer, for software that can show it.
        {"type": "Link", "mediaType": OBJECT_LINK_MEDIA_TYPE, "href": proposal_id},
    ]
    document["to"] = [PUBLIC]
    if followers is not None:
        document["cc"] = [followers]
    return document


def format_price(price: Price, unit: str, language: str) -> str:
    """ "3.50 EUR / kg", or "3,50 EUR / kg" in French."""
    amount = price.amount
    if amount == amount.to_integral_value():
        text = decimal_text(amount.quantize(Decimal(1)))
    elif amount == amount.quantize(Decimal("0.01")):
        text = decimal_text(amount.quantize(Decimal("0.01")))  # "3.5" shows as "3.50"
    else:
        text = decimal_text(amount.normalize())
    if language.split("-")[0] == "fr":
        text = text.replace(".", ",")
    unit_label = UNITS[unit].labels.get(language.split("-")[0], UNITS[unit].labels["en"])
    return f"{text} {price.currency} / {unit_label}"


def format_datetime(moment: datetime) -> str:
    """An ``xsd:dateTime`` in UTC, to the second, as Mastodon writes them."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- parts ------------------------------------------------------------------------------


def _primary_intent(offer: Offer, proposal_id: str) -> dict[str, Any]:
    unit = UNITS[offer.unit].wire
    intent: dict[str, Any] = {
        "type": "Intent",
        "id": f"{proposal_id}#{PRIMARY_FRAGMENT}",
        "action": ACTION_DELIVER_SERVICE if offer.kind is Kind.SERVICE else ACTION_TRANSFER,
        "resourceConformsTo": category_uri(offer.categories[0]),
        "resourceQuantity": _quantity(unit, Decimal(1)),
    }
    if offer.available is not None:
        intent["availableQuantity"] = _quantity(unit, offer.available)
    if offer.minimum is not None:
        intent["minimumQuantity"] = _quantity(unit, offer.minimum)
    return intent


def _reciprocal_intent(price: Price, proposal_id: str) -> dict[str, Any]:
    return {
        "type": "Intent",
        "id": f"{proposal_id}#{RECIPROCAL_FRAGMENT}",
        "action": ACTION_TRANSFER,
        "resourceConformsTo": currencies.uri_for(price.currency),
        "resourceQuantity": _quantity(UNIT_ONE, price.amount),
    }


def _quantity(unit: str, amount: Decimal) -> dict[str, str]:
    # Amounts are strings, as in FEP-0837's examples and Mitra: no float rounding.
    return {"hasUnit": unit, "hasNumericalValue": decimal_text(amount)}


def _place(offer: Offer) -> dict[str, Any]:
    assert offer.location is not None
    place: dict[str, Any] = {"type": "Place"}
    if offer.location.name is not None:
        place["name"] = offer.location.name
    if offer.location.latitude is not None and offer.location.longitude is not None:
        place["latitude"] = offer.location.latitude
        place["longitude"] = offer.location.longitude
    return place


def _image(image: Image) -> dict[str, Any]:
    attachment: dict[str, Any] = {"type": "Image", "mediaType": image.media_type, "url": image.url}
    if image.description:
        attachment["name"] = image.description
    return attachment


def _hashtags(offer: Offer, hashtag_href: HashtagHref) -> list[dict[str, Any]]:
    return [
        {"type": "Hashtag", "name": f"#{slug}", "href": hashtag_href(slug)}
        for slug in offer.categories
    ]


def _options(options: Options) -> list[Any]:
    return [*options.known, *({"name": text} for text in options.other)]


def _note_content(offer: Offer, language: str, link: str, hashtag_href: HashtagHref) -> str:
    parts = [f"<p><strong>{html.escape(offer.titles[language])}</strong></p>"]
    if offer.price is not None:
        parts.append(f"<p>{html.escape(format_price(offer.price, offer.unit, language))}</p>")
    description = offer.descriptions_html.get(language)
    if description:
        parts.append(f"<p>{html.escape(excerpt(description))}</p>")
    href = html.escape(link, quote=True)
    parts.append(f'<p><a href="{href}">{html.escape(link)}</a></p>')
    tags = " ".join(
        f'<a href="{html.escape(hashtag_href(slug), quote=True)}" class="mention hashtag" '
        f'rel="tag">#<span>{html.escape(slug)}</span></a>'
        for slug in offer.categories
    )
    labels = ", ".join(
        html.escape(category.label(language.split("-")[0]))
        for slug in offer.categories
        if (category := categories.get(slug)) is not None
    )
    parts.append(f"<p>{labels}<br>{tags}</p>" if labels else f"<p>{tags}</p>")
    return "".join(parts)
