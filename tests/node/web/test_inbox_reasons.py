"""What a peer reads when its request is refused says what to fix, never what is inside
the node's network: no address the node's resolver gave, no resolver message. The full
reason goes to the node's log."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from federation import httpsig, keys
from federation.netguard import IPAddress, make_guarded_transport
from tests.support.network import Network

AS2 = "application/activity+json"
SIGNING_KEY = keys.load_own_private_key(keys.generate_rsa_private_pem())


class Resolving(httpx.AsyncBaseTransport):
    """Reaches ``host`` through the real address guard, with DNS answers the test sets."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        async def resolve(host: str, port: int) -> list[IPAddress]:
            if host not in answers:
                raise OSError(f"[Errno -2] Name or service not known: {host}")
            return [ipaddress.ip_address(a) for a in answers[host]]

        self.transport = make_guarded_transport(resolver=resolve)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.transport.handle_async_request(request)


async def post_signed_by(network: Network, key_id: str, receiver_base: str) -> httpx.Response:
    actor = key_id.split("#")[0]
    host = actor.split("/")[2]
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"https://{host}/activities/1",
        "type": "Create",
        "actor": actor,
        "object": {"id": f"https://{host}/notes/1", "type": "Note", "content": "hi"},
    }
    auth = httpsig.SignatureAuth(key_id=key_id, private_key=SIGNING_KEY, clock=network.clock)
    return await network.http.post(
        receiver_base + "/inbox",
        content=json.dumps(activity).encode(),
        headers={"Content-Type": AS2},
        auth=auth,
    )


@pytest.mark.parametrize(
    ("host", "answers"),
    [
        ("inside.test", {"inside.test": ["10.0.0.5"]}),
        ("meta.test", {"meta.test": ["169.254.169.254"]}),
        ("nowhere.test", {}),
    ],
    ids=["private", "link-local", "no address"],
)
async def test_a_key_that_cannot_be_fetched_is_refused_without_saying_where_it_resolves(
    network: Network,
    caplog: pytest.LogCaptureFixture,
    host: str,
    answers: dict[str, Sequence[str]],
) -> None:
    alpha = await network.add("alpha.test")
    network.router.apps[host] = Resolving(answers)  # type: ignore[assignment]
    caplog.set_level(logging.INFO)

    response = await post_signed_by(network, f"https://{host}/actor#key", alpha.base)

    assert response.status_code == 502
    # The same words whether the name resolves inside the network or nowhere at all.
    assert response.json()["reason"] == (
        f"the key https://{host}/actor#key could not be fetched: https://{host}/actor: "
        "could not connect (its address is not allowed, unknown or not answering)"
    )
    # The node's admin still reads what happened.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    if answers:
        assert f"forbidden address {answers[host][0]}" in logged
    else:
        assert "Name or service not known" in logged


async def test_a_redirect_into_the_private_network_is_refused_without_the_address(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    network.router.apps["inside.test"] = Resolving({"inside.test": ["192.168.1.20"]})  # type: ignore[assignment]

    async def redirect(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"location", b"https://inside.test/actor"), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    network.router.apps["open.test"] = httpx.ASGITransport(app=redirect)

    response = await post_signed_by(network, "https://open.test/actor#key", alpha.base)

    reason = response.json()["reason"]
    assert response.status_code == 502
    assert "redirected to https://inside.test/actor" in reason
    assert "192.168" not in reason
    assert "private" not in reason
