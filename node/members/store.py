"""The co-op's members: local ones (a Person actor here, a password) and remote ones
(an account on another server, linked once the admin confirms it), their roles and
colleges, and the end of a membership (the row stays, for the history of votes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import RowMapping, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from federation import webfinger
from federation.errors import InvalidDocument
from node.errors import Conflict, Invalid, NotFound
from node.services import identity, sessions, tokens
from node.settings import SettingsError, validate_handle
from node.storage.tables import actors, colleges, members

if TYPE_CHECKING:
    from node.runtime import Node

ROLES = ("admin", "member", "observer")
# Roles whose holders vote; an observer sees what members see but does not vote.
VOTING_ROLES = ("admin", "member")
FULL_WEIGHT_BP = 10_000  # 100 %, in basis points
MAX_PASSWORD = 1024

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    actor_id: int | None
    actor_uri: str
    handle: str
    local: bool
    role: str
    college: str | None
    joined_at: datetime
    left_at: datetime | None
    state: str
    has_password: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "actor": self.actor_uri,
            "handle": self.handle,
            "local": self.local,
            "role": self.role,
            "college": self.college,
            "joined_at": _iso(self.joined_at),
            "left_at": None if self.left_at is None else _iso(self.left_at),
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class College:
    name: str
    weight_bp: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "weight": percent(self.weight_bp)}


# --- passwords -------------------------------------------------------------------------


def hash_password(password: str) -> str:
    if not 8 <= len(password) <= MAX_PASSWORD:
        raise Invalid(f"the password needs 8 to {MAX_PASSWORD} characters", field="password")
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    if password_hash is None or len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- checks ----------------------------------------------------------------------------


def check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"role {role!r}: use one of {', '.join(ROLES)}", field="role")
    return role


def check_college(conn: Connection, college: str | None) -> str | None:
    """A member has a college exactly when the co-op defines colleges."""
    names = {c.name for c in list_colleges(conn)}
    if not names:
        if college is not None:
            raise Invalid("this co-op has no colleges", field="college")
        return None
    if college is None:
        raise Invalid(f"give a college: {', '.join(sorted(names))}", field="college")
    if college not in names:
        raise Invalid(f"no college {college!r}: use {', '.join(sorted(names))}", field="college")
    return college


def parse_weight(raw: object) -> int:
    """A college's weight as a percentage ("33.34", 50) in exact basis points."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise Invalid("a weight is a percentage, as a string or whole number", field="weight")
    try:
        value = Decimal(str(raw).strip().rstrip("%"))
    except InvalidOperation:
        raise Invalid(f"weight {raw!r} is not a number", field="weight") from None
    basis_points = value * 100
    if basis_points != basis_points.to_integral_value() or not 0 < basis_points <= FULL_WEIGHT_BP:
        raise Invalid(
            f"weight {raw!r}: a percentage above 0, at most 100, with two decimals at most",
            field="weight",
        )
    return int(basis_points)


def percent(weight_bp: int) -> str:
    return str((Decimal(weight_bp) / 100).normalize().quantize(Decimal("0.01")))


# --- colleges --------------------------------------------------------------------------


def list_colleges(conn: Connection) -> list[College]:
    rows = conn.execute(select(colleges.c.name, colleges.c.weight_bp).order_by(colleges.c.name))
    return [College(name=name, weight_bp=weight) for name, weight in rows]


def set_colleges(conn: Connection, wanted: Sequence[College], *, now: datetime) -> None:
    """Replace the co-op's colleges. Their weights sum to 100 %; a college that current
    members belong to cannot be dropped (move them first)."""
    names = [c.name for c in wanted]
    if len(set(names)) != len(names):
        raise Invalid("each college is named once", field="colleges")
    if wanted and sum(c.weight_bp for c in wanted) != FULL_WEIGHT_BP:
        total = percent(sum(c.weight_bp for c in wanted))
        raise Invalid(f"the weights sum to {total} %, not 100 %", field="colleges")
    current = select(members.c.college).where(members.c.left_at.is_(None)).distinct()
    used = {name for (name,) in conn.execute(current) if name is not None}
    dropped = used - set(names)
    if dropped:
        raise Conflict(f"members still belong to {', '.join(sorted(dropped))}")
    if wanted and conn.execute(current.where(members.c.college.is_(None))).first() is not None:
        raise Conflict("some members have no college: colleges must cover every member")
    conn.execute(delete(colleges))
    if wanted:
        conn.execute(
            insert(colleges),
            [{"name": c.name, "weight_bp": c.weight_bp, "created_at": now} for c in wanted],
        )


# --- local members ---------------------------------------------------------------------


def add_local(
    conn: Connection,
    *,
    base_url: str,
    domain: str,
    username: str,
    name: str,
    role: str,
    college: str | None,
    joined_at: datetime,
    now: datetime,
    ed25519_private_pem: bytes,
    password_hash: str | None,
) -> Member:
    """A local member and its Person actor. Only the Ed25519 key is made here (about
    50 µs); the RSA key, a few hundred times slower, waits for
    :func:`node.services.identity.ensure_rsa_key`."""
    try:
        validate_handle(username)
    except SettingsError as exc:
        raise Invalid(str(exc), field="username") from None
    check_role(role)
    college = check_college(conn, college)
    if identity.actor_exists(conn, username):
        raise Conflict(f"the name {username!r} is taken on this node")
    actor_id = identity.create_actor(
        conn,
        username=username,
        type_="Person",
        name=name or username,
        summary="",
        now=now,
        rsa_private_pem=None,
        ed25519_private_pem=ed25519_private_pem,
    )
    values = {
        "actor_id": actor_id,
        "actor_uri": f"{base_url}/actors/{username}",
        "handle": f"{username}@{domain}",
        "local": 1,
        "role": role,
        "college": college,
        "joined_at": joined_at,
        "left_at": None,
        "state": "confirmed",
        "password_hash": password_hash,
        "created_at": now,
    }
    member_id = conn.execute(insert(members).values(values).returning(members.c.id)).scalar_one()
    return _member({**values, "id": int(member_id)})


def login_candidate(conn: Connection, username: str) -> tuple[Member, str | None] | None:
    """The current local member called ``username`` and their password hash: the hash is
    checked by the caller, off the writer thread (argon2 takes tens of milliseconds)."""
    row = conn.execute(
        select(members)
        .join(actors, actors.c.id == members.c.actor_id)
        .where(actors.c.username == username, members.c.left_at.is_(None))
    ).first()
    return None if row is None else (_member(row._mapping), row.password_hash)


def check_login(found: tuple[Member, str | None] | None, password: str) -> Member:
    """The member whose password this is, or :class:`Invalid`."""
    if found is None:
        # Verify anyway, so that an unknown name takes as long as a wrong password.
        password_matches(_dummy_hash(), password)
    elif password_matches(found[1], password):
        return found[0]
    raise Invalid("unknown name or wrong password", field="password")


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("a password nobody has")


def issue_token(conn: Connection, member: Member, *, name: str, now: datetime) -> str:
    """An API token acting as ``member``, with the member's role."""
    if member.left_at is not None or member.state != "confirmed" or member.actor_id is None:
        raise Conflict("only current local members receive tokens")
    token = tokens.new_token()
    tokens.store_token(conn, token, name=name, role=member.role, now=now, actor_id=member.actor_id)
    return token


# --- remote members --------------------------------------------------------------------


async def resolve_remote(node: Node, target: str) -> tuple[str, str]:
    """The actor URI and ``user@host`` handle of an account elsewhere, given either.

    WebFinger and the actor document must agree: the actor's ``preferredUsername`` at
    its host is the handle, and WebFinger for that handle names this actor. Otherwise a
    server could claim, by WebFinger, an account it does not host.
    """
    if target.startswith(("https://", "http://")):
        actor = await node.peers.actor(target)
    else:
        try:
            webfinger.parse_acct(target, strict=False)
        except webfinger.WebFingerError as exc:
            raise Invalid(str(exc), field="target") from None
        actor = await node.peers.resolve(target)
    actor_uri = actor.get("id")
    user = actor.get("preferredUsername")
    if not isinstance(actor_uri, str) or not isinstance(user, str) or not user:
        raise InvalidDocument("the actor has no id or preferredUsername")
    handle = f"{user}@{urlsplit(actor_uri).netloc.lower()}"
    if not target.startswith(("https://", "http://")):
        given_user, given_host = webfinger.parse_acct(target, strict=False)
        if given_user.lower() != user.lower():
            raise Invalid(
                f"WebFinger for {target} names {actor_uri}, whose username is {user!r}",
                field="target",
            )
        if given_host.lower() == handle.split("@", 1)[1]:
            return actor_uri, handle
    # A URL, or WebFinger served by another domain (Mastodon's WEB_DOMAIN): WebFinger
    # of the actor's own handle must name the same actor.
    again = await node.peers.resolve(handle)
    if again.get("id") != actor_uri:
        raise Invalid(
            f"WebFinger for {handle} names {again.get('id')}, not {actor_uri}", field="target"
        )
    return actor_uri, handle


def link_remote(
    conn: Connection,
    *,
    actor_uri: str,
    handle: str,
    role: str,
    college: str | None,
    joined_at: datetime,
    now: datetime,
) -> Member:
    """Record a remote member as pending: the admin confirms after seeing the account."""
    check_role(role)
    college = check_college(conn, college)
    existing = conn.execute(select(members.c.id).where(members.c.actor_uri == actor_uri)).scalar()
    if existing is not None:
        raise Conflict(f"{handle} is already on the roster (member {existing})")
    member_id = conn.execute(
        insert(members)
        .values(
            actor_id=None,
            actor_uri=actor_uri,
            handle=handle,
            local=0,
            role=role,
            college=college,
            joined_at=joined_at,
            state="pending",
            created_at=now,
        )
        .returning(members.c.id)
    ).scalar_one()
    return get_member(conn, int(member_id))


def confirm(conn: Connection, member_id: int) -> Member:
    member = get_member(conn, member_id)
    if member.left_at is not None:
        raise Conflict("this membership has ended")
    conn.execute(update(members).where(members.c.id == member_id).values(state="confirmed"))
    return get_member(conn, member_id)


# --- changes and listing ---------------------------------------------------------------


def change(
    conn: Connection,
    member_id: int,
    *,
    now: datetime,
    role: str | None = None,
    college: str | None = None,
) -> Member:
    member = get_member(conn, member_id)
    if member.left_at is not None:
        raise Conflict("this membership has ended")
    values: dict[str, object] = {}
    if role is not None and role != member.role:
        values["role"] = check_role(role)
        if member.actor_id is not None:
            # Tokens carry the role they were made with: a changed role needs new ones.
            tokens.revoke_actor_tokens(conn, member.actor_id, now=now)
    if college is not None:
        values["college"] = check_college(conn, college)
    if values:
        conn.execute(update(members).where(members.c.id == member_id).values(**values))
    return get_member(conn, member_id)


def remove(conn: Connection, member_id: int, *, now: datetime) -> Member:
    """End a membership: the row stays with its end date, the member's tokens and
    browser sessions stop."""
    member = get_member(conn, member_id)
    if member.left_at is not None:
        raise Conflict(f"membership {member_id} ended on {_iso(member.left_at)}")
    conn.execute(update(members).where(members.c.id == member_id).values(left_at=now))
    sessions.close_member_sessions(conn, member_id)
    if member.actor_id is not None:
        tokens.revoke_actor_tokens(conn, member.actor_id, now=now)
    return get_member(conn, member_id)


def get_member(conn: Connection, member_id: int) -> Member:
    row = conn.execute(select(members).where(members.c.id == member_id)).first()
    if row is None:
        raise NotFound(f"no member {member_id}")
    return _member(row._mapping)


def list_members(
    conn: Connection, *, current_only: bool = True, offset: int = 0, limit: int | None = None
) -> list[Member]:
    query = select(members).order_by(members.c.joined_at, members.c.id).offset(offset)
    if current_only:
        query = query.where(members.c.left_at.is_(None))
    if limit is not None:
        query = query.limit(limit)
    return [_member(row._mapping) for row in conn.execute(query)]


def roster_count(conn: Connection) -> int:
    """How many members the roster lists: current and confirmed."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(members)
            .where(members.c.left_at.is_(None), members.c.state == "confirmed")
        ).scalar_one()
    )


def roster_page(conn: Connection, *, offset: int, limit: int) -> list[Member]:
    query = (
        select(members)
        .where(members.c.left_at.is_(None), members.c.state == "confirmed")
        .order_by(members.c.joined_at, members.c.id)
        .offset(offset)
        .limit(limit)
    )
    return [_member(row._mapping) for row in conn.execute(query)]


def _member(m: RowMapping | dict[str, Any]) -> Member:
    return Member(
        id=m["id"],
        actor_id=m["actor_id"],
        actor_uri=m["actor_uri"],
        handle=m["handle"],
        local=bool(m["local"]),
        role=m["role"],
        college=m["college"],
        joined_at=m["joined_at"],
        left_at=m["left_at"],
        state=m["state"],
        has_password=m["password_hash"] is not None,
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def member_of_actor(conn: Connection, actor_id: int | None) -> int | None:
    """The current member whose actor is ``actor_id`` (an API token's), or ``None``."""
    if actor_id is None:
        return None
    found = conn.execute(
        select(members.c.id).where(
            members.c.actor_id == actor_id,
            members.c.left_at.is_(None),
            members.c.state == "confirmed",
        )
    ).scalar()
    return None if found is None else int(found)
