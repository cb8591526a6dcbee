"""What a peer's Follow, Accept, Reject or Undo does: a follower added, held for the
admin, refused or removed; our own follow of the peer settled.

Every Follow, Accept, Undo, and every Reject that is not about a shared proposal, is of
the kind ``"follow"`` (:data:`INBOUND`): the handler looks closer and leaves alone what is
not about a follow (an Undo of a Like, an Accept of something else).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from federation.inbox import actor_id, host_of
from node import activities
from node.follows import store as follows
from node.inbox.feature import Inbound, Kind, anything
from node.runtime import Node
from node.services import outbox
from node.services.inbox import InboxItem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

FOLLOW = "follow"


async def on_follow(node: Node, item: InboxItem) -> None:
    """A peer follows the co-op: accepted, held for the admin, or refused, as the
    co-op's follow policy says."""
    target = actor_id(item.activity.get("object"))
    if target != node.urls.actor(node.settings.handle):
        return  # members' actors come later; a Follow of anything else is ignored
    document = await node.peers.actor(item.actor)
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    policy = node.settings.follow_policy
    host = host_of(item.actor)
    if policy == "listed" and not node.peers.policy.allows(host):
        decision = "Reject"
    elif policy == "approve":
        decision = "hold"
    else:
        decision = "Accept"
    coop_id, now, domain_policy = node.peers.coop_id, node.clock.now(), node.peers.policy
    follow_id = str(item.activity["id"])

    def unit(conn: Connection) -> None:
        if decision == "Reject":
            follows.remove_follower(conn, actor_id=coop_id, follower=item.actor)
        else:
            before = follows.add_follower(
                conn,
                actor_id=coop_id,
                follower=item.actor,
                follow_id=follow_id,
                inbox=str(document["inbox"]),
                shared_inbox=shared if isinstance(shared, str) else None,
                state=follows.ACCEPTED if decision == "Accept" else follows.PENDING,
                now=now,
            )
            if decision == "hold" and before != follows.ACCEPTED:
                return  # the admin decides; nothing is sent yet
        answer = activities.answer_follow(
            node.urls,
            node.settings.handle,
            "Reject" if decision == "Reject" else "Accept",
            follow_id=follow_id,
            follower=item.actor,
        )
        outbox.publish(
            conn,
            answer,
            actor_id=coop_id,
            inboxes=[str(document["inbox"])],
            now=now,
            policy=domain_policy,
        )

    await node.db.write(unit)
    node.delivery_wakeup.set()


def _follow_of(activity: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    obj = activity.get("object")
    if isinstance(obj, str):
        return obj, None
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        return str(obj["id"]), obj
    return None, None


async def our_follow(node: Node, followed: str) -> str | None:
    """The id of the co-op's Follow of ``followed``, if it sent one."""
    coop_id = node.peers.coop_id
    return await node.db.read(
        lambda conn: follows.follow_id_of(conn, actor_id=coop_id, followed=followed)
    )


def naming_our_follow(node: Node, item: InboxItem, ours: str | None) -> InboxItem:
    """An Accept or Reject of a Follow embedded by its two actors, the co-op and the
    sender, names the co-op's Follow of the sender whatever id it gives it. Misskey,
    rejecting a follower it removes, writes an id of its own (/follows/FOLLOWER/FOLLOWEE);
    Mastodon matches such a Follow by its actors too (ActivityPub::Activity::Reject).
    Only the followed actor's own signature gets here: it can settle no other follow."""
    embedded = item.activity.get("object")
    if (
        ours is None
        or not isinstance(embedded, dict)
        or embedded.get("type") != "Follow"
        or embedded.get("id") == ours
        or actor_id(embedded.get("actor")) != node.urls.actor(node.settings.handle)
        or actor_id(embedded.get("object")) != item.actor
    ):
        return item
    return replace(item, activity={**item.activity, "object": {**embedded, "id": ours}})


async def answers_our_follow(node: Node, item: InboxItem) -> bool:
    """Whether an Accept or Reject answers the co-op's Follow of its sender (by the
    Follow's id, or by its two actors: see :func:`naming_our_follow`)."""
    ours = await our_follow(node, item.actor)
    named = naming_our_follow(node, item, ours)
    return ours is not None and actor_id(named.activity.get("object")) == ours


async def on_accept_or_reject(node: Node, item: InboxItem) -> None:
    """The followed actor answered our Follow (matched by its id and by who answers)."""
    item = naming_our_follow(node, item, await our_follow(node, item.actor))
    follow_id, _ = _follow_of(item.activity)
    if follow_id is None:
        return
    state = follows.ACCEPTED if item.type == "Accept" else follows.REJECTED
    now = node.clock.now()
    settled = await node.db.write(
        lambda conn: follows.settle_following(
            conn, follow_id=follow_id, by=item.actor, state=state, now=now
        )
    )
    if not settled:
        log.info("%s of %s by %s matches no follow of ours", item.type, follow_id, item.actor)


async def on_undo(node: Node, item: InboxItem) -> None:
    """Undo(Follow): the follower leaves. Only the Follow's own actor may undo it."""
    follow_id, embedded = _follow_of(item.activity)
    if follow_id is None:
        return
    if embedded is not None and embedded.get("type") not in (None, "Follow"):
        return  # Undo of a Like, an Announce...: nothing of ours to undo yet
    coop_id = node.peers.coop_id
    await node.db.write(
        lambda conn: follows.remove_follower(
            conn, actor_id=coop_id, follower=item.actor, follow_id=follow_id
        )
    )


INBOUND = Inbound(
    name="follows",
    kinds=(
        Kind("Follow", FOLLOW, anything),
        Kind("Accept", FOLLOW, anything),
        # After governance's: a Reject of a shared proposal is that feature's.
        Kind("Reject", FOLLOW, anything),
        Kind("Undo", FOLLOW, anything),
    ),
    handlers={
        ("Follow", FOLLOW): on_follow,
        ("Accept", FOLLOW): on_accept_or_reject,
        ("Reject", FOLLOW): on_accept_or_reject,
        ("Undo", FOLLOW): on_undo,
    },
)
