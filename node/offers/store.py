"""The offers table as the pages, the JSON API and the command line read it: the
co-op's own offers at their ids, in their collection and under their hashtags, a
member's list of them, and any offer of the catalogue on its page.

The catalogue's writer is :mod:`node.catalogue.store` and its search
:mod:`node.catalogue.search`. Every function takes an open connection, so that a page
reads all it shows in one unit of work (:mod:`node.offers.reading`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from node.catalogue.store import WITHDRAWN
from node.storage.ids import MAX_ROW_ID, is_row_id
from node.storage.tables import offer_categories, offers

# A price is stored as an integer of ten-thousandths of the currency.
_PRICE_SCALE = Decimal(10_000)


def _price(price_e4: int | None) -> Decimal | None:
    return None if price_e4 is None else Decimal(price_e4) / _PRICE_SCALE


def _listed(actor: str) -> tuple[Any, ...]:
    """The co-op's offers its collections list: its own, not withdrawn."""
    return (offers.c.actor == actor, offers.c.local == 1, offers.c.status != WITHDRAWN)


# --- one of the co-op's offers ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Published:
    """One of the co-op's offers as its id serves it: the ``Proposal`` document, the
    input it was made from (``None`` for one made before inputs were kept), its state."""

    document: str
    source: str | None
    status: str
    updated: datetime

    @property
    def withdrawn(self) -> bool:
        return self.status == WITHDRAWN


def find_published(conn: Connection, uri: str) -> Published | None:
    """The co-op's own offer at ``uri``, or ``None``."""
    row = conn.execute(
        select(offers.c.document, offers.c.source, offers.c.status, offers.c.updated).where(
            offers.c.uri == uri, offers.c.local == 1
        )
    ).first()
    if row is None:
        return None
    return Published(
        document=row.document, source=row.source, status=row.status, updated=row.updated
    )


@dataclass(frozen=True, slots=True)
class Editable:
    """What deciding on a change to one of the co-op's offers needs: who published it
    (``None`` when no member did) and the input it was made from."""

    author_id: int | None
    source: str | None
    status: str

    @property
    def withdrawn(self) -> bool:
        return self.status == WITHDRAWN


def find_editable(conn: Connection, uri: str) -> Editable | None:
    """The co-op's own offer at ``uri`` as its edit form needs it, or ``None``."""
    row = conn.execute(
        select(offers.c.author_id, offers.c.source, offers.c.status).where(
            offers.c.uri == uri, offers.c.local == 1
        )
    ).first()
    if row is None:
        return None
    return Editable(
        author_id=None if row.author_id is None else int(row.author_id),
        source=row.source,
        status=row.status,
    )


def photo_in_use(conn: Connection, media_key: str) -> bool:
    """Whether an offer's input names the stored photo ``media_key``. Keys are random:
    found in an offer's input, it is that offer's photo."""
    found = conn.execute(
        select(offers.c.id).where(offers.c.source.contains(media_key)).limit(1)
    ).first()
    return found is not None


@dataclass(frozen=True, slots=True)
class OwnOffer:
    """One of the co-op's own offers as a listing shows it."""

    uri: str
    status: str
    title: str


def list_own_offers(conn: Connection) -> list[OwnOffer]:
    """The co-op's own offers (withdrawn ones too), newest first."""
    rows = conn.execute(
        select(offers.c.uri, offers.c.status, offers.c.title)
        .where(offers.c.local == 1)
        .order_by(offers.c.id.desc())
    )
    return [OwnOffer(uri=row.uri, status=row.status, title=row.title) for row in rows]


# --- the co-op's collections --------------------------------------------------------------


def count_listed(conn: Connection, actor: str) -> int:
    """How many offers the co-op ``actor``'s ``offers`` collection lists."""
    return int(conn.execute(select(func.count()).where(*_listed(actor))).scalar_one())


def listed_page(
    conn: Connection, actor: str, *, before: int | None, limit: int
) -> list[tuple[int, str]]:
    """Up to ``limit`` offers of the co-op's collection, as (row id, ``Proposal``
    document), newest first and below the row ``before``: the collection's pages are
    cut by position, so that offers published or withdrawn during a walk shift
    nothing. A ``before`` above every row id is no bound at all."""
    query = select(offers.c.id, offers.c.document).where(*_listed(actor))
    if before is not None and before <= MAX_ROW_ID:
        query = query.where(offers.c.id < before)
    rows = conn.execute(query.order_by(offers.c.id.desc()).limit(limit))
    return [(int(row.id), str(row.document)) for row in rows]


def tagged(conn: Connection, slug: str, *, limit: int) -> list[str]:
    """The ids of the co-op's offers in the category ``slug``, newest first."""
    query = (
        select(offers.c.uri)
        .join(offer_categories, offer_categories.c.offer_id == offers.c.id)
        .where(
            offer_categories.c.slug == slug,
            offers.c.local == 1,
            offers.c.status != WITHDRAWN,
        )
        .order_by(offers.c.id.desc())
        .limit(limit)
    )
    return [str(uri) for uri in conn.execute(query).scalars()]


# --- a member's offers --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authored:
    """A line of a member's list of the co-op's offers."""

    uri: str
    title: str
    status: str
    price: Decimal | None
    currency: str | None
    unit: str | None
    end_time: datetime | None
    published: datetime

    @property
    def withdrawn(self) -> bool:
        return self.status == WITHDRAWN


def list_authored(conn: Connection, *, author_id: int | None, limit: int) -> list[Authored]:
    """The co-op's own offers by the member ``author_id`` (all of them with ``None``, as
    an admin sees them), newest first."""
    query = select(
        offers.c.uri,
        offers.c.title,
        offers.c.status,
        offers.c.price_e4,
        offers.c.currency,
        offers.c.unit,
        offers.c.end_time,
        offers.c.published,
    ).where(offers.c.local == 1)
    if author_id is not None:
        query = query.where(offers.c.author_id == author_id)
    query = query.order_by(offers.c.published.desc(), offers.c.id.desc()).limit(limit)
    return [
        Authored(
            uri=row.uri,
            title=row.title,
            status=row.status,
            price=_price(row.price_e4),
            currency=row.currency,
            unit=row.unit,
            end_time=row.end_time,
            published=row.published,
        )
        for row in conn.execute(query)
    ]


# --- any offer of the catalogue -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Linked:
    """Where a hit of the catalogue leads: its row id (the page of a peer's offer) and
    whether it is the co-op's own, with the document its card reads its title from."""

    id: int
    local: bool
    document: str


def linked(conn: Connection, uris: Sequence[str]) -> dict[str, Linked]:
    """The offers at ``uris``, by id (none asked, none read)."""
    if not uris:
        return {}
    rows = conn.execute(
        select(offers.c.uri, offers.c.id, offers.c.local, offers.c.document).where(
            offers.c.uri.in_(uris)
        )
    )
    return {
        row.uri: Linked(id=int(row.id), local=bool(row.local), document=row.document)
        for row in rows
    }


@dataclass(frozen=True, slots=True)
class Shown:
    """An offer as its page shows it, from the catalogue's columns and the document."""

    id: int
    uri: str
    actor: str
    local: bool
    title: str
    status: str
    currency: str | None
    price: Decimal | None
    unit: str | None
    place: str | None
    published: datetime
    end_time: datetime | None
    document: str

    @property
    def withdrawn(self) -> bool:
        return self.status == WITHDRAWN


_SHOWN = (
    offers.c.id,
    offers.c.uri,
    offers.c.actor,
    offers.c.local,
    offers.c.title,
    offers.c.status,
    offers.c.currency,
    offers.c.price_e4,
    offers.c.unit,
    offers.c.place,
    offers.c.published,
    offers.c.end_time,
    offers.c.document,
)


def _shown(conn: Connection, *where: Any) -> Shown | None:
    row = conn.execute(select(*_SHOWN).where(*where)).first()
    if row is None:
        return None
    return Shown(
        id=int(row.id),
        uri=row.uri,
        actor=row.actor,
        local=bool(row.local),
        title=row.title,
        status=row.status,
        currency=row.currency,
        price=_price(row.price_e4),
        unit=row.unit,
        place=row.place,
        published=row.published,
        end_time=row.end_time,
        document=row.document,
    )


def shown_local(conn: Connection, uri: str) -> Shown | None:
    """The co-op's own offer at ``uri``, for its page."""
    return _shown(conn, offers.c.uri == uri, offers.c.local == 1)


def shown_by_uri(conn: Connection, uri: str) -> Shown | None:
    """The catalogue's offer at ``uri``, ours or a peer's."""
    return _shown(conn, offers.c.uri == uri)


def shown_by_id(conn: Connection, offer_id: int) -> Shown | None:
    """The catalogue's offer of row ``offer_id`` (a peer's, as a rule), for its page;
    ``None`` too for an id no row can have."""
    if not is_row_id(offer_id):  # nor can SQL compare it on every engine
        return None
    return _shown(conn, offers.c.id == offer_id)


# --- the co-op's offers as publishing changes them ------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnInput:
    """One of the co-op's offers as a change to it starts from: the input it was made
    from (``None`` for one made before inputs were kept), when it was first published and
    last changed, and its state."""

    source: str | None
    published: datetime
    updated: datetime
    status: str


def find_own_input(conn: Connection, uri: str) -> OwnInput | None:
    """The co-op's own offer at ``uri`` as :class:`OwnInput`, or ``None``."""
    row = conn.execute(
        select(offers.c.source, offers.c.published, offers.c.updated, offers.c.status).where(
            offers.c.uri == uri, offers.c.local == 1
        )
    ).first()
    if row is None:
        return None
    return OwnInput(
        source=row.source, published=row.published, updated=row.updated, status=row.status
    )


def set_author(conn: Connection, uri: str, author_id: int) -> None:
    """Record the member who published the offer at ``uri``."""
    conn.execute(offers.update().where(offers.c.uri == uri).values(author_id=author_id))


def set_source(conn: Connection, uri: str, source: str) -> None:
    """Replace the input kept for the offer at ``uri`` (JSON text)."""
    conn.execute(offers.update().where(offers.c.uri == uri).values(source=source))
