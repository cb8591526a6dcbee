"""The inbox verifies before it stores: every known attack is refused and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from federation import httpsig, keys
from node.inbox.worker import run_once
from node.storage.tables import inbox_activities
from tests.support.network import Network, TestNode

AS2 = "application/activity+json"


def note_activity(sender: TestNode, n: int = 1, **overrides: Any) -> dict[str, Any]:
    actor = f"{sender.base}/actors/coop"
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{sender.base}/activities/{n}",
        "type": "Create",
        "actor": actor,
        "object": {
            "id": f"{sender.base}/notes/{n}",
            "type": "Note",
            "attributedTo": actor,
            "content": "hello",
        },
    }
    activity.update(overrides)
    return activity


async def post(
    network: Network,
    sender: TestNode,
    receiver: TestNode,
    activity: dict[str, Any] | bytes,
    *,
    path: str = "/inbox",
    headers: dict[str, str] | None = None,
    signed: bool = True,
) -> Any:
    body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    return await network.http.post(
        receiver.base + path,
        content=body,
        headers={"Content-Type": AS2, **(headers or {})},
        auth=sender.node.peers.signer if signed else None,
    )


def signed_request(
    network: Network, sender: TestNode, receiver: TestNode
) -> tuple[bytes, httpx.Request]:
    """A request signed now by ``sender``, kept to be sent (or tampered with) later."""
    body = json.dumps(note_activity(sender)).encode()
    request = network.http.build_request(
        "POST", receiver.base + "/inbox", content=body, headers={"Content-Type": AS2}
    )
    return body, next(sender.node.peers.signer.auth_flow(request))


async def stored(node: TestNode) -> int:
    query = select(func.count()).select_from(inbox_activities)
    return int(await node.node.db.read(lambda c: c.execute(query).scalar_one()))


@pytest.fixture
async def pair(network: Network) -> tuple[TestNode, TestNode]:
    return await network.add("alpha.test"), await network.add("beta.test")


async def test_a_signed_activity_is_stored_and_answered_202(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair

    response = await post(network, beta, alpha, note_activity(beta))

    assert response.status_code == 202, response.text
    assert await stored(alpha) == 1
    assert ("GET", "https://beta.test/actors/coop") in network.router.log


async def test_the_key_fetch_is_signed_by_the_receiving_coop(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    seen: list[str] = []
    original = network.router.handle_async_request

    async def spy(request: Any) -> Any:
        if request.method == "GET":
            seen.append(request.headers.get("signature", ""))
        return await original(request)

    network.router.handle_async_request = spy  # type: ignore[method-assign]
    await post(network, beta, alpha, note_activity(beta))

    assert seen
    assert 'keyId="https://alpha.test/actors/coop#main-key"' in seen[0]


async def test_a_replayed_request_is_accepted_once_and_takes_effect_once(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    _, signed = signed_request(network, beta, alpha)

    first = await network.http.send(signed)
    second = await network.http.send(signed)

    assert (first.status_code, second.status_code) == (202, 202)
    assert await stored(alpha) == 1


async def test_the_actor_must_be_the_signer(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    gamma = await network.add("gamma.test")
    forged = note_activity(gamma, actor=f"{gamma.base}/actors/coop")

    response = await post(network, beta, alpha, forged)

    assert response.status_code == 401
    assert "signed by https://beta.test/actors/coop" in response.json()["reason"]
    assert await stored(alpha) == 0


async def test_an_activity_id_on_another_host_is_refused(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair

    response = await post(
        network, beta, alpha, note_activity(beta, id="https://alpha.test/activities/spoofed")
    )

    assert response.status_code == 400
    assert await stored(alpha) == 0


async def test_a_key_of_another_host_does_not_verify(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    gamma = await network.add("gamma.test")
    activity = note_activity(beta)
    body = json.dumps(activity).encode()
    # Signed with beta's key but claiming gamma's keyId.
    rsa_pem = beta.node.db.read_sync(
        lambda c: __import__("node.services.identity", fromlist=["x"]).get_actor(c, "coop")
    ).rsa_private_pem
    headers = httpsig.sign_request(
        "POST",
        alpha.base + "/inbox",
        {},
        body,
        f"{gamma.base}/actors/coop#main-key",
        keys.load_own_private_key(rsa_pem),
        network.clock.now(),
    )

    response = await network.http.post(
        alpha.base + "/inbox", content=body, headers={"Content-Type": AS2, **headers}
    )

    assert response.status_code == 401
    assert await stored(alpha) == 0


def rogue_actor(key_id: str, owner: str, pem: str) -> dict[str, Any]:
    actor = "https://rogue.test/users/mallory"
    return {
        "id": actor,
        "type": "Person",
        "inbox": actor + "/inbox",
        "publicKey": {"id": key_id, "owner": owner, "publicKeyPem": pem},
    }


@pytest.mark.parametrize(
    ("key_id_in_document", "owner", "reason"),
    [
        (
            "https://rogue.test/users/mallory#other-key",
            "https://rogue.test/users/mallory",
            "does not publish",
        ),
        (
            "https://rogue.test/users/mallory#main-key",
            "https://beta.test/actors/coop",
            "is owned by",
        ),
    ],
)
async def test_a_key_document_that_does_not_match_is_refused(
    network: Network,
    pair: tuple[TestNode, TestNode],
    key_id_in_document: str,
    owner: str,
    reason: str,
) -> None:
    alpha, _ = pair
    private = keys.load_own_private_key(keys.generate_rsa_private_pem())
    actor = "https://rogue.test/users/mallory"
    network.add_static(
        "rogue.test",
        {"/users/mallory": rogue_actor(key_id_in_document, owner, keys.public_pem(private))},
    )
    activity = {"id": "https://rogue.test/a/1", "type": "Create", "actor": actor, "object": "x"}
    body = json.dumps(activity).encode()
    headers = httpsig.sign_request(
        "POST", alpha.base + "/inbox", {}, body, actor + "#main-key", private, network.clock.now()
    )

    response = await network.http.post(
        alpha.base + "/inbox", content=body, headers={"Content-Type": AS2, **headers}
    )

    assert response.status_code == 401
    assert reason in response.json()["reason"]
    assert await stored(alpha) == 0


async def test_a_body_changed_after_signing_is_refused(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    body, signed = signed_request(network, beta, alpha)
    tampered = network.http.build_request(
        "POST",
        alpha.base + "/inbox",
        content=body.replace(b"hello", b"HELLO"),
        headers={k: v for k, v in signed.headers.items() if k.lower() != "content-length"},
    )

    response = await network.http.send(tampered)

    assert response.status_code == 401
    assert "igest" in response.json()["reason"]
    assert await stored(alpha) == 0


async def test_a_request_signed_13_hours_ago_is_refused(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    _, signed = signed_request(network, beta, alpha)
    network.clock.advance(13 * 3600)

    response = await network.http.send(signed)

    assert response.status_code == 401
    assert await stored(alpha) == 0


async def test_an_unsigned_post_is_refused(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair

    response = await post(network, beta, alpha, note_activity(beta), signed=False)

    assert response.status_code == 401
    assert await stored(alpha) == 0


async def test_a_body_over_1_mib_is_refused_before_any_fetch(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    huge = note_activity(beta)
    huge["object"]["content"] = "x" * (1024 * 1024)
    network.router.log.clear()

    response = await post(network, beta, alpha, huge)

    assert response.status_code == 413
    assert [entry for entry in network.router.log if entry[0] == "GET"] == []
    assert await stored(alpha) == 0


async def test_deeply_nested_json_is_refused(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    body = (
        b'{"id": "https://beta.test/a/1", "type": "Create", '
        b'"actor": "https://beta.test/actors/coop", "object": '
        + b"[" * 50_000
        + b"]" * 50_000
        + b"}"
    )
    network.router.log.clear()

    response = await post(network, beta, alpha, body)

    assert response.status_code == 400
    assert "nested" in response.json()["reason"]
    assert [entry for entry in network.router.log if entry[0] == "GET"] == []


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded"]
)
async def test_a_wrong_content_type_is_a_415(
    network: Network, pair: tuple[TestNode, TestNode], content_type: str
) -> None:
    alpha, beta = pair

    response = await post(
        network, beta, alpha, note_activity(beta), headers={"Content-Type": content_type}
    )

    assert response.status_code == 415
    assert await stored(alpha) == 0


async def test_a_delete_from_an_unknown_actor_is_202_without_any_fetch(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, _ = pair
    network.router.log.clear()
    gone = "https://vanished.test/users/bob"
    delete = {"id": gone + "#delete", "type": "Delete", "actor": gone, "object": gone}

    response = await network.http.post(
        alpha.base + "/inbox",
        content=json.dumps(delete).encode(),
        headers={
            "Content-Type": AS2,
            "Signature": 'keyId="' + gone + '#main-key",signature="AAAA"',
        },
    )

    assert response.status_code == 202
    assert [entry for entry in network.router.log if entry[0] == "GET"] == []
    assert await stored(alpha) == 0


async def test_unknown_types_are_stored_and_ignored_without_the_worker(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    await post(network, beta, alpha, note_activity(beta, type="Dance"))

    assert await run_once(alpha.node) == 0

    state = await alpha.node.db.read(
        lambda c: c.execute(select(inbox_activities.c.state)).scalar_one()
    )
    assert state == "ignored"


async def test_a_handled_type_is_taken_by_the_worker_and_marked_done(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    actor = f"{beta.base}/actors/coop"
    update = {"id": f"{beta.base}/activities/u1", "type": "Update", "actor": actor, "object": actor}
    assert (await post(network, beta, alpha, update)).status_code == 202
    # Parsed once, at receipt: the worker takes it from there.
    assert alpha.node.inbox_parsed[update["id"]][1] == update

    assert await run_once(alpha.node) == 1
    assert alpha.node.inbox_parsed == {}

    state = await alpha.node.db.read(
        lambda c: c.execute(select(inbox_activities.c.state)).scalar_one()
    )
    assert state == "done"


async def test_an_actor_inbox_for_nobody_is_404(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair

    response = await post(network, beta, alpha, note_activity(beta), path="/actors/nobody/inbox")

    assert response.status_code == 404


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
async def test_an_rfc9421_signed_activity_is_accepted(
    network: Network, pair: tuple[TestNode, TestNode], kind: str
) -> None:
    from federation import rfc9421
    from node.services import identity

    alpha, beta = pair
    coop = beta.node.db.read_sync(lambda c: identity.get_actor(c, "coop"))
    pem = coop.rsa_private_pem if kind == "rsa" else coop.ed25519_private_pem
    assert pem is not None
    key_id = f"{beta.base}/actors/coop#" + ("main-key" if kind == "rsa" else "ed25519-key")
    body = json.dumps(note_activity(beta)).encode()
    headers = rfc9421.sign_request(
        "POST",
        alpha.base + "/inbox",
        {"Content-Type": AS2},
        body,
        key_id,
        keys.load_own_private_key(pem),
        network.clock.now(),
    )

    response = await network.http.post(
        alpha.base + "/inbox", content=body, headers={"Content-Type": AS2, **headers}
    )

    assert response.status_code == 202, response.text
    assert await stored(alpha) == 1


async def test_an_ed25519_rfc9421_signature_speaks_only_for_its_own_actor(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    """Members' ballots to a coopnode are signed this way (federation.poster's
    Rfc9421Signer): the key's owner must still be the activity's actor."""
    from federation.poster import Payload, Rfc9421Signer
    from node.services import identity

    alpha, beta = pair
    gamma = await network.add("gamma.test")
    coop = beta.node.db.read_sync(lambda c: identity.get_actor(c, "coop"))
    assert coop.ed25519_private_pem is not None
    signer = Rfc9421Signer(
        f"{beta.base}/actors/coop#ed25519-key",
        keys.load_own_private_key(coop.ed25519_private_pem),
        network.clock,
    )

    async def send(activity: dict[str, Any]) -> httpx.Response:
        signed = signer.sign(alpha.base + "/inbox", Payload.of(json.dumps(activity).encode(), AS2))
        return await network.http.post(
            str(signed.url), content=signed.content, headers=signed.headers
        )

    forged = await send(note_activity(gamma, actor=f"{gamma.base}/actors/coop"))
    assert forged.status_code == 401
    assert "signed by https://beta.test/actors/coop" in forged.json()["reason"]
    assert await stored(alpha) == 0
    honest = await send(note_activity(beta))
    assert honest.status_code == 202, honest.text
    assert await stored(alpha) == 1


async def test_the_production_client_refuses_loopback_unless_the_node_is_local(
    tmp_path: Any,
) -> None:
    import httpx

    from node.runtime import make_http_client
    from node.settings import Settings

    public = Settings(data_dir=tmp_path, domain="coop.example", name="Coop")
    async with make_http_client(public) as http:
        with pytest.raises(httpx.ConnectError, match=r"forbidden address 127\.0\.0\.1"):
            await http.get("http://127.0.0.1:9/")


async def test_a_body_that_is_not_utf8_is_a_400_not_a_crash(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    # json.loads would read UTF-16 happily; JSON between systems is UTF-8 (RFC 8259).
    alpha, beta = pair
    body = json.dumps(note_activity(beta)).encode("utf-16")

    response = await post(network, beta, alpha, body)

    assert response.status_code == 400
    assert "UTF-8" in response.json()["reason"]
    assert await stored(alpha) == 0


async def test_the_shared_inbox_answers_other_methods_through_the_router(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, _ = pair

    response = await network.http.get(alpha.base + "/inbox")

    assert response.status_code == 405


async def test_a_blocked_domain_is_refused_before_any_key_fetch(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    await alpha.decide_domain("beta.test", "blocked")

    response = await post(network, beta, alpha, note_activity(beta))

    assert response.status_code == 403
    assert "blocked" in response.json()["reason"]
    assert [entry for entry in network.router.log if entry[0] == "GET"] == []
    assert await stored(alpha) == 0


async def test_an_announce_of_a_blocked_domains_object_is_refused(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    await alpha.decide_domain("spam.test", "blocked")
    boost = note_activity(beta, 7, type="Announce", object="https://relay.spam.test/notes/1")

    response = await post(network, beta, alpha, boost)

    assert response.status_code == 403
    assert "spam.test" in response.json()["reason"]
    assert await stored(alpha) == 0


async def test_allow_list_mode_refuses_every_domain_not_listed(network: Network) -> None:
    alpha = await network.add("alpha.test", federation="allowlist")
    beta = await network.add("beta.test")

    response = await post(network, beta, alpha, note_activity(beta))

    assert response.status_code == 403
    assert "lists" in response.json()["reason"]
    assert [entry for entry in network.router.log if entry[0] == "GET"] == []


async def test_a_post_is_kept_as_ignored_and_an_offer_waits_for_the_worker(
    network: Network, pair: tuple[TestNode, TestNode]
) -> None:
    alpha, beta = pair
    offer = note_activity(beta, 2)
    offer["object"] = {**offer["object"], "type": "Proposal", "publishes": {}}
    by_reference = note_activity(beta, 3, object=f"{beta.base}/offers/elsewhere")

    for activity in (note_activity(beta, 1), offer, by_reference):
        assert (await post(network, beta, alpha, activity)).status_code == 202

    query = select(inbox_activities.c.activity_id, inbox_activities.c.state).order_by(
        inbox_activities.c.id
    )
    rows = await alpha.node.db.read(lambda c: c.execute(query).all())
    assert [r.state for r in rows] == ["ignored", "pending", "pending"]


def test_a_policys_answers_are_kept_and_a_new_policy_answers_afresh() -> None:
    """A request asks the policy about its host several times; the answer is worked out
    once per policy, and a decision of the admin's (a new policy) is seen at once."""
    from node.services.domains import MAX_ANSWERS, DomainPolicy

    open_policy = DomainPolicy()
    assert open_policy.refusal("spam.example") is None
    assert open_policy.answers == {"spam.example": None}
    blocked = DomainPolicy(blocked=frozenset({"spam.example"}))
    assert blocked.refusal("a.spam.example") == (
        "a.spam.example is blocked by this node (as part of spam.example)"
    )
    assert blocked.refusal("A.Spam.Example.") == blocked.refusal("a.spam.example")
    assert blocked.refusal("ham.example") is None
    listed = DomainPolicy(allowed=frozenset({"coop.example"}), allow_list_mode=True)
    assert listed.refusal("x.coop.example") is None
    assert "federates only with the domains its admin lists" in (
        listed.refusal("other.example") or ""
    )
    for n in range(MAX_ANSWERS + 10):
        listed.refusal(f"h{n}.example")
    assert len(listed.answers) <= MAX_ANSWERS
