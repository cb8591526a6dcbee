"""The co-ops a fuzzing run attacks, and the real documents it mutates.

alpha.test is the target: it follows beta.test and is followed by it, accepts shared
proposals from it, has a local member (m0) and a member on a Mastodon-shaped server
(r0), an open proposal, and beta's offers in its catalogue. Every template is what the
real code sends: taken from beta's outbox, built by the node's own activity builders,
or voted the way Mastodon votes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from node import activities
from node.follows import actions
from node.follows import store as follows
from node.storage.tables import outbox_activities
from tests.support.coops import Coop, make_coop
from tests.support.mastodon import Mastodon
from tests.support.network import Network, TestNode


@dataclass
class World:
    network: Network
    alpha: Coop
    beta: Coop
    mastodon: Mastodon
    # name -> the activity as it was sent; who signs it ("beta" or "r0")
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    signers: dict[str, str] = field(default_factory=dict)
    # Keys of real objects, for paths with a {key}
    keys: dict[str, str] = field(default_factory=dict)
    backend: str = "sqlite"

    def suite(self, name: str) -> str:
        """``name`` and the database engine, as the counts are kept."""
        return f"{name} on {self.backend}"

    def __repr__(self) -> str:  # Hypothesis prints the arguments of a failing case
        return f"World(target={self.alpha.node.base})"

    @property
    def target(self) -> TestNode:
        return self.alpha.node


def offer_input(title: str) -> dict[str, Any]:
    return {
        "title": {"en": title, "fr": "Pommes bio"},
        "description": {"en": "Picked **this morning**."},
        "categories": ["apples"],
        "price": {"amount": "3.50", "currency": "EUR"},
        "unit": "kg",
        "quantity": {"available": "40", "minimum": "1"},
        "location": {"name": "Lyon", "latitude": 45.764, "longitude": 4.8357},
        "claims": ["organic"],
    }


async def _sent_by(node: TestNode) -> dict[str, list[dict[str, Any]]]:
    rows = await node.node.db.read(
        lambda c: c.execute(
            select(outbox_activities.c.type, outbox_activities.c.body).order_by(
                outbox_activities.c.id
            )
        ).all()
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row.type, []).append(json.loads(row.body))
    return found


def _about(activities_of_a_type: list[dict[str, Any]], object_type: str) -> dict[str, Any]:
    return next(
        a
        for a in activities_of_a_type
        if isinstance(a.get("object"), dict) and a["object"].get("type") == object_type
    )


async def build_world(network: Network) -> World:
    mastodon = Mastodon(network, "mastodon.test")
    beta = await make_coop(network, local=1, remote=0, domain="beta.test", mastodon=mastodon)
    alpha = await make_coop(
        network,
        local=1,
        remote=1,
        domain="alpha.test",
        mastodon=mastodon,
        remote_prefix="r",
        accept_shared_from=(f"{beta.node.base}/actors/coop",),
    )
    await actions.follow(alpha.node.node, f"{beta.node.base}/actors/coop")
    await actions.follow(beta.node.node, f"{alpha.node.base}/actors/coop")
    await network.settle()

    # beta publishes, changes and withdraws offers; alpha's catalogue takes them in.
    created = await beta.node.request(
        "POST", "/api/v1/offers", json=offer_input("Organic apples"), headers=beta.node.auth
    )
    assert created.status_code == 201, created.text
    key = created.json()["id"]
    changed = await beta.node.request(
        "PATCH",
        f"/api/v1/offers/{key}",
        json={"quantity": {"available": "12"}},
        headers=beta.node.auth,
    )
    assert changed.status_code == 200, changed.text
    other = await beta.node.request(
        "POST", "/api/v1/offers", json=offer_input("Old pears"), headers=beta.node.auth
    )
    gone = await beta.node.request(
        "DELETE", f"/api/v1/offers/{other.json()['id']}", headers=beta.node.auth
    )
    assert gone.status_code == 204, gone.text
    # beta opens a proposal shared with alpha; alpha one of its own.
    now = network.clock.now()
    shared = await beta.propose(
        "m0",
        title="Join the regional mobility fund",
        rule="majority",
        threshold=None,
        quorum="50%",
        closes_at=(now + timedelta(days=300)).isoformat(),
        electorate=[f"{alpha.node.base}/actors/coop"],
    )
    home = await alpha.propose("m0", closes_at=(now + timedelta(days=300)).isoformat())
    await network.settle()

    world = World(network=network, alpha=alpha, beta=beta, mastodon=mastodon)
    sent = await _sent_by(beta.node)
    world.templates["create-offer"] = _about(sent["Create"], "Proposal")
    world.templates["update-offer"] = _about(sent["Update"], "Proposal")
    world.templates["delete-offer"] = sent["Delete"][0]
    world.templates["follow"] = sent["Follow"][0]
    world.templates["accept"] = sent["Accept"][0]
    questions = [
        a
        for a in sent.get("Create", []) + sent.get("Update", [])
        if a["object"].get("type") == "Question"
    ]
    question = questions[-1]
    world.templates["update-question"] = {**question, "type": "Update"}
    world.templates["undo-follow"] = activities.undo_follow(
        beta.node.node.urls,
        "coop",
        follow_id=sent["Follow"][0]["id"],
        target=f"{alpha.node.base}/actors/coop",
    )
    world.templates["vote"] = mastodon.vote_activity(alpha.remote["r0"], home["uri"], "For")
    for name in world.templates:
        world.signers[name] = "r0" if name == "vote" else "beta"
    world.keys.update(offer=key, proposal=home["id"], shared=shared["id"])
    listed = await alpha.node.request("GET", "/api/v1/members", headers=alpha.node.auth)
    world.keys["r0"] = next(
        str(m["id"]) for m in listed.json()["items"] if m.get("handle") == "r0@mastodon.test"
    )
    follow_state = await alpha.node.node.db.read(
        lambda c: follows.following_state(
            c, actor_id=alpha.node.node.peers.coop_id, followed=f"{beta.node.base}/actors/coop"
        )
    )
    assert follow_state == follows.ACCEPTED
    return world
