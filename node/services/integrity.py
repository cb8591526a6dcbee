"""FEP-8b32 integrity proofs as the node makes and checks them: a document signed with
a local actor's Ed25519 key, and a peer's document checked against a key of the actor
it says signed it."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from federation import keys, proofs
from federation.errors import FederationError, FetchError, NotAuthorized, unreachable_now
from node.runtime import Node
from node.services import identity

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class ProofRefused(NotAuthorized):
    """A proof that is missing, unusable, by another actor's key, or false."""


@lru_cache(maxsize=64)
def _private_key(pem: bytes) -> Ed25519PrivateKey:
    private = keys.load_own_private_key(pem)
    assert isinstance(private, Ed25519PrivateKey)
    return private


def sign_as(
    conn: Connection, node: Node, username: str, document: dict[str, Any], *, created: datetime
) -> dict[str, Any]:
    """``document`` with a proof made with the local actor ``username``'s Ed25519 key."""
    pem = identity.get_actor(conn, username).ed25519_private_pem
    assert pem is not None
    return proofs.sign(
        document,
        _private_key(pem),
        verification_method=node.urls.actor_multikey(username),
        created=created,
    )


async def verify_by(
    node: Node, document: dict[str, Any], owner: str, *, what: str, context: Any = None
) -> None:
    """Check the proof on ``document`` with a key of ``owner``'s (fetched through the
    key cache). An object embedded in an activity or listed in a collection page may
    have lost its ``@context``: the one its proof names (which the signature covers)
    stands in for it, or else ``context`` (the activity's)."""
    if "@context" not in document:
        proof = document.get("proof")
        signed = proof.get("@context") if isinstance(proof, dict) else None
        fallback = signed if signed is not None else context
        if fallback is not None:
            document = {"@context": fallback, **document}
    try:
        method = proofs.verification_method(document)
    except proofs.ProofError as exc:
        raise ProofRefused(f"the {what}'s proof is unusable: {exc}") from exc
    try:
        key = await node.peers.keys.get(method)
    except FederationError as exc:
        if unreachable_now(exc):
            # The author's server is slow or down: not a false proof. A FetchError, so
            # that the inbox tries the activity again later rather than refusing it.
            raise FetchError(f"the {what}'s key cannot be fetched now: {exc}") from exc
        raise ProofRefused(f"the {what}'s proof names a key that cannot be read: {exc}") from exc
    if key.owner != owner or not isinstance(key.public_key, Ed25519PublicKey):
        raise ProofRefused(f"the {what}'s proof uses a key of {key.owner}, not of {owner}")
    try:
        proofs.verify(document, key.public_key)
    except proofs.ProofError as exc:
        raise ProofRefused(f"the {what}'s proof does not verify: {exc}") from exc
