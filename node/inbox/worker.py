"""The inbox worker: one idempotent handler per activity type.

The set of handled types is the :data:`HANDLERS` table, visible in one place. A type
with no handler is stored and marked ``ignored``; a handler that raises is retried with
backoff and finally recorded as ``failed`` with its reason (see services.inbox). One
activity never stops a round: see :func:`run_once`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from federation.errors import FederationError, MalformedInput, NotAuthorized, Refused
from federation.inbox import actor_id, host_of
from federation.storable import storable
from node.errors import Forbidden
from node.follows import federating
from node.governance import sharing, subtotals, voting
from node.offers import offering
from node.offers.remote import linked_proposals
from node.runtime import Node, Poller
from node.services import inbox, remote_actors
from node.services.inbox import InboxItem
from node.storage.tables import following

log = logging.getLogger(__name__)

# The offers an actor links from its profile (see _take_linked_offers): fetched this
# many at a time, and all within this many seconds.
LINKED_OFFERS_AT_ONCE = 4
LINKED_OFFERS_SECONDS = 20

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
    ours = await _our_follow(node, item.actor)
    await federating.on_accept_or_reject(node, _naming_our_follow(node, item, ours))


async def handle_accept(node: Node, item: InboxItem) -> None:
    """Our follow accepted; then the offers the followed actor links from its profile
    (see _take_linked_offers), which no Create brings."""
    ours = await _our_follow(node, item.actor)
    item = _naming_our_follow(node, item, ours)
    await federating.on_accept_or_reject(node, item)
    if ours is None or actor_id(item.activity.get("object")) != ours:
        return
    try:
        # Fetched again: the stored copy of an actor keeps no attachments.
        document = await node.peers.fetch(item.actor)
    except FederationError as exc:
        log.info("inbox: no profile of %s to read offers from: %s", item.actor, exc)
        return
    await _take_linked_offers(node, item, document)


async def _our_follow(node: Node, followed: str) -> str | None:
    """The id of the co-op's Follow of ``followed``, if it sent one."""
    coop_id = node.peers.coop_id
    query = select(following.c.follow_id).where(
        following.c.actor_id == coop_id, following.c.followed == followed
    )
    found = await node.db.read(lambda conn: conn.execute(query).scalar_one_or_none())
    return None if found is None else str(found)


def _naming_our_follow(node: Node, item: InboxItem, ours: str | None) -> InboxItem:
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


async def _take_linked_offers(node: Node, item: InboxItem, document: dict[str, Any]) -> None:
    """The FEP-0837 proposals a followed actor links from its profile (FEP-0ea0 payment
    links), into the catalogue. Mitra publishes its proposals this way only: each is
    taken as a Create naming it by id would be (only from an actor the co-op follows,
    fetched from the actor's server, attributed to the actor). One that cannot be taken
    is logged and left: the links are read again at the actor's next Update.

    The links are fetched a few at a time, and all of them together within
    LINKED_OFFERS_SECONDS: a slow server holds the worker's round that long at most,
    not ten fetches' deadlines one after another."""
    gate = asyncio.Semaphore(LINKED_OFFERS_AT_ONCE)

    async def take(url: str) -> None:
        as_create = replace(
            item, type="Create", activity={"type": "Create", "actor": item.actor, "object": url}
        )
        async with gate:
            try:
                await offering.on_create_or_update(node, as_create)
            except (FederationError, offering.NotTheOrigin) as exc:
                shown = storable(_message(exc))
                log.info("inbox: %s links the offer %s, not taken: %s", item.actor, url, shown)

    try:
        async with asyncio.timeout(LINKED_OFFERS_SECONDS):
            await asyncio.gather(
                *(take(url) for url in linked_proposals(document, owner=item.actor))
            )
    except TimeoutError:
        log.info(
            "inbox: the offers %s links took over %d s; the rest wait for its next Update",
            item.actor,
            LINKED_OFFERS_SECONDS,
        )


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
    with the offers it links; or a changed offer."""
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
        await _take_linked_offers(node, item, document)


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
    "Accept": handle_accept,
    "Reject": handle_reject,
    "Undo": federating.on_undo,
}


async def run_once(node: Node, *, limit: int = 100) -> int:
    """Handle the due activities; returns how many were taken.

    No single activity stops the round: whatever its handling raises, or the recording
    of its outcome, is caught for that activity alone, logged, and the others go on. An
    activity whose outcome could not be recorded stays claimed until the claim expires,
    which counts as an attempt (see services.inbox.claim)."""
    now = node.clock.now()
    items = await node.db.write(lambda conn: inbox.claim(conn, now=now, limit=limit))
    if not items:
        return 0
    outcomes: dict[str, list[int]] = {"done": [], "ignored": [], "dropped": []}
    wanted = []
    for item in items:
        if node.peers.policy.refusal(host_of(item.actor)) is not None:
            # Accepted before the admin blocked its domain: its content is not wanted.
            outcomes["dropped"].append(item.id)
        else:
            wanted.append(item)
    votes = await _take_votes(node, wanted)
    for item in wanted:
        state = await _handle(node, item, votes)
        if state is not None:
            outcomes[state].append(item.id)
    await _finish_all(node, outcomes)
    return len(items)


async def _take_votes(node: Node, items: list[InboxItem]) -> dict[int, Exception | None]:
    """The round's ballots, taken together; if that fails, one activity at a time, so
    that the one that made it fail is the only one left with the error."""
    try:
        return await voting.take_votes(node, items)
    except Exception:
        log.exception("inbox: the round's ballots failed together; taking them one by one")
    votes: dict[int, Exception | None] = {}
    for item in items:
        try:
            votes.update(await voting.take_votes(node, [item]))
        except Exception as exc:
            votes[item.id] = exc
    return votes


async def _handle(node: Node, item: InboxItem, votes: dict[int, Exception | None]) -> str | None:
    """The state an activity ends in this round, or None when its failure is recorded
    already (or could not be: then its claim expires)."""
    if item.id in votes:
        error = votes[item.id]
        if error is None:
            return "done"
        await _settle_error(node, item, error)
        return None
    handler = HANDLERS.get(item.type)
    if handler is None:
        return "ignored"
    try:
        await handler(node, item)
    except Exception as exc:
        await _settle_error(node, item, exc)
        return None
    return "done"


async def _finish_all(node: Node, outcomes: dict[str, list[int]]) -> None:
    """Mark the round's handled activities in one unit of work; if that fails, each in
    its own, so that one row the database refuses keeps only itself pending."""
    done_at = node.clock.now()

    def finish_all(conn: Connection) -> None:
        for state, ids in outcomes.items():
            inbox.finish(conn, ids, state=state, now=done_at)

    try:
        await node.db.write(finish_all)
        return
    except Exception:
        log.exception("inbox: the round's outcomes failed together; writing them one by one")
    each = [(state, item_id) for state, ids in outcomes.items() for item_id in ids]
    # Written concurrently, they share a transaction in which a failing unit is left out.
    results = await asyncio.gather(
        *(
            node.db.write(partial(_finish_one, item_id, state=state, now=done_at))
            for state, item_id in each
        ),
        return_exceptions=True,
    )
    for (state, item_id), result in zip(each, results, strict=True):
        if isinstance(result, Exception):
            log.error("inbox: activity %d stays claimed, not %s: %s", item_id, state, result)


def _finish_one(item_id: int, conn: Connection, *, state: str, now: datetime) -> None:
    inbox.finish(conn, [item_id], state=state, now=now)


async def _settle_error(node: Node, item: InboxItem, exc: Exception) -> None:
    """Record why an activity failed; never raises (the round goes on)."""
    shown = storable(_message(exc), limit=inbox.MAX_REASON)
    if isinstance(exc, _REFUSED):
        # Trying again cannot help: the activity is wrong, not the moment.
        log.info("inbox: %s %s refused: %s", item.type, item.activity_id, shown)
        await _record(node, item, f"refused: {shown}", refused=True)
    else:
        log.warning("inbox: %s %s failed: %s", item.type, item.activity_id, shown)
        await _record(node, item, f"{type(exc).__name__}: {shown}", refused=False)


def _message(exc: Exception) -> str:
    try:
        return str(exc)
    except Exception:  # an exception's own __str__ may fail too
        return f"({type(exc).__name__} with a message that cannot be shown)"


async def _record(node: Node, item: InboxItem, reason: str, *, refused: bool) -> None:
    """Record a refusal (failed at once) or a failure (retried later); if the database
    refuses that, the same in plain ASCII; if even that fails, the activity stays
    claimed until the claim expires, which counts as an attempt."""
    now = node.clock.now()
    ascii_reason = reason.encode("ascii", "backslashreplace").decode("ascii")
    for shown in dict.fromkeys((reason, ascii_reason)):

        def unit(conn: Connection, shown: str = shown) -> None:
            if refused:
                inbox.refuse(conn, item, shown, now=now)
            else:
                inbox.fail(conn, item, shown, now=now)

        try:
            await node.db.write(unit)
            return
        except Exception as exc:
            log.warning(
                "inbox: the outcome of %s %s could not be recorded: %s",
                item.type,
                item.activity_id,
                storable(_message(exc)),
            )
    log.error("inbox: %s %s stays claimed until its claim expires", item.type, item.activity_id)


INBOX_POLLER = Poller(
    name="inbox", run_once=run_once, idle_seconds=1.0, wakeup=lambda node: node.inbox_wakeup
)
