"""The ``proposal_voters`` table: a proposal's electorate, fixed at its opening (each
voter's actor, college and co-op), and who hears of a proposal."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, insert, literal, or_, select, text, update
from sqlalchemy.engine import Connection

from node.governance.rules.digest import roster_digest
from node.governance.store import proposals as proposal_rows
from node.members.store import VOTING_ROLES
from node.services.remote_actors import delivery_inbox
from node.storage.tables import ballots, members, proposal_coops, proposal_voters, remote_actors


@dataclass(frozen=True, slots=True)
class Elector:
    """A voter another co-op's roster lists: the actor, its college there, the co-op."""

    voter: str
    college: str | None
    coop: str


def fix(
    conn: Connection,
    pk: int,
    opens_at: datetime,
    *,
    own: str,
    weights: Iterable[str] | None,
    others: Sequence[Elector] = (),
) -> int:
    """Fix the electorate and open the proposal: the members who may vote at the opening,
    with their colleges; for a shared proposal, also those the other co-ops' rosters list
    (``others``), an actor listed twice being one voter. Where colleges weigh (``weights``
    names them), voters of no such college are left out. Returns the electorate's size."""
    eligible = select(
        literal(pk, Integer).label("proposal_id"),
        members.c.actor_uri,
        members.c.college,
        literal(own).label("coop"),
    ).where(
        members.c.state == "confirmed",
        members.c.role.in_(VOTING_ROLES),
        members.c.joined_at <= opens_at,
        or_(members.c.left_at.is_(None), members.c.left_at > opens_at),
    )
    conn.execute(
        insert(proposal_voters).from_select(["proposal_id", "voter", "college", "coop"], eligible)
    )
    listed = set(
        conn.execute(
            select(proposal_voters.c.voter).where(proposal_voters.c.proposal_id == pk)
        ).scalars()
    )
    rows = []
    for elector in others:
        if elector.voter not in listed:
            listed.add(elector.voter)
            rows.append(
                {
                    "proposal_id": pk,
                    "voter": elector.voter,
                    "college": elector.college,
                    "coop": elector.coop,
                }
            )
    for start in range(0, len(rows), 1000):
        conn.execute(insert(proposal_voters), rows[start : start + 1000])
    if weights is not None:
        _leave_out_other_colleges(conn, pk, sorted(weights))
    pairs = [
        (voter, college)
        for voter, college in conn.execute(
            select(proposal_voters.c.voter, proposal_voters.c.college).where(
                proposal_voters.c.proposal_id == pk
            )
        )
    ]
    proposal_rows.mark_open(conn, pk, eligible=len(pairs), digest=roster_digest(pairs))
    return len(pairs)


def _leave_out_other_colleges(conn: Connection, pk: int, colleges: list[str]) -> None:
    """Where colleges weigh, a voter must belong to one of the proposal's colleges: those
    the rosters give another college (or none) are left out of the electorate, and each
    co-op's participation says how many."""
    outside = and_(
        proposal_voters.c.proposal_id == pk,
        or_(
            proposal_voters.c.college.is_(None),
            proposal_voters.c.college.not_in(colleges),
        ),
    )
    counts = conn.execute(
        select(proposal_voters.c.coop, func.count()).where(outside).group_by(proposal_voters.c.coop)
    ).all()
    if not counts:
        return
    conn.execute(proposal_voters.delete().where(outside))
    names = ", ".join(colleges)
    for coop, n in counts:
        conn.execute(
            update(proposal_coops)
            .where(proposal_coops.c.proposal_id == pk, proposal_coops.c.coop == coop)
            .values(
                reason=f"{n} member{'' if n == 1 else 's'} in none of the colleges {names} left out"
            )
        )


def fix_coops(conn: Connection, pk: int, coops: list[str]) -> None:
    """Co-op mode: the voters are the co-ops themselves, each its own college, so that
    each co-op's one ballot weighs as the proposal says; and the proposal opens."""
    conn.execute(
        insert(proposal_voters),
        [{"proposal_id": pk, "voter": c, "college": c, "coop": c} for c in coops],
    )
    pairs = [(c, c) for c in coops]
    proposal_rows.mark_open(conn, pk, eligible=len(pairs), digest=roster_digest(pairs))


def sizes(conn: Connection, pk: int) -> dict[str, int]:
    """How many voters each co-op's roster gave the electorate."""
    return dict(
        conn.execute(
            select(proposal_voters.c.coop, func.count())
            .where(proposal_voters.c.proposal_id == pk)
            .group_by(proposal_voters.c.coop)
        ).all()
    )


def colleges(conn: Connection, pk: int) -> set[str | None]:
    """The colleges the electorate's voters belong to."""
    return set(
        conn.execute(
            select(proposal_voters.c.college).where(proposal_voters.c.proposal_id == pk)
        ).scalars()
    )


# Built once: building a statement costs more than running it, and ballots come by the
# thousand.
_ELECTORS = text(
    "SELECT voter, college FROM proposal_voters WHERE proposal_id = :proposal AND voter IN :voters"
).bindparams(bindparam("voters", expanding=True))


def colleges_of(conn: Connection, pk: int, voters: set[str]) -> dict[str, str | None]:
    """The electorate's colleges of those of ``voters`` who are in it."""
    found: dict[str, str | None] = {}
    listed = sorted(voters)
    for start in range(0, len(listed), 500):
        rows = conn.execute(
            _ELECTORS, {"proposal": pk, "voters": listed[start : start + 500]}
        ).all()
        found.update((voter, college) for voter, college in rows)
    return found


def page(conn: Connection, pk: int, *, page: int, size: int) -> list[tuple[str, str | None]]:
    """Page ``page`` of the electorate by voter: (voter, college), one more than ``size``
    when a next page exists."""
    rows = conn.execute(
        select(proposal_voters.c.voter, proposal_voters.c.college)
        .where(proposal_voters.c.proposal_id == pk)
        .order_by(proposal_voters.c.voter)
        .offset((page - 1) * size)
        .limit(size + 1)
    ).all()
    return [(voter, college) for voter, college in rows]


# --- who hears of a proposal -----------------------------------------------------------------


def remote_member_inboxes(conn: Connection) -> list[str]:
    """The inboxes of the co-op's current remote members (they vote from their servers)."""
    remote_members = select(members.c.actor_uri).where(
        members.c.local == 0,
        members.c.state == "confirmed",
        members.c.left_at.is_(None),
    )
    return _actor_inboxes(conn, remote_members)


def voter_inboxes(conn: Connection, pk: int) -> list[str]:
    """The inboxes of those who sent ballots on the proposal ``pk``."""
    voters = select(ballots.c.voter).where(ballots.c.proposal_id == pk).distinct()
    return _actor_inboxes(conn, voters)


def _actor_inboxes(conn: Connection, uris: Any) -> list[str]:
    found = []
    rows = conn.execute(
        select(remote_actors.c.document).where(remote_actors.c.uri.in_(uris))
    ).scalars()
    for document in rows:
        inbox = delivery_inbox(json.loads(document))
        if inbox is not None:
            found.append(inbox)
    return found
