"""Who follows the node's actors, and whom they follow.

Followers: a Follow creates a row, "pending" when the admin approves follows, else
"accepted"; an Undo or a refusal deletes it, so the collections stay exact. Only
accepted followers receive anything.

Following: our Follow creates a "pending" row; the followed actor's Accept or Reject,
matched by the Follow's id and coming from that actor, settles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from federation.inbox import host_of
from node.storage.tables import followers, following, remote_actors

PENDING = "pending"
ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Follower:
    follower: str
    follow_id: str
    state: str
    inbox: str
    shared_inbox: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Followed:
    followed: str
    follow_id: str
    state: str
    created_at: datetime


# --- followers ------------------------------------------------------------------------


def add_follower(
    conn: Connection,
    *,
    actor_id: int,
    follower: str,
    follow_id: str,
    inbox: str,
    shared_inbox: str | None,
    state: str,
    now: datetime,
) -> str:
    """Record a Follow (a repeated Follow updates the row); returns the state before
    (``""`` if the actor did not follow), so the caller can tell a re-send."""
    before = conn.execute(
        select(followers.c.state).where(
            followers.c.actor_id == actor_id, followers.c.follower == follower
        )
    ).scalar_one_or_none()
    if before == ACCEPTED:
        state = ACCEPTED  # a repeated Follow never demotes an accepted follower
    values = {
        "follow_id": follow_id,
        "state": state,
        "inbox": inbox,
        "shared_inbox": shared_inbox,
        "accepted_at": now if state == ACCEPTED else None,
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(followers).values(
        actor_id=actor_id, follower=follower, host=host_of(follower), created_at=now, **values
    )
    if before == ACCEPTED:
        values.pop("accepted_at")
    conn.execute(
        statement.on_conflict_do_update(index_elements=["actor_id", "follower"], set_=values)
    )
    return before or ""


def get_follower(conn: Connection, *, actor_id: int, follower: str) -> Follower | None:
    row = conn.execute(
        select(followers).where(followers.c.actor_id == actor_id, followers.c.follower == follower)
    ).first()
    return None if row is None else _follower(row)


def accept_follower(conn: Connection, *, actor_id: int, follower: str, now: datetime) -> bool:
    """Accept a pending follower; False if there is no such pending follow."""
    result = conn.execute(
        update(followers)
        .where(
            followers.c.actor_id == actor_id,
            followers.c.follower == follower,
            followers.c.state == PENDING,
        )
        .values(state=ACCEPTED, accepted_at=now)
    )
    return result.rowcount == 1


def remove_follower(
    conn: Connection, *, actor_id: int, follower: str, follow_id: str | None = None
) -> Follower | None:
    """Delete a follower (an Undo, a refusal, a removal); with ``follow_id``, only if the
    stored Follow is that one. Returns the removed row."""
    found = get_follower(conn, actor_id=actor_id, follower=follower)
    if found is None or (follow_id is not None and found.follow_id != follow_id):
        return None
    conn.execute(
        delete(followers).where(followers.c.actor_id == actor_id, followers.c.follower == follower)
    )
    return found


def list_followers(
    conn: Connection,
    *,
    actor_id: int,
    state: str | None = ACCEPTED,
    offset: int = 0,
    limit: int = 100,
) -> list[Follower]:
    query = select(followers).where(followers.c.actor_id == actor_id)
    if state is not None:
        query = query.where(followers.c.state == state)
    query = query.order_by(followers.c.created_at.desc(), followers.c.id.desc())
    return [_follower(r) for r in conn.execute(query.offset(offset).limit(limit))]


def count_followers(conn: Connection, *, actor_id: int, state: str = ACCEPTED) -> int:
    query = select(func.count()).where(followers.c.actor_id == actor_id, followers.c.state == state)
    return int(conn.execute(query).scalar_one())


def follower_inboxes(conn: Connection, *, actor_id: int) -> list[str]:
    """Where to deliver to every accepted follower: each server's shared inbox when it
    has one (one POST per server), the follower's own inbox otherwise."""
    rows = conn.execute(
        select(followers.c.inbox, followers.c.shared_inbox).where(
            followers.c.actor_id == actor_id, followers.c.state == ACCEPTED
        )
    ).all()
    return list(dict.fromkeys(r.shared_inbox or r.inbox for r in rows))


def _follower(row: object) -> Follower:
    return Follower(
        follower=row.follower,  # type: ignore[attr-defined]
        follow_id=row.follow_id,  # type: ignore[attr-defined]
        state=row.state,  # type: ignore[attr-defined]
        inbox=row.inbox,  # type: ignore[attr-defined]
        shared_inbox=row.shared_inbox,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
    )


# --- following ------------------------------------------------------------------------


def start_following(
    conn: Connection, *, actor_id: int, followed: str, follow_id: str, now: datetime
) -> str | None:
    """Record our Follow; returns the id of a Follow already recorded for that actor
    (then nothing changes), or None."""
    existing = conn.execute(
        select(following.c.follow_id, following.c.state).where(
            following.c.actor_id == actor_id, following.c.followed == followed
        )
    ).first()
    if existing is not None and existing.state != REJECTED:
        return str(existing.follow_id)
    if existing is not None:
        conn.execute(
            delete(following).where(
                following.c.actor_id == actor_id, following.c.followed == followed
            )
        )
    conn.execute(
        following.insert().values(
            actor_id=actor_id,
            followed=followed,
            host=host_of(followed),
            follow_id=follow_id,
            state=PENDING,
            created_at=now,
        )
    )
    return None


def settle_following(
    conn: Connection, *, follow_id: str, by: str, state: str, now: datetime
) -> bool:
    """The followed actor ``by`` accepted or rejected our Follow ``follow_id``."""
    values: dict[str, object] = {"state": state}
    if state == ACCEPTED:
        values["accepted_at"] = now
    result = conn.execute(
        update(following)
        .where(following.c.follow_id == follow_id, following.c.followed == by)
        .values(**values)
    )
    return result.rowcount == 1


def following_state(conn: Connection, *, actor_id: int, followed: str) -> str | None:
    return conn.execute(
        select(following.c.state).where(
            following.c.actor_id == actor_id, following.c.followed == followed
        )
    ).scalar_one_or_none()


def stop_following(conn: Connection, *, actor_id: int, followed: str) -> str | None:
    """Forget a follow; returns its Follow id (for the Undo), or None if there was none."""
    follow_id = conn.execute(
        select(following.c.follow_id).where(
            following.c.actor_id == actor_id, following.c.followed == followed
        )
    ).scalar_one_or_none()
    if follow_id is not None:
        conn.execute(
            delete(following).where(
                following.c.actor_id == actor_id, following.c.followed == followed
            )
        )
    return None if follow_id is None else str(follow_id)


def list_following(
    conn: Connection,
    *,
    actor_id: int,
    state: str | None = ACCEPTED,
    offset: int = 0,
    limit: int = 100,
) -> list[Followed]:
    query = select(following).where(following.c.actor_id == actor_id)
    if state is not None:
        query = query.where(following.c.state == state)
    query = query.order_by(following.c.created_at.desc(), following.c.id.desc())
    return [
        Followed(followed=r.followed, follow_id=r.follow_id, state=r.state, created_at=r.created_at)
        for r in conn.execute(query.offset(offset).limit(limit))
    ]


def accepted_page(
    conn: Connection, side: str, *, actor_id: int, max_id: int | None, limit: int
) -> list[tuple[int, str]]:
    """Up to ``limit`` accepted ``followers`` or ``following`` (``side``) of a local
    actor, as (row id, actor URL), newest first and older than the row ``max_id``: the
    pages of its collections, cut by row id so that a follow accepted during a walk
    shifts nothing."""
    table = followers if side == "followers" else following
    other = table.c.follower if side == "followers" else table.c.followed
    query = select(table.c.id, other).where(table.c.actor_id == actor_id, table.c.state == ACCEPTED)
    if max_id is not None:
        query = query.where(table.c.id < max_id)
    rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit))
    return [(row[0], row[1]) for row in rows]


def count_following(conn: Connection, *, actor_id: int, state: str = ACCEPTED) -> int:
    query = select(func.count()).where(following.c.actor_id == actor_id, following.c.state == state)
    return int(conn.execute(query).scalar_one())


def count_accepted(conn: Connection, side: str, *, actor_id: int) -> int:
    """How many accepted ``followers`` or ``following`` (``side``) a local actor has:
    the size of the collection :func:`accepted_page` walks."""
    if side == "followers":
        return count_followers(conn, actor_id=actor_id)
    return count_following(conn, actor_id=actor_id)


def hosts(conn: Connection, side: str, *, limit: int) -> list[str]:
    """The servers of the ``followers`` or ``following`` (``side``) of every local
    actor, each once."""
    table = followers if side == "followers" else following
    return [str(h) for h in conn.execute(select(table.c.host).distinct().limit(limit)).scalars()]


def follow_id_of(conn: Connection, *, actor_id: int, followed: str) -> str | None:
    """The id of the Follow a local actor sent ``followed``, if it sent one."""
    found = conn.execute(
        select(following.c.follow_id).where(
            following.c.actor_id == actor_id, following.c.followed == followed
        )
    ).scalar_one_or_none()
    return None if found is None else str(found)


def audiences(conn: Connection, *, actor_id: int, vocabulary: str) -> tuple[list[str], list[str]]:
    """The inboxes of a local actor's accepted followers, each collapsed to its shared
    inbox: all of them, and those whose stored actor does not declare ``vocabulary``
    (FEP-844e ``implements``; an actor never stored declares nothing). The database
    looks for the vocabulary in each stored actor; the documents stay there."""
    declares = remote_actors.c.document.contains(vocabulary, autoescape=True)
    rows = conn.execute(
        select(followers.c.inbox, followers.c.shared_inbox, declares.label("declares"))
        .select_from(
            followers.outerjoin(remote_actors, remote_actors.c.uri == followers.c.follower)
        )
        .where(followers.c.actor_id == actor_id, followers.c.state == ACCEPTED)
    ).all()
    everyone: dict[str, None] = {}
    others: dict[str, None] = {}
    for row in rows:
        inbox = row.shared_inbox or row.inbox
        everyone[inbox] = None
        if not row.declares:  # also None: an actor we never stored
            others[inbox] = None
    return list(everyone), list(others)
