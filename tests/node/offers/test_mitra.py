"""Mitra and our offers, both ways.

Mitra (https://codeberg.org/silverpill/mitra, read at commit
95e9e6e06ad2591fd0b0c325c51dfc4409c263b8 of its GitHub mirror external-mirrors/mitra)
publishes a FEP-0837 ``Proposal`` for an account's paid subscription
(``mitra_activitypub/src/builders/proposal.rs``) and links it from the account's actor
with a FEP-0ea0 payment link (``attach_payment_option`` in
``mitra_activitypub/src/actors/attachments.rs``): no ``Create`` carries it, a follower
finds it in the actor, when it follows and at each ``Update(Person)``. Mitra reads a
remote actor's proposals the same way (``fetch_proposals`` in
``mitra_activitypub/src/actors/handlers.rs``), into the ``Proposal`` struct of
``mitra_activitypub/src/handlers/proposal.rs``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from federation import keys, rfc9421
from node.follows import actions
from node.follows import store as follows
from node.inbox import worker as inbox_worker
from node.offers.model import Kind
from node.offers.remote import MAX_LINKED_PROPOSALS, linked_proposals
from node.offers.validation import parse_offer_input
from node.offers.wire import from_proposal, to_proposal
from tests.support.network import Network

PEERS = Path(__file__).parents[2] / "data" / "peers"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
AS2 = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTOR = "https://test.example/users/alice"
PROPOSAL = "https://test.example/users/alice/proposals/monero:418015bb9ae982a1975da7d79277c270"
# What attach_payment_option makes of a Monero subscription (its test_payment_option
# checks the name, href and rel; mediaType is apx_sdk's AP_MEDIA_TYPE).
PAYMENT_LINK = {
    "type": "Link",
    "name": "MoneroSubscription",
    "href": PROPOSAL,
    "mediaType": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    "rel": ["payment", "https://w3id.org/valueflows/ont/vf#Proposal"],
}


def mitra_proposal() -> dict[str, Any]:
    """The proposal Mitra's test_build_proposal expects, for https://test.example/users/alice."""
    document: dict[str, Any] = json.loads((PEERS / "mitra" / "proposal.json").read_text())
    return document


def mitra_actor(actor: str = ACTOR, *attachment: Any) -> dict[str, Any]:
    """The actor Mitra's test_build_local_actor expects, at ``actor``, with ``attachment``."""
    text = (PEERS / "mitra" / "actor.json").read_text()
    document: dict[str, Any] = json.loads(
        text.replace("https://server.example/users/testuser", actor)
    )
    if attachment:
        document["attachment"] = list(attachment)
    return document


# --- what Mitra publishes, as we read it ---------------------------------------------------


def test_the_proposal_mitra_publishes_is_read_as_an_offer() -> None:
    remote = from_proposal(mitra_proposal())

    assert (remote.id, remote.attributed_to) == (PROPOSAL, ACTOR)
    assert remote.title == "Pay for subscription"
    assert remote.kind is Kind.SERVICE
    assert remote.unit == "second"  # an om2 unit we do not offer in, kept as sent
    assert (remote.unit_quantity, remote.minimum) == (Decimal(1), Decimal(50000))
    assert remote.price is not None
    assert remote.price.amount == 20000  # piconeros a second
    assert remote.price.currency_uri == "caip:19:monero:418015bb9ae982a1975da7d79277c270/slip44:128"


def test_the_proposal_a_mitra_actor_links_is_found() -> None:
    assert linked_proposals(mitra_actor(ACTOR, PAYMENT_LINK)) == (PROPOSAL,)
    assert linked_proposals(mitra_actor(ACTOR)) == ()


def test_the_fep_0837_spelling_of_the_link_is_found_too() -> None:
    # FEP-0837, "Publishing a proposal": rel names https://w3id.org/valueflows/Proposal,
    # and may be a single string in FEP-0ea0.
    link = {**PAYMENT_LINK, "rel": ["payment", "https://w3id.org/valueflows/Proposal"]}
    alone = {"type": "Link", "href": PROPOSAL + "-2", "rel": "payment"}

    assert linked_proposals(mitra_actor(ACTOR, link)) == (PROPOSAL,)
    assert linked_proposals(mitra_actor(ACTOR, alone)) == ()


def test_links_that_are_not_the_actors_proposals_are_left_out() -> None:
    def link(**changes: Any) -> dict[str, Any]:
        return {**PAYMENT_LINK, **changes}

    odd = [
        link(rel=["https://w3id.org/valueflows/ont/vf#Proposal"]),  # not a payment link
        link(rel="payment"),  # a donation link, not a proposal
        link(href="https://elsewhere.example/proposals/1"),  # another server's
        link(type="PropertyValue"),
        link(rel=[{"payment": 1}, ["payment"]]),
        link(href={"id": PROPOSAL}),
        "payment",
        None,
    ]
    assert linked_proposals(mitra_actor(ACTOR, *odd)) == ()
    assert linked_proposals({"id": ACTOR, "attachment": link()}) == (PROPOSAL,)
    assert linked_proposals({"id": ACTOR, "attachment": "x"}) == ()
    assert linked_proposals({"attachment": [link()]}) == ()
    many = [link(href=f"{PROPOSAL}-{n}") for n in range(MAX_LINKED_PROPOSALS + 5)]
    assert len(linked_proposals(mitra_actor(ACTOR, link(), link(), *many))) == MAX_LINKED_PROPOSALS


# --- what we publish, as Mitra reads it ------------------------------------------------------


def mitra_cannot_read(document: Any) -> list[str]:
    """Why serde could not deserialize ``document`` into Mitra's ``Proposal`` (empty if
    it can), following mitra_activitypub/src/handlers/proposal.rs at 95e9e6e0:

        struct Quantity { has_unit: String, has_numerical_value: String }
        struct Intent { action: String, resource_conforms_to: String,
                        resource_quantity: Quantity, minimum_quantity: Option<Quantity> }
        struct Proposal { id: String, purpose: String, publishes: Intent,
                          reciprocal: Intent, unit_based: bool }

    all with ``rename_all = "camelCase"`` and unknown fields allowed."""

    def string(value: Any, where: str) -> list[str]:
        return [] if isinstance(value, str) else [f"{where}: not a string"]

    def quantity(value: Any, where: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        return string(value.get("hasUnit"), f"{where}.hasUnit") + string(
            value.get("hasNumericalValue"), f"{where}.hasNumericalValue"
        )

    def intent(value: Any, where: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        problems = string(value.get("action"), f"{where}.action")
        problems += string(value.get("resourceConformsTo"), f"{where}.resourceConformsTo")
        problems += quantity(value.get("resourceQuantity"), f"{where}.resourceQuantity")
        if value.get("minimumQuantity") is not None:
            problems += quantity(value["minimumQuantity"], f"{where}.minimumQuantity")
        return problems

    if not isinstance(document, dict):
        return ["not an object"]
    problems = string(document.get("id"), "id") + string(document.get("purpose"), "purpose")
    problems += intent(document.get("publishes"), "publishes")
    problems += intent(document.get("reciprocal"), "reciprocal")
    if not isinstance(document.get("unitBased"), bool):
        problems.append("unitBased: not a boolean")
    return problems


def our_proposal(**fields: Any) -> dict[str, Any]:
    data = {
        "title": {"fr": "Heures de réparation de vélos", "en": "Bicycle repair hours"},
        "categories": ["bicycles"],
        "kind": "service",
        "unit": "hour",
        "price": {"amount": "35", "currency": "EUR"},
        "quantity": {"available": "40", "minimum": "1"},
        **fields,
    }
    return to_proposal(
        parse_offer_input(data, now=NOW),
        id="https://coop.example/offers/4a1c",
        actor="https://coop.example/actors/coop",
        published=NOW,
        hashtag_href=lambda slug: f"https://coop.example/tags/{slug}",
    )


def test_our_priced_offers_have_every_field_mitras_proposal_struct_requires() -> None:
    """Mitra reads a proposal in two steps: serde fills the struct (every field below
    present, with its JSON type: amounts as strings, unitBased a boolean), then
    parse_proposal keeps only Monero subscriptions (deliverService of Q579716 for a
    CAIP-19 Monero asset), which no co-op offer is. The first step is what an offer
    must pass for Mitra to read it at all. An offer without a price has no reciprocal
    intent (FEP-0837: a gift has none), which the struct requires."""
    assert mitra_cannot_read(mitra_proposal()) == []
    for proposal in (
        our_proposal(),
        our_proposal(kind="good", unit="kg", quantity={"minimum": "2.5"}),
        our_proposal(price={"amount": "0.35", "currency": "CHF"}, quantity={}),
    ):
        assert mitra_cannot_read(proposal) == []
        assert proposal["purpose"] == "offer"
        assert proposal["reciprocal"]["action"] == "transfer"
    assert mitra_cannot_read(our_proposal(price=None)) == ["reciprocal: not an object"]


def test_the_shape_check_says_what_mitra_would_not_read() -> None:
    proposal = mitra_proposal()
    proposal["unitBased"] = "true"
    proposal["publishes"]["resourceQuantity"]["hasNumericalValue"] = 1
    del proposal["reciprocal"]["resourceConformsTo"]

    assert mitra_cannot_read(proposal) == [
        "publishes.resourceQuantity.hasNumericalValue: not a string",
        "reciprocal.resourceConformsTo: not a string",
        "unitBased: not a boolean",
    ]


# --- a followed Mitra account, through the inbox ---------------------------------------------

ED_KEY = ed25519.Ed25519PrivateKey.generate()


def served(document: dict[str, Any]) -> dict[str, Any]:
    """Mitra's actor with our test key as its Ed25519 Multikey."""
    for entry in document["assertionMethod"]:
        if entry["id"].endswith("#ed25519-key"):
            entry["publicKeyMultibase"] = keys.ed25519_to_multibase(ED_KEY.public_key())
    return document


def update_person(actor: dict[str, Any], n: int) -> dict[str, Any]:
    """Update(Person) as build_update_person (builders/update_person.rs) makes it."""
    return {
        "@context": ["https://www.w3.org/ns/activitystreams"],
        "type": "Update",
        "id": f"https://test.example/activities/update/01JZ3K8Q5V2M7C4X9R6T1B0NW{n}",
        "actor": actor["id"],
        "object": actor,
        "to": [PUBLIC],
        "cc": [f"{actor['id']}/followers"],
    }


async def deliver(network: Network, inbox: str, activity: dict[str, Any]) -> int:
    """POST as Mitra signs to a server that accepts it: RFC 9421 with Ed25519."""
    body = json.dumps(activity).encode()
    headers = rfc9421.sign_request(
        "POST",
        inbox,
        {"Content-Type": AS2},
        body,
        f"{ACTOR}#ed25519-key",
        ED_KEY,
        network.clock.now(),
    )
    response = await network.http.post(
        inbox, content=body, headers={"Content-Type": AS2, **headers}
    )
    return response.status_code


async def catalogue(node: Any) -> list[str]:
    from sqlalchemy import select

    from node.storage.tables import offers

    query = select(offers.c.uri).where(offers.c.local == 0).order_by(offers.c.uri)
    return list(await node.db.read(lambda conn: conn.execute(query).scalars().all()))


async def test_a_followed_mitra_accounts_update_brings_its_proposal_into_the_catalogue(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    bare = served(mitra_actor())
    linked = served(mitra_actor(ACTOR, PAYMENT_LINK, {**PAYMENT_LINK, "href": PROPOSAL + "-gone"}))
    documents = {
        "/users/alice": bare,
        "/users/alice/proposals/monero:418015bb9ae982a1975da7d79277c270": mitra_proposal(),
    }
    network.add_static("test.example", documents)
    followed = await actions.follow(alpha.node, ACTOR)
    now = network.clock.now()
    await alpha.node.db.write(
        lambda conn: follows.settle_following(
            conn, follow_id=followed.follow_id, by=ACTOR, state=follows.ACCEPTED, now=now
        )
    )

    # The account adds a subscription: its profile now links the proposal, and one more
    # that its server no longer serves.
    documents["/users/alice"] = linked
    assert await deliver(network, alpha.base + "/inbox", update_person(linked, 1)) == 202
    await inbox_worker.run_once(alpha.node)

    assert await catalogue(alpha.node) == [PROPOSAL]
    found = (await alpha.get("/api/v1/catalogue?q=subscription", headers=alpha.auth)).json()
    assert [item["uri"] for item in found["items"]] == [PROPOSAL]


async def test_an_account_not_followed_brings_nothing_and_fetches_no_proposal(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    linked = served(mitra_actor(ACTOR, PAYMENT_LINK))
    network.add_static("test.example", {"/users/alice": linked})

    assert await deliver(network, alpha.base + "/inbox", update_person(linked, 1)) == 202
    await inbox_worker.run_once(alpha.node)

    assert await catalogue(alpha.node) == []
    assert not [url for _, url in network.router.log if "/proposals/" in url]
