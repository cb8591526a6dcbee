"""Actor documents fetched to check a signature, held in memory until one verifies.

Anyone can sign a request with a key id on a server of their own: the node has to fetch
that key's actor document to find the signature bad. Storing the document then would
let every bad request add a row (up to a megabyte each) to ``remote_actors``. So a
document fetched for a key waits here, bounded in count, in bytes and in time, and is
stored only once a signature made with one of its keys has verified
(:meth:`node.peers.Peers.key_verified`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from federation.clock import Clock


@dataclass(frozen=True, slots=True)
class _Held:
    document: dict[str, Any]
    size: int
    fetched_at: datetime


class UnverifiedActors:
    """Documents by actor id, the oldest dropped first when a bound is passed."""

    def __init__(
        self,
        clock: Clock,
        *,
        ttl: timedelta = timedelta(minutes=10),
        max_entries: int = 1_000,
        max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, document: dict[str, Any]) -> None:
        """Keep ``document`` (an actor's, with a string id) until it is taken or expires."""
        actor = document["id"]
        size = len(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
        self._discard(actor)
        if size > self._max_bytes:
            return  # would push out everything else; fetched again if it ever verifies
        self._held[actor] = _Held(document, size, self._clock.now())
        self.bytes += size
        self._expire()
        while len(self._held) > self._max_entries or self.bytes > self._max_bytes:
            self._discard(next(iter(self._held)))

    def get(self, actor: str) -> dict[str, Any] | None:
        self._expire()
        held = self._held.get(actor)
        return None if held is None else held.document

    def take(self, actor: str) -> dict[str, Any] | None:
        """The document held for ``actor``, no longer held."""
        document = self.get(actor)
        self._discard(actor)
        return document

    def _discard(self, actor: str) -> None:
        held = self._held.pop(actor, None)
        if held is not None:
            self.bytes -= held.size

    def _expire(self) -> None:
        # Held in the order they came, so the expired ones are at the front.
        cutoff = self._clock.now() - self._ttl
        while self._held:
            actor, held = next(iter(self._held.items()))
            if held.fetched_at > cutoff:
                return
            self._discard(actor)
