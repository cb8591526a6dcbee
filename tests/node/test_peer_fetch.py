"""The node's fetches check every hop against the admin's domain policy, and a document
only counts for the server it was finally served from."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from federation import httpsig, keys
from federation.errors import InvalidDocument, Refused
from tests.support.network import Network

AS2 = "application/activity+json"


def redirecting(location: str) -> Any:
    """A server that answers every GET with a redirect to ``location``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"location", location.encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    return app


def serving(document: dict[str, Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = json.dumps(document).encode()
        headers = [(b"content-type", AS2.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def actor(uri: str) -> dict[str, Any]:
    return {"id": uri, "type": "Person", "inbox": f"{uri}/inbox"}


async def test_a_redirect_to_a_blocked_domain_is_not_followed(network: Network) -> None:
    alpha = await network.add("alpha.test")
    network.router.apps["open.test"] = httpx.ASGITransport(
        app=redirecting("https://blocked.test/actor")
    )
    network.router.apps["blocked.test"] = httpx.ASGITransport(
        app=serving(actor("https://blocked.test/actor"))
    )
    await alpha.decide_domain("blocked.test", "blocked")

    with pytest.raises(Refused, match=r"blocked\.test is blocked"):
        await alpha.node.peers.fetch("https://open.test/actor")

    assert not [url for _, url in network.router.log if "blocked.test" in url]


async def test_a_redirect_to_a_subdomain_of_a_blocked_domain_is_not_followed(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    network.router.apps["open.test"] = httpx.ASGITransport(
        app=redirecting("https://cdn.blocked.test/actor")
    )
    await alpha.decide_domain("blocked.test", "blocked")

    with pytest.raises(Refused, match=r"as part of blocked\.test"):
        await alpha.node.peers.fetch("https://open.test/actor")


async def test_a_document_whose_id_is_on_another_origin_than_where_it_ended_is_refused(
    network: Network,
) -> None:
    # victim.test has an open redirect; the document at its target claims victim's URL.
    alpha = await network.add("alpha.test")
    network.router.apps["victim.test"] = httpx.ASGITransport(
        app=redirecting("https://attacker.test/forged")
    )
    network.router.apps["attacker.test"] = httpx.ASGITransport(
        app=serving(actor("https://victim.test/go"))
    )

    with pytest.raises(InvalidDocument, match=r"on another server than https://attacker\.test"):
        await alpha.node.peers.actor("https://victim.test/go")

    assert await alpha.node.peers.known_actor("https://victim.test/go") is False


async def test_a_key_behind_a_redirect_to_a_blocked_domain_is_refused_at_the_inbox(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    await network.add("beta.test")
    network.router.apps["open.test"] = httpx.ASGITransport(
        app=redirecting("https://beta.test/actors/coop")
    )
    await alpha.decide_domain("beta.test", "blocked")
    # The key is never reached: which key signs does not matter.
    private_key = keys.load_own_private_key(keys.generate_rsa_private_pem())
    auth = httpsig.SignatureAuth(
        key_id="https://open.test/actor#main-key", private_key=private_key, clock=network.clock
    )
    activity = {
        "id": "https://open.test/activities/1",
        "type": "Create",
        "actor": "https://open.test/actor",
        "object": {"id": "https://open.test/notes/1", "type": "Note"},
    }

    response = await network.http.post(
        alpha.base + "/inbox",
        content=json.dumps(activity).encode(),
        headers={"Content-Type": AS2},
        auth=auth,
    )

    assert response.status_code == 403
    assert "beta.test is blocked" in response.json()["reason"]
    assert ("GET", "https://beta.test/actors/coop") not in network.router.log
