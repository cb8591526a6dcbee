"""The inbox worker: each claimed activity goes to the handler of its (type, kind).

The handlers are the features' (:mod:`node.inbox.handlers`); an activity's kind is named
again here as at receipt (:mod:`node.inbox.classify`). Kinds with a batch handler (the
ballots) are taken first, all of the round's together. An activity of no kind is marked
``ignored``; a handler that raises is retried with backoff and finally recorded as
``failed`` with its reason (see services.inbox), at once when no retry can help. One
activity never stops a round: see :func:`run_once`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from federation.errors import MalformedInput, NotAuthorized, Refused
from federation.inbox import host_of
from federation.storable import storable
from node.errors import Forbidden
from node.inbox.classify import classify
from node.inbox.feature import BatchHandler, Key, message_of
from node.inbox.handlers import BATCHES, HANDLERS
from node.runtime import Node, Poller
from node.services import inbox, metrics
from node.services.inbox import InboxItem

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# Handler errors that no retry can mend: a malformed or refused object, or one whose
# sender is not its origin (NotAuthorized: the offers' and ballots' NotThe... errors).
REFUSED = (MalformedInput, Refused, NotAuthorized, Forbidden)


async def run_once(node: Node, *, limit: int = 100) -> int:
    """Handle the due activities; returns how many were taken.

    No single activity stops the round: whatever its handling raises, or the recording
    of its outcome, is caught for that activity alone, logged, and the others go on. An
    activity whose outcome could not be recorded stays claimed until the claim expires,
    which counts as an attempt (see services.inbox.claim)."""
    now = node.clock.now()
    parsed = node.inbox_parsed
    items = await node.db.write(lambda conn: inbox.claim(conn, now=now, limit=limit, parsed=parsed))
    if not items:
        return 0
    outcomes: dict[str, list[int]] = {"done": [], "ignored": [], "dropped": []}
    wanted: list[tuple[InboxItem, Key | None]] = []
    for item in items:
        if node.peers.policy.refusal(host_of(item.actor)) is not None:
            # Accepted before the admin blocked its domain: its content is not wanted.
            outcomes["dropped"].append(item.id)
            continue
        try:
            kind = classify(item.activity, actor=item.actor, urls=node.urls)
        except Exception as exc:  # a kind's test that fails on this activity fails it alone
            await _settle_error(node, item, exc, kind="unknown")
            continue
        wanted.append((item, None if kind is None else (item.type, kind)))
    batched: dict[int, Exception | None] = {}
    for key, batch in BATCHES.items():
        group = [item for item, found in wanted if found == key]
        if group:
            batched.update(await _take_batch(node, key, batch, group))
    for item, found in wanted:
        state = await _handle(node, item, found, batched)
        if state is not None:
            outcomes[state].append(item.id)
    await _finish_all(node, outcomes)
    kinds = {item.id: found[1] for item, found in wanted if found is not None}
    for state, ids in outcomes.items():
        for item_id in ids:
            metrics.INBOX_HANDLED.labels(kinds.get(item_id, "none"), state).inc()
    return len(items)


async def _take_batch(
    node: Node, key: Key, batch: BatchHandler, items: list[InboxItem]
) -> dict[int, Exception | None]:
    """The round's activities of one batched kind (the ballots), taken together; if
    that fails, one activity at a time, so that the one that made it fail is the only
    one left with the error."""
    try:
        return await batch(node, items)
    except Exception:
        log.exception("inbox: the round's %s %s failed together; taking them one by one", *key)
    taken: dict[int, Exception | None] = {}
    for item in items:
        try:
            taken.update(await batch(node, [item]))
        except Exception as exc:
            taken[item.id] = exc
    return taken


async def _handle(
    node: Node, item: InboxItem, key: Key | None, batched: dict[int, Exception | None]
) -> str | None:
    """The state an activity ends in this round, or None when its failure is recorded
    already (or could not be: then its claim expires)."""
    if item.id in batched:
        error = batched[item.id]
        if error is None:
            return "done"
        await _settle_error(node, item, error, kind=key[1] if key else "none")
        return None
    if key is None:
        return "ignored"  # no feature wants it (it was stored before they said so)
    handler = HANDLERS.get(key)
    if handler is None:
        return "done"  # a batched kind the batch left: a ballot on nothing of ours
    try:
        await handler(node, item)
    except Exception as exc:
        await _settle_error(node, item, exc, kind=key[1])
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


async def _settle_error(node: Node, item: InboxItem, exc: Exception, *, kind: str) -> None:
    """Record why an activity (of ``kind``, for the metrics) failed; never raises (the
    round goes on)."""
    shown = storable(message_of(exc), limit=inbox.MAX_REASON)
    metrics.INBOX_HANDLED.labels(kind, "refused" if isinstance(exc, REFUSED) else "failed").inc()
    if isinstance(exc, REFUSED):
        # Trying again cannot help: the activity is wrong, not the moment.
        log.info("inbox: %s %s refused: %s", item.type, item.activity_id, shown)
        await _record(node, item, f"refused: {shown}", refused=True)
    else:
        log.warning("inbox: %s %s failed: %s", item.type, item.activity_id, shown)
        await _record(node, item, f"{type(exc).__name__}: {shown}", refused=False)


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
                storable(message_of(exc)),
            )
    log.error("inbox: %s %s stays claimed until its claim expires", item.type, item.activity_id)


INBOX_POLLER = Poller(
    name="inbox", run_once=run_once, idle_seconds=1.0, wakeup=lambda node: node.inbox_wakeup
)
