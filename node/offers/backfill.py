"""Importing the existing offers of a newly followed co-op (or of one a network the
co-op belongs to lists).

Offers reach followers as they are published; those published before the follow do
not. When a co-op accepts our follow, a backfill walks its ``offers`` collection page
by page (signed GETs through the safe fetcher) and stores every offer the catalogue
does not have yet. Each page is committed with the walk's position, so a node stopped
mid-walk resumes where it was. A walk is bounded (pages and offers), and only offers
of the followed co-op itself, from its own host, are taken.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from federation.errors import FederationError
from federation.inbox import actor_id
from federation.origins import origin_of, same_origin
from federation.storable import storable
from node.catalogue import store as catalogue
from node.catalogue.entries import remote_entry
from node.follows import store as follows
from node.networks import store as networks
from node.offers import backfill_store as store
from node.offers.backfill_store import DONE, FAILED, RUNNING, start
from node.offers.remote import RemoteOfferError
from node.offers.wire import from_proposal
from node.runtime import Node, Poller

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# Bounds on one walk: enough for a large co-op, not a way to fill our disk.
MAX_PAGES = 1_000
MAX_OFFERS = 100_000
# Fetch failures in a row before a walk is given up (it may be started again).
MAX_FAILURES = 5
# Pages one walk takes before the loop turns to the others.
PAGES_PER_ROUND = 20


async def offers_collection(node: Node, actor: str) -> str | None:
    """Where a co-op's offers are read from: its ``offers`` collection on its own
    server; None for an actor that lists none (a Mastodon account, say) or whose
    profile cannot be read now."""
    try:
        document = await node.peers.actor(actor)
    except FederationError as exc:
        log.info("no profile of %s to read its offers from: %s", actor, exc)
        return None
    collection = document.get("offers")
    if not isinstance(collection, str) or not same_origin(collection, actor):
        return None
    return collection


async def on_accepted(node: Node, followed: str) -> None:
    """Our follow of ``followed`` was accepted: start walking its offers, if it has any."""
    collection = await offers_collection(node, followed)
    if collection is None:
        return
    coop_id, now = node.peers.coop_id, node.clock.now()
    await node.db.write(
        lambda conn: start(
            conn, actor_id=coop_id, followed=followed, collection=collection, now=now
        )
    )
    node.backfill_wakeup.set()


async def run_once(node: Node) -> int:
    """Take one page of each running walk; returns how many pages were taken."""
    coop_id = node.peers.coop_id
    walks = await node.db.read(lambda conn: store.running(conn, actor_id=coop_id))
    taken = 0
    for walk in walks:
        try:
            taken += await _step(node, walk)
        except Exception as exc:
            # One walk never stops the others: counted as a failure of its own, it is
            # given up after MAX_FAILURES like a walk whose fetches keep failing.
            log.exception("backfill of %s failed", walk.followed)
            try:
                await _count_failure(node, walk, f"{type(exc).__name__}: {exc}")
            except Exception:
                log.exception("backfill of %s: the failure could not be recorded", walk.followed)
    return taken


async def _step(node: Node, walk: Any) -> int:
    now = node.clock.now()
    coop_id = node.peers.coop_id

    def wanted(conn: Connection) -> bool:
        state = follows.following_state(conn, actor_id=coop_id, followed=walk.followed)
        return state == follows.ACCEPTED or networks.relays(conn, walk.followed)

    if not await node.db.read(wanted):
        await _finish(node, walk.id, FAILED, "no longer following", now)
        return 0
    try:
        if walk.next_page is None and walk.pages == 0:
            collection = await node.peers.fetch(walk.collection)
            total = collection.get("totalItems")
            first = collection.get("first")
            page = first if isinstance(first, dict) else None
            page_url = actor_id(first)
            if page is None and page_url is None:
                page = collection  # a collection with its items inline
            if page is None:
                assert page_url is not None
                _check_same_host(page_url, walk.followed)
                page = await node.peers.fetch(page_url)
            total = total if isinstance(total, int) else None
        elif walk.next_page is not None:
            _check_same_host(walk.next_page, walk.followed)
            page = await node.peers.fetch(walk.next_page)
            total = walk.total
        else:
            await _finish(node, walk.id, DONE, None, now)
            return 0
        pages, imported, taken = walk.pages, walk.imported, 0
        while True:
            entries, skipped, next_page = _read_page(node, walk.followed, page)
            pages += 1
            imported += len(entries)
            done = next_page is None or pages >= MAX_PAGES or imported >= MAX_OFFERS
            # The next page is fetched while this one is written.
            prefetch = None
            if not done and taken + 1 < PAGES_PER_ROUND:
                assert next_page is not None
                _check_same_host(next_page, walk.followed)
                prefetch = asyncio.ensure_future(node.peers.fetch(next_page))
            try:
                await _commit(
                    node,
                    walk.id,
                    entries,
                    next_page=None if done else next_page,
                    pages=pages,
                    imported=imported,
                    total=total,
                    state=DONE if done else RUNNING,
                    note=f"{skipped} items skipped" if skipped else None,
                )
            except BaseException:
                if prefetch is not None:
                    prefetch.cancel()
                raise
            taken += 1
            if prefetch is None:
                return taken
            page = await prefetch
    except (FederationError, ValueError) as exc:
        log.info("backfill of %s: %s", walk.followed, storable(str(exc)))
        await _count_failure(node, walk, str(exc))
        return 0
    return 1


async def _count_failure(node: Node, walk: Any, error: str) -> None:
    """Record a failed step (the error may quote the peer: made storable); the walk is
    given up after MAX_FAILURES."""
    failures = 1 + _failures_so_far(walk.last_error)
    reason = storable(f"failure {failures}: {error}", limit=2000)
    state_after = FAILED if failures >= MAX_FAILURES else RUNNING
    now = node.clock.now()
    await node.db.write(
        lambda conn: store.set_walk(
            conn, walk.id, state=state_after, last_error=reason, updated_at=now
        )
    )


def _failures_so_far(last_error: str | None) -> int:
    """The failures in a row recorded so far ("failure 3: ..."; a page taken resets it)."""
    head = (last_error or "").partition(":")[0]
    word, _, number = head.partition(" ")
    return int(number) if word == "failure" and number.isascii() and number.isdigit() else 0


def _check_same_host(url: str, followed: str) -> None:
    if not same_origin(url, followed):
        raise ValueError(f"the page {url} is not on {origin_of(followed)}")


def _read_page(
    node: Node, followed: str, page: dict[str, Any]
) -> tuple[list[catalogue.Entry], int, str | None]:
    """The offers of a page worth storing, how many items were not, and the next page."""
    items = page.get("orderedItems", page.get("items", []))
    if not isinstance(items, list):
        items = []
    now = node.clock.now()
    entries = []
    skipped = 0
    for item in items[:500]:
        if not isinstance(item, dict) or not same_origin(str(item.get("id", "")), followed):
            skipped += 1  # a bare link, or an offer of another server: not taken on trust
            continue
        try:
            remote = from_proposal(item)
        except RemoteOfferError:
            skipped += 1
            continue
        if remote.attributed_to != followed:
            skipped += 1
            continue
        entries.append(remote_entry(remote, document=item, now=now))
    following = page.get("next")
    return entries, skipped, following if isinstance(following, str) else None


async def _commit(
    node: Node, walk_id: int, entries: list[catalogue.Entry], *, note: str | None, **values: Any
) -> None:
    """Store a page's offers with the walk's new position, in one unit of work."""
    now = node.clock.now()

    def unit(conn: Connection) -> None:
        catalogue.put_many(conn, entries, now=now)
        store.set_walk(conn, walk_id, last_error=note, updated_at=now, **values)

    await node.db.write(unit)


async def _finish(node: Node, walk_id: int, state: str, error: str | None, now: datetime) -> None:
    await node.db.write(
        lambda conn: store.set_walk(conn, walk_id, state=state, last_error=error, updated_at=now)
    )


BACKFILL_POLLER = Poller(
    name="backfill",
    run_once=run_once,
    idle_seconds=2.0,
    wakeup=lambda node: node.backfill_wakeup,
)
