"""Deliveries signed RFC 9421 with Ed25519 where the host takes it, draft-cavage RSA
elsewhere, and "double knocking" between the two, over real sockets.

The peers are the recording sink (:mod:`tests.support.sink`), each loopback address a
host; its first ``scripted_hosts`` addresses answer RFC 9421 signatures as the test
says (401: a server that verifies draft-cavage only). What a peer declares is an actor
document stored as the node stores a fetched one. Every signature the sink received is
verified with the project's own verifiers and the co-op's published keys.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from federation import httpsig, rfc9421
from federation.keycache import KeyCache
from federation.mediatypes import AS2
from federation.netguard import GuardedBackend
from federation.origins import origin_of
from federation.poster import GuardedPoster, InboxSigner, Rfc9421Signer
from federation.schemes import ED25519_CAPABILITY, LEARNED_FOR, RFC9421_CAPABILITY, Scheme
from node.delivery import worker as delivery_worker
from node.runtime import Node
from node.services import outbox, remote_actors
from node.storage.database import Database
from node.storage.tables import actors, deliveries, signature_schemes
from tests.support.network import Network, TestNode
from tests.support.processes import free_port
from tests.support.sink import SinkProcess, start_sink

ED25519_KEY = "/actors/coop#ed25519-key"
RSA_KEY = "/actors/coop#main-key"

# FEP-844e's "Discovery through an actor" (https://w3id.org/fep/844e), as tootik writes
# it into its actors (dimkr/tootik, migrations/057_actorgenerator.go at
# fbf116aac72d2e50c4b35334f3ce57b0d0873fbb): RFC 9421, and RFC 9421 with Ed25519.
TOOTIK_GENERATOR = {
    "type": "Application",
    "implements": [
        {"href": RFC9421_CAPABILITY, "name": "RFC-9421: HTTP Message Signatures"},
        {"href": ED25519_CAPABILITY, "name": "RFC-9421 signatures using the Ed25519 algorithm"},
    ],
}


@pytest.fixture
def sink_factory() -> Iterator[Any]:
    started: list[SinkProcess] = []

    def start(hosts: int = 2, **script: Any) -> SinkProcess:
        sink = start_sink(free_port(), hosts, keep=True, **script)
        started.append(sink)
        return sink

    try:
        yield start
    finally:
        for sink in started:
            sink.stop()


async def sender(network: Network) -> TestNode:
    alpha = await network.add("alpha.test")
    alpha.node.poster = GuardedPoster(guard=GuardedBackend(allow_loopback=True))
    return alpha


async def declare(node: TestNode, sink: SinkProcess, n: int, **fields: Any) -> None:
    """Store the actor behind ``sink.inbox(n)`` as fetched, with ``fields`` added."""
    base = sink.inbox(n).rsplit("/inbox/", 1)[0]
    document = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/fep/844e"],
        "id": f"{base}/users/{n}",
        "type": "Person",
        "preferredUsername": f"user{n}",
        "inbox": sink.inbox(n),
        **fields,
    }
    now = node.node.clock.now()
    await node.node.db.write(lambda conn: remote_actors.store(conn, document, now=now))


async def publish(node: Node, *inboxes: str, n: int = 1, actor_id: int | None = None) -> None:
    base = node.settings.base_url
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{base}/activities/schemes-{n}",
        "type": "Create",
        "actor": f"{base}/actors/coop",
        "object": {"id": f"{base}/notes/{n}", "type": "Note", "content": "hello"},
    }
    coop_id, now = node.peers.coop_id, node.clock.now()
    await node.db.write(
        lambda c: outbox.publish(
            c, activity, actor_id=actor_id or coop_id, inboxes=list(inboxes), now=now
        )
    )


async def deliver(node: Node) -> None:
    while await delivery_worker.run_once(node):
        pass


async def states(node: Node) -> list[tuple[str, int | None, str | None]]:
    query = select(deliveries.c.state, deliveries.c.last_status, deliveries.c.last_error)
    rows = await node.db.read(lambda c: c.execute(query.order_by(deliveries.c.id)).all())
    return [(r.state, r.last_status, r.last_error) for r in rows]


async def remembered(node: Node) -> dict[str, tuple[str, int]]:
    query = select(
        signature_schemes.c.host, signature_schemes.c.scheme, signature_schemes.c.confirmed
    )
    rows = await node.db.read(lambda c: c.execute(query).all())
    return {r.host: (r.scheme, r.confirmed) for r in rows}


async def verified(network: Network, sink: SinkProcess, since: int = 0) -> list[str]:
    """The key id of every request the sink received (after the first ``since``), each
    signature verified as a receiving server verifies it, now: RFC 9421 or draft-cavage,
    with the key the signer's actor document publishes."""

    async def fetch(url: str, fresh: bool) -> dict[str, Any]:
        response = await network.http.get(url, headers={"Accept": AS2})
        document: dict[str, Any] = response.json()
        return document

    cache = KeyCache(fetch, network.clock)

    async def lookup(key_id: str) -> Any:
        return (await cache.get(key_id)).public_key

    key_ids = []
    for request in sink.requests()[since:]:
        headers = dict(request["headers"])
        lowered = {name.lower(): value for name, value in headers.items()}
        body = base64.b64decode(request["body"])
        url = "http://" + request["inbox"]
        now = network.clock.now()
        if "signature-input" in lowered:
            found = await rfc9421.verify_request("POST", url, headers, body, now, lookup)
            key_ids.append(str(found.key_id))
        else:
            path = request["inbox"].split("/", 1)[1]
            cavage = await httpsig.verify_request(
                "POST", "/" + path, "", lowered, body, now, lookup
            )
            key_ids.append(str(cavage.key_id))
    return key_ids


async def test_a_host_that_declares_ed25519_gets_deliveries_signed_with_it(
    network: Network, sink_factory: Any
) -> None:
    alpha = await sender(network)
    sink = sink_factory(hosts=1)
    await declare(alpha, sink, 0, generator=TOOTIK_GENERATOR)

    await publish(alpha.node, sink.inbox(0), sink.inbox(1))
    await deliver(alpha.node)

    stats = sink.stats()
    assert (stats["requests"], stats["rfc9421"], stats["refused"]) == (2, 2, 0)
    assert await verified(network, sink) == [alpha.base + ED25519_KEY] * 2
    assert [state for state, _, _ in await states(alpha.node)] == ["delivered"] * 2
    # The first answer confirmed what the host declared, for a month.
    assert await remembered(alpha.node) == {origin_of(sink.inbox(0)): ("rfc9421-ed25519", 1)}


@pytest.mark.parametrize(
    "declared",
    [
        # FEP-521a: an Ed25519 key for object proofs says nothing of HTTP signatures.
        {
            "assertionMethod": [
                {
                    "id": "#ed25519-key",
                    "type": "Multikey",
                    "publicKeyMultibase": "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
                }
            ]
        },
        # RFC 9421 alone is what Mastodon 4.5 verifies: with RSA keys only.
        {"generator": {"type": "Application", "implements": [{"href": RFC9421_CAPABILITY}]}},
        {},
    ],
    ids=["multikey", "rfc9421-only", "nothing"],
)
async def test_a_host_that_does_not_declare_ed25519_gets_draft_cavage_rsa(
    network: Network, sink_factory: Any, declared: dict[str, Any]
) -> None:
    alpha = await sender(network)
    sink = sink_factory(hosts=1)
    await declare(alpha, sink, 0, **declared)

    await publish(alpha.node, sink.inbox(0))
    await deliver(alpha.node)

    stats = sink.stats()
    assert (stats["requests"], stats["rfc9421"]) == (1, 0)
    assert await verified(network, sink) == [alpha.base + RSA_KEY]
    assert await remembered(alpha.node) == {origin_of(sink.inbox(0)): ("cavage-rsa", 0)}


@pytest.mark.parametrize("refusal", [400, 401])
async def test_a_refusal_of_rfc9421_is_answered_with_rsa_in_the_same_round(
    network: Network, sink_factory: Any, refusal: int
) -> None:
    alpha = await sender(network)
    # Host 0 declares Ed25519 but verifies draft-cavage only; host 1 takes both.
    sink = sink_factory(hosts=2, scripted_hosts=1, rfc9421_answer=refusal)
    await declare(alpha, sink, 0, generator=TOOTIK_GENERATOR)
    await declare(alpha, sink, 1, generator=TOOTIK_GENERATOR)
    inboxes = [sink.inbox(n) for n in range(8)]  # four on each host

    await publish(alpha.node, *inboxes)
    assert await delivery_worker.run_once(alpha.node) == 8

    # One round: every delivery made, and the wrong guess cost one POST, not one per
    # request in flight to the host.
    assert [state for state, _, _ in await states(alpha.node)] == ["delivered"] * 8
    stats = sink.stats()
    assert (stats["requests"], stats["refused"], stats["deliveries"]) == (9, 1, 8)
    keys = await verified(network, sink)
    assert keys.count(alpha.base + ED25519_KEY) == 5  # 4 to host 1, the refused one
    assert keys.count(alpha.base + RSA_KEY) == 4
    assert await remembered(alpha.node) == {
        origin_of(sink.inbox(0)): ("cavage-rsa", 1),
        origin_of(sink.inbox(1)): ("rfc9421-ed25519", 1),
    }

    # The next activity goes to host 0 signed draft-cavage at once: one POST.
    await publish(alpha.node, sink.inbox(0), n=2)
    await deliver(alpha.node)

    assert sink.stats()["requests"] == 10
    assert (await verified(network, sink))[-1] == alpha.base + RSA_KEY


async def test_what_a_host_taught_holds_after_a_restart_and_expires_after_a_month(
    network: Network, sink_factory: Any
) -> None:
    alpha = await sender(network)
    sink = sink_factory(hosts=1, scripted_hosts=1, rfc9421_answer=401)
    await declare(alpha, sink, 0, generator=TOOTIK_GENERATOR)
    await publish(alpha.node, sink.inbox(0))
    await deliver(alpha.node)
    assert sink.stats()["requests"] == 2

    # A restart: a new node on the same database, nothing of the first in memory.
    db = Database(alpha.settings.database_url, readers=1)
    db.writer.start()
    try:
        restarted = Node(settings=alpha.settings, db=db, http=network.http, clock=network.clock)
        restarted.poster = alpha.node.poster

        network.clock.advance(LEARNED_FOR - timedelta(hours=1))
        await publish(restarted, sink.inbox(0), n=2)
        await deliver(restarted)
        assert sink.stats()["requests"] == 3  # straight to draft-cavage

        # A month on, the host is tried with RFC 9421 again: it may have upgraded.
        network.clock.advance(timedelta(hours=2))
        await publish(restarted, sink.inbox(0), n=3)
        await deliver(restarted)
        stats = sink.stats()
    finally:
        db.close()
    assert (stats["requests"], stats["refused"], stats["deliveries"]) == (5, 2, 3)
    assert await verified(network, sink, since=3) == [
        alpha.base + ED25519_KEY,
        alpha.base + RSA_KEY,
    ]


async def test_a_5xx_to_rfc9421_is_no_reason_to_switch(network: Network, sink_factory: Any) -> None:
    alpha = await sender(network)
    sink = sink_factory(hosts=1, scripted_hosts=1, rfc9421_answer=503)
    await declare(alpha, sink, 0, generator=TOOTIK_GENERATOR)

    await publish(alpha.node, sink.inbox(0))
    await deliver(alpha.node)

    assert sink.stats()["requests"] == 1
    [(state, status, _)] = await states(alpha.node)
    assert (state, status) == ("pending", 503)
    assert await remembered(alpha.node) == {origin_of(sink.inbox(0)): ("rfc9421-ed25519", 0)}

    # The retry is signed RFC 9421 again.
    network.clock.advance(timedelta(minutes=2))
    await deliver(alpha.node)
    assert (sink.stats()["requests"], sink.stats()["rfc9421"]) == (2, 2)


async def test_a_401_to_both_schemes_is_an_ordinary_failure(
    network: Network, sink_factory: Any
) -> None:
    alpha = await sender(network)
    sink = sink_factory(hosts=1, scripted_hosts=1, rfc9421_answer=401, cavage_answer=401)
    await declare(alpha, sink, 0, generator=TOOTIK_GENERATOR)

    await publish(alpha.node, sink.inbox(0))
    await deliver(alpha.node)

    assert (sink.stats()["requests"], sink.stats()["rfc9421"]) == (2, 1)
    [(state, status, error)] = await states(alpha.node)
    assert (state, status) == ("pending", 401)
    assert "after HTTP 401 to RFC 9421" in str(error)
    # Nothing learned: a 401 to both says the key is not trusted yet, not which scheme.
    assert await remembered(alpha.node) == {origin_of(sink.inbox(0)): ("rfc9421-ed25519", 0)}


async def test_a_members_delivery_falls_back_to_an_rsa_key_made_for_it(
    network: Network, sink_factory: Any
) -> None:
    from tests.support.coops import add_member

    alpha = await sender(network)
    sink = sink_factory(hosts=1, scripted_hosts=1, rfc9421_answer=401)
    await declare(alpha, sink, 0, generator=TOOTIK_GENERATOR)
    await add_member(alpha, username="ana")
    ana = await alpha.node.db.read(
        lambda c: c.execute(select(actors.c.id).where(actors.c.username == "ana")).scalar_one()
    )

    await publish(alpha.node, sink.inbox(0), actor_id=ana)
    await deliver(alpha.node)

    assert (sink.stats()["requests"], sink.stats()["deliveries"]) == (2, 1)
    assert await verified(network, sink) == [
        alpha.base + "/actors/ana#ed25519-key",
        alpha.base + "/actors/ana#main-key",
    ]


async def test_sends_that_start_together_share_one_load_of_their_signer(network: Network) -> None:
    # A round starts dozens of sends at once: one reads the keys, the others wait for it.
    alpha = await network.add("alpha.test")
    peers, coop = alpha.node.peers, alpha.node.peers.coop_id
    signers = await asyncio.gather(
        *(peers.member_signer(coop, Scheme.RFC9421_ED25519) for _ in range(20))
    )
    assert isinstance(signers[0], Rfc9421Signer)
    assert all(signer is signers[0] for signer in signers)
    # One that gives up waiting does not take the load from the others.
    rsa = [asyncio.ensure_future(peers.member_signer(coop, Scheme.CAVAGE_RSA)) for _ in range(2)]
    await asyncio.sleep(0)
    rsa[0].cancel()
    assert isinstance(await rsa[1], InboxSigner)
    assert await peers.member_signer(coop, Scheme.CAVAGE_RSA) is await rsa[1]
