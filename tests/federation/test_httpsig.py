"""draft-cavage HTTP signatures, as Mastodon signs and verifies them.

The crypto (``verify_signature``) and the policy (``check_policy``) are tested apart:
the draft's own examples verify, yet would be refused by Mastodon's rules.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from starlette.datastructures import Headers as StarletteHeaders

from federation.clock import ManualClock
from federation.errors import FetchError, MalformedInput, NotAuthorized
from federation.httpsig import (
    SignatureAuth,
    SignatureParams,
    VerifiedSignature,
    check_policy,
    content_digest_header,
    format_signature_header,
    parse_signature_header,
    sha256_digest_header,
    sign_request,
    sign_string,
    signing_string,
    verify_body_digest,
    verify_request,
    verify_signature,
)
from federation.keys import (
    PrivateKey,
    PublicKey,
    generate_ed25519_private_pem,
    generate_rsa_private_pem,
    load_own_private_key,
    load_public_pem,
)

APPENDIX_C: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "data" / "httpsig" / "draft-cavage-12-appendix-c.json").read_text(
        encoding="utf-8"
    )
)
DRAFT_REQUEST: dict[str, Any] = APPENDIX_C["request"]
DRAFT_BODY = DRAFT_REQUEST["body"].encode()
DRAFT_DIGEST = "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
DRAFT_NOW = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
KEY_ID = "https://peer.example/users/bob#main-key"
INBOX = "https://coop.example/actors/alice/inbox"
BODY = b'{"type": "Follow", "actor": "https://peer.example/users/bob"}'


@pytest.fixture(scope="module")
def rsa_key() -> PrivateKey:
    return load_own_private_key(generate_rsa_private_pem())


@pytest.fixture(scope="module")
def other_rsa_key() -> PrivateKey:
    return load_own_private_key(generate_rsa_private_pem())


@pytest.fixture(scope="module")
def ed_key() -> PrivateKey:
    return load_own_private_key(generate_ed25519_private_pem())


@pytest.fixture(params=["rsa", "ed25519"])
def any_key(request: pytest.FixtureRequest) -> PrivateKey:
    name = {"rsa": "rsa_key", "ed25519": "ed_key"}[request.param]
    key: PrivateKey = request.getfixturevalue(name)
    return key


def draft_public_key() -> PublicKey:
    return load_public_pem(APPENDIX_C["public_key_pem"])


def draft_private_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(APPENDIX_C["private_key_pem"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@dataclass
class Incoming:
    """A request as an inbox receives it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Keys:
    """The callbacks ``verify_request`` takes, recording what was asked of them."""

    current: PublicKey
    fresh: PublicKey | None = None
    lookups: list[str] = field(default_factory=list)
    refetches: list[str] = field(default_factory=list)

    async def lookup(self, key_id: str) -> PublicKey:
        self.lookups.append(key_id)
        return self.current

    async def refetch(self, key_id: str) -> PublicKey | None:
        self.refetches.append(key_id)
        return self.fresh


def incoming(method: str, url: str, headers: Mapping[str, str], body: bytes) -> Incoming:
    path, _, query = httpx.URL(url).raw_path.decode().partition("?")
    return Incoming(method, path, query, dict(headers), body)


def signed(
    key: PrivateKey, method: str = "POST", url: str = INBOX, body: bytes = BODY, now: datetime = NOW
) -> Incoming:
    """A request signed by ``sign_request``, as our own deliveries are."""
    headers = {"Content-Type": "application/activity+json"}
    headers.update(sign_request(method, url, headers, body, KEY_ID, key, now))
    return incoming(method, url, headers, body)


def forged(
    key: PrivateKey,
    covered: list[str],
    *,
    method: str = "POST",
    url: str = INBOX,
    body: bytes = BODY,
    headers: Mapping[str, str] | None = None,
    algorithm: str = "rsa-sha256",
    created: int | None = None,
    expires: int | None = None,
    signed_target: str | None = None,
) -> Incoming:
    """A request with a genuine signature over exactly ``covered``: whatever refuses it
    is policy, not cryptography."""
    target = httpx.URL(url)
    all_headers = {
        "Host": target.netloc.decode(),
        "Date": "Sat, 14 Mar 2026 12:00:00 GMT",
        "Digest": sha256_digest_header(body),
        **(headers or {}),
    }
    text = signing_string(
        method,
        signed_target or target.raw_path.decode(),
        all_headers,
        covered,
        created,
        expires,
    )
    all_headers["Signature"] = format_signature_header(
        KEY_ID, algorithm, covered, sign_string(text, key), created, expires
    )
    return incoming(method, url, all_headers, body)


async def verify(
    request: Incoming, keys: Keys, now: datetime = NOW, *, refetch: bool = False
) -> VerifiedSignature:
    return await verify_request(
        request.method,
        request.path,
        request.query,
        request.headers,
        request.body,
        now,
        keys.lookup,
        keys.refetch if refetch else None,
    )


# --- draft-cavage-12, appendix C ------------------------------------------------------


@pytest.mark.parametrize("case", APPENDIX_C["cases"], ids=lambda case: case["name"])
def test_the_drafts_test_signatures_verify(case: dict[str, Any]) -> None:
    params = parse_signature_header(case["signature_header"])
    text = signing_string(
        DRAFT_REQUEST["method"],
        f"{DRAFT_REQUEST['path']}?{DRAFT_REQUEST['query']}",
        DRAFT_REQUEST["headers"],
        params.headers,
    )

    assert (params.key_id, params.algorithm) == ("Test", "rsa-sha256")
    assert params.headers == case["headers"]
    assert text == case["signing_string"]
    assert verify_signature(params, text, draft_public_key())


@pytest.mark.parametrize("case", APPENDIX_C["cases"], ids=lambda case: case["name"])
def test_signing_the_drafts_strings_reproduces_its_signatures(case: dict[str, Any]) -> None:
    # RSASSA-PKCS1-v1_5 is deterministic: the same key and text give the same bytes.
    expected = parse_signature_header(case["signature_header"]).signature

    assert sign_string(case["signing_string"], draft_private_key()) == expected


@pytest.mark.parametrize("case", APPENDIX_C["cases"], ids=lambda case: case["name"])
def test_a_drafts_signature_fails_on_a_changed_text(case: dict[str, Any]) -> None:
    params = parse_signature_header(case["signature_header"])

    assert not verify_signature(params, case["signing_string"] + " ", draft_public_key())


@pytest.mark.parametrize(
    ("name", "now", "reason"),
    [
        ("C.1 Default Test", DRAFT_NOW, "(request-target)"),
        ("C.2 Basic Test", DRAFT_NOW, "Digest"),
        ("C.3 All Headers Test", NOW, "too old"),
    ],
)
def test_the_drafts_examples_would_not_pass_mastodons_policy(
    name: str, now: datetime, reason: str
) -> None:
    case = next(case for case in APPENDIX_C["cases"] if case["name"] == name)
    params = parse_signature_header(case["signature_header"])

    with pytest.raises(NotAuthorized, match=reason):
        check_policy(params, DRAFT_REQUEST["method"], DRAFT_REQUEST["headers"], now)


def test_the_drafts_request_is_signed_as_mastodon_signs_a_post() -> None:
    added = sign_request(
        "POST",
        "https://example.com/foo?param=value&pet=dog",
        {"Content-Type": "application/json"},
        DRAFT_BODY,
        "Test",
        draft_private_key(),
        DRAFT_NOW,
    )
    params = parse_signature_header(added["Signature"])
    expected_text = (
        "(request-target): post /foo?param=value&pet=dog\n"
        "host: example.com\n"
        "date: Sun, 05 Jan 2014 21:31:40 GMT\n"
        f"digest: {DRAFT_DIGEST}"
    )

    assert {k: v for k, v in added.items() if k != "Signature"} == {
        "Host": "example.com",
        "Date": "Sun, 05 Jan 2014 21:31:40 GMT",
        "Digest": DRAFT_DIGEST,
    }
    assert added["Signature"].startswith(
        'keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date digest",'
    )
    assert verify_signature(params, expected_text, draft_public_key())


# --- Reading the Signature header -----------------------------------------------------


def test_a_mastodon_signature_header_is_read() -> None:
    params = parse_signature_header(
        'keyId="https://mastodon.example/users/alice#main-key",algorithm="rsa-sha256",'
        'headers="(request-target) host date digest",signature="c2lnbmF0dXJl"'
    )

    assert params == SignatureParams(
        key_id="https://mastodon.example/users/alice#main-key",
        algorithm="rsa-sha256",
        headers=["(request-target)", "host", "date", "digest"],
        signature=b"signature",
    )


@pytest.mark.parametrize(
    "value",
    [
        'keyId = "k" , algorithm = "rsa-sha256" ,signature="c2lnbmF0dXJl"',
        '\tkeyId="k",\n  algorithm="rsa-sha256",\n  signature="c2lnbmF0dXJl"  ',
        'Signature keyId="k",algorithm="rsa-sha256",signature="c2lnbmF0dXJl"',
        'KEYID="k",Algorithm="RSA-SHA256",SIGNATURE="c2lnbmF0dXJl"',
        'keyId="k",algorithm=rsa-sha256,signature="c2lnbmF0dXJl"',
        'keyId="k",,algorithm="rsa-sha256",signature="c2lnbmF0dXJl",',
        'keyId="k",nonce="n,o",algorithm="rsa-sha256",signature="c2ln bmF0 dXJl"',
    ],
)
def test_spacing_case_and_unknown_parameters_do_not_matter(value: str) -> None:
    params = parse_signature_header(value)

    assert (params.key_id, params.algorithm, params.signature) == ("k", "rsa-sha256", b"signature")


def test_quoted_values_may_hold_commas_equals_and_escaped_quotes() -> None:
    params = parse_signature_header(
        r'keyId="https://a.example/k?x=1,y=\"2\"",signature="c2lnbmF0dXJl"'
    )

    assert params.key_id == 'https://a.example/k?x=1,y="2"'


def test_without_headers_rsa_sha256_signs_the_date() -> None:
    params = parse_signature_header('keyId="k",algorithm="rsa-sha256",signature="AAAA"')

    assert params.headers == ["date"]


def test_without_algorithm_mastodon_assumes_hs2019_which_signs_created() -> None:
    params = parse_signature_header('keyId="k",signature="AAAA"')

    assert (params.algorithm, params.headers) == ("hs2019", ["(created)"])


def test_created_and_expires_are_read() -> None:
    params = parse_signature_header(
        'keyId="k",algorithm="hs2019",created=1402170695,expires="1402170699.5",'
        'headers="(request-target) (created) (expires) HOST",signature="AAAA"'
    )

    assert (params.created, params.expires) == (1402170695, Decimal("1402170699.5"))
    assert params.headers == ["(request-target)", "(created)", "(expires)", "host"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "no keyId"),
        ("\x00", "parameter name"),
        ("Signature", "no '='"),
        ('{"keyId": "k"}', "parameter name"),
        ('signature="AAAA"', "no keyId"),
        ('keyId="",signature="AAAA"', "no keyId"),
        ('keyId="k"', "no signature"),
        ('keyId="k",signature=""', "no signature"),
        ('keyId="k",signature="not base64!"', "base64"),
        ('keyId="k",signature="AAA"', "base64"),
        ('keyId="k",signature="===="', "base64"),
        ('keyId="k",signature="AAAA",keyId="j"', "twice"),
        ('keyId="k",signature="AAAA",KeyID="j"', "twice"),
        ('keyId="k" signature="AAAA"', "comma"),
        ('keyId="k";signature="AAAA"', "comma"),
        ('keyId="k,signature="AAAA"', "comma"),
        ('keyId="k",signature="AAAA', "unclosed"),
        ("keyId=,signature=AAAA", "no value"),
        ('="k",signature="AAAA"', "parameter name"),
        ("sig1=:AAAA:", "no value"),
        ('keyId="k",signature="AAAA",headers=""', "empty"),
        ('keyId="k",signature="AAAA",headers="   "', "empty"),
        ('keyId="k",signature="AAAA",created="yesterday"', "created"),
        ('keyId="k",signature="AAAA",created=1.5', "created"),
        ('keyId="k",signature="AAAA",expires=-1', "expires"),
    ],
)
def test_a_malformed_signature_header_is_a_400_saying_why(value: str, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason) as caught:
        parse_signature_header(value)

    assert caught.value.status == 400


def test_no_mangling_of_a_valid_header_raises_anything_but_malformed_input() -> None:
    valid = (
        'keyId="https://peer.example/users/bob#main-key",algorithm="hs2019",created=1402170695,'
        'headers="(request-target) (created) host",signature="c2lnbmF0dXJl"'
    )
    rng = random.Random(20140105)
    variants = [valid[:cut] for cut in range(len(valid))]
    for _ in range(500):
        chars = list(valid)
        for _ in range(rng.randint(1, 4)):
            chars[rng.randrange(len(chars))] = rng.choice('",=\\ \t;:()AZaz09+/\x00é')
        variants.append("".join(chars))

    for variant in variants:
        try:
            params = parse_signature_header(variant)
        except MalformedInput:
            continue
        assert params.key_id
        assert params.signature


def test_a_formatted_header_reads_back() -> None:
    value = format_signature_header(
        'https://a.example/k"1', "hs2019", ["(request-target)", "(created)"], b"\x01\x02", 1, 2
    )

    assert parse_signature_header(value) == SignatureParams(
        key_id='https://a.example/k"1',
        algorithm="hs2019",
        headers=["(request-target)", "(created)"],
        signature=b"\x01\x02",
        created=1,
        expires=Decimal(2),
    )


# --- The signing string ---------------------------------------------------------------

# The example of draft-cavage-12, section 2.3.
SECTION_2_3_HEADERS = [
    ("Host", "example.org"),
    ("Date", "Tue, 07 Jun 2014 20:51:35 GMT"),
    ("X-Example", " Example header with some whitespace. "),
    ("X-EmptyHeader", ""),
    ("Cache-Control", "max-age=60"),
    ("Cache-Control", "must-revalidate"),
]
SECTION_2_3_STRING = (
    "(request-target): get /foo\n"
    "(created): 1402170695\n"
    "host: example.org\n"
    "date: Tue, 07 Jun 2014 20:51:35 GMT\n"
    "cache-control: max-age=60, must-revalidate\n"
    "x-emptyheader: \n"
    "x-example: Example header with some whitespace."
)


@pytest.mark.parametrize(
    "headers",
    [
        httpx.Headers(SECTION_2_3_HEADERS),
        StarletteHeaders(raw=[(k.lower().encode(), v.encode()) for k, v in SECTION_2_3_HEADERS]),
    ],
    ids=["httpx", "starlette"],
)
def test_the_drafts_signing_string_example_is_reproduced(headers: Mapping[str, str]) -> None:
    covered = "(request-target) (created) host date cache-control x-emptyheader x-example"

    text = signing_string("GET", "/foo", headers, covered.split(), created=1402170695)

    assert text == SECTION_2_3_STRING


def test_header_names_are_matched_whatever_their_case() -> None:
    headers = {"HOST": "a.example", "date": "d", "Content-Type": "t"}

    text = signing_string("POST", "/x", headers, ["Host", "DATE", "content-type"])

    assert text == "host: a.example\ndate: d\ncontent-type: t"


def test_the_request_target_keeps_the_path_as_given_and_lowercases_the_method() -> None:
    text = signing_string("POST", "/users/%C3%A9?page=1&x=a%20b", {}, ["(request-target)"])

    assert text == "(request-target): post /users/%C3%A9?page=1&x=a%20b"


@pytest.mark.parametrize(
    ("covered", "reason"),
    [
        (["host", "digest"], "'digest' is missing"),
        (["(created)"], "no created"),
        (["(expires)"], "no expires"),
        (["(nonce)"], "'(nonce)' is missing"),
    ],
)
def test_a_signed_header_the_request_lacks_is_malformed(covered: list[str], reason: str) -> None:
    with pytest.raises(MalformedInput, match=re.escape(reason)):
        signing_string("POST", "/x", {"Host": "a.example"}, covered)


def test_a_header_value_with_a_line_break_cannot_pass_for_two_headers() -> None:
    with pytest.raises(MalformedInput, match="line break"):
        signing_string("GET", "/", {"X-A": "1\ndate: Sat, 14 Mar 2026 12:00:00 GMT"}, ["x-a"])


# --- Digests --------------------------------------------------------------------------

BODY_SHA256 = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
BODY_SHA512 = base64.b64encode(hashlib.sha512(BODY).digest()).decode()
OTHER_SHA256 = base64.b64encode(hashlib.sha256(b"{}").digest()).decode()


def test_digest_headers_are_written_as_rfc_3230_and_rfc_9530_show_them() -> None:
    assert sha256_digest_header(DRAFT_BODY) == DRAFT_DIGEST
    assert content_digest_header(DRAFT_BODY) == (
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Digest": f"SHA-256={BODY_SHA256}"},
        {"digest": f"sha-256={BODY_SHA256}"},
        {"Digest": f"SHA-256={BODY_SHA256}, SHA-512={BODY_SHA512}"},
        {"Digest": f"MD5=whatever,SHA-256={BODY_SHA256}"},
        {"Content-Digest": f"sha-256=:{BODY_SHA256}:"},
        {"Content-Digest": f"sha-512=:{BODY_SHA512}:"},
        {"Content-Digest": f"sha-256=:{BODY_SHA256}:, sha-512=:{BODY_SHA512}:"},
        {"Digest": f"SHA-256={BODY_SHA256}", "Content-Digest": f"sha-512=:{BODY_SHA512}:"},
    ],
)
def test_a_matching_digest_is_accepted(headers: dict[str, str]) -> None:
    verify_body_digest(headers, BODY)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "neither a Digest nor a Content-Digest"),
        ({"Digest": f"SHA-512={BODY_SHA512}"}, "offers sha-512; sha-256 is required"),
        ({"Digest": f"SHA-256={OTHER_SHA256}"}, "the Digest header does not match the body"),
        (
            {"Digest": f"SHA-256={BODY_SHA256}, SHA-512={BODY_SHA256}"},
            "the Digest header does not match",
        ),
        ({"Content-Digest": f"sha-256=:{OTHER_SHA256}:"}, "the Content-Digest header does not"),
        ({"Content-Digest": "unixsum=:AAAA:"}, "offers unixsum; sha-256 or sha-512"),
        (
            {"Digest": f"SHA-256={BODY_SHA256}", "Content-Digest": f"sha-256=:{OTHER_SHA256}:"},
            "Content-Digest",
        ),
    ],
)
def test_a_wrong_or_missing_digest_is_refused(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(NotAuthorized, match=reason):
        verify_body_digest(headers, BODY)


@pytest.mark.parametrize(
    "headers",
    [
        {"Digest": BODY_SHA256.rstrip("=")},
        {"Digest": "SHA-256=not*base64"},
        {"Content-Digest": f"sha-256={BODY_SHA256}"},
        {"Content-Digest": "sha-256=:"},
    ],
)
def test_an_unreadable_digest_is_malformed(headers: dict[str, str]) -> None:
    with pytest.raises(MalformedInput):
        verify_body_digest(headers, BODY)


# --- Signing --------------------------------------------------------------------------


def test_a_get_signs_target_host_and_date_and_sends_no_digest(rsa_key: PrivateKey) -> None:
    added = sign_request(
        "GET", "https://coop.example:8443/actors/alice", {}, b"", KEY_ID, rsa_key, NOW
    )

    assert set(added) == {"Host", "Date", "Signature"}
    assert added["Host"] == "coop.example:8443"
    assert added["Date"] == "Sat, 14 Mar 2026 12:00:00 GMT"
    assert parse_signature_header(added["Signature"]).headers == [
        "(request-target)",
        "host",
        "date",
    ]


def test_an_ed25519_key_signs_as_hs2019(ed_key: PrivateKey) -> None:
    added = sign_request("POST", INBOX, {}, BODY, KEY_ID, ed_key, NOW)

    assert parse_signature_header(added["Signature"]).algorithm == "hs2019"


def test_the_date_is_written_in_gmt_whatever_the_zone_of_now(rsa_key: PrivateKey) -> None:
    paris = datetime(2026, 3, 14, 13, 0, tzinfo=timezone(timedelta(hours=1)))

    added = sign_request("GET", INBOX, {}, b"", KEY_ID, rsa_key, paris)

    assert added["Date"] == "Sat, 14 Mar 2026 12:00:00 GMT"


def test_a_naive_now_is_a_programming_error(rsa_key: PrivateKey) -> None:
    with pytest.raises(ValueError, match="naive"):
        sign_request("GET", INBOX, {}, b"", KEY_ID, rsa_key, datetime(2026, 3, 14, 12, 0))


# --- Verifying: cryptography alone ----------------------------------------------------


def params_for(algorithm: str, signature: bytes) -> SignatureParams:
    return SignatureParams(KEY_ID, algorithm, ["date"], signature)


def test_an_ed25519_signature_verifies_under_hs2019(ed_key: PrivateKey) -> None:
    signature = sign_string("date: x", ed_key)

    assert verify_signature(params_for("hs2019", signature), "date: x", ed_key.public_key())
    assert not verify_signature(params_for("hs2019", signature), "date: y", ed_key.public_key())


def test_rsa_sha256_with_an_ed25519_key_never_matches(ed_key: PrivateKey) -> None:
    # draft-cavage-12 section 2.1.3: an algorithm that contradicts the key is an error.
    signature = sign_string("date: x", ed_key)

    assert not verify_signature(params_for("rsa-sha256", signature), "date: x", ed_key.public_key())


def test_hs2019_with_an_rsa_key_is_pkcs1_v1_5_with_sha256(rsa_key: PrivateKey) -> None:
    signature = sign_string("date: x", rsa_key)

    assert verify_signature(params_for("hs2019", signature), "date: x", rsa_key.public_key())


def test_a_signature_by_another_key_or_cut_short_does_not_verify(
    rsa_key: PrivateKey, other_rsa_key: PrivateKey, ed_key: PrivateKey
) -> None:
    rsa_signature = sign_string("date: x", rsa_key)
    ed_signature = sign_string("date: x", ed_key)
    other_ed = ed25519.Ed25519PrivateKey.generate().public_key()

    assert not verify_signature(
        params_for("rsa-sha256", rsa_signature), "date: x", other_rsa_key.public_key()
    )
    assert not verify_signature(
        params_for("rsa-sha256", rsa_signature[:-1]), "date: x", rsa_key.public_key()
    )
    assert not verify_signature(params_for("hs2019", ed_signature), "date: x", other_ed)
    assert not verify_signature(
        params_for("hs2019", ed_signature[:10]), "date: x", ed_key.public_key()
    )


def test_verifying_under_an_unknown_algorithm_is_refused(rsa_key: PrivateKey) -> None:
    signature = sign_string("date: x", rsa_key)

    with pytest.raises(NotAuthorized, match="unsupported signature algorithm 'rsa-sha1'"):
        verify_signature(params_for("rsa-sha1", signature), "date: x", rsa_key.public_key())


# --- Verifying: Mastodon's policy alone -----------------------------------------------

POST_HEADERS = ["(request-target)", "host", "date", "digest"]


def policy(
    covered: list[str],
    *,
    method: str = "POST",
    date: datetime | str | None = NOW,
    algorithm: str = "rsa-sha256",
    created: datetime | None = None,
    expires: datetime | None = None,
    now: datetime = NOW,
) -> None:
    params = SignatureParams(
        key_id=KEY_ID,
        algorithm=algorithm,
        headers=covered,
        signature=b"unchecked",
        created=None if created is None else int(created.timestamp()),
        expires=None if expires is None else Decimal(int(expires.timestamp())),
    )
    headers = {"Host": "coop.example"}
    if isinstance(date, datetime):
        headers["Date"] = date.strftime("%a, %d %b %Y %H:%M:%S GMT")
    elif date is not None:
        headers["Date"] = date
    check_policy(params, method, headers, now)


def test_a_fresh_post_covering_target_host_date_and_digest_passes() -> None:
    policy(POST_HEADERS)


@pytest.mark.parametrize(
    "covered",
    [
        ["(request-target)", "date", "digest"],
        ["(request-target)", "date", "content-digest"],
    ],
)
def test_a_post_need_not_cover_the_host(covered: list[str]) -> None:
    policy(covered)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        (timedelta(0), True),
        (timedelta(minutes=59), True),
        (timedelta(minutes=66), True),
        # The documented window: at most 12 hours old.
        (timedelta(hours=11, minutes=59), True),
        (timedelta(hours=12, minutes=1), False),
        (timedelta(hours=13), False),
        (-timedelta(minutes=59), True),
        (-timedelta(hours=2), False),
    ],
)
def test_the_date_must_be_within_the_documented_window(age: timedelta, accepted: bool) -> None:
    if accepted:
        policy(POST_HEADERS, date=NOW - age)
    else:
        with pytest.raises(NotAuthorized, match=r"too old|ahead of our clock"):
            policy(POST_HEADERS, date=NOW - age)


def test_a_date_13_hours_old_is_refused_as_too_old() -> None:
    with pytest.raises(NotAuthorized, match=r"too old.*sign each delivery attempt afresh"):
        policy(POST_HEADERS, date=NOW - timedelta(hours=13))


def test_a_date_2_hours_ahead_is_refused_asking_to_check_the_clock() -> None:
    with pytest.raises(NotAuthorized, match=r"ahead of our clock.*check the sending server"):
        policy(POST_HEADERS, date=NOW + timedelta(hours=2))


def test_a_signed_expires_stretches_validity_but_never_past_12_hours() -> None:
    covered = ["(request-target)", "(created)", "(expires)", "host", "digest"]
    later = NOW + timedelta(hours=1)

    policy(covered, algorithm="hs2019", date=None, created=NOW - timedelta(hours=11), expires=later)
    with pytest.raises(NotAuthorized, match="too old"):
        policy(
            covered, algorithm="hs2019", date=None, created=NOW - timedelta(hours=14), expires=later
        )


def test_an_expires_in_the_past_is_refused() -> None:
    with pytest.raises(NotAuthorized, match="expired"):
        policy(POST_HEADERS, expires=NOW - timedelta(hours=2))


def test_an_unsigned_created_cannot_refresh_an_old_date() -> None:
    # Mastodon would read this hs2019 created and ignore the signed Date.
    with pytest.raises(NotAuthorized, match="too old: the Date header"):
        policy(POST_HEADERS, algorithm="hs2019", date=NOW - timedelta(hours=13), created=NOW)


def test_an_unsigned_expires_cannot_stretch_validity() -> None:
    with pytest.raises(NotAuthorized, match="too old"):
        policy(POST_HEADERS, date=NOW - timedelta(hours=13), expires=NOW + timedelta(hours=5))


def test_hs2019_may_sign_created_instead_of_the_date() -> None:
    covered = ["(request-target)", "(created)", "host", "digest"]

    policy(covered, algorithm="hs2019", date=None, created=NOW)
    with pytest.raises(NotAuthorized, match=r"\(created\).*ahead of our clock"):
        policy(covered, algorithm="hs2019", date=None, created=NOW + timedelta(hours=2))


@pytest.mark.parametrize(
    ("covered", "method", "algorithm", "reason"),
    [
        (["host", "date", "digest"], "POST", "rsa-sha256", r"must cover \(request-target\)"),
        (["(request-target)", "host", "digest"], "POST", "rsa-sha256", "Date header or"),
        (["(request-target)", "date"], "GET", "rsa-sha256", "GET must cover the Host"),
        (["(request-target)", "host", "date"], "POST", "rsa-sha256", "POST must cover the Digest"),
        (POST_HEADERS, "POST", "hmac-sha256", "unsupported signature algorithm 'hmac-sha256'"),
        (POST_HEADERS, "POST", "rsa-sha512", "unsupported signature algorithm"),
        ([*POST_HEADERS, "(created)"], "POST", "rsa-sha256", "cannot be signed with rsa-sha256"),
    ],
)
def test_each_of_mastodons_requirements_is_enforced(
    covered: list[str], method: str, algorithm: str, reason: str
) -> None:
    with pytest.raises(NotAuthorized, match=reason) as caught:
        policy(covered, method=method, algorithm=algorithm)

    assert caught.value.status == 401


@pytest.mark.parametrize(
    ("date", "covered", "created", "reason"),
    [
        ("yesterday", POST_HEADERS, None, "not an HTTP date"),
        ("Sat, 14 Mar 2026 25:00:00 GMT", POST_HEADERS, None, "not an HTTP date"),
        (None, POST_HEADERS, None, "Date header is signed but missing"),
        (None, [*POST_HEADERS, "(created)"], None, "no created"),
    ],
)
def test_an_unreadable_or_missing_time_is_malformed(
    date: str | None, covered: list[str], created: datetime | None, reason: str
) -> None:
    with pytest.raises(MalformedInput, match=reason):
        policy(covered, algorithm="hs2019", date=date, created=created)


def test_policy_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="naive"):
        policy(POST_HEADERS, now=datetime(2026, 3, 14, 12, 0))


# --- verify_request: round trips ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", INBOX, BODY),
        ("POST", "https://coop.example/inbox?via=relay&x=a%20b", BODY),
        ("GET", "https://coop.example/actors/alice/outbox?page=2", b""),
    ],
)
async def test_what_we_sign_we_verify(
    any_key: PrivateKey, method: str, url: str, body: bytes
) -> None:
    keys = Keys(any_key.public_key())
    algorithm = "rsa-sha256" if isinstance(any_key, rsa.RSAPrivateKey) else "hs2019"

    verified = await verify(signed(any_key, method, url, body), keys)

    assert verified.key_id == KEY_ID
    assert verified.algorithm == algorithm
    assert keys.lookups == [KEY_ID]


async def test_a_signature_over_the_path_without_its_query_is_accepted(rsa_key: PrivateKey) -> None:
    # Mastodon before 4.x signed (request-target) without the query; it still accepts it.
    request = forged(rsa_key, POST_HEADERS, url=f"{INBOX}?x=1", signed_target="/actors/alice/inbox")

    await verify(request, Keys(rsa_key.public_key()))


async def test_signature_auth_signs_what_an_httpx_client_sends(any_key: PrivateKey) -> None:
    sent: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(202)

    auth = SignatureAuth(KEY_ID, any_key, ManualClock(NOW))
    async with httpx.AsyncClient(transport=httpx.MockTransport(server), auth=auth) as client:
        await client.post(f"{INBOX}?x=1", json={"type": "Follow"})
        await client.get("https://coop.example/actors/alice")

    post, get = sent
    for request in sent:
        received = incoming(request.method, str(request.url), request.headers, request.content)
        await verify(received, Keys(any_key.public_key()))
    assert post.headers["digest"] == sha256_digest_header(post.content)
    assert post.headers["date"] == "Sat, 14 Mar 2026 12:00:00 GMT"
    assert "digest" not in get.headers


# --- verify_request: attacks and failures ---------------------------------------------


async def test_a_swapped_body_is_refused_by_its_digest(rsa_key: PrivateKey) -> None:
    request = signed(rsa_key)
    request.body = b'{"type": "Delete"}'
    keys = Keys(rsa_key.public_key())

    with pytest.raises(NotAuthorized, match="the Digest header does not match the body"):
        await verify(request, keys)
    assert keys.lookups == []


@pytest.mark.parametrize(
    ("covered", "options", "reason"),
    [
        (["(request-target)", "host", "date"], {}, "POST must cover the Digest"),
        (
            POST_HEADERS,
            {"headers": {"Digest": f"SHA-512={BODY_SHA512}"}},
            "offers sha-512; sha-256 is required",
        ),
        (
            POST_HEADERS,
            {"headers": {"Date": "Fri, 13 Mar 2026 23:00:00 GMT"}},
            "too old",
        ),
        (
            POST_HEADERS,
            {"headers": {"Date": "Sat, 14 Mar 2026 14:00:00 GMT"}},
            "ahead of our clock",
        ),
        (["host", "date", "digest"], {}, r"must cover \(request-target\)"),
        (
            ["(request-target)", "date"],
            {"method": "GET", "body": b""},
            "GET must cover the Host",
        ),
        (POST_HEADERS, {"algorithm": "rsa-sha512"}, "unsupported signature algorithm"),
        (
            ["(request-target)", "host", "date"],
            {"method": "DELETE"},
            "has a body but its signature covers no digest",
        ),
    ],
)
async def test_a_genuine_signature_breaking_policy_is_refused_before_any_key_fetch(
    rsa_key: PrivateKey, covered: list[str], options: dict[str, Any], reason: str
) -> None:
    request = forged(rsa_key, covered, **options)
    keys = Keys(rsa_key.public_key())

    with pytest.raises(NotAuthorized, match=reason):
        await verify(request, keys)
    assert keys.lookups == []


async def test_an_unsigned_request_is_refused(rsa_key: PrivateKey) -> None:
    request = signed(rsa_key)
    del request.headers["Signature"]

    with pytest.raises(NotAuthorized, match="no Signature header"):
        await verify(request, Keys(rsa_key.public_key()))


@pytest.mark.parametrize(
    "value",
    ["", "Signature", 'keyId="k"', 'keyId="k",signature="@@@@"', 'keyId="k" signature="AAAA"'],
)
async def test_a_malformed_signature_header_is_a_400_before_any_key_fetch(
    rsa_key: PrivateKey, value: str
) -> None:
    request = signed(rsa_key)
    request.headers["Signature"] = value
    keys = Keys(rsa_key.public_key())

    with pytest.raises(MalformedInput):
        await verify(request, keys)
    assert keys.lookups == []


async def test_a_signed_header_missing_from_the_request_is_a_400_before_any_key_fetch(
    rsa_key: PrivateKey,
) -> None:
    request = forged(rsa_key, [*POST_HEADERS, "content-type"], headers={"Content-Type": "a/b"})
    del request.headers["Content-Type"]
    keys = Keys(rsa_key.public_key())

    with pytest.raises(MalformedInput, match="'content-type' is missing"):
        await verify(request, keys)
    assert keys.lookups == []


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("Host", "other.example"),
        ("path", "/actors/mallory/inbox"),
        ("method", "PUT"),
    ],
)
async def test_a_signature_replayed_on_another_request_does_not_match(
    rsa_key: PrivateKey, change: str, value: str
) -> None:
    request = signed(rsa_key)
    if change == "path":
        request.path = value
    elif change == "method":
        request.method = value
    else:
        request.headers[change] = value

    with pytest.raises(NotAuthorized, match="signature does not match the RSA-2048 key"):
        await verify(request, Keys(rsa_key.public_key()))


async def test_a_signature_by_another_key_does_not_match_and_says_what_was_signed(
    rsa_key: PrivateKey, other_rsa_key: PrivateKey
) -> None:
    request = signed(other_rsa_key, url=f"{INBOX}?x=1")

    with pytest.raises(NotAuthorized) as caught:
        await verify(request, Keys(rsa_key.public_key()))

    assert caught.value.status == 401
    assert f"key {KEY_ID} under rsa-sha256" in caught.value.reason
    assert (
        "'(request-target): post /actors/alice/inbox?x=1\\nhost: coop.example"
        in caught.value.reason
    )
    assert "also tried without the query string" in caught.value.reason


async def test_rsa_sha256_claimed_over_an_ed25519_key_is_refused(ed_key: PrivateKey) -> None:
    request = forged(ed_key, POST_HEADERS, algorithm="rsa-sha256")

    with pytest.raises(NotAuthorized, match="does not match the Ed25519 key"):
        await verify(request, Keys(ed_key.public_key()))


async def test_what_the_key_lookup_raises_passes_through(rsa_key: PrivateKey) -> None:
    async def unreachable(key_id: str) -> PublicKey:
        raise FetchError(f"{key_id} answered 503")

    request = signed(rsa_key)

    with pytest.raises(FetchError, match="answered 503"):
        await verify_request(
            request.method,
            request.path,
            request.query,
            request.headers,
            request.body,
            NOW,
            unreachable,
        )


# --- verify_request: key rotation -----------------------------------------------------


async def test_a_rotated_key_is_fetched_again_once_and_then_matches(
    rsa_key: PrivateKey, other_rsa_key: PrivateKey
) -> None:
    keys = Keys(current=other_rsa_key.public_key(), fresh=rsa_key.public_key())

    verified = await verify(signed(rsa_key), keys, refetch=True)

    assert verified.key_id == KEY_ID
    assert keys.refetches == [KEY_ID]


async def test_a_matching_cached_key_needs_no_refetch(rsa_key: PrivateKey) -> None:
    keys = Keys(current=rsa_key.public_key(), fresh=None)

    await verify(signed(rsa_key), keys, refetch=True)

    assert keys.refetches == []


async def test_a_refetch_that_finds_no_key_is_a_401(
    rsa_key: PrivateKey, other_rsa_key: PrivateKey
) -> None:
    keys = Keys(current=other_rsa_key.public_key(), fresh=None)

    with pytest.raises(NotAuthorized, match="fetching the key again returned none") as caught:
        await verify(signed(rsa_key), keys, refetch=True)

    assert caught.value.status == 401
    assert keys.refetches == [KEY_ID]


async def test_a_refetch_that_finds_the_same_key_is_a_401(
    rsa_key: PrivateKey, other_rsa_key: PrivateKey
) -> None:
    keys = Keys(current=other_rsa_key.public_key(), fresh=other_rsa_key.public_key())

    with pytest.raises(NotAuthorized, match="signature does not match"):
        await verify(signed(rsa_key), keys, refetch=True)

    assert keys.refetches == [KEY_ID]


async def test_a_refetched_key_that_does_not_match_either_is_a_401(
    rsa_key: PrivateKey, other_rsa_key: PrivateKey, ed_key: PrivateKey
) -> None:
    keys = Keys(current=other_rsa_key.public_key(), fresh=ed_key.public_key())

    with pytest.raises(NotAuthorized, match="freshly fetched"):
        await verify(signed(rsa_key), keys, refetch=True)


def test_the_quick_readings_of_a_signature_header_agree_with_the_general_parser() -> None:
    # The usual headers are read by regular expressions; the general parser decides the
    # rest. Both must give the same parameters or the same refusal.
    from federation.httpsig import _auth_params, _general_auth_params

    usual = (
        'keyId="https://peer.example/users/bob#main-key",algorithm="rsa-sha256",'
        'headers="(request-target) host date digest",signature="c2lnbmF0dXJl"'
    )
    rng = random.Random(20270301)
    variants = [usual, usual.replace(",", ", "), usual.replace('"rsa-sha256"', "rsa-sha256")]
    variants += [usual[:cut] for cut in range(len(usual))]
    for _ in range(2000):
        chars = list(usual)
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice('",=\\ \t\n;:()AZaz09+/\x00é')
        variants.append("".join(chars))

    for variant in variants:
        try:
            expected: dict[str, str] | type[MalformedInput] = _general_auth_params(variant)
        except MalformedInput:
            expected = MalformedInput
        try:
            got: dict[str, str] | type[MalformedInput] = _auth_params(variant)
        except MalformedInput:
            got = MalformedInput
        assert got == expected, variant


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 05 Jan 2014 21:31:40 GMT",
        "Mon, 01 Mar 2027 09:00:00 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850, obsolete but still to be accepted
        "Sun Nov  6 08:49:37 1994",  # asctime
        "Sun, 05 Jan 2014 21:31:40 +0000",
    ],
)
def test_http_dates_are_read_as_the_email_parser_reads_them(value: str) -> None:
    import email.utils

    from federation.httpsig import _parse_http_date

    expected = email.utils.parsedate_to_datetime(value)
    expected = expected if expected.tzinfo else expected.replace(tzinfo=UTC)
    assert _parse_http_date(value) == expected


@pytest.mark.parametrize(
    "value", ["Tue, 30 Feb 2027 09:00:00 GMT", "Mon, 01 Mar 2027 25:00:00 GMT", "yesterday"]
)
def test_an_impossible_http_date_is_malformed(value: str) -> None:
    from federation.httpsig import _parse_http_date

    with pytest.raises(MalformedInput, match="Date header"):
        _parse_http_date(value)
