"""Which signature a delivery carries, and what a host's answers teach."""

from __future__ import annotations

from typing import Any

import pytest

from federation.jsonld import COOP_CONTEXT_URL
from federation.schemes import (
    ED25519_CAPABILITY,
    RFC9421_CAPABILITY,
    Scheme,
    declared_capabilities,
    declares_ed25519,
    knocks_again,
    lesson,
)

# The generator block of a tootik actor (dimkr/tootik, migrations/057_actorgenerator.go
# at fbf116aac72d2e50c4b35334f3ce57b0d0873fbb), as FEP-844e places it.
TOOTIK = {
    "id": "https://tootik.example/user/nobody",
    "type": "Application",
    "generator": {
        "type": "Application",
        "implements": [
            {"href": RFC9421_CAPABILITY, "name": "RFC-9421: HTTP Message Signatures"},
            {
                "href": ED25519_CAPABILITY,
                "name": "RFC-9421 signatures using the Ed25519 algorithm",
            },
        ],
    },
}


@pytest.mark.parametrize(
    "document",
    [
        TOOTIK,
        # An anonymous Application with a single Link, not a list.
        {"generator": {"implements": {"href": ED25519_CAPABILITY}}},
        # Plain URIs and Link objects named by id, as some servers write them.
        {"generator": {"implements": [ED25519_CAPABILITY]}},
        {"generator": {"implements": [{"id": ED25519_CAPABILITY}]}},
        # A coopnode actor declares the vocabulary on itself; every coopnode verifies
        # RFC 9421 with Ed25519.
        {"implements": [{"name": "coopnode co-op vocabulary", "href": COOP_CONTEXT_URL}]},
    ],
)
def test_a_declared_ed25519_capability_is_read(document: dict[str, Any]) -> None:
    assert declares_ed25519(document)


@pytest.mark.parametrize(
    "document",
    [
        {},
        # RFC 9421 alone: Mastodon 4.5 verifies it with RSA keys only.
        {"generator": {"implements": [{"href": RFC9421_CAPABILITY}]}},
        # An Ed25519 key for object proofs (FEP-521a) says nothing of HTTP signatures.
        {"assertionMethod": [{"type": "Multikey", "publicKeyMultibase": "z6Mk"}]},
        # A name is no capability.
        {"generator": {"implements": [{"name": ED25519_CAPABILITY}]}},
        # Shapes a hostile or careless server may send.
        {"generator": "https://peer.example/app"},
        {"generator": {"implements": 7}},
        {"generator": [None, 3, {"implements": [[ED25519_CAPABILITY]]}]},
        {"implements": {"href": {"nested": ED25519_CAPABILITY}}},
    ],
)
def test_anything_else_is_no_declaration(document: dict[str, Any]) -> None:
    assert not declares_ed25519(document)


def test_a_huge_list_is_read_no_further_than_its_start() -> None:
    entries = [{"href": f"https://peer.example/{n}"} for n in range(10_000)]
    late = {"generator": {"implements": [*entries, {"href": ED25519_CAPABILITY}]}}

    assert len(declared_capabilities(late)) == 64
    assert not declares_ed25519(late)


def test_capabilities_on_a_list_of_generators_count() -> None:
    document = {"generator": [{"type": "Application"}, TOOTIK["generator"]]}

    assert declared_capabilities(document) == {RFC9421_CAPABILITY, ED25519_CAPABILITY}


@pytest.mark.parametrize(
    ("status", "again"),
    [
        (400, True),
        (401, True),
        (403, False),
        (404, False),
        (410, False),
        (429, False),
        (500, False),
        (503, False),
        (202, False),
        (302, False),
        (None, False),
    ],
)
def test_only_a_400_or_401_to_rfc9421_calls_for_draft_cavage(
    status: int | None, again: bool
) -> None:
    assert knocks_again(status) is again


@pytest.mark.parametrize(
    ("rfc9421", "cavage", "taught"),
    [
        (202, None, Scheme.RFC9421_ED25519),
        (200, None, Scheme.RFC9421_ED25519),
        (401, 202, Scheme.CAVAGE_RSA),
        (400, 200, Scheme.CAVAGE_RSA),
        # A 401 to both: our key not trusted yet (Mastodon cannot fetch it), not a scheme.
        (401, 401, None),
        (400, 400, None),
        # The second try failing otherwise says nothing of signatures either.
        (401, 503, None),
        (401, None, None),
        (503, None, None),
        (403, None, None),
        (None, None, None),
    ],
)
def test_what_answers_teach(rfc9421: int | None, cavage: int | None, taught: Scheme | None) -> None:
    assert lesson(rfc9421, cavage) is taught
