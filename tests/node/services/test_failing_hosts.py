"""The peers the admin is shown as failing: real failures only, with the latest reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from node.services import domains, outbox
from node.storage.tables import deliveries
from tests.support.network import Network


async def test_failing_hosts_leave_out_busy_peers_and_show_the_latest_reason(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    node = coop.node
    now = node.clock.now()
    inboxes = ["https://down.test/inbox", "https://busy.test/inbox"]

    def queue(conn: Any) -> None:
        for n in range(2):
            outbox.publish(
                conn,
                {"id": f"https://alpha.test/activities/{n}", "type": "Update"},
                actor_id=node.peers.coop_id,
                inboxes=inboxes,
                now=now,
            )

    await node.db.write(queue)
    rows = await node.db.read(
        lambda c: c.execute(
            select(deliveries.c.id, deliveries.c.inbox).order_by(deliveries.c.id)
        ).all()
    )
    later = now + timedelta(minutes=1)
    answers = {
        rows[0].id: (500, "HTTP 500, to retry"),  # down.test, first activity
        rows[1].id: (429, "HTTP 429, to retry"),  # busy.test
        rows[2].id: (None, "zz: an older reason that sorts last"),  # down.test
        rows[3].id: (429, "HTTP 429, to retry"),  # busy.test
    }

    def fail(conn: Any) -> None:
        for delivery_id, (status, error) in answers.items():
            outbox.retry(conn, delivery_id, at=later, status=status, error=error)
        # The newest failure of down.test is the first row's, retried again.
        outbox.retry(conn, rows[0].id, at=later, status=None, error="no answer within 10 s")
        domains.record_failure(conn, "down.test", "no answer within 10 s", now=later)

    await node.db.write(fail)

    failing = await node.db.read(outbox.failing_hosts)

    assert [(f["host"], f["pending"], f["last_error"]) for f in failing] == [
        ("down.test", 2, "no answer within 10 s"),
    ]


async def test_hosts_that_answered_are_recorded_back_together_and_no_others(
    network: Network,
) -> None:
    node = (await network.add("alpha.test")).node
    now = node.clock.now()

    def fail_three(conn: Any) -> None:
        for host in ("a.test", "b.test", "c.test"):
            domains.record_failure(conn, host, "no answer", now=now - timedelta(days=2))
            domains.record_failure(conn, host, "no answer", now=now)

    await node.db.write(fail_three)
    assert await node.db.read(domains.unavailable_hosts) == {"a.test", "b.test", "c.test"}

    later = now + timedelta(minutes=5)
    await node.db.write(
        lambda c: domains.record_successes(c, ["a.test", "c.test", "a.test"], now=later)
    )
    await node.db.write(lambda c: domains.record_successes(c, [], now=later))

    assert await node.db.read(domains.unavailable_hosts) == {"b.test"}
