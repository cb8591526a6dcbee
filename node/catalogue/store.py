"""Writing the catalogue: an offer stored or replaced at its id, withdrawn, or removed
with the co-op that published it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from federation.inbox import host_of
from node.catalogue.text import RESERVED, cell_word, filter_word, price_word, search_text
from node.errors import Forbidden
from node.storage.tables import catalogue_words, offer_categories, offer_claims, offers

ACTIVE = "active"
WITHDRAWN = "withdrawn"
# The words looked up in one statement (each is a bound parameter).
WORDS_AT_ONCE = 500
# Exact prices: the amount times 10**PRICE_SCALE, as an integer.
PRICE_SCALE = 4


@dataclass(frozen=True, slots=True)
class Entry:
    """One offer as the catalogue keeps it, whoever published it."""

    uri: str
    actor: str
    title: str
    published: datetime
    updated: datetime
    document: dict[str, Any]
    status: str = ACTIVE
    local: bool = False
    # Everything the offer is found by: titles and descriptions in every language
    # (plain text), the labels of its categories in every language, claims, place.
    texts: Sequence[str] = ()
    categories: Sequence[str] = ()
    claims: Sequence[str] = ()
    currency: str | None = None
    price: Decimal | None = None
    unit: str | None = None
    place: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    end_time: datetime | None = None
    source: dict[str, Any] | None = field(default=None)


def scaled_price(amount: Decimal) -> int:
    """``Decimal("3.50")`` → 35000; more than four decimals is refused, not rounded."""
    scaled = amount.scaleb(PRICE_SCALE)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {PRICE_SCALE} decimals")
    return int(scaled)


# Beyond this a price does not fit the column: kept in the document, not searchable by
# price (a peer may count in tiny units, as Mitra does in piconeros).
MAX_SCALED_PRICE = 2**63 - 1


def _searchable_price(amount: Decimal | None) -> int | None:
    if amount is None or not amount.is_finite() or amount < 0:
        return None
    try:
        scaled = scaled_price(amount)
    except ValueError:
        return None
    return scaled if scaled <= MAX_SCALED_PRICE else None


def unscaled_price(value: int) -> Decimal:
    return Decimal(value).scaleb(-PRICE_SCALE).normalize()


def _row(entry: Entry, now: datetime) -> dict[str, Any]:
    price = _searchable_price(entry.price)
    return {
        "uri": entry.uri,
        "actor": entry.actor,
        "host": host_of(entry.actor),
        "local": int(entry.local),
        "status": entry.status,
        "title": entry.title[:512],
        "currency": entry.currency,
        "price_e4": price,
        "unit": entry.unit,
        "place": entry.place,
        "latitude": entry.latitude,
        "longitude": entry.longitude,
        "end_time": entry.end_time,
        "published": entry.published,
        "updated": entry.updated,
        "received_at": now,
        "search_text": search_text(
            [
                entry.title,
                *entry.texts,
                entry.place,
                *(filter_word("category", c) for c in entry.categories),
                *(filter_word("claim", c) for c in entry.claims),
                filter_word("coop", entry.actor),
                None
                if entry.latitude is None or entry.longitude is None
                else cell_word(entry.latitude, entry.longitude),
                None
                if entry.currency is None or price is None
                else price_word(entry.currency, price),
            ]
        ),
        "document": json.dumps(entry.document, ensure_ascii=False, separators=(",", ":")),
        "source": None if entry.source is None else json.dumps(entry.source, ensure_ascii=False),
    }


def put(conn: Connection, entry: Entry, *, now: datetime) -> int:
    """Store ``entry``, or replace the offer at its id; returns the offer's row id.

    Only the co-op that published an offer may replace it: an entry naming another
    actor for a stored id is refused (the inbox checks origins first; this holds
    whatever the path).
    """
    values = _row(entry, now)
    stored = conn.execute(
        select(offers.c.id, offers.c.actor).where(offers.c.uri == entry.uri)
    ).first()
    if stored is not None and stored.actor != entry.actor:
        raise Forbidden(f"{entry.uri} belongs to {stored.actor}, not {entry.actor}")
    _remember_words(conn, [values["search_text"]])
    if stored is None:
        inserted = conn.execute(insert(offers).values(values).returning(offers.c.id))
        offer_id = int(inserted.scalar_one())
    else:
        offer_id = int(stored.id)
        conn.execute(update(offers).where(offers.c.id == offer_id).values(values))
        conn.execute(delete(offer_categories).where(offer_categories.c.offer_id == offer_id))
        conn.execute(delete(offer_claims).where(offer_claims.c.offer_id == offer_id))
    _link(conn, offer_categories, "slug", offer_id, entry.categories)
    _link(conn, offer_claims, "claim", offer_id, entry.claims)
    return offer_id


def put_many(conn: Connection, entries: Sequence[Entry], *, now: datetime) -> int:
    """Store many entries at once (a backfill's page, say): new offers in multi-row
    statements, known ones replaced one by one as :func:`put` does. Returns how many
    were new."""
    uris = [e.uri for e in entries]
    known = set(conn.execute(select(offers.c.uri).where(offers.c.uri.in_(uris))).scalars())
    fresh = [e for e in dict((e.uri, e) for e in entries).values() if e.uri not in known]
    for entry in entries:
        if entry.uri in known:
            put(conn, entry, now=now)
    if not fresh:
        return 0
    # A plain executemany, then the ids by uri: cheaper than RETURNING many rows in order.
    rows = [_row(e, now) for e in fresh]
    _remember_words(conn, [row["search_text"] for row in rows])
    conn.execute(insert(offers), rows)
    ids = {
        str(uri): int(offer_id)
        for offer_id, uri in conn.execute(
            select(offers.c.id, offers.c.uri).where(offers.c.uri.in_([e.uri for e in fresh]))
        )
    }
    categories = [
        {"offer_id": ids[e.uri], "slug": slug[:64]}
        for e in fresh
        for slug in dict.fromkeys(e.categories)
    ]
    claims = [
        {"offer_id": ids[e.uri], "claim": claim[:64]}
        for e in fresh
        for claim in dict.fromkeys(e.claims)
    ]
    if categories:
        conn.execute(insert(offer_categories), categories)
    if claims:
        conn.execute(insert(offer_claims), claims)
    return len(fresh)


def _remember_words(conn: Connection, texts: Iterable[str]) -> None:
    """Add the words of these searchable texts that the catalogue's words lack (see
    node.storage.tables.catalogue_words): nearly always none, found in a read for
    each WORDS_AT_ONCE words."""
    found = sorted({w for text in texts for w in text.split() if not w.startswith(RESERVED)})
    known: set[str] = set()
    for start in range(0, len(found), WORDS_AT_ONCE):
        chunk = found[start : start + WORDS_AT_ONCE]
        known.update(
            conn.execute(
                select(catalogue_words.c.word).where(catalogue_words.c.word.in_(chunk))
            ).scalars()
        )
    new = [w for w in found if w not in known]
    if new:
        dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
        conn.execute(
            dialect.insert(catalogue_words).on_conflict_do_nothing(index_elements=["word"]),
            [{"word": w} for w in new],
        )


def _link(conn: Connection, table: Any, column: str, offer_id: int, values: Iterable[str]) -> None:
    rows = [{"offer_id": offer_id, column: v[:64]} for v in dict.fromkeys(values)]
    if rows:
        conn.execute(insert(table), rows)


def withdraw(conn: Connection, uri: str, *, actor: str, now: datetime) -> bool:
    """Mark the offer withdrawn (it stays, as a tombstone would); False if ``actor``
    has no offer at ``uri``."""
    result = conn.execute(
        update(offers)
        .where(offers.c.uri == uri, offers.c.actor == actor)
        .values(status=WITHDRAWN, updated=now, received_at=now)
    )
    return bool(result.rowcount)


def remove_actor(conn: Connection, actor: str) -> int:
    """Forget every offer of ``actor`` (the co-op is no longer followed); returns how
    many."""
    return int(conn.execute(delete(offers).where(offers.c.actor == actor)).rowcount)


def count(conn: Connection, *, actor: str | None = None) -> int:
    query = select(func.count()).select_from(offers)
    if actor is not None:
        query = query.where(offers.c.actor == actor)
    return int(conn.execute(query).scalar_one())


# SQLite's text index grows in segments: each write of offers adds one, and FTS5 merges
# those of a size as they pile up, so that a catalogue filled over time keeps about one
# per size (ten at 1,000,000 offers), every one read by every search. Merged into one,
# the same searches took p95 18.5 ms against 24.4 ms (bench/catalogue.py's mix). Merging
# goes a step of about MERGE_PAGES pages written at a time (some 40 ms at 1,000,000
# offers, 4 s in all), so that other writes go between the steps.
MERGE_PAGES = 500


def merge_text_index(conn: Connection) -> bool:
    """One step of merging SQLite's text index into one segment; whether it had
    anything to merge. PostgreSQL's index has nothing of the kind: False."""
    if conn.dialect.name != "sqlite":
        return False
    changes = "SELECT total_changes()"
    before = int(conn.exec_driver_sql(changes).scalar_one())
    # A negative number of pages merges every segment, whatever its size (FTS5).
    conn.exec_driver_sql(
        "INSERT INTO offers_fts(offers_fts, rank) VALUES ('merge', ?)", (-MERGE_PAGES,)
    )
    # A step that found one segment changed one row (FTS5's own record): nothing done.
    return int(conn.exec_driver_sql(changes).scalar_one()) - before > 1
