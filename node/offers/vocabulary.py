"""The names an offer uses on the wire, shared by the writer and the reader.

FEP-0837 (https://codeberg.org/fediverse/fep/src/branch/main/fep/0837/fep-0837.md)
describes a ``Proposal`` with ValueFlows terms; the co-op context maps them exactly as
its examples do, and adds the co-op extensions (``claims``, ``deliveryOptions``,
``paymentOptions``). See schemas/README.md for each term.
"""

from __future__ import annotations

from federation.jsonld import AS_CONTEXT_URL, DATA_INTEGRITY_V2_CONTEXT_URL, coop_context

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
AS_NAMESPACE = "https://www.w3.org/ns/activitystreams#"
VF_NAMESPACE = "https://w3id.org/valueflows/ont/vf#"
OM2_NAMESPACE = "http://www.ontology-of-units-of-measure.org/resource/om-2/"

# Neither ActivityStreams nor the co-op context defines Hashtag; Mastodon and Mitra
# define it inline the same way. The data integrity context defines the terms of the
# FEP-8b32 proof our offers carry.
PROPOSAL_CONTEXT: list[object] = [
    AS_CONTEXT_URL,
    coop_context(),
    {"Hashtag": "as:Hashtag"},
    DATA_INTEGRITY_V2_CONTEXT_URL,
]
NOTE_CONTEXT: list[object] = [AS_CONTEXT_URL, {"Hashtag": "as:Hashtag"}]

PURPOSE_OFFER = "offer"
PURPOSE_REQUEST = "request"

# ValueFlows actions (https://www.valueflo.ws/concepts/actions/), the two FEP-0837 names.
ACTION_TRANSFER = "transfer"
ACTION_DELIVER_SERVICE = "deliverService"

# om2 "one": the unit of a count, and of an amount of money.
UNIT_ONE = "one"

# The fragments FEP-0837 recommends for the two intents of a proposal.
PRIMARY_FRAGMENT = "primary"
RECIPROCAL_FRAGMENT = "reciprocal"

# What a coopnode category is, as a URI for ``publishes.resourceConformsTo``: the same
# on every node, so that a peer running coopnode files the offer under the category
# even when its hashtag is spelled differently.
CATEGORY_BASE = "https://coopnode.org/ns/categories#"

# FEP-e232 object links: the media type the FEP requires, and the one it says
# consumers should treat as the same.
OBJECT_LINK_MEDIA_TYPE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
OBJECT_LINK_MEDIA_TYPES = frozenset({OBJECT_LINK_MEDIA_TYPE, "application/activity+json"})


def category_uri(slug: str) -> str:
    return CATEGORY_BASE + slug
