"""``GET /api/v1/offers/categories`` and ``/api/v1/offers/units``: the values an offer
may name, public, and not mistaken for offers of those keys."""

from __future__ import annotations

from node.offers import categories
from node.offers.model import UNITS
from tests.support.network import Network


async def test_the_categories_and_units_an_offer_may_name_are_listed(network: Network) -> None:
    node = await network.add("a.test")

    listed = await node.get("/api/v1/offers/categories")
    units = await node.get("/api/v1/offers/units")

    assert listed.status_code == 200
    assert [c["slug"] for c in listed.json()["categories"]] == list(categories.all_categories())
    apples = next(c for c in listed.json()["categories"] if c["slug"] == "apples")
    assert apples["labels"] == {"en": "Apples", "fr": "Pommes"}
    assert apples["parent"] == "fruit"
    assert units.status_code == 200
    assert [u["name"] for u in units.json()["units"]] == list(UNITS)
    assert [u["name"] for u in units.json()["units"] if u["default"]] == ["piece"]


async def test_an_offer_made_from_the_lists_is_accepted(network: Network) -> None:
    node = await network.add("a.test")
    category = (await node.get("/api/v1/offers/categories")).json()["categories"][-1]["slug"]
    unit = (await node.get("/api/v1/offers/units")).json()["units"][-1]["name"]

    created = await node.request(
        "POST",
        "/api/v1/offers",
        headers=node.auth,
        json={"title": {"en": "Baskets"}, "categories": [category], "unit": unit},
    )

    assert created.status_code == 201, created.text
    shown = await node.request("GET", f"/api/v1/offers/{created.json()['id']}", headers=node.auth)
    assert shown.json()["offer"]["unit"] == unit
