"""API bearer tokens: created, checked and revoked; only their hashes are stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.engine import Connection

from node.storage.tables import api_tokens

TOKEN_PREFIX = "cn_"  # noqa: S105 (a prefix, not a secret)
# From most to least allowed: an admin administers; a member publishes offers, opens
# proposals and votes; an observer may read what members read but not act or vote.
ROLES = ("admin", "member", "observer")


def allows(role: str, needed: str) -> bool:
    """Whether a token of ``role`` may do what needs ``needed``."""
    return ROLES.index(role) <= ROLES.index(needed)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    role: str
    actor_id: int | None
    created_at: datetime
    revoked_at: datetime | None


def new_token() -> str:
    """A fresh token: 256 random bits, recognisable by its prefix in logs and scanners."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def store_token(
    conn: Connection,
    token: str,
    *,
    name: str,
    role: str,
    now: datetime,
    actor_id: int | None = None,
) -> int:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    row_id = conn.execute(
        insert(api_tokens)
        .values(
            token_hash=hash_token(token),
            name=name,
            role=role,
            actor_id=actor_id,
            created_at=now,
        )
        .returning(api_tokens.c.id)
    ).scalar_one()
    return int(row_id)


def find_token(conn: Connection, token: str) -> TokenInfo | None:
    """The live token matching ``token``, or None (unknown or revoked)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = conn.execute(
        select(api_tokens).where(
            api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else _info(row._mapping)


def list_tokens(conn: Connection) -> list[TokenInfo]:
    rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id)).all()
    return [_info(row._mapping) for row in rows]


def revoke_actor_tokens(conn: Connection, actor_id: int, *, now: datetime) -> int:
    """Revoke every live token of a member's actor (when the member leaves)."""
    result = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.actor_id == actor_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)


def revoke_token(conn: Connection, token_id: int, *, now: datetime) -> bool:
    result = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1


def _info(m: RowMapping) -> TokenInfo:
    return TokenInfo(
        id=m["id"],
        name=m["name"],
        role=m["role"],
        actor_id=m["actor_id"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )
