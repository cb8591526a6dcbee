"""Body digests: the headers written as RFC 3230 and RFC 9530 show them, read back, and
compared with the body, by this module and by both signature modules that use it."""

from __future__ import annotations

import base64
import hashlib

import pytest

from federation import httpsig, rfc9421
from federation.digests import (
    Mismatch,
    content_digest,
    content_digest_header,
    find_mismatch,
    parse_content_digest,
    parse_digest,
    sha256_digest_header,
)
from federation.errors import MalformedInput, NotAuthorized

# The body of RFC 9530's examples (and of draft-cavage's), with the digests they give.
BODY = b'{"hello": "world"}'
SHA256 = "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
SHA512 = "WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew=="
OTHER = hashlib.sha256(b"{}").digest()


def test_headers_are_written_as_rfc_3230_and_rfc_9530_show_them() -> None:
    assert sha256_digest_header(BODY) == f"SHA-256={SHA256}"
    assert content_digest_header(BODY) == f"sha-256=:{SHA256}:"
    assert content_digest(BODY) == f"sha-256=:{SHA256}:"
    assert content_digest(BODY, "sha-512") == f"sha-512=:{SHA512}:"


def test_what_is_written_reads_back_and_matches() -> None:
    for entries in (
        parse_digest(sha256_digest_header(BODY)),
        parse_content_digest(content_digest(BODY, "sha-512")),
    ):
        assert find_mismatch(entries, BODY) is None


@pytest.mark.parametrize("name", ["SHA-256", "sha-256", "Sha-256"])
def test_digest_algorithm_names_are_case_insensitive(name: str) -> None:
    assert parse_digest(f"{name}={SHA256}") == [("sha-256", base64.b64decode(SHA256))]


def test_the_rfc_3230_example_reads_with_nothing_to_check() -> None:
    # RFC 3230 section 4.3.2: SHA-1 and unixsum, neither of which is checked here.
    entries = parse_digest("SHA=thvDyvhfIqlvFe+A9MYgxAfm1q5=,unixsum=30637")

    assert entries == [("sha", None), ("unixsum", None)]
    assert find_mismatch(entries, BODY) is None


def test_a_digest_of_another_body_is_a_mismatch() -> None:
    entries = [("sha-512", base64.b64decode(SHA512)), ("sha-256", OTHER)]

    assert find_mismatch(entries, BODY) == Mismatch("sha-256", OTHER, base64.b64decode(SHA256))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("SHA-256", "has no '='"),
        ("SHA-256=not*base64", "not valid base64"),
        ("SHA-256=", "is empty"),
    ],
)
def test_an_unreadable_digest_is_malformed(value: str, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        parse_digest(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("sha-256=1", "byte sequence"),
        (f'sha-256="{SHA256}"', "byte sequence"),
        (f"SHA-256=:{SHA256}:", "RFC 8941"),
        (f"sha-256=:{SHA256}:, sha-256=:{SHA256}:", "RFC 8941"),
    ],
)
def test_an_unreadable_content_digest_is_malformed(value: str, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        parse_content_digest(value)


def test_content_digest_keeps_algorithms_it_does_not_check_but_reads_nothing_of_them() -> None:
    assert parse_content_digest(f"md5=1, sha-256=:{SHA256}:;note=x") == [
        ("md5", None),
        ("sha-256", base64.b64decode(SHA256)),
    ]


def test_both_signature_modules_refuse_a_content_digest_of_another_body() -> None:
    value = content_digest(b"{}")

    with pytest.raises(NotAuthorized, match="the Content-Digest header does not match"):
        httpsig.verify_body_digest({"Content-Digest": value}, BODY)
    with pytest.raises(NotAuthorized, match="Content-Digest sha-256 does not match"):
        rfc9421.verify_content_digest(value, BODY)
