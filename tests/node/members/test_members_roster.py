"""The roster: the co-op's members collection. Its size is always public; its items
are listed only when the co-op's setting says so."""

from __future__ import annotations

from tests.support.network import Network, TestNode

AS2 = {"Accept": "application/activity+json"}


async def add(coop: TestNode, username: str, **fields: str) -> int:
    response = await coop.request(
        "POST", "/api/v1/members", json={"username": username, **fields}, headers=coop.auth
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_the_roster_lists_current_members_with_their_college(network: Network) -> None:
    coop = await network.add("alpha.test")
    colleges = {"colleges": [{"name": "workers", "weight": 60}, {"name": "users", "weight": 40}]}
    await coop.request("PUT", "/api/v1/colleges", json=colleges, headers=coop.auth)
    await add(coop, "ana", college="workers", joined_at="2025-04-01")
    ben = await add(coop, "ben", college="users", joined_at="2026-02-01", role="observer")
    gone = await add(coop, "carla", college="users")
    await coop.request("DELETE", f"/api/v1/members/{gone}", headers=coop.auth)

    actor = (await coop.get("/actors/coop", headers=AS2)).json()
    collection = (await coop.get("/actors/coop/members", headers=AS2)).json()
    page = (await coop.get("/actors/coop/members?page=1", headers=AS2)).json()

    assert actor["members"] == "https://alpha.test/actors/coop/members"
    assert collection["totalItems"] == 2
    assert collection["first"] == "https://alpha.test/actors/coop/members?page=1"
    assert page["orderedItems"] == [
        {
            "actor": "https://alpha.test/actors/ana",
            "memberSince": "2025-04-01T00:00:00Z",
            "role": "member",
            "college": "workers",
        },
        {
            "actor": "https://alpha.test/actors/ben",
            "memberSince": "2026-02-01T00:00:00Z",
            "role": "observer",
            "college": "users",
        },
    ]
    assert ben


async def test_a_private_roster_shows_its_size_only(network: Network) -> None:
    coop = await network.add("alpha.test", public_roster=False)
    await add(coop, "ana")
    await add(coop, "ben")

    collection = (await coop.get("/actors/coop/members", headers=AS2)).json()
    page = (await coop.get("/actors/coop/members?page=1", headers=AS2)).json()

    assert collection["totalItems"] == 2
    assert "first" not in collection
    assert collection["orderedItems"] == []
    assert page == collection


async def test_only_the_coop_has_a_members_collection(network: Network) -> None:
    coop = await network.add("alpha.test")
    await add(coop, "ana")

    assert (await coop.get("/actors/ana/members")).status_code == 404
    assert (await coop.get("/actors/coop/members?page=zero")).status_code == 400


async def test_a_private_roster_is_listed_to_the_signed_requests_of_partners(
    network: Network,
) -> None:
    coop = await network.add("alpha.test", public_roster=False, roster_partners=("beta.test",))
    partner = await network.add("beta.test")
    stranger = await network.add("gamma.test")
    await add(coop, "ana")
    page_url = "https://alpha.test/actors/coop/members?page=1"

    seen_by_partner = await partner.node.peers.fetch(page_url)
    unsigned = (await coop.get("/actors/coop/members?page=1", headers=AS2)).json()

    assert [item["actor"] for item in seen_by_partner["orderedItems"]] == [
        "https://alpha.test/actors/ana"
    ]
    assert unsigned["orderedItems"] == []
    assert unsigned["totalItems"] == 1
    signed_by_stranger = await stranger.http.get(
        page_url, headers=AS2, auth=stranger.node.peers.signer
    )
    assert signed_by_stranger.json()["orderedItems"] == []
    assert signed_by_stranger.json()["totalItems"] == 1


async def test_a_forged_partner_signature_is_refused(network: Network) -> None:
    coop = await network.add("alpha.test", public_roster=False, roster_partners=("beta.test",))
    await network.add("beta.test")
    await add(coop, "ana")
    forged = {
        **AS2,
        "Date": "Mon, 01 Mar 2027 09:00:00 GMT",
        "Signature": 'keyId="https://beta.test/actors/coop#main-key",algorithm="rsa-sha256",'
        'headers="(request-target) host date",signature="Zm9yZ2Vk"',
    }

    response = await coop.get("/actors/coop/members?page=1", headers=forged)

    assert response.status_code == 401, response.text
    assert "ana" not in response.text
