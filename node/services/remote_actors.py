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

from federation.errors import InvalidDocument
from federation.jsonld import COOP_CONTEXT_URL
from node.storage.tables import remote_actors

# The longest actor id or inbox kept: the width of their columns.
MAX_URI = 2048
# The most a stored document may take, once trimmed to the fields the node reads: a
# stranger can mint any number of actors sharing one key, each fetched and stored.
MAX_DOCUMENT = 64 * 1024
# A profile's summary is shown, never parsed: beyond this it is cut.
MAX_SUMMARY = 4096
# The fields the node reads from a stored actor (delivery, keys, labels, rosters, offer
# backfill, the vocabulary it declares); anything else is not kept.
KEPT_FIELDS = (
    "@context",
    "id",
    "type",
    "inbox",
    "outbox",
    "endpoints",
    "publicKey",
    "assertionMethod",
    "name",
    "preferredUsername",
    "summary",
    "icon",
    "url",
    "implements",
    # FEP-844e: what the server declares it implements (RFC 9421 signatures, say).
    "generator",
    "members",
    # A network's rule for admitting co-ops: what tells a network from a co-op.
    "admission",
    "offers",
    "proposals",
    "followers",
    "following",
    "manuallyApprovesFollowers",
    "discoverable",
    "published",
    "updated",
)
# When even those exceed MAX_DOCUMENT: the entries of these lists kept (among the first
# MAX_ENTRIES, each reduced to the strings read from it that are at most MAX_KEY long,
# those that still hold the last one named, the key or the link)...
_ENTRIES = {
    "publicKey": ("id", "type", "owner", "publicKeyPem"),
    "assertionMethod": ("id", "type", "controller", "publicKeyMultibase"),
    "implements": ("name", "href"),
}
MAX_ENTRIES = 16
MAX_KEY = 8192
# ... and these string fields, each at most MAX_URI long.
_STRINGS = (
    "type",
    "preferredUsername",
    "name",
    "outbox",
    "members",
    "admission",
    "offers",
    "proposals",
)


def is_actor_document(document: dict[str, Any]) -> bool:
    actor, inbox = document.get("id"), document.get("inbox")
    return (
        isinstance(actor, str)
        and isinstance(inbox, str)
        and len(actor) <= MAX_URI
        and len(inbox) <= MAX_URI
    )


def delivery_inbox(document: dict[str, Any]) -> str | None:
    """Where to deliver to an actor: its server's shared inbox if it has one, else its
    own inbox; None if it names neither."""
    inbox = shared_inbox(document) or document.get("inbox")
    return inbox if isinstance(inbox, str) else None


def store(conn: Connection, document: dict[str, Any], *, now: datetime) -> None:
    """Insert or refresh an actor from its (verified, fetched) document, trimmed (see
    :func:`kept`); :class:`InvalidDocument` if it is no actor this table can hold."""
    if not is_actor_document(document):
        raise InvalidDocument(f"{str(document.get('id'))[:200]} is not an actor")
    document, text = kept(document)
    key = document.get("publicKey")
    key = key[0] if isinstance(key, list) and key else key
    values = {
        "uri": document["id"],
        "host": (urlsplit(document["id"]).hostname or "").lower(),
        "type": str(document.get("type", ""))[:32],
        "inbox": document["inbox"],
        "shared_inbox": shared_inbox(document),
        "key_id": key.get("id") if isinstance(key, dict) else None,
        "public_key_pem": key.get("publicKeyPem") if isinstance(key, dict) else None,
        "document": text,
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


def kept(document: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """What is stored of an actor's document (see :func:`is_actor_document`), and its
    JSON: the fields the node reads, in at most MAX_DOCUMENT bytes; past that, only what
    delivering to the actor and checking its signatures need, as much of it as fits."""
    trimmed = {k: document[k] for k in KEPT_FIELDS if k in document}
    summary = trimmed.get("summary")
    if isinstance(summary, str) and len(summary) > MAX_SUMMARY:
        trimmed["summary"] = summary[:MAX_SUMMARY]
    text = _encode(trimmed)
    if _size(text) > MAX_DOCUMENT:
        trimmed = _essential(document)
        text = _encode(trimmed)
    return trimmed, text


def _essential(document: dict[str, Any]) -> dict[str, Any]:
    """Id and inbox (each at most MAX_URI long), then each bounded part that still fits:
    the shared inbox, the keys, the declared vocabulary, the names and the collections."""
    essential: dict[str, Any] = {"id": document["id"], "inbox": document["inbox"]}
    size = _size(_encode(essential))

    def fits(part: Any) -> bool:
        nonlocal size
        # What a part adds: its encoding, a separator and its field's name (overestimated).
        cost = _size(_encode({"_": part})) + 64
        if size + cost > MAX_DOCUMENT:
            return False
        size += cost
        return True

    shared = shared_inbox(document)
    if shared is not None and len(shared) <= MAX_URI and fits(shared):
        essential["endpoints"] = {"sharedInbox": shared}
    for field, names in _ENTRIES.items():
        value = document.get(field)
        entries = value if isinstance(value, list) else [value]
        for entry in entries[:MAX_ENTRIES]:
            if not isinstance(entry, dict):
                continue
            reduced = {
                k: v for k in names if isinstance(v := entry.get(k), str) and len(v) <= MAX_KEY
            }
            if names[-1] in reduced and fits(reduced):
                essential.setdefault(field, []).append(reduced)
    for field in _STRINGS:
        value = document.get(field)
        if isinstance(value, str) and len(value) <= MAX_URI and fits(value):
            essential[field] = value
    return essential


def _encode(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def shared_inbox(document: dict[str, Any]) -> str | None:
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    return shared if isinstance(shared, str) else None


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
