"""How a round of the delivery worker signs its POSTs: the scheme per host, and the
signatures made ahead of their sends.

:class:`RoundSchemes` holds each host's scheme for the round (see
:mod:`federation.schemes` for the rules and :mod:`node.services.signature_schemes` for
what is kept), read in one query when the round starts and updated as answers teach.
:class:`RoundSignatures` signs the round's requests: RSA signatures, most of a delivery's
CPU, ahead of their sends on the signing threads (see :mod:`federation.poster`);
Ed25519 ones, a small part of the cost, as they are sent. An Ed25519 signature holds
the interpreter's lock, so a thread gains nothing there, and the hand-over cost more
than the signature (``bench/delivery.py``, one task per delivery: 218 µs of CPU per
delivery signed on the threads, 167 signed as sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime

from federation.mediatypes import AS2
from federation.poster import (
    SIGNING_THREADS,
    InboxSigner,
    Payload,
    PostFailed,
    Rfc9421Signer,
    SignedPost,
)
from federation.schemes import Scheme
from node.runtime import Node
from node.services import signature_schemes
from node.services.outbox import Delivery
from node.services.signature_schemes import HostScheme

log = logging.getLogger(__name__)

# Requests signed per hand-over to a signing thread.
SIGN_CHUNK = 25


class RoundSchemes:
    """Each host's signature scheme for one round.

    A host whose declaration has not been confirmed by an answer yet is probed: its
    first send of the round goes alone, and the others wait for its answer (or its
    failure), so that a declaration its server does not live up to costs one extra
    POST, not one per request in flight."""

    def __init__(self, found: dict[str, HostScheme]) -> None:
        self._hosts = dict(found)
        self._gates = {
            host: asyncio.Event()
            for host, scheme in found.items()
            if scheme.scheme is Scheme.RFC9421_ED25519 and not scheme.confirmed
        }
        self._probing: set[str] = set()

    @classmethod
    async def load(cls, node: Node, batch: list[Delivery], now: datetime) -> RoundSchemes:
        hosts = {delivery.server for delivery in batch}
        try:
            found, read = await node.db.read(
                lambda conn: signature_schemes.plan(conn, hosts, now=now)
            )
        except Exception:
            # The round goes on as Mastodon takes it, signed draft-cavage everywhere.
            log.exception("signature schemes of %d hosts could not be read", len(hosts))
            return cls({})
        if read:
            try:
                await node.db.write(
                    lambda conn: signature_schemes.record_declared(conn, read, now=now)
                )
            except Exception:
                # Nothing lost: the declarations are read again next round.
                log.exception("signature schemes of %d hosts could not be written", len(read))
        return cls(found)

    def of(self, host: str) -> HostScheme | None:
        return self._hosts.get(host)

    def first(self, host: str) -> Scheme:
        """The scheme to try first for ``host``."""
        found = self._hosts.get(host)
        return Scheme.CAVAGE_RSA if found is None else found.scheme

    def settled(self, host: str) -> bool:
        """Whether ``host`` needs no probe (most hosts): its sends need not take turns."""
        gate = self._gates.get(host)
        return gate is None or gate.is_set()

    @contextlib.asynccontextmanager
    async def turn(self, host: str) -> AsyncIterator[Scheme]:
        """Wait while another send probes ``host``; yields the scheme to try first."""
        gate = self._gates.get(host)
        while gate is not None and not gate.is_set() and host in self._probing:
            await gate.wait()
        probing = gate is not None and not gate.is_set()
        if probing:
            self._probing.add(host)
        try:
            yield self.first(host)
        finally:
            if probing and gate is not None:
                self._probing.discard(host)
                gate.set()

    def learn(self, host: str, found: HostScheme) -> bool:
        """Record what an answer taught; False if it was known already (nothing to write)."""
        known = self._hosts.get(host)
        self._hosts[host] = found
        return known is None or known.scheme is not found.scheme or not known.confirmed


class RoundSignatures:
    """The round's requests, signed: the co-op's RSA ones ahead of their sends, a chunk
    at a time, on the signing threads, in the order the sends start; the rest (Ed25519,
    a member's, a second try under the other scheme, one whose host's scheme changed
    during the round) as they are sent. Each activity's body and digests are made once."""

    def __init__(self, node: Node, batch: list[Delivery], schemes: RoundSchemes) -> None:
        self._node = node
        self._coop = coop = node.peers.coop_id
        rsa = Scheme.CAVAGE_RSA
        self._ahead = [d for d in batch if d.actor_id == coop and schemes.first(d.server) is rsa]
        self._signers: dict[Scheme, InboxSigner | Rfc9421Signer] = {
            Scheme.CAVAGE_RSA: node.peers.inbox_signer
        }
        loop = asyncio.get_running_loop()
        self._signed: dict[int, asyncio.Future[SignedPost | PostFailed]] = {
            d.id: loop.create_future() for d in self._ahead
        }
        self._payloads: dict[str, Payload] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, delivery: Delivery, scheme: Scheme) -> SignedPost | PostFailed:
        """``delivery``'s request signed under ``scheme`` (draft-cavage if its actor
        has no Ed25519 key)."""
        future = self._signed.get(delivery.id) if scheme is Scheme.CAVAGE_RSA else None
        if future is not None:
            if not future.done():
                await asyncio.wait((future,))
            if not future.cancelled():
                return future.result()
        signer = self._signers.get(scheme) if delivery.actor_id == self._coop else None
        if signer is None:
            signer = await self._signer(delivery.actor_id, scheme)
        post = (delivery.inbox, self._payload(delivery))
        if signer.costly:
            # An RSA signature holds the loop for up to a millisecond: made on a thread.
            [signed] = await signer.sign_many([post])
            return signed
        try:
            return signer.sign(*post)
        except PostFailed as exc:
            return exc

    async def _signer(self, actor_pk: int, scheme: Scheme) -> InboxSigner | Rfc9421Signer:
        if actor_pk != self._node.peers.coop_id:
            return await self._node.peers.member_signer(actor_pk, scheme)
        signer = self._signers.get(scheme)
        if signer is None:
            signer = await self._node.peers.member_signer(actor_pk, scheme)
            self._signers[scheme] = signer
        return signer

    def _payload(self, delivery: Delivery) -> Payload:
        payload = self._payloads.get(delivery.activity_id)
        if payload is None:
            payload = Payload.of(delivery.body.encode("utf-8"), AS2)
            self._payloads[delivery.activity_id] = payload
        return payload

    async def __aenter__(self) -> RoundSignatures:
        self._task = asyncio.create_task(self._sign())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _sign(self) -> None:
        # Chunks in order, as many at a time as there are signing threads.
        threads = asyncio.Semaphore(SIGNING_THREADS)
        signer = self._signers[Scheme.CAVAGE_RSA]

        async def sign(chunk: list[Delivery]) -> None:
            async with threads:
                posts = [(delivery.inbox, self._payload(delivery)) for delivery in chunk]
                signed = await signer.sign_many(posts)
            for delivery, post in zip(chunk, signed, strict=True):
                self._signed[delivery.id].set_result(post)

        ahead = self._ahead
        chunks = [ahead[start : start + SIGN_CHUNK] for start in range(0, len(ahead), SIGN_CHUNK)]
        try:
            await asyncio.gather(*(sign(chunk) for chunk in chunks))
        except Exception:
            log.exception("signing ahead failed; the round's other requests are signed as sent")
        finally:
            for future in self._signed.values():
                future.cancel()  # a no-op for those already signed
