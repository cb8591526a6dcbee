"""This machine's clock against its peers': the Date each recent peer answers with.

Signatures carry the time they were made, and peers refuse those too far from their own
clock, so a clock that drifts stops delivery without any other sign."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import parsedate_to_datetime

import httpx

from federation.clock import Clock
from node.doctor import store
from node.doctor.findings import Finding, clock_verdict
from node.runtime import make_http_client
from node.settings import Settings
from node.storage.database import Database

PEERS_ASKED = 3
RECENT = timedelta(days=7)


async def check(settings: Settings, db: Database, clock: Clock) -> Finding:
    """``clock``: the node's (the system clock, moved by COOPNODE_CLOCK_OFFSET if set),
    which its signatures are dated by."""
    since = clock.now() - RECENT
    hosts = await db.read(lambda conn: store.recent_peers(conn, since=since, limit=PEERS_ASKED))
    scheme = settings.scheme
    # The node's own client: peers' names came from outside, the address guard applies.
    async with make_http_client(settings) as client:
        answers = await asyncio.gather(
            *(_skew(client, f"{scheme}://{host}/.well-known/nodeinfo", clock) for host in hosts)
        )
    skews = [(host, s) for host, s in zip(hosts, answers, strict=True) if s is not None]
    unanswered = [host for host, s in zip(hosts, answers, strict=True) if s is None]
    return clock_verdict(skews, unanswered)


async def _skew(client: httpx.AsyncClient, url: str, clock: Clock) -> float | None:
    """The peer's clock minus ours, in seconds, or None without an answer dated."""
    before = clock.now().timestamp()
    try:
        response = await client.get(url)
    except httpx.HTTPError:
        return None
    after = clock.now().timestamp()
    date = response.headers.get("date")
    if not date:
        return None
    try:
        theirs = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    ours = (before + after) / 2
    # A Date has whole seconds: the peer's clock is up to a second past what it says.
    return theirs + 0.5 - ours
