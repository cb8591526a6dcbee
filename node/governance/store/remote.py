"""A participating co-op's side of a shared proposal: the ``remote_proposals`` table (the
proposals other co-ops host, as their hosts last sent them, and this co-op's answer)
and the ``sent_ballots`` table (what its members voted there)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import desc, func, insert, select, update
from sqlalchemy.engine import Connection

from node.governance.store.rows import (
    RemoteProposal,
    SentBallot,
    SentElsewhere,
    choices_of,
    document_title,
    remote_of,
)
from node.storage.tables import remote_proposals, sent_ballots

# A shared proposal from a followed co-op, waiting for the admin to accept or decline it.
INVITED = "invited"
OPEN, CLOSED, DECLINED = "open", "closed", "declined"


def find(conn: Connection, key: str) -> RemoteProposal | None:
    row = (
        conn.execute(select(remote_proposals).where(remote_proposals.c.key == key))
        .mappings()
        .first()
    )
    return None if row is None else remote_of(row)


def by_uri(conn: Connection, uri: str) -> RemoteProposal | None:
    row = (
        conn.execute(select(remote_proposals).where(remote_proposals.c.uri == uri))
        .mappings()
        .first()
    )
    return None if row is None else remote_of(row)


def visible(conn: Connection, *, limit: int = 100) -> list[RemoteProposal]:
    """The shared proposals members see (invitations left out), newest first."""
    rows = conn.execute(
        select(remote_proposals)
        .where(remote_proposals.c.state != INVITED)
        .order_by(remote_proposals.c.received_at.desc())
        .limit(limit)
    ).mappings()
    return [remote_of(row) for row in rows]


def invitations(conn: Connection, *, limit: int = 200) -> list[RemoteProposal]:
    """The shared proposals waiting for the admin's answer, newest first."""
    rows = conn.execute(
        select(remote_proposals)
        .where(remote_proposals.c.state == INVITED)
        .order_by(remote_proposals.c.received_at.desc(), remote_proposals.c.id.desc())
        .limit(limit)
    ).mappings()
    return [remote_of(row) for row in rows]


def waiting(conn: Connection, host: str) -> int:
    """How many of ``host``'s invitations wait for the admin."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(remote_proposals)
            .where(remote_proposals.c.host == host, remote_proposals.c.state == INVITED)
        ).scalar_one()
    )


def declined(conn: Connection, uri: str) -> bool:
    """Whether this co-op declined the shared proposal ``uri`` (after taking part, say):
    its own vote then sends the host nothing."""
    state = conn.execute(
        select(remote_proposals.c.state).where(remote_proposals.c.uri == uri)
    ).scalar()
    return state == DECLINED


def add(
    conn: Connection,
    *,
    key: str,
    uri: str,
    host: str,
    document: dict[str, Any],
    state: str,
    now: datetime,
) -> None:
    conn.execute(
        insert(remote_proposals).values(
            key=key,
            uri=uri,
            host=host,
            document=json.dumps(document, ensure_ascii=False),
            state=state,
            received_at=now,
            updated_at=now,
        )
    )


def replace(
    conn: Connection, pk: int, document: dict[str, Any], *, state: str, now: datetime
) -> None:
    """The host's newer copy of the proposal, and the state it leaves it in."""
    conn.execute(
        update(remote_proposals)
        .where(remote_proposals.c.id == pk)
        .values(document=json.dumps(document, ensure_ascii=False), state=state, updated_at=now)
    )


def answer(conn: Connection, pk: int, *, was: Iterable[str], state: str, now: datetime) -> bool:
    """Move the shared proposal from one of the states ``was`` to ``state``; False if it
    was answered meanwhile."""
    done = conn.execute(
        update(remote_proposals)
        .where(remote_proposals.c.id == pk, remote_proposals.c.state.in_(list(was)))
        .values(state=state, updated_at=now)
    )
    return bool(done.rowcount)


# --- the ballots members sent ------------------------------------------------------------


def record_sent(
    conn: Connection,
    pk: int,
    member_pk: int,
    choices: list[str],
    *,
    activity_id: str,
    now: datetime,
) -> None:
    conn.execute(
        insert(sent_ballots).values(
            proposal_id=pk,
            actor_id=member_pk,
            choices=json.dumps(choices, ensure_ascii=False),
            activity_id=activity_id,
            sent_at=now,
        )
    )


def last_sent(conn: Connection, pk: int, member_pk: int | None) -> SentBallot | None:
    """The member's latest ballot on the shared proposal ``pk``, if any."""
    if member_pk is None:
        return None
    row = conn.execute(
        select(sent_ballots.c.choices, sent_ballots.c.sent_at)
        .where(sent_ballots.c.proposal_id == pk, sent_ballots.c.actor_id == member_pk)
        .order_by(sent_ballots.c.sent_at.desc(), sent_ballots.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return SentBallot(choices=json.loads(row.choices), sent_at=row.sent_at)


def sent_by(conn: Connection, member_pk: int | None, *, limit: int = 50) -> list[SentElsewhere]:
    """The member's latest ballot on each shared proposal hosted elsewhere, newest first."""
    latest = (
        select(func.max(sent_ballots.c.id))
        .where(sent_ballots.c.actor_id == member_pk)
        .group_by(sent_ballots.c.proposal_id)
    )
    rows = conn.execute(
        select(
            remote_proposals.c.key,
            remote_proposals.c.document,
            remote_proposals.c.host,
            sent_ballots.c.choices,
            sent_ballots.c.sent_at,
        )
        .select_from(
            sent_ballots.join(remote_proposals, remote_proposals.c.id == sent_ballots.c.proposal_id)
        )
        .where(sent_ballots.c.id.in_(latest))
        .order_by(desc(sent_ballots.c.sent_at))
        .limit(limit)
    ).mappings()
    return [
        SentElsewhere(
            key=r["key"],
            title=document_title(r["document"]),
            host=r["host"],
            choices=choices_of(r["choices"]),
            sent_at=r["sent_at"],
        )
        for r in rows
    ]
