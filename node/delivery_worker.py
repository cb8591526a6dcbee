"""The delivery worker: due deliveries out of the outbox, signed, POSTed, classified.

A round claims a batch of due rows, sends them with a limit on requests in flight per
host (a small server is not flooded by one co-op's fan-out) and in all, classifies each
answer (see :mod:`federation.delivery`) and writes the outcomes as they come, a chunk at
a time: a worker that dies mid-round leaves only its sends in flight to be made again,
when their claim expires. Each activity's body and digest are made once per round; the
POSTs are signed a little ahead of their sends, on signing threads, and sent through the
node's poster (see :mod:`federation.poster`).
A domain whose deliveries have kept failing for a day is marked unavailable; its queue is
then probed every few hours instead of at every retry, until it answers or sends us a
signed request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy.engine import Connection

from federation.delivery import NOT_OUTAGES, Outcome, Verdict, classify, next_attempt
from federation.mediatypes import AS2
from federation.poster import (
    SIGNING_THREADS,
    InboxSigner,
    Payload,
    PostFailed,
    PostSession,
    Rfc9421Signer,
    SignedPost,
)
from federation.storable import storable
from node.runtime import Node
from node.services import domains, outbox
from node.services.outbox import Delivery
from node.workers import Poller

log = logging.getLogger(__name__)

# Requests in flight to one host, and in all, per worker process.
PER_HOST = 4
IN_FLIGHT = 64
BATCH = 500
# Outcomes are written as sends complete, this many at a time or after this long, so
# that a worker dying mid-round leaves only the sends in flight to be made again.
RECORD_EVERY = 100
RECORD_SECONDS = 0.5
# Requests signed per hand-over to a signing thread.
SIGN_CHUNK = 25
# A round that has not started a send by then leaves it for the next round (the claim
# lasts longer: see outbox.CLAIM_SECONDS).
ROUND_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class _Result:
    delivery: Delivery
    verdict: Verdict | None  # None: not attempted this round
    status: int | None = None
    dropped: str | None = None


async def run_once(node: Node, *, limit: int = BATCH) -> int:
    """Send the due deliveries; returns how many were claimed."""
    now = node.clock.now()
    batch = await node.db.write(lambda conn: outbox.claim(conn, now=now, limit=limit))
    if not batch:
        return 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ROUND_SECONDS
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_HOST))
    refusal = _Refusals(node)
    # Sends not started yet, per host: the last send to a host closes its connection.
    waiting = Counter(delivery.host for delivery in batch)
    signatures = _Signatures(node, batch)
    results: list[_Result] = []
    chunk_ready = asyncio.Event()
    healthy: set[str] = set()  # hosts recorded as answering this round

    async def send(session: PostSession, delivery: Delivery) -> _Result:
        refused = refusal(delivery.host)
        if refused is not None:
            waiting[delivery.host] -= 1
            return _Result(delivery, None, dropped=refused)
        async with in_flight, per_host[delivery.host]:
            waiting[delivery.host] -= 1
            if loop.time() > deadline:
                return _Result(delivery, None)
            signed = await signatures.get(delivery)
            keep_alive = waiting[delivery.host] > 0
            return await _post(node, session, delivery, signed, keep_alive=keep_alive)

    async def collect(session: PostSession, delivery: Delivery) -> None:
        try:
            result = await send(session, delivery)
        except Exception:
            # Left claimed: tried again when the claim expires, as if this worker had
            # died, while the round's other outcomes are recorded.
            log.exception("delivery %d to %s failed", delivery.id, delivery.inbox)
            return
        results.append(result)
        if len(results) >= RECORD_EVERY:
            chunk_ready.set()

    async with node.poster.session() as session, signatures:
        sends = asyncio.gather(*(collect(session, delivery) for delivery in batch))
        while True:
            # Outcomes are written as they come, every RECORD_EVERY or RECORD_SECONDS.
            ready = asyncio.ensure_future(chunk_ready.wait())
            await asyncio.wait(
                (sends, ready), timeout=RECORD_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            ready.cancel()
            chunk_ready.clear()
            # Read before writing: sends that end during the write are written next time.
            finished = sends.done()
            if results:
                chunk = results.copy()
                results.clear()
                await _write(node, chunk, healthy)
            if finished:
                break
    return len(batch)


class _Refusals:
    """The admin's policy on each host, looked up once per host and round (and again
    when the policy is reloaded), not once per delivery."""

    def __init__(self, node: Node) -> None:
        self._peers = node.peers
        self._policy = node.peers.policy
        self._known: dict[str, str | None] = {}

    def __call__(self, host: str) -> str | None:
        if self._peers.policy is not self._policy:
            self._policy, self._known = self._peers.policy, {}
        if host not in self._known:
            self._known[host] = self._policy.refusal(host)
        return self._known[host]


class _Signatures:
    """The round's requests, signed ahead of their sends, a chunk at a time, on the
    signing threads (see federation.poster), in the order the sends start: the RSA
    signature is most of a delivery's CPU, and it is made on other cores while this
    thread sends. Each activity's body and digest are made once."""

    def __init__(self, node: Node, batch: list[Delivery]) -> None:
        self._node = node
        self._signer = node.peers.inbox_signer
        # The co-op's activities are signed ahead; a member's (a ballot for a proposal
        # hosted elsewhere) are few and signed as they are sent, with the member's key.
        self._batch = [d for d in batch if d.actor_id == node.peers.coop_id]
        loop = asyncio.get_running_loop()
        self._signed: dict[int, asyncio.Future[SignedPost | PostFailed]] = {
            d.id: loop.create_future() for d in self._batch
        }
        self._payloads: dict[str, Payload] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, delivery: Delivery) -> SignedPost | PostFailed:
        future = self._signed.get(delivery.id)
        if future is not None:
            if not future.done():
                await asyncio.wait((future,))
            if not future.cancelled():
                return future.result()
        # Not signed ahead (a member's, or signing stopped early): signed here and now.
        signer: InboxSigner | Rfc9421Signer = self._signer
        if delivery.actor_id != self._node.peers.coop_id:
            signer = await self._node.peers.member_signer(delivery.actor_id, delivery.inbox)
        try:
            return signer.sign(delivery.inbox, self._payload(delivery))
        except PostFailed as exc:
            return exc

    def _payload(self, delivery: Delivery) -> Payload:
        payload = self._payloads.get(delivery.activity_id)
        if payload is None:
            payload = Payload.of(delivery.body.encode("utf-8"), AS2)
            self._payloads[delivery.activity_id] = payload
        return payload

    async def __aenter__(self) -> _Signatures:
        self._task = asyncio.create_task(self._sign())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _sign(self) -> None:
        # Chunks in order, as many at a time as there are signing threads.
        threads = asyncio.Semaphore(SIGNING_THREADS)

        async def sign(chunk: list[Delivery]) -> None:
            async with threads:
                posts = [(delivery.inbox, self._payload(delivery)) for delivery in chunk]
                signed = await self._signer.sign_many(posts)
            for delivery, post in zip(chunk, signed, strict=True):
                self._signed[delivery.id].set_result(post)

        chunks = [
            self._batch[start : start + SIGN_CHUNK]
            for start in range(0, len(self._batch), SIGN_CHUNK)
        ]
        try:
            await asyncio.gather(*(sign(chunk) for chunk in chunks))
        except Exception:
            log.exception("signing ahead failed; the round's other requests are signed as sent")
        finally:
            for future in self._signed.values():
                future.cancel()  # a no-op for those already signed


async def _post(
    node: Node,
    session: PostSession,
    delivery: Delivery,
    signed: SignedPost | PostFailed,
    *,
    keep_alive: bool,
) -> _Result:
    try:
        if isinstance(signed, PostFailed):
            raise signed
        # One deadline for the whole exchange: a peer dripping its answer a byte at a
        # time cannot hold the send.
        async with asyncio.timeout(node.settings.http_timeout):
            answer = await session.post(signed, keep_alive=keep_alive)
    except TimeoutError:
        error = f"no answer within {node.settings.http_timeout:g} s"
        return _Result(delivery, classify(None, error=error, now=node.clock.now()))
    except PostFailed as exc:
        if exc.forbidden is not None:
            reason = f"the inbox is on a forbidden address: {exc}"
            return _Result(delivery, Verdict(Outcome.GIVE_UP, reason))
        return _Result(delivery, classify(None, error=str(exc), now=node.clock.now()))
    verdict = classify(answer.status, retry_after_header=answer.retry_after, now=node.clock.now())
    return _Result(delivery, verdict, status=answer.status)


async def _write(node: Node, results: list[_Result], healthy: set[str]) -> None:
    """Write a chunk of outcomes; ``healthy`` holds the hosts already recorded as
    answering this round, which need no second write of it.

    Never raises: if the chunk cannot be written together, each outcome is written in
    its own unit of work, and one the database refuses leaves only its delivery claimed
    (sent again when the claim expires), while the round goes on."""
    known = frozenset(healthy)
    now = node.clock.now()
    try:
        answering, failing = await node.db.write(
            lambda conn: _record(conn, results, now, healthy=known)
        )
    except Exception:
        log.exception(
            "delivery: %d outcomes failed together; writing them one by one", len(results)
        )
        answering, failing = set(), set()
        # Written concurrently, they share a transaction in which a failing unit is left out.
        written = await asyncio.gather(
            *(
                node.db.write(partial(_record, results=[r], now=now, healthy=known))
                for r in results
            ),
            return_exceptions=True,
        )
        for result, outcome in zip(results, written, strict=True):
            if isinstance(outcome, BaseException):
                log.error(
                    "delivery %d to %s stays claimed: %s",
                    result.delivery.id,
                    result.delivery.inbox,
                    outcome,
                )
            else:
                answering |= outcome[0]
                failing |= outcome[1]
    healthy.update(answering)
    healthy.difference_update(failing)


def _record(
    conn: Connection, results: list[_Result], now: datetime, *, healthy: frozenset[str]
) -> tuple[set[str], set[str]]:
    """Write outcomes, alike ones together: one statement per kind, not per delivery.
    Returns the hosts recorded as answering and as failing."""
    delivered: list[int] = []
    # (state, status, error) -> ids, for deliveries finished without success
    finished: defaultdict[tuple[str, int | None, str], list[int]] = defaultdict(list)
    # (next attempt, status, error) -> ids
    retries: defaultdict[tuple[datetime, int | None, str], list[int]] = defaultdict(list)
    failing: dict[str, str] = {}
    answered: set[str] = set()
    for result in results:
        delivery, verdict = result.delivery, result.verdict
        if result.dropped is not None:
            finished["dropped", None, result.dropped].append(delivery.id)
            continue
        if verdict is None:
            retries[now, None, "not sent: round over"].append(delivery.id)
            continue
        if result.status is not None:
            answered.add(delivery.host)
        # A reason may quote the peer (an error message, an answer): made storable.
        why = storable(verdict.reason)
        if verdict.outcome is Outcome.DELIVERED:
            delivered.append(delivery.id)
        elif verdict.outcome is Outcome.GIVE_UP:
            finished["failed", result.status, why].append(delivery.id)
        else:
            at = next_attempt(delivery.attempts + 1, now, verdict.not_before)
            if at is None:
                reason = f"gave up after {delivery.attempts + 1} attempts: {why}"
                finished["failed", result.status, reason].append(delivery.id)
            else:
                retries[at, result.status, why].append(delivery.id)
            if result.status not in NOT_OUTAGES:
                failing[delivery.host] = why
    outbox.finish(conn, delivered, state="delivered", now=now, status=None)
    for (state, status, error), ids in finished.items():
        outbox.finish(conn, ids, state=state, now=now, status=status, error=error)
    for (at, status, error), ids in retries.items():
        outbox.retry_many(conn, ids, at=at, status=status, error=error)
    answering = answered - failing.keys()
    for host in answering - healthy:
        domains.record_success(conn, host, now=now)
    for host, reason in failing.items():
        if domains.record_failure(conn, host, reason, now=now):
            outbox.postpone_host(conn, host, until=now + domains.UNAVAILABLE_PROBE)
    return answering, set(failing)


DELIVERY_POLLER = Poller(
    name="delivery",
    run_once=run_once,
    idle_seconds=1.0,
    wakeup=lambda node: node.delivery_wakeup,
)


async def refresh_domains(node: Node) -> int:
    """Reload the admin's domain decisions (changed from the command line, say)."""
    allow_list = node.settings.federation == "allowlist"
    node.peers.policy = await node.db.read(
        lambda conn: domains.load_policy(conn, allow_list_mode=allow_list)
    )
    return 0


DOMAINS_POLLER = Poller(name="domains", run_once=refresh_domains, idle_seconds=5.0)
