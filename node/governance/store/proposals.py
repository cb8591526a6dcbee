"""The ``proposals`` table: reading a proposal, listing them, and each write of its life
(created, claimed for opening, counts published, closed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from node.errors import NotFound
from node.governance.rules.proposal_input import ProposalInput, fraction_text
from node.governance.store.rows import Mirror, State, StoredProposal, proposal_of
from node.storage.tables import actors, ballots, proposal_coops, proposals


def get(conn: Connection, key: str) -> StoredProposal:
    """The proposal of API key ``key``; NotFound if there is none."""
    row = conn.execute(select(proposals).where(proposals.c.key == key)).mappings().first()
    if row is None:
        raise NotFound(f"no proposal {key!r} here")
    return proposal_of(row)


def by_id(conn: Connection, pk: int) -> StoredProposal:
    return proposal_of(conn.execute(select(proposals).where(proposals.c.id == pk)).mappings().one())


def open_by_id(conn: Connection, pk: int) -> StoredProposal | None:
    """The proposal ``pk`` if it is open (another worker may have closed it)."""
    row = (
        conn.execute(select(proposals).where(proposals.c.id == pk, proposals.c.state == State.OPEN))
        .mappings()
        .first()
    )
    return None if row is None else proposal_of(row)


def by_uri(conn: Connection, uri: str) -> StoredProposal | None:
    row = conn.execute(select(proposals).where(proposals.c.uri == uri)).mappings().first()
    return None if row is None else proposal_of(row)


def by_uris(conn: Connection, uris: set[str]) -> dict[str, StoredProposal]:
    """The proposals of ours among ``uris``, by uri."""
    rows = conn.execute(select(proposals).where(proposals.c.uri.in_(uris))).mappings()
    return {row["uri"]: proposal_of(row) for row in rows}


def id_of(conn: Connection, uri: str) -> int | None:
    found = conn.execute(select(proposals.c.id).where(proposals.c.uri == uri)).scalar()
    return None if found is None else int(found)


def newest(conn: Connection, *, limit: int | None = 100) -> list[StoredProposal]:
    """The proposals, newest first (every one where ``limit`` is None)."""
    query = select(proposals).order_by(proposals.c.published.desc(), proposals.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [proposal_of(row) for row in conn.execute(query).mappings()]


def uris_page(conn: Connection, *, page: int | None, size: int) -> tuple[int, list[str]]:
    """How many proposals there are, and the ids on page ``page`` (newest first; one
    more than ``size`` when a next page exists); no ids when ``page`` is None."""
    total = conn.execute(select(func.count()).select_from(proposals)).scalar_one()
    if page is None:
        return int(total), []
    uris = conn.execute(
        select(proposals.c.uri)
        .order_by(proposals.c.published.desc(), proposals.c.id.desc())
        .offset((page - 1) * size)
        .limit(size + 1)
    ).scalars()
    return int(total), list(uris)


def mirror_key(conn: Connection, uri: str) -> str | None:
    """The key of this co-op's own vote mirroring the shared proposal ``uri``, if any."""
    found = conn.execute(
        select(proposals.c.key, proposals.c.mirror).where(
            proposals.c.mirror.contains(json.dumps(uri), autoescape=True)
        )
    ).all()
    for key, mirror in found:
        if json.loads(mirror).get("of") == uri:
            return str(key)
    return None


def username_of(conn: Connection, actor_pk: int | None) -> str | None:
    """The username of the local actor ``actor_pk`` (a member voting or proposing)."""
    found = conn.execute(select(actors.c.username).where(actors.c.id == actor_pk)).scalar()
    return None if found is None else str(found)


@dataclass(frozen=True, slots=True)
class Listed:
    """A proposal as the admin's list shows it."""

    key: str
    title: str
    state: str
    opens_at: datetime
    closes_at: datetime
    counting_mode: str
    coops: int
    """Other co-ops it is shared with (0 for an internal proposal)."""
    mirror: bool
    """This co-op's own vote on a shared proposal."""
    ballots: int


def listed(conn: Connection, *, limit: int) -> list[Listed]:
    """The newest proposals with how many co-ops and ballots each has."""
    n_ballots = (
        select(func.count())
        .where(ballots.c.proposal_id == proposals.c.id)
        .correlate(proposals)
        .scalar_subquery()
    )
    n_coops = (
        select(func.count())
        .where(proposal_coops.c.proposal_id == proposals.c.id, proposal_coops.c.state != "host")
        .correlate(proposals)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            proposals.c.key,
            proposals.c.title,
            proposals.c.state,
            proposals.c.opens_at,
            proposals.c.closes_at,
            proposals.c.counting_mode,
            proposals.c.mirror,
            n_coops.label("coops"),
            n_ballots.label("ballots"),
        )
        .order_by(proposals.c.published.desc(), proposals.c.id.desc())
        .limit(limit)
    )
    return [
        Listed(
            key=r.key,
            title=r.title,
            state=r.state,
            opens_at=r.opens_at,
            closes_at=r.closes_at,
            counting_mode=r.counting_mode,
            coops=int(r.coops or 0),
            mirror=r.mirror is not None,
            ballots=int(r.ballots or 0),
        )
        for r in rows
    ]


# --- what the governance worker has to do ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    opening: list[tuple[int, datetime]]
    """Scheduled proposals whose opening time has come: (id, opens_at)."""
    closing: list[tuple[int, datetime, str]]
    """Open proposals past their end: (id, closes_at, counting mode)."""
    stale: list[int]
    """Open proposals whose counts changed and may be published again."""


def _counts_due(now: datetime, every: timedelta) -> Any:
    return or_(
        proposals.c.counts_published_at.is_(None),
        proposals.c.counts_published_at <= now - every,
    )


def due(conn: Connection, now: datetime, counts_every: timedelta) -> Due:
    opening = conn.execute(
        select(proposals.c.id, proposals.c.opens_at).where(
            proposals.c.state == State.SCHEDULED, proposals.c.opens_at <= now
        )
    ).all()
    closing = conn.execute(
        select(proposals.c.id, proposals.c.closes_at, proposals.c.counting_mode).where(
            proposals.c.state == State.OPEN, proposals.c.closes_at <= now
        )
    ).all()
    stale = conn.execute(
        select(proposals.c.id).where(
            and_(
                proposals.c.state == State.OPEN,
                proposals.c.counts_dirty == 1,
                _counts_due(now, counts_every),
            )
        )
    ).scalars()
    return Due(
        opening=[(pk, at) for pk, at in opening],
        closing=[(pk, at, mode) for pk, at, mode in closing],
        stale=list(stale),
    )


# --- writes ----------------------------------------------------------------------------------


def insert_proposal(
    conn: Connection,
    checked: ProposalInput,
    *,
    key: str,
    uri: str,
    author: str | None,
    actor_id: int,
    weigh: bool,
    weights: dict[str, Fraction] | None,
    electorate: list[str] | None,
    mirror: Mirror | None,
    now: datetime,
    network: str | None = None,
) -> int:
    """Store a new proposal, scheduled; its id. ``weigh`` with ``weights``: the colleges
    (or, in co-op mode, the co-ops) and their weights; ``electorate``: the co-ops of a
    shared proposal, the host first; ``network``: the network whose members they are,
    for a network-wide proposal."""
    source = checked.to_source()
    if electorate:
        source["electorate"] = electorate
    if network:
        source["network"] = network
    values = {
        "key": key,
        "uri": uri,
        "actor_id": actor_id,
        "author": author,
        "title": checked.title,
        "source": json.dumps(source, ensure_ascii=False),
        "content": checked.content,
        "options": json.dumps(
            [{"name": o.name, "role": o.role.value} for o in checked.options], ensure_ascii=False
        ),
        "multiple_choice": int(checked.multiple_choice),
        "max_choices": checked.max_choices,
        "rule": checked.rule,
        "threshold": None if checked.threshold is None else fraction_text(checked.threshold),
        "block_at": checked.block_at,
        "quorum": fraction_text(checked.quorum),
        "abstentions_count": int(checked.abstentions_count),
        "allow_change": int(checked.allow_change),
        "colleges_weigh": int(weigh),
        "college_weights": json.dumps({n: fraction_text(w) for n, w in weights.items()})
        if weigh and weights
        else None,
        "open_ballot": int(checked.open_ballot),
        "counting_mode": checked.counting_mode,
        "opens_at": checked.opens_at,
        "closes_at": checked.closes_at,
        "state": State.SCHEDULED,
        "counts_dirty": 0,
        "published": now,
        "updated": now,
        "mirror": None if mirror is None else mirror.to_json(),
    }
    return int(
        conn.execute(insert(proposals).values(values).returning(proposals.c.id)).scalar_one()
    )


def claim_opening(conn: Connection, pk: int, now: datetime) -> bool:
    """Whether this worker opens the proposal: still scheduled (another worker may have
    opened it meanwhile)."""
    return bool(
        conn.execute(
            update(proposals)
            .where(proposals.c.id == pk, proposals.c.state == State.SCHEDULED)
            .values(updated=now)
        ).rowcount
    )


def mark_open(conn: Connection, pk: int, *, eligible: int, digest: str) -> None:
    conn.execute(
        update(proposals)
        .where(proposals.c.id == pk)
        .values(state=State.OPEN, eligible=eligible, roster_digest=digest)
    )


def set_eligible(conn: Connection, pk: int, eligible: int) -> None:
    conn.execute(update(proposals).where(proposals.c.id == pk).values(eligible=eligible))


def mark_counts_changed(conn: Connection, pk: int) -> None:
    """A ballot arrived: the counts are to be published again (at most once a minute)."""
    conn.execute(update(proposals).where(proposals.c.id == pk).values(counts_dirty=1))


def claim_counts(conn: Connection, pk: int, now: datetime, every: timedelta) -> bool:
    """Whether this worker publishes the proposal's counts now: it is open, they changed,
    and they were not published within ``every`` (another worker may have done it)."""
    return bool(
        conn.execute(
            update(proposals)
            .where(
                proposals.c.id == pk,
                proposals.c.state == State.OPEN,
                proposals.c.counts_dirty == 1,
                _counts_due(now, every),
            )
            .values(counts_dirty=0, counts_published_at=now)
        ).rowcount
    )


def set_counts(
    conn: Connection, pk: int, counts: dict[str, int], voters: int, now: datetime
) -> None:
    conn.execute(
        update(proposals)
        .where(proposals.c.id == pk)
        .values(counts=_counts_text(counts, voters), updated=now)
    )


def claim_close(conn: Connection, pk: int) -> bool:
    """Whether this worker closes the proposal, marked closed before its count (another
    worker closes it otherwise): for a proposal whose own subtotal is made first."""
    return bool(
        conn.execute(
            update(proposals)
            .where(proposals.c.id == pk, proposals.c.state == State.OPEN)
            .values(state=State.CLOSED)
        ).rowcount
    )


def record_close(
    conn: Connection,
    pk: int,
    *,
    was: State,
    counts: dict[str, int],
    voters: int,
    outcome: dict[str, Any],
    now: datetime,
) -> bool:
    """Store the result and the outcome of a proposal still in state ``was``, closed;
    False if another worker did it first."""
    return bool(
        conn.execute(
            update(proposals)
            .where(proposals.c.id == pk, proposals.c.state == was)
            .values(
                state=State.CLOSED,
                closed_at=now,
                updated=now,
                counts=_counts_text(counts, voters),
                counts_dirty=0,
                counts_published_at=now,
                outcome=json.dumps(outcome, ensure_ascii=False),
            )
        ).rowcount
    )


def _counts_text(counts: dict[str, int], voters: int) -> str:
    return json.dumps({"counts": dict(counts), "voters": voters}, ensure_ascii=False)
