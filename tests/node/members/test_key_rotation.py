"""Rotating a local actor's keys: the rows replaced in one unit of work, the actor
document showing the new keys under the same ids, the signers of a running node loaded
again, and the peers that follow verifying what is signed with the new keys, not
with the old ones. On both engines, through real apps."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from federation import httpsig, keys
from federation.mediatypes import AS2
from federation.poster import Payload, Rfc9421Signer
from node.delivery import worker as delivery_worker
from node.errors import NotFound
from node.follows import actions
from node.members import actions as members
from node.members import keys as actor_keys
from node.services import identity, remote_actors
from node.storage.tables import actor_keys as actor_keys_table
from node.storage.tables import deliveries, inbox_activities, outbox_activities
from tests.support.network import Network, TestNode


async def actor_document(node: TestNode, username: str = "coop") -> dict[str, Any]:
    response = await node.get(f"/actors/{username}", headers={"Accept": AS2})
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def delivery_states(node: TestNode) -> list[str]:
    query = select(deliveries.c.state).order_by(deliveries.c.id)
    return list(await node.node.db.read(lambda c: c.execute(query).scalars().all()))


async def handled_updates(node: TestNode) -> list[str]:
    query = select(inbox_activities.c.state).where(inbox_activities.c.type == "Update")
    return list(await node.node.db.read(lambda c: c.execute(query).scalars().all()))


async def test_rotating_replaces_both_keys_and_moves_the_generation(network: Network) -> None:
    # A new node's keys are the table's highest rows: SQLite would give their ids to
    # new rows inserted after deleting them, and the generation would not move.
    alpha = await network.add("alpha.test")
    db = alpha.node.db
    before = await db.read(lambda c: identity.get_actor(c, "coop"))
    generation = await db.read(identity.key_generation)
    network.clock.advance(timedelta(minutes=1))
    now = network.clock.now()
    rsa_pem, ed_pem = keys.generate_rsa_private_pem(), keys.generate_ed25519_private_pem()

    await db.write(
        lambda c: identity.rotate_keys(
            c, before.actor.id, now=now, rsa_private_pem=rsa_pem, ed25519_private_pem=ed_pem
        )
    )

    after = await db.read(lambda c: identity.get_actor(c, "coop"))
    rows = await db.read(
        lambda c: (
            c.execute(
                select(actor_keys_table.c.kind).where(
                    actor_keys_table.c.actor_id == before.actor.id
                )
            )
            .scalars()
            .all()
        )
    )
    assert (after.rsa_private_pem, after.ed25519_private_pem) == (rsa_pem, ed_pem)
    assert sorted(rows) == ["ed25519", "rsa"]
    assert await db.read(identity.key_generation) > generation
    assert after.actor.updated_at == now > before.actor.updated_at


async def test_a_rotation_is_published_and_verifies_at_a_follower(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await actions.follow(beta.node, "coop@alpha.test")
    await network.settle()
    # beta holds alpha's Ed25519 key from the Accept it verified (RFC 9421 between
    # two nodes of this kind).
    key_id = "https://alpha.test/actors/coop#main-key"
    multikey_id = "https://alpha.test/actors/coop#ed25519-key"
    assert beta.node.peers.keys.cached(multikey_id) is not None
    old_document = await actor_document(alpha)
    old = await alpha.node.db.read(lambda c: identity.get_actor(c, "coop"))
    assert old.rsa_private_pem is not None
    assert old.ed25519_private_pem is not None
    old_signer = alpha.node.peers.inbox_signer

    rotation = await actor_keys.rotate(alpha.node)

    document = await actor_document(alpha)
    assert rotation.inboxes == 1
    assert rotation.old_fingerprints[0] != rotation.new_fingerprints[0]
    assert rotation.old_fingerprints[1] != rotation.new_fingerprints[1]
    assert document["publicKey"]["id"] == old_document["publicKey"]["id"] == key_id
    assert document["publicKey"]["publicKeyPem"] != old_document["publicKey"]["publicKeyPem"]
    new_method, old_method = document["assertionMethod"][0], old_document["assertionMethod"][0]
    assert new_method["id"] == old_method["id"]
    assert new_method["publicKeyMultibase"] != old_method["publicKeyMultibase"]
    assert alpha.node.peers.inbox_signer is not old_signer

    # The Update, signed with the new key, fails with beta's cached key; beta fetches
    # the key again, verifies, and stores the new actor document.
    fetches = beta.node.peers.keys.fetches
    refetches = beta.node.peers.keys.refetches_remembered
    await network.settle()

    assert await delivery_states(alpha) == ["delivered", "delivered"]  # Accept, Update
    assert await handled_updates(beta) == ["done"]
    # One fetch, the refetch after the failure (handling the Update then forgot the key).
    assert beta.node.peers.keys.fetches == fetches + 1
    assert beta.node.peers.keys.refetches_remembered == refetches + 1
    stored = await beta.node.db.read(
        lambda c: remote_actors.find(c, "https://alpha.test/actors/coop")
    )
    assert stored is not None
    assert stored[0]["publicKey"]["publicKeyPem"] == document["publicKey"]["publicKeyPem"]

    # The next delivery verifies as well.
    await actions.update_profile(alpha.node, name="Alpha renamed", summary=None)
    await network.settle()
    assert await delivery_states(alpha) == ["delivered"] * 3

    # Requests signed with the old keys are refused, under either scheme.
    def forged(n: int) -> bytes:
        return json.dumps(
            {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": f"https://alpha.test/activities/forged-{n}",
                "type": "Update",
                "actor": "https://alpha.test/actors/coop",
                "object": document | {"name": "Forged"},
            }
        ).encode()

    old_ed25519 = keys.load_own_private_key(old.ed25519_private_pem)
    signed = Rfc9421Signer(multikey_id, old_ed25519, network.clock).sign(
        "https://beta.test/inbox", Payload.of(forged(1), AS2)
    )
    refused = await network.http.post(
        str(signed.url), content=signed.content, headers=signed.headers
    )
    assert refused.status_code == 401, refused.text
    old_rsa = keys.load_own_private_key(old.rsa_private_pem)
    refused = await network.http.post(
        "https://beta.test/inbox",
        content=forged(2),
        headers={"Content-Type": AS2},
        auth=httpsig.SignatureAuth(key_id, old_rsa, network.clock),
    )
    assert refused.status_code == 401, refused.text


async def test_a_rotation_made_by_another_process_is_picked_up_at_the_next_round(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await actions.follow(beta.node, "coop@alpha.test")
    await network.settle()
    old_signer = alpha.node.peers.inbox_signer
    coop_id = alpha.node.peers.coop_id
    now = network.clock.now()
    rsa_pem, ed_pem = keys.generate_rsa_private_pem(), keys.generate_ed25519_private_pem()

    # Written as `coopnode keys rotate` in another process would: this process's
    # signers do not know yet.
    await alpha.node.db.write(
        lambda c: identity.rotate_keys(
            c, coop_id, now=now, rsa_private_pem=rsa_pem, ed25519_private_pem=ed_pem
        )
    )
    assert alpha.node.peers.inbox_signer is old_signer
    await actions.update_profile(alpha.node, name="Alpha renamed", summary=None)
    assert await delivery_worker.run_once(alpha.node) == 1

    assert alpha.node.peers.inbox_signer is not old_signer
    assert await delivery_states(alpha) == ["delivered", "delivered"]
    await network.settle()
    assert await handled_updates(beta) == ["done"]
    assert not await alpha.node.peers.refresh_keys()


async def test_a_members_rotation_goes_to_the_coops_followers(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await members.add_member(alpha.node, {"username": "ana", "password": "a long passphrase"})
    await actions.follow(beta.node, "coop@alpha.test")
    await network.settle()
    coop_before = await actor_document(alpha)
    old_document = await actor_document(alpha, "ana")

    rotation = await actor_keys.rotate(alpha.node, "ana")
    await network.settle()

    document = await actor_document(alpha, "ana")
    assert rotation.actor == "https://alpha.test/actors/ana"
    assert rotation.inboxes == 1
    assert document["assertionMethod"] != old_document["assertionMethod"]
    assert document["publicKey"]["id"] == "https://alpha.test/actors/ana#main-key"
    assert (await actor_document(alpha))["publicKey"] == coop_before["publicKey"]
    actors = await alpha.node.db.read(
        lambda c: c.execute(
            select(outbox_activities.c.type, outbox_activities.c.actor_id).order_by(
                outbox_activities.c.id
            )
        ).all()
    )
    assert actors[-1].type == "Update"
    assert actors[-1].actor_id != alpha.node.peers.coop_id
    assert await delivery_states(alpha) == ["delivered", "delivered"]
    assert await handled_updates(beta) == ["done"]


async def test_only_a_local_actor_has_its_keys_rotated(network: Network) -> None:
    alpha = await network.add("alpha.test")

    with pytest.raises(NotFound, match="no local actor @nobody"):
        await actor_keys.rotate(alpha.node, "nobody")
