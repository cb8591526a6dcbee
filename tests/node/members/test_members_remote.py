"""Remote members: linked by handle or actor URL, checked by WebFinger and the actor
document agreeing, and pending until the admin confirms them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.network import Network, TestNode


async def link(coop: TestNode, **fields: Any) -> Any:
    return await coop.request("POST", "/api/v1/members", json=fields, headers=coop.auth)


async def person_on(node: TestNode, username: str) -> None:
    response = await node.request(
        "POST", "/api/v1/members", json={"username": username}, headers=node.auth
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "target", ["acct:bob@beta.test", "@bob@beta.test", "https://beta.test/actors/bob"]
)
async def test_a_remote_member_is_pending_until_the_admin_confirms(
    network: Network, target: str
) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await person_on(beta, "bob")

    response = await link(alpha, remote=target, role="observer")

    assert response.status_code == 201, response.text
    linked = response.json()
    assert linked["state"] == "pending"
    assert linked["local"] is False
    assert linked["actor"] == "https://beta.test/actors/bob"
    assert linked["handle"] == "bob@beta.test"
    assert linked["remote_actor"]["type"] == "Person"
    roster = (await alpha.get("/actors/coop/members")).json()
    assert roster["totalItems"] == 0

    confirmed = await alpha.request(
        "POST", f"/api/v1/members/{linked['id']}/confirm", headers=alpha.auth
    )

    assert confirmed.json()["state"] == "confirmed"
    assert (await alpha.get("/actors/coop/members")).json()["totalItems"] == 1
    again = await link(alpha, remote="bob@beta.test")
    assert again.status_code == 409


async def test_a_handle_whose_actor_names_someone_else_is_refused(network: Network) -> None:
    alpha = await network.add("alpha.test")
    # WebFinger for alice@liar.test points at an actor whose own username is mallory.
    network.add_static(
        "liar.test",
        {
            "/.well-known/webfinger": {
                "subject": "acct:alice@liar.test",
                "links": [
                    {
                        "rel": "self",
                        "type": "application/activity+json",
                        "href": "https://liar.test/users/mallory",
                    }
                ],
            },
            "/users/mallory": {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": "https://liar.test/users/mallory",
                "type": "Person",
                "preferredUsername": "mallory",
                "inbox": "https://liar.test/users/mallory/inbox",
            },
        },
    )

    response = await link(alpha, remote="alice@liar.test")

    assert response.status_code == 422, response.text
    assert response.json()["field"] == "target"
    assert (await alpha.get("/api/v1/members?all=true", headers=alpha.auth)).json()["items"] == []


async def test_an_actor_url_that_webfinger_does_not_confirm_is_refused(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    await person_on(beta, "bob")
    # An actor on thief.test claiming to be "bob", while WebFinger for bob@thief.test
    # names beta's bob: the two do not agree.
    network.add_static(
        "thief.test",
        {
            "/.well-known/webfinger": {
                "subject": "acct:bob@thief.test",
                "links": [
                    {
                        "rel": "self",
                        "type": "application/activity+json",
                        "href": "https://beta.test/actors/bob",
                    }
                ],
            },
            "/users/bob": {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": "https://thief.test/users/bob",
                "type": "Person",
                "preferredUsername": "bob",
                "inbox": "https://thief.test/users/bob/inbox",
            },
        },
    )

    response = await link(alpha, remote="https://thief.test/users/bob")

    assert response.status_code == 422, response.text
    assert response.json()["field"] == "target"


async def test_an_unknown_account_is_reported(network: Network) -> None:
    alpha = await network.add("alpha.test")
    await network.add("beta.test")

    response = await link(alpha, remote="nobody@beta.test")

    assert response.status_code in (404, 422, 502), response.text
    assert (await alpha.get("/api/v1/members?all=true", headers=alpha.auth)).json()["items"] == []
