"""Object integrity proofs (FEP-8b32): Data Integrity proofs with ``eddsa-jcs-2022``.

A proof travels inside the object it signs, so a document stays verifiable when it is
relayed, fetched from a cache or quoted in another activity, where an HTTP signature
only proves who delivered it. The cryptosuite is the one of W3C "Data Integrity EdDSA
Cryptosuites v1.0" (https://www.w3.org/TR/vc-di-eddsa/, section "eddsa-jcs-2022"), as
FEP-8b32 (https://codeberg.org/fediverse/fep/src/branch/main/fep/8b32/fep-8b32.md)
asks:

- the proof configuration is the proof without ``proofValue``, with ``@context`` set to
  the document's ``@context`` when the document has one;
- hashData = SHA-256(JCS(proof configuration)) || SHA-256(JCS(document without proof)),
  JCS being the JSON Canonicalization Scheme (RFC 8785);
- ``proofValue`` = ``"z"`` + base58btc(Ed25519 signature over hashData).

JSON canonicalization, not RDF canonicalization, so no JSON-LD context is ever fetched
to check a proof: the cost is two hashes and one Ed25519 verification.

What :func:`verify` establishes is only that the holder of ``public_key`` signed this
exact document. **The caller must check who that key belongs to**: resolve
:func:`verification_method` to the key's controller and check that the controller is
the document's ``attributedTo`` (for an object) or ``actor`` (for an activity), and
that the key is listed in the controller's ``assertionMethod``. Without that check, any
actor could sign a document that claims to be someone else's with their own key.
:func:`verify` does not look at the clock either: ``created`` (and ``expires``, if a
peer sets it) are signed, and judging them is the caller's policy.

Deliberately narrower than the specification, so that every accepted document is
unambiguous:

- ``proof`` must be one object. Proof sets and chains (an array of proofs) are refused.
- The purpose must be ``assertionMethod``, the one FEP-8b32 uses.
- When the proof carries its own ``@context``, it must equal the document's. The
  specification also accepts a document whose ``@context`` was extended after signing;
  here any change to the document fails.

Every way a peer's document can be wrong raises :class:`ProofError` (401) with a
reason its admin can act on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any, Final

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from federation.errors import NotAuthorized
from federation.keys import base58btc_decode, base58btc_encode

__all__ = [
    "CRYPTOSUITE",
    "PROOF_PURPOSE",
    "PROOF_TYPE",
    "ProofError",
    "sign",
    "verification_method",
    "verify",
]

PROOF_TYPE: Final = "DataIntegrityProof"
CRYPTOSUITE: Final = "eddsa-jcs-2022"
PROOF_PURPOSE: Final = "assertionMethod"

_SIGNATURE_LENGTH = 64
# Multibase prefix for base58btc (https://github.com/multiformats/multibase).
_BASE58BTC_PREFIX = "z"
# 64 bytes take at most 88 base58 digits. Refusing longer text before decoding keeps the
# quadratic big-integer decode from running on a peer's megabyte of digits.
_MAX_PROOF_VALUE_LENGTH = 1 + 88
# A URL or a DID URL; anything longer is not an identifier worth resolving.
_MAX_VERIFICATION_METHOD_LENGTH = 2048
_MAX_DATETIME_LENGTH = 64

# XML Schema 1.1 dateTime, the form of ``created`` and ``expires``: the expression the
# W3C Verifiable Credentials Data Model 2.0 gives for it (section "Representing Time").
_XSD_DATETIME = re.compile(
    r"-?([1-9][0-9]{3,}|0[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T(([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?|(24:00:00(\.0+)?))"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))?",
    re.ASCII,
)


class ProofError(NotAuthorized):
    """An object integrity proof that is missing, malformed or does not verify."""


def sign(
    document: dict[str, Any],
    key: Ed25519PrivateKey,
    *,
    verification_method: str,
    created: datetime,
    purpose: str = PROOF_PURPOSE,
) -> dict[str, Any]:
    """A copy of ``document`` with an ``eddsa-jcs-2022`` proof made with ``key``.

    ``created`` must be timezone-aware; it is written in UTC to the second
    (``2027-03-01T09:00:00Z``), the form every verifier reads. When the document has an
    ``@context``, the proof carries the same one, as the specification's example does:
    the signature covers it either way, and a verifier then need not guess.

    The returned document is a deep copy, so that changing ``document`` afterwards
    cannot change what was signed. Mistakes here are this node's, not a peer's, so they
    raise ``ValueError``: a naive ``created``, a document that already has a proof, or
    values JSON cannot carry (NaN, integers beyond 2**53, non-string keys).
    """
    if not isinstance(document, dict):
        raise ValueError(f"only a JSON object can be signed, got {type(document).__name__}")
    if "proof" in document:
        raise ValueError("the document already has a proof; proof sets are not supported")
    if not verification_method:
        raise ValueError("verification_method must be a non-empty string")
    if created.tzinfo is None or created.utcoffset() is None:
        raise ValueError("created must be a timezone-aware datetime")
    stamp = created.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"
    unsecured = copy.deepcopy(document)
    options: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": stamp,
        "verificationMethod": verification_method,
        "proofPurpose": purpose,
    }
    if "@context" in unsecured:
        options["@context"] = copy.deepcopy(unsecured["@context"])
    try:
        hash_data = _hash_data(options, unsecured)
    except ProofError as exc:
        raise ValueError(exc.reason) from None
    signature = key.sign(hash_data)
    proof = {**options, "proofValue": _BASE58BTC_PREFIX + base58btc_encode(signature)}
    return {**unsecured, "proof": proof}


def verification_method(document: dict[str, Any]) -> str:
    """The ``verificationMethod`` of the document's single ``eddsa-jcs-2022`` proof.

    This is the key to fetch before :func:`verify`. The whole proof is checked first,
    so that no key is fetched for a proof that could never be accepted.
    """
    proof, _ = _proof(document)
    method: str = proof["verificationMethod"]
    return method


def verify(document: dict[str, Any], public_key: Ed25519PublicKey) -> None:
    """Raise :class:`ProofError` unless the document's proof verifies with ``public_key``.

    Any change to the document, to the signed proof options (``created``,
    ``verificationMethod``, ...) or to the signature makes this fail. Whose key
    ``public_key`` is remains the caller's question (see the module docstring).
    """
    proof, signature = _proof(document)
    if not isinstance(public_key, Ed25519PublicKey):
        raise ProofError(
            f"an {CRYPTOSUITE} proof needs an Ed25519 key, got {type(public_key).__name__}"
        )
    unsecured = {name: value for name, value in document.items() if name != "proof"}
    options = {name: value for name, value in proof.items() if name != "proofValue"}
    if "@context" in unsecured:
        options["@context"] = unsecured["@context"]
    try:
        public_key.verify(signature, _hash_data(options, unsecured))
    except InvalidSignature:
        raise ProofError(
            f"the {CRYPTOSUITE} proof does not verify with the key of "
            f"{proof['verificationMethod']}: the document or its proof was changed "
            f"after signing, or another key signed it"
        ) from None


def _hash_data(options: dict[str, Any], unsecured: dict[str, Any]) -> bytes:
    """The 64 bytes the Ed25519 signature covers: the proof configuration's hash, then
    the document's ("Hashing (eddsa-jcs-2022)" in the specification)."""
    return (
        hashlib.sha256(_jcs(options, "proof")).digest()
        + hashlib.sha256(_jcs(unsecured, "document")).digest()
    )


def _jcs(value: Any, what: str) -> bytes:
    """RFC 8785 canonical bytes; a value JCS cannot represent is a :class:`ProofError`.

    An object's ``@context`` is canonicalized once per distinct value and kept: it is
    hashed twice per proof (in the document and in the proof's options), and an inline
    context of a few kilobytes, the same on every document a node signs, would
    otherwise be most of the work of checking a relayed copy."""
    try:
        if isinstance(value, dict) and "@context" in value:
            return _jcs_members(value)
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ProofError(f"the {what} cannot be canonicalized (RFC 8785): {exc}") from None
    except UnicodeError:  # a lone surrogate in a key, which the library does not catch
        raise ProofError(
            f"the {what} cannot be canonicalized (RFC 8785): a key is not Unicode text"
        ) from None
    except RecursionError:
        raise ProofError(f"the {what} is nested too deeply to canonicalize") from None


# Canonical bytes of the contexts seen lately, by the standard library's writing of them
# (which tells apart any two JSON values JCS would write differently).
_CONTEXTS: dict[str, bytes] = {}
_MAX_CONTEXTS = 64
# Only contexts up to this size are kept (an offer's inline one is 3.4 KB): a peer's
# megabyte of context is canonicalized each time rather than held.
_MAX_KEPT_CONTEXT = 16 * 1024


def _jcs_members(value: dict[str, Any]) -> bytes:
    """JCS of an object, member by member as RFC 8785 section 3.2.3 writes them (keys
    ordered by their UTF-16 code units), its ``@context`` taken from the kept ones."""
    members = sorted(value.items(), key=lambda member: member[0].encode("utf-16be"))
    written = []
    for key, member in members:
        canonical = _jcs_context(member) if key == "@context" else rfc8785.dumps(member)
        written.append(rfc8785.dumps(key) + b":" + canonical)
    return b"{" + b",".join(written) + b"}"


def _jcs_context(context: Any) -> bytes:
    try:
        seen = _plain(context)
    except (TypeError, ValueError):  # not JSON (NaN, a key not a string): JCS says why
        return rfc8785.dumps(context)
    canonical = _CONTEXTS.get(seen)
    if canonical is None:
        canonical = rfc8785.dumps(context)
        if len(seen) <= _MAX_KEPT_CONTEXT:
            if len(_CONTEXTS) >= _MAX_CONTEXTS:
                _CONTEXTS.clear()
            _CONTEXTS[seen] = canonical
    return canonical


def _proof(document: object) -> tuple[dict[str, Any], bytes]:
    """The document's proof, checked field by field (one object, of our type, suite and
    purpose, with a verification method), and the 64 signature bytes it carries."""
    if not isinstance(document, dict):
        raise ProofError(f"the signed document must be a JSON object, not {_kind(document)}")
    if "proof" not in document:
        raise ProofError("the document has no proof")
    proof = document["proof"]
    if isinstance(proof, list):
        if len(proof) > 1:
            raise ProofError(
                f"the document has {len(proof)} proofs; exactly one {CRYPTOSUITE} proof "
                f"object is accepted"
            )
        raise ProofError("proof must be a single JSON object, not an array")
    if not isinstance(proof, dict):
        raise ProofError(f"proof must be a JSON object, not {_kind(proof)}")

    _expect(proof, "type", PROOF_TYPE)
    _expect(proof, "cryptosuite", CRYPTOSUITE)
    _expect(proof, "proofPurpose", PROOF_PURPOSE)

    method = proof.get("verificationMethod")
    if not isinstance(method, str):
        raise ProofError(f"proof.verificationMethod must be a string, not {_kind(method)}")
    if not method:
        raise ProofError("proof.verificationMethod must be a string, not an empty one")
    if len(method) > _MAX_VERIFICATION_METHOD_LENGTH:
        raise ProofError(
            f"proof.verificationMethod is {len(method)} characters long, "
            f"over {_MAX_VERIFICATION_METHOD_LENGTH}"
        )

    for name in ("created", "expires"):
        if name in proof:
            _check_datetime(name, proof[name])

    if "proofValue" not in proof:
        raise ProofError("the proof has no proofValue")
    signature = _signature(proof["proofValue"])

    if "@context" in proof:
        if "@context" not in document:
            raise ProofError("the proof has an @context but the document has none")
        if not _same_json(proof["@context"], document["@context"]):
            raise ProofError("the proof's @context differs from the document's @context")
    return proof, signature


def _same_json(first: object, second: object) -> bool:
    """Whether two JSON values are the same JSON. Compared as the JCS bytes that are
    hashed, since Python's ``==`` takes ``true`` for ``1``; a string or a list of strings,
    the usual ``@context``, is compared directly, which is exact for them and cheaper.
    Two values the standard library writes alike (keys sorted) are the same JSON too,
    and are told so without canonicalizing them: that writer is far faster than JCS, and
    an offer's inline context is a few kilobytes checked at every relayed copy."""
    if isinstance(first, str) or (
        isinstance(first, list) and all(isinstance(item, str) for item in first)
    ):
        return first == second
    try:
        if _plain(first) == _plain(second):
            return True
    except (TypeError, ValueError, RecursionError):
        pass  # not plain JSON: JCS says what it makes of it
    return _jcs(first, "proof's @context") == _jcs(second, "document's @context")


def _plain(value: object) -> str:
    """``value`` as the standard library writes JSON, keys sorted: equal for two values
    only when they are the same JSON (it keeps ``true`` and ``1``, ``1`` and ``1.0``
    apart, which JCS would not all do; a difference then goes to JCS)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)


def _expect(proof: dict[str, Any], name: str, expected: str) -> None:
    value = proof.get(name)
    if value != expected:
        found = "nothing" if name not in proof else repr(value)[:100]
        raise ProofError(f"proof.{name} must be {expected!r}, found {found}")


def _check_datetime(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise ProofError(f"proof.{name} must be an XML Schema dateTime string, not {_kind(value)}")
    if len(value) > _MAX_DATETIME_LENGTH or not _XSD_DATETIME.fullmatch(value):
        raise ProofError(f"proof.{name} is not an XML Schema dateTime: {value[:80]!r}")


def _signature(proof_value: object) -> bytes:
    """The 64 signature bytes of a ``proofValue``, refusing anything else before the
    costly decode where possible."""
    if not isinstance(proof_value, str):
        raise ProofError(f"proof.proofValue must be a string, not {_kind(proof_value)}")
    if not proof_value.startswith(_BASE58BTC_PREFIX):
        shown = repr(proof_value[:1]) if proof_value else "nothing"
        raise ProofError(
            f"proof.proofValue must be base58btc multibase (prefix 'z'), found {shown}"
        )
    if len(proof_value) > _MAX_PROOF_VALUE_LENGTH:
        raise ProofError(
            f"proof.proofValue is {len(proof_value)} characters long, too long for a "
            f"{_SIGNATURE_LENGTH}-byte Ed25519 signature"
        )
    try:
        signature = base58btc_decode(proof_value[1:])
    except ValueError as exc:
        raise ProofError(f"proof.proofValue is not base58btc: {exc}") from None
    if len(signature) != _SIGNATURE_LENGTH:
        raise ProofError(
            f"proof.proofValue holds {len(signature)} bytes, not a "
            f"{_SIGNATURE_LENGTH}-byte Ed25519 signature"
        )
    return signature


def _kind(value: object) -> str:
    """A JSON-ish name for a value's type, for error messages."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
