"""Following and being followed: what the admin does (follow, unfollow, approve, refuse)
and what the inbox worker does when a Follow, Accept, Reject or Undo arrives.

Every change and the activity announcing it are written in one unit of work through the
outbox, then the delivery worker is woken.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from federation.inbox import actor_id, host_of
from node import activities, documents
from node.catalogue import store as catalogue
from node.errors import Conflict, NotFound
from node.follows import store as follows
from node.runtime import Node
from node.services import identity, outbox
from node.services.inbox import InboxItem

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
        # Its offers were in the catalogue because we followed it.
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


# --- handlers of the inbox worker ----------------------------------------------------


async def on_follow(node: Node, item: InboxItem) -> None:
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


async def on_accept_or_reject(node: Node, item: InboxItem) -> None:
    """The followed actor answered our Follow (matched by its id and by who answers)."""
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
    elif state == follows.ACCEPTED:
        from node.offers import backfill

        await backfill.on_accepted(node, item.actor)


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
