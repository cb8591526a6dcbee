"""Who hears of a proposal, and publishing to them: every follower of the co-op, every
current remote member's server (members on Mastodon vote from there), and, for one
proposal, the co-ops taking part in it (unless they declined) and the servers of those
who voted on it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from node import activities
from node.follows import store as follows
from node.governance.store import coops, electorate
from node.runtime import Node
from node.services import outbox

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def audience(conn: Connection, node: Node, proposal_pk: int | None = None) -> list[str]:
    """The inboxes a proposal's activities go to, each once."""
    inboxes = follows.follower_inboxes(conn, actor_id=node.peers.coop_id)
    inboxes += electorate.remote_member_inboxes(conn)
    if proposal_pk is not None:
        inboxes += [
            coop.inbox
            for coop in coops.participants(conn, proposal_pk)
            if coop.inbox and coop.state != coops.DECLINED
        ]
        inboxes += electorate.voter_inboxes(conn, proposal_pk)
    return list(dict.fromkeys(inboxes))


def publish(
    node: Node, conn: Connection, kind: str, document: dict[str, Any], pk: int, now: datetime
) -> None:
    """Publish ``kind`` (Create, Update) of a proposal's ``document`` as the co-op, to
    the proposal's audience, in the caller's unit of work."""
    handle = node.settings.handle
    activity = activities.about_object(
        node.urls,
        kind,
        document,
        actor=node.urls.actor(handle),
        followers=node.urls.followers(handle),
    )
    outbox.publish(
        conn,
        activity,
        actor_id=node.peers.coop_id,
        inboxes=audience(conn, node, pk),
        now=now,
        policy=node.peers.policy,
        public=True,
        ordering_key=str(document["id"]),
    )
