"""What a co-op does with its members, for the API, the pages, the command line and the
demo alike: adding a local member or linking a remote one, and setting the colleges."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from federation import keys
from node.errors import Invalid
from node.members import store as service

if TYPE_CHECKING:
    from node.runtime import Node

_ADD_FIELDS = {"username", "name", "password", "remote", "role", "college", "joined_at"}


async def add_member(node: Node, data: dict[str, Any]) -> tuple[service.Member, dict[str, Any]]:
    """Add a local member (``username``) or link a remote one (``remote``: a handle or
    actor URL, left pending until confirmed). Returns the member and, for a remote one,
    what the admin should look at before confirming."""
    unknown = set(data) - _ADD_FIELDS
    if unknown:
        raise Invalid(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    role = string_field(data, "role") or "member"
    college = string_field(data, "college")
    now = node.clock.now()
    joined_at = _moment(data.get("joined_at"), default=now)
    remote = string_field(data, "remote")
    username = string_field(data, "username")
    if (remote is None) == (username is None):
        raise Invalid("give either username (a local member) or remote", field="username")
    if remote is not None:
        for key in ("password", "name"):
            if key in data:
                raise Invalid(f"{key} is for local members only", field=key)
        service.check_role(role)
        await node.db.read(lambda conn: service.check_college(conn, college))
        actor_uri, handle = await service.resolve_remote(node, remote)
        actor = await node.peers.actor(actor_uri)
        member = await node.db.write(
            lambda conn: service.link_remote(
                conn,
                actor_uri=actor_uri,
                handle=handle,
                role=role,
                college=college,
                joined_at=joined_at,
                now=now,
            )
        )
        shown = {k: actor.get(k) for k in ("id", "type", "preferredUsername", "name", "url")}
        return member, shown
    assert username is not None
    password = data.get("password")
    if password is not None and not isinstance(password, str):
        raise Invalid("password must be a string", field="password")
    # Both slow steps happen here, off the writer thread.
    password_hash = (
        None if password is None else await asyncio.to_thread(service.hash_password, password)
    )
    ed_pem = keys.generate_ed25519_private_pem()
    name = string_field(data, "name") or username
    member = await node.db.write(
        lambda conn: service.add_local(
            conn,
            base_url=node.settings.base_url,
            domain=node.settings.domain,
            username=username,
            name=name,
            role=role,
            college=college,
            joined_at=joined_at,
            now=now,
            ed25519_private_pem=ed_pem,
            password_hash=password_hash,
        )
    )
    return member, {}


async def set_colleges(node: Node, data: dict[str, Any]) -> list[service.College]:
    raw = data.get("colleges")
    if not isinstance(raw, list):
        raise Invalid("colleges is a list of {name, weight}", field="colleges")
    wanted = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise Invalid("each college has a name and a weight", field="colleges")
        name = item["name"].strip()
        if not 0 < len(name) <= 64:
            raise Invalid("a college's name has 1 to 64 characters", field="name")
        wanted.append(
            service.College(name=name, weight_bp=service.parse_weight(item.get("weight")))
        )
    now = node.clock.now()
    await node.db.write(lambda conn: service.set_colleges(conn, wanted, now=now))
    return wanted


def string_field(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{key} must be a non-empty string", field=key)
    return value.strip()


def _moment(raw: object, *, default: datetime) -> datetime:
    """``joined_at`` as a date (``2026-01-15``) or a time with its offset."""
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise Invalid("joined_at is a date such as 2026-01-15", field="joined_at")
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"joined_at {raw!r} is not a date", field="joined_at") from None
    if moment.tzinfo is None:
        raise Invalid("joined_at needs a time zone offset (or Z)", field="joined_at")
    return moment.astimezone(UTC)
