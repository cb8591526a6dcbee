"""The delivery worker: due deliveries out of the outbox, signed, POSTed, classified.

A round claims a batch of due rows, sends them with a limit on requests in flight per
host (a small server is not flooded by one co-op's fan-out) and in all, classifies each
answer (see :mod:`federation.delivery`) and writes the outcomes as they come, a chunk at
a time: a worker that dies mid-round leaves only its sends in flight to be made again,
when their claim expires. Each POST is signed as its host takes it, RFC 9421 with the
actor's Ed25519 key or draft-cavage with its RSA key, and a 400 or 401 to the first is
answered by sending the second at once ("double knocking"; see
:mod:`federation.schemes` and :mod:`node.delivery.signing`); what a host's answers
teach is written with the outcomes. The POSTs go through the node's poster (see
:mod:`federation.poster`).
A domain whose deliveries have kept failing for a day is marked unavailable; its queue is
then probed every few hours instead of at every retry, until it answers or sends us a
signed request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from federation.delivery import NOT_OUTAGES, Outcome, Verdict, classify, next_attempt
from federation.poster import PostFailed, PostSession, SignedPost
from federation.schemes import Scheme, knocks_again, lesson
from federation.storable import storable
from node.delivery.signing import RoundSchemes, RoundSignatures
from node.runtime import Node, Poller
from node.services import domains, metrics, outbox, signature_schemes
from node.services.outbox import Delivery
from node.services.signature_schemes import HostScheme

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# Requests in flight to one host, and in all, per worker process.
PER_HOST = 4
IN_FLIGHT = 64
# Deliveries claimed per round. A round's own work (the claim, the hosts' schemes, a
# connection per host, the senders) is spread over them: rounds of 500 lasted a tenth
# of a second at full speed, and cost some 10 % more CPU per delivery in
# bench/delivery.py. Other workers claim the next ones (PostgreSQL skips claimed rows),
# so a fan-out to 5,000 inboxes still spreads over two or three of them.
BATCH = 2000
# Outcomes are written as sends complete, this many at a time or after this long, so
# that a worker dying mid-round leaves only the sends in flight to be made again.
RECORD_EVERY = 100
RECORD_SECONDS = 0.5
# A round that has not started a send by then leaves it for the next round (the claim
# lasts longer: see outbox.CLAIM_SECONDS).
ROUND_SECONDS = 120.0


@dataclass(slots=True)  # not frozen: one per delivery, made in a third of the time
class _Result:
    delivery: Delivery
    verdict: Verdict | None  # None: not attempted this round
    status: int | None = None
    dropped: str | None = None
    # What the host's answers taught about its signature scheme, to be written.
    learned: HostScheme | None = None


async def run_once(node: Node, *, limit: int = BATCH) -> int:
    """Send the due deliveries; returns how many were claimed."""
    now = node.clock.now()
    batch = await node.db.write(lambda conn: outbox.claim(conn, now=now, limit=limit))
    if not batch:
        return 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ROUND_SECONDS
    refusal = _Refusals(node)
    # Keys rotated since the last round (by `coopnode keys rotate`, maybe in another
    # process) sign this round's requests.
    await node.peers.refresh_keys()
    schemes = await RoundSchemes.load(node, batch, now)
    signatures = RoundSignatures(node, batch, schemes)
    lanes = _Lanes(batch, schemes)
    results: list[_Result] = []
    # Seconds each send took, observed with the outcomes they go with: one call of the
    # histogram's after another, not one between two sends (some 3 % of a send's CPU).
    durations: list[float] = []
    chunk_ready = asyncio.Event()
    healthy: set[str] = set()  # hosts recorded as answering this round

    async def send(session: PostSession, delivery: Delivery) -> _Result:
        refused = refusal(delivery.host)
        if refused is not None:
            return _Result(delivery, None, dropped=refused)
        if schemes.settled(delivery.server):
            return await attempt(session, delivery, schemes.first(delivery.server))
        # A host being probed takes one send at a time (see _Lanes); a send that finds
        # its server's probe under way waits for its answer.
        async with schemes.turn(delivery.server) as scheme:
            return await attempt(session, delivery, scheme)

    async def attempt(session: PostSession, delivery: Delivery, scheme: Scheme) -> _Result:
        if loop.time() > deadline:
            return _Result(delivery, None)
        start = time.perf_counter()
        # The last send to a host closes its connection.
        keep_alive = lanes.waiting(delivery.host) > 0
        result = await _deliver(
            node, session, delivery, scheme, signatures, schemes, keep_alive=keep_alive
        )
        durations.append(time.perf_counter() - start)
        return result

    async def sender(session: PostSession) -> None:
        """Sends one delivery after another, as long as a host has one to start."""
        while (delivery := lanes.take()) is not None:
            try:
                result = await send(session, delivery)
            except Exception:
                # Left claimed: tried again when the claim expires, as if this worker had
                # died, while the round's other outcomes are recorded.
                log.exception("delivery %d to %s failed", delivery.id, delivery.inbox)
                continue
            finally:
                lanes.done(delivery)
            results.append(result)
            if len(results) >= RECORD_EVERY:
                chunk_ready.set()

    async with node.poster.session() as session, signatures:
        lanes.open(partial(sender, session))
        sends = asyncio.ensure_future(lanes.finished.wait())
        ready = asyncio.ensure_future(chunk_ready.wait())
        try:
            while True:
                # Outcomes are written as they come, every RECORD_EVERY or RECORD_SECONDS.
                await asyncio.wait(
                    (sends, ready), timeout=RECORD_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                if ready.done():
                    chunk_ready.clear()
                    ready = asyncio.ensure_future(chunk_ready.wait())
                # Read before writing: sends that end during the write are written next time.
                finished = sends.done()
                for seconds in durations:
                    metrics.DELIVERY_SECONDS.observe(seconds)
                durations.clear()
                if results:
                    chunk = results.copy()
                    results.clear()
                    await _write(node, chunk, healthy)
                if finished:
                    break
        finally:
            # Cancelled (the worker stops): nothing of the round outlives it.
            sends.cancel()
            ready.cancel()
            await lanes.close()
    return len(batch)


class _Lanes:
    """The round's deliveries, queued per host, and the tasks that send them.

    A sender takes the next delivery of a host that can take one more send: at most
    :data:`PER_HOST` of a host's at a time, one while its signature scheme is probed
    (:class:`RoundSchemes`), and at most :data:`IN_FLIGHT` senders in all. Hosts take
    turns, so that a host with many deliveries does not hold the others back. A round
    makes as many tasks as it has sends in flight, not one per delivery."""

    def __init__(self, batch: list[Delivery], schemes: RoundSchemes) -> None:
        self._schemes = schemes
        self._queues: dict[str, deque[Delivery]] = {}
        for delivery in batch:
            self._queues.setdefault(delivery.host, deque()).append(delivery)
        self._busy: Counter[str] = Counter()
        # The hosts that can take one more send now, in turn.
        self._ready: deque[str] = deque(self._queues)
        self._listed = set(self._queues)
        # Hosts whose sends are held to one while their scheme is probed.
        self._probed: set[str] = set()
        self._senders: set[asyncio.Task[None]] = set()
        self._sender: Callable[[], Coroutine[Any, Any, None]] | None = None
        self.finished = asyncio.Event()

    def open(self, sender: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start as many ``sender()`` tasks as sends can be in flight."""
        self._sender = sender
        self._add(sum(min(self._limit(queue), len(queue)) for queue in self._queues.values()))

    async def close(self) -> None:
        """Cancel the senders still running, and wait for them."""
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)

    def waiting(self, host: str) -> int:
        """How many of ``host``'s deliveries have not been taken yet."""
        return len(self._queues[host])

    def take(self) -> Delivery | None:
        """The next delivery to send, or None when no host can take one now."""
        while self._ready:
            host = self._ready.popleft()
            self._listed.discard(host)
            queue = self._queues[host]
            limit = self._limit(queue) if queue else 0
            if self._busy[host] >= limit:
                continue
            if limit == 1:
                self._probed.add(host)
            self._busy[host] += 1
            delivery = queue.popleft()
            self._list(host)
            return delivery
        return None

    def done(self, delivery: Delivery) -> None:
        """``delivery``'s send is over: its host can take another."""
        host = delivery.host
        self._busy[host] -= 1
        self._list(host)
        queue = self._queues[host]
        if host in self._probed and queue and self._limit(queue) > 1:
            # The probe answered: the host's other sends can go at once.
            self._probed.discard(host)
            self._add(min(PER_HOST, len(queue)) - 1)

    def _list(self, host: str) -> None:
        queue = self._queues[host]
        if queue and host not in self._listed and self._busy[host] < self._limit(queue):
            self._ready.append(host)
            self._listed.add(host)

    def _limit(self, queue: deque[Delivery]) -> int:
        return PER_HOST if self._schemes.settled(queue[0].server) else 1

    def _add(self, count: int) -> None:
        assert self._sender is not None
        for _ in range(min(count, IN_FLIGHT - len(self._senders))):
            task = asyncio.ensure_future(self._sender())
            self._senders.add(task)
            task.add_done_callback(self._ended)
        if not self._senders:
            self.finished.set()

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._senders.discard(task)
        if not self._senders:
            self.finished.set()


def _outcome_of(result: _Result) -> str:
    """A result's outcome as the metrics name it."""
    if result.dropped is not None:
        return "dropped"
    if result.verdict is None:
        return "not_sent"
    return result.verdict.outcome.name.lower()


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


async def _deliver(
    node: Node,
    session: PostSession,
    delivery: Delivery,
    scheme: Scheme,
    signatures: RoundSignatures,
    schemes: RoundSchemes,
    *,
    keep_alive: bool,
) -> _Result:
    """One delivery under the host's scheme: an RFC 9421 POST answered 400 or 401 is
    sent again at once, signed draft-cavage; what the answers teach goes with the
    result. ``keep_alive``: whether other sends to the host wait to start."""
    signed = await signatures.get(delivery, scheme)
    if not (isinstance(signed, SignedPost) and signed.rfc9421):
        return await _post(node, session, delivery, signed, keep_alive=keep_alive)
    known = schemes.of(delivery.server)
    # A refusal, and a second POST, is likely unless the host's answers confirmed it.
    sure = known is not None and known.confirmed
    sure_of_rfc9421 = (
        known is not None and known.confirmed and known.scheme is Scheme.RFC9421_ED25519
    )
    first = await _post(node, session, delivery, signed, keep_alive=keep_alive or not sure)
    if not knocks_again(first.status):
        if sure_of_rfc9421 or lesson(first.status) is None:
            # Nothing new: an answer other than 400 or 401 from a host whose answers
            # already confirmed RFC 9421 (most sends) teaches nothing.
            return first
        taught = HostScheme(
            Scheme.RFC9421_ED25519, True, f"HTTP {first.status} to RFC 9421 (Ed25519)"
        )
        return _learned(first, taught, schemes)
    again = await signatures.get(delivery, Scheme.CAVAGE_RSA)
    second = await _post(node, session, delivery, again, keep_alive=keep_alive)
    if second.verdict is not None and second.verdict.outcome is not Outcome.DELIVERED:
        said = f"{second.verdict.reason} (after HTTP {first.status} to RFC 9421)"
        second = replace(second, verdict=replace(second.verdict, reason=said))
    if lesson(first.status, second.status) is None:
        return second
    taught = HostScheme(
        Scheme.CAVAGE_RSA,
        True,
        f"HTTP {first.status} to RFC 9421 (Ed25519), HTTP {second.status} to draft-cavage (RSA)",
    )
    return _learned(second, taught, schemes)


def _learned(result: _Result, taught: HostScheme, schemes: RoundSchemes) -> _Result:
    """``result``, carrying what it taught if that is news to be written."""
    if schemes.learn(result.delivery.server, taught):
        return replace(result, learned=taught)
    return result


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
        answer = await session.post(
            signed, keep_alive=keep_alive, timeout=node.settings.http_timeout
        )
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
    for kind, count in Counter(map(_outcome_of, results)).items():
        metrics.DELIVERIES.labels(kind).inc(count)
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
    learned: dict[str, HostScheme] = {}
    for result in results:
        delivery, verdict = result.delivery, result.verdict
        if result.learned is not None:
            learned[delivery.server] = result.learned
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
    domains.record_successes(conn, answering - healthy, now=now)
    for host, reason in failing.items():
        if domains.record_failure(conn, host, reason, now=now):
            outbox.postpone_host(conn, host, until=now + domains.UNAVAILABLE_PROBE)
    signature_schemes.record_learned(conn, learned, now=now)
    return answering, set(failing)


DELIVERY_POLLER = Poller(
    name="delivery",
    run_once=run_once,
    idle_seconds=1.0,
    wakeup=lambda node: node.delivery_wakeup,
)


async def refresh_domains(node: Node) -> int:
    """Reload the admin's domain decisions (changed from the command line, say), and
    the signers if the keys were rotated (so that fetches are signed with the new ones
    even while nothing is delivered)."""
    await node.peers.refresh_keys()
    allow_list = node.settings.federation == "allowlist"
    node.peers.policy = await node.db.read(
        lambda conn: domains.load_policy(conn, allow_list_mode=allow_list)
    )
    return 0


DOMAINS_POLLER = Poller(name="domains", run_once=refresh_domains, idle_seconds=5.0)
