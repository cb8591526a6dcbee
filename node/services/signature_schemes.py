"""How the node signs its deliveries to each host, kept in the database.

The rules are :mod:`federation.schemes`'. A host's row is either learned from its
answers (``confirmed``, kept :data:`~federation.schemes.LEARNED_FOR`) or read from what
its stored actors declare (kept :data:`~federation.schemes.DECLARATION_FRESHNESS`); a
host with no row that has not expired is read again. The delivery worker reads the rows
of a round's hosts in one query, so what an actor declares is looked at once a day per
host, not at every round. Rows are bounded: expired ones are deleted as new ones are
written, and past :data:`MAX_HOSTS` those that expire first go.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, bindparam, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from federation.jsonld import COOP_CONTEXT_URL
from federation.origins import origin_of
from federation.schemes import (
    DECLARATION_FRESHNESS,
    ED25519_CAPABILITY,
    LEARNED_FOR,
    Scheme,
    declares_ed25519,
)
from federation.storable import storable
from node.storage.tables import remote_actors, signature_schemes

# Hosts remembered at most: far more than a co-op delivers to, and a bound whatever
# a peer does to make the node deliver to new hosts.
MAX_HOSTS = 50_000
# Documents of a host read to find a declaration: the first that declares suffices.
_DOCUMENTS_READ = 20
# The longest server (origin) a row holds: the column's length.
_MAX_SERVER = 255
# Hosts read in one query (SQLite allows 32,766 variables; PostgreSQL more).
_CHUNK = 1_000


@dataclass(frozen=True, slots=True)
class HostScheme:
    """What to sign with for a host, and whether its answers confirmed it."""

    scheme: Scheme
    confirmed: bool
    reason: str


def known(conn: Connection, hosts: Iterable[str], *, now: datetime) -> dict[str, HostScheme]:
    """The unexpired rows of ``hosts``."""
    found: dict[str, HostScheme] = {}
    wanted = sorted(set(hosts))
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            select(
                signature_schemes.c.host,
                signature_schemes.c.scheme,
                signature_schemes.c.confirmed,
                signature_schemes.c.reason,
            ).where(
                signature_schemes.c.host.in_(wanted[start : start + _CHUNK]),
                signature_schemes.c.expires_at > now,
            )
        )
        for row in rows:
            try:
                scheme = Scheme(row.scheme)
            except ValueError:
                continue  # a value from a later version: read the host again
            found[row.host] = HostScheme(scheme, bool(row.confirmed), row.reason)
    return found


def _id_prefixes(server: str) -> tuple[str, ...]:
    """How the ids of ``server``'s actors begin: with its port, and without it where
    the port is the scheme's own."""
    parts = urlsplit(server)
    host = parts.hostname or server
    shown = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"https": 443, "http": 80}.get(parts.scheme)
    prefixes = [f"{parts.scheme}://{shown}:{port}/" if port else f"{parts.scheme}://{shown}/"]
    if port is None or port == default:
        prefixes.append(f"{parts.scheme}://{shown}/")
    return tuple(dict.fromkeys(prefixes))


@functools.cache
def _declaring(prefixes: int) -> Select[Any]:
    """The query of :func:`declared` for a server whose actors' ids begin one of
    ``prefixes`` ways: built once (building it took longer than running it), the host
    and the prefixes bound at each call."""
    return (
        select(remote_actors.c.document)
        .where(
            remote_actors.c.host == bindparam("host"),
            # Only this origin's: many servers on one host (ports) must not crowd out
            # each other's declarations within the documents read.
            or_(
                *(
                    remote_actors.c.uri.like(bindparam(f"prefix{n}"), escape="/")
                    for n in range(prefixes)
                )
            ),
            or_(
                remote_actors.c.document.contains(ED25519_CAPABILITY, autoescape=True),
                remote_actors.c.document.contains(COOP_CONTEXT_URL, autoescape=True),
            ),
        )
        .limit(_DOCUMENTS_READ)
    )


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern (escaped by "/") for the strings that begin with ``prefix``."""
    escaped = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"{escaped}%"


def declared(conn: Connection, server: str) -> HostScheme:
    """What the stored actors of ``server`` (an origin: scheme, host and port) declare
    (see :func:`federation.schemes.declares_ed25519`): RFC 9421 with Ed25519 if one of
    them says its server verifies it, else draft-cavage RSA. Another server on the same
    host, on another port, declares nothing for this one. The documents are filtered by
    their text first, so that a host with thousands of stored actors costs one scan."""
    host = urlsplit(server).hostname or server
    prefixes = _id_prefixes(server)
    values = {"host": host} | {f"prefix{n}": _like_prefix(p) for n, p in enumerate(prefixes)}
    for text in conn.execute(_declaring(len(prefixes)), values).scalars():
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if (
            isinstance(document, dict)
            and origin_of(str(document.get("id"))) == server
            and declares_ed25519(document)
        ):
            return HostScheme(
                Scheme.RFC9421_ED25519,
                confirmed=False,
                reason=f"{document.get('id')} declares RFC 9421 with Ed25519",
            )
    return HostScheme(
        Scheme.CAVAGE_RSA, confirmed=False, reason="no actor there declares RFC 9421 with Ed25519"
    )


def plan(
    conn: Connection, hosts: Iterable[str], *, now: datetime
) -> tuple[dict[str, HostScheme], dict[str, HostScheme]]:
    """The schemes of ``hosts``: every host's, and those just read from declarations
    (to be written with :func:`record_declared`)."""
    wanted = set(hosts)
    schemes = known(conn, wanted, now=now)
    read = {host: declared(conn, host) for host in sorted(wanted - schemes.keys())}
    return schemes | read, read


def record_declared(conn: Connection, read: Mapping[str, HostScheme], *, now: datetime) -> None:
    """Write what was read from declarations, over expired rows only: a row another
    worker has just learned stays. Expired rows go, and the table stays bounded."""
    if _upsert(conn, read, now=now, over_expired_only=True):
        prune(conn, now=now)


def record_learned(conn: Connection, learned: Mapping[str, HostScheme], *, now: datetime) -> None:
    """Write what hosts' answers taught, replacing whatever was there."""
    _upsert(conn, learned, now=now, over_expired_only=False)


def _upsert(
    conn: Connection,
    found: Mapping[str, HostScheme],
    *,
    now: datetime,
    over_expired_only: bool,
) -> bool:
    """Write a row per server of ``found`` (those that fit); returns whether any was."""
    rows = [_row(host, scheme, now=now) for host, scheme in found.items() if _fits(host)]
    if not rows:
        return False
    statement = _insert(conn).values(rows)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["host"],
            set_={k: statement.excluded[k] for k in rows[0] if k != "host"},
            where=signature_schemes.c.expires_at <= now if over_expired_only else None,
        )
    )
    return True


def prune(conn: Connection, *, now: datetime, keep: int = MAX_HOSTS) -> int:
    """Delete expired rows, then those that expire first past ``keep`` rows; returns
    how many were deleted."""
    deleted = conn.execute(
        delete(signature_schemes).where(signature_schemes.c.expires_at <= now)
    ).rowcount
    count = conn.execute(select(func.count()).select_from(signature_schemes)).scalar_one()
    if count > keep:
        first = (
            select(signature_schemes.c.id)
            .order_by(signature_schemes.c.expires_at, signature_schemes.c.id)
            .limit(count - keep)
        )
        deleted += conn.execute(
            delete(signature_schemes).where(signature_schemes.c.id.in_(first.scalar_subquery()))
        ).rowcount
    return int(deleted)


def _fits(server: str) -> bool:
    # An origin may be a few characters longer than the column (a 253-character host,
    # its scheme and port): such a server is simply not remembered.
    return len(server) <= _MAX_SERVER


def _row(host: str, found: HostScheme, *, now: datetime) -> dict[str, Any]:
    return {
        "host": host,
        "scheme": found.scheme.value,
        "confirmed": int(found.confirmed),
        "reason": storable(found.reason, limit=500),
        "decided_at": now,
        "expires_at": now + (LEARNED_FOR if found.confirmed else DECLARATION_FRESHNESS),
    }


def _insert(conn: Connection) -> Any:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return insert(signature_schemes)
