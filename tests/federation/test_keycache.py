"""Remote keys: one fetch per key, ownership checked, re-fetched at most once in a while."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from federation import keys
from federation.clock import ManualClock
from federation.errors import FetchError, NotAuthorized
from federation.keycache import KeyCache

ACTOR = "https://peer.example/users/alice"
KEY_ID = ACTOR + "#main-key"


def public_pem() -> str:
    return keys.public_pem(keys.load_own_private_key(keys.generate_rsa_private_pem()))


PEM = public_pem()


def actor_document(**key: Any) -> dict[str, Any]:
    return {
        "id": ACTOR,
        "type": "Person",
        "publicKey": {"id": KEY_ID, "owner": ACTOR, "publicKeyPem": PEM, **key},
    }


class Documents:
    def __init__(self, documents: dict[str, dict[str, Any]], delay: float = 0.0):
        self.documents = documents
        self.delay = delay
        self.calls: list[str] = []
        self.fresh: list[bool] = []

    async def __call__(self, url: str, fresh: bool) -> dict[str, Any]:
        self.calls.append(url)
        self.fresh.append(fresh)
        await asyncio.sleep(self.delay)
        return self.documents[url]


def cache(documents: Documents, **kwargs: Any) -> KeyCache:
    return KeyCache(documents, ManualClock(datetime(2027, 1, 1, tzinfo=UTC)), **kwargs)


async def test_a_key_is_fetched_once_however_many_requests_wait_for_it() -> None:
    documents = Documents({ACTOR: actor_document()}, delay=0.05)
    keycache = cache(documents)

    found = await asyncio.gather(*(keycache.get(KEY_ID) for _ in range(50)))

    assert documents.calls == [ACTOR]
    assert {k.owner for k in found} == {ACTOR}
    assert isinstance(found[0].public_key, rsa.RSAPublicKey)
    await keycache.get(KEY_ID)
    assert documents.calls == [ACTOR]


async def test_a_slow_key_fetch_gives_up_after_the_limit() -> None:
    keycache = cache(Documents({ACTOR: actor_document()}, delay=5), timeout=0.1)

    with pytest.raises(FetchError, match=r"more than 0\.1 s"):
        await keycache.get(KEY_ID)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (actor_document(id=ACTOR + "#other-key"), "does not publish the key"),
        (actor_document(owner="https://evil.example/users/mallory"), "is owned by"),
        ({"id": ACTOR, "type": "Person"}, "neither an actor nor the key"),
        (actor_document(publicKeyPem="not a key"), "key"),
    ],
)
async def test_a_key_that_is_not_the_actors_own_is_refused(
    document: dict[str, Any], reason: str
) -> None:
    keycache = cache(Documents({ACTOR: document}))

    with pytest.raises(NotAuthorized, match=reason):
        await keycache.get(KEY_ID)
    assert keycache.cached(KEY_ID) is None


async def test_a_separate_key_document_needs_its_owner_to_list_it() -> None:
    key_url = "https://peer.example/keys/1"
    key_document = {"id": key_url, "type": "CryptographicKey", "owner": ACTOR, "publicKeyPem": PEM}
    listed = {**actor_document(), "publicKey": {"id": key_url, "owner": ACTOR, "publicKeyPem": PEM}}

    good = await cache(Documents({key_url: key_document, ACTOR: listed})).get(key_url)
    assert good.owner == ACTOR

    with pytest.raises(NotAuthorized, match="does not publish"):
        await cache(Documents({key_url: key_document, ACTOR: actor_document()})).get(key_url)


async def test_an_ed25519_multikey_in_assertion_method_is_read() -> None:
    private = keys.load_own_private_key(keys.generate_ed25519_private_pem())
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    key_id = ACTOR + "#ed25519-key"
    document = {
        "id": ACTOR,
        "assertionMethod": [
            {
                "id": key_id,
                "type": "Multikey",
                "controller": ACTOR,
                "publicKeyMultibase": keys.ed25519_to_multibase(private.public_key()),
            }
        ],
    }

    key = await cache(Documents({ACTOR: document})).get(key_id)

    assert isinstance(key.public_key, ed25519.Ed25519PublicKey)


async def test_a_failed_verification_refetches_at_most_once_per_interval() -> None:
    documents = Documents({ACTOR: actor_document()})
    clock = ManualClock(datetime(2027, 1, 1, tzinfo=UTC))
    keycache = KeyCache(documents, clock)
    await keycache.get(KEY_ID)

    assert await keycache.refetch(KEY_ID) is not None
    assert await keycache.refetch(KEY_ID) is None
    clock.advance(60)
    assert await keycache.refetch(KEY_ID) is None
    clock.advance(5 * 60)
    assert await keycache.refetch(KEY_ID) is not None
    assert documents.fresh == [False, True, True]


async def test_forgetting_an_actor_drops_its_keys() -> None:
    keycache = cache(Documents({ACTOR: actor_document()}))
    await keycache.get(KEY_ID)
    assert keycache.knows_actor(ACTOR)

    keycache.forget_actor(ACTOR)

    assert not keycache.knows_actor(ACTOR)
    assert keycache.cached(KEY_ID) is None


async def test_the_record_of_refetches_stays_bounded_and_forgets_what_no_longer_counts() -> None:
    clock = ManualClock(datetime(2027, 1, 1, tzinfo=UTC))
    key_ids = [f"{ACTOR}#key-{n}" for n in range(50)]
    document = actor_document()
    document["publicKey"] = [{"id": k, "owner": ACTOR, "publicKeyPem": PEM} for k in key_ids]
    keycache = KeyCache(Documents({ACTOR: document}), clock, max_entries=10)

    for key_id in key_ids:
        await keycache.refetch(key_id)

    assert keycache.refetches_remembered == 10
    clock.advance(6 * 60)
    await keycache.refetch(key_ids[0])
    assert keycache.refetches_remembered == 1
