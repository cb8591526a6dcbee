"""Activities as other fediverse servers publish them, replayed through the inbox.

``tests/data/peers/manifest.json`` lists each payload, where it comes from, what must
change to replay it (``rehome``, ``rewrite``: ids re-homed to https and, where the
payload answers us, pointed at our co-op or proposal) and the outcome the node owes it:
stored and handled (``done``, with its effects), stored and ignored (and why: no handler
for the type, or nothing in it for this node), or refused with a reason. Each payload is
POSTed signed, as its server would sign it, by a peer that serves its actor with a
test key in place of the published one; then one round of the inbox worker runs. Never
a 5xx, never an error in the round, never an activity left pending.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import select
from sqlalchemy.engine import Connection

from federation import httpsig, keys, rfc9421
from node.follows import actions
from node.follows import store as follows
from node.inbox import handlers
from node.inbox import worker as inbox_worker
from node.inbox.classify import classify
from node.storage import tables
from node.urls import Urls
from tests.support.coops import add_member, token_for
from tests.support.network import Network, TestNode

PEERS = Path(__file__).parents[1] / "data" / "peers"
MANIFEST: dict[str, Any] = json.loads((PEERS / "manifest.json").read_text(encoding="utf-8"))
PAYLOADS: dict[str, dict[str, Any]] = {entry["name"]: entry for entry in MANIFEST["payloads"]}
AS2 = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"

# One key pair stands for every peer's: the published keys' private halves are the
# peers' own. A served document has its public keys replaced by these.
RSA_KEY = keys.load_own_private_key(keys.generate_rsa_private_pem())
ED_KEY = keys.load_own_private_key(keys.generate_ed25519_private_pem())
assert isinstance(RSA_KEY, rsa.RSAPrivateKey)
assert isinstance(ED_KEY, ed25519.Ed25519PrivateKey)
RSA_PUBLIC_PEM = keys.public_pem(RSA_KEY)
ED_PUBLIC_PEM = keys.public_pem(ED_KEY)
ED_MULTIBASE = keys.ed25519_to_multibase(ED_KEY.public_key())


def rehomed(text: str, *rewrites: dict[str, str]) -> str:
    """The text with the manifest's rewrites applied in order: plain string
    replacements, the global ``rehome`` first."""
    for table in (MANIFEST["rehome"], *rewrites):
        for old, new in table.items():
            text = text.replace(old, new)
    return text


def read(name: str, *rewrites: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        rehomed((PEERS / name).read_text(encoding="utf-8"), *rewrites)
    )
    return document


def entries(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def with_test_keys(document: dict[str, Any]) -> dict[str, Any]:
    """The document with each public key it publishes replaced by the test key of the
    same kind (RSA or Ed25519, PEM or FEP-521a Multikey)."""
    for entry in entries(document.get("publicKey")):
        pem = entry.get("publicKeyPem")
        if isinstance(pem, str):
            published = keys.load_public_pem(pem)
            is_ed = isinstance(published, ed25519.Ed25519PublicKey)
            entry["publicKeyPem"] = ED_PUBLIC_PEM if is_ed else RSA_PUBLIC_PEM
    for entry in entries(document.get("assertionMethod")):
        multibase = entry.get("publicKeyMultibase")
        if isinstance(multibase, str) and multibase.startswith("z6Mk"):
            entry["publicKeyMultibase"] = ED_MULTIBASE
    return document


@dataclass
class Actor:
    id: str
    document: dict[str, Any]
    sign: str  # "draft-cavage" or "rfc9421"
    key_id: str


def actor_of(actor_id: str) -> Actor:
    """The actor as its peer serves it: its document from the corpus (re-homed, with the
    manifest's additions and the test keys), or, for an actor whose document no server
    in the corpus published, a minimal one of the type the manifest names."""
    spec = MANIFEST["actors"].get(actor_id, {"document": None})
    if spec["document"] is None:
        document: dict[str, Any] = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": actor_id,
            "type": spec.get("type", "Person"),
            "preferredUsername": actor_id.rstrip("/").rsplit("/", 1)[-1],
            "inbox": f"{actor_id}/inbox",
            "publicKey": {
                "id": f"{actor_id}#main-key",
                "owner": actor_id,
                "publicKeyPem": RSA_PUBLIC_PEM,
            },
        }
    else:
        document = read(spec["document"], spec.get("rewrite", {}))
    document.update(spec.get("add", {}))
    document = with_test_keys(document)
    key_id = spec.get("key") or entries(document.get("publicKey"))[0]["id"]
    return Actor(actor_id, document, spec.get("sign", "draft-cavage"), key_id)


@dataclass
class Peer:
    """A server at one host: serves documents by path, answers WebFinger for its actors,
    takes any POST with a 202 (and keeps it)."""

    host: str
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status, body, content_type = 404, b'{"error": "not found"}', "application/json"
        if scope["method"] == "POST":
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            self.received.append(json.loads(b"".join(chunks)))
            status, body = 202, b""
        elif scope["path"] == "/.well-known/webfinger":
            query = parse_qs(scope["query_string"].decode())
            resource = query.get("resource", [""])[0]
            for document in self.documents.values():
                name = document.get("preferredUsername")
                if resource == f"acct:{name}@{self.host}" and "inbox" in document:
                    links = [{"rel": "self", "type": AS2, "href": document["id"]}]
                    jrd = {"subject": resource, "links": links}
                    status, body, content_type = (
                        200,
                        json.dumps(jrd).encode(),
                        "application/jrd+json",
                    )
        elif scope["path"] in self.documents:
            status, content_type = 200, AS2
            body = json.dumps(self.documents[scope["path"]]).encode()
        headers = [(b"content-type", content_type.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Peers:
    """Every peer the manifest describes, on the test network."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.by_host: dict[str, Peer] = {}
        for actor_id in MANIFEST["actors"]:
            actor = actor_of(actor_id)
            self.serve(actor.id, actor.document)
            for extra in MANIFEST["actors"][actor_id].get("also_served", []):
                stub = with_test_keys(read(extra["document"], extra.get("rewrite", {})))
                self.peer(actor.id).documents[extra["path"]] = stub
        for spec in MANIFEST["objects"]:
            document = read(spec["document"], spec.get("rewrite", {}))
            self.serve(document["id"], document)

    def peer(self, url: str) -> Peer:
        host = urlsplit(url).netloc
        if host not in self.by_host:
            self.by_host[host] = Peer(host)
            self.network.router.apps[host] = httpx.ASGITransport(app=self.by_host[host])
        return self.by_host[host]

    def serve(self, url: str, document: dict[str, Any]) -> None:
        self.peer(url).documents[urlsplit(url).path] = document


async def post_as(network: Network, actor: Actor, inbox: str, body: bytes) -> httpx.Response:
    """POST ``body`` to ``inbox`` signed as the actor's server signs: draft-cavage with
    its RSA key, or RFC 9421 with its Ed25519 key."""
    if actor.sign == "rfc9421":
        headers = rfc9421.sign_request(
            "POST", inbox, {"Content-Type": AS2}, body, actor.key_id, ED_KEY, network.clock.now()
        )
        return await network.http.post(
            inbox, content=body, headers={"Content-Type": AS2, **headers}
        )
    auth = httpsig.SignatureAuth(key_id=actor.key_id, private_key=RSA_KEY, clock=network.clock)
    return await network.http.post(inbox, content=body, headers={"Content-Type": AS2}, auth=auth)


# --- what the node did ------------------------------------------------------------------


@dataclass
class Seen:
    """What a replay may change, read from the node's tables."""

    outbox: list[dict[str, Any]]
    followers: dict[str, str]
    following: dict[str, str]
    catalogue: set[str]
    ballots: list[tuple[str, str, str | None]]
    actors: dict[str, str]
    comments: list[str]
    reports: int


async def observe(node: TestNode) -> Seen:
    def unit(conn: Connection) -> Seen:
        t = tables
        return Seen(
            outbox=[
                json.loads(body)
                for body in conn.execute(
                    select(t.outbox_activities.c.body).order_by(t.outbox_activities.c.id)
                ).scalars()
            ],
            followers=dict(conn.execute(select(t.followers.c.follower, t.followers.c.state)).all()),
            following=dict(conn.execute(select(t.following.c.followed, t.following.c.state)).all()),
            catalogue=set(
                conn.execute(select(t.offers.c.uri).where(t.offers.c.local == 0)).scalars()
            ),
            ballots=[
                (r.voter, r.state, r.reason)
                for r in conn.execute(
                    select(t.ballots.c.voter, t.ballots.c.state, t.ballots.c.reason)
                )
            ],
            actors=dict(
                conn.execute(select(t.remote_actors.c.uri, t.remote_actors.c.document)).all()
            ),
            comments=list(
                conn.execute(select(t.comments.c.uri).order_by(t.comments.c.id)).scalars()
            ),
            reports=len(conn.execute(select(t.comment_reports.c.id)).all()),
        )

    seen: Seen = await node.node.db.read(unit)
    return seen


async def inbox_row(node: TestNode, activity_id: str) -> Any:
    query = select(tables.inbox_activities).where(
        tables.inbox_activities.c.activity_id == activity_id
    )
    return await node.node.db.read(lambda conn: conn.execute(query).first())


# --- what the payload needs first -------------------------------------------------------


@dataclass
class Scene:
    """The node, its peers, and the values the manifest's placeholders stand for."""

    network: Network
    alpha: TestNode
    peers: Peers
    values: dict[str, str] = field(default_factory=dict)

    @property
    def coop(self) -> str:
        return f"{self.alpha.base}/actors/coop"


async def prepare(scene: Scene, actor: Actor, given: dict[str, Any]) -> None:
    """Bring the node to the state the payload answers: it knows the actor, the actor
    follows the co-op, the co-op follows the actor, the actor is a member, a proposal
    of ours is open."""
    node = scene.alpha.node
    now = scene.network.clock.now()
    if given.get("known_actor"):
        await node.peers.actor(actor.id)
    if "follower" in given:
        document = await node.peers.actor(actor.id)
        endpoints = document.get("endpoints")
        shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
        await node.db.write(
            lambda conn: follows.add_follower(
                conn,
                actor_id=node.peers.coop_id,
                follower=actor.id,
                follow_id=given["follower"],
                inbox=document["inbox"],
                shared_inbox=shared,
                state=follows.ACCEPTED,
                now=now,
            )
        )
    if "following" in given:
        followed = await actions.follow(node, actor.id)
        scene.values["our_follow"] = followed.follow_id
        if given["following"] == "accepted":
            await node.db.write(
                lambda conn: follows.settle_following(
                    conn, follow_id=followed.follow_id, by=actor.id, state=follows.ACCEPTED, now=now
                )
            )
    if given.get("member"):
        handle = f"{actor.document['preferredUsername']}@{urlsplit(actor.id).netloc}"
        linked = await add_member(scene.alpha, remote=handle, joined_at="2026-01-01")
        confirmed = await scene.alpha.request(
            "POST", f"/api/v1/members/{linked['id']}/confirm", headers=scene.alpha.auth
        )
        assert confirmed.status_code == 200, confirmed.text
    if "proposal" in given:
        author = await add_member(scene.alpha, username="m0", joined_at="2026-01-01")
        created = await scene.alpha.request(
            "POST",
            "/api/v1/proposals",
            json={
                "title": "Which one?",
                "text": "Pick.",
                "options": given["proposal"],
                "multiple_choice": True,
                "closes_at": (now + timedelta(days=7)).isoformat(),
            },
            headers=await token_for(scene.alpha, author["id"]),
        )
        assert created.status_code == 201, created.text
        scene.values["proposal"] = created.json()["uri"]


def placeholders(scene: Scene) -> dict[str, str]:
    return {
        "{coop}": scene.coop,
        "{node}": scene.alpha.base,
        **{"{" + name + "}": value for name, value in scene.values.items()},
    }


# --- the outcome --------------------------------------------------------------------------


def check_effects(
    entry: dict[str, Any],
    actor: Actor,
    activity: dict[str, Any],
    before: Seen,
    after: Seen,
    fetched: list[str],
) -> None:
    """The effects the manifest names happened, and no other: ``fetched`` are the URLs
    the node requested during the worker's round."""
    effects = set(entry["expect"].get("effects", []))
    new_outbox = after.outbox[len(before.outbox) :]
    if "accept_queued" in effects:
        [accept] = new_outbox
        assert accept["type"] == "Accept"
        assert accept["object"] == activity["id"] or accept["object"].get("id") == activity["id"]
        assert after.followers[actor.id] == follows.ACCEPTED
    elif "ballot_refused" in effects:
        # The voter is told why, in a direct reply.
        [reply] = new_outbox
        assert reply["type"] == "Create"
        assert reply["object"]["to"] == [actor.id]
        assert entry["expect"]["reason"] in reply["object"]["content"]
    elif "comment_kept" in effects:
        # The co-op relays it to the thread's audience, by id.
        [relay] = new_outbox
        assert relay["type"] == "Announce"
        assert relay["object"] == activity["object"]["id"]
    else:
        assert new_outbox == []
    if "comment_kept" in effects:
        assert after.comments == [*before.comments, activity["object"]["id"]]
    else:
        assert after.comments == before.comments
    assert after.reports == before.reports
    if not effects & {"accept_queued", "follower_removed"}:
        assert after.followers == before.followers
    if "follower_removed" in effects:
        assert actor.id in before.followers
        assert actor.id not in after.followers
    for effect, state in (
        ("following_accepted", follows.ACCEPTED),
        ("following_rejected", follows.REJECTED),
    ):
        if effect in effects:
            assert before.following[actor.id] != state
            assert after.following[actor.id] == state
    if not effects & {"following_accepted", "following_rejected"}:
        assert after.following == before.following
    if "actor_stored" in effects:
        # Read again from its server, not from the activity.
        assert actor.id in fetched
        assert json.loads(after.actors[actor.id])["name"] == actor.document["name"]
    if "actor_forgotten" in effects:
        assert actor.id in before.actors
        assert actor.id not in after.actors
    elif "inbox" in actor.document:
        assert actor.id in after.actors  # a verified signer is kept
    if "ballot_counted" in effects:
        assert after.ballots == [*before.ballots, (actor.id, "valid", None)]
    elif "ballot_refused" in effects:
        assert after.ballots == [*before.ballots, (actor.id, "refused", entry["expect"]["reason"])]
    else:
        assert after.ballots == before.ballots
    linked = {
        item["href"]
        for item in entries(actor.document.get("attachment"))
        if item.get("type") == "Link" and isinstance(item.get("href"), str)
    }
    if "offer_in_catalogue" in effects:
        assert linked
        assert after.catalogue == before.catalogue | linked
    else:
        assert after.catalogue == before.catalogue


def check_ignored(entry: dict[str, Any], activity: dict[str, Any], actor: str, urls: Urls) -> None:
    """The reason the manifest gives for an ignored activity is the node's own rule."""
    ignored = entry["expect"]["ignored"]
    if ignored == "no-handler":
        assert activity["type"] not in handlers.KINDS
    else:
        assert ignored == "not-wanted"
        assert activity["type"] in handlers.KINDS
        assert classify(activity, actor=actor, urls=urls) is None


@pytest.fixture
def no_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    errors = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("node")
    ]
    assert errors == [], [r.getMessage() for r in errors]


@pytest.mark.parametrize("name", list(PAYLOADS))
async def test_a_peer_payload_has_the_outcome_its_manifest_names(
    network: Network, name: str, no_errors: None
) -> None:
    entry = PAYLOADS[name]
    expect = entry["expect"]
    alpha = await network.add("alpha.test")
    scene = Scene(network, alpha, Peers(network))
    raw = read(entry["file"], entry.get("rewrite", {}))
    actor = actor_of(raw["actor"] if isinstance(raw["actor"], str) else raw["actor"]["id"])
    await prepare(scene, actor, entry.get("given", {}))
    before = await observe(alpha)
    text = rehomed((PEERS / entry["file"]).read_text(encoding="utf-8"), entry.get("rewrite", {}))
    body = rehomed(text, placeholders(scene)).encode()
    activity = json.loads(body)

    response = await post_as(network, actor, alpha.base + "/inbox", body)
    requests_before_round = len(network.router.log)
    handled = await inbox_worker.run_once(alpha.node)
    fetched = [url for method, url in network.router.log[requests_before_round:] if method == "GET"]

    assert response.status_code == expect.get("status", 202), response.text
    if response.status_code != 202:
        assert expect["reason"] in response.json()["reason"]
    row = await inbox_row(alpha, activity["id"])
    if expect["state"] == "not stored":
        assert row is None
        assert handled == 0
        return
    assert row is not None
    assert row.state == expect["state"], row.last_error
    if row.state == "ignored":
        check_ignored(entry, activity, actor.id, alpha.node.urls)
    check_effects(entry, actor, activity, before, await observe(alpha), fetched)


# --- the corpus itself ----------------------------------------------------------------------


def test_every_file_of_the_corpus_names_its_source() -> None:
    files = {str(p.relative_to(PEERS)) for p in PEERS.rglob("*.json")} - {"manifest.json"}
    assert files == set(MANIFEST["sources"])
    for name, source in MANIFEST["sources"].items():
        for key in ("peer", "project", "repository", "path", "commit", "how"):
            assert source.get(key), f"{name}: no {key}"
        json.loads((PEERS / name).read_text(encoding="utf-8"))
    for entry in MANIFEST["payloads"]:
        actor = read(entry["file"], entry.get("rewrite", {}))["actor"]
        assert (actor if isinstance(actor, str) else actor["id"]) in MANIFEST["actors"], entry
    used = {entry["file"] for entry in MANIFEST["payloads"]}
    used |= {spec["document"] for spec in MANIFEST["actors"].values() if spec["document"]}
    used |= {
        s["document"] for spec in MANIFEST["actors"].values() for s in spec.get("also_served", [])
    }
    used |= {spec["document"] for spec in MANIFEST["objects"]}
    assert used == files


def test_the_corpus_holds_six_independent_implementations() -> None:
    peers = {MANIFEST["sources"][entry["file"]]["peer"] for entry in MANIFEST["payloads"]}
    assert len(peers) >= 6, peers
    assert 20 <= len(MANIFEST["payloads"]) <= 45
