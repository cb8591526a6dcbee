"""The governance worker's round survives any one proposal: one that cannot be closed
is logged and tried again, and the others close on time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from node.governance import proposals, worker
from node.governance.store import proposals as proposal_store
from tests.support.coops import make_coop
from tests.support.network import Network


async def test_one_proposal_that_cannot_close_does_not_hold_the_others(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    coop = await make_coop(network, local=2, remote=0)
    broken = await coop.propose("m0", title="Broken")
    healthy = await coop.propose("m0", title="Healthy")
    broken_pk = await coop.node.node.db.read(lambda conn: proposal_store.get(conn, broken["id"]).id)
    real_close = proposals.close

    def close(node: Any, conn: Any, *, pk: int, now: Any) -> bool:
        if pk == broken_pk:
            raise RuntimeError("a fault in this proposal alone")
        return real_close(node, conn, pk=pk, now=now)

    monkeypatch.setattr(proposals, "close", close)
    network.clock.advance(timedelta(days=8))
    await network.settle()

    def state(key: str) -> Any:
        return coop.node.node.db.read(lambda conn: proposal_store.get(conn, key).state)

    assert await state(healthy["id"]) == "closed"
    assert await state(broken["id"]) == "open"
    monkeypatch.setattr(proposals, "close", real_close)
    await network.settle()
    assert await state(broken["id"]) == "closed"


async def test_a_close_waits_for_the_inbox_a_bounded_time(network: Network) -> None:
    """An activity accepted before the end may be a ballot: the close waits for the inbox
    worker to take it, but not forever if nothing ever does."""
    from node.services import inbox

    coop = await make_coop(network, local=2, remote=0)
    created = await coop.propose("m0")
    node = coop.node.node
    row = await node.db.read(lambda conn: proposal_store.get(conn, created["id"]))
    before_end = row.closes_at - timedelta(minutes=1)
    activity = {
        "id": "https://mastodon.test/users/r0#votes/1/activity",
        "type": "Create",
        "actor": "https://mastodon.test/users/r0",
        "object": {"type": "Note", "name": "For", "inReplyTo": created["uri"]},
    }
    await node.db.write(
        lambda conn: inbox.record(conn, activity, actor=activity["actor"], now=before_end)
    )

    def state() -> Any:
        return node.db.read(lambda conn: proposal_store.get(conn, created["id"]).state)

    network.clock.advance(timedelta(days=7, seconds=1))
    await worker.run_once(node)  # the inbox worker is not run: the item stays
    assert await state() == "open"
    network.clock.advance(worker.CLOSE_WAIT_LIMIT - timedelta(seconds=1))
    await worker.run_once(node)
    assert await state() == "open"
    network.clock.advance(timedelta(seconds=2))
    await worker.run_once(node)
    assert await state() == "closed"
