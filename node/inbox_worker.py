"""The inbox worker: one idempotent handler per activity type.

The set of handled types is the :data:`HANDLERS` table, visible in one place. A type
with no handler is stored and marked ``ignored``; a handler that raises is retried with
backoff and finally recorded as ``failed`` with its reason (see services.inbox).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import Connection

from federation.errors import MalformedInput, NotAuthorized, Refused
from federation.inbox import actor_id, host_of
from node import federating, offering, sharing, subtotals, voting
from node.errors import Forbidden
from node.runtime import Node
from node.services import inbox, remote_actors
from node.services.inbox import InboxItem
from node.workers import Poller

log = logging.getLogger(__name__)

Handler = Callable[[Node, InboxItem], Awaitable[object]]
# Handler errors that no retry can mend: a malformed or refused object, or one whose
# sender is not its origin.
_REFUSED = (offering.NotTheOrigin, MalformedInput, Refused, NotAuthorized, Forbidden)


def _is_question(activity: dict[str, Any]) -> bool:
    obj = activity.get("object")
    return isinstance(obj, dict) and obj.get("type") == "Question"


async def handle_create(node: Node, item: InboxItem) -> None:
    """A shared proposal naming this co-op, or a followed co-op's new offer. (Votes on
    our proposals are taken before, together: see run_once.)"""
    if _is_question(item.activity) and await sharing.on_question(node, item):
        return
    if subtotals.is_subtotal(item.activity):
        await subtotals.on_subtotal(node, item)
        return
    await offering.on_create_or_update(node, item)


async def handle_reject(node: Node, item: InboxItem) -> None:
    """A co-op declining a shared proposal we host, or a refused follow."""
    if await sharing.on_reject(node, item):
        return
    await federating.on_accept_or_reject(node, item)


async def handle_delete(node: Node, item: InboxItem) -> None:
    """An actor deleting itself: forget it and its keys; or a Delete of an offer."""
    target = actor_id(item.activity.get("object"))
    if target == item.actor:
        node.peers.keys.forget_actor(item.actor)
        await node.db.write(lambda conn: remote_actors.forget(conn, item.actor))
        return
    await offering.on_delete(node, item)


async def handle_update(node: Node, item: InboxItem) -> None:
    """An actor's new profile or key (the embedded copy is not trusted: it is fetched),
    or a changed offer."""
    target = actor_id(item.activity.get("object"))
    if target != item.actor:
        if _is_question(item.activity) and await sharing.on_question(node, item):
            return
        await offering.on_create_or_update(node, item)
        return
    document = await node.peers.fetch(item.actor)
    if remote_actors.is_actor_document(document):
        now = node.clock.now()
        await node.db.write(lambda conn: remote_actors.store(conn, document, now=now))
        node.peers.keys.forget_actor(item.actor)


def wants(activity: dict[str, Any]) -> bool:
    """Whether a verified activity gives the worker anything to do: its type has a
    handler, and (a cheap look, at receipt) it is not plainly something that handler
    ignores. Everything else is stored as ``ignored`` at once and never claimed."""
    kind = activity.get("type")
    if kind not in HANDLERS:
        return False
    if kind == "Create":
        obj = activity.get("object")
        return (
            offering.may_be_offer(obj)
            or voting.looks_like_vote(obj)
            or _is_question(activity)
            or subtotals.is_subtotal(activity)
        )
    return True


HANDLERS: dict[str, Handler] = {
    "Create": handle_create,
    "Delete": handle_delete,
    "Update": handle_update,
    "Follow": federating.on_follow,
    "Accept": federating.on_accept_or_reject,
    "Reject": handle_reject,
    "Undo": federating.on_undo,
}


async def run_once(node: Node, *, limit: int = 100) -> int:
    """Handle the due activities; returns how many were taken."""
    now = node.clock.now()
    items = await node.db.write(lambda conn: inbox.claim(conn, now=now, limit=limit))
    outcomes: dict[str, list[int]] = {"done": [], "ignored": [], "dropped": []}
    wanted = []
    for item in items:
        if node.peers.policy.refusal(host_of(item.actor)) is not None:
            # Accepted before the admin blocked its domain: its content is not wanted.
            outcomes["dropped"].append(item.id)
        else:
            wanted.append(item)
    votes = await voting.take_votes(node, wanted)
    for item in wanted:
        if item.id in votes:
            error = votes[item.id]
            if error is None:
                outcomes["done"].append(item.id)
            else:
                await _settle_error(node, item, error)
            continue
        handler = HANDLERS.get(item.type)
        if handler is None:
            outcomes["ignored"].append(item.id)
            continue
        try:
            await handler(node, item)
        except Exception as exc:
            await _settle_error(node, item, exc)
        else:
            outcomes["done"].append(item.id)
    if items:
        done_at = node.clock.now()

        def finish_all(conn: Connection) -> None:
            for state, ids in outcomes.items():
                inbox.finish(conn, ids, state=state, now=done_at)

        await node.db.write(finish_all)
    return len(items)


async def _settle_error(node: Node, item: InboxItem, exc: Exception) -> None:
    if isinstance(exc, _REFUSED):
        # Trying again cannot help: the activity is wrong, not the moment.
        log.info("inbox: %s %s refused: %s", item.type, item.activity_id, exc)
        await _record_refusal(node, item, f"refused: {exc}")
    else:
        log.warning("inbox: %s %s failed: %s", item.type, item.activity_id, exc)
        await _record_failure(node, item, f"{type(exc).__name__}: {exc}")


async def _record_refusal(node: Node, item: InboxItem, reason: str) -> None:
    now = node.clock.now()
    await node.db.write(lambda conn: inbox.refuse(conn, item, reason, now=now))


async def _record_failure(node: Node, item: InboxItem, reason: str) -> None:
    now = node.clock.now()
    await node.db.write(lambda conn: inbox.fail(conn, item, reason, now=now))


INBOX_POLLER = Poller(
    name="inbox", run_once=run_once, idle_seconds=1.0, wakeup=lambda node: node.inbox_wakeup
)
