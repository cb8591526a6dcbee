"""The admin's JSON API: bearer tokens, and clear errors that change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from node.services import tokens
from tests.support.network import Network

AS2 = {"Accept": "application/activity+json"}


async def test_the_admin_token_from_setup_opens_the_api(network: Network) -> None:
    coop = await network.add("alpha.test", name="Alpha Market")

    response = await coop.get("/api/v1/node", headers=coop.auth)

    assert response.status_code == 200
    assert response.json()["handle"] == "coop@alpha.test"
    assert response.json()["name"] == "Alpha Market"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Bearer cn_not-a-real-token", "Bearer x"],
)
async def test_requests_without_a_valid_token_are_refused(
    network: Network, header: str | None
) -> None:
    coop = await network.add("alpha.test")
    headers = {} if header is None else {"Authorization": header}

    response = await coop.get("/api/v1/node", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "not_authenticated"


async def test_a_revoked_token_stops_working(network: Network) -> None:
    coop = await network.add("alpha.test")
    db = coop.node.db
    now = network.clock.now()
    second = tokens.new_token()
    token_id = await db.write(
        lambda c: tokens.store_token(c, second, name="laptop", role="admin", now=now)
    )
    assert (
        await coop.get("/api/v1/node", headers={"Authorization": f"Bearer {second}"})
    ).status_code == 200

    assert await db.write(lambda c: tokens.revoke_token(c, token_id, now=now))

    response = await coop.get("/api/v1/node", headers={"Authorization": f"Bearer {second}"})
    assert response.status_code == 401
    assert (await coop.get("/api/v1/node", headers=coop.auth)).status_code == 200


async def test_tokens_are_stored_only_as_hashes(network: Network) -> None:
    coop = await network.add("alpha.test")
    from sqlalchemy import select

    from node.storage.tables import api_tokens

    stored = await coop.node.db.read(
        lambda c: c.execute(select(api_tokens.c.token_hash)).scalars().all()
    )

    assert coop.token not in stored
    assert stored == [tokens.hash_token(coop.token)]


async def test_the_admin_updates_the_profile_and_the_actor_shows_it(network: Network) -> None:
    coop = await network.add("alpha.test")
    network.clock.advance(60)

    response = await coop.request(
        "PATCH",
        "/api/v1/profile",
        headers=coop.auth,
        json={"name": "Marché équitable", "summary": "Fair trade <since> 2019"},
    )

    assert response.status_code == 200, response.text
    actor = (await coop.get("/actors/coop", headers=AS2)).json()
    assert actor["name"] == "Marché équitable"
    assert actor["summary"] == "<p>Fair trade &lt;since&gt; 2019</p>"
    assert actor["updated"] == "2027-03-01T09:01:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"summary": ["list"]}, "summary"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_an_invalid_profile_is_refused_with_the_field_and_changes_nothing(
    network: Network, body: dict[str, object], field: str
) -> None:
    coop = await network.add("alpha.test", name="Alpha Market")

    response = await coop.request("PATCH", "/api/v1/profile", headers=coop.auth, json=body)

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert (await coop.get("/actors/coop", headers=AS2)).json()["name"] == "Alpha Market"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"name": "x"}', "text/plain"),
    ],
)
async def test_a_malformed_body_is_a_400(
    network: Network, content: bytes, content_type: str
) -> None:
    coop = await network.add("alpha.test")

    response = await coop.request(
        "PATCH",
        "/api/v1/profile",
        headers={**coop.auth, "Content-Type": content_type},
        content=content,
    )

    assert response.status_code == 400
    assert response.json()["reason"]


async def test_an_oversized_body_is_a_413_before_it_is_read(network: Network) -> None:
    coop = await network.add("alpha.test")

    async def endless() -> Any:
        for _ in range(100):
            yield b"x" * 10_000

    declared = await coop.request(
        "PATCH",
        "/api/v1/profile",
        headers={**coop.auth, "Content-Type": "application/json"},
        content=b'{"name": "' + b"x" * 70_000 + b'"}',
    )
    streamed = await coop.request(
        "PATCH",
        "/api/v1/profile",
        headers={**coop.auth, "Content-Type": "application/json"},
        content=endless(),
    )

    assert declared.status_code == 413
    assert "declares 70012 bytes" in declared.json()["reason"]
    assert streamed.status_code == 413
    assert "sent more than 65536 bytes" in streamed.json()["reason"]
