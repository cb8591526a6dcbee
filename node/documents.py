"""ActivityStreams documents the node publishes, built from plain data.

Contexts: the ActivityStreams, security and Multikey contexts by URL (every
ActivityPub server knows them), and the few extension terms an actor uses defined
inline, so that a JSON-LD processor elsewhere never has to fetch our context to read
an actor. The full co-op context is in ``schemas/contexts`` and served under ``/ns/``.
"""

from __future__ import annotations

import html
from typing import Any

from federation.jsonld import (
    AS_CONTEXT_URL,
    COOP_CONTEXT_URL,
    COOP_NAMESPACE,
    MULTIKEY_V1_CONTEXT_URL,
    SECURITY_V1_CONTEXT_URL,
)
from node.services.identity import ActorWithKeys
from node.urls import Urls

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"

ACTOR_CONTEXT: list[Any] = [
    AS_CONTEXT_URL,
    SECURITY_V1_CONTEXT_URL,
    MULTIKEY_V1_CONTEXT_URL,
    {
        "coop": COOP_NAMESPACE,
        "toot": "http://joinmastodon.org/ns#",
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "discoverable": "toot:discoverable",
        # Neither the security nor the Multikey context defines assertionMethod; this is
        # the definition of the DID and Controlled Identifiers contexts (FEP-521a).
        "assertionMethod": {
            "@id": "https://w3id.org/security#assertionMethod",
            "@type": "@id",
            "@container": "@set",
        },
        "implements": {
            "@id": "https://w3id.org/fep/844e/implements",
            "@type": "@id",
            "@container": "@list",
        },
        "offers": {"@id": "coop:offers", "@type": "@id"},
        "proposals": {"@id": "coop:proposals", "@type": "@id"},
        "members": {"@id": "coop:members", "@type": "@id"},
    },
]

# FEP-844e: what this actor's software understands, so peers can tell coopnode nodes
# (which read offers and proposals natively) from servers that need readable posts.
IMPLEMENTS = [
    {"name": "coopnode co-op vocabulary", "href": COOP_CONTEXT_URL},
    {"name": "FEP-8b32: Object Integrity Proofs", "href": "https://w3id.org/fep/8b32"},
    {"name": "FEP-521a: Multikey in actors", "href": "https://w3id.org/fep/521a"},
    # FEP-844e's name for RFC 9421 signatures with Ed25519 keys, which the inbox verifies:
    # servers that read it (Mitra, tootik, coopnode) may sign to the co-op that way.
    {
        "name": "RFC 9421 signatures using the Ed25519 algorithm",
        "href": "https://datatracker.ietf.org/doc/html/rfc9421#name-eddsa-using-curve-edwards25",
    },
]


def summary_html(text: str) -> str:
    """Plain text from the admin, as the HTML that ``summary`` carries."""
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def actor_document(urls: Urls, actor: ActorWithKeys) -> dict[str, Any]:
    a = actor.actor
    actor_id = urls.actor(a.username)
    document: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": actor_id,
        "type": a.type,
        "preferredUsername": a.username,
        "name": a.name,
        "summary": summary_html(a.summary),
        "url": urls.profile(a.username),
        "published": _iso(a.created_at),
        "updated": _iso(a.updated_at),
        "inbox": urls.inbox(a.username),
        "outbox": urls.outbox(a.username),
        "followers": urls.followers(a.username),
        "following": urls.following(a.username),
        "endpoints": {"sharedInbox": urls.shared_inbox()},
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "implements": IMPLEMENTS,
    }
    if a.type == "Group":
        document["offers"] = urls.offers(a.username)
        document["proposals"] = urls.proposals(a.username)
        document["members"] = urls.members(a.username)
    if actor.rsa_public_pem is not None:
        document["publicKey"] = {
            "id": urls.actor_key(a.username),
            "owner": actor_id,
            "publicKeyPem": actor.rsa_public_pem,
        }
    if actor.ed25519_multibase is not None:
        document["assertionMethod"] = [
            {
                "id": urls.actor_multikey(a.username),
                "type": "Multikey",
                "controller": actor_id,
                "publicKeyMultibase": actor.ed25519_multibase,
            }
        ]
    return document


def ordered_collection(collection_id: str, total: int, *, paged: bool = False) -> dict[str, Any]:
    """An ordered collection: its size, and a link to its first page when its items are
    listed (``paged``); with no items and no pages, an empty list."""
    document: dict[str, Any] = {
        "@context": AS_CONTEXT_URL,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if paged:
        document["first"] = f"{collection_id}?page=1"
    else:
        document["orderedItems"] = []
    return document


def collection_page(
    collection_id: str, page: int, items: list[Any], *, has_next: bool
) -> dict[str, Any]:
    """Page ``page`` (from 1) of an ordered collection, newest first."""
    document: dict[str, Any] = {
        "@context": AS_CONTEXT_URL,
        "id": f"{collection_id}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": items,
    }
    if page > 1:
        document["prev"] = f"{collection_id}?page={page - 1}"
    if has_next:
        document["next"] = f"{collection_id}?page={page + 1}"
    return document


def _iso(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
