import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import proofs
from federation.errors import NotAuthorized
from federation.keys import base58btc_decode, base58btc_encode, multibase_to_ed25519
from federation.proofs import ProofError, sign, verification_method, verify

# --- The W3C test vector -------------------------------------------------------------
# "Data Integrity EdDSA Cryptosuites v1.0", Appendix "Representation: eddsa-jcs-2022"
# (https://www.w3.org/TR/vc-di-eddsa/), with the files of w3c/vc-di-eddsa
# TestVectors/keyPair.json and TestVectors/eddsa-jcs-2022/ (proofCanonJCS.txt,
# canonDocJCS.txt, proofHashJCS.txt, combinedHashJCS.txt); the signature and
# proofValue are the Recommendation's examples "Signature of Combined Hashes (hex)" and
# "(base58-btc)".

VECTOR_PUBLIC_KEY = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
# Multibase base58btc of multicodec "ed25519-priv" (varint 0x80 0x26) + the 32-byte seed.
VECTOR_SECRET_KEY = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
VECTOR_CONTEXT = [
    "https://www.w3.org/ns/credentials/v2",
    "https://www.w3.org/ns/credentials/examples/v2",
]
VECTOR_DOCUMENT: dict[str, Any] = {
    "@context": VECTOR_CONTEXT,
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": "https://vc.example/issuers/5678",
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
}
VECTOR_METHOD = f"did:key:{VECTOR_PUBLIC_KEY}#{VECTOR_PUBLIC_KEY}"
VECTOR_CREATED = datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)
VECTOR_PROOF_OPTIONS: dict[str, Any] = {
    "type": "DataIntegrityProof",
    "cryptosuite": "eddsa-jcs-2022",
    "created": "2023-02-24T23:36:38Z",
    "verificationMethod": VECTOR_METHOD,
    "proofPurpose": "assertionMethod",
    "@context": VECTOR_CONTEXT,
}
VECTOR_CANONICAL_PROOF_CONFIG = (
    b'{"@context":["https://www.w3.org/ns/credentials/v2",'
    b'"https://www.w3.org/ns/credentials/examples/v2"],"created":"2023-02-24T23:36:38Z",'
    b'"cryptosuite":"eddsa-jcs-2022","proofPurpose":"assertionMethod",'
    b'"type":"DataIntegrityProof","verificationMethod":"did:key:'
    b"z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#"
    b'z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"}'
)
VECTOR_CANONICAL_DOCUMENT = (
    b'{"@context":["https://www.w3.org/ns/credentials/v2",'
    b'"https://www.w3.org/ns/credentials/examples/v2"],"credentialSubject":'
    b'{"alumniOf":"The School of Examples","id":"did:example:abcdefgh"},'
    b'"description":"A minimum viable example of an Alumni Credential.",'
    b'"id":"urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",'
    b'"issuer":"https://vc.example/issuers/5678","name":"Alumni Credential",'
    b'"type":["VerifiableCredential","AlumniCredential"],"validFrom":"2023-01-01T00:00:00Z"}'
)
VECTOR_PROOF_HASH = "66ab154f5c2890a140cb8388a22a160454f80575f6eae09e5a097cabe539a1db"
VECTOR_DOCUMENT_HASH = "59b7cb6251b8991add1ce0bc83107e3db9dbbab5bd2c28f687db1a03abc92f19"
VECTOR_SIGNATURE_HEX = (
    "407cd12654b33d718ecbb99179a1506daaa849450bf3fc523cce3e1c96f8b803"
    "51da3f253d725c6f00b07c9e5448d50b3ef78012b9ab54255116d069c6dd2808"
)
VECTOR_PROOF_VALUE = (
    "z2HnFSSPPBzR36zdDgK8PbEHeXbR56YF24jwMpt3R1eHXQzJDMWS93FCzpvJpwTWd3GAVFuUfjoJdcnTMuVor51aX"
)
VECTOR_SIGNED: dict[str, Any] = {
    **VECTOR_DOCUMENT,
    "proof": {**VECTOR_PROOF_OPTIONS, "proofValue": VECTOR_PROOF_VALUE},
}

# An earlier revision of the same vector in w3c/vc-di-eddsa (TestVectors/eddsa-jcs-2022/
# signedJCS.json), with an https verification method: another signature to accept.
EARLIER_SIGNED: dict[str, Any] = {
    **VECTOR_DOCUMENT,
    "proof": {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": "2023-02-24T23:36:38Z",
        "verificationMethod": f"https://vc.example/issuers/5678#{VECTOR_PUBLIC_KEY}",
        "proofPurpose": "assertionMethod",
        "@context": VECTOR_CONTEXT,
        "proofValue": (
            "z63t83Y53KfzJ5ZosfKTnqfMcKB2dmTrfjSaQjeNNjAD5srBowQfmWqeRb8rRjmeEuCBEsddF9LsVogtuTsijJKh4"
        ),
    },
}


def vector_private_key() -> Ed25519PrivateKey:
    decoded = base58btc_decode(VECTOR_SECRET_KEY[1:])
    assert decoded[:2] == b"\x80\x26"  # multicodec ed25519-priv
    return Ed25519PrivateKey.from_private_bytes(decoded[2:])


def test_vector_key_pair_matches() -> None:
    public = vector_private_key().public_key()

    assert public == multibase_to_ed25519(VECTOR_PUBLIC_KEY)


def test_vector_intermediate_values() -> None:
    assert rfc8785.dumps(VECTOR_PROOF_OPTIONS) == VECTOR_CANONICAL_PROOF_CONFIG
    assert rfc8785.dumps(VECTOR_DOCUMENT) == VECTOR_CANONICAL_DOCUMENT
    assert hashlib.sha256(VECTOR_CANONICAL_PROOF_CONFIG).hexdigest() == VECTOR_PROOF_HASH
    assert hashlib.sha256(VECTOR_CANONICAL_DOCUMENT).hexdigest() == VECTOR_DOCUMENT_HASH

    options = {k: v for k, v in VECTOR_PROOF_OPTIONS.items() if k != "@context"}
    hash_data = proofs._hash_data({**options, "@context": VECTOR_CONTEXT}, VECTOR_DOCUMENT)

    assert hash_data.hex() == VECTOR_PROOF_HASH + VECTOR_DOCUMENT_HASH
    assert vector_private_key().sign(hash_data).hex() == VECTOR_SIGNATURE_HEX
    assert "z" + base58btc_encode(bytes.fromhex(VECTOR_SIGNATURE_HEX)) == VECTOR_PROOF_VALUE


def test_sign_reproduces_the_w3c_vector() -> None:
    signed = sign(
        VECTOR_DOCUMENT,
        vector_private_key(),
        verification_method=VECTOR_METHOD,
        created=VECTOR_CREATED,
    )

    assert signed["proof"]["proofValue"] == VECTOR_PROOF_VALUE
    assert signed == VECTOR_SIGNED
    assert rfc8785.dumps(signed) == rfc8785.dumps(VECTOR_SIGNED)


@pytest.mark.parametrize("signed", [VECTOR_SIGNED, EARLIER_SIGNED], ids=["rec", "earlier"])
def test_verify_accepts_the_w3c_vectors(signed: dict[str, Any]) -> None:
    verify(signed, multibase_to_ed25519(VECTOR_PUBLIC_KEY))

    assert verification_method(signed) == signed["proof"]["verificationMethod"]


def test_vector_verifies_without_the_proof_context() -> None:
    # The proof configuration takes the document's @context whether or not the proof
    # repeats it, so the same signature holds for a proof without one.
    signed = copy.deepcopy(VECTOR_SIGNED)
    del signed["proof"]["@context"]

    verify(signed, multibase_to_ed25519(VECTOR_PUBLIC_KEY))


# --- Round trips and tampering --------------------------------------------------------

ACTOR = "https://coop.example/actors/alice"
METHOD = f"{ACTOR}#ed25519-key"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def vote() -> dict[str, Any]:
    return {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            "https://w3id.org/security/data-integrity/v1",
        ],
        "id": f"{ACTOR}/notes/42",
        "type": "Note",
        "attributedTo": ACTOR,
        "to": ["https://coop.example/actors/assembly"],
        "inReplyTo": "https://coop.example/questions/7",
        "name": "For",
        "published": "2027-03-01T09:00:00Z",
    }


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signed(key: Ed25519PrivateKey) -> dict[str, Any]:
    return sign(vote(), key, verification_method=METHOD, created=NOW)


def test_round_trip(key: Ed25519PrivateKey, signed: dict[str, Any]) -> None:
    verify(signed, key.public_key())

    assert verification_method(signed) == METHOD
    assert signed["proof"]["type"] == "DataIntegrityProof"
    assert signed["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert signed["proof"]["proofPurpose"] == "assertionMethod"
    assert signed["proof"]["created"] == "2027-03-01T09:00:00Z"
    assert signed["proof"]["@context"] == vote()["@context"]
    assert signed["proof"]["proofValue"].startswith("z")


def test_round_trip_through_json_text(key: Ed25519PrivateKey, signed: dict[str, Any]) -> None:
    received = json.loads(json.dumps(signed, indent=2, ensure_ascii=True))

    verify(received, key.public_key())


def test_sign_returns_a_new_document(key: Ed25519PrivateKey) -> None:
    document = vote()
    before = copy.deepcopy(document)

    signed = sign(document, key, verification_method=METHOD, created=NOW)
    document["to"].append("https://elsewhere.example/actors/mallory")

    assert "proof" not in document
    assert document["to"] != before["to"]
    verify(signed, key.public_key())


def test_document_without_context(key: Ed25519PrivateKey) -> None:
    document = {k: v for k, v in vote().items() if k != "@context"}

    signed = sign(document, key, verification_method=METHOD, created=NOW)

    assert "@context" not in signed["proof"]
    verify(signed, key.public_key())


def test_created_is_written_in_utc_to_the_second(key: Ed25519PrivateKey) -> None:
    paris = timezone(timedelta(hours=1))
    created = datetime(2027, 3, 1, 10, 0, 0, 987654, tzinfo=paris)

    signed = sign(vote(), key, verification_method=METHOD, created=created)

    assert signed["proof"]["created"] == "2027-03-01T09:00:00Z"
    verify(signed, key.public_key())


def _set(path: tuple[str, ...], value: object) -> Any:
    def change(document: dict[str, Any]) -> None:
        target = document
        for name in path[:-1]:
            target = target[name]
        target[path[-1]] = value

    return change


def _delete(name: str) -> Any:
    return lambda document: document.pop(name)


@pytest.mark.parametrize(
    "change",
    [
        _set(("name",), "Against"),
        _set(("attributedTo",), "https://coop.example/actors/bob"),
        _set(("published",), "2027-03-01T09:00:01Z"),
        _set(("cc",), ["https://www.w3.org/ns/activitystreams#Public"]),
        _set(("@context",), ["https://www.w3.org/ns/activitystreams"]),
        _delete("inReplyTo"),
        lambda document: document["to"].append("https://elsewhere.example/actors/bob"),
    ],
    ids=["value", "attributedTo", "published", "added", "context", "removed", "array"],
)
def test_a_changed_document_fails(
    key: Ed25519PrivateKey, signed: dict[str, Any], change: Any
) -> None:
    change(signed)

    with pytest.raises(ProofError):
        verify(signed, key.public_key())


@pytest.mark.parametrize(
    "change",
    [
        _set(("proof", "created"), "2027-03-01T09:00:01Z"),
        _set(("proof", "verificationMethod"), f"{ACTOR}#other-key"),
        _set(("proof", "domain"), "coop.example"),
        _set(("proof", "expires"), "2028-03-01T09:00:00Z"),
        lambda document: document["proof"].pop("created"),
    ],
    ids=["created", "verificationMethod", "domain-added", "expires-added", "created-removed"],
)
def test_a_changed_proof_option_fails(
    key: Ed25519PrivateKey, signed: dict[str, Any], change: Any
) -> None:
    change(signed)

    with pytest.raises(ProofError, match="does not verify"):
        verify(signed, key.public_key())


def test_a_changed_proof_context_is_refused(key: Ed25519PrivateKey, signed: dict[str, Any]) -> None:
    signed["proof"]["@context"] = ["https://www.w3.org/ns/activitystreams"]

    with pytest.raises(ProofError, match="@context differs"):
        verify(signed, key.public_key())


def test_proof_context_is_compared_as_json(key: Ed25519PrivateKey) -> None:
    context = [
        "https://www.w3.org/ns/activitystreams",
        {"toot": "http://joinmastodon.org/ns#", "weight": 1},
    ]
    signed = sign(vote() | {"@context": context}, key, verification_method=METHOD, created=NOW)
    same = copy.deepcopy(signed)
    same["proof"]["@context"][1]["weight"] = 1.0
    other = copy.deepcopy(signed)
    other["proof"]["@context"][1]["weight"] = True

    verify(same, key.public_key())
    with pytest.raises(ProofError, match="@context differs"):
        verify(other, key.public_key())
    # The same terms written in another order are the same context.
    reordered = copy.deepcopy(signed)
    reordered["proof"]["@context"][1] = {"weight": 1, "toot": "http://joinmastodon.org/ns#"}
    verify(reordered, key.public_key())


def test_an_extended_document_context_fails(key: Ed25519PrivateKey, signed: dict[str, Any]) -> None:
    # The specification would accept a document whose @context grew after signing, as
    # long as it starts with the proof's. Here that is a change like any other.
    signed["@context"] = [*signed["@context"], "https://evil.example/context"]

    with pytest.raises(ProofError):
        verify(signed, key.public_key())


def test_another_key_fails(signed: dict[str, Any]) -> None:
    with pytest.raises(ProofError, match="does not verify"):
        verify(signed, Ed25519PrivateKey.generate().public_key())


def test_another_signature_fails(key: Ed25519PrivateKey, signed: dict[str, Any]) -> None:
    other = sign(vote() | {"name": "Against"}, key, verification_method=METHOD, created=NOW)
    signed["proof"]["proofValue"] = other["proof"]["proofValue"]

    with pytest.raises(ProofError, match="does not verify"):
        verify(signed, key.public_key())


def test_a_key_of_another_type_is_refused(signed: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key()

    with pytest.raises(ProofError, match="Ed25519"):
        verify(signed, public)  # type: ignore[arg-type]


# --- Malformed proofs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_set(("proof", "cryptosuite"), "eddsa-rdfc-2022"), "cryptosuite must be 'eddsa-jcs-2022'"),
        (_set(("proof", "cryptosuite"), "ecdsa-jcs-2019"), "cryptosuite"),
        (_set(("proof", "type"), "Ed25519Signature2020"), "type must be 'DataIntegrityProof'"),
        (_set(("proof", "type"), ["DataIntegrityProof"]), "type must be"),
        (_set(("proof", "proofPurpose"), "authentication"), "proofPurpose must be"),
        (lambda d: d["proof"].pop("type"), "type must be 'DataIntegrityProof', found nothing"),
        (lambda d: d["proof"].pop("cryptosuite"), "cryptosuite must be"),
        (lambda d: d["proof"].pop("proofPurpose"), "proofPurpose must be"),
        (lambda d: d["proof"].pop("proofValue"), "no proofValue"),
        (lambda d: d["proof"].pop("verificationMethod"), "verificationMethod must be"),
        (_set(("proof", "verificationMethod"), ""), "verificationMethod must be"),
        (_set(("proof", "verificationMethod"), {"id": METHOD}), "verificationMethod must be"),
        (_set(("proof", "verificationMethod"), "https://x.example/" + "a" * 5000), "characters"),
        (_set(("proof", "created"), "yesterday"), "created is not an XML Schema dateTime"),
        (_set(("proof", "created"), 1_800_000_000), "created must be"),
        (_set(("proof", "expires"), "2027-13-01T00:00:00Z"), "expires is not"),
    ],
    ids=[
        "rdfc",
        "ecdsa",
        "Ed25519Signature2020",
        "type-array",
        "purpose",
        "no-type",
        "no-cryptosuite",
        "no-purpose",
        "no-proofValue",
        "no-verificationMethod",
        "empty-verificationMethod",
        "object-verificationMethod",
        "long-verificationMethod",
        "created-text",
        "created-number",
        "expires-month",
    ],
)
def test_malformed_proofs_are_refused(
    key: Ed25519PrivateKey, signed: dict[str, Any], change: Any, reason: str
) -> None:
    change(signed)

    with pytest.raises(ProofError, match=reason):
        verification_method(signed)
    with pytest.raises(ProofError, match=reason):
        verify(signed, key.public_key())


@pytest.mark.parametrize(
    ("proof_value", "reason"),
    [
        ("z0OIl" + "1" * 60, "not base58btc: not a base58btc character: '0'"),
        ("u" + "A" * 86, "base58btc multibase .* found 'u'"),
        ("", "base58btc multibase .* found nothing"),
        ("z", "0 bytes"),
        ("z" + base58btc_encode(b"\x01" * 63), "63 bytes"),
        ("z" + base58btc_encode(b"\x01" * 65), "65 bytes"),
        ("z" + "2" * 10_000, "too long"),
        (None, "must be a string, not null"),
        (["z2Hn"], "must be a string, not an array"),
    ],
    ids=["alphabet", "prefix", "empty", "z-only", "63", "65", "long", "null", "array"],
)
def test_bad_proof_values_are_refused(
    key: Ed25519PrivateKey, signed: dict[str, Any], proof_value: object, reason: str
) -> None:
    signed["proof"]["proofValue"] = proof_value

    with pytest.raises(ProofError, match=reason):
        verification_method(signed)
    with pytest.raises(ProofError, match=reason):
        verify(signed, key.public_key())


def test_two_proofs_are_refused(key: Ed25519PrivateKey, signed: dict[str, Any]) -> None:
    signed["proof"] = [signed["proof"], copy.deepcopy(signed["proof"])]

    with pytest.raises(ProofError, match="2 proofs"):
        verification_method(signed)
    with pytest.raises(ProofError, match="2 proofs"):
        verify(signed, key.public_key())


@pytest.mark.parametrize(
    ("proof", "reason"),
    [
        ("z2HnFSSPPBzR36zdDgK8PbEHeXbR56YF24jwMpt3R1eHXQzJD", "not a string"),
        (None, "not null"),
        (42, "not a number"),
        (True, "not a boolean"),
        ([], "not an array"),
    ],
    ids=["string", "null", "number", "boolean", "empty-array"],
)
def test_a_proof_that_is_not_an_object_is_refused(
    key: Ed25519PrivateKey, signed: dict[str, Any], proof: object, reason: str
) -> None:
    signed["proof"] = proof

    with pytest.raises(ProofError, match=f"proof must be a (single )?JSON object, {reason}"):
        verification_method(signed)
    with pytest.raises(ProofError, match="proof must be a"):
        verify(signed, key.public_key())


def test_a_one_element_proof_array_is_refused(
    key: Ed25519PrivateKey, signed: dict[str, Any]
) -> None:
    signed["proof"] = [signed["proof"]]

    with pytest.raises(ProofError, match="single JSON object, not an array"):
        verify(signed, key.public_key())


def test_no_proof_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ProofError, match="no proof"):
        verification_method(vote())
    with pytest.raises(ProofError, match="no proof"):
        verify(vote(), key.public_key())


@pytest.mark.parametrize("document", [None, [], "text", 3])
def test_a_document_that_is_not_an_object_is_refused(
    key: Ed25519PrivateKey, document: object
) -> None:
    with pytest.raises(ProofError, match="must be a JSON object"):
        verification_method(document)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="must be a JSON object"):
        verify(document, key.public_key())  # type: ignore[arg-type]


def test_a_proof_context_without_a_document_context_is_refused(
    key: Ed25519PrivateKey, signed: dict[str, Any]
) -> None:
    del signed["@context"]

    with pytest.raises(ProofError, match="document has none"):
        verification_method(signed)


@pytest.mark.parametrize(
    ("value", "reason"),
    [(2**60, "canonicalized"), ("\ud800", "canonicalized"), (float("nan"), "canonicalized")],
    ids=["big-integer", "lone-surrogate", "nan"],
)
def test_values_json_cannot_carry_are_refused(
    key: Ed25519PrivateKey, signed: dict[str, Any], value: object, reason: str
) -> None:
    # What Python's JSON decoder reads but JCS cannot write: a refusal, not a crash.
    signed["content"] = value

    with pytest.raises(ProofError, match=reason):
        verify(signed, key.public_key())


def test_proof_error_is_a_401() -> None:
    error = ProofError("the document has no proof")

    assert isinstance(error, NotAuthorized)
    assert error.status == 401
    assert error.reason == "the document has no proof"


# --- Canonical form: unicode and numbers ----------------------------------------------


def test_nested_unicode_and_numbers_round_trip(key: Ed25519PrivateKey) -> None:
    document = vote() | {
        "content": 'Vote « Pour » — 投票 🗳️ \u00e9 vs e\u0301, tab\tquote"backslash\\',
        "ballot": {
            "ünïcödé": {"€": [1, 2.5, -0.0, 1e21, 1e-7, 0.1, 333333333.33333329]},
            "weights": [9007199254740991, -9007199254740991, 0, 1.0, 100, 1e-27],
            "emoji🗳": [None, True, False, {"": "", "\u0000": "nul"}],
        },
    }
    signed = sign(document, key, verification_method=METHOD, created=NOW)

    verify(signed, key.public_key())
    # As a peer receives it: other whitespace, other key order, escapes instead of UTF-8.
    text = json.dumps(signed, ensure_ascii=True, sort_keys=True, indent=1)
    verify(json.loads(text), key.public_key())
    text = json.dumps(signed, ensure_ascii=False, separators=(",", ":"))
    verify(json.loads(text.encode("utf-8")), key.public_key())


def test_number_formatting_follows_rfc_8785(key: Ed25519PrivateKey) -> None:
    # RFC 8785, section 3.2.2: the canonical form of its sample object. Signing those
    # canonical bytes by hand, following the specification's hashing, must verify with
    # our JCS: that holds only if our canonical form is byte for byte the RFC's.
    received = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    canonical = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    options = {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": "2027-03-01T09:00:00Z",
        "verificationMethod": METHOD,
        "proofPurpose": "assertionMethod",
    }
    hash_data = hashlib.sha256(rfc8785.dumps(options)).digest() + hashlib.sha256(canonical).digest()
    proof_value = "z" + base58btc_encode(key.sign(hash_data))

    verify(received | {"proof": options | {"proofValue": proof_value}}, key.public_key())


# --- Signing mistakes are the caller's ------------------------------------------------


def test_sign_refuses_a_naive_datetime(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(vote(), key, verification_method=METHOD, created=datetime(2027, 3, 1))


def test_sign_refuses_a_document_with_a_proof(
    key: Ed25519PrivateKey, signed: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="already has a proof"):
        sign(signed, key, verification_method=METHOD, created=NOW)


def test_sign_refuses_values_json_cannot_carry(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="canonicalized"):
        sign(vote() | {"n": float("inf")}, key, verification_method=METHOD, created=NOW)


def test_sign_with_another_purpose_is_not_accepted_here(key: Ed25519PrivateKey) -> None:
    signed = sign(vote(), key, verification_method=METHOD, created=NOW, purpose="authentication")

    assert signed["proof"]["proofPurpose"] == "authentication"
    with pytest.raises(ProofError, match="proofPurpose must be 'assertionMethod'"):
        verify(signed, key.public_key())


# JSON values as a peer may send them: keys that sort before and after "@context" by
# UTF-16 code units (digits, "!", letters past and below the surrogates), lone
# surrogates, floats, integers past 2**53 and booleans beside 1 and 0.
_KEYS = st.sampled_from(["!", "0", "@", "@context", "@id", "Z", "a", "é", "\ue000", "😀", "\ud800"])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


def _either(write: Any, value: object) -> tuple[str, bytes | str]:
    try:
        return "written", write(value)
    except (ProofError, rfc8785.CanonicalizationError, UnicodeError):
        return "refused", ""


@settings(max_examples=400, deadline=None)
@given(context=_JSON, rest=st.dictionaries(_KEYS, _JSON, max_size=4))
def test_a_kept_context_is_written_as_rfc_8785_writes_it(
    context: object, rest: dict[str, object]
) -> None:
    """The canonical form of a document's ``@context`` is kept between proofs; the
    bytes hashed are still exactly RFC 8785's, or refused as it refuses them."""
    document = {**rest, "@context": context}
    for _ in range(2):  # the second time from what was kept
        kept = _either(lambda value: proofs._jcs(value, "document"), document)
        expected = _either(rfc8785.dumps, document)
        assert kept[0] == expected[0]
        if kept[0] == "written":
            assert kept == expected


def test_a_key_that_is_not_unicode_text_is_a_proof_error(
    key: Ed25519PrivateKey, signed: dict[str, Any]
) -> None:
    """A lone surrogate in a key (JSON's ``"\\ud800"``) is refused as a bad proof, not
    raised as an encoding error from inside the canonicalization."""
    changed = json.loads(json.dumps(signed).replace('"proof"', '"\\ud800": 1, "proof"', 1))
    with pytest.raises(ProofError, match="not Unicode text"):
        verify(changed, key.public_key())


def test_only_small_contexts_are_kept_between_proofs(key: Ed25519PrivateKey) -> None:
    """A context is kept for the next proof only up to 16 KB: a peer sending large
    distinct contexts cannot make the node hold them."""
    small = ["https://www.w3.org/ns/activitystreams", {"kept": "https://example.org/kept#"}]
    large = ["https://www.w3.org/ns/activitystreams", {"big": "x" * 20_000}]
    for context in (small, large):
        signed = sign(
            {"@context": context, "type": "Note"}, key, verification_method=METHOD, created=NOW
        )
        verify(signed, key.public_key())
    kept = b"".join(proofs._CONTEXTS.values())
    assert b"https://example.org/kept#" in kept
    assert b"x" * 20_000 not in kept
