"""Background work: loops that poll the database for due rows.

Workers find their work by polling the database, so work queued by any process (the
web app, ``coopnode follow``, another worker) is picked up; the same loops run inside
``coopnode serve`` (SQLite: one writing process) or in ``coopnode worker`` processes
(PostgreSQL, where row locks share the work). Each loop is a
:class:`node.runtime.Poller`; features register theirs in :func:`default_pollers`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from federation.clock import Clock
from node.catalogue.worker import CATALOGUE_POLLER
from node.clock import node_clock
from node.delivery.worker import DELIVERY_POLLER, DOMAINS_POLLER
from node.governance.worker import GOVERNANCE_POLLER
from node.inbox.worker import INBOX_POLLER
from node.mail.worker import MAIL_POLLER
from node.networks.worker import NETWORKS_POLLER
from node.offers.backfill import BACKFILL_POLLER
from node.orders.worker import ORDERS_POLLER
from node.retention_worker import RETENTION_POLLER
from node.runtime import Node, Poller, make_http_client
from node.services import heartbeats
from node.settings import Settings
from node.storage.database import Database

log = logging.getLogger(__name__)


def default_pollers() -> tuple[Poller, ...]:
    return (
        INBOX_POLLER,
        DELIVERY_POLLER,
        DOMAINS_POLLER,
        BACKFILL_POLLER,
        GOVERNANCE_POLLER,
        ORDERS_POLLER,
        NETWORKS_POLLER,
        RETENTION_POLLER,
        MAIL_POLLER,
        CATALOGUE_POLLER,
    )


async def run_poller(node: Node, poller: Poller, stop: asyncio.Event) -> None:
    beating = _Heartbeat(node, poller)
    await beating.start()
    while not stop.is_set():
        try:
            handled = await poller.run_once(node)
        except Exception:
            # A failing round is logged and retried; the loop itself must not die.
            log.exception("worker %s failed a round", poller.name)
            handled = 0
        await beating.after_round()
        if handled == 0:
            await _idle(node, poller, stop)


class _Heartbeat:
    """The loop's row in worker_heartbeats, touched at most every BEAT_EVERY. A beat that
    cannot be written is logged and tried at the next round: it never stops the loop."""

    def __init__(self, node: Node, poller: Poller) -> None:
        self.node = node
        self.poller = poller
        self.row_id: int | None = None
        self.rounds = 0
        self.last = node.clock.now()

    async def start(self) -> None:
        now = self.node.clock.now()
        try:
            self.row_id = await self.node.db.write(
                lambda conn: heartbeats.start(
                    conn,
                    poller=self.poller.name,
                    hostname=socket.gethostname()[:255],
                    pid=os.getpid(),
                    now=now,
                )
            )
        except Exception:
            log.exception("worker %s could not record its start", self.poller.name)
        self.last = now

    async def after_round(self) -> None:
        self.rounds += 1
        now = self.node.clock.now()
        if now - self.last < heartbeats.BEAT_EVERY:
            return
        self.last = now
        if self.row_id is None:
            await self.start()
            return
        row_id, rounds = self.row_id, self.rounds
        try:
            await self.node.db.write(
                lambda conn: heartbeats.beat(conn, row_id, rounds=rounds, now=now)
            )
        except Exception:
            log.exception("worker %s could not record its heartbeat", self.poller.name)


async def _idle(node: Node, poller: Poller, stop: asyncio.Event) -> None:
    """Sleep until the next poll, the stop signal, or a wake-up from this process."""
    waits = [asyncio.ensure_future(stop.wait())]
    if poller.wakeup is not None:
        event = poller.wakeup(node)
        waits.append(asyncio.ensure_future(event.wait()))
    try:
        await asyncio.wait(waits, timeout=poller.idle_seconds, return_when="FIRST_COMPLETED")
    finally:
        for waiter in waits:
            waiter.cancel()
    if poller.wakeup is not None:
        poller.wakeup(node).clear()


async def run_workers(
    settings: Settings, pollers: tuple[Poller, ...] | None = None, *, clock: Clock | None = None
) -> None:
    """Run every poller until SIGINT or SIGTERM, then finish the current rounds."""
    clock = clock if clock is not None else node_clock()

    pollers = default_pollers() if pollers is None else pollers
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    db = Database(settings.database_url)
    db.writer.start()
    async with make_http_client(settings) as http:
        node = Node(settings=settings, db=db, http=http, clock=clock)
        log.info("coopnode worker: %d loops", len(pollers))
        try:
            await asyncio.gather(*(run_poller(node, p, stop) for p in pollers), stop.wait())
        finally:
            db.close()
