"""The offers a followed actor links from its profile are fetched a few at a time and
within one budget: a server that answers each of them slowly holds the inbox worker's
round for that budget, not for every link's fetch deadline one after another, and the
round goes on to the next activity."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node.follows import actions
from node.follows import store as follows
from node.inbox import worker as inbox_worker
from node.offers import inbound as offers_inbound
from node.offers.remote import MAX_LINKED_PROPOSALS
from node.storage.tables import inbox_activities
from tests.node.offers.test_mitra import (
    ACTOR,
    PAYMENT_LINK,
    deliver,
    mitra_actor,
    served,
    update_person,
)
from tests.support.network import Network

SLOW = 2.0  # seconds each linked proposal takes to answer
BUDGET = 1.0


async def test_a_slow_server_holds_the_round_for_the_budget_only(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(offers_inbound, "LINKED_OFFERS_SECONDS", BUDGET)
    links = [
        {**PAYMENT_LINK, "href": f"{ACTOR}/proposals/slow-{n}"} for n in range(MAX_LINKED_PROPOSALS)
    ]
    actor = served(mitra_actor(ACTOR, *links))
    asked: list[float] = []
    started = time.monotonic()

    async def actor_document(request: Request) -> Response:
        return Response(json.dumps(actor), media_type="application/activity+json")

    async def slow_proposal(request: Request) -> Response:
        asked.append(time.monotonic() - started)
        await asyncio.sleep(SLOW)
        return Response("{}", status_code=503)

    network.router.add(
        "test.example",
        Starlette(
            routes=[
                Route("/users/alice", actor_document),
                Route("/users/alice/proposals/{key}", slow_proposal),
            ]
        ),
    )
    alpha = await network.add("alpha.test")
    followed = await actions.follow(alpha.node, ACTOR)
    now = network.clock.now()
    await alpha.node.db.write(
        lambda conn: follows.settle_following(
            conn, follow_id=followed.follow_id, by=ACTOR, state=follows.ACCEPTED, now=now
        )
    )
    assert await deliver(network, alpha.base + "/inbox", update_person(actor, 1)) == 202

    began = time.monotonic()
    taken = await inbox_worker.run_once(alpha.node)
    spent = time.monotonic() - began

    assert taken == 1
    # One after another, ten links would have held it for 20 s.
    assert spent < BUDGET + SLOW / 2, spent
    # A few at a time, not one by one.
    assert len(asked) == offers_inbound.LINKED_OFFERS_AT_ONCE
    # The Update itself is handled: the actor is stored, the round is over.
    query = select(inbox_activities.c.state).where(inbox_activities.c.type == "Update")
    assert await alpha.node.db.read(lambda conn: conn.execute(query).scalar_one()) == "done"
