"""Catalogue entries made from offers: our own (:class:`node.offers.Offer`) and those
read from peers (:class:`node.offers.RemoteOffer`)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from node.catalogue.store import ACTIVE, WITHDRAWN, Entry
from node.offers.categories import search_labels
from node.offers.model import Offer, Options
from node.offers.remote import RemoteOffer

_TAG = re.compile(r"<[^>]*>")


def plain_text(fragment: str) -> str:
    """Sanitised HTML as the words it shows (tags dropped, entities read)."""
    return html.unescape(_TAG.sub(" ", fragment))


def _option_words(options: Options) -> list[str]:
    return [*(k.replace("_", " ") for k in options.known), *options.other]


def _texts(
    titles: Mapping[str, str],
    descriptions_html: Mapping[str, str],
    categories: Iterable[str],
    claims: Options,
    extra: Iterable[str] = (),
) -> list[str]:
    return [
        *titles.values(),
        *(plain_text(d) for d in descriptions_html.values()),
        *search_labels(categories),
        *_option_words(claims),
        *extra,
    ]


def local_entry(
    offer: Offer,
    *,
    uri: str,
    actor: str,
    document: dict[str, Any],
    source: dict[str, Any],
    published: datetime,
    updated: datetime,
) -> Entry:
    location = offer.location
    return Entry(
        uri=uri,
        actor=actor,
        title=offer.title,
        published=published,
        updated=updated,
        document=document,
        status=WITHDRAWN if offer.withdrawn else ACTIVE,
        local=True,
        texts=_texts(offer.titles, offer.descriptions_html, offer.categories, offer.claims),
        categories=offer.categories,
        claims=offer.claims.known,
        currency=None if offer.price is None else offer.price.currency,
        price=None if offer.price is None else offer.price.amount,
        unit=offer.unit,
        place=None if location is None else location.name,
        latitude=None if location is None else location.latitude,
        longitude=None if location is None else location.longitude,
        end_time=offer.end_time,
        source=source,
    )


def remote_entry(remote: RemoteOffer, *, document: dict[str, Any], now: datetime) -> Entry:
    location = remote.location
    price = remote.price
    published = remote.published or now
    return Entry(
        uri=remote.id,
        actor=remote.attributed_to,
        title=next(iter(remote.titles.values()), remote.id)[:512],
        published=published,
        updated=remote.updated or published,
        document=document,
        texts=_texts(
            remote.titles, remote.descriptions_html, remote.categories, remote.claims, remote.tags
        ),
        categories=remote.categories,
        claims=remote.claims.known,
        currency=None if price is None else (price.currency or price.currency_uri),
        price=None if price is None else price.amount,
        unit=remote.unit,
        place=None if location is None else location.name,
        latitude=None if location is None else location.latitude,
        longitude=None if location is None else location.longitude,
        end_time=remote.end_time,
    )
