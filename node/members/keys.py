"""Replacing a local actor's keys (the co-op's, or a member's) after a leak, and telling
the servers that know the actor.

The new keys keep the old key ids (``…#main-key`` and ``…#ed25519-key``) with new
material, as Mastodon does when an account's key changes: a peer holding the old key
fails to verify the next signature, fetches the key again (a failed verification does
so at once, then at most every few minutes) and gets the new one; the ids that other
servers keep for the actor, and those in documents already published, stay valid
names. An ``Update`` of the actor goes to its followers (and, for a member, to the
co-op's followers too, whose servers show the member's ballots and offers), signed
with the new key, so peers also refetch the actor on receipt.

Every process of the node loads its signers again when it sees that the keys changed
(:meth:`node.peers.Peers.refresh_keys`, at each delivery round)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from federation import keys
from node import activities, documents
from node.errors import NotFound
from node.follows import store as follows
from node.runtime import Node
from node.services import identity, outbox

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a rotation did: whose keys, their ids, short fingerprints of the public
    halves before and after, and how many inboxes the ``Update`` was queued for."""

    actor: str
    rsa_key_id: str
    ed25519_key_id: str
    old_fingerprints: tuple[str, str]
    new_fingerprints: tuple[str, str]
    inboxes: int


def fingerprint(public: str | None) -> str:
    """The first 16 hex digits of the SHA-256 of a public key as published (its PEM or
    its multibase), or ``-`` for a key the actor did not have."""
    if public is None:
        return "-"
    return hashlib.sha256(public.encode("ascii")).hexdigest()[:16]


async def rotate(node: Node, username: str | None = None) -> Rotation:
    """New RSA-2048 and Ed25519 keys for the co-op (``username`` None) or a local
    member, written with the ``Update`` of the actor in one unit of work."""
    handle = node.settings.handle
    username = username or handle
    # Generating an RSA key takes 50 to 100 ms: done on a thread, off the writer.
    rsa_pem, ed_pem = await asyncio.gather(
        asyncio.to_thread(keys.generate_rsa_private_pem),
        asyncio.to_thread(keys.generate_ed25519_private_pem),
    )
    now, policy = node.clock.now(), node.peers.policy

    def unit(conn: Connection) -> Rotation:
        if not identity.actor_exists(conn, username):
            # A remote member's keys are its own server's business.
            raise NotFound(f"no local actor @{username} on this node")
        before = identity.get_actor(conn, username)
        actor_pk = before.actor.id
        identity.rotate_keys(
            conn, actor_pk, now=now, rsa_private_pem=rsa_pem, ed25519_private_pem=ed_pem
        )
        after = identity.get_actor(conn, username)
        document = documents.actor_document(node.urls, after)
        inboxes = follows.follower_inboxes(conn, actor_id=actor_pk)
        if actor_pk != node.peers.coop_id:
            inboxes += follows.follower_inboxes(conn, actor_id=node.peers.coop_id)
        queued = outbox.publish(
            conn,
            activities.update_actor(node.urls, document),
            actor_id=actor_pk,
            inboxes=inboxes,
            now=now,
            policy=policy,
            public=True,
        )
        return Rotation(
            actor=node.urls.actor(username),
            rsa_key_id=node.urls.actor_key(username),
            ed25519_key_id=node.urls.actor_multikey(username),
            old_fingerprints=(
                fingerprint(before.rsa_public_pem),
                fingerprint(before.ed25519_multibase),
            ),
            new_fingerprints=(
                fingerprint(after.rsa_public_pem),
                fingerprint(after.ed25519_multibase),
            ),
            inboxes=queued,
        )

    rotation = await node.db.write(unit)
    # This process signs with the new keys at once; the others at their next round.
    await node.peers.refresh_keys()
    node.delivery_wakeup.set()
    return rotation
