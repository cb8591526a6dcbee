"""The retention poller: deletes what ``retention_days`` no longer keeps, a bounded batch
per table and round (see :mod:`node.services.retention`)."""

from __future__ import annotations

import logging
from datetime import timedelta

from node.runtime import Node, Poller
from node.services import retention

log = logging.getLogger(__name__)


async def run_once(node: Node) -> int:
    """One batch of each table; returns how many rows went (0: nothing is due)."""
    before = node.clock.now() - timedelta(days=node.settings.retention_days)
    pruned = await node.db.write(lambda conn: retention.prune(conn, before=before))
    if pruned.total:
        log.info(
            "retention: %d inbox activities, %d deliveries, %d remote actors deleted",
            pruned.inbox,
            pruned.deliveries,
            pruned.actors,
        )
    return pruned.total


# While rows go, the next batch follows at once; then the next look is in ten minutes.
RETENTION_POLLER = Poller("retention", run_once, idle_seconds=600.0)
