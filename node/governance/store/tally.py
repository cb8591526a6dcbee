"""The tally from stored rows: the same :class:`Result` as :func:`tally`, counted by the
database.

At the close of a large vote, reading every ballot into Python objects costs more than
the tally itself, so the database does the part that grows with the number of ballots:
it picks each voter's counted ballot and groups the counted ballots by (college,
choices). Python then gets a handful of rows and decides with
:func:`node.governance.rules.tally.decide`, the very code :func:`tally` ends with, so both
paths agree on every share, threshold and reason.

What the rows already settle
    Every check that :func:`tally` makes on a single ballot (window, electorate,
    college, options) was made when the ballot was received: such ballots are stored
    with ``state = 'valid'``, the others with ``'refused'`` and their reason, and only
    valid ones are read here. Replays cannot be stored twice (activity ids are unique
    per proposal), so neither replays nor conflicting copies under one id exist in the
    table. What is left is choosing among a voter's valid ballots, and that is decided
    at count time, never at receipt: ordered by ``(cast_at, activity_id)``, the last
    one counts where the proposal allows changes, the first one otherwise.

Refusals and set-aside ballots are not turned into :class:`Refusal` objects: the
result's ``refused`` and ``set_aside`` are empty. :func:`statuses` says what became of
each valid ballot, for the published ballots collection.

Ordering of activity ids
    :func:`tally` orders ids as Python orders strings (by code point). SQLite compares
    text with ``memcmp`` on UTF-8, which is the same order; PostgreSQL compares with the
    database's collation, which may not be, so ids are compared under ``COLLATE "C"``
    there (byte order of UTF-8, again code-point order).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import Connection

from node.governance.rules.tally import Proposal, Result, check_roster, decide
from node.governance.store import coops, electorate
from node.governance.store.rows import Mode, StoredProposal

Status = Literal["counted", "replaced", "set aside"]

# Which of a voter's valid ballots counts: the first in (cast_at, activity_id) order,
# or the last. ``rank`` is 1 for the counted one.
_RANK = (
    "row_number() OVER (PARTITION BY voter ORDER BY cast_at {direction}, "
    "activity_id{collate} {direction})"
)

# SQLite: all valid ballots grouped, minus the ballots that do not count. Most voters
# send one ballot: only voters with several need ranking. Finding them reads the
# (proposal_id, voter, cast_at) index alone, without touching the table (refused ballots are counted
# there too, as the index cannot tell them apart; the ranking keeps valid ones only),
# and so does listing the ids of their ballots; the table is then read by id, in the
# order of its pages, rather than voter by voter across the whole file. With 1,000,000
# voters on SQLite this takes about 2.2 s of CPU; ranking every ballot with the window
# function, or a NOT EXISTS per ballot, takes several times longer: the first sorts
# every row by voter, the second looks up the table for every ballot (bench/tally.py
# --stored --compare). Everything that grows with the ballots is one statement, so
# the counts come from one snapshot even under PostgreSQL's READ COMMITTED.
_COUNTED = """
WITH several AS (
    SELECT voter FROM ballots WHERE proposal_id = :proposal
    GROUP BY voter HAVING count(*) > 1
),
theirs AS (
    SELECT id FROM ballots
    WHERE proposal_id = :proposal AND voter IN (SELECT voter FROM several)
),
ranked AS (
    SELECT college, choices, {rank} AS rank
    FROM ballots
    WHERE id IN (SELECT id FROM theirs) AND state = 'valid'
)
SELECT college, choices, sum(n) FROM (
    SELECT college, choices, count(*) AS n FROM ballots
    WHERE proposal_id = :proposal AND state = 'valid'
    GROUP BY college, choices
    UNION ALL
    SELECT college, choices, -count(*) AS n FROM ranked WHERE rank > 1
    GROUP BY college, choices
) AS made
GROUP BY college, choices
"""

# PostgreSQL: a ballot counts unless the same voter has a valid ballot after it (before
# it, where the first counts). PostgreSQL runs this as one hash anti-join over the
# valid ballots, 1.1 s for 1,000,000 voters against 1.7 s for the statement above;
# SQLite has no hash join and would look up the table for every ballot (6 s).
_UNBEATEN = """
SELECT college, choices, count(*) FROM ballots AS b
WHERE proposal_id = :proposal AND state = 'valid' AND NOT EXISTS (
    SELECT 1 FROM ballots AS o
    WHERE o.proposal_id = b.proposal_id AND o.voter = b.voter AND o.state = 'valid'
      AND (o.cast_at {beyond} b.cast_at OR (o.cast_at = b.cast_at
           AND o.activity_id COLLATE "C" {beyond} b.activity_id COLLATE "C"))
)
GROUP BY college, choices
"""

# The electorate's size and its colleges. Two statements rather than one GROUP BY
# college: SQLite groups by sorting every row, while DISTINCT keeps only the few
# colleges seen (0.19 s rather than 0.42 s for 1,000,000 voters).
_ELIGIBLE = "SELECT count(*) FROM proposal_voters WHERE proposal_id = :proposal"
_COLLEGES = "SELECT DISTINCT college FROM proposal_voters WHERE proposal_id = :proposal"

# Only voters with several ballots need ranking (found as in _COUNTED, from the index).
_STATUSES = """
WITH several AS (
    SELECT voter FROM ballots WHERE proposal_id = :proposal
    GROUP BY voter HAVING count(*) > 1
)
SELECT id, {rank} AS rank FROM ballots
WHERE proposal_id = :proposal AND state = 'valid' AND voter IN (SELECT voter FROM several)
"""


def count(conn: Connection, proposal_pk: int, proposal: Proposal) -> Result:
    """Count the stored ballots of proposal ``proposal_pk`` whose settings are
    ``proposal`` (``replacements_allowed`` mirrors the row's ``allow_change``).

    Equal to :func:`tally` over the same ballots and the electorate in
    ``proposal_voters``, except that ``refused`` and ``set_aside`` are left empty."""
    params = {"proposal": proposal_pk}
    eligible = conn.execute(text(_ELIGIBLE), params).scalar_one()
    roster: set[str | None] = set(conn.execute(text(_COLLEGES), params).scalars())
    check_roster(proposal, roster)
    pairs = counted_pairs(conn, proposal_pk, proposal.replacements_allowed)
    return decide(proposal, pairs, eligible=int(eligible), roster=roster)


def count_proposal(conn: Connection, proposal: StoredProposal) -> Result:
    """Count a stored proposal: its ballots; where it is counted by subtotals, also each
    other co-op's subtotal, the electorate being the host's members and the rosters read
    at the opening."""
    settings = proposal.tally_settings()
    if proposal.counting_mode is not Mode.SUBTOTAL:
        return count(conn, proposal.id, settings)
    pairs = counted_pairs(conn, proposal.id, settings.replacements_allowed)
    for college, made in coops.host_pairs(conn, proposal.id).items():
        mine = pairs.setdefault(college, {})
        for choices, n in made.items():
            mine[choices] = mine.get(choices, 0) + n
    roster = electorate.colleges(conn, proposal.id) | set(pairs)
    return decide(settings, pairs, eligible=proposal.eligible or 0, roster=roster)


def counted_pairs(
    conn: Connection, proposal_pk: int, last: bool
) -> dict[str | None, dict[tuple[str, ...], int]]:
    """Per college, how many counted ballots make each choice (the ``last`` ballot of
    a voter counting, or the first)."""
    pairs: dict[str | None, dict[tuple[str, ...], int]] = {}
    query = text(counted_query(conn.dialect.name, last))
    for college, choices, n in conn.execute(query, {"proposal": proposal_pk}):
        if not n:
            continue
        made = pairs.setdefault(college, {})
        key = tuple(json.loads(choices))
        # Two spellings of one list would be two groups: add rather than overwrite.
        made[key] = made.get(key, 0) + int(n)
    return pairs


def statuses(
    conn: Connection, proposal_pk: int, allow_change: bool
) -> Iterator[tuple[int, Status]]:
    """What became of the valid ballots of each voter who sent several, as ``(ballot id,
    status)``: the counted one, and the others "replaced" (a later one counts) or "set
    aside" (changes not allowed: the first one counts). A voter's only ballot counts
    and is not listed; refused ballots keep their stored reason and are not listed."""
    other: Status = "replaced" if allow_change else "set aside"
    query = text(_STATUSES.format(rank=_rank(conn.dialect.name, allow_change)))
    for ballot_id, rank in conn.execute(query, {"proposal": proposal_pk}):
        yield ballot_id, "counted" if rank == 1 else other


def counted_query(dialect: str, last: bool) -> str:
    """The statement that groups the counted ballots, for ``dialect`` ("sqlite" or
    "postgresql"), where the ``last`` ballot of a voter counts or the first."""
    if dialect == "postgresql":
        return _UNBEATEN.format(beyond=">" if last else "<")
    return _COUNTED.format(rank=_rank(dialect, last))


def _rank(dialect: str, last: bool) -> str:
    collate = ' COLLATE "C"' if dialect == "postgresql" else ""
    return _RANK.format(direction="DESC" if last else "ASC", collate=collate)
