"""What a member sends through the JSON API or the CLI, checked field by field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from node.errors import Invalid
from node.offers.model import Kind, Location, Options, Price, Status
from node.offers.validation import apply_update, offer_to_input, parse_offer_input

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def apples(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": {"fr": "Pommes bio", "en": "Organic apples"},
        "description": {"fr": "Cueillies **ce matin**.", "en": "Picked **this morning**."},
        "categories": ["apples"],
        "price": {"amount": "3.50", "currency": "EUR"},
        "unit": "kg",
        "quantity": {"available": "120", "minimum": "2"},
        "location": {"name": "Die", "latitude": 44.75, "longitude": 5.37},
        "images": [
            {
                "url": "https://coop.example/media/apples.jpg",
                "media_type": "image/jpeg",
                "description": "A crate of red apples",
                "size": 240_000,
                "media_id": "m-1",
            }
        ],
        "end_time": "2025-10-31T18:00:00+01:00",
        "claims": ["organic", "local", {"name": "Variétés anciennes"}],
        "delivery_options": ["pickup", "local_delivery"],
        "payment_options": ["cash", {"name": "Monnaie locale"}],
    }
    data.update(changes)
    return data


def refused(data: Any) -> Invalid:
    with pytest.raises(Invalid) as raised:
        parse_offer_input(data, now=NOW)
    return raised.value


# --- a good offer -----------------------------------------------------------------------


def test_a_complete_offer_is_parsed_into_plain_values() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    assert offer.titles == {"fr": "Pommes bio", "en": "Organic apples"}
    assert offer.language == "fr"
    assert offer.categories == ("apples",)
    assert offer.kind is Kind.GOOD
    assert offer.price == Price(Decimal("3.50"), "EUR")
    assert offer.unit == "kg"
    assert (offer.available, offer.minimum) == (Decimal("120"), Decimal("2"))
    assert offer.location == Location("Die", 44.75, 5.37)
    assert offer.images[0].media_id == "m-1"
    assert offer.end_time == datetime(2025, 10, 31, 17, 0, tzinfo=UTC)
    assert offer.claims == Options(("organic", "local"), ("Variétés anciennes",))
    assert offer.delivery == Options(("pickup", "local_delivery"))
    assert offer.payment == Options(("cash",), ("Monnaie locale",))
    assert offer.descriptions_html["en"] == "<p>Picked <strong>this morning</strong>.</p>"


def test_only_a_title_and_a_category_are_required() -> None:
    offer = parse_offer_input(
        {"title": {"en": "Bike repair"}, "categories": ["bike_repair"]}, now=NOW
    )

    assert offer.price is None
    assert offer.unit == "piece"
    assert offer.kind is Kind.SERVICE  # from the category
    assert offer.status(NOW) is Status.ACTIVE


def test_amounts_may_come_as_json_numbers() -> None:
    offer = parse_offer_input(
        apples(price={"amount": 3.5, "currency": "chf"}, quantity={"available": 12}), now=NOW
    )

    assert offer.price == Price(Decimal("3.5"), "CHF")
    assert offer.available == Decimal(12)


def test_an_offer_expires_at_its_end_time() -> None:
    offer = parse_offer_input(apples(end_time="2025-06-01T00:00:00Z"), now=NOW)

    assert offer.status(NOW) is Status.ACTIVE
    assert offer.status(datetime(2025, 6, 1, tzinfo=UTC)) is Status.EXPIRED


def test_the_api_shape_reads_back_to_the_same_offer() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    assert parse_offer_input(offer_to_input(offer), now=NOW) == offer


# --- refusals name the field ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"price": {"amount": "-3", "currency": "EUR"}}, "price.amount", "negative"),
        ({"price": {"amount": -0.01, "currency": "EUR"}}, "price.amount", "negative"),
        ({"price": {"amount": "3.12345", "currency": "EUR"}}, "price.amount", "4 decimal"),
        ({"price": {"amount": "1e12", "currency": "EUR"}}, "price.amount", "at most"),
        ({"price": {"amount": "NaN", "currency": "EUR"}}, "price.amount", "not a number"),
        ({"price": {"amount": "Infinity", "currency": "EUR"}}, "price.amount", "not a number"),
        ({"price": {"amount": "3,50", "currency": "EUR"}}, "price.amount", "point"),
        ({"price": {"amount": True, "currency": "EUR"}}, "price.amount", "number"),
        ({"price": {"amount": "9" * 500, "currency": "EUR"}}, "price.amount", "too long"),
        ({"price": {"amount": "3", "currency": "XYZ"}}, "price.currency", "ISO 4217"),
        ({"price": {"amount": "3"}}, "price.currency", "ISO 4217"),
        ({"price": {"amount": "3", "currency": "EUR", "vat": "20"}}, "price.vat", "unknown"),
        ({"quantity": {"available": "-1"}}, "quantity.available", "negative"),
        ({"quantity": {"available": "5", "minimum": "10"}}, "quantity.minimum", "more than"),
        ({"title": {}}, "title", "title"),
        ({"title": "Apples"}, "title", "language"),
        ({"title": {"fr": "x" * 201}}, "title.fr", "200"),
        ({"title": {"french": "Pommes"}}, "title.french", "language tag"),
        ({"description": {"fr": "x" * 10_001}}, "description.fr", "10000"),
        ({"categories": []}, "categories", "at least one"),
        ({"categories": ["unicorns"]}, "categories[0]", "unknown category"),
        ({"categories": [42]}, "categories[0]", "slug"),
        ({"unit": "furlong"}, "unit", "piece"),
        ({"kind": "gift"}, "kind", "good"),
        ({"location": {"latitude": 91, "longitude": 0}}, "location.latitude", "-90 and 90"),
        ({"location": {"latitude": 0, "longitude": -181}}, "location.longitude", "-180"),
        ({"location": {"latitude": 45}}, "location.longitude", "both"),
        ({"location": {}}, "location", "name"),
        (
            {"images": [{"url": "javascript:alert(1)", "media_type": "image/png"}]},
            "images[0].url",
            "http",
        ),
        (
            {"images": [{"url": "https://e.example/a.svg", "media_type": "image/svg+xml"}]},
            "images[0].media_type",
            "image/",
        ),
        ({"end_time": "2025-04-30T12:00:00Z"}, "end_time", "past"),
        ({"end_time": "2025-10-31T18:00:00"}, "end_time", "time zone"),
        ({"end_time": "next tuesday"}, "end_time", "ISO 8601"),
        ({"end_time": "2040-01-01T00:00:00Z"}, "end_time", "at most"),
        ({"claims": ["bio"]}, "claims[0]", "fair_trade"),
        ({"claims": [{"name": ""}]}, "claims[0].name", "empty"),
        ({"claims": [{"name": "x" * 101}]}, "claims[0].name", "100"),
        ({"delivery_options": ["teleport"]}, "delivery_options[0]", "pickup"),
        ({"payment_options": [7]}, "payment_options[0]", "known value"),
        ({"status": "withdrawn"}, "status", "active"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_invalid_input_is_refused_naming_the_field(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    error = refused(apples(**changes))

    assert error.field == field
    assert reason in error.reason
    assert error.status == 422


def test_a_ten_thousand_item_tag_list_is_refused_naming_the_field() -> None:
    error = refused(apples(categories=["apples"] * 10_000))

    assert error.field == "categories"
    assert error.reason == "at most 10 categories (got 10000)"


@pytest.mark.parametrize("field", ["images", "claims", "delivery_options", "payment_options"])
def test_every_list_has_a_limit(field: str) -> None:
    error = refused(apples(**{field: [{"name": "x"}] * 1000}))

    assert error.field == field
    assert "at most" in error.reason


def test_too_many_languages_are_refused() -> None:
    titles = {f"l{chr(97 + i)}": "x" for i in range(20)}

    error = refused(apples(title=titles))

    assert error.field == "title"


def test_the_body_must_be_an_object() -> None:
    assert "object" in refused(["not", "an", "object"]).reason


def test_script_in_a_description_is_neutralised_not_refused() -> None:
    offer = parse_offer_input(
        apples(
            description={"en": 'Crisp. <script>alert(1)</script><img src=x onerror="alert(2)">'}
        ),
        now=NOW,
    )

    assert offer.descriptions["en"].startswith("Crisp. <script>")  # the source, as typed
    assert "<script" not in offer.descriptions_html["en"]
    assert "<img" not in offer.descriptions_html["en"]


def test_titles_are_single_lines_without_control_characters() -> None:
    offer = parse_offer_input(apples(title={"en": "  Organic\napples\x00\x1b  "}), now=NOW)

    assert offer.titles == {"en": "Organic apples"}


def test_categories_repeat_nothing_and_accept_a_hashtag_spelling() -> None:
    offer = parse_offer_input(apples(categories=["#Apples", "apples", "fruit"]), now=NOW)

    assert offer.categories == ("apples", "fruit")


# --- updates ----------------------------------------------------------------------------


def test_an_update_changes_the_stock_alone() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    updated = apply_update(offer, {"quantity": {"available": "40"}}, now=NOW)

    assert updated.available == Decimal(40)
    assert updated.minimum == offer.minimum
    assert updated.price == offer.price
    assert updated.titles == offer.titles


def test_an_update_changes_the_price_and_keeps_the_currency() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    updated = apply_update(offer, {"price": {"amount": "3.90"}}, now=NOW)

    assert updated.price == Price(Decimal("3.90"), "EUR")


def test_an_update_can_extend_the_expiry_and_clear_fields() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    updated = apply_update(
        offer, {"end_time": "2025-12-31T23:00:00Z", "location": None, "images": []}, now=NOW
    )

    assert updated.end_time == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert updated.location is None
    assert updated.images == ()


def test_an_update_is_validated_like_a_new_offer() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    with pytest.raises(Invalid) as raised:
        apply_update(offer, {"price": {"amount": "-1"}}, now=NOW)

    assert raised.value.field == "price.amount"


def test_a_stock_update_after_expiry_does_not_trip_over_the_old_end_time() -> None:
    offer = parse_offer_input(apples(end_time="2025-05-02T00:00:00Z"), now=NOW)
    later = NOW + timedelta(days=3)

    updated = apply_update(offer, {"quantity": {"available": "5"}}, now=later)

    assert updated.status(later) is Status.EXPIRED
    with pytest.raises(Invalid) as raised:
        apply_update(offer, {"end_time": "2025-05-03T00:00:00Z"}, now=later)
    assert raised.value.field == "end_time"


def test_a_title_language_can_be_removed_but_not_the_last_one() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    assert apply_update(offer, {"title": {"en": None}}, now=NOW).titles == {"fr": "Pommes bio"}
    with pytest.raises(Invalid) as raised:
        apply_update(offer, {"title": {"en": None, "fr": None}}, now=NOW)
    assert raised.value.field == "title"


def test_withdrawing_is_final() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    withdrawn = apply_update(offer, {"status": "withdrawn"}, now=NOW)

    assert withdrawn.status(NOW) is Status.WITHDRAWN
    with pytest.raises(Invalid) as raised:
        apply_update(withdrawn, {"status": "active"}, now=NOW)
    assert raised.value.field == "status"


def test_expired_is_not_a_status_one_sets() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    with pytest.raises(Invalid) as raised:
        apply_update(offer, {"status": "expired"}, now=NOW)

    assert raised.value.field == "status"
    assert "end_time" in raised.value.reason


def test_changing_the_categories_decides_the_kind_again() -> None:
    offer = parse_offer_input(apples(), now=NOW)

    updated = apply_update(offer, {"categories": ["bike_rental"], "unit": "day"}, now=NOW)

    assert updated.kind is Kind.SERVICE


def test_an_update_does_not_change_the_data_it_was_given() -> None:
    offer = parse_offer_input(apples(), now=NOW)
    changes = {"price": {"amount": "4"}, "title": {"en": None}}
    before = copy.deepcopy(changes)

    apply_update(offer, changes, now=NOW)

    assert changes == before
