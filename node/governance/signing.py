"""What this node signs for governance with Ed25519 keys (FEP-8b32 ``eddsa-jcs-2022``
proofs): a member's ballot, signed as the member so that an audit can check it came
from the member's node, and the co-op's own subtotals and ballots, signed as the
co-op."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation import keys, proofs
from node.errors import Conflict, NotFound
from node.governance import documents
from node.governance.store import proposals as proposal_store
from node.runtime import Node
from node.services import identity

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def _private_key(pem: bytes) -> Ed25519PrivateKey:
    private = keys.load_own_private_key(pem)
    assert isinstance(private, Ed25519PrivateKey)
    return private


async def signed_ballot(
    node: Node,
    member_pk: int | None,
    proposal: str,
    host: str,
    choices: list[str],
    now: datetime,
) -> tuple[str, str, tuple[dict[str, Any], ...]]:
    """A member's ballot as Mastodon shapes it, one ``Note`` per option, each signed by
    this node as the member with the member's Ed25519 key: the voter, the ballot's id
    and its Notes."""

    def member_key(conn: Connection) -> tuple[str, bytes]:
        username = proposal_store.username_of(conn, member_pk)
        if username is None:
            raise NotFound("no such member here")
        found = identity.get_actor(conn, username)
        if found.ed25519_private_pem is None:
            raise Conflict("this member has no Ed25519 key")
        return username, found.ed25519_private_pem

    username, pem = await node.db.read(member_key)
    voter = node.urls.actor(username)
    ballot = node.urls.ballot(uuid.uuid4().hex)
    private = _private_key(pem)
    notes = tuple(
        proofs.sign(
            documents.ballot_note(
                note_id=f"{ballot}/{n}",
                option=name,
                proposal=proposal,
                voter=voter,
                to=host,
                now=now,
            ),
            private,
            verification_method=node.urls.actor_multikey(username),
            created=now,
        )
        for n, name in enumerate(choices)
    )
    return voter, ballot, notes


def sign_as_coop(
    conn: Connection, node: Node, document: dict[str, Any], *, created: datetime
) -> dict[str, Any]:
    """``document`` with the co-op's proof, made with the co-op's Ed25519 key."""
    handle = node.settings.handle
    pem = identity.get_actor(conn, handle).ed25519_private_pem
    assert pem is not None
    return proofs.sign(
        document,
        _private_key(pem),
        verification_method=node.urls.actor_multikey(handle),
        created=created,
    )
