"""The demo's data file: read as the typed co-ops and proposals, and refused with a
message naming what is wrong when it is not as the demo needs it."""

from __future__ import annotations

from importlib import resources

import pytest

from node.demo.coops import DATA_FILE, load_seed, offer_titled, parse_seed
from node.demo.errors import DemoError


def packaged_text() -> str:
    return resources.files("node.demo").joinpath(DATA_FILE).read_text(encoding="utf-8")


def test_the_packaged_file_holds_three_coops_their_members_offers_and_two_proposals() -> None:
    seed = load_seed()

    assert [c.handle for c in seed.coops] == ["marche", "food", "tourism"]
    assert [len(c.offers) for c in seed.coops] == [10, 11, 9]
    assert sum(len(c.members) for c in seed.coops) == 13
    assert [c.follow_policy for c in seed.coops] == ["auto", "approve", "auto"]
    for coop in seed.coops:
        assert coop.admin.role == "admin"
        assert coop.colleges == (("workers", "50"), ("guests", "20"), ("partners", "30"))
    assert seed.coop("marche").place.name == "Lyon"
    assert (seed.internal.host, seed.internal.shared_with) == ("food", ())
    assert (seed.shared.host, seed.shared.shared_with) == ("tourism", ("marche", "food"))
    assert seed.shared.data["colleges"] == {"workers": "50%", "guests": "20%", "partners": "30%"}
    assert "host" not in seed.shared.data
    assert "shared_with" not in seed.shared.data


def test_an_offer_written_in_short_becomes_the_apis_shape() -> None:
    honey = load_seed().coop("marche").offers[0]

    assert honey == {
        "title": {"fr": "Miel de lavande, pot de 500 g", "en": "Lavender honey, 500 g jar"},
        "description": {
            "fr": "Miel de lavande récolté par une coopérative d'apiculteurs de Haute-Provence.",
            "en": "Lavender honey from a beekeepers' co-operative in Haute-Provence.",
        },
        "categories": ["honey"],
        "price": {"amount": "9.50", "currency": "EUR"},
        "unit": "piece",
        "claims": ["fair_trade", "organic"],
        "delivery_options": ["pickup", "postal_shipping"],
        "payment_options": ["card", "bank_transfer"],
        "quantity": {"available": "60", "minimum": "1"},
    }
    tea = load_seed().coop("marche").offers[2]
    assert tea["delivery_options"] == ["pickup"]
    assert "quantity" not in tea


def test_the_orders_name_an_offer_with_stock_options_it_lists_and_answers_in_turn() -> None:
    seed = load_seed()

    honey, vegetables, eggs = seed.orders
    assert (honey.buyer, honey.member, honey.seller) == ("tourism", "marie", "marche")
    assert honey.data == {
        "quantity": "12",
        "delivery": "postal_shipping",
        "payment": "bank_transfer",
        "note": "Pour les petits déjeuners du gîte. For the gîte's breakfasts.",
    }
    assert [o.state.value for o in seed.orders] == ["fulfilled", "accepted", "pending"]
    assert (eggs.answers, eggs.reply) == ((), "")
    assert offer_titled(seed.coop("marche"), "Lavender honey, 500 g jar") == 0
    assert offer_titled(seed.coop("food"), eggs.offer) == 3
    assert seed.coop("food").offers[3]["quantity"] == {"available": "60", "minimum": "1"}
    assert vegetables.data["delivery"] in seed.coop("food").offers[0]["delivery_options"]


def test_a_file_without_orders_places_none() -> None:
    text = packaged_text()

    assert parse_seed(text[: text.index("# The orders the co-ops place")]).orders == ()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('handle = "food"', 'handle = "marche"', "handles should be distinct"),
        ('unit = "piece"', "unit = 3", "unit should be a string"),
        ('category = "honey"', 'category = "honey"\ncolour = "gold"', "unknown colour"),
        ('role = "admin", password = "demo-food-admin"', 'role = "boss", password = "x"', "role"),
        ('college = "guests" }', 'college = "elders" }', "'elders' is not one of"),
        ('host = "tourism"', 'host = "nowhere"', "no co-op 'nowhere'"),
        ('follow_policy = "approve"', 'follow_policy = "never"', "follow_policy should be"),
        ("latitude = 45.7640, ", "", "latitude is missing"),
        ("[[coops]]", "[[coops]", "coops.toml"),
        ('offer = "Panier de légumes', 'offer = "Panier de fruits', "food has no offer titled"),
        ('member = "joao"', 'member = "claire"', "marche has no member 'claire'"),
        ('buyer = "tourism"', 'buyer = "marche"', "does not order from itself"),
        ('payment = "cash"', 'payment = "cheque"', "payment should be one of the offer's"),
        ('quantity = "10"', 'quantity = "61"', "at most 60"),
        ('answers = ["accept", "fulfil"]', 'answers = ["fulfil"]', "'fulfil' cannot answer"),
        ('answers = ["accept"]', 'answers = ["accept", "ship"]', "'ship' cannot answer"),
    ],
)
def test_a_broken_file_is_refused_naming_what_is_wrong(old: str, new: str, message: str) -> None:
    text = packaged_text()
    assert old in text

    with pytest.raises(DemoError) as refused:
        parse_seed(text.replace(old, new, 1))

    assert message in str(refused.value)
