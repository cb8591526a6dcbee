"""What the catalogue's page and an offer's page read, each in one unit of work: the
offers (from :mod:`node.offers.store`), what the peers' actors call themselves, and
the co-op's name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from node.catalogue import search
from node.offers import store
from node.services import identity
from node.services.remote_actors import Label
from node.services.remote_actors import labels as actor_labels

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True, slots=True)
class CatalogueRead:
    """A page of the catalogue's search: the hits, where each leads, what the peers'
    actors call themselves, and the co-op's name."""

    page: search.Page
    linked: dict[str, store.Linked]
    labels: dict[str, Label]
    coop_name: str | None


def read_catalogue(
    conn: Connection, query: search.Query, *, now: datetime, local_actor: str, handle: str
) -> CatalogueRead:
    """What the catalogue page shows for ``query``; the labels of the peers whose
    offers are among the hits (``local_actor``'s are the co-op's own)."""
    found = search.search(conn, query, now=now)
    remote = [hit.actor for hit in found.hits if hit.actor != local_actor]
    return CatalogueRead(
        page=found,
        linked=store.linked(conn, [hit.uri for hit in found.hits]),
        labels=actor_labels(conn, remote) if remote else {},
        coop_name=identity.find_name(conn, handle),
    )


@dataclass(frozen=True, slots=True)
class OfferRead:
    """An offer's page: the offer (``None``: no such offer), the label of the peer that
    published it, and the co-op's name."""

    offer: store.Shown | None
    label: Label | None
    coop_name: str | None


def _offer_read(conn: Connection, offer: store.Shown | None, handle: str) -> OfferRead:
    label = None
    if offer is not None and not offer.local:
        label = actor_labels(conn, [offer.actor]).get(offer.actor)
    return OfferRead(offer=offer, label=label, coop_name=identity.find_name(conn, handle))


def read_local_offer(conn: Connection, uri: str, *, handle: str) -> OfferRead:
    """The page of the co-op ``handle``'s own offer at ``uri``."""
    return _offer_read(conn, store.shown_local(conn, uri), handle)


def read_catalogue_offer(conn: Connection, offer_id: int, *, handle: str) -> OfferRead:
    """The page of the catalogue's offer of row ``offer_id``."""
    return _offer_read(conn, store.shown_by_id(conn, offer_id), handle)


@dataclass(frozen=True, slots=True)
class SearchRead:
    """A page of the catalogue's search, with the stored document of each hit (its
    titles in every language it has)."""

    page: search.Page
    linked: dict[str, store.Linked]


def read_search(conn: Connection, query: search.Query, *, now: datetime) -> SearchRead:
    """What the catalogue's JSON API answers for ``query``."""
    found = search.search(conn, query, now=now)
    return SearchRead(page=found, linked=store.linked(conn, [hit.uri for hit in found.hits]))
