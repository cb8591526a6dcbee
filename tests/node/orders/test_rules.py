"""The seller's checks: each refusal, the order they come in, and exact totals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from node.offers.model import MAX_AMOUNT
from node.orders.model import ForSale, Refusal, Terms
from node.orders.rules import check, total_for

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
URI = "https://coop.example/offers/o1"

OFFER = ForSale(
    uri=URI,
    offer_id=1,
    withdrawn=False,
    end_time=NOW + timedelta(days=3),
    unit="one",
    price=Decimal("3.50"),
    currency="EUR",
    minimum=Decimal(2),
    available=Decimal(10),
    delivery=("pickup", "Livraison le samedi"),
    payment=("cash", "bank_transfer"),
)
TERMS = Terms(
    offer_uri=URI,
    quantity=Decimal(6),
    unit="one",
    total=Decimal("21.00"),
    currency="EUR",
    delivery="pickup",
    payment="cash",
)


def test_an_order_matching_the_offer_passes() -> None:
    assert check(OFFER, TERMS, now=NOW) is None
    # Free text options are matched as written.
    assert check(OFFER, replace(TERMS, delivery="Livraison le samedi"), now=NOW) is None
    # The whole stock may be ordered; so may exactly the minimum.
    assert check(OFFER, replace(TERMS, quantity=Decimal(10), total=Decimal(35)), now=NOW) is None
    assert check(OFFER, replace(TERMS, quantity=Decimal(2), total=Decimal(7)), now=NOW) is None


def test_an_offer_without_price_stock_minimum_options_or_end_takes_any_order() -> None:
    open_offer = replace(
        OFFER,
        end_time=None,
        price=None,
        currency=None,
        minimum=None,
        available=None,
        delivery=(),
        payment=(),
    )
    terms = replace(TERMS, quantity=Decimal(1000), total=None, currency=None, delivery=None)
    assert check(open_offer, terms, now=NOW) is None
    assert check(open_offer, replace(terms, delivery="by pigeon"), now=NOW) is None


@pytest.mark.parametrize(
    ("offer", "terms", "refusal"),
    [
        (replace(OFFER, withdrawn=True), TERMS, Refusal.WITHDRAWN),
        (replace(OFFER, end_time=NOW), TERMS, Refusal.EXPIRED),
        (replace(OFFER, end_time=NOW - timedelta(seconds=1)), TERMS, Refusal.EXPIRED),
        (OFFER, replace(TERMS, unit="kilogram"), Refusal.WRONG_UNIT),
        (
            OFFER,
            replace(TERMS, quantity=Decimal("6.5"), total=Decimal("22.75")),
            Refusal.NOT_WHOLE_UNITS,
        ),
        (OFFER, replace(TERMS, quantity=Decimal(1), total=Decimal("3.50")), Refusal.UNDER_MINIMUM),
        (OFFER, replace(TERMS, delivery="postal_shipping"), Refusal.UNKNOWN_DELIVERY),
        (OFFER, replace(TERMS, delivery=None), Refusal.UNKNOWN_DELIVERY),
        (OFFER, replace(TERMS, payment="card"), Refusal.UNKNOWN_PAYMENT),
        (OFFER, replace(TERMS, payment=None), Refusal.UNKNOWN_PAYMENT),
        (OFFER, replace(TERMS, total=Decimal("20.99")), Refusal.WRONG_PRICE),
        (OFFER, replace(TERMS, total=None, currency=None), Refusal.WRONG_PRICE),
        (OFFER, replace(TERMS, currency="CHF"), Refusal.WRONG_PRICE),
        (OFFER, replace(TERMS, quantity=Decimal(11), total=Decimal("38.50")), Refusal.OUT_OF_STOCK),
        (replace(OFFER, available=Decimal(0)), TERMS, Refusal.OUT_OF_STOCK),
    ],
)
def test_each_refusal(offer: ForSale, terms: Terms, refusal: Refusal) -> None:
    assert check(offer, terms, now=NOW) is refusal


def test_measured_units_take_decimal_quantities_counted_ones_do_not() -> None:
    kilos = replace(OFFER, unit="kilogram", minimum=Decimal("0.5"))
    terms = replace(TERMS, unit="kilogram", quantity=Decimal("1.25"), total=Decimal("4.375"))
    assert check(kilos, terms, now=NOW) is None
    for unit in ("one", "night", "person", "box"):
        counted = replace(kilos, unit=unit)
        assert check(counted, replace(terms, unit=unit), now=NOW) is Refusal.NOT_WHOLE_UNITS
    # 6.0 pieces are six pieces.
    assert check(OFFER, replace(TERMS, quantity=Decimal("6.0")), now=NOW) is None


def test_the_first_failing_check_names_the_refusal() -> None:
    everything_wrong = Terms(
        offer_uri=URI,
        quantity=Decimal("0.5"),
        unit="kilogram",
        total=Decimal(1),
        currency="CHF",
        delivery="teleport",
        payment="barter",
    )
    offer = replace(OFFER, available=Decimal(0))
    order = [
        (replace(offer, withdrawn=True, end_time=NOW), Refusal.WITHDRAWN),
        (replace(offer, end_time=NOW), Refusal.EXPIRED),
        (offer, Refusal.WRONG_UNIT),
    ]
    for case, refusal in order:
        assert check(case, everything_wrong, now=NOW) is refusal
    terms = replace(everything_wrong, unit="one")
    assert check(offer, terms, now=NOW) is Refusal.NOT_WHOLE_UNITS
    terms = replace(terms, quantity=Decimal(1))
    assert check(offer, terms, now=NOW) is Refusal.UNDER_MINIMUM
    terms = replace(terms, quantity=Decimal(4))
    assert check(offer, terms, now=NOW) is Refusal.UNKNOWN_DELIVERY
    terms = replace(terms, delivery="pickup")
    assert check(offer, terms, now=NOW) is Refusal.UNKNOWN_PAYMENT
    terms = replace(terms, payment="cash")
    assert check(offer, terms, now=NOW) is Refusal.WRONG_PRICE
    terms = replace(terms, total=Decimal(14), currency="EUR")
    assert check(offer, terms, now=NOW) is Refusal.OUT_OF_STOCK
    assert check(replace(offer, available=Decimal(4)), terms, now=NOW) is None


def test_totals_are_exact() -> None:
    assert total_for(Decimal("3.50"), Decimal(6)) == Decimal("21.00")
    assert total_for(Decimal("0.3333"), Decimal(3)) == Decimal("0.9999")
    assert str(total_for(Decimal("0.3333"), Decimal(3))) == "0.9999"
    # Eight decimals are rounded to four, half up, on both sides alike.
    assert total_for(Decimal("3.50"), Decimal("1.25")) == Decimal("4.375")
    assert total_for(Decimal("0.3333"), Decimal("0.5")) == Decimal("0.1667")
    assert total_for(Decimal("0.0001"), Decimal("0.5")) == Decimal("0.0001")
    assert total_for(Decimal("0.0001"), Decimal("0.4999")) == Decimal("0.0000")
    # The largest amounts the tables hold keep every digit, beyond the 28 digits of
    # Python's default decimal context.
    largest = Decimal("922337203685477.5807")
    assert total_for(largest, largest) == Decimal("850705917302346158473969077842.3250")


def test_a_total_larger_than_an_order_may_be_is_refused_not_stored() -> None:
    offer = ForSale(
        uri="https://market.test/offers/1",
        offer_id=1,
        withdrawn=False,
        end_time=None,
        unit="kilogram",
        price=MAX_AMOUNT,
        currency="EUR",
        minimum=None,
        available=None,
        delivery=(),
        payment=(),
    )
    terms = Terms(offer.uri, Decimal(1000), "kilogram", MAX_AMOUNT, "EUR")

    assert check(offer, terms, now=NOW) is Refusal.TOO_LARGE
