"""The delivery worker: due deliveries out of the outbox, signed, POSTed, classified.

A round claims a batch of due rows, sends them with a limit on requests in flight per
host (a small server is not flooded by one co-op's fan-out) and in all, classifies each
answer (see :mod:`federation.delivery`) and writes every outcome in one unit of work.
A domain whose deliveries have kept failing for a day is marked unavailable; its queue is
then probed every few hours instead of at every retry, until it answers or sends us a
signed request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy.engine import Connection

from federation.delivery import Outcome, Verdict, classify, next_attempt
from federation.mediatypes import AS2
from federation.netguard import ForbiddenAddress
from node.runtime import Node
from node.services import domains, outbox
from node.services.outbox import Delivery
from node.workers import Poller

log = logging.getLogger(__name__)

# Requests in flight to one host, and in all, per worker process.
PER_HOST = 4
IN_FLIGHT = 64
BATCH = 500
# A round that has not started a send by then leaves it for the next round (the claim
# lasts longer: see outbox.CLAIM_SECONDS).
ROUND_SECONDS = 120.0
# Failures that say nothing about the domain's health: it answered, just not yes.
_NOT_OUTAGES = frozenset({401, 429})


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

    async def send(delivery: Delivery) -> _Result:
        refusal = node.peers.policy.refusal(delivery.host)
        if refusal is not None:
            return _Result(delivery, None, dropped=refusal)
        async with in_flight, per_host[delivery.host]:
            if loop.time() > deadline:
                return _Result(delivery, None)
            return await _post(node, delivery)

    results = await asyncio.gather(*(send(d) for d in batch))
    await node.db.write(lambda conn: _record(conn, results, node.clock.now()))
    return len(batch)


async def _post(node: Node, delivery: Delivery) -> _Result:
    if delivery.actor_id != node.peers.coop_id:
        # Members' actors sign their own activities once they exist.
        raise NotImplementedError("only the co-op's activities are delivered so far")
    try:
        # One deadline for the whole exchange: httpx's timeouts apply to each read, so
        # a peer dripping its answer a byte at a time would otherwise hold the send.
        async with (
            asyncio.timeout(node.settings.http_timeout),
            node.http.stream(
                "POST",
                delivery.inbox,
                content=delivery.body.encode("utf-8"),
                headers={"Content-Type": AS2},
                auth=node.peers.signer,
            ) as response,
        ):
            status = response.status_code
            verdict = classify(
                status,
                retry_after_header=response.headers.get("retry-after"),
                now=node.clock.now(),
            )
            return _Result(delivery, verdict, status=status)
    except TimeoutError:
        error = f"no answer within {node.settings.http_timeout:g} s"
        return _Result(delivery, classify(None, error=error, now=node.clock.now()))
    except httpx.HTTPError as exc:
        if isinstance(exc.__cause__, ForbiddenAddress):
            reason = f"the inbox is on a forbidden address: {exc}"
            return _Result(delivery, Verdict(Outcome.GIVE_UP, reason))
        error = str(exc) or type(exc).__name__
        return _Result(delivery, classify(None, error=error, now=node.clock.now()))


def _record(conn: Connection, results: list[_Result], now: datetime) -> None:
    delivered: list[int] = []
    failing: dict[str, str] = {}
    answered: set[str] = set()
    for result in results:
        delivery, verdict = result.delivery, result.verdict
        if result.dropped is not None:
            outbox.finish(conn, [delivery.id], state="dropped", now=now, error=result.dropped)
            continue
        if verdict is None:
            outbox.retry(conn, delivery.id, at=now, status=None, error="not sent: round over")
            continue
        if result.status is not None:
            answered.add(delivery.host)
        if verdict.outcome is Outcome.DELIVERED:
            delivered.append(delivery.id)
        elif verdict.outcome is Outcome.GIVE_UP:
            outbox.finish(
                conn,
                [delivery.id],
                state="failed",
                now=now,
                status=result.status,
                error=verdict.reason,
            )
        else:
            at = next_attempt(delivery.attempts + 1, now, verdict.not_before)
            if at is None:
                outbox.finish(
                    conn,
                    [delivery.id],
                    state="failed",
                    now=now,
                    status=result.status,
                    error=f"gave up after {delivery.attempts + 1} attempts: {verdict.reason}",
                )
            else:
                outbox.retry(conn, delivery.id, at=at, status=result.status, error=verdict.reason)
            if result.status not in _NOT_OUTAGES:
                failing[delivery.host] = verdict.reason
    outbox.finish(conn, delivered, state="delivered", now=now, status=None)
    for host in answered - failing.keys():
        domains.record_success(conn, host, now=now)
    for host, reason in failing.items():
        if domains.record_failure(conn, host, reason, now=now):
            outbox.postpone_host(conn, host, until=now + domains.UNAVAILABLE_PROBE)


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
