"""A co-op with members, local and on a Mastodon-shaped server, for governance tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation import httpsig, keys
from node.services import identity
from tests.support.mastodon import Mastodon, MastodonUser
from tests.support.network import Network, TestNode


@dataclass
class Coop:
    node: TestNode
    mastodon: Mastodon
    # username -> Authorization header of each local member
    local: dict[str, dict[str, str]] = field(default_factory=dict)
    remote: dict[str, MastodonUser] = field(default_factory=dict)

    async def propose(self, by: str, **fields: Any) -> dict[str, Any]:
        now = self.node.node.clock.now()
        body = {
            "title": "Adopt the 2027 delivery tariff",
            "text": "The **new** tariff.",
            "options": ["For", "Against", "Abstain"],
            "rule": "qualified",
            "threshold": "2/3",
            "quorum": "25%",
            "closes_at": (now + timedelta(days=7)).isoformat(),
            **fields,
        }
        response = await self.node.request(
            "POST", "/api/v1/proposals", json=body, headers=self.local[by]
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def vote(self, who: str, key: str, *choices: str) -> Any:
        return await self.node.request(
            "POST",
            f"/api/v1/proposals/{key}/votes",
            json={"choices": list(choices)},
            headers=self.local[who],
        )


async def add_member(node: TestNode, **fields: Any) -> dict[str, Any]:
    response = await node.request("POST", "/api/v1/members", json=fields, headers=node.auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def token_for(node: TestNode, member_id: int) -> dict[str, str]:
    response = await node.request("POST", f"/api/v1/members/{member_id}/tokens", headers=node.auth)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def make_coop(
    network: Network,
    *,
    local: int = 2,
    remote: int = 2,
    colleges: dict[str, str] | None = None,
    college_of: Any = None,
    domain: str = "alpha.test",
    mastodon: Mastodon | None = None,
    remote_prefix: str = "r",
    **settings: Any,
) -> Coop:
    """A co-op at ``domain`` with ``local`` members (m0, m1...) and ``remote`` members on
    mastodon.test (r0, r1...), all confirmed. ``colleges`` maps names to weights
    ("50%"); ``college_of(i, local)`` gives each member's college. Co-ops of one test
    share one ``mastodon`` server (their remote members named apart by
    ``remote_prefix``). ``settings`` are further node settings."""
    node = await network.add(domain, **settings)
    mastodon = mastodon or Mastodon(network, "mastodon.test")
    if colleges:
        response = await node.request(
            "PUT",
            "/api/v1/colleges",
            json={"colleges": [{"name": n, "weight": w} for n, w in colleges.items()]},
            headers=node.auth,
        )
        assert response.status_code == 200, response.text
    coop = Coop(node, mastodon)
    for i in range(local):
        extra = {"college": college_of(i, True)} if college_of else {}
        added = await add_member(node, username=f"m{i}", joined_at="2026-01-01", **extra)
        coop.local[f"m{i}"] = await token_for(node, added["id"])
    for i in range(remote):
        user = mastodon.add_user(f"{remote_prefix}{i}")
        extra = {"college": college_of(i, False)} if college_of else {}
        await link_remote(node, user, **extra)
        coop.remote[f"r{i}"] = user
    return coop


async def link_remote(node: TestNode, user: MastodonUser, **fields: Any) -> None:
    """Make ``user`` (on the Mastodon-shaped server) a confirmed member of ``node``."""
    linked = await add_member(node, remote=user.handle, joined_at="2026-01-01", **fields)
    confirmed = await node.request(
        "POST", f"/api/v1/members/{linked['id']}/confirm", headers=node.auth
    )
    assert confirmed.status_code == 200, confirmed.text


async def coop_keys(
    node: TestNode, username: str = "coop"
) -> tuple[Ed25519PrivateKey, keys.PrivateKey]:
    """A co-op node's own keys (Ed25519 for proofs, RSA for HTTP signatures), read from
    its database: for tests that forge what a co-op (or another of the node's actors,
    a network say) would send."""
    found = await node.node.db.read(lambda conn: identity.get_actor(conn, username))
    assert found.ed25519_private_pem is not None
    assert found.rsa_private_pem is not None
    ed = keys.load_own_private_key(found.ed25519_private_pem)
    assert isinstance(ed, Ed25519PrivateKey)
    return ed, keys.load_own_private_key(found.rsa_private_pem)


async def deliver_as_coop(
    network: Network, sender: TestNode, obj: dict[str, Any], activity_id: str, inbox: str
) -> Any:
    """``Create(obj)`` from ``sender``'s co-op to ``inbox``, HTTP-signed with the co-op's
    RSA key as its node would send it; the response."""
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": activity_id,
        "type": "Create",
        "actor": f"{sender.base}/actors/coop",
        "object": obj,
    }
    return await post_as_coop(network, sender, activity, inbox)


async def post_as_coop(
    network: Network, sender: TestNode, activity: dict[str, Any], inbox: str
) -> Any:
    """``activity`` POSTed to ``inbox``, HTTP-signed with ``sender``'s co-op's RSA key as
    its node would send it; the response."""
    return await post_as(network, sender, "coop", activity, inbox)


async def post_as(
    network: Network, sender: TestNode, username: str, activity: dict[str, Any], inbox: str
) -> Any:
    """``activity`` POSTed to ``inbox``, HTTP-signed with the RSA key of ``sender``'s
    actor ``username``; the response."""
    _, rsa = await coop_keys(sender, username)
    actor = f"{sender.base}/actors/{username}"
    return await network.http.post(
        inbox,
        content=json.dumps(activity).encode(),
        headers={"Content-Type": "application/activity+json"},
        auth=httpsig.SignatureAuth(f"{actor}#main-key", rsa, network.clock),
    )


async def take_part_in(network: Network, host: Coop | TestNode, *coops: Coop | TestNode) -> None:
    """Each of ``coops`` follows ``host``, as a co-op does before it takes part in the
    shared proposals ``host`` opens (a proposal from a co-op not followed is refused)."""
    from node.follows import actions

    host_node = host.node if isinstance(host, Coop) else host
    for coop in coops:
        node = coop.node if isinstance(coop, Coop) else coop
        await actions.follow(node.node, f"{host_node.base}/actors/coop")
    await network.settle()
