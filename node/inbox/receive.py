"""Keeping what a peer POSTs, once its signature verified: the HTTP route
(:mod:`node.web.inbox`) reads and verifies the request, this stores the activity.

What no feature wants (:func:`node.inbox.classify.classify` names no kind) is kept, for
the record, but marked ``ignored`` at once, so that the worker never has to touch it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from federation.inbox import Verified, host_of
from node.inbox.classify import classify
from node.runtime import Node
from node.services import inbox, metrics


async def keep_verified(node: Node, verified: Verified, *, now: datetime) -> None:
    """Store a verified activity, committed when this returns, and wake the worker if
    it has something to do. A replay is skipped."""
    host = host_of(verified.actor)
    if host in node.peers.policy.unavailable:
        await back_online(node, host, now)
    kind = classify(verified.activity, actor=verified.actor, urls=node.urls)
    state = "ignored" if kind is None else "pending"
    values = inbox.record_values(
        verified.activity, actor=verified.actor, now=now, state=state, body=verified.text
    )
    await inbox.store(node.db, values)
    _ACCEPTED[state].inc()
    if kind is not None:  # a replay wakes the worker for nothing, which costs one query
        if len(node.inbox_parsed) >= MAX_PARSED:
            node.inbox_parsed.clear()  # what another process's worker took stays no longer
        node.inbox_parsed[values["activity_id"]] = (values["body"], verified.activity)
        node.inbox_wakeup.set()


# How many parsed activities wait for the worker at the most (a few megabytes): past
# that they are dropped, and the worker parses what it takes from the stored body, as a
# worker in another process does.
MAX_PARSED = 256

# Bound once: the inbox counts every activity it keeps.
_ACCEPTED = {state: metrics.INBOX_ACCEPTED.labels(state) for state in ("pending", "ignored")}


async def back_online(node: Node, host: str, now: datetime) -> None:
    """A domain marked unavailable signed a request to us: it is back, and what we
    postponed for it is due now."""
    await node.db.write(lambda conn: inbox.sender_back(conn, host, now=now))
    policy = node.peers.policy
    node.peers.policy = replace(policy, unavailable=policy.unavailable - {host})
    node.delivery_wakeup.set()
