"""The worker's round dispatches on (type, kind): what no feature wants is ignored even
when found pending, a ballot on nothing of ours is done, and a kind's test that fails
on one activity fails that activity alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from node.inbox import handlers
from node.inbox import worker as inbox_worker
from node.inbox.feature import Kind
from node.services import inbox
from node.storage.tables import inbox_activities
from tests.support.network import Network, TestNode

PEER = "https://beta.test/actors/coop"


async def keep(node: TestNode, activity: dict[str, Any]) -> None:
    """Store ``activity`` pending, as an older node (or another rule) might have."""
    now = node.node.clock.now()
    body = json.dumps(activity)
    await node.node.db.write(lambda c: inbox.record(c, activity, actor=PEER, now=now, body=body))


async def states(node: TestNode) -> dict[str, tuple[str, str | None]]:
    query = select(
        inbox_activities.c.activity_id, inbox_activities.c.state, inbox_activities.c.last_error
    )
    found = await node.node.db.read(lambda c: c.execute(query).all())
    return {r.activity_id: (r.state, r.last_error) for r in found}


def create(n: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"https://beta.test/activities/{n}",
        "type": "Create",
        "actor": PEER,
        "object": obj,
    }


async def test_pending_activities_no_feature_wants_are_ignored(network: Network) -> None:
    alpha = await network.add("alpha.test")
    note = create(1, {"id": "https://beta.test/notes/1", "type": "Note", "content": "<p>Hi</p>"})
    like = {"id": "https://beta.test/activities/2", "type": "Like", "actor": PEER, "object": PEER}
    await keep(alpha, note)
    await keep(alpha, like)

    assert await inbox_worker.run_once(alpha.node) == 2

    assert await states(alpha) == {note["id"]: ("ignored", None), like["id"]: ("ignored", None)}


async def test_a_ballot_on_no_proposal_of_ours_is_done(network: Network) -> None:
    alpha = await network.add("alpha.test")
    elsewhere = create(
        1, {"type": "Note", "name": "For", "inReplyTo": "https://gamma.test/proposals/1"}
    )
    unknown = create(
        2, {"type": "Note", "name": "For", "inReplyTo": "https://alpha.test/proposals/none"}
    )
    await keep(alpha, elsewhere)
    await keep(alpha, unknown)

    await inbox_worker.run_once(alpha.node)

    assert await states(alpha) == {
        elsewhere["id"]: ("done", None),
        unknown["id"]: ("done", None),
    }


async def test_a_kind_whose_test_fails_fails_that_activity_alone(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = await network.add("alpha.test")

    def breaks(activity: dict[str, Any], actor: str, urls: object) -> bool:
        if activity["id"].endswith("/1"):
            raise RuntimeError("this test cannot read it")
        return False

    kinds = handlers.KINDS["Create"]
    monkeypatch.setitem(handlers.KINDS, "Create", (Kind("Create", "broken", breaks), *kinds))
    first = create(1, {"id": "https://beta.test/notes/1", "type": "Note"})
    second = create(2, {"id": "https://beta.test/notes/2", "type": "Note"})
    await keep(alpha, first)
    await keep(alpha, second)

    await inbox_worker.run_once(alpha.node)

    found = await states(alpha)
    assert found[first["id"]] == ("pending", "RuntimeError: this test cannot read it")
    assert found[second["id"]] == ("ignored", None)
