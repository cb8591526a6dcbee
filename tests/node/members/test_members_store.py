"""Members through the JSON API: the admin adds, changes and removes them; members log
in and act within their role."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from node.members import store as members
from node.services import identity
from node.storage.tables import actor_keys, api_tokens
from tests.support.network import Network, TestNode

AS2 = {"Accept": "application/activity+json"}


async def add(coop: TestNode, **fields: Any) -> dict[str, Any]:
    response = await coop.request("POST", "/api/v1/members", json=fields, headers=coop.auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def token_for(coop: TestNode, member_id: int) -> dict[str, str]:
    response = await coop.request("POST", f"/api/v1/members/{member_id}/tokens", headers=coop.auth)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_a_local_member_gets_a_person_actor_with_an_ed25519_key_only(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")

    added = await add(coop, username="ana", name="Ana Lima", joined_at="2026-01-15")

    assert added["actor"] == "https://alpha.test/actors/ana"
    assert added["handle"] == "ana@alpha.test"
    assert added["role"] == "member"
    assert added["state"] == "confirmed"
    assert added["joined_at"] == "2026-01-15T00:00:00Z"
    actor = (await coop.get("/actors/ana", headers=AS2)).json()
    assert actor["type"] == "Person"
    assert actor["name"] == "Ana Lima"
    assert actor["assertionMethod"][0]["publicKeyMultibase"].startswith("z")
    assert "publicKey" not in actor
    assert "members" not in actor


async def test_the_rsa_key_is_made_once_when_first_needed(network: Network) -> None:
    coop = await network.add("alpha.test")
    added = await add(coop, username="ana")
    db = coop.node.db
    actor_id = await db.read(
        lambda c: members.get_member(c, added["id"]).actor_id  # type: ignore[no-any-return]
    )
    assert actor_id is not None

    def kinds() -> list[str]:
        return sorted(
            db.read_sync(
                lambda c: list(
                    c.execute(
                        select(actor_keys.c.kind).where(actor_keys.c.actor_id == actor_id)
                    ).scalars()
                )
            )
        )

    assert kinds() == ["ed25519"]
    now = network.clock.now()
    first = await db.write(lambda c: identity.ensure_rsa_key(c, actor_id, now=now))
    second = await db.write(lambda c: identity.ensure_rsa_key(c, actor_id, now=now))

    assert first == second
    assert kinds() == ["ed25519", "rsa"]
    actor = (await coop.get("/actors/ana", headers=AS2)).json()
    assert actor["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")


async def test_members_are_listed_with_roles_and_removed_members_kept_for_history(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    ana = await add(coop, username="ana", role="admin")
    await add(coop, username="ben")
    carla = await add(coop, username="carla", role="observer")
    network.clock.advance(seconds=3600)

    response = await coop.request("DELETE", f"/api/v1/members/{carla['id']}", headers=coop.auth)

    assert response.status_code == 200
    assert response.json()["left_at"] == "2027-03-01T10:00:00Z"
    current = (await coop.get("/api/v1/members", headers=coop.auth)).json()["items"]
    assert [(m["handle"], m["role"]) for m in current] == [
        ("ana@alpha.test", "admin"),
        ("ben@alpha.test", "member"),
    ]
    everyone = (await coop.get("/api/v1/members?all=true", headers=coop.auth)).json()["items"]
    assert [m["handle"] for m in everyone if m["left_at"]] == ["carla@alpha.test"]
    again = await coop.request("DELETE", f"/api/v1/members/{carla['id']}", headers=coop.auth)
    assert again.status_code == 409
    changed = await coop.request(
        "PATCH", f"/api/v1/members/{ana['id']}", json={"role": "observer"}, headers=coop.auth
    )
    assert changed.json()["role"] == "observer"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"username": "Ana!"}, "username"),
        ({"username": "ana", "role": "boss"}, "role"),
        ({"username": "ana", "college": "workers"}, "college"),
        ({"username": "ana", "joined_at": "last year"}, "joined_at"),
        ({"username": "ana", "password": "short"}, "password"),
        ({"username": "ana", "remote": "bob@beta.test"}, "username"),
        ({"remote": "bob@beta.test", "password": "long enough"}, "password"),
        ({"username": "ana", "shares": 3}, "shares"),
        ({}, "username"),
    ],
)
async def test_invalid_members_are_refused_with_the_field(
    network: Network, fields: dict[str, Any], field: str
) -> None:
    coop = await network.add("alpha.test")

    response = await coop.request("POST", "/api/v1/members", json=fields, headers=coop.auth)

    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert (await coop.get("/api/v1/members", headers=coop.auth)).json()["items"] == []


async def test_a_taken_name_is_a_conflict(network: Network) -> None:
    coop = await network.add("alpha.test")
    await add(coop, username="ana")

    for username in ("ana", "coop"):
        response = await coop.request(
            "POST", "/api/v1/members", json={"username": username}, headers=coop.auth
        )
        assert response.status_code == 409


async def test_colleges_weigh_100_percent_and_every_member_has_one(network: Network) -> None:
    coop = await network.add("alpha.test")
    uneven = {"colleges": [{"name": "workers", "weight": "50"}, {"name": "users", "weight": 40}]}
    refused = await coop.request("PUT", "/api/v1/colleges", json=uneven, headers=coop.auth)
    assert refused.status_code == 422
    assert "90.00 %" in refused.json()["reason"]

    colleges = {
        "colleges": [
            {"name": "workers", "weight": "50"},
            {"name": "users", "weight": "30"},
            {"name": "supporters", "weight": "20.00"},
        ]
    }
    response = await coop.request("PUT", "/api/v1/colleges", json=colleges, headers=coop.auth)

    assert response.status_code == 200, response.text
    assert response.json()["colleges"] == [
        {"name": "supporters", "weight": "20.00"},
        {"name": "users", "weight": "30.00"},
        {"name": "workers", "weight": "50.00"},
    ]
    no_college = await coop.request(
        "POST", "/api/v1/members", json={"username": "ana"}, headers=coop.auth
    )
    assert no_college.status_code == 422
    assert no_college.json()["field"] == "college"
    ana = await add(coop, username="ana", college="workers")
    assert ana["college"] == "workers"
    drop = {"colleges": [{"name": "users", "weight": "100"}]}
    dropping = await coop.request("PUT", "/api/v1/colleges", json=drop, headers=coop.auth)
    assert dropping.status_code == 409


async def test_a_member_logs_in_with_a_password_hashed_by_argon2(network: Network) -> None:
    coop = await network.add("alpha.test")
    await add(coop, username="ana", password="correct horse battery")
    stored = await coop.node.db.read(lambda c: members.login_candidate(c, "ana"))
    assert stored is not None
    assert stored[1] is not None
    assert stored[1].startswith("$argon2id$")

    wrong = await coop.request(
        "POST", "/api/v1/login", json={"username": "ana", "password": "wrong horse"}
    )
    nobody = await coop.request(
        "POST", "/api/v1/login", json={"username": "zoe", "password": "wrong horse"}
    )
    right = await coop.request(
        "POST", "/api/v1/login", json={"username": "ana", "password": "correct horse battery"}
    )

    assert wrong.status_code == nobody.status_code == 422
    assert right.status_code == 201
    token = {"Authorization": f"Bearer {right.json()['token']}"}
    assert (await coop.get("/api/v1/members", headers=token)).status_code == 200
    assert (await coop.get("/api/v1/node", headers=token)).status_code == 403


async def test_token_roles_decide_what_a_member_may_do(network: Network) -> None:
    coop = await network.add("alpha.test")
    observer = await token_for(coop, (await add(coop, username="olga", role="observer"))["id"])
    member = await token_for(coop, (await add(coop, username="ben"))["id"])
    offer = {
        "title": {"fr": "Miel de châtaignier"},
        "price": {"amount": "8.50", "currency": "EUR"},
        "unit": "kg",
        "categories": ["honey"],
    }

    as_observer = await coop.request("POST", "/api/v1/offers", json=offer, headers=observer)
    as_member = await coop.request("POST", "/api/v1/offers", json=offer, headers=member)
    adding = await coop.request("POST", "/api/v1/members", json={"username": "zoe"}, headers=member)

    assert as_observer.status_code == 403
    assert as_member.status_code == 201, as_member.text
    assert adding.status_code == 403
    assert (await coop.get("/api/v1/members", headers=observer)).status_code == 200
    assert (await coop.get("/api/v1/node", headers=coop.auth)).status_code == 200


async def test_removing_a_member_revokes_their_tokens(network: Network) -> None:
    coop = await network.add("alpha.test")
    ben = await add(coop, username="ben")
    token = await token_for(coop, ben["id"])
    assert (await coop.get("/api/v1/members", headers=token)).status_code == 200

    await coop.request("DELETE", f"/api/v1/members/{ben['id']}", headers=coop.auth)

    assert (await coop.get("/api/v1/members", headers=token)).status_code == 401
    revoked = await coop.node.db.read(
        lambda c: c.execute(select(api_tokens.c.revoked_at).where(api_tokens.c.id == 2)).scalar()
    )
    assert revoked is not None
    no_token = await coop.request("POST", f"/api/v1/members/{ben['id']}/tokens", headers=coop.auth)
    assert no_token.status_code == 409


async def test_a_new_role_needs_new_tokens(network: Network) -> None:
    coop = await network.add("alpha.test")
    ben = await add(coop, username="ben", role="observer")
    old = await token_for(coop, ben["id"])

    await coop.request(
        "PATCH", f"/api/v1/members/{ben['id']}", json={"role": "admin"}, headers=coop.auth
    )

    assert (await coop.get("/api/v1/node", headers=old)).status_code == 401
    new = await token_for(coop, ben["id"])
    assert (await coop.get("/api/v1/node", headers=new)).status_code == 200
