"""Retention: what peers make the node write is deleted once ``retention_days`` have
passed since it ended, in bounded batches; pending work, ballots and the actors the
co-op deals with are never deleted."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from node import retention_worker
from node.delivery import worker as delivery_worker
from node.follows import actions
from node.services import inbox, retention
from node.settings import DEFAULT_RETENTION_DAYS
from node.storage.tables import (
    ballots,
    deliveries,
    inbox_activities,
    remote_actors,
)
from tests.support.coops import make_coop
from tests.support.network import Network, TestNode

AS2 = "application/activity+json"


async def count(node: TestNode, table: Any, *conditions: Any) -> int:
    query = select(func.count()).select_from(table).where(*conditions)
    return int(await node.node.db.read(lambda c: c.execute(query).scalar_one()))


async def states(node: TestNode, table: Any) -> list[str]:
    query = select(table.c.state).order_by(table.c.id)
    return list(await node.node.db.read(lambda c: c.execute(query).scalars().all()))


async def prune_all(node: TestNode) -> int:
    """Run the retention poller until it has nothing left to do."""
    total = 0
    while handled := await retention_worker.run_once(node.node):
        total += handled
    return total


async def stored_actors(node: TestNode) -> set[str]:
    query = select(remote_actors.c.uri)
    return set(await node.node.db.read(lambda c: c.execute(query).scalars().all()))


async def post_note(network: Network, sender: TestNode, receiver: TestNode, n: int) -> None:
    actor = f"{sender.base}/actors/coop"
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{sender.base}/activities/{n}",
        "type": "Create",
        "actor": actor,
        "object": {"id": f"{sender.base}/notes/{n}", "type": "Note", "content": "hi"},
    }
    response = await network.http.post(
        receiver.base + "/inbox",
        content=json.dumps(activity).encode(),
        headers={"Content-Type": AS2},
        auth=sender.node.peers.signer,
    )
    assert response.status_code == 202, response.text


def test_the_default_keeps_more_than_a_week() -> None:
    assert DEFAULT_RETENTION_DAYS >= 7


async def test_finished_activities_and_deliveries_go_after_the_retention_and_ballots_stay(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=1)
    closes = network.clock.now() + timedelta(days=60)
    created = await coop.propose("m0", closes_at=closes.isoformat())
    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "For")
    await network.settle()
    node = coop.node
    assert await count(node, inbox_activities) > 0
    assert await count(node, deliveries, deliveries.c.state == "delivered") > 0
    member_actor = coop.remote["r0"].actor

    network.clock.advance(timedelta(days=DEFAULT_RETENTION_DAYS - 1))
    assert await prune_all(node) == 0

    network.clock.advance(timedelta(days=2))
    assert await prune_all(node) > 0

    assert await count(node, inbox_activities) == 0
    assert await count(node, deliveries) == 0
    [ballot] = await node.node.db.read(lambda c: c.execute(select(ballots)).mappings().all())
    assert ballot["state"] == "valid"
    assert member_actor in await stored_actors(node)
    document = (await node.get(f"/proposals/{created['id']}", headers={"Accept": AS2})).json()
    assert {o["name"]: o["replies"]["totalItems"] for o in document["oneOf"]} == {
        "For": 1,
        "Against": 0,
        "Abstain": 0,
    }


async def test_pending_and_retrying_work_is_never_pruned(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    # Two follows alpha has not handled yet; the worker takes one, which fails and waits
    # for its retry.
    for n in (1, 2):
        follow = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{beta.base}/follows/{n}",
            "type": "Follow",
            "actor": f"{beta.base}/actors/coop",
            "object": f"{alpha.base}/actors/coop",
        }
        response = await network.http.post(
            alpha.base + "/inbox",
            content=json.dumps(follow).encode(),
            headers={"Content-Type": AS2},
            auth=beta.node.peers.signer,
        )
        assert response.status_code == 202
    now = network.clock.now()

    def fail_one(conn: Any) -> None:
        [item] = inbox.claim(conn, now=now, limit=1)
        inbox.fail(conn, item, "the handler broke", now=now)

    await alpha.node.db.write(fail_one)
    # A follow from alpha to a server that does not answer: its delivery waits too.
    await actions.follow(alpha.node, "https://beta.test/actors/coop")
    network.router.apps.pop("beta.test")
    await delivery_worker.run_once(alpha.node)

    network.clock.advance(timedelta(days=10 * DEFAULT_RETENTION_DAYS))
    await prune_all(alpha)

    assert await states(alpha, inbox_activities) == ["pending", "pending"]
    attempts = select(inbox_activities.c.attempts).order_by(inbox_activities.c.attempts)
    assert await alpha.node.db.read(lambda c: c.execute(attempts).scalars().all()) == [0, 1]
    assert await states(alpha, deliveries) == ["pending"]


async def test_the_documents_of_strangers_go_and_those_of_followers_stay(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    gamma = await network.add("gamma.test")
    delta = await network.add("delta.test")
    await actions.follow(beta.node, "coop@alpha.test")
    await network.settle()
    await post_note(network, gamma, alpha, 1)
    network.clock.advance(timedelta(days=DEFAULT_RETENTION_DAYS - 3))
    await post_note(network, delta, alpha, 1)
    assert {f"{n.base}/actors/coop" for n in (beta, gamma, delta)} <= await stored_actors(alpha)

    network.clock.advance(timedelta(days=4))
    await prune_all(alpha)

    kept = await stored_actors(alpha)
    assert f"{beta.base}/actors/coop" in kept  # a follower
    assert f"{delta.base}/actors/coop" in kept  # a stranger, fetched a few days ago
    assert f"{gamma.base}/actors/coop" not in kept


async def test_pruning_goes_in_bounded_batches_oldest_first(network: Network) -> None:
    alpha = await network.add("alpha.test")
    start = network.clock.now()
    for n in range(7):
        activity = {
            "id": f"https://peer.test/a/{n}",
            "type": "Like",
            "actor": "https://peer.test/u",
        }
        values = inbox.record_values(
            activity, actor="https://peer.test/u", now=start + timedelta(minutes=n), state="ignored"
        )
        await inbox.store(alpha.node.db, values)
    before = start + timedelta(minutes=5, seconds=30)  # the newest row is not due

    batches = []
    while pruned := await alpha.node.db.write(
        lambda c: retention.prune_inbox(c, before=before, limit=4)
    ):
        batches.append(pruned)

    assert batches == [4, 2]
    left = select(inbox_activities.c.activity_id)
    assert await alpha.node.db.read(lambda c: c.execute(left).scalars().all()) == [
        "https://peer.test/a/6"
    ]


@pytest.mark.parametrize(
    ("table", "index"),
    [
        # The primary key: an index on finished rows would cost every activity received.
        ("inbox_activities", "PRIMARY KEY|SEARCH inbox_activities|pk_inbox_activities"),
        ("deliveries", "ix_deliveries_finished"),
        ("remote_actors", "ix_remote_actors_fetched_at"),
    ],
)
async def test_each_batch_reads_its_index(network: Network, table: str, index: str) -> None:
    alpha = await network.add("alpha.test")
    prune = {
        "inbox_activities": retention.prune_inbox,
        "deliveries": retention.prune_deliveries,
        "remote_actors": retention.prune_remote_actors,
    }[table]
    selects: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and f"FROM {table}" in statement:
            selects.append((statement, params))

    def plan(conn: Any) -> list[list[str]]:
        if table == "inbox_activities":  # so that the search and the batch both run
            for n in range(3):
                activity = {
                    "id": f"https://x.test/{n}",
                    "type": "Like",
                    "actor": "https://x.test/a",
                }
                inbox.record(
                    conn,
                    activity,
                    actor=activity["actor"],
                    now=network.clock.now(),
                    state="ignored",
                )
        event.listen(conn, "before_cursor_execute", keep)
        try:
            prune(conn, before=network.clock.now() + timedelta(days=1), limit=10)
        finally:
            event.remove(conn, "before_cursor_execute", keep)
        if conn.dialect.name == "sqlite":
            explain = "EXPLAIN QUERY PLAN"
        else:
            # A table this small is scanned whatever its indexes unless told otherwise:
            # what matters is that the index can serve the query at all.
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            explain = "EXPLAIN"
        # Every query (the inbox's finds where to stop first), not only the batch.
        return [
            [str(row) for row in conn.exec_driver_sql(f"{explain} {statement}", params).all()]
            for statement, params in selects
        ]

    plans = await alpha.node.db.write(plan)

    assert plans
    for details in plans:
        assert any(name in row for name in index.split("|") for row in details), details
        assert not any(f"SCAN {table}" in row for row in details), details
