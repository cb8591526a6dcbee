"""Every document the node publishes means what the vocabulary says to a JSON-LD
processor that has only the standard contexts, and no network.

Fedify and other processors preload ActivityStreams, security, data integrity and
Multikey, and fetch any other context URL; nobody serves ``https://coopnode.org/ns/v1``,
so a document naming it would be refused. Each document here (everything in the co-op's
outbox after a vote with members and Mastodon users, an offer and its Note, the actors,
a shared proposal's subtotals and the roster) is expanded with a loader that knows only
the standard contexts, and its terms must come out as full ValueFlows, om2,
ActivityStreams and co-op IRIs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pyld import jsonld as pyld
from sqlalchemy import select

from federation.jsonld import (
    AS_CONTEXT_URL,
    COOP_CONTEXT_URL,
    DATA_INTEGRITY_V1_CONTEXT_URL,
    DATA_INTEGRITY_V2_CONTEXT_URL,
    MULTIKEY_V1_CONTEXT_URL,
    SECURITY_V1_CONTEXT_URL,
    load_context,
)
from node.storage.tables import offers, outbox_activities
from tests.node.governance.test_subtotals import four_coops, open_shared, shared_entry
from tests.node.web.ui.test_pages import offer, publish
from tests.support.coops import Coop, make_coop
from tests.support.network import Network, TestNode

STANDARD = (
    AS_CONTEXT_URL,
    SECURITY_V1_CONTEXT_URL,
    MULTIKEY_V1_CONTEXT_URL,
    DATA_INTEGRITY_V1_CONTEXT_URL,
    DATA_INTEGRITY_V2_CONTEXT_URL,
)
AS = "https://www.w3.org/ns/activitystreams#"
COOP = "https://coopnode.org/ns#"
VF = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
AS2 = {"Accept": "application/activity+json"}


def standard_only_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a peer's processor has without the network: the standard contexts only."""
    if url.rstrip("#/").removesuffix(".jsonld").replace("http://", "https://") not in STANDARD:
        raise pyld.JsonLdError(
            f"{url} would have to be fetched",
            "jsonld.LoadDocumentError",
            code="loading document failed",
        )
    return {"contextUrl": None, "documentUrl": url, "document": load_context(url)}


def expand(document: dict[str, Any]) -> list[Any]:
    expanded: list[Any] = pyld.expand(document, {"documentLoader": standard_only_loader})
    return expanded


def predicates(node: Any) -> set[str]:
    """Every property IRI anywhere in an expanded document."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if not key.startswith("@"):
                    found.add(key)
                if key != "@value":  # a literal, JSON ones included, holds no terms
                    stack.append(value)
    return found


def undefined_terms(document: dict[str, Any]) -> set[str]:
    """The document's terms that no context defines. The ActivityStreams context maps
    any undefined term to a blank-node property (``"@vocab": "_:"``): it survives
    expansion, but means nothing to anyone."""
    return {p for p in predicates(expand(document)) if not p.startswith(("https://", "http://"))}


async def get(node: TestNode, path_or_url: str) -> dict[str, Any]:
    path = path_or_url.removeprefix(node.base)
    response = await node.get(path, headers=AS2)
    assert response.status_code == 200, (path, response.text)
    document: dict[str, Any] = response.json()
    return document


async def outbox_bodies(node: TestNode) -> list[dict[str, Any]]:
    query = select(outbox_activities.c.body).order_by(outbox_activities.c.id)
    rows = await node.node.db.read(lambda conn: conn.execute(query).scalars().all())
    return [json.loads(body) for body in rows]


def check_all(documents: list[dict[str, Any]]) -> set[str]:
    """Expand each document offline; return every predicate met."""
    met: set[str] = set()
    for document in documents:
        assert COOP_CONTEXT_URL not in json.dumps(document.get("@context")), document.get("type")
        assert not undefined_terms(document), (document.get("type"), undefined_terms(document))
        met |= predicates(expand(document))
    return met


async def test_offers_proposals_votes_and_outcomes_need_only_the_standard_contexts(
    network: Network,
) -> None:
    coop: Coop = await make_coop(network, local=3, remote=1)
    node = coop.node
    published = await publish(node, offer())
    created = await coop.propose("m0")
    for who, choice in (("m0", "For"), ("m1", "For"), ("m2", "Against")):
        assert (await coop.vote(who, created["id"], choice)).status_code == 201
    await coop.mastodon.vote(coop.remote["r0"], created["uri"], "For")
    await network.settle()
    network.clock.advance(timedelta(days=7, minutes=5))
    await network.settle()

    served = [
        await get(node, "/actors/coop"),
        await get(node, "/actors/m0"),
        await get(node, f"/offers/{published['id']}"),
        await get(node, f"/offers/{published['id']}/note"),
        await get(node, f"/proposals/{created['id']}"),
        await get(node, f"/proposals/{created['id']}/ballots"),
        await get(node, "/actors/coop/offers?page=true"),
        await get(node, "/actors/coop/outbox?page=true"),
    ]
    sent = await outbox_bodies(node)
    met = check_all(served + sent)

    kinds = {d["type"] for d in sent} | {d["type"] for d in served}
    assert {"Create", "Update", "Group", "Person", "Proposal", "Note", "Question"} <= kinds
    # ValueFlows and om2, as FEP-0837 reads an offer.
    assert {
        VF + "publishes",
        VF + "reciprocal",
        VF + "resourceConformsTo",
        VF + "resourceQuantity",
        OM2 + "hasUnit",
        OM2 + "hasNumericalValue",
    } <= met
    # The governance terms.
    assert {
        COOP + "decisionRule",
        COOP + "threshold",
        COOP + "quorum",
        COOP + "outcome",
        COOP + "optionRole",
        COOP + "electorate",
        COOP + "rosterSnapshot",
        COOP + "offers",
        COOP + "proposals",
    } <= met
    assert {AS + "oneOf", AS + "endTime", AS + "content"} <= met


async def test_shared_proposals_subtotals_and_the_roster_need_only_the_standard_contexts(
    network: Network,
) -> None:
    coops = await four_coops(network)
    created = await open_shared(coops)
    await network.settle()
    tourism, food = coops["tourism"], coops["food"]
    await tourism.vote("m0", created["id"], "For")
    await food.vote("m0", (await shared_entry(food))["id"], "For")
    await network.settle()
    network.clock.advance(timedelta(days=7, minutes=20))
    await network.settle()

    documents = []
    for coop in coops.values():
        documents += await outbox_bodies(coop.node)
    subtotals = await get(tourism.node, f"/proposals/{created['id']}/subtotals")
    documents.append(subtotals)
    met = check_all(documents)

    assert {COOP + "voters", COOP + "counts", COOP + "subtotals", COOP + "participation"} <= met


async def test_an_offer_stored_naming_the_old_context_url_is_served_with_the_terms(
    network: Network,
) -> None:
    """Offers published before the terms were embedded keep their stored document: they
    are served, alone and in pages, as they would be published now."""
    coop = await network.add("alpha.test")
    published = await publish(coop, offer())
    uri = f"{coop.base}/offers/{published['id']}"

    def name_the_url(conn: Any) -> None:
        document = json.loads(conn.execute(select(offers.c.document)).scalar_one())
        document["@context"] = [AS_CONTEXT_URL, COOP_CONTEXT_URL, {"Hashtag": "as:Hashtag"}]
        document.pop("proof")  # offers published then were not signed
        conn.execute(
            offers.update().where(offers.c.uri == uri).values(document=json.dumps(document))
        )

    await coop.node.db.write(name_the_url)

    documents = [
        await get(coop, uri),
        await get(coop, "/actors/coop/offers?page=true"),
        await get(coop, "/actors/coop/outbox?page=true"),
    ]

    met = check_all(documents)
    assert {VF + "publishes", OM2 + "hasNumericalValue"} <= met
