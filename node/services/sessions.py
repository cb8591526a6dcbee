"""Members' browser sessions.

A session is opened by a local member's password and held in an HTTP-only cookie that
carries 256 random bits; only their SHA-256 is stored, so a copy of the database opens
no session. Each session has its own form token (CSRF), compared on every form sent.
The member's role and membership are read with the session at every request: a role
changed or a membership ended applies on the next page, and ending a membership closes
its sessions.

A session ends at logout, after :data:`IDLE` without a visit, or :data:`LIFETIME` after
its opening, whichever comes first. The last visit is written at most once per
:data:`TOUCH_EVERY`, so reading pages does not cost a write each.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from node.storage.tables import actors, members, web_sessions

LIFETIME = timedelta(days=30)
IDLE = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=10)
MAX_PER_MEMBER = 20
"""Sessions a member may hold at once (phone, laptop, ...); the oldest ends first."""


@dataclass(frozen=True, slots=True)
class Session:
    """An open session, with what the pages need of its member."""

    id: int
    member_id: int
    actor_id: int | None
    username: str
    role: str
    csrf: str
    last_seen_at: datetime
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def open_session(
    conn: Connection, member_id: int, *, now: datetime, user_agent: str | None = None
) -> str:
    """A new session for ``member_id``; returns the cookie's token (shown once)."""
    token = new_secret()
    conn.execute(
        insert(web_sessions).values(
            token_hash=_hash(token),
            member_id=member_id,
            csrf=new_secret(),
            created_at=now,
            last_seen_at=now,
            expires_at=now + LIFETIME,
            user_agent=(user_agent or "")[:256] or None,
        )
    )
    # Expired sessions of this member go now, and beyond the limit the oldest ones.
    conn.execute(
        delete(web_sessions).where(
            web_sessions.c.member_id == member_id,
            (web_sessions.c.expires_at <= now) | (web_sessions.c.last_seen_at <= now - IDLE),
        )
    )
    kept = (
        select(web_sessions.c.id)
        .where(web_sessions.c.member_id == member_id)
        .order_by(web_sessions.c.last_seen_at.desc(), web_sessions.c.id.desc())
        .limit(MAX_PER_MEMBER)
    )
    conn.execute(
        delete(web_sessions).where(
            web_sessions.c.member_id == member_id,
            web_sessions.c.id.not_in(kept.scalar_subquery()),
        )
    )
    return token


def find_session(conn: Connection, token: str, *, now: datetime) -> Session | None:
    """The session of ``token`` if it is open and its member a current local member."""
    if not token or len(token) > 128:
        return None
    row = (
        conn.execute(
            select(
                web_sessions.c.id,
                web_sessions.c.member_id,
                web_sessions.c.csrf,
                web_sessions.c.last_seen_at,
                web_sessions.c.expires_at,
                members.c.actor_id,
                members.c.role,
                actors.c.username,
            )
            .select_from(
                web_sessions.join(members, members.c.id == web_sessions.c.member_id).join(
                    actors, actors.c.id == members.c.actor_id
                )
            )
            .where(
                web_sessions.c.token_hash == _hash(token),
                web_sessions.c.expires_at > now,
                web_sessions.c.last_seen_at > now - IDLE,
                members.c.left_at.is_(None),
                members.c.state == "confirmed",
                members.c.local == 1,
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Session(
        id=row["id"],
        member_id=row["member_id"],
        actor_id=row["actor_id"],
        username=row["username"],
        role=row["role"],
        csrf=row["csrf"],
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
    )


def needs_touch(session: Session, now: datetime) -> bool:
    return now - session.last_seen_at >= TOUCH_EVERY


def touch(conn: Connection, session_id: int, *, now: datetime) -> None:
    conn.execute(
        update(web_sessions).where(web_sessions.c.id == session_id).values(last_seen_at=now)
    )


def close_session(conn: Connection, token: str) -> bool:
    """Logout: the session of ``token`` ends; whether there was one."""
    deleted = conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == _hash(token)))
    return bool(deleted.rowcount)


def close_member_sessions(conn: Connection, member_id: int) -> int:
    """Every session of a member ends (membership ended, password changed)."""
    return int(
        conn.execute(delete(web_sessions).where(web_sessions.c.member_id == member_id)).rowcount
    )
