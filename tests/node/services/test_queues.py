"""The queues as the admin's page reads them: counts by state (the known states first),
the oldest deliveries waiting, the latest failures, and the activities refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from node.services import inbox, outbox, queues
from tests.support.network import Network


async def test_the_queues_are_counted_by_state_and_their_troubles_listed(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    node = coop.node
    now = node.clock.now()

    def fill(conn: Any) -> None:
        outbox.publish(
            conn,
            {"id": "https://alpha.test/activities/1", "type": "Update"},
            actor_id=node.peers.coop_id,
            inboxes=["https://down.test/inbox", "https://up.test/inbox"],
            now=now,
        )
        for n, state in enumerate(("dropped", "ignored", "pending")):
            inbox.record(
                conn,
                {"id": f"https://peer.test/activities/{n}", "type": "Create"},
                actor="https://peer.test/actors/coop",
                now=now,
                state=state,
            )

    await node.db.write(fill)
    claimed = await node.db.write(lambda c: outbox.claim(c, now=now))
    down = next(d for d in claimed if d.inbox == "https://down.test/inbox")
    await node.db.write(
        lambda c: outbox.retry(
            c, down.id, at=now + timedelta(minutes=1), status=500, error="HTTP 500, to retry"
        )
    )

    found = await node.db.read(queues.read_queues)

    assert list(found.delivery_counts) == list(queues.DELIVERY_STATES)
    assert found.delivery_counts["pending"] == 2
    assert list(found.inbox_counts) == list(queues.INBOX_STATES)
    assert found.inbox_counts == {"pending": 1, "done": 0, "ignored": 1, "failed": 0, "dropped": 1}
    assert {row.inbox for row in found.oldest} == {
        "https://down.test/inbox",
        "https://up.test/inbox",
    }
    assert [(f.inbox, f.state, f.last_status, f.last_error) for f in found.failures] == [
        ("https://down.test/inbox", "pending", 500, "HTTP 500, to retry")
    ]
    assert [(r.actor, r.type, r.state) for r in found.refused] == [
        ("https://peer.test/actors/coop", "Create", "dropped")
    ]
