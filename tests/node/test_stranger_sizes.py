"""What a stranger can make the node keep is bounded in size: an actor's document is
kept trimmed to the fields the node reads, under a cap, and an activity no handler
wants keeps its body only when small."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from federation import httpsig, keys
from federation.errors import InvalidDocument
from federation.jsonld import COOP_CONTEXT_URL
from node.services import inbox, remote_actors
from node.services.setup import migrate_database
from node.storage import tables
from node.storage.database import Database
from tests.support.network import Network, TestNode

AS2 = "application/activity+json"
KEY = keys.load_own_private_key(keys.generate_rsa_private_pem())
PADDING = 900_000
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
# The most one actor's stored document may take.
CAP = 64 * 1024


def actor_document(host: str, **fields: Any) -> dict[str, Any]:
    actor = f"https://{host}/actor"
    document = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor,
        "type": "Group",
        "preferredUsername": "coop",
        "name": "A co-op",
        "inbox": f"{actor}/inbox",
        "outbox": f"{actor}/outbox",
        "endpoints": {"sharedInbox": f"https://{host}/inbox"},
        "members": f"{actor}/members",
        "offers": f"{actor}/offers",
        "implements": [{"name": "coopnode co-op vocabulary", "href": COOP_CONTEXT_URL}],
        "publicKey": {"id": f"{actor}#key", "owner": actor, "publicKeyPem": keys.public_pem(KEY)},
    }
    document.update(fields)
    return document


async def post_signed(network: Network, receiver: TestNode, activity: dict[str, Any]) -> int:
    actor = str(activity["actor"])
    auth = httpsig.SignatureAuth(key_id=f"{actor}#key", private_key=KEY, clock=network.clock)
    response = await network.http.post(
        receiver.base + "/inbox",
        content=json.dumps(activity).encode(),
        headers={"Content-Type": AS2},
        auth=auth,
    )
    return response.status_code


def note(host: str, n: int = 1) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"https://{host}/activities/{n}",
        "type": "Create",
        "actor": f"https://{host}/actor",
        "object": {"id": f"https://{host}/notes/{n}", "type": "Note", "content": "hi"},
    }


async def stored_document(node: TestNode, uri: str) -> str:
    query = select(tables.remote_actors.c.document).where(tables.remote_actors.c.uri == uri)
    return str(await node.node.db.read(lambda c: c.execute(query).scalar_one()))


async def stored_body(node: TestNode, activity_id: str) -> tuple[str, str]:
    query = select(tables.inbox_activities.c.state, tables.inbox_activities.c.body).where(
        tables.inbox_activities.c.activity_id == activity_id
    )
    row = await node.node.db.read(lambda c: c.execute(query).one())
    return row.state, row.body


# --- actors ----------------------------------------------------------------------------


async def test_a_verified_actor_padded_to_900_kb_is_stored_trimmed(network: Network) -> None:
    alpha = await network.add("alpha.test")
    document = actor_document("padded.test", attachment=[{"value": "x" * PADDING}])
    network.add_static("padded.test", {"/actor": document})

    assert await post_signed(network, alpha, note("padded.test")) == 202

    text = await stored_document(alpha, document["id"])
    assert len(text.encode()) <= CAP
    stored = json.loads(text)
    assert "attachment" not in stored
    for field in ("id", "type", "inbox", "endpoints", "publicKey", "members", "offers"):
        assert stored[field] == document[field]
    assert stored["implements"] == document["implements"]


async def test_an_actor_too_big_even_trimmed_keeps_what_delivery_and_signatures_need(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    document = actor_document(
        "huge.test", summary="s" * 50_000, icon={"url": "https://huge.test/i", "pad": "x" * PADDING}
    )
    network.add_static("huge.test", {"/actor": document})
    assert await post_signed(network, alpha, note("huge.test")) == 202

    text = await stored_document(alpha, document["id"])
    assert len(text.encode()) <= CAP
    stored = json.loads(text)
    assert "icon" not in stored
    assert remote_actors.delivery_inbox(stored) == "https://huge.test/inbox"
    assert stored["publicKey"] == [document["publicKey"]]
    assert stored["preferredUsername"] == "coop"
    assert stored["members"] == document["members"]
    speaks = await alpha.node.db.read(
        lambda c: remote_actors.speaks_coopnode(c, "https://huge.test/inbox")
    )
    assert speaks
    # Its key still verifies from the stored copy, without a new fetch.
    alpha.node.peers.keys.forget_actor(document["id"])
    fetches = len(network.router.log)
    assert await post_signed(network, alpha, note("huge.test", 2)) == 202
    assert [url for _, url in network.router.log[fetches:]] == ["https://alpha.test/inbox"]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    migrate_database(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        database.close()


def test_hostile_shapes_in_a_huge_actor_are_stored_under_the_cap(db: Database) -> None:
    actor = "https://odd.test/actor"
    document = {
        "id": actor,
        "type": ["Group", "x" * 1000],
        "inbox": f"{actor}/inbox",
        "endpoints": ["https://odd.test/inbox"],
        "name": 12,
        "summary": {"x": "y" * PADDING},
        # Many keys, each as big as a stranger likes: only bounded ones are kept.
        "publicKey": [
            {"id": f"{actor}#k{n}", "owner": actor, "publicKeyPem": "p" * ((n + 1) * 1_000)}
            for n in range(40)
        ],
        "assertionMethod": "not a list",
        "implements": {"href": COOP_CONTEXT_URL, "name": "\u00e9" * 100_000},
    }

    db.write_sync(lambda c: remote_actors.store(c, document, now=NOW))

    found = db.read_sync(lambda c: remote_actors.find(c, actor))
    assert found is not None
    stored, _ = found
    assert len(json.dumps(stored, ensure_ascii=False, separators=(",", ":")).encode()) <= (CAP)
    assert remote_actors.delivery_inbox(stored) == f"{actor}/inbox"
    assert stored["publicKey"][0] == document["publicKey"][0]
    assert [len(k["publicKeyPem"]) for k in stored["publicKey"]] == [
        (n + 1) * 1_000 for n in range(8)
    ]
    assert stored["implements"] == [{"href": COOP_CONTEXT_URL}]
    assert "name" not in stored
    assert "type" not in stored


def test_an_actor_whose_id_is_longer_than_its_column_is_not_stored(db: Database) -> None:
    actor = "https://long.test/" + "a" * 3000
    document = {"id": actor, "inbox": "https://long.test/inbox"}

    assert not remote_actors.is_actor_document(document)
    with pytest.raises(InvalidDocument):
        db.write_sync(lambda c: remote_actors.store(c, document, now=NOW))


# --- inbox bodies ----------------------------------------------------------------------


async def test_an_ignored_activity_of_900_kb_is_kept_as_a_stub(network: Network) -> None:
    alpha = await network.add("alpha.test")
    network.add_static("liker.test", {"/actor": actor_document("liker.test")})
    like = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://liker.test/likes/1",
        "type": "Like",
        "actor": "https://liker.test/actor",
        "object": "https://alpha.test/offers/1",
        "padding": "x" * PADDING,
    }

    assert await post_signed(network, alpha, like) == 202

    state, body = await stored_body(alpha, like["id"])
    assert state == "ignored"
    assert len(body.encode()) <= 1024
    stub = json.loads(body)
    assert (stub["id"], stub["type"], stub["actor"]) == (like["id"], "Like", like["actor"])
    assert "16384 bytes" in stub["omitted"]


async def test_a_small_ignored_activity_keeps_its_body(network: Network) -> None:
    alpha = await network.add("alpha.test")
    network.add_static("liker.test", {"/actor": actor_document("liker.test")})
    like = {
        "id": "https://liker.test/likes/2",
        "type": "Like",
        "actor": "https://liker.test/actor",
        "object": "https://alpha.test/offers/1",
        "padding": "x" * 10_000,
    }

    assert await post_signed(network, alpha, like) == 202

    state, body = await stored_body(alpha, like["id"])
    assert state == "ignored"
    assert json.loads(body) == like


async def test_a_pending_activity_of_900_kb_keeps_its_body(network: Network) -> None:
    alpha = await network.add("alpha.test")
    network.add_static("peer.test", {"/actor": actor_document("peer.test")})
    accept = {
        "id": "https://peer.test/accepts/1",
        "type": "Accept",
        "actor": "https://peer.test/actor",
        "object": "https://alpha.test/follows/1",
        "padding": "x" * PADDING,
    }

    assert await post_signed(network, alpha, accept) == 202

    state, body = await stored_body(alpha, accept["id"])
    assert state == "pending"
    assert json.loads(body) == accept


def test_an_ignored_activity_without_its_text_is_measured_as_encoded() -> None:
    activity = {"id": "https://p.test/a/1", "type": ["Like"], "pad": "\u00e9" * 9_000}

    values = inbox.record_values(activity, actor="https://p.test/u", now=NOW, state="ignored")

    # 9,000 characters, 18,000 bytes: over the limit.
    assert json.loads(values["body"])["type"] == "['Like']"
    assert "pad" not in json.loads(values["body"])
