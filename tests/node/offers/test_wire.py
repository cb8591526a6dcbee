"""Offers on the wire: the FEP-0837 Proposal we publish, the Note beside it, and the
lenient reading of what other servers send."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from federation.errors import MalformedInput
from federation.jsonld import expand
from node.offers import currencies
from node.offers.model import Kind, Location, Offer, Options, Price, Status
from node.offers.normalise import normalise
from node.offers.remote import OFFER_SCHEMA_FILE, RemoteOffer, RemoteOfferError, validate
from node.offers.validation import parse_offer_input
from node.offers.wire import format_price, from_proposal, to_note, to_proposal

DATA = Path(__file__).parents[2] / "data" / "offers"
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
PROPOSAL_ID = "https://coop.example/offers/0f1e"
ACTOR = "https://coop.example/actors/verger"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
VF = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"


def hashtag_href(slug: str) -> str:
    return f"https://coop.example/tags/{slug}"


def apples() -> Offer:
    return parse_offer_input(
        {
            "title": {"fr": "Pommes bio", "en": "Organic apples"},
            "description": {"fr": "Cueillies **ce matin**.", "en": "Picked **this morning**."},
            "categories": ["apples", "fruit"],
            "price": {"amount": "3.50", "currency": "EUR"},
            "unit": "kg",
            "quantity": {"available": "120", "minimum": "2"},
            "location": {"name": "Die", "latitude": 44.75, "longitude": 5.37},
            "images": [
                {
                    "url": "https://coop.example/media/apples.jpg",
                    "media_type": "image/jpeg",
                    "description": "A crate of red apples",
                }
            ],
            "end_time": "2025-10-31T18:00:00+01:00",
            "claims": ["organic", "local", {"name": "Variétés anciennes"}],
            "delivery_options": ["pickup"],
            "payment_options": ["cash", "bank_transfer"],
        },
        now=NOW,
    )


def proposal(offer: Offer | None = None) -> dict[str, Any]:
    return to_proposal(
        offer or apples(),
        id=PROPOSAL_ID,
        actor=ACTOR,
        published=NOW,
        updated=NOW,
        url="https://coop.example/@verger/offers/0f1e",
        followers=ACTOR + "/followers",
        hashtag_href=hashtag_href,
    )


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return document


def refused(document: Any) -> RemoteOfferError:
    with pytest.raises(RemoteOfferError) as raised:
        from_proposal(document)
    return raised.value


# --- the Proposal we publish ------------------------------------------------------------


def test_a_good_is_published_as_a_transfer_with_the_price_as_reciprocal() -> None:
    document = proposal()

    assert document["type"] == "Proposal"
    assert document["purpose"] == "offer"
    assert document["attributedTo"] == ACTOR
    assert document["publishes"] == {
        "type": "Intent",
        "id": PROPOSAL_ID + "#primary",
        "action": "transfer",
        "resourceConformsTo": "https://coopnode.org/ns/categories#apples",
        "resourceQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "1"},
        "availableQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "120"},
        "minimumQuantity": {"hasUnit": "kilogram", "hasNumericalValue": "2"},
    }
    assert document["reciprocal"] == {
        "type": "Intent",
        "id": PROPOSAL_ID + "#reciprocal",
        "action": "transfer",
        "resourceConformsTo": "https://www.wikidata.org/wiki/Q4916",
        "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "3.50"},
    }
    assert document["unitBased"] is True


def test_a_service_is_published_as_deliver_service() -> None:
    offer = parse_offer_input(
        {
            "title": {"en": "Guided orchard walk"},
            "categories": ["guided_tours"],
            "price": {"amount": "12", "currency": "CHF"},
            "unit": "person",
        },
        now=NOW,
    )

    document = proposal(offer)

    assert document["publishes"]["action"] == "deliverService"
    assert document["publishes"]["resourceQuantity"]["hasUnit"] == "person"
    assert document["reciprocal"]["resourceConformsTo"] == "https://www.wikidata.org/wiki/Q25344"


def test_every_amount_on_the_wire_is_a_string() -> None:
    document = proposal()
    intents = [document["publishes"], document["reciprocal"]]
    quantities = [value for intent in intents for key, value in intent.items() if "Quantity" in key]

    assert len(quantities) == 4
    assert all(isinstance(q["hasNumericalValue"], str) for q in quantities)


def test_titles_and_descriptions_go_out_in_every_language() -> None:
    document = proposal()

    assert document["name"] == "Pommes bio"
    assert document["nameMap"] == {"fr": "Pommes bio", "en": "Organic apples"}
    assert document["content"] == "<p>Cueillies <strong>ce matin</strong>.</p>"
    assert document["contentMap"]["en"] == "<p>Picked <strong>this morning</strong>.</p>"
    assert document["mediaType"] == "text/html"


def test_place_images_expiry_hashtags_and_co_op_terms_are_on_the_proposal() -> None:
    document = proposal()

    assert document["location"] == {
        "type": "Place",
        "name": "Die",
        "latitude": 44.75,
        "longitude": 5.37,
    }
    assert document["attachment"] == [
        {
            "type": "Image",
            "mediaType": "image/jpeg",
            "url": "https://coop.example/media/apples.jpg",
            "name": "A crate of red apples",
        }
    ]
    assert document["endTime"] == "2025-10-31T17:00:00Z"
    assert document["published"] == "2025-05-01T12:00:00Z"
    assert document["tag"] == [
        {"type": "Hashtag", "name": "#apples", "href": "https://coop.example/tags/apples"},
        {"type": "Hashtag", "name": "#fruit", "href": "https://coop.example/tags/fruit"},
    ]
    assert document["claims"] == ["organic", "local", {"name": "Variétés anciennes"}]
    assert document["deliveryOptions"] == ["pickup"]
    assert document["paymentOptions"] == ["cash", "bank_transfer"]
    assert document["to"] == [PUBLIC]
    assert document["cc"] == [ACTOR + "/followers"]


def test_an_offer_without_a_price_has_no_reciprocal_intent() -> None:
    offer = parse_offer_input(
        {"title": {"en": "Free firewood"}, "categories": ["firewood"]}, now=NOW
    )

    assert "reciprocal" not in proposal(offer)


def test_the_proposal_means_what_fep_0837_says_with_only_bundled_contexts() -> None:
    (node,) = expand(proposal())

    assert node["@type"] == [VF + "Proposal"]
    (publishes,) = node[VF + "publishes"]
    (quantity,) = publishes[VF + "resourceQuantity"]
    assert quantity[OM2 + "hasNumericalValue"] == [{"@value": "1"}]
    (reciprocal,) = node[VF + "reciprocal"]
    assert reciprocal[VF + "resourceConformsTo"] == [
        {"@value": "https://www.wikidata.org/wiki/Q4916"}
    ]
    assert len(node["https://coopnode.org/ns#claims"]) == 3
    (tag, _) = node["https://www.w3.org/ns/activitystreams#tag"]
    assert tag["@type"] == ["https://www.w3.org/ns/activitystreams#Hashtag"]


# --- the Note for servers that do not read Proposals ------------------------------------


def note(offer: Offer | None = None) -> dict[str, Any]:
    return to_note(
        offer or apples(),
        id=PROPOSAL_ID + "/note",
        proposal_id=PROPOSAL_ID,
        actor=ACTOR,
        published=NOW,
        url="https://coop.example/@verger/offers/0f1e",
        followers=ACTOR + "/followers",
        hashtag_href=hashtag_href,
    )


def test_the_note_reads_as_a_post_with_title_price_link_and_hashtags() -> None:
    document = note()

    assert document["type"] == "Note"
    english = document["contentMap"]["en"]
    # Mastodon shows the content alone: the title leads it, in each language.
    assert english.startswith("<p><strong>Organic apples</strong></p>")
    assert document["content"].startswith("<p><strong>Pommes bio</strong></p>")
    assert "3.50 EUR / kg" in english
    assert 'href="https://coop.example/@verger/offers/0f1e"' in english
    assert 'rel="tag">#<span>apples</span></a>' in english
    assert "3,50 EUR / kg" in document["content"]  # the main language is French
    assert "summary" not in document  # Mastodon would hide the post behind it


def test_the_note_links_the_proposal_with_a_fep_e232_tag() -> None:
    links = [tag for tag in note()["tag"] if tag["type"] == "Link"]

    assert links == [
        {
            "type": "Link",
            "mediaType": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
            "href": PROPOSAL_ID,
        }
    ]


def test_the_note_escapes_titles_and_shows_images() -> None:
    offer = parse_offer_input(
        {
            "title": {"en": "Jam <script>alert(1)</script>"},
            "categories": ["preserves"],
            "images": [{"url": "https://coop.example/m/j.png", "media_type": "image/png"}],
        },
        now=NOW,
    )

    document = note(offer)

    assert "<script>" not in document["content"]
    assert "&lt;script&gt;" in document["content"]
    assert document["attachment"] == [
        {"type": "Document", "mediaType": "image/png", "url": "https://coop.example/m/j.png"}
    ]


@pytest.mark.parametrize(
    ("amount", "unit", "language", "text"),
    [
        ("3.5", "kg", "en", "3.50 EUR / kg"),
        ("3.5", "kg", "fr", "3,50 EUR / kg"),
        ("12", "night", "fr", "12 EUR / nuit"),
        ("0.125", "g", "en", "0.125 EUR / g"),
        ("40.00", "hour", "fr-CA", "40 EUR / heure"),
    ],
)
def test_prices_are_formatted_for_reading(amount: str, unit: str, language: str, text: str) -> None:
    assert format_price(Price(Decimal(amount), "EUR"), unit, language) == text


# --- reading offers back ----------------------------------------------------------------


def test_our_own_proposal_reads_back_as_the_same_offer() -> None:
    offer = apples()

    remote = from_proposal(proposal(offer))

    assert remote.id == PROPOSAL_ID
    assert remote.attributed_to == ACTOR
    assert remote.titles == offer.titles
    assert remote.descriptions_html == offer.descriptions_html
    assert remote.categories == offer.categories
    assert remote.kind is offer.kind
    assert remote.unit == offer.unit
    assert remote.unit_quantity == 1
    assert remote.price is not None
    assert offer.price is not None
    assert (remote.price.amount, remote.price.currency) == (
        offer.price.amount,
        offer.price.currency,
    )
    assert (remote.available, remote.minimum) == (offer.available, offer.minimum)
    assert remote.location == offer.location
    assert [(i.url, i.media_type, i.description) for i in remote.images] == [
        (i.url, i.media_type, i.description) for i in offer.images
    ]
    assert remote.end_time == offer.end_time
    assert (remote.claims, remote.delivery, remote.payment) == (
        offer.claims,
        offer.delivery,
        offer.payment,
    )
    assert remote.published == NOW
    assert remote.status(NOW) is Status.ACTIVE


def test_a_mitra_proposal_is_accepted() -> None:
    remote = from_proposal(fixture("mitra_proposal.json"))

    assert remote.attributed_to == "https://mitra.example/users/lena"
    assert remote.titles == {"und": "Pay for subscription"}
    assert remote.kind is Kind.SERVICE
    assert remote.unit == "second"  # an om2 unit we do not offer in, kept as sent
    assert remote.unit_quantity == 1
    assert remote.minimum == 86400
    assert remote.unit_based is True
    assert remote.price is not None
    assert remote.price.amount == 11574
    # Mitra names its currency with a CAIP-19 asset id: kept as is, no ISO code.
    assert remote.price.currency is None
    assert remote.price.currency_uri == "caip:19:monero:418015bb9ae982a1975da7d79277c270/slip44:128"
    assert remote.categories == ()


def test_prefixed_keys_numbers_and_objects_are_read_leniently() -> None:
    remote = from_proposal(fixture("prefixed_numeric_offer.json"))

    assert remote.purpose == "offer"
    assert remote.action == "transfer"
    assert remote.attributed_to == "https://market.example/users/tomas"
    assert remote.unit == "piece"  # om2:one
    assert remote.available == 1
    assert remote.price is not None
    assert (remote.price.amount, remote.price.currency) == (Decimal("850.5"), "CHF")
    assert remote.unit_based is False
    assert remote.location == Location("Lausanne", 46.5197, 6.6323)
    assert remote.tags == ("bicycles", "velo")
    assert remote.categories == ("bicycles",)
    assert [image.url for image in remote.images] == ["https://market.example/media/cargo-bike.jpg"]
    assert remote.published == datetime(2025, 3, 2, 8, 15, tzinfo=UTC)


def test_remote_html_is_sanitised() -> None:
    remote = from_proposal(fixture("prefixed_numeric_offer.json"))
    html = remote.descriptions_html["und"]

    assert "Two-wheel cargo bike" in html
    assert "Pick-up in Lausanne." in html
    for forbidden in (
        "<script",
        "<img",
        "onerror",
        "onclick",
        "style=",
        "javascript:",
        "evil.example",
    ):
        assert forbidden not in html


def test_amounts_as_numbers_or_strings_mean_the_same() -> None:
    as_strings = proposal()
    as_numbers = copy.deepcopy(as_strings)
    as_numbers["reciprocal"]["resourceQuantity"]["hasNumericalValue"] = 3.5
    as_numbers["publishes"]["availableQuantity"]["hasNumericalValue"] = 120
    as_numbers["publishes"]["resourceQuantity"]["hasNumericalValue"] = 1

    assert from_proposal(as_numbers) == from_proposal(as_strings)


def test_om2_and_vf_prefixed_spellings_mean_the_same_as_plain_terms() -> None:
    plain = proposal()
    prefixed = copy.deepcopy(plain)
    prefixed["vf:publishes"] = prefixed.pop("publishes")
    prefixed["vf:publishes"]["vf:resourceQuantity"] = {
        "om2:hasUnit": "om2:kilogram",
        "om2:hasNumericalValue": "1",
    }
    del prefixed["vf:publishes"]["resourceQuantity"]
    prefixed[VF + "reciprocal"] = prefixed.pop("reciprocal")
    prefixed["vf:unitBased"] = prefixed.pop("unitBased")

    assert from_proposal(prefixed) == from_proposal(plain)


def test_a_plain_key_wins_over_a_prefixed_spelling_of_the_same_term() -> None:
    document = proposal()
    document["vf:purpose"] = "request"

    assert from_proposal(document).purpose == "offer"


def test_currencies_are_read_from_any_wikidata_spelling_or_an_iso_code() -> None:
    for spelling in (
        "https://www.wikidata.org/wiki/Q4917",
        "http://www.wikidata.org/entity/Q4917",
        "https://wikidata.org/wiki/Q4917",
        "USD",
    ):
        document = proposal()
        document["reciprocal"]["resourceConformsTo"] = spelling

        price = from_proposal(document).price

        assert price is not None, spelling
        assert price.currency == "USD", spelling


def test_an_unknown_currency_uri_is_kept_as_it_came() -> None:
    document = proposal()
    document["reciprocal"]["resourceConformsTo"] = "https://www.wikidata.org/wiki/Q999999999"

    price = from_proposal(document).price

    assert price is not None
    assert price.currency is None
    assert price.currency_uri == "https://www.wikidata.org/wiki/Q999999999"


def test_the_fep_minimal_example_shape_is_accepted() -> None:
    minimal = {
        "type": "Proposal",
        "id": "https://market.example/proposals/1",
        "purpose": "offer",
        "attributedTo": "https://market.example/users/alice",
        "publishes": {
            "type": "Intent",
            "id": "https://market.example/proposals/1#primary",
            "action": "transfer",
            "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"},
        },
        "unitBased": False,
        "to": PUBLIC,
    }

    remote = from_proposal(minimal)

    assert isinstance(remote, RemoteOffer)
    assert remote.price is None
    assert remote.titles == {}
    assert remote.claims == Options()


# --- what is refused --------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["-5", -5, "1e3", "3,50", True, None, "NaN", float("nan")])
def test_a_bad_remote_price_is_refused_naming_the_property(amount: Any) -> None:
    document = proposal()
    document["reciprocal"]["resourceQuantity"]["hasNumericalValue"] = amount

    error = refused(document)

    assert error.reason.startswith("reciprocal.resourceQuantity.hasNumericalValue: ")


def test_a_negative_remote_price_is_explained() -> None:
    document = proposal()
    document["reciprocal"]["resourceQuantity"]["hasNumericalValue"] = "-5"

    assert "non-negative decimal" in refused(document).reason


@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        (
            lambda d: d.update(tag=[{"type": "Hashtag", "name": "#x"}] * 10_000),
            "tag",
            "more than 64 items",
        ),
        (lambda d: d.update(name="x" * 501), "name", "longer than 500 characters"),
        (
            lambda d: d.update(
                nameMap={"a" + chr(97 + i % 26) + chr(97 + i // 26): "x" for i in range(100)}
            ),
            "nameMap",
            "more than 16",
        ),
        (lambda d: d.update(claims=["organic"] * 21), "claims", "more than 20 items"),
        (lambda d: d.update(attachment=[{"type": "Image"}] * 33), "attachment", "more than 32"),
        (lambda d: d["location"].update(latitude=95), "location.latitude", "above 90"),
        (
            lambda d: d["location"].update(longitude=float("inf")),
            "location.longitude",
            "type number",
        ),
        (lambda d: d.update(purpose="gift"), "purpose", "one of"),
        (lambda d: d.pop("publishes"), "the offer", "'publishes' is a required property"),
        (lambda d: d.pop("attributedTo"), "the offer", "'attributedTo'"),
        (lambda d: d["publishes"].pop("action"), "publishes", "'action'"),
        (lambda d: d["reciprocal"].pop("resourceConformsTo"), "reciprocal", "resourceConformsTo"),
        (
            lambda d: d.update(
                attachment=[{"url": "javascript:alert(1)", "mediaType": "image/png"}]
            ),
            "attachment[0].url",
            "expected form",
        ),
    ],
)
def test_invalid_remote_offers_are_refused_with_a_clear_reason(
    change: Any, where: str, reason: str
) -> None:
    document = proposal()
    change(document)

    error = refused(document)

    assert error.reason.startswith(f"{where}: "), error.reason
    assert reason in error.reason
    assert len(error.reason) < 400


def test_a_refusal_is_a_malformed_input_answered_with_400() -> None:
    error = refused("not an object")

    assert isinstance(error, MalformedInput)
    assert error.status == 400


def test_an_end_time_without_a_time_zone_is_refused_but_a_bad_published_is_dropped() -> None:
    document = proposal()
    document["published"] = "yesterday"
    assert from_proposal(document).published is None

    document["endTime"] = "2025-10-31T18:00:00"
    assert "endTime" in refused(document).reason


def test_unread_properties_are_left_out_before_validation() -> None:
    document = proposal()
    document["sensitive"] = False
    document["replies"] = {"type": "Collection", "items": list(range(10_000))}

    normalised = normalise(document)

    assert "replies" not in normalised
    assert "sensitive" not in normalised
    assert from_proposal(document).id == PROPOSAL_ID


# --- the schema and the currency table --------------------------------------------------


def test_the_schema_is_valid_draft_2020_12_and_accepts_our_normalised_proposal() -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads(OFFER_SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)

    validate(normalise(proposal()))


@pytest.mark.parametrize(
    ("change", "keyword"),
    [
        (lambda d: d.update(tag=[{"name": "#x"}] * 65), "maxItems"),
        (lambda d: d.update(content="x" * 100_001), "maxLength"),
        (lambda d: d.update(id="https://e.example/" + "x" * 2048), "maxLength"),
        (lambda d: d["publishes"]["resourceQuantity"].update(hasUnit="u" * 101), "maxLength"),
    ],
)
def test_the_schema_rejects_oversized_lists_and_strings(change: Any, keyword: str) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads(OFFER_SCHEMA_FILE.read_text(encoding="utf-8"))
    document = normalise(proposal())
    change(document)

    errors = list(Draft202012Validator(schema).iter_errors(document))

    assert [error.validator for error in errors] == [keyword]


def test_the_currency_table_maps_both_ways_without_collisions() -> None:
    assert len(set(currencies.ITEM_BY_CODE.values())) == len(currencies.ITEM_BY_CODE)
    for code in currencies.ITEM_BY_CODE:
        assert currencies.code_for(currencies.uri_for(code)) == code
    assert currencies.uri_for("EUR") == "https://www.wikidata.org/wiki/Q4916"
    assert currencies.uri_for("CAD") == "https://www.wikidata.org/wiki/Q1104069"
    assert currencies.code_for("https://www.wikidata.org/wiki/Q4916x") is None
    assert currencies.code_for("caip:19:monero:abc/slip44:128") is None


def test_an_amount_keeps_its_currencys_minor_units() -> None:
    from decimal import Decimal

    from node.offers.currencies import amount_text

    assert amount_text(Decimal("3.5"), "EUR") == "3.50"
    assert amount_text(Decimal("3"), "EUR") == "3.00"
    assert amount_text(Decimal("1200"), "JPY") == "1200"
    assert amount_text(Decimal("2.5"), "TND") == "2.500"
    assert amount_text(Decimal("0.125"), "EUR") == "0.125"  # more digits: kept as they are
    assert amount_text(Decimal("3.5"), None) == "3.5"
    assert amount_text(Decimal("3.5"), "https://example.test/asset") == "3.5"
