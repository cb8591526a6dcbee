"""Actors of other servers, stored as last fetched."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from federation.jsonld import COOP_CONTEXT_URL
from node.storage.tables import remote_actors


def is_actor_document(document: dict[str, Any]) -> bool:
    return isinstance(document.get("id"), str) and isinstance(document.get("inbox"), str)


def delivery_inbox(document: dict[str, Any]) -> str | None:
    """Where to deliver to an actor: its server's shared inbox if it has one, else its
    own inbox; None if it names neither."""
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    inbox = shared if isinstance(shared, str) else document.get("inbox")
    return inbox if isinstance(inbox, str) else None


def store(conn: Connection, document: dict[str, Any], *, now: datetime) -> None:
    """Insert or refresh an actor from its (verified, fetched) document."""
    key = document.get("publicKey")
    key = key[0] if isinstance(key, list) and key else key
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    values = {
        "uri": document["id"],
        "host": (urlsplit(document["id"]).hostname or "").lower(),
        "type": str(document.get("type", ""))[:32],
        "inbox": document["inbox"],
        "shared_inbox": shared if isinstance(shared, str) else None,
        "key_id": key.get("id") if isinstance(key, dict) else None,
        "public_key_pem": key.get("publicKeyPem") if isinstance(key, dict) else None,
        "document": json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        "fetched_at": now,
    }
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(remote_actors).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["uri"],
            set_={k: statement.excluded[k] for k in values if k != "uri"},
        )
    )


def find(conn: Connection, uri: str) -> tuple[dict[str, Any], datetime] | None:
    row = conn.execute(
        select(remote_actors.c.document, remote_actors.c.fetched_at).where(
            remote_actors.c.uri == uri
        )
    ).first()
    return None if row is None else (json.loads(row.document), row.fetched_at)


@dataclass(frozen=True, slots=True)
class Label:
    """What an actor calls itself, as its document says: shown escaped, never trusted."""

    uri: str
    name: str | None  # as given, when it is a non-blank string
    username: str | None

    @property
    def handle(self) -> str:
        """``user@host:port`` (a local node's host has its port), or the host alone."""
        host = urlsplit(self.uri).netloc
        return f"{self.username}@{host}" if self.username else host


def labels(conn: Connection, uris: Iterable[str]) -> dict[str, Label]:
    """The labels of the actors among ``uris`` whose documents this node keeps, in one
    query."""
    wanted = sorted(set(uris))
    if not wanted:
        return {}
    found: dict[str, Label] = {}
    rows = conn.execute(
        select(remote_actors.c.uri, remote_actors.c.document).where(remote_actors.c.uri.in_(wanted))
    )
    for uri, text in rows:
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if not isinstance(document, dict):
            continue
        name, username = document.get("name"), document.get("preferredUsername")
        found[uri] = Label(
            uri=uri,
            name=name if isinstance(name, str) and name.strip() else None,
            username=username if isinstance(username, str) and username else None,
        )
    return found


def exists(conn: Connection, uri: str) -> bool:
    query = select(remote_actors.c.id).where(remote_actors.c.uri == uri)
    return conn.execute(query).first() is not None


def forget(conn: Connection, uri: str) -> bool:
    return conn.execute(delete(remote_actors).where(remote_actors.c.uri == uri)).rowcount == 1


def speaks_coopnode(conn: Connection, inbox: str) -> bool:
    """Whether ``inbox`` is a coopnode's: an actor delivered to there says (FEP-844e
    ``implements``) that it reads the co-op vocabulary. A coopnode verifies RFC 9421
    signatures made with Ed25519 keys, so its members' deliveries there need no RSA key."""
    query = (
        select(remote_actors.c.document)
        .where(or_(remote_actors.c.shared_inbox == inbox, remote_actors.c.inbox == inbox))
        .limit(20)
    )
    for text in conn.execute(query).scalars():
        implements = json.loads(text).get("implements")
        if isinstance(implements, list) and any(
            isinstance(entry, dict) and entry.get("href") == COOP_CONTEXT_URL
            for entry in implements
        ):
            return True
    return False
