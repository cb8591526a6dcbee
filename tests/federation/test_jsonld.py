import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyld import jsonld as pyld_jsonld
from pyld.jsonld import JsonLdError

from federation import jsonld
from federation.jsonld import (
    AS_CONTEXT_URL,
    CONTEXTS_DIR,
    COOP_CONTEXT_URL,
    COOP_NAMESPACE,
    KNOWN_CONTEXTS,
    MULTIKEY_V1_CONTEXT_URL,
    SECURITY_V1_CONTEXT_URL,
    compact,
    expand,
    load_context,
    offline_document_loader,
)

AS = "https://www.w3.org/ns/activitystreams#"
LDP = "http://www.w3.org/ns/ldp#"
SEC = "https://w3id.org/security#"
VF = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"

UNKNOWN_CONTEXT_URL = "https://contexts.example/unknown/v1"

# SHA-256 of each official context as its URL serves it. The first four are the digests
# that independent public copies record for the served bytes; data-integrity v2 and
# multikey v1 are also the digests Data Integrity 1.0 makes normative
# (https://www.w3.org/TR/vc-data-integrity/#contexts-and-vocabularies).
PUBLISHED_SHA256 = {
    "activitystreams.jsonld": "a27b78b82f4980963127140d0cb74f0e8f21c0e2b8efd0368232bf9823edff5a",
    "security-v1.jsonld": "abaf97e107d1925503c433dcaf3ffd2831697cacc1ed2a293e1bc8030d5bcb47",
    "data-integrity-v1.jsonld": "b5d829bd09aa7c42abc6efa0c8ed7635313b5487f37ccfce3ecd149ca9418554",
    "data-integrity-v2.jsonld": "67f21e6e33a6c14e5ccfd2fc7865f7474fb71a04af7e94136cb399dfac8ae8f4",
    "multikey-v1.jsonld": "ba2c182de2d92f7e47184bcca8fcf0beaee6d3986c527bf664c195bbc7c58597",
}

# Every term of the co-op context and the IRI it must expand to. A term added to the
# context without a line here fails test_the_coop_context_defines_exactly_these_terms.
COOP_TERMS = {
    # links from the co-op's Group actor
    "offers": COOP_NAMESPACE + "offers",
    "proposals": COOP_NAMESPACE + "proposals",
    "members": COOP_NAMESPACE + "members",
    # member roster items
    "memberSince": COOP_NAMESPACE + "memberSince",
    "college": COOP_NAMESPACE + "college",
    "role": COOP_NAMESPACE + "role",
    # networks of co-ops: the network's Group, a co-op's place in it, a network-wide vote
    "network": COOP_NAMESPACE + "network",
    "sector": COOP_NAMESPACE + "sector",
    "region": COOP_NAMESPACE + "region",
    "charter": COOP_NAMESPACE + "charter",
    "admission": COOP_NAMESPACE + "admission",
    # offers
    "claims": COOP_NAMESPACE + "claims",
    "deliveryOptions": COOP_NAMESPACE + "deliveryOptions",
    "paymentOptions": COOP_NAMESPACE + "paymentOptions",
    # governance
    "decisionRule": COOP_NAMESPACE + "decisionRule",
    "threshold": COOP_NAMESPACE + "threshold",
    "quorum": COOP_NAMESPACE + "quorum",
    "electorate": COOP_NAMESPACE + "electorate",
    "countingMode": COOP_NAMESPACE + "countingMode",
    "colleges": COOP_NAMESPACE + "colleges",
    "weight": COOP_NAMESPACE + "weight",
    "allowBallotChange": COOP_NAMESPACE + "allowBallotChange",
    "abstentionsCountTowardQuorum": COOP_NAMESPACE + "abstentionsCountTowardQuorum",
    "outcome": COOP_NAMESPACE + "outcome",
    "passed": COOP_NAMESPACE + "passed",
    "reason": COOP_NAMESPACE + "reason",
    "rosterSnapshot": COOP_NAMESPACE + "rosterSnapshot",
    "subtotal": COOP_NAMESPACE + "subtotal",
    "optionRole": COOP_NAMESPACE + "optionRole",
    # proposals, outcomes and the ballots published for audit
    "maxChoices": COOP_NAMESPACE + "maxChoices",
    "blockAt": COOP_NAMESPACE + "blockAt",
    "result": COOP_NAMESPACE + "result",
    "eligible": COOP_NAMESPACE + "eligible",
    "quorumNeeded": COOP_NAMESPACE + "quorumNeeded",
    "turnout": COOP_NAMESPACE + "turnout",
    "quorumTurnout": COOP_NAMESPACE + "quorumTurnout",
    "counts": COOP_NAMESPACE + "counts",
    "participation": COOP_NAMESPACE + "participation",
    "subtotals": COOP_NAMESPACE + "subtotals",
    "support": COOP_NAMESPACE + "support",
    "weightedSupport": COOP_NAMESPACE + "weightedSupport",
    "weightedShares": COOP_NAMESPACE + "weightedShares",
    "digest": COOP_NAMESPACE + "digest",
    "ballots": COOP_NAMESPACE + "ballots",
    "Ballot": COOP_NAMESPACE + "Ballot",
    "voter": COOP_NAMESPACE + "voter",
    "choices": COOP_NAMESPACE + "choices",
    "castAt": COOP_NAMESPACE + "castAt",
    "activity": COOP_NAMESPACE + "activity",
    "status": COOP_NAMESPACE + "status",
    "votes": COOP_NAMESPACE + "votes",
    "coopTie": COOP_NAMESPACE + "coopTie",
    "Subtotal": COOP_NAMESPACE + "Subtotal",
    "voters": COOP_NAMESPACE + "voters",
    # ValueFlows, as FEP-0837 maps it
    "Proposal": VF + "Proposal",
    "Intent": VF + "Intent",
    "purpose": VF + "purpose",
    "publishes": VF + "publishes",
    "reciprocal": VF + "reciprocal",
    "unitBased": VF + "unitBased",
    "action": VF + "action",
    "resourceConformsTo": VF + "resourceConformsTo",
    "resourceQuantity": VF + "resourceQuantity",
    "availableQuantity": VF + "availableQuantity",
    "minimumQuantity": VF + "minimumQuantity",
    "hasUnit": OM2 + "hasUnit",
    "hasNumericalValue": OM2 + "hasNumericalValue",
    # Mastodon's count of a poll's voters
    "votersCount": "http://joinmastodon.org/ns#votersCount",
    # FEP-521a keys and FEP-844e capabilities
    "assertionMethod": SEC + "assertionMethod",
    "implements": "https://w3id.org/fep/844e/implements",
}
COOP_PREFIXES = {
    "coop": COOP_NAMESPACE,
    "vf": VF,
    "om2": OM2,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "toot": "http://joinmastodon.org/ns#",
}
COOP_CLASSES = {"Proposal", "Intent", "Ballot", "Subtotal"}

GROUP_ACTOR: dict[str, Any] = {
    "@context": [
        AS_CONTEXT_URL,
        SECURITY_V1_CONTEXT_URL,
        MULTIKEY_V1_CONTEXT_URL,
        COOP_CONTEXT_URL,
    ],
    "id": "https://coop.example/actors/bakery",
    "type": "Group",
    "preferredUsername": "bakery",
    "inbox": "https://coop.example/actors/bakery/inbox",
    "outbox": "https://coop.example/actors/bakery/outbox",
    "followers": "https://coop.example/actors/bakery/followers",
    "endpoints": {"sharedInbox": "https://coop.example/inbox"},
    "publicKey": {
        "id": "https://coop.example/actors/bakery#main-key",
        "owner": "https://coop.example/actors/bakery",
        "publicKeyPem": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n",
    },
    "assertionMethod": [
        {
            "id": "https://coop.example/actors/bakery#ed25519-key",
            "type": "Multikey",
            "controller": "https://coop.example/actors/bakery",
            "publicKeyMultibase": "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        }
    ],
    "offers": "https://coop.example/actors/bakery/offers",
    "proposals": "https://coop.example/actors/bakery/proposals",
    "members": "https://coop.example/actors/bakery/members",
}


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Any attempt to open a connection fails the test, and is recorded."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise NetworkUsed(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # pyld keeps resolved contexts in a module-level cache; empty it so that the
    # loader really runs under the guard.
    pyld_jsonld._resolved_context_cache.clear()
    return attempts


def _only_node(document: dict[str, Any]) -> dict[str, Any]:
    expanded = expand(document)
    assert len(expanded) == 1
    node: dict[str, Any] = expanded[0]
    return node


# --- the bundled files ----------------------------------------------------------------


@pytest.mark.parametrize("url", sorted(KNOWN_CONTEXTS))
def test_every_known_context_url_loads_a_json_object_with_a_context(url: str) -> None:
    document = load_context(url)

    assert isinstance(document["@context"], dict | list)


@pytest.mark.parametrize("path", sorted(CONTEXTS_DIR.glob("*.jsonld")), ids=lambda p: p.name)
def test_every_file_the_node_serves_is_valid_json_and_answers_for_a_url(path: Path) -> None:
    assert "@context" in json.loads(path.read_bytes())
    assert path.name in KNOWN_CONTEXTS.values()


@pytest.mark.parametrize(("file_name", "sha256"), sorted(PUBLISHED_SHA256.items()))
def test_official_contexts_are_the_published_bytes(file_name: str, sha256: str) -> None:
    assert hashlib.sha256((CONTEXTS_DIR / file_name).read_bytes()).hexdigest() == sha256


@pytest.mark.parametrize(
    ("url", "file_name"),
    [
        ("https://www.w3.org/ns/activitystreams", "activitystreams.jsonld"),
        ("http://www.w3.org/ns/activitystreams", "activitystreams.jsonld"),
        ("https://www.w3.org/ns/activitystreams.jsonld", "activitystreams.jsonld"),
        ("https://www.w3.org/ns/activitystreams#", "activitystreams.jsonld"),
        ("http://w3id.org/security/v1", "security-v1.jsonld"),
        ("https://w3id.org/security/v1/", "security-v1.jsonld"),
        ("https://w3id.org/security/multikey/v1", "multikey-v1.jsonld"),
        ("https://w3id.org/security/data-integrity/v1", "data-integrity-v1.jsonld"),
        ("https://w3id.org/security/data-integrity/v2", "data-integrity-v2.jsonld"),
        ("https://coopnode.org/ns/v1", "coop-v1.jsonld"),
        ("http://coopnode.org/ns/v1#", "coop-v1.jsonld"),
    ],
)
def test_usual_spellings_of_a_context_url_answer_with_the_same_file(
    url: str, file_name: str
) -> None:
    assert KNOWN_CONTEXTS[url] == file_name


def test_each_file_is_parsed_once_and_every_caller_gets_its_own_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[Path] = []
    read_bytes = Path.read_bytes

    def counting_read_bytes(self: Path) -> bytes:
        reads.append(self)
        return read_bytes(self)

    jsonld._read_context.cache_clear()
    monkeypatch.setattr(Path, "read_bytes", counting_read_bytes)

    first = load_context(COOP_CONTEXT_URL)
    first["@context"]["offers"] = "https://attacker.example/offers"
    second = load_context("http://coopnode.org/ns/v1")

    assert reads == [CONTEXTS_DIR / "coop-v1.jsonld"]
    assert second["@context"]["offers"] == {"@id": "coop:offers", "@type": "@id"}


def test_importing_the_module_does_not_import_pyld() -> None:
    code = "import sys, federation.jsonld; assert 'pyld' not in sys.modules, 'pyld imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# --- the document loader --------------------------------------------------------------


def test_the_loader_answers_a_known_context_as_a_remote_document() -> None:
    answer = offline_document_loader(AS_CONTEXT_URL)

    assert answer["contentType"] == "application/ld+json"
    assert answer["contextUrl"] is None
    assert answer["documentUrl"] == AS_CONTEXT_URL
    assert answer["document"]["@context"]["inbox"] == {"@id": "ldp:inbox", "@type": "@id"}


def test_an_unknown_context_url_is_refused_naming_the_url() -> None:
    with pytest.raises(JsonLdError) as raised:
        offline_document_loader(UNKNOWN_CONTEXT_URL, {})

    assert raised.value.code == "loading document failed"
    assert UNKNOWN_CONTEXT_URL in str(raised.value)


def test_contexts_never_come_from_the_network(no_network: list[object]) -> None:
    # Given a machine where every connection attempt fails loudly,
    # when a document names only bundled contexts, it expands;
    node = _only_node(GROUP_ACTOR)
    assert node["@type"] == [AS + "Group"]

    # and when it names a context that is not bundled, expansion fails with pyld's
    # error, caused by the loader's refusal, not by a connection attempt.
    with pytest.raises(JsonLdError) as raised:
        expand({"@context": [AS_CONTEXT_URL, UNKNOWN_CONTEXT_URL], "type": "Note"})
    cause = raised.value.__cause__
    assert isinstance(cause, JsonLdError)
    assert cause.code == "loading document failed"
    assert UNKNOWN_CONTEXT_URL in str(cause)

    assert no_network == []


# --- what documents mean --------------------------------------------------------------


def test_a_group_actor_expands_to_the_full_iris_peers_rely_on() -> None:
    node = _only_node(GROUP_ACTOR)

    assert node["@id"] == "https://coop.example/actors/bakery"
    assert node[LDP + "inbox"] == [{"@id": "https://coop.example/actors/bakery/inbox"}]
    assert node[AS + "outbox"] == [{"@id": "https://coop.example/actors/bakery/outbox"}]
    assert node[AS + "endpoints"][0][AS + "sharedInbox"] == [{"@id": "https://coop.example/inbox"}]

    (public_key,) = node[SEC + "publicKey"]
    assert public_key["@id"] == "https://coop.example/actors/bakery#main-key"
    assert public_key[SEC + "owner"] == [{"@id": "https://coop.example/actors/bakery"}]
    assert SEC + "publicKeyPem" in public_key

    (multikey,) = node[SEC + "assertionMethod"]
    assert multikey["@type"] == [SEC + "Multikey"]
    assert multikey[SEC + "controller"] == [{"@id": "https://coop.example/actors/bakery"}]
    assert multikey[SEC + "publicKeyMultibase"] == [
        {
            "@type": SEC + "multibase",
            "@value": "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        }
    ]

    assert node[COOP_NAMESPACE + "offers"] == [{"@id": "https://coop.example/actors/bakery/offers"}]
    assert node[COOP_NAMESPACE + "proposals"] == [
        {"@id": "https://coop.example/actors/bakery/proposals"}
    ]
    assert node[COOP_NAMESPACE + "members"] == [
        {"@id": "https://coop.example/actors/bakery/members"}
    ]


def test_a_group_actor_compacts_back_to_the_terms_it_was_written_with() -> None:
    compacted = compact(GROUP_ACTOR, GROUP_ACTOR["@context"])

    assert compacted["offers"] == GROUP_ACTOR["offers"]
    assert compacted["inbox"] == GROUP_ACTOR["inbox"]
    assert compacted["assertionMethod"] == GROUP_ACTOR["assertionMethod"]


def test_the_coop_context_defines_exactly_these_terms() -> None:
    definitions = load_context(COOP_CONTEXT_URL)["@context"]

    assert set(definitions) == set(COOP_TERMS) | set(COOP_PREFIXES)
    assert {name: definitions[name] for name in COOP_PREFIXES} == COOP_PREFIXES


def test_every_coop_term_expands_into_its_namespace() -> None:
    properties = sorted(set(COOP_TERMS) - COOP_CLASSES)
    document: dict[str, Any] = {
        "@context": COOP_CONTEXT_URL,
        "@id": "https://coop.example/things/1",
        "@type": sorted(COOP_CLASSES),
        **{name: "https://coop.example/values/" + name for name in properties},
    }

    node = _only_node(document)

    assert sorted(node["@type"]) == sorted(COOP_TERMS[name] for name in COOP_CLASSES)
    assert set(node) - {"@id", "@type"} == {COOP_TERMS[name] for name in properties}


def test_member_since_is_a_date_time() -> None:
    node = _only_node({"@context": COOP_CONTEXT_URL, "memberSince": "2024-03-01T00:00:00Z"})

    assert node[COOP_NAMESPACE + "memberSince"] == [
        {"@type": "http://www.w3.org/2001/XMLSchema#dateTime", "@value": "2024-03-01T00:00:00Z"}
    ]


def test_an_fep_0837_proposal_means_the_same_with_the_coop_context_or_inline_terms() -> None:
    # The minimal example of FEP-0837, with the terms its examples define inline
    # (https://codeberg.org/fediverse/fep/src/branch/main/fep/0837/fep-0837.md).
    inline_terms = {
        "om2": OM2,
        "vf": VF,
        "Proposal": "vf:Proposal",
        "Intent": "vf:Intent",
        "action": "vf:action",
        "purpose": "vf:purpose",
        "unitBased": "vf:unitBased",
        "publishes": "vf:publishes",
        "resourceQuantity": "vf:resourceQuantity",
        "hasUnit": "om2:hasUnit",
        "hasNumericalValue": "om2:hasNumericalValue",
    }
    proposal: dict[str, Any] = {
        "type": "Proposal",
        "id": "https://coop.example/proposals/1",
        "purpose": "offer",
        "attributedTo": "https://coop.example/actors/bakery",
        "publishes": {
            "type": "Intent",
            "id": "https://coop.example/proposals/1#primary",
            "action": "transfer",
            "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"},
        },
        "unitBased": False,
        "to": "https://www.w3.org/ns/activitystreams#Public",
    }

    with_coop_context = expand({"@context": [AS_CONTEXT_URL, COOP_CONTEXT_URL], **proposal})
    with_inline_terms = expand({"@context": [AS_CONTEXT_URL, inline_terms], **proposal})

    assert with_coop_context == with_inline_terms
