"""What a running node holds: settings, database, HTTP client, clock, peers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from federation.clock import Clock
from federation.netguard import make_guarded_transport
from federation.poster import Poster, poster_for
from node import __version__
from node.peers import Peers
from node.settings import Settings
from node.storage.database import Database
from node.urls import Urls


@dataclass(slots=True)
class Node:
    settings: Settings
    db: Database
    http: httpx.AsyncClient
    clock: Clock
    urls: Urls = field(init=False)
    # Signed POSTs of activities (the delivery worker's path): by default the fastest
    # client that keeps ``http``'s address guard (federation.poster.poster_for).
    poster: Poster = field(init=False)
    peers: Peers = field(init=False)
    # Set when this process stored an activity, so its own inbox worker starts at once
    # instead of at its next poll.
    inbox_wakeup: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    # Set when this process queued deliveries, for the same reason.
    delivery_wakeup: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    # Set when a followed co-op accepted us and its offers are to be imported.
    backfill_wakeup: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    # Set when a network admitted a co-op whose offers are to be introduced.
    networks_wakeup: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    # Set when a ballot was counted or a proposal opened, for the counts and closings.
    governance_wakeup: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    # Closes held back for activities still waiting in the inbox: since when, by
    # proposal (node.governance.worker bounds the wait).
    close_waits: dict[int, datetime] = field(init=False, default_factory=dict)
    # Activities this process received and stored, parsed, by id, with the body they
    # were parsed from: the inbox worker takes them instead of parsing the body again
    # (node.inbox.receive bounds it).
    inbox_parsed: dict[str, tuple[str, dict[str, Any]]] = field(init=False, default_factory=dict)
    # Set when this process queued an email (a verification link, a test), so that it
    # goes at once; and when the mail worker last forgot old messages.
    mail_wakeup: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    mail_pruned_at: datetime | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.urls = Urls(self.settings.base_url)
        self.poster = poster_for(self.http)
        self.peers = Peers(self.settings, self.db, self.http, self.clock)


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    """The node's one HTTP client: every connection goes through the address guard,
    which refuses private, loopback and reserved addresses (loopback is allowed to a
    local node only). Passing a transport also makes httpx ignore proxy variables,
    which could otherwise route around the guard."""
    return httpx.AsyncClient(
        transport=make_guarded_transport(
            allow_loopback=settings.local,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        ),
        timeout=httpx.Timeout(settings.http_timeout, connect=5.0),
        headers={"User-Agent": f"coopnode/{__version__} (+{settings.base_url})"},
        follow_redirects=False,
    )


@dataclass(frozen=True, slots=True)
class Poller:
    """A background loop (see node.workers): a feature's round, run again while it finds
    work and otherwise after ``idle_seconds`` or a wake-up. Defined here, beside the
    Node it runs on, so that features declare theirs without importing the workers."""

    name: str
    # Runs one round; returns how many items it handled (0: sleep until the next poll).
    run_once: Callable[[Node], Awaitable[int]]
    idle_seconds: float = 1.0
    # The event this process sets when it queued work for this poller, if any.
    wakeup: Callable[[Node], asyncio.Event] | None = None
