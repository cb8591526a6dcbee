"""No poison pill: a worker's round survives any single item. An item whose handling, or
the recording of whose outcome, fails is retried and finally recorded as failed with its
reason; the other items of the round are done; a proposal closes even with an inbox
item stuck pending."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from node.delivery import worker as delivery_worker
from node.governance import voting
from node.governance import worker as governance_worker
from node.inbox import handlers
from node.inbox import worker as inbox_worker
from node.inbox.feature import Handler, Kind, anything
from node.offers import backfill, backfill_store
from node.services import inbox, outbox
from node.services.inbox import InboxItem
from node.storage.tables import backfills, deliveries, inbox_activities, proposals
from tests.support.coops import make_coop
from tests.support.network import Network, TestNode

PEER = "https://beta.test/actors/coop"


def accept(n: int) -> dict[str, Any]:
    """An Accept of a follow this node never sent: handled, and done, with no fetch."""
    return {
        "id": f"https://beta.test/activities/accept-{n}",
        "type": "Accept",
        "actor": PEER,
        "object": f"https://alpha.test/follows/{n}",
    }


async def keep(node: TestNode, activity: dict[str, Any], *, actor: str = PEER) -> None:
    """Store ``activity`` as the inbox did before it refused unstorable text: the body as
    the peer sent it, escapes and all."""
    now = node.node.clock.now()
    body = json.dumps(activity)
    await node.node.db.write(lambda c: inbox.record(c, activity, actor=actor, now=now, body=body))


def handle_likes(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> None:
    """Make every Like a kind of activity that ``handler`` handles, for one test."""
    monkeypatch.setitem(handlers.KINDS, "Like", (Kind("Like", "like", anything),))
    monkeypatch.setitem(handlers.HANDLERS, ("Like", "like"), handler)


async def inbox_rows(node: TestNode) -> dict[str, tuple[str, int, str | None]]:
    query = select(
        inbox_activities.c.activity_id,
        inbox_activities.c.state,
        inbox_activities.c.attempts,
        inbox_activities.c.last_error,
    )
    found = await node.node.db.read(lambda c: c.execute(query).all())
    return {r.activity_id: (r.state, r.attempts, r.last_error) for r in found}


async def test_a_poisoned_ballot_is_refused_while_the_rounds_other_ballots_count(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=2)
    created = await coop.propose("m0")
    r0, r1 = coop.remote["r0"], coop.remote["r1"]
    poisoned = coop.mastodon.vote_activity(
        r0, created["uri"], "For", attributed_to="https://mastodon.test/users/r\ud800"
    )
    fine = coop.mastodon.vote_activity(r1, created["uri"], "Against")
    await keep(coop.node, poisoned, actor=r0.actor)
    await keep(coop.node, fine, actor=r1.actor)

    await inbox_worker.run_once(coop.node.node)

    rows = await inbox_rows(coop.node)
    assert rows[fine["id"]][0] == "done"
    state, _, reason = rows[poisoned["id"]]
    assert state == "failed"
    assert str(reason).startswith("refused:")
    assert "\ud800" not in str(reason)

    network.clock.advance(timedelta(days=7, minutes=1))
    await network.settle()
    shown = await coop.node.get(f"/api/v1/proposals/{created['id']}", headers=coop.local["m0"])
    assert shown.json()["state"] == "closed"


async def test_ballots_are_taken_one_by_one_when_the_rounds_ballots_fail_together(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    coop = await make_coop(network, local=1, remote=3)
    created = await coop.propose("m0")
    r0, r1, r2 = coop.remote["r0"], coop.remote["r1"], coop.remote["r2"]
    first = coop.mastodon.vote_activity(r0, created["uri"], "For")
    poisoned = coop.mastodon.vote_activity(r1, created["uri"], "Against")
    last = coop.mastodon.vote_activity(r2, created["uri"], "Abstain")
    for user, vote in ((r0, first), (r1, poisoned), (r2, last)):
        await keep(coop.node, vote, actor=user.actor)
    take_votes = voting.take_votes

    async def failing_with(node: Any, items: list[InboxItem]) -> dict[int, Exception | None]:
        if any(item.activity_id == poisoned["id"] for item in items):
            raise RuntimeError("this ballot breaks the unit it is in")
        return await take_votes(node, items)

    monkeypatch.setattr(voting, "take_votes", failing_with)

    await inbox_worker.run_once(coop.node.node)

    rows = await inbox_rows(coop.node)
    assert rows[first["id"]][0] == rows[last["id"]][0] == "done"
    assert rows[poisoned["id"]] == (
        "pending",
        1,
        "RuntimeError: this ballot breaks the unit it is in",
    )


async def test_a_handler_raising_an_unusual_error_with_an_unstorable_message_is_retried_then_failed(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = await network.add("alpha.test")

    async def broken(node: object, item: InboxItem) -> None:
        raise ZeroDivisionError("the peer said \ud800\x00")

    handle_likes(monkeypatch, broken)
    like = {"id": "https://beta.test/activities/like-1", "type": "Like", "actor": PEER}
    await keep(alpha, accept(1))
    await keep(alpha, like)
    await keep(alpha, accept(2))

    await inbox_worker.run_once(alpha.node)

    rows = await inbox_rows(alpha)
    assert rows[accept(1)["id"]][0] == rows[accept(2)["id"]][0] == "done"
    assert rows[like["id"]] == ("pending", 1, "ZeroDivisionError: the peer said \ufffd\ufffd")

    for _ in inbox.RETRY_DELAYS:
        network.clock.advance(max(inbox.RETRY_DELAYS))
        await inbox_worker.run_once(alpha.node)

    state, attempts, reason = (await inbox_rows(alpha))[like["id"]]
    assert (state, attempts) == ("failed", len(inbox.RETRY_DELAYS) + 1)
    assert reason == "ZeroDivisionError: the peer said \ufffd\ufffd"


async def test_a_failure_to_record_an_outcome_does_not_stop_the_round(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = await network.add("alpha.test")
    refuse = inbox.refuse
    calls = []

    def refuse_once(conn: Any, item: InboxItem, reason: str, *, now: Any) -> None:
        calls.append(item.activity_id)
        if len(calls) == 1:
            raise RuntimeError("the database went away for a moment")
        refuse(conn, item, reason, now=now)

    monkeypatch.setattr(inbox, "refuse", refuse_once)
    handle_likes(monkeypatch, _refusing)
    like = {"id": "https://beta.test/activities/like-1", "type": "Like", "actor": PEER}
    await keep(alpha, accept(1))
    await keep(alpha, like)
    await keep(alpha, accept(2))

    assert await inbox_worker.run_once(alpha.node) == 3

    rows = await inbox_rows(alpha)
    assert rows[accept(1)["id"]][0] == rows[accept(2)["id"]][0] == "done"
    assert rows[like["id"]][0] == "pending"
    # Its claim expires; the next round takes it again and records the refusal.
    network.clock.advance(timedelta(seconds=inbox.CLAIM_SECONDS + 1))
    assert await inbox_worker.run_once(alpha.node) == 1
    state, _, reason = (await inbox_rows(alpha))[like["id"]]
    assert state == "failed"
    assert reason == "refused: not for us"


async def _refusing(node: object, item: InboxItem) -> None:
    from federation.errors import MalformedInput

    raise MalformedInput("not for us")


async def test_an_item_whose_outcome_can_never_be_recorded_ends_failed_after_bounded_rounds(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = await network.add("alpha.test")

    def cannot_record(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("no outcome can be written for this one")

    monkeypatch.setattr(inbox, "fail", cannot_record)
    monkeypatch.setattr(inbox, "refuse", cannot_record)
    handle_likes(monkeypatch, _refusing)
    like = {"id": "https://beta.test/activities/like-1", "type": "Like", "actor": PEER}
    await keep(alpha, like)

    rounds = 0
    while (await inbox_rows(alpha))[like["id"]][0] == "pending":
        rounds += 1
        assert rounds <= len(inbox.RETRY_DELAYS) + 2, "the item stays pending forever"
        await keep(alpha, accept(rounds))
        await inbox_worker.run_once(alpha.node)
        assert (await inbox_rows(alpha))[accept(rounds)["id"]][0] == "done"
        network.clock.advance(timedelta(seconds=inbox.CLAIM_SECONDS + 1))

    state, attempts, reason = (await inbox_rows(alpha))[like["id"]]
    assert state == "failed"
    assert attempts == len(inbox.RETRY_DELAYS) + 1
    assert "no outcome was recorded" in str(reason)


async def test_one_row_that_cannot_be_finished_does_not_keep_the_others_pending(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = await network.add("alpha.test")
    for n in range(1, 4):
        await keep(alpha, accept(n))
    ids = await alpha.node.db.read(
        lambda c: dict(
            c.execute(select(inbox_activities.c.activity_id, inbox_activities.c.id)).all()
        )
    )
    bad = ids[accept(2)["id"]]
    finish = inbox.finish

    def finish_but_one(conn: Any, item_ids: list[int], *, state: str, now: Any) -> None:
        if bad in item_ids:
            raise RuntimeError("this row cannot be written")
        finish(conn, item_ids, state=state, now=now)

    monkeypatch.setattr(inbox, "finish", finish_but_one)

    await inbox_worker.run_once(alpha.node)

    rows = await inbox_rows(alpha)
    assert rows[accept(1)["id"]][0] == rows[accept(3)["id"]][0] == "done"
    assert rows[accept(2)["id"]][0] == "pending"


async def test_a_stored_row_that_no_longer_parses_is_failed_at_the_claim(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    await keep(alpha, accept(1))
    await keep(alpha, {**accept(2), "summary": "\ud800"})
    await keep(alpha, accept(3))
    await alpha.node.db.write(
        lambda c: c.execute(
            update(inbox_activities)
            .where(inbox_activities.c.activity_id == accept(3)["id"])
            .values(body='{"id": ')
        )
    )

    assert await inbox_worker.run_once(alpha.node) == 1

    rows = await inbox_rows(alpha)
    assert rows[accept(1)["id"]][0] == "done"
    state, _, reason = rows[accept(2)["id"]]
    assert state == "failed"
    assert "cannot be stored" in str(reason)
    state, _, reason = rows[accept(3)["id"]]
    assert state == "failed"
    assert str(reason).startswith("refused: invalid JSON")


async def test_a_proposal_closes_even_with_an_inbox_item_stuck_pending(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=1)
    created = await coop.propose("m0")
    stuck = coop.mastodon.vote_activity(coop.remote["r0"], created["uri"], "For")
    await keep(coop.node, stuck, actor=coop.remote["r0"].actor)
    closes_at = coop.node.node.clock.now() + timedelta(days=7)
    network.clock.advance(closes_at - network.clock.now() - timedelta(minutes=1))
    # Received in time; a worker takes it just before the close, and never records an
    # outcome (it died, or its round could not write).
    now = network.clock.now()
    [taken] = await coop.node.node.db.write(lambda c: inbox.claim(c, now=now))
    assert taken.activity_id == stuck["id"]

    async def state() -> str:
        await governance_worker.run_once(coop.node.node)
        found = await coop.node.node.db.read(
            lambda c: c.execute(select(proposals.c.state)).scalar_one()
        )
        return str(found)

    network.clock.advance(timedelta(minutes=2))
    assert await state() == "open"  # the close waits while the claim lasts
    network.clock.advance(timedelta(seconds=inbox.CLAIM_SECONDS))
    assert await state() == "closed"


async def test_the_close_waits_for_a_ballot_nobody_took_yet(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=1)
    created = await coop.propose("m0")
    queued = coop.mastodon.vote_activity(coop.remote["r0"], created["uri"], "For")
    await keep(coop.node, queued, actor=coop.remote["r0"].actor)
    network.clock.advance(timedelta(days=8))  # the inbox worker was down across the close

    await governance_worker.run_once(coop.node.node)
    shown = await coop.node.get(f"/api/v1/proposals/{created['id']}", headers=coop.local["m0"])
    assert shown.json()["state"] == "open"
    await network.settle()

    shown = await coop.node.get(f"/api/v1/proposals/{created['id']}", headers=coop.local["m0"])
    assert shown.json()["state"] == "closed"
    assert shown.json()["outcome"]["counts"]["For"] == 1


async def test_the_delivery_round_survives_one_row_whose_outcome_cannot_be_written(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = await network.add("alpha.test")
    await network.add("beta.test")
    await network.add("gamma.test")
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{alpha.base}/activities/1",
        "type": "Create",
        "actor": f"{alpha.base}/actors/coop",
        "object": {"id": f"{alpha.base}/notes/1", "type": "Note", "content": "hello"},
    }
    coop_id, now = alpha.node.peers.coop_id, network.clock.now()
    await alpha.node.db.write(
        lambda c: outbox.publish(
            c,
            activity,
            actor_id=coop_id,
            inboxes=["https://beta.test/inbox", "https://gamma.test/inbox"],
            now=now,
        )
    )
    ids = await alpha.node.db.read(
        lambda c: dict(c.execute(select(deliveries.c.inbox, deliveries.c.id)).all())
    )
    bad = ids["https://gamma.test/inbox"]
    finish = outbox.finish

    def finish_but_one(conn: Any, item_ids: list[int], **kwargs: Any) -> None:
        if bad in item_ids:
            raise RuntimeError("this row cannot be written")
        finish(conn, item_ids, **kwargs)

    monkeypatch.setattr(outbox, "finish", finish_but_one)

    assert await delivery_worker.run_once(alpha.node) == 2

    states = await alpha.node.db.read(
        lambda c: dict(c.execute(select(deliveries.c.inbox, deliveries.c.state)).all())
    )
    assert states == {"https://beta.test/inbox": "delivered", "https://gamma.test/inbox": "pending"}


async def test_the_backfill_round_survives_a_walk_that_raises(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = await network.add("alpha.test")
    coop_id, now = alpha.node.peers.coop_id, network.clock.now()
    for host in ("beta.test", "gamma.test"):
        await alpha.node.db.write(
            lambda c, host=host: backfill_store.start(
                c,
                actor_id=coop_id,
                followed=f"https://{host}/actors/coop",
                collection=f"https://{host}/offers",
                now=now,
            )
        )
    beta_walk = await alpha.node.db.read(
        lambda c: c.execute(
            select(backfills.c.id).where(backfills.c.followed == "https://beta.test/actors/coop")
        ).scalar_one()
    )
    finish = backfill._finish

    async def finish_but_beta(node: Any, walk_id: int, *args: Any) -> None:
        if walk_id == beta_walk:
            raise RuntimeError("the peer said \ud800")
        await finish(node, walk_id, *args)

    monkeypatch.setattr(backfill, "_finish", finish_but_beta)

    await backfill.run_once(alpha.node)

    walks = await alpha.node.db.read(
        lambda c: {
            r.followed: (r.state, r.last_error)
            for r in c.execute(select(backfills).order_by(backfills.c.id))
        }
    )
    assert walks["https://gamma.test/actors/coop"] == ("failed", "no longer following")
    assert walks["https://beta.test/actors/coop"] == (
        "running",
        "failure 1: RuntimeError: the peer said \ufffd",
    )
    # A walk that keeps raising is given up, not taken again forever.
    for _ in range(backfill.MAX_FAILURES):
        await backfill.run_once(alpha.node)
    beta = await alpha.node.db.read(
        lambda c: c.execute(select(backfills).where(backfills.c.id == beta_walk)).one()
    )
    assert (beta.state, beta.last_error) == (
        "failed",
        f"failure {backfill.MAX_FAILURES}: RuntimeError: the peer said \ufffd",
    )
