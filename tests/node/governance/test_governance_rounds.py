"""The governance worker's round survives any one proposal: one that cannot be closed
is logged and tried again, and the others close on time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from node import proposing
from tests.support.coops import make_coop
from tests.support.network import Network


async def test_one_proposal_that_cannot_close_does_not_hold_the_others(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    coop = await make_coop(network, local=2, remote=0)
    broken = await coop.propose("m0", title="Broken")
    healthy = await coop.propose("m0", title="Healthy")
    broken_pk = await coop.node.node.db.read(
        lambda conn: proposing.get_row(conn, broken["id"])["id"]
    )
    real_close = proposing._close

    def close(node: Any, conn: Any, *, pk: int, now: Any) -> bool:
        if pk == broken_pk:
            raise RuntimeError("a fault in this proposal alone")
        return real_close(node, conn, pk=pk, now=now)

    monkeypatch.setattr(proposing, "_close", close)
    network.clock.advance(timedelta(days=8))
    await network.settle()

    def state(key: str) -> Any:
        return coop.node.node.db.read(lambda conn: proposing.get_row(conn, key)["state"])

    assert await state(healthy["id"]) == "closed"
    assert await state(broken["id"]) == "open"
    monkeypatch.setattr(proposing, "_close", real_close)
    await network.settle()
    assert await state(broken["id"]) == "closed"
