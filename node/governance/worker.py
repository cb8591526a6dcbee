"""The governance worker: each round it opens the proposals whose time has come, closes
those past their end, and publishes the counts that changed.

A close waits for what may still count: subtotals until their deadline, and ballots
accepted before the end that still wait in the inbox, for a bounded time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta

from node.governance import proposals
from node.governance.store import ballots as ballot_store
from node.governance.store import proposals as proposal_store
from node.governance.store.rows import Mode
from node.governance.subtotals import GRACE
from node.runtime import Node, Poller

log = logging.getLogger(__name__)

# How long a close waits, from when it was due, for activities accepted before the end
# and still in the inbox: the worker takes them in seconds; past this, something holds
# them, and the proposal closes without them rather than never.
CLOSE_WAIT_LIMIT = timedelta(minutes=10)


async def run_once(node: Node) -> int:
    """One round; returns how many proposals were acted on."""
    now = node.clock.now()
    due = await node.db.read(lambda conn: proposal_store.due(conn, now, proposals.COUNTS_EVERY))
    acted = 0

    async def close_one(pk: int, closes_at: datetime, mode: str) -> int:
        if mode == Mode.SUBTOTAL and now < closes_at + GRACE:
            return 0  # subtotals are taken until the deadline
        waiting = await node.db.read(
            lambda conn: ballot_store.waiting_in_inbox(conn, closes_at=closes_at, now=now)
        )
        if waiting:
            since = node.close_waits.setdefault(pk, now)
            if now - since < CLOSE_WAIT_LIMIT:
                return 0  # the inbox worker handles them first
            log.warning(
                "proposal %s closes with activities from before its end still in the inbox, "
                "after waiting %s for them",
                pk,
                now - since,
            )
        node.close_waits.pop(pk, None)
        return int(await node.db.write(lambda conn: proposals.close(node, conn, pk=pk, now=now)))

    async def publish_one(pk: int) -> int:
        return int(
            await node.db.write(lambda conn: proposals.publish_counts(node, conn, pk=pk, now=now))
        )

    async def open_one(pk: int) -> int:
        return int(await proposals.open_due(node, pk, now))

    # One proposal that cannot be opened, closed or published does not hold the others:
    # it is logged and tried again at the next round.
    for pk, _ in due.opening:
        acted += await _one_proposal("open", pk, open_one(pk))
    for pk, closes_at, mode in due.closing:
        acted += await _one_proposal("close", pk, close_one(pk, closes_at, mode))
    for pk in due.stale:
        acted += await _one_proposal("publish the counts of", pk, publish_one(pk))
    if acted:
        node.delivery_wakeup.set()
        # An opening or a close is news for the members' email.
        node.mail_wakeup.set()
    return acted


async def _one_proposal(what: str, pk: int, work: Awaitable[int]) -> int:
    try:
        return await work
    except Exception:
        log.exception("governance: could not %s proposal %s; trying again later", what, pk)
        return 0


GOVERNANCE_POLLER = Poller(
    name="governance",
    run_once=run_once,
    idle_seconds=2.0,
    wakeup=lambda node: node.governance_wakeup,
)
