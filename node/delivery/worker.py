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
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

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
BATCH = 500
# Outcomes are written as sends complete, this many at a time or after this long, so
# that a worker dying mid-round leaves only the sends in flight to be made again.
RECORD_EVERY = 100
RECORD_SECONDS = 0.5
# A round that has not started a send by then leaves it for the next round (the claim
# lasts longer: see outbox.CLAIM_SECONDS).
ROUND_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
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
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_HOST))
    refusal = _Refusals(node)
    # Sends not started yet, per host: the last send to a host closes its connection.
    waiting = Counter(delivery.host for delivery in batch)
    # Keys rotated since the last round (by `coopnode keys rotate`, maybe in another
    # process) sign this round's requests.
    await node.peers.refresh_keys()
    schemes = await RoundSchemes.load(node, batch, now)
    signatures = RoundSignatures(node, batch, schemes)
    results: list[_Result] = []
    chunk_ready = asyncio.Event()
    healthy: set[str] = set()  # hosts recorded as answering this round

    async def send(session: PostSession, delivery: Delivery) -> _Result:
        host = delivery.host
        refused = refusal(host)
        if refused is not None:
            waiting[host] -= 1
            return _Result(delivery, None, dropped=refused)
        async with per_host[host]:
            if schemes.settled(delivery.server):
                async with in_flight:
                    return await attempt(session, delivery, schemes.first(delivery.server))
            # A host being probed takes one send at a time (RoundSchemes.turn): that wait
            # holds none of the slots other hosts' sends need.
            async with schemes.turn(delivery.server) as scheme, in_flight:
                return await attempt(session, delivery, scheme)

    async def attempt(session: PostSession, delivery: Delivery, scheme: Scheme) -> _Result:
        host = delivery.host
        waiting[host] -= 1
        if loop.time() > deadline:
            return _Result(delivery, None)
        start = time.perf_counter()
        result = await _deliver(
            node, session, delivery, scheme, signatures, schemes, waiting=waiting[host]
        )
        metrics.DELIVERY_SECONDS.observe(time.perf_counter() - start)
        return result

    async def collect(session: PostSession, delivery: Delivery) -> None:
        try:
            result = await send(session, delivery)
        except Exception:
            # Left claimed: tried again when the claim expires, as if this worker had
            # died, while the round's other outcomes are recorded.
            log.exception("delivery %d to %s failed", delivery.id, delivery.inbox)
            return
        results.append(result)
        metrics.DELIVERIES.labels(_outcome_of(result)).inc()
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
    waiting: int,
) -> _Result:
    """One delivery under the host's scheme: an RFC 9421 POST answered 400 or 401 is
    sent again at once, signed draft-cavage; what the answers teach goes with the
    result. ``waiting`` is how many sends to the host have not started yet."""
    signed = await signatures.get(delivery, scheme)
    if not (isinstance(signed, SignedPost) and signed.rfc9421):
        return await _post(node, session, delivery, signed, keep_alive=waiting > 0)
    known = schemes.of(delivery.server)
    # A refusal, and a second POST, is likely unless the host's answers confirmed it.
    sure = known is not None and known.confirmed
    first = await _post(node, session, delivery, signed, keep_alive=waiting > 0 or not sure)
    if not knocks_again(first.status):
        if lesson(first.status) is None:
            return first
        taught = HostScheme(
            Scheme.RFC9421_ED25519, True, f"HTTP {first.status} to RFC 9421 (Ed25519)"
        )
        return _learned(first, taught, schemes)
    again = await signatures.get(delivery, Scheme.CAVAGE_RSA)
    second = await _post(node, session, delivery, again, keep_alive=waiting > 0)
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
    for host in answering - healthy:
        domains.record_success(conn, host, now=now)
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
