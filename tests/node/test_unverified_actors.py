"""Nothing fetched to check a signature is stored before a signature made with its key
verifies: made-up actors with bad signatures cost no rows and bounded memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from federation import httpsig, keys
from federation.clock import ManualClock
from node.inbox.unverified_actors import UnverifiedActors
from node.storage.tables import remote_actors
from tests.support.network import Network, TestNode

AS2 = "application/activity+json"
PUBLISHED = keys.load_own_private_key(keys.generate_rsa_private_pem())
OTHER = keys.load_own_private_key(keys.generate_rsa_private_pem())


def fake_actor(host: str) -> dict[str, Any]:
    actor = f"https://{host}/actor"
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor,
        "type": "Person",
        "preferredUsername": "x",
        "inbox": f"{actor}/inbox",
        # Padding, as a hostile server would send: every stored copy would cost this much.
        "summary": "x" * 20_000,
        "publicKey": {
            "id": f"{actor}#key",
            "owner": actor,
            "publicKeyPem": keys.public_pem(PUBLISHED),
        },
    }


async def post_as(network: Network, host: str, receiver: TestNode, signing_key: Any) -> int:
    actor = f"https://{host}/actor"
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"https://{host}/activities/1",
        "type": "Create",
        "actor": actor,
        "object": {"id": f"https://{host}/notes/1", "type": "Note", "content": "hi"},
    }
    auth = httpsig.SignatureAuth(
        key_id=f"{actor}#key", private_key=signing_key, clock=network.clock
    )
    response = await network.http.post(
        receiver.base + "/inbox",
        content=json.dumps(activity).encode(),
        headers={"Content-Type": AS2},
        auth=auth,
    )
    return response.status_code


async def stored_actors(node: TestNode) -> list[str]:
    query = select(remote_actors.c.uri).order_by(remote_actors.c.uri)
    return list(await node.node.db.read(lambda c: c.execute(query).scalars().all()))


async def test_bad_signatures_from_made_up_actors_store_nothing(network: Network) -> None:
    alpha = await network.add("alpha.test")
    # Bounds smaller than the flood (the defaults are 1,000 documents and 8 MiB).
    held = UnverifiedActors(network.clock, max_entries=25, max_bytes=400_000)
    alpha.node.peers.unverified = held
    before = await stored_actors(alpha)
    hosts = [f"fake{n}.test" for n in range(40)]
    for host in hosts:
        network.add_static(host, {"/actor": fake_actor(host)})

    statuses = [await post_as(network, host, alpha, OTHER) for host in hosts]

    assert set(statuses) == {401}
    assert await stored_actors(alpha) == before
    assert 0 < len(held) <= 25
    assert held.bytes <= 400_000
    # Held documents expire: after a while nothing of the flood is left.
    network.clock.advance(timedelta(minutes=11))
    assert held.get("https://fake39.test/actor") is None
    assert len(held) == 0


async def test_a_good_signature_stores_its_actor(network: Network) -> None:
    alpha = await network.add("alpha.test")
    network.add_static("honest.test", {"/actor": fake_actor("honest.test")})

    status = await post_as(network, "honest.test", alpha, PUBLISHED)

    assert status == 202
    assert "https://honest.test/actor" in await stored_actors(alpha)
    assert len(alpha.node.peers.unverified) == 0


async def test_a_good_signature_after_bad_ones_stores_the_actor_without_a_new_fetch(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    network.add_static("mixed.test", {"/actor": fake_actor("mixed.test")})
    assert await post_as(network, "mixed.test", alpha, OTHER) == 401
    fetches = len(network.router.log)

    assert await post_as(network, "mixed.test", alpha, PUBLISHED) == 202

    assert "https://mixed.test/actor" in await stored_actors(alpha)
    assert [url for _, url in network.router.log[fetches:]] == ["https://alpha.test/inbox"]


# --- the holding pen itself -------------------------------------------------------------


def document(n: int, size: int = 100) -> dict[str, Any]:
    return {"id": f"https://a.test/{n}", "inbox": "https://a.test/inbox", "pad": "x" * size}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2027, 1, 1, tzinfo=UTC))


def test_the_oldest_documents_go_first_past_the_count(clock: ManualClock) -> None:
    held = UnverifiedActors(clock, max_entries=3)

    for n in range(5):
        held.hold(document(n))

    assert len(held) == 3
    assert held.get(document(0)["id"]) is None
    assert held.get(document(4)["id"]) is not None


def test_the_bytes_held_stay_under_the_budget(clock: ManualClock) -> None:
    held = UnverifiedActors(clock, max_bytes=5_000)

    for n in range(10):
        held.hold(document(n, size=1_000))

    assert 0 < held.bytes <= 5_000
    assert len(held) == 4


def test_a_document_larger_than_the_budget_is_not_held(clock: ManualClock) -> None:
    held = UnverifiedActors(clock, max_bytes=5_000)
    held.hold(document(1))

    held.hold(document(2, size=10_000))

    assert held.get(document(2)["id"]) is None
    assert held.get(document(1)["id"]) is not None


def test_a_taken_document_is_no_longer_held(clock: ManualClock) -> None:
    held = UnverifiedActors(clock)
    held.hold(document(1))

    assert held.take(document(1)["id"]) == document(1)
    assert held.take(document(1)["id"]) is None
    assert held.bytes == 0


def test_held_documents_expire(clock: ManualClock) -> None:
    held = UnverifiedActors(clock, ttl=timedelta(minutes=10))
    held.hold(document(1))
    clock.advance(timedelta(minutes=5))
    held.hold(document(2))

    clock.advance(timedelta(minutes=6))

    assert held.get(document(1)["id"]) is None
    assert held.get(document(2)["id"]) is not None
    assert len(held) == 1
