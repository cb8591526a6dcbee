"""Public keys of remote actors: fetched once, cached as key objects, checked for
ownership.

A key is only trusted for the actor that publishes it: the key document's
``publicKey.id`` must be the ``keyId`` that signed the request and its ``owner`` must
be the actor whose document it is. A separate key document (``CryptographicKey``) is
accepted only when its owner's actor document lists that same key. FEP-521a Multikeys
in ``assertionMethod`` are read too (Ed25519, used by RFC 9421 and proofs).

However many requests wait for the same key, one fetch is in flight; a fetch may take
5 seconds at most; and when a signature fails with a cached key (the peer may have
rotated it) the key is fetched again at most once per few minutes, so a flood of bad
signatures cannot turn into a flood of fetches.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urldefrag

from federation import keys
from federation.clock import Clock
from federation.errors import FetchError, NotAuthorized

# fetch(url, fresh): the document at url; fresh=True after a failed verification, when a
# stored copy must not be used (the peer may have rotated its key).
Fetch = Callable[[str, bool], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ActorKey:
    key_id: str
    owner: str
    public_key: keys.PublicKey
    fetched_at: datetime


class KeyCache:
    def __init__(
        self,
        fetch: Fetch,
        clock: Clock,
        *,
        timeout: float = 5.0,
        refetch_interval: timedelta = timedelta(minutes=5),
        max_entries: int = 20_000,
    ):
        self._fetch = fetch
        self._clock = clock
        self._timeout = timeout
        self._refetch_interval = refetch_interval
        self._max_entries = max_entries
        self._keys: OrderedDict[str, ActorKey] = OrderedDict()
        # How many cached keys each actor owns: a Delete storm asks this per request.
        self._owners: Counter[str] = Counter()
        self._in_flight: dict[str, asyncio.Future[ActorKey]] = {}
        # When each key was last fetched again, oldest first; bounded like the keys, as
        # every bad signature with a new key id adds one.
        self._last_refetch: OrderedDict[str, datetime] = OrderedDict()
        self.fetches = 0

    def cached(self, key_id: str) -> ActorKey | None:
        return self._keys.get(key_id)

    @property
    def refetches_remembered(self) -> int:
        return len(self._last_refetch)

    def knows_actor(self, actor_id: str) -> bool:
        return self._owners[actor_id] > 0

    def forget_actor(self, actor_id: str) -> None:
        if self._owners[actor_id] > 0:
            for key_id in [k for k, v in self._keys.items() if v.owner == actor_id]:
                self._drop(key_id)

    def remember(self, key: ActorKey) -> None:
        self._drop(key.key_id)
        self._keys[key.key_id] = key
        self._owners[key.owner] += 1
        while len(self._keys) > self._max_entries:
            self._drop(next(iter(self._keys)))

    def _drop(self, key_id: str) -> None:
        key = self._keys.pop(key_id, None)
        if key is not None:
            self._owners[key.owner] -= 1
            if self._owners[key.owner] <= 0:
                del self._owners[key.owner]

    async def get(self, key_id: str) -> ActorKey:
        """The key for ``key_id``, from the cache or fetched (one fetch per key at once)."""
        key = self._keys.get(key_id)
        if key is not None:
            self._keys.move_to_end(key_id)
            return key
        return await self._fetch_once(key_id, fresh=False)

    async def refetch(self, key_id: str) -> ActorKey | None:
        """Fetch ``key_id`` again after a failed verification, unless that was done in the
        last few minutes; returns the fresh key, or None when no new fetch is allowed."""
        now = self._clock.now()
        last = self._last_refetch.get(key_id)
        if last is not None and now - last < self._refetch_interval:
            return None
        self._last_refetch.pop(key_id, None)
        self._last_refetch[key_id] = now
        self._forget_old_refetches(now)
        self._drop(key_id)
        return await self._fetch_once(key_id, fresh=True)

    def _forget_old_refetches(self, now: datetime) -> None:
        # A refetch older than the interval no longer holds anything back.
        while self._last_refetch:
            key_id, when = next(iter(self._last_refetch.items()))
            if now - when < self._refetch_interval and len(self._last_refetch) <= self._max_entries:
                return
            del self._last_refetch[key_id]

    async def _fetch_once(self, key_id: str, *, fresh: bool) -> ActorKey:
        pending = self._in_flight.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ActorKey] = asyncio.get_running_loop().create_future()
        self._in_flight[key_id] = future
        try:
            key = await asyncio.wait_for(self._load(key_id, fresh), self._timeout)
        except TimeoutError:
            error = FetchError(f"fetching key {key_id} took more than {self._timeout:g} s")
            future.set_exception(error)
            raise error from None
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            self.remember(key)
            future.set_result(key)
            return key
        finally:
            del self._in_flight[key_id]
            # Waiters got the outcome; nobody else must see "exception never retrieved".
            if future.done() and not future.cancelled():
                future.exception()

    async def _load(self, key_id: str, fresh: bool) -> ActorKey:
        self.fetches += 1
        url, _ = urldefrag(key_id)
        document = await self._fetch(url, fresh)
        if "publicKey" in document or "assertionMethod" in document:
            return self._from_actor(key_id, document)
        # A stand-alone key document: believe it only if its owner lists it.
        owner = document.get("owner") or document.get("controller")
        if document.get("id") != key_id or not isinstance(owner, str):
            raise NotAuthorized(f"{url} is neither an actor nor the key {key_id}")
        actor = await self._fetch(owner, fresh)
        return self._from_actor(key_id, actor)

    def _from_actor(self, key_id: str, actor: dict[str, Any]) -> ActorKey:
        actor_id = actor.get("id")
        if not isinstance(actor_id, str):
            raise NotAuthorized(f"the document holding {key_id} has no id")
        for entry in _entries(actor.get("publicKey")):
            if entry.get("id") != key_id:
                continue
            if entry.get("owner") != actor_id:
                raise NotAuthorized(
                    f"key {key_id} is owned by {entry.get('owner')!r}, not by {actor_id}"
                )
            pem = entry.get("publicKeyPem")
            if not isinstance(pem, str):
                raise NotAuthorized(f"key {key_id} has no publicKeyPem")
            return ActorKey(key_id, actor_id, _load_pem(pem, key_id), self._clock.now())
        for entry in _entries(actor.get("assertionMethod")):
            if entry.get("id") != key_id:
                continue
            if entry.get("controller") != actor_id:
                raise NotAuthorized(
                    f"key {key_id} is controlled by {entry.get('controller')!r}, not {actor_id}"
                )
            try:
                public = keys.multibase_to_ed25519(str(entry.get("publicKeyMultibase")))
            except ValueError as exc:
                raise NotAuthorized(f"key {key_id}: {exc}") from exc
            return ActorKey(key_id, actor_id, public, self._clock.now())
        raise NotAuthorized(f"{actor_id} does not publish the key {key_id}")


def _entries(value: object) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _load_pem(pem: str, key_id: str) -> keys.PublicKey:
    try:
        return keys.load_public_pem(pem)
    except ValueError as exc:
        raise NotAuthorized(f"key {key_id}: {exc}") from exc
