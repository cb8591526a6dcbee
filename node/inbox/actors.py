"""A peer's actor changing or leaving: an ``Update`` or ``Delete`` of the sending actor
itself (the kind ``"actor"``).

On an Update the embedded copy is not trusted: the actor is fetched from its server,
stored, and its cached keys are forgotten (the next signature fetches them again); then
the features that read something from a profile (:attr:`Inbound.profile_readers`) read
the fetched document. On a Delete the actor and its keys are forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from federation.inbox import actor_id
from node.inbox.feature import Handler, Inbound, Kind, ProfileReader
from node.runtime import Node
from node.services import remote_actors
from node.services.inbox import InboxItem
from node.urls import Urls

ACTOR = "actor"


def is_the_actor(activity: dict[str, Any], actor: str, urls: Urls) -> bool:
    """Whether the activity's object is its own actor."""
    return actor_id(activity.get("object")) == actor


def updating(readers: Sequence[ProfileReader]) -> Handler:
    """The handler of an actor's Update, which hands the fetched profile to ``readers``."""

    async def on_update(node: Node, item: InboxItem) -> None:
        document = await node.peers.fetch(item.actor)
        if remote_actors.is_actor_document(document):
            now = node.clock.now()
            await node.db.write(lambda conn: remote_actors.store(conn, document, now=now))
            node.peers.keys.forget_actor(item.actor)
            for read in readers:
                await read(node, item, document)

    return on_update


async def on_delete(node: Node, item: InboxItem) -> None:
    """An actor deleting itself: forget it and its keys."""
    node.peers.keys.forget_actor(item.actor)
    await node.db.write(lambda conn: remote_actors.forget(conn, item.actor))


def inbound(profile_readers: Sequence[ProfileReader]) -> Inbound:
    """The inbox's own part, first of all: what an actor says of itself comes before
    any feature's reading of the object."""
    return Inbound(
        name="actors",
        kinds=(Kind("Update", ACTOR, is_the_actor), Kind("Delete", ACTOR, is_the_actor)),
        handlers={("Update", ACTOR): updating(profile_readers), ("Delete", ACTOR): on_delete},
    )
