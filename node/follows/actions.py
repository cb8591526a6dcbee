"""Following and being followed, as the admin does it: follow, unfollow, approve or
refuse a follower, and tell the followers of a changed profile. (What a peer's Follow,
Accept, Reject or Undo does is :mod:`node.follows.inbound`'s.)

Every change and the activity announcing it are written in one unit of work through the
outbox, then the delivery worker is woken.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from node import activities, documents
from node.catalogue import store as catalogue
from node.errors import Conflict, NotFound
from node.follows import store as follows
from node.networks import store as networks
from node.runtime import Node
from node.services import identity, outbox

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FollowResult:
    followed: str
    follow_id: str
    # False when a follow was already recorded (nothing was sent again).
    sent: bool


async def follow(node: Node, target: str) -> FollowResult:
    """Follow the actor behind a handle or URL: a pending follow and a Follow sent."""
    document = await node.peers.resolve(target)
    followed = str(document["id"])
    # The actor may live elsewhere than the handle's domain (WebFinger may point away).
    node.peers.ensure_allowed(followed)
    if followed == node.urls.actor(node.settings.handle):
        raise Conflict("a co-op cannot follow itself")
    activity = activities.follow(node.urls, node.settings.handle, followed)
    coop_id, now, policy = node.peers.coop_id, node.clock.now(), node.peers.policy

    def unit(conn: Connection) -> str | None:
        existing = follows.start_following(
            conn, actor_id=coop_id, followed=followed, follow_id=activity["id"], now=now
        )
        if existing is None:
            outbox.publish(
                conn,
                activity,
                actor_id=coop_id,
                inboxes=[document["inbox"]],
                now=now,
                policy=policy,
            )
        return existing

    existing = await node.db.write(unit)
    node.delivery_wakeup.set()
    return FollowResult(followed, existing or activity["id"], sent=existing is None)


async def unfollow(node: Node, target: str) -> str:
    """Stop following; the followed actor gets an Undo(Follow). Returns its id."""
    followed = target
    if not target.startswith(("https://", "http://")):
        followed = str((await node.peers.resolve(target))["id"])
    coop_id = node.peers.coop_id
    # Only an actor this co-op follows is looked up: an address sent in a form is not
    # fetched for nothing.
    state = await node.db.read(
        lambda conn: follows.following_state(conn, actor_id=coop_id, followed=followed)
    )
    if state is None:
        raise NotFound(f"this co-op does not follow {followed}")
    inbox = None
    try:
        inbox = (await node.peers.actor(followed))["inbox"]
    except Exception as exc:  # gone or unreachable: forget the follow all the same
        log.info("unfollow %s: no inbox to send the Undo to (%s)", followed, exc)
    now, policy = node.clock.now(), node.peers.policy

    def unit(conn: Connection) -> str:
        follow_id = follows.stop_following(conn, actor_id=coop_id, followed=followed)
        if follow_id is None:
            raise NotFound(f"this co-op does not follow {followed}")
        # Its offers were in the catalogue because we followed it, unless a network the
        # co-op belongs to relays them too.
        if not networks.relays(conn, followed):
            catalogue.remove_actor(conn, followed)
        undo = activities.undo_follow(
            node.urls, node.settings.handle, follow_id=follow_id, target=followed
        )
        if inbox is not None:
            outbox.publish(conn, undo, actor_id=coop_id, inboxes=[inbox], now=now, policy=policy)
        return followed

    result = await node.db.write(unit)
    node.delivery_wakeup.set()
    return result


async def answer_follower(node: Node, follower: str, *, accept: bool) -> None:
    """The admin approves a pending follower (Accept), or refuses or removes one
    (Reject: the row is deleted, so the follower is no longer one)."""
    coop_id, now, policy = node.peers.coop_id, node.clock.now(), node.peers.policy

    def unit(conn: Connection) -> None:
        found = follows.get_follower(conn, actor_id=coop_id, follower=follower)
        if found is None:
            raise NotFound(f"{follower} does not follow this co-op and asks nothing")
        if accept:
            if not follows.accept_follower(conn, actor_id=coop_id, follower=follower, now=now):
                raise Conflict(f"{follower} is already an accepted follower")
        else:
            follows.remove_follower(conn, actor_id=coop_id, follower=follower)
        answer = activities.answer_follow(
            node.urls,
            node.settings.handle,
            "Accept" if accept else "Reject",
            follow_id=found.follow_id,
            follower=follower,
        )
        outbox.publish(
            conn, answer, actor_id=coop_id, inboxes=[found.inbox], now=now, policy=policy
        )

    await node.db.write(unit)
    node.delivery_wakeup.set()


async def update_profile(node: Node, *, name: str | None, summary: str | None) -> int:
    """Change the co-op's name or summary and send the new actor to every follower
    (``Update``), so that their servers show it; returns how many inboxes were queued."""
    coop_id, handle, now = node.peers.coop_id, node.settings.handle, node.clock.now()
    policy = node.peers.policy

    def unit(conn: Connection) -> int:
        identity.update_profile(conn, handle, now=now, name=name, summary=summary)
        document = documents.actor_document(node.urls, identity.get_actor(conn, handle))
        return outbox.publish(
            conn,
            activities.update_actor(node.urls, document),
            actor_id=coop_id,
            inboxes=follows.follower_inboxes(conn, actor_id=coop_id),
            now=now,
            policy=policy,
            public=True,
        )

    queued = await node.db.write(unit)
    node.delivery_wakeup.set()
    return queued
