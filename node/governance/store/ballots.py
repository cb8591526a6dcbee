"""The ``ballots`` table: ballots stored as they arrive, what became of each at the
close, and the ballots as the published collections, the pages and the count read
them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, desc, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from node.governance.store.rows import CastBallot, StoredBallot, ballot_of, choices_of
from node.storage.tables import ballots, inbox_activities, proposal_voters, proposals

VALID, REFUSED = "valid", "refused"

_THEIRS = text(
    "SELECT voter, id, state, choices, notes, cast_at FROM ballots "
    "WHERE proposal_id = :proposal AND voter IN :voters ORDER BY cast_at, id"
).bindparams(bindparam("voters", expanding=True))


@dataclass(frozen=True, slots=True)
class LatestBallot:
    """A voter's latest valid ballot, as stored (its id is None for one stored in the
    same batch without asking for it)."""

    id: int | None
    choices_text: str
    notes_text: str

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(json.loads(self.choices_text))


@dataclass
class VoterSoFar:
    """What is stored of a voter's ballots on a proposal, kept up to date as a batch of
    ballots is stored."""

    ballots: int = 0
    refused: int = 0
    latest: LatestBallot | None = None


def voters_so_far(conn: Connection, pk: int, voters: set[str]) -> dict[str, VoterSoFar]:
    known = {voter: VoterSoFar() for voter in voters}
    listed = sorted(voters)
    for start in range(0, len(listed), 500):
        rows = conn.execute(_THEIRS, {"proposal": pk, "voters": listed[start : start + 500]})
        for voter, ballot_id, state, choices, notes, _ in rows:
            seen = known[voter]
            seen.ballots += 1
            if state == REFUSED:
                seen.refused += 1
            elif state == VALID:
                seen.latest = LatestBallot(ballot_id, choices, notes)
    return known


@dataclass(frozen=True, slots=True)
class NewBallot:
    """A ballot to store: valid, or refused with its reason."""

    voter: str
    college: str | None
    activity_id: str
    cast_at: datetime
    reason: str | None
    choices_text: str
    notes_text: str

    def values(self, pk: int) -> dict[str, Any]:
        return {
            "proposal_id": pk,
            "voter": self.voter,
            "college": self.college,
            "choices": self.choices_text,
            "activity_id": self.activity_id,
            "cast_at": self.cast_at,
            "state": VALID if self.reason is None else REFUSED,
            "reason": self.reason,
            "notes": self.notes_text,
        }


def new_ballot(
    *,
    voter: str,
    college: str | None,
    choices: tuple[str, ...],
    activity_id: str,
    cast_at: datetime,
    reason: str | None,
    notes: tuple[dict[str, Any], ...],
) -> NewBallot:
    return NewBallot(
        voter=voter,
        college=college,
        activity_id=activity_id,
        cast_at=cast_at,
        reason=reason,
        choices_text=_choices_text(choices),
        notes_text=json.dumps(list(notes), ensure_ascii=False),
    )


def _choices_text(choices: Iterable[str]) -> str:
    return json.dumps(list(choices), ensure_ascii=False, separators=(",", ":"))


def _insert_statement(conn: Connection) -> Any:
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    return dialect.insert(ballots).on_conflict_do_nothing(
        index_elements=["proposal_id", "activity_id"]
    )


def insert_many(conn: Connection, pk: int, new: list[NewBallot]) -> None:
    """Insert ballots; one already stored under its activity id (a handling repeated
    after a crash) is left as it is."""
    conn.execute(_insert_statement(conn), [b.values(pk) for b in new])


def insert_one(conn: Connection, pk: int, new: NewBallot) -> int | None:
    """Insert a ballot (as :func:`insert_many`); its id, None if it was stored already."""
    found = conn.execute(
        _insert_statement(conn).values(new.values(pk)).returning(ballots.c.id)
    ).scalar()
    return None if found is None else int(found)


def join(
    conn: Connection, latest: LatestBallot, choices: tuple[str, ...], notes: tuple[Any, ...]
) -> LatestBallot:
    """A voter's latest ballot gains options (and their Notes): a Mastodon vote on a
    multiple choice arrives as one Note per option. Returns the ballot as it is now."""
    joined = LatestBallot(
        latest.id,
        _choices_text(choices),
        json.dumps(json.loads(latest.notes_text) + list(notes), ensure_ascii=False),
    )
    conn.execute(
        update(ballots)
        .where(ballots.c.id == latest.id)
        .values(choices=joined.choices_text, notes=joined.notes_text)
    )
    return joined


def settle(conn: Connection, became: str, reason: str, ids: list[int]) -> None:
    """At the close: the valid ballots ``ids`` do not count, and say why."""
    for start in range(0, len(ids), 500):
        conn.execute(
            update(ballots)
            .where(ballots.c.id.in_(ids[start : start + 500]))
            .values(state=became, reason=reason)
        )


def voted_per_coop(conn: Connection, pk: int) -> dict[str, int]:
    """How many voters of each co-op's roster have a valid ballot."""
    return dict(
        conn.execute(
            select(proposal_voters.c.coop, func.count(ballots.c.voter.distinct()))
            .select_from(
                ballots.join(
                    proposal_voters,
                    and_(
                        proposal_voters.c.proposal_id == ballots.c.proposal_id,
                        proposal_voters.c.voter == ballots.c.voter,
                    ),
                )
            )
            .where(ballots.c.proposal_id == pk, ballots.c.state == VALID)
            .group_by(proposal_voters.c.coop)
        ).all()
    )


def waiting_in_inbox(conn: Connection, *, closes_at: datetime, now: datetime) -> bool:
    """Whether activities accepted before the close still wait in the inbox, not tried
    yet: they may be ballots, which count (they were cast in time). One that failed once
    is not waited for: its retries may take hours, the close does not. Nor is one whose
    worker took it and never recorded an outcome (its claim expired): a stuck activity
    holds the close for one claim at most, never forever. One nobody took yet is waited
    for: the inbox worker takes it as soon as it runs (after the node was down, say)."""
    waiting = conn.execute(
        select(inbox_activities.c.id)
        .where(
            inbox_activities.c.state == "pending",
            inbox_activities.c.type == "Create",
            inbox_activities.c.received_at < closes_at,
            inbox_activities.c.attempts == 0,
            or_(
                inbox_activities.c.claimed_until.is_(None),
                inbox_activities.c.claimed_until >= now,
            ),
        )
        .limit(1)
    ).first()
    return waiting is not None


# --- reading -----------------------------------------------------------------------------


def count(conn: Connection, pk: int) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(ballots).where(ballots.c.proposal_id == pk)
        ).scalar_one()
    )


def page(conn: Connection, pk: int, *, page: int, size: int) -> list[StoredBallot]:
    """Page ``page`` of the ballots in the order the host accepted them; one more than
    ``size`` when a next page exists."""
    rows = conn.execute(
        select(ballots)
        .where(ballots.c.proposal_id == pk)
        .order_by(ballots.c.cast_at, ballots.c.activity_id, ballots.c.id)
        .offset((page - 1) * size)
        .limit(size + 1)
    ).mappings()
    return [ballot_of(row) for row in rows]


def voters(conn: Connection, pk: int) -> list[str]:
    """Who has a valid ballot (not how they voted), by actor."""
    return list(
        conn.execute(
            select(ballots.c.voter)
            .where(ballots.c.proposal_id == pk, ballots.c.state == VALID)
            .distinct()
            .order_by(ballots.c.voter)
        ).scalars()
    )


def latest_choices(conn: Connection, pk: int, voter: str) -> list[str] | None:
    """The choices of the voter's latest ballot on the proposal, if any."""
    found = conn.execute(
        select(ballots.c.choices)
        .where(ballots.c.proposal_id == pk, ballots.c.voter == voter)
        .order_by(desc(ballots.c.cast_at), desc(ballots.c.id))
        .limit(1)
    ).scalar()
    return None if found is None else list(json.loads(found))


def cast_by(conn: Connection, voter: str, *, limit: int = 50) -> list[CastBallot]:
    """A member's latest ballots on this co-op's proposals, newest first."""
    rows = conn.execute(
        select(
            proposals.c.key,
            proposals.c.title,
            proposals.c.state.label("proposal_state"),
            ballots.c.choices,
            ballots.c.cast_at,
            ballots.c.state,
        )
        .select_from(ballots.join(proposals, proposals.c.id == ballots.c.proposal_id))
        .where(ballots.c.voter == voter)
        .order_by(desc(ballots.c.cast_at))
        .limit(limit)
    ).mappings()
    return [
        CastBallot(
            key=r["key"],
            title=r["title"],
            proposal_state=r["proposal_state"],
            choices=choices_of(r["choices"]),
            cast_at=r["cast_at"],
            state=r["state"],
        )
        for r in rows
    ]
