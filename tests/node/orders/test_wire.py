"""Orders on the wire: what the node sends reads back as it was meant, means the
ValueFlows, om2 and ActivityStreams terms to a JSON-LD processor, is what Mitra and the
FEP-0837 text send, and a peer's malformed or hostile activity is refused with a reason
naming the property."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from federation.errors import MalformedInput
from federation.jsonld import expand
from node.offers.model import MAX_OPTION_TEXT_LENGTH
from node.orders.model import Terms
from node.orders.wire import (
    ORDER_CONTEXT,
    MalformedOrder,
    accept,
    agreement,
    agreement_update,
    order_offer,
    parse_agreement,
    parse_agreement_update,
    parse_answer,
    parse_order_offer,
    parse_undo_offer,
    reject,
    undo_offer,
)

DATA = Path(__file__).parent / "data"
AS = "https://www.w3.org/ns/activitystreams#"
VF = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
COOP = "https://coopnode.org/ns#"
PUBLIC = AS + "Public"

BUYER = "https://buyers.example/users/bob"
SELLER = "https://farm.example/actor"
PROPOSAL = "https://farm.example/offers/42"
OFFER_ID = "https://buyers.example/orders/7/offer"
AGREEMENT_ID = "https://farm.example/orders/3"
NOW = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)

TERMS = Terms(
    offer_uri=PROPOSAL,
    quantity=Decimal("2.5"),
    unit="kilogram",
    total=Decimal("8.75"),
    currency="EUR",
    delivery="pickup",
    payment="Bank transfer, please",
    note="Saturday morning?\nI'll bring <my own> bags & boxes",
)


def payload(name: str) -> Any:
    document = json.loads((DATA / name).read_text(encoding="utf-8"))
    assert {"repo", "path", "commit"} <= set(document["source"])
    return document["payload"]


def built_offer(terms: Terms = TERMS) -> dict[str, Any]:
    return order_offer(terms, id=OFFER_ID, actor=BUYER, seller=SELLER, published=NOW)


def built_agreement(terms: Terms = TERMS, status: str | None = "Accepted") -> dict[str, Any]:
    return agreement(terms, id=AGREEMENT_ID, seller=SELLER, status=status)


def built_accept(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "id": "https://farm.example/activities/9",
        "actor": SELLER,
        "buyer": BUYER,
        "offer_activity": OFFER_ID,
        "agreement": built_agreement(),
        "note": "Ready after 9.",
        "published": NOW,
    }
    return accept(**(arguments | changes))


def built_update(status: str = "Cancelled") -> dict[str, Any]:
    return agreement_update(
        id="https://farm.example/activities/10",
        actor=SELLER,
        buyer=BUYER,
        agreement=built_agreement(status=status),
        published=NOW,
    )


def built_undo() -> dict[str, Any]:
    return undo_offer(
        id="https://buyers.example/orders/7/undo",
        actor=BUYER,
        seller=SELLER,
        offer_activity=OFFER_ID,
        published=NOW,
    )


def every_activity() -> list[dict[str, Any]]:
    return [
        built_offer(),
        built_accept(),
        reject(
            id="https://farm.example/activities/11",
            actor=SELLER,
            buyer=BUYER,
            offer_activity=OFFER_ID,
            reason="out of stock",
            published=NOW,
        ),
        built_undo(),
        built_update(),
    ]


# --- what is sent ---------------------------------------------------------------------


def test_an_order_offer_is_sent_as_fep_0837_and_mitra_write_it() -> None:
    activity = built_offer()
    assert activity["type"] == "Offer"
    assert activity["published"] == "2026-12-06T10:30:00Z"
    body = activity["object"]
    assert "id" not in body  # the seller names the agreement
    assert body["stipulates"] == {
        "type": "Commitment",
        "satisfies": PROPOSAL + "#primary",
        "resourceQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "2.5"},
    }
    assert body["stipulatesReciprocal"] == {
        "type": "Commitment",
        "satisfies": PROPOSAL + "#reciprocal",
        "resourceConformsTo": "https://www.wikidata.org/wiki/Q4916",
        "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "8.75"},
    }
    assert body["deliveryOption"] == "pickup"
    # content is HTML: the member's "<" and "&" arrive as text.
    assert activity["content"] == (
        "Saturday morning?<br>I'll bring &lt;my own&gt; bags &amp; boxes"
    )


def test_what_is_left_out_of_an_offer() -> None:
    bare = Terms(offer_uri=PROPOSAL, quantity=Decimal(3), unit="one", total=None, currency=None)
    activity = built_offer(bare)
    assert "content" not in activity
    assert set(activity["object"]) == {"type", "stipulates"}


@pytest.mark.parametrize("activity", every_activity(), ids=lambda a: a["type"])
def test_each_activity_goes_to_the_counterparty_alone(activity: dict[str, Any]) -> None:
    assert activity["to"] in ([SELLER], [BUYER])
    assert "cc" not in activity
    assert "bcc" not in activity
    assert PUBLIC not in json.dumps(activity)
    assert activity["@context"] == ORDER_CONTEXT


def test_a_finalised_agreement_names_its_commitments_and_status() -> None:
    document = built_agreement()
    assert document["id"] == AGREEMENT_ID
    assert document["attributedTo"] == SELLER
    assert document["stipulates"]["id"] == AGREEMENT_ID + "#primary"
    assert document["stipulatesReciprocal"]["id"] == AGREEMENT_ID + "#reciprocal"
    assert document["preview"] == {"type": "Note", "name": "Accepted"}
    assert "preview" not in built_agreement(status=None)


def test_an_accept_names_the_offer_exactly_and_embeds_the_agreement() -> None:
    mitra_id = "https://mitra.example/activities/offer/46d160ae-af12-484d-9f44-419f00fc1b31"
    activity = built_accept(offer_activity=mitra_id)
    assert activity["object"] == mitra_id
    assert activity["result"]["id"] == AGREEMENT_ID
    assert activity["content"] == "Ready after 9."
    assert "content" not in built_accept(note="")


def test_an_undo_names_the_offer_and_its_actor() -> None:
    assert built_undo()["object"] == {"id": OFFER_ID, "type": "Offer", "actor": BUYER}


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "terms",
    [
        TERMS,
        Terms(offer_uri=PROPOSAL, quantity=Decimal(1), unit="one", total=None, currency=None),
        Terms(
            offer_uri="https://mitra.example/users/a/proposals/monero:418015bb9ae982a1975da7d79277c270",
            quantity=Decimal(3000),
            unit="second",
            total=Decimal(60000000),
            currency="caip:19:monero:418015bb9ae982a1975da7d79277c270/slip44:128",
        ),
        Terms(
            offer_uri=PROPOSAL,
            quantity=Decimal("999999999.9999"),
            unit="gram",
            total=Decimal("0.0001"),
            currency="JPY",
            note="x" * 2_000,
        ),
    ],
    ids=["full", "gift", "mitra-like", "edges"],
)
def test_an_offer_reads_back_as_its_terms(terms: Terms) -> None:
    parsed = parse_order_offer(built_offer(terms))
    assert parsed.terms == terms
    assert (parsed.id, parsed.actor, parsed.seller_to) == (OFFER_ID, BUYER, [SELLER])


def test_an_accept_reads_back() -> None:
    answer = parse_answer(built_accept())
    assert (answer.kind, answer.actor, answer.offer_activity) == ("accept", SELLER, OFFER_ID)
    assert answer.note == "Ready after 9."
    found = answer.agreement
    assert found is not None
    assert found.id == AGREEMENT_ID
    assert found.attributed_to == SELLER
    assert (found.offer_uri, found.quantity, found.unit) == (PROPOSAL, TERMS.quantity, "kilogram")
    assert (found.total, found.currency, found.status) == (TERMS.total, "EUR", "Accepted")
    assert (found.delivery, found.payment) == (TERMS.delivery, TERMS.payment)
    assert parse_agreement(built_agreement()) == found


def test_a_reject_reads_back() -> None:
    activity = every_activity()[2]
    answer = parse_answer(activity)
    assert (answer.kind, answer.offer_activity, answer.agreement) == ("reject", OFFER_ID, None)
    assert answer.note == "out of stock"


def test_an_update_and_an_undo_read_back() -> None:
    for status in ("Cancelled", "Fulfilled"):
        found = parse_agreement_update(built_update(status))
        assert (found.id, found.status, found.attributed_to) == (AGREEMENT_ID, status, SELLER)
    assert parse_undo_offer(built_undo()) == OFFER_ID
    assert parse_undo_offer({**built_undo(), "object": OFFER_ID}) == OFFER_ID


# --- what the terms mean ----------------------------------------------------------------


def predicates(node: Any) -> set[str]:
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
                if key != "@value":
                    stack.append(value)
    return found


def keys(node: Any) -> set[str]:
    """Every member name of a compact document but its context."""
    if isinstance(node, list):
        return set().union(*(keys(item) for item in node))
    if isinstance(node, dict):
        return {k for k in node if k != "@context"}.union(
            *(keys(v) for k, v in node.items() if k != "@context")
        )
    return set()


def types(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            found.update(item.get("@type", []) if isinstance(item.get("@type"), list) else [])
            stack.extend(v for k, v in item.items() if k != "@value")
    return found


@pytest.mark.parametrize("activity", every_activity(), ids=lambda a: a["type"])
def test_every_term_sent_expands_to_an_iri(activity: dict[str, Any]) -> None:
    """A term the context does not define vanishes from the expanded document: as
    many IRIs come out as member names went in."""
    expanded = expand(activity)
    found = predicates(expanded)
    assert len(found) == len(keys(activity) - {"id", "type"})
    assert all(iri.startswith((AS, VF, OM2, COOP)) for iri in found)


def test_the_terms_mean_valueflows_om2_and_activitystreams() -> None:
    offer = expand(built_offer())
    assert {
        AS + "object",
        AS + "content",
        VF + "stipulates",
        VF + "stipulatesReciprocal",
        VF + "satisfies",
        VF + "resourceQuantity",
        VF + "resourceConformsTo",
        OM2 + "hasUnit",
        OM2 + "hasNumericalValue",
        COOP + "deliveryOption",
        COOP + "paymentOption",
    } <= predicates(offer)
    assert {AS + "Offer", VF + "Agreement", VF + "Commitment"} <= types(offer)
    body = offer[0][AS + "object"][0]
    primary = body[VF + "stipulates"][0]
    # satisfies names the intent: an id, not a string.
    assert primary[VF + "satisfies"] == [{"@id": PROPOSAL + "#primary"}]
    reciprocal = body[VF + "stipulatesReciprocal"][0]
    assert reciprocal[VF + "resourceConformsTo"] == [{"@id": "https://www.wikidata.org/wiki/Q4916"}]
    assert primary[VF + "resourceQuantity"][0][OM2 + "hasNumericalValue"] == [{"@value": "2.5"}]


def test_an_accepts_result_is_activitystreams_result() -> None:
    expanded = expand(built_accept())[0]
    assert expanded[AS + "object"] == [{"@id": OFFER_ID}]
    (result,) = expanded[AS + "result"]
    assert result["@id"] == AGREEMENT_ID
    assert result["@type"] == [VF + "Agreement"]
    assert result[AS + "attributedTo"] == [{"@id": SELLER}]
    assert result[AS + "preview"][0][AS + "name"] == [{"@value": "Accepted"}]
    assert COOP + "result" not in predicates(expanded)


# --- what Mitra and the FEP send ----------------------------------------------------------


def test_mitras_offer_parses() -> None:
    parsed = parse_order_offer(payload("mitra_offer.json"))
    assert (
        parsed.id == "https://local.example/activities/offer/46d160ae-af12-484d-9f44-419f00fc1b31"
    )
    assert parsed.actor == "https://local.example/users/payer"
    assert parsed.seller_to == ["https://remote.example/users/test"]
    assert parsed.offer_uri == "https://remote.example/proposals/1"
    assert (parsed.quantity, parsed.unit) == (Decimal(10), "second")
    assert (parsed.total, parsed.currency) == (Decimal(200000), None)
    assert (parsed.delivery, parsed.payment, parsed.note) == (None, None, "")


def test_mitras_accept_parses() -> None:
    answer = parse_answer(payload("mitra_accept.json"))
    assert answer.kind == "accept"
    assert answer.offer_activity == "https://remote.example/activities/123"
    found = answer.agreement
    assert found is not None
    assert (
        found.id == "https://local.example/objects/agreements/edc374aa-e580-4a58-9404-f3e8bf8556b2"
    )
    assert found.attributed_to == "https://local.example/users/proposer"
    assert found.offer_uri == (
        "https://local.example/users/proposer/proposals/monero:418015bb9ae982a1975da7d79277c270"
    )
    assert (found.quantity, found.unit, found.total) == (Decimal(3000), "second", Decimal(60000000))
    assert found.status == "Open"


def test_mitras_update_parses() -> None:
    found = parse_agreement_update(payload("mitra_update.json"))
    assert found.status == "Paid"
    assert found.attributed_to == "https://social.example/users/testuser"


def test_an_older_mitra_agreement_without_author_takes_the_accepts_actor() -> None:
    document = payload("mitra_agreement.json")
    assert parse_agreement(document).attributed_to is None
    activity = {
        "type": "Accept",
        "id": "https://test.example/activities/accept/1",
        "actor": "https://test.example/users/alice",
        "object": "https://remote.example/activities/123",
        "result": document,
    }
    found = parse_answer(activity).agreement
    assert found is not None
    assert found.attributed_to == "https://test.example/users/alice"


def test_the_fep_examples_parse() -> None:
    offer = parse_order_offer(payload("fep_offer.json"))
    assert offer.seller_to == ["https://market.example/users/alice"]
    assert (offer.quantity, offer.unit, offer.total) == (Decimal(1), "one", Decimal(30))
    accepted = parse_answer(payload("fep_accept.json"))
    assert accepted.offer_activity == offer.id
    assert accepted.agreement is not None
    assert accepted.agreement.offer_uri == offer.offer_uri
    rejected = parse_answer(payload("fep_reject.json"))
    assert (rejected.kind, rejected.note) == ("reject", "Not available")


# --- leniency ---------------------------------------------------------------------------


def test_variants_peers_write_are_read() -> None:
    activity = built_offer()
    activity["type"] = "OfferAgreement"
    activity["to"] = SELLER
    activity["@context"] = "https://example.org/whatever"
    activity["proof"] = {"type": "DataIntegrityProof", "proofValue": "z..."}
    activity["somethingElse"] = [1, {"a": None}]
    primary = activity["object"]["stipulates"]["resourceQuantity"]
    primary["hasUnit"] = OM2 + "kilogram"
    primary["hasNumericalValue"] = " 2.50 "
    reciprocal = activity["object"]["stipulatesReciprocal"]
    reciprocal["resourceQuantity"] = {"hasUnit": "om2:one", "hasNumericalValue": 30}
    reciprocal["resourceConformsTo"] = "http://www.wikidata.org/entity/Q4916"
    activity["content"] = "<p>Saturday <script>alert(1)</script><b>morning</b></p><p>thanks</p>"
    parsed = parse_order_offer(activity)
    assert (parsed.quantity, parsed.unit) == (Decimal("2.5"), "kilogram")
    assert (parsed.total, parsed.currency) == (Decimal(30), "EUR")
    assert parsed.seller_to == [SELLER]
    assert parsed.note == "Saturday morning\nthanks"


def test_an_accept_may_name_the_offer_as_an_object_and_carry_links() -> None:
    activity = built_accept()
    activity["type"] = "AcceptAgreement"
    activity["object"] = {"id": OFFER_ID, "type": "Offer"}
    activity["result"]["url"] = [
        {"type": "Link", "href": "https://pay.example/1", "rel": "payment"},
        "https://farm.example/orders/3/invoice",
    ]
    assert parse_answer(activity).offer_activity == OFFER_ID


# --- hostile and malformed input ----------------------------------------------------------

Change = Callable[[dict[str, Any]], None]


def setter(path: str, value: Any) -> Change:
    def change(activity: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = activity
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return change


def deleter(path: str) -> Change:
    def change(activity: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = activity
        for part in parents:
            node = node[part]
        del node[last]

    return change


QUANTITY = "object.stipulates.resourceQuantity"
TOTAL = "object.stipulatesReciprocal.resourceQuantity"

OFFER_CASES: list[tuple[str, Change, str]] = [
    ("type", setter("type", "Create"), "type"),
    ("type list", setter("type", ["Offer"]), "type"),
    ("id missing", deleter("id"), "id"),
    ("id number", setter("id", 7), "id"),
    ("id not http", setter("id", "urn:uuid:1"), "id"),
    ("id elsewhere", setter("id", "https://evil.example/offer"), "id"),
    ("id too long", setter("id", "https://buyers.example/" + "a" * 3000), "id"),
    ("actor missing", deleter("actor"), "actor"),
    ("actor number", setter("actor", 1), "actor"),
    ("actor list", setter("actor", [BUYER]), "actor"),
    ("to number", setter("to", 5), "to"),
    ("to item", setter("to", [SELLER, 5]), "to[1]"),
    ("to huge", setter("to", [SELLER] * 1000), "to"),
    ("object missing", deleter("object"), "object"),
    ("object string", setter("object", "https://buyers.example/agreements/1"), "object"),
    ("object list", setter("object", [{"type": "Agreement"}]), "object"),
    ("object type", setter("object.type", "Note"), "object.type"),
    ("stipulates missing", deleter("object.stipulates"), "object.stipulates"),
    ("stipulates string", setter("object.stipulates", "x"), "object.stipulates"),
    ("commitment type", setter("object.stipulates.type", "Intent"), "object.stipulates.type"),
    ("satisfies missing", deleter("object.stipulates.satisfies"), "satisfies"),
    ("satisfies number", setter("object.stipulates.satisfies", 3), "satisfies"),
    ("satisfies object", setter("object.stipulates.satisfies", {"id": PROPOSAL}), "satisfies"),
    (
        "satisfies fragment",
        setter("object.stipulates.satisfies", PROPOSAL + "#reciprocal"),
        "object.stipulates.satisfies",
    ),
    (
        "satisfies no fragment",
        setter("object.stipulates.satisfies", PROPOSAL),
        "object.stipulates.satisfies",
    ),
    (
        "two proposals",
        setter(
            "object.stipulatesReciprocal.satisfies", "https://farm.example/offers/43#reciprocal"
        ),
        "object.stipulatesReciprocal.satisfies",
    ),
    ("quantity missing", deleter(QUANTITY), QUANTITY),
    ("quantity string", setter(QUANTITY, "2"), QUANTITY),
    ("value missing", deleter(QUANTITY + ".hasNumericalValue"), "hasNumericalValue"),
    ("zero", setter(QUANTITY + ".hasNumericalValue", "0"), "hasNumericalValue"),
    ("zero int", setter(QUANTITY + ".hasNumericalValue", 0), "hasNumericalValue"),
    ("negative", setter(QUANTITY + ".hasNumericalValue", "-1"), "hasNumericalValue"),
    ("negative int", setter(QUANTITY + ".hasNumericalValue", -3), "hasNumericalValue"),
    ("exponent", setter(QUANTITY + ".hasNumericalValue", "1e400"), "hasNumericalValue"),
    ("nan", setter(QUANTITY + ".hasNumericalValue", "NaN"), "hasNumericalValue"),
    ("infinity", setter(QUANTITY + ".hasNumericalValue", "Infinity"), "hasNumericalValue"),
    ("float nan", setter(QUANTITY + ".hasNumericalValue", float("nan")), "hasNumericalValue"),
    ("float inf", setter(QUANTITY + ".hasNumericalValue", float("inf")), "hasNumericalValue"),
    ("true", setter(QUANTITY + ".hasNumericalValue", True), "hasNumericalValue"),
    ("float", setter(QUANTITY + ".hasNumericalValue", 1.5), "hasNumericalValue"),
    ("five decimals", setter(QUANTITY + ".hasNumericalValue", "1.00001"), "hasNumericalValue"),
    ("huge", setter(QUANTITY + ".hasNumericalValue", "1000000000"), "hasNumericalValue"),
    ("huge int", setter(QUANTITY + ".hasNumericalValue", 10**400), "hasNumericalValue"),
    ("huge negative", setter(QUANTITY + ".hasNumericalValue", -(10**400)), "not above zero"),
    (
        "long digits",
        setter(QUANTITY + ".hasNumericalValue", "0" * 10_000 + "1"),
        "hasNumericalValue",
    ),
    ("unicode digits", setter(QUANTITY + ".hasNumericalValue", "١٢"), "hasNumericalValue"),
    ("empty", setter(QUANTITY + ".hasNumericalValue", ""), "hasNumericalValue"),
    ("value list", setter(QUANTITY + ".hasNumericalValue", ["1"]), "hasNumericalValue"),
    ("unit missing", deleter(QUANTITY + ".hasUnit"), "hasUnit"),
    ("unit number", setter(QUANTITY + ".hasUnit", 1), "hasUnit"),
    ("unit junk", setter(QUANTITY + ".hasUnit", "kilo gram"), "hasUnit"),
    ("total negative", setter(TOTAL + ".hasNumericalValue", "-8.75"), TOTAL),
    ("total float", setter(TOTAL + ".hasNumericalValue", 8.75), TOTAL),
    ("total unit", setter(TOTAL + ".hasUnit", "kilogram"), TOTAL + ".hasUnit"),
    ("reciprocal string", setter("object.stipulatesReciprocal", "x"), "stipulatesReciprocal"),
    (
        "currency number",
        setter("object.stipulatesReciprocal.resourceConformsTo", 4916),
        "resourceConformsTo",
    ),
    ("delivery number", setter("object.deliveryOption", 1), "object.deliveryOption"),
    (
        "payment long",
        setter("object.paymentOption", "x" * (MAX_OPTION_TEXT_LENGTH + 1)),
        "object.paymentOption",
    ),
    ("content number", setter("content", 12), "content"),
    ("content long", setter("content", "x" * 2_001), "content"),
    ("content huge html", setter("content", "<b></b>" * 10_000), "content"),
    ("nul", setter("content", "hello\x00"), "content"),
    ("lone surrogate", setter("object.deliveryOption", "pick\ud800up"), "deliveryOption"),
    ("surrogate in a key", setter("object.\udc00", "x"), "a key of object"),
    ("nul in proof", setter("proof", {"proofValue": "\x00"}), "proof.proofValue"),
]


@pytest.mark.parametrize(
    ("change", "named"), [c[1:] for c in OFFER_CASES], ids=[c[0] for c in OFFER_CASES]
)
def test_a_malformed_offer_is_refused_naming_the_property(change: Change, named: str) -> None:
    activity = copy.deepcopy(built_offer())
    change(activity)
    with pytest.raises(MalformedOrder) as refused:
        parse_order_offer(activity)
    assert named in refused.value.reason
    assert isinstance(refused.value, MalformedInput)  # answered 400


@pytest.mark.parametrize("document", [None, [], "offer", 3])
def test_what_is_not_an_object_is_refused(document: Any) -> None:
    for parse in (parse_order_offer, parse_answer, parse_agreement_update, parse_undo_offer):
        with pytest.raises(MalformedOrder):
            parse(document)
    with pytest.raises(MalformedOrder, match="the agreement"):
        parse_agreement(document)


ACCEPT_CASES: list[tuple[str, Change, str]] = [
    ("object missing", deleter("object"), "object"),
    ("object number", setter("object", 3), "object"),
    ("object without id", setter("object", {"type": "Offer"}), "object.id"),
    ("result missing", deleter("result"), "result"),
    ("result string", setter("result", AGREEMENT_ID), "result"),
    ("result type", setter("result.type", "Note"), "result.type"),
    ("agreement without id", deleter("result.id"), "result.id"),
    ("agreement id number", setter("result.id", 3), "result.id"),
    ("agreement elsewhere", setter("result.id", "https://evil.example/agreements/1"), "result.id"),
    (
        "agreement other port",
        setter("result.id", "https://farm.example:8443/orders/3"),
        "result.id",
    ),
    (
        "author not the actor",
        setter("result.attributedTo", "https://farm.example/other"),
        "attributedTo",
    ),
    ("author number", setter("result.attributedTo", 3), "result.attributedTo"),
    ("url number", setter("result.url", 3), "result.url"),
    ("url link without href", setter("result.url", {"type": "Link"}), "result.url"),
    ("url item", setter("result.url", [{"href": "https://pay.example"}, 4]), "result.url[1]"),
    ("preview string", setter("result.preview", "Accepted"), "result.preview"),
    ("preview name", setter("result.preview", {"name": 3}), "result.preview.name"),
    ("preview long", setter("result.preview", {"name": "x" * 65}), "result.preview.name"),
    (
        "quantity zero",
        setter("result.stipulates.resourceQuantity.hasNumericalValue", "0"),
        "result.stipulates",
    ),
    ("content list", setter("content", ["a"]), "content"),
    ("actor missing", deleter("actor"), "actor"),
    ("type", setter("type", "Follow"), "type"),
]


@pytest.mark.parametrize(
    ("change", "named"), [c[1:] for c in ACCEPT_CASES], ids=[c[0] for c in ACCEPT_CASES]
)
def test_a_malformed_accept_is_refused_naming_the_property(change: Change, named: str) -> None:
    activity = copy.deepcopy(built_accept())
    change(activity)
    with pytest.raises(MalformedOrder) as refused:
        parse_answer(activity)
    assert named in refused.value.reason


def test_a_malformed_update_or_undo_is_refused() -> None:
    update = built_update()
    update["object"]["id"] = "https://evil.example/orders/3"
    with pytest.raises(MalformedOrder, match=r"object\.id"):
        parse_agreement_update(update)
    update = built_update()
    update["object"] = AGREEMENT_ID
    with pytest.raises(MalformedOrder, match="object"):
        parse_agreement_update(update)
    undo = built_undo()
    undo["object"]["actor"] = "https://buyers.example/users/eve"
    with pytest.raises(MalformedOrder, match=r"object\.actor"):
        parse_undo_offer(undo)
    undo = built_undo()
    undo["object"]["type"] = "Follow"
    with pytest.raises(MalformedOrder, match=r"object\.type"):
        parse_undo_offer(undo)
    undo = built_undo()
    del undo["object"]
    with pytest.raises(MalformedOrder, match="object"):
        parse_undo_offer(undo)
