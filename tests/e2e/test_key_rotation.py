"""``coopnode keys rotate`` against two real ``coopnode serve`` processes: B follows A,
A's admin rotates A's keys from the command line while A serves; A's serving process
signs with the new keys, B fetches the key again when its cached one fails and
verifies A's next deliveries, and signatures made with the old keys are refused."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from federation import httpsig, keys
from federation.clock import SystemClock
from federation.mediatypes import AS2
from federation.poster import Payload, Rfc9421Signer
from node.services import identity
from node.services.identity import ActorWithKeys
from node.settings import load_settings
from node.storage.database import Database
from tests.support.processes import ServeProcess, run_coopnode

pytestmark = pytest.mark.e2e


def coop_keys(data_dir: Path) -> ActorWithKeys:
    """The co-op's keys as stored in its database, read beside the serving process."""
    db = Database(load_settings(data_dir).database_url, readers=1)
    try:
        return db.read_sync(lambda conn: identity.get_actor(conn, "coop"))
    finally:
        db.close()


def wait_for(check: str, *args: str, node: ServeProcess, seconds: float = 20) -> str:
    """Run ``coopnode *args`` until its output contains ``check``; returns the output."""
    deadline = time.monotonic() + seconds
    while check not in (output := run_coopnode(*args).stdout):
        assert time.monotonic() < deadline, output + node.read_output()
        time.sleep(0.3)
    return output


def test_a_rotated_key_is_published_and_verifies_at_the_follower(
    two_nodes: tuple[ServeProcess, ServeProcess], tmp_path: Path
) -> None:
    a, b = two_nodes
    a_dir, b_dir = str(a.data_dir), str(b.data_dir)
    followed = run_coopnode("follow", f"coop@127.0.0.1:{a.port}", "--data-dir", b_dir)
    assert "accepted" in followed.stdout, followed.stdout + followed.stderr + a.read_output()
    actor = f"{a.base}/actors/coop"
    old = coop_keys(a.data_dir)
    old_document = httpx.get(actor, headers={"Accept": AS2}).json()

    rotated = run_coopnode("keys", "rotate", "--data-dir", a_dir)

    assert rotated.returncode == 0, rotated.stderr
    assert f"New keys for {actor}" in rotated.stdout
    assert "queued for 1 inbox." in rotated.stdout
    document = httpx.get(actor, headers={"Accept": AS2}).json()
    assert document["publicKey"]["id"] == old_document["publicKey"]["id"]
    assert document["publicKey"]["publicKeyPem"] != old_document["publicKey"]["publicKeyPem"]
    assert document["assertionMethod"] != old_document["assertionMethod"]

    # The Accept, then the Update signed with the new key by the serving process, which
    # B verifies at the first attempt (a failure would leave it pending for a retry).
    wait_for("0 pending, 2 delivered", "deliveries", "--data-dir", a_dir, node=a)

    # A's next delivery verifies at B too: an offer reaches B's catalogue.
    offer = tmp_path / "offer.json"
    offer.write_text(
        json.dumps(
            {
                "title": {"en": "Lavender honey"},
                "categories": ["honey"],
                "price": {"amount": "8.00", "currency": "EUR"},
                "unit": "kg",
                "quantity": {"available": "10"},
            }
        )
    )
    created = run_coopnode("offers", "create", str(offer), "--data-dir", a_dir)
    assert created.returncode == 0, created.stderr
    wait_for("Lavender honey", "catalogue", "search", "honey", "--data-dir", b_dir, node=b)

    # Requests signed with the old keys are refused, under either scheme.
    def forged(n: int) -> bytes:
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{a.base}/activities/forged-{n}",
            "type": "Update",
            "actor": actor,
            "object": {k: v for k, v in document.items() if k != "@context"},
        }
        return json.dumps(activity).encode()

    assert old.ed25519_private_pem is not None
    assert old.rsa_private_pem is not None
    inbox = f"{b.base}/inbox"
    signed = Rfc9421Signer(
        document["assertionMethod"][0]["id"],
        keys.load_own_private_key(old.ed25519_private_pem),
        SystemClock(),
    ).sign(inbox, Payload.of(forged(1), AS2))
    refused = httpx.post(str(signed.url), content=signed.content, headers=signed.headers)
    assert refused.status_code == 401, refused.text
    refused = httpx.post(
        inbox,
        content=forged(2),
        headers={"Content-Type": AS2},
        auth=httpsig.SignatureAuth(
            document["publicKey"]["id"],
            keys.load_own_private_key(old.rsa_private_pem),
            SystemClock(),
        ),
    )
    assert refused.status_code == 401, refused.text
