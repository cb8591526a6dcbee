"""PostgreSQL: text indexes over the offers stored last only ("the recent indexes").

A search by relevance ranks the CANDIDATES matching offers stored last (see search.py).
PostgreSQL's text index yields matches unordered: to keep the thousand stored last it
reads every match's row, tens of thousands for a common word in a catalogue of a
million (60 to 90 ms). Partial indexes of the same words over the last offers stored
(TIERS: from 50,000 to 100,000, from 100,000 to 200,000 and from 400,000 to 800,000)
hold a search's candidates whenever enough of their offers match (one in fifty, one in
a hundred, one in four hundred), and yield the rows of their own matches only (3 to
15 ms): a search asks the smallest that likely holds them, as the last stored show,
and the whole index only when none does. They cost the writes of offers a little
(4,500 to 5,300 offers stored a second with three, 4,800 to 5,200 with none, at
1,000,000; bench/catalogue.py's searches: p95 31 ms with three, 35 with two, 39 with
none).

Each is named after its tier and the last id it leaves out
(``ix_offers_search_recent<tier>_beyond_<id>``: it holds the offers of greater ids) and
made again, further on, by the catalogue's background round once twice its offers lie
past that id (:func:`renew`): the new one is built beside the old (``CREATE INDEX
CONCURRENTLY``, which lets writes go on, about a second at 1,000,000 offers), then the
old one is dropped. SQLite's text index yields matches newest first: it has none.

A search sorted by recency wants the offers published last, which are not always those
stored last (a co-op followed sends its whole catalogue, old offers included): one more
index holds the offers published from a moment on, at least the PUBLISHED last
(``ix_offers_search_published_from_<seconds since 1970>``), made again once twice as
many were published since. Most such searches find their page in it (2 ms for wine near
Lille, where the whole text index took 25).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import Connection

from node.storage.tables import offers

# The offers each recent index holds at least (and at most twice as many): a search
# asks the smallest first.
TIERS = (50_000, 100_000, 400_000)
_NAME = re.compile(r"ix_offers_search_recent(\d+)_beyond_(\d+)")
# Those of an older coopnode, whose conditions were "id > <id>" ("_after_": PostgreSQL's
# plans read the primary key's index beside such a text index, taking the two
# conditions for independent ones) and then "id + 0 > <id>" ("_past_": a search read a
# larger recent index as readily as its own): see recent_condition. Dropped.
_OLDER_NAME = re.compile(r"ix_offers_search_recent\d+_(?:after|past)_\d+")
# The offers the index of the offers published last holds at least (and at most twice).
PUBLISHED = 50_000
_PUBLISHED_NAME = re.compile(r"ix_offers_search_published_from_(\d+)")
# The entries each text index holds before merging them, in kB (migration 0026: every
# search reads them all; PostgreSQL's own default is 4 MB).
PENDING_LIST_KB = 256
# Held while the index is made again, so that two workers do not both make it.
LOCK_KEY = 0x636F_6F70_7265_63  # "cooprec"


def recent_tiers(conn: Connection) -> tuple[tuple[int, int], ...]:
    """The recent indexes' tiers and the ids after which each holds every offer, the
    smallest index's first (none on SQLite): each the greatest of its tier's valid ones,
    while one is made again."""
    found: dict[int, int] = {}
    for tier, after, valid in _indexes(conn).values():
        if valid:
            found[tier] = max(after, found.get(tier, after))
    return tuple(sorted(found.items(), key=lambda pair: pair[1], reverse=True))


def published_from(conn: Connection) -> datetime | None:
    """The moment from which the index of the offers published last holds every offer
    (None where there is none valid): the latest of its valid ones."""
    starts = [start for start, valid in _published(conn).values() if valid]
    return _moment(max(starts)) if starts else None


def renew(engine: Engine) -> list[str]:
    """Make each recent index again (TIERS) if more than twice the offers it holds at
    least lie past its id (or if there is none and the catalogue holds as many), and
    drop the others; the names of the indexes made."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar():
            return []  # another process is at it
        try:
            return _renew(conn)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})


def _renew(conn: Connection) -> list[str]:
    indexes = _indexes(conn)
    # One left invalid by a build that did not end (its process stopped) is dropped
    # first: it would take the name of the one made again.
    for name, (_, _, valid) in indexes.items():
        if not valid:
            _drop(conn, name)
    for name, _ in _all(conn):
        if _OLDER_NAME.fullmatch(name):
            _drop(conn, name)
    top = int(conn.execute(select(func.max(offers.c.id))).scalar() or 0)
    made = []
    for tier, held in enumerate(TIERS, start=1):
        ours = {name: after for name, (t, after, valid) in indexes.items() if t == tier and valid}
        current = max(ours.values(), default=0)
        if top - current > 2 * held:
            current = top - held
            name = f"ix_offers_search_recent{tier}_beyond_{current}"
            _build(conn, name, recent_condition(tier, current))
            made.append(name)
        for name, after in ours.items():
            if after != current:
                _drop(conn, name)
    # Those of tiers no longer made.
    for name, (tier, _, valid) in indexes.items():
        if valid and tier > len(TIERS):
            _drop(conn, name)
    made += _renew_published(conn)
    return made


def _renew_published(conn: Connection) -> list[str]:
    """Make the index of the offers published last again if more than twice PUBLISHED
    were published since its moment (or if there is none and the catalogue holds as
    many), and drop the others."""
    indexes = _published(conn)
    for name, (_, valid) in indexes.items():
        if not valid:
            _drop(conn, name)
    ours = {name: start for name, (start, valid) in indexes.items() if valid}
    current = max(ours.values(), default=None)
    # Counted no further than it matters.
    since = select(offers.c.id).limit(2 * PUBLISHED + 1)
    if current is not None:
        since = since.where(offers.c.published >= _moment(current))
    counted = since.subquery()
    made: list[str] = []
    if conn.execute(select(func.count()).select_from(counted)).scalar_one() > 2 * PUBLISHED:
        moment = conn.execute(
            select(offers.c.published)
            .order_by(offers.c.published.desc())
            .offset(PUBLISHED)
            .limit(1)
        ).scalar()
        if moment is None:  # offers removed meanwhile
            return made
        # Dates are the peers' (one before 1970 is still a date): the index then holds
        # every offer published since, a few more than it needs.
        current = max(0, math.floor(moment.timestamp()))
        name = f"ix_offers_search_published_from_{current}"
        _build(conn, name, f"published >= {published_literal(current)}")
        made.append(name)
    for name, start in ours.items():
        if start != current:
            _drop(conn, name)
    return made


def recent_condition(tier: int, after: int) -> str:
    """A recent index's condition, as SQL writes it in the index and in a search (for
    PostgreSQL to prove that the search's rows are the index's, it must see the same
    expression and constant). The id is added the tier's number to, both sides alike:
    the primary key's index cannot read that, where with "id > <id>" PostgreSQL's plans
    read it beside the text index, its rows taken as independent of the index's own (a
    search near Grenoble: 24 ms with the next larger recent index and the primary key,
    13.5 with this one alone); and a search's condition holds of its own index only.
    With the same expression in each ("id + 0 > <id>"), the condition of each larger
    index followed from a smaller one's, and PostgreSQL, whose costs tell such text
    indexes apart by little or nothing, read a larger as readily: twice the rows
    ("qualité Die" near Die up to 129 EUR, at 1,000,000 offers: 2,853 rows and 9.9 ms
    from the index of the 100,000 last, 1,578 from that of the 50,000)."""
    return f"id + {tier} > {after + tier}"


def published_literal(seconds: int) -> str:
    """The index's moment as SQL writes it, in its condition and in a search's (for
    PostgreSQL to prove that the search's rows are the index's, it must see the same
    constant, not a parameter)."""
    return f"TIMESTAMPTZ '{_moment(seconds).isoformat()}'"


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _published(conn: Connection) -> dict[str, tuple[int, bool]]:
    """The indexes of the offers published last by name: the moment each holds the
    offers from (in seconds since 1970), and whether it is valid."""
    found = {}
    for name, valid in _all(conn):
        if matched := _PUBLISHED_NAME.fullmatch(name):
            found[name] = (int(matched[1]), valid)
    return found


def _indexes(conn: Connection) -> dict[str, tuple[int, int, bool]]:
    """The recent indexes by name: their tier (1 for the smallest), the id each
    starts after, and whether it is valid (complete: a build that stopped leaves its
    index invalid)."""
    found = {}
    for name, valid in _all(conn):
        if matched := _NAME.fullmatch(name):
            found[name] = (int(matched[1]), int(matched[2]), valid)
    return found


def _all(conn: Connection) -> list[tuple[str, bool]]:
    """The offers' indexes (none on SQLite), each with whether it is valid."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.execute(
        text(
            "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
            "WHERE indrelid = 'offers'::regclass"
        )
    )
    return [(name.rpartition(".")[2], bool(valid)) for name, valid in rows]


def _build(conn: Connection, name: str, condition: str) -> None:
    """A text index of the offers meeting ``condition``, built beside the others, its
    list of entries not yet merged as short as the whole index's (PENDING_LIST_KB).
    Both are made here of integers (ids, moments): nothing of a peer's reaches them."""
    conn.exec_driver_sql(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON offers "
        f"USING gin (search_vector) WITH (gin_pending_list_limit = {PENDING_LIST_KB}) "
        f"WHERE {condition}"
    )


def _drop(conn: Connection, name: str) -> None:
    conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
