"""Mutated activities, really signed, into a real node's inbox: never a 5xx; the
inbox worker's round never raises; and once the clock has passed every retry, nothing
is left pending."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from federation import httpsig
from node.inbox import worker as inbox_worker
from node.services.inbox import RETRY_DELAYS
from node.storage.tables import inbox_activities
from tests.fuzz.hostile import FUZZ_SETTINGS, dumps, mutated
from tests.fuzz.tally import TALLY, described, last_frames
from tests.fuzz.world import World

SUITE = "inbox"
FRESH = itertools.count()


def fresh(world: World, name: str) -> dict[str, Any]:
    """The template with new ids, so that each case is handled, not skipped as a replay."""
    activity = copy.deepcopy(world.templates[name])
    n = next(FRESH)
    if name == "vote":
        voter = world.alpha.remote["r0"].actor
        activity["id"] = f"{voter}#votes/fuzz{n}/activity"
        activity["object"]["id"] = f"{voter}#votes/fuzz{n}"
    else:
        activity["id"] = f"{world.beta.node.base}/activities/fuzz{n}"
    return activity


def _auth(world: World, name: str) -> httpsig.SignatureAuth:
    if world.signers[name] == "beta":
        return world.beta.node.node.peers.signer
    user = world.alpha.remote["r0"]
    return httpsig.SignatureAuth(f"{user.actor}#main-key", user.key, world.network.clock)


async def _pending(world: World) -> tuple[int, Any]:
    query = select(func.count(), func.min(inbox_activities.c.next_attempt_at)).where(
        inbox_activities.c.state == "pending"
    )
    row = await world.target.node.db.read(lambda c: c.execute(query).one())
    return int(row[0]), row[1]


async def drain(world: World, sample: str) -> None:
    """Run the inbox worker's rounds, moving the clock to each retry, until nothing is
    pending; a round that raises or an item still pending after its last retry is a
    failure (and is cleared, so the next case starts clean)."""
    node = world.target.node
    for _ in range(len(RETRY_DELAYS) + 2):
        try:
            await inbox_worker.run_once(node)
        except Exception as exc:
            await _clear(world)
            TALLY.failure(
                world.suite(SUITE), "raising round", last_frames(exc), described(exc, sample)
            )
            return
        count, due = await _pending(world)
        if count == 0:
            return
        claimed_for = world.network.clock.now()
        world.network.clock.set(max(due, claimed_for))
        world.network.clock.advance(1)
    await _clear(world)
    TALLY.failure(world.suite(SUITE), "left pending", "after every retry", sample)


async def _clear(world: World) -> None:
    await world.target.node.db.write(
        lambda c: c.execute(
            update(inbox_activities)
            .where(inbox_activities.c.state == "pending")
            .values(state="failed", last_error="cleared by the fuzzing suite")
        )
    )


@FUZZ_SETTINGS
@given(data=st.data())
async def test_mutated_signed_activities_never_break_the_inbox(world: World, data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(world.templates)), label="template")
    activity = data.draw(mutated(fresh(world, name)), label="activity")
    path = data.draw(st.sampled_from(["/inbox", "/actors/coop/inbox"]), label="inbox")
    body = dumps(activity)
    sample = f"{name} -> {path}: {body[:1500]!r}"
    TALLY.case(world.suite(SUITE))

    try:
        response = await world.network.http.post(
            world.target.base + path,
            content=body,
            headers={"Content-Type": "application/activity+json"},
            auth=_auth(world, name),
        )
    except Exception as exc:  # the app raised: a 500 behind a real server
        TALLY.failure(world.suite(SUITE), "5xx", last_frames(exc), described(exc, sample))
        await drain(world, sample)
        return

    TALLY.answered(world.suite(SUITE), response.status_code)
    if response.status_code >= 500:
        TALLY.failure(
            world.suite(SUITE), "5xx", f"{response.status_code} {response.text[:200]}", sample
        )
    await drain(world, sample)


async def test_the_unmutated_templates_are_taken_in(world: World) -> None:
    """The templates are real: sent as they are, each is accepted and handled."""
    for name in sorted(world.templates):
        activity = fresh(world, name)
        response = await world.network.http.post(
            world.target.base + "/inbox",
            content=json.dumps(activity).encode(),
            headers={"Content-Type": "application/activity+json"},
            auth=_auth(world, name),
        )
        assert response.status_code == 202, (name, response.text)
    await drain(world, "templates")
    states = await world.target.node.db.read(
        lambda c: c.execute(
            select(
                inbox_activities.c.type, inbox_activities.c.state, inbox_activities.c.last_error
            ).where(inbox_activities.c.activity_id.like("%fuzz%"))
        ).all()
    )
    assert all(row.state in ("done", "ignored") for row in states), states
