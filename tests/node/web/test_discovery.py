"""How other servers find a co-op: WebFinger, NodeInfo, the Group actor, contexts."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from federation import jsonld, keys, schemes
from tests.support.mastodon import Mastodon
from tests.support.network import Network

AS2 = "application/activity+json"
LD_AS2 = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
MASTODON = "application/activity+json, application/ld+json"


async def test_webfinger_finds_the_coop_by_acct(network: Network) -> None:
    coop = await network.add("alpha.test", name="Fair Trade Market")

    response = await coop.get("/.well-known/webfinger", params={"resource": "acct:coop@alpha.test"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jrd+json")
    assert response.headers["access-control-allow-origin"] == "*"
    jrd = response.json()
    assert jrd["subject"] == "acct:coop@alpha.test"
    self_links = [link for link in jrd["links"] if link["rel"] == "self"]
    assert self_links == [{"rel": "self", "type": AS2, "href": "https://alpha.test/actors/coop"}]


@pytest.mark.parametrize(
    "resource",
    [
        "https://alpha.test/actors/coop",
        "https://alpha.test/@coop",
        "acct:COOP@ALPHA.TEST",
        "coop@alpha.test",
    ],
)
async def test_webfinger_accepts_the_actor_url_and_any_case(
    network: Network, resource: str
) -> None:
    coop = await network.add("alpha.test")

    response = await coop.get("/.well-known/webfinger", params={"resource": resource})

    assert response.status_code == 200
    assert response.json()["subject"] == "acct:coop@alpha.test"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"resource": ""}, 400),
        ({"resource": "acct:"}, 400),
        ({"resource": "acct:coop"}, 400),
        ({"resource": "acct:co op@alpha.test"}, 400),
        ({"resource": "coop alpha.test"}, 400),
        ({"resource": "@"}, 400),
        # Well-formed URIs this server knows nothing about (RFC 7033, section 4.5).
        ({"resource": "mailto:coop@alpha.test"}, 404),
        ({"resource": "did:web:alpha.test"}, 404),
        ({"resource": "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"}, 404),
        ({"resource": "nobody@alpha.test"}, 404),
        ({"resource": "acct:nobody@alpha.test"}, 404),
        ({"resource": "acct:coop@elsewhere.test"}, 404),
        ({"resource": "https://elsewhere.test/actors/coop"}, 404),
        ({"resource": "https://alpha.test/actors/nobody"}, 404),
    ],
)
async def test_webfinger_errors_say_what_is_wrong(
    network: Network, params: dict[str, str], status: int
) -> None:
    coop = await network.add("alpha.test")

    response = await coop.get("/.well-known/webfinger", params=params)

    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json()["reason"]


async def test_nodeinfo_is_discoverable_and_names_the_coop_vocabulary(network: Network) -> None:
    coop = await network.add("alpha.test", name="Fair Trade Market")

    links = (await coop.get("/.well-known/nodeinfo")).json()["links"]
    (link,) = [x for x in links if x["rel"].endswith("/ns/schema/2.1")]
    response = await network.http.get(link["href"])

    assert response.status_code == 200
    assert "profile=" in response.headers["content-type"]
    document = response.json()
    assert document["software"]["name"] == "coopnode"
    assert document["protocols"] == ["activitypub"]
    assert document["metadata"]["nodeName"] == "Fair Trade Market"
    assert document["metadata"]["coop"]["vocabulary"] == jsonld.COOP_CONTEXT_URL
    assert isinstance(document["usage"]["users"]["total"], int)


@pytest.mark.parametrize("accept", [AS2, LD_AS2, MASTODON])
async def test_the_actor_answers_activitystreams_to_fediverse_servers(
    network: Network, accept: str
) -> None:
    coop = await network.add("alpha.test", name="Fair Trade Market")

    response = await coop.get("/actors/coop", headers={"Accept": accept})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(AS2)
    assert "Accept" in response.headers["vary"]
    actor = response.json()
    assert actor["id"] == "https://alpha.test/actors/coop"
    assert actor["type"] == "Group"
    assert actor["preferredUsername"] == "coop"
    assert actor["name"] == "Fair Trade Market"
    for key in ("inbox", "outbox", "followers", "following"):
        assert actor[key].startswith("https://alpha.test/actors/coop/")
    assert actor["endpoints"]["sharedInbox"] == "https://alpha.test/inbox"
    assert actor["offers"] == "https://alpha.test/actors/coop/offers"
    assert any(i["href"] == jsonld.COOP_CONTEXT_URL for i in actor["implements"])
    # So that servers which read it sign their deliveries with Ed25519 (RFC 9421).
    assert any(i["href"] == schemes.ED25519_CAPABILITY for i in actor["implements"])


async def test_the_actor_publishes_an_rsa_key_and_an_ed25519_multikey(network: Network) -> None:
    coop = await network.add("alpha.test")

    actor = (await coop.get("/actors/coop", headers={"Accept": AS2})).json()

    key = actor["publicKey"]
    assert key["id"] == "https://alpha.test/actors/coop#main-key"
    assert key["owner"] == actor["id"]
    public = keys.load_public_pem(key["publicKeyPem"])
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048
    (method,) = actor["assertionMethod"]
    assert method["type"] == "Multikey"
    assert method["controller"] == actor["id"]
    assert method["id"] == "https://alpha.test/actors/coop#ed25519-key"
    assert isinstance(
        keys.multibase_to_ed25519(method["publicKeyMultibase"]), ed25519.Ed25519PublicKey
    )
    assert "PRIVATE" not in str(actor)


async def test_the_actor_document_expands_offline_to_the_right_terms(network: Network) -> None:
    coop = await network.add("alpha.test")
    actor = (await coop.get("/actors/coop", headers={"Accept": AS2})).json()

    (expanded,) = jsonld.expand(actor)

    assert expanded["@type"] == ["https://www.w3.org/ns/activitystreams#Group"]
    assert "http://www.w3.org/ns/ldp#inbox" in expanded
    assert "https://w3id.org/security#publicKey" in expanded
    method = expanded["https://w3id.org/security#assertionMethod"][0]
    assert "https://w3id.org/security#publicKeyMultibase" in method
    assert expanded["https://coopnode.org/ns#offers"] == [
        {"@id": "https://alpha.test/actors/coop/offers"}
    ]


async def test_a_browser_gets_a_readable_profile_page(network: Network) -> None:
    coop = await network.add("alpha.test", name="Fair <Trade> Market")

    for path in ("/actors/coop", "/@coop"):
        response = await coop.get(path, headers={"Accept": BROWSER})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "Fair &lt;Trade&gt; Market" in response.text
        assert "@coop@alpha.test" in response.text


async def test_the_profile_address_redirects_servers_to_the_actor(network: Network) -> None:
    coop = await network.add("alpha.test")

    response = await coop.get("/@coop", headers={"Accept": AS2})

    assert response.status_code == 302
    assert response.headers["location"] == "https://alpha.test/actors/coop"


async def test_unknown_actors_are_404(network: Network) -> None:
    coop = await network.add("alpha.test")

    for path in ("/actors/nobody", "/actors/nobody/outbox", "/actors/nobody/followers"):
        response = await coop.get(path, headers={"Accept": AS2})
        assert response.status_code == 404, path


async def test_the_actor_collections_answer_as_ordered_collections(network: Network) -> None:
    coop = await network.add("alpha.test")

    for name in ("outbox", "followers", "following"):
        response = await coop.get(f"/actors/coop/{name}", headers={"Accept": AS2})
        assert response.status_code == 200
        collection = response.json()
        assert collection["id"] == f"https://alpha.test/actors/coop/{name}"
        assert collection["type"] == "OrderedCollection"
        assert collection["totalItems"] == 0


async def test_the_node_serves_the_contexts_it_uses(network: Network) -> None:
    coop = await network.add("alpha.test")

    response = await coop.get("/ns/coop-v1.jsonld")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    assert response.json() == jsonld.load_context(jsonld.COOP_CONTEXT_URL)
    assert (await coop.get("/ns/..%2Fpyproject.toml")).status_code == 404
    assert (await coop.get("/ns/nothing.jsonld")).status_code == 404


async def test_two_nodes_find_each_other_by_webfinger(network: Network) -> None:
    alpha = await network.add("alpha.test", name="Alpha Market")
    beta = await network.add("beta.test", name="Beta Food Network")

    from_alpha = await alpha.get(
        "/api/v1/lookup", params={"resource": "acct:coop@beta.test"}, headers=alpha.auth
    )
    from_beta = await beta.get(
        "/api/v1/lookup", params={"resource": "coop@alpha.test"}, headers=beta.auth
    )

    assert from_alpha.status_code == 200, from_alpha.text
    assert from_alpha.json()["id"] == "https://beta.test/actors/coop"
    assert from_alpha.json()["name"] == "Beta Food Network"
    assert from_beta.json()["id"] == "https://alpha.test/actors/coop"


async def test_a_lookup_reaches_servers_that_answer_only_signed_fetches(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    secure = Mastodon(network, "secure.test", authorized_fetch=True)
    secure.add_user("ines")

    by_handle = await alpha.get(
        "/api/v1/lookup", params={"resource": "acct:ines@secure.test"}, headers=alpha.auth
    )
    by_url = await alpha.get(
        "/api/v1/lookup",
        params={"resource": "https://secure.test/users/ines"},
        headers=alpha.auth,
    )
    unsigned = await network.http.get(
        "https://secure.test/users/ines", headers={"Accept": "application/activity+json"}
    )

    assert by_handle.status_code == 200, by_handle.text
    assert by_handle.json()["id"] == "https://secure.test/users/ines"
    assert by_url.status_code == 200, by_url.text
    assert unsigned.status_code == 401  # what the lookup met before it signed its fetches
    assert secure.signed_fetches
    assert set(secure.signed_fetches) == {"https://alpha.test/actors/coop#main-key"}


async def test_a_lookup_on_a_blocked_domain_fetches_nothing(network: Network) -> None:
    alpha = await network.add("alpha.test")
    await network.add("beta.test")
    await alpha.decide_domain("beta.test", "blocked")
    network.router.log.clear()

    response = await alpha.get(
        "/api/v1/lookup", params={"resource": "acct:coop@beta.test"}, headers=alpha.auth
    )
    by_url = await alpha.get(
        "/api/v1/lookup",
        params={"resource": "https://beta.test/actors/coop"},
        headers=alpha.auth,
    )

    assert response.status_code == 403, response.text
    assert by_url.status_code == 403, by_url.text
    assert not [url for _, url in network.router.log if url.startswith("https://beta.test")]


async def test_a_lookup_of_an_unreachable_or_unknown_account_explains_why(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    await network.add("beta.test")

    gone = await alpha.get(
        "/api/v1/lookup", params={"resource": "acct:coop@nowhere.test"}, headers=alpha.auth
    )
    unknown = await alpha.get(
        "/api/v1/lookup", params={"resource": "acct:nobody@beta.test"}, headers=alpha.auth
    )
    malformed = await alpha.get(
        "/api/v1/lookup", params={"resource": "not a handle"}, headers=alpha.auth
    )

    assert gone.status_code == 502
    assert "nowhere.test" in gone.json()["reason"]
    assert unknown.status_code == 502
    assert "404" in unknown.json()["reason"]
    assert malformed.status_code == 422
    assert malformed.json()["field"] == "resource"
