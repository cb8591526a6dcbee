"""The catalogue's background round: once a day, SQLite's text index is merged into one
segment, a step at a time (see :func:`node.catalogue.store.merge_text_index`). Merging
rewrites the whole index (200 MB at 1,000,000 offers), so it is not done as often as
segments appear (every write adds one); a day's new segments are small, and cost the
searches little. On PostgreSQL, each round makes the recent indexes again once enough
offers arrived past them (see :mod:`node.catalogue.recent_store`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from node.catalogue import recent_store, store
from node.runtime import Node, Poller

MERGE_EVERY = timedelta(days=1)


@dataclass
class _Merging:
    """When this process last found the index merged whole (None: not yet)."""

    merged_at: datetime | None = None

    async def run_once(self, node: Node) -> int:
        # Built beside the others, writes going on (a second or so at 1,000,000 offers).
        made = await asyncio.to_thread(recent_store.renew, node.db.engine)
        now = node.clock.now()
        if self.merged_at is not None and now - self.merged_at < MERGE_EVERY:
            return len(made)
        if await node.db.write(store.merge_text_index):
            return 1  # a step done: the next follows at once
        self.merged_at = now
        return len(made)


CATALOGUE_POLLER = Poller(name="catalogue", run_once=_Merging().run_once, idle_seconds=600.0)
