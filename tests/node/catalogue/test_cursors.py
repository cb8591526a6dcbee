"""A catalogue cursor is the node's own token: one crafted by hand is a bad request
(400, naming the cursor) on the API and the page, never an error of the server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from node.catalogue import search as catalogue
from node.errors import BadRequest, Invalid
from node.storage.database import Database
from tests.node.catalogue.test_search import NOW, db, find
from tests.support.network import Network

__all__ = ["db"]  # the fixture, shared with the search tests

SORTS: dict[str, dict[str, str]] = {
    "recent": {"sort": "recent"},
    "price": {"sort": "price", "currency": "EUR"},
    "distance": {"sort": "distance", "near": "46.0,5.0"},
    "relevance": {"sort": "relevance", "q": "lyon"},
}
MOMENT = "2027-03-01T09:00:00+00:00"


def encoded(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    raw = text.encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def search(db: Database, params: dict[str, str]) -> catalogue.Page:
    query = catalogue.parse_query(params)
    return db.read_sync(lambda c: catalogue.search(c, query, now=NOW))


# (sort, cursor as sent)
CRAFTED: list[tuple[str, str]] = [
    ("recent", "!!"),
    ("recent", "\x00"),
    ("recent", "é"),
    ("recent", encoded("not json")),
    ("recent", encoded({"published": MOMENT, "id": 1})),
    ("recent", encoded("[" * 1500 + "]" * 1500)),
    ("recent", encoded([MOMENT])),
    ("recent", encoded([MOMENT, 1, 2])),
    ("recent", encoded([MOMENT, "1"])),
    ("recent", encoded([MOMENT, 1.5])),
    ("recent", encoded([MOMENT, True])),
    ("recent", encoded([MOMENT, None])),
    ("recent", encoded([MOMENT, -1])),
    ("recent", encoded([MOMENT, 10**30])),
    ("recent", encoded([MOMENT, 2**31])),  # past PostgreSQL's integer ids
    ("price", encoded([1, 2**63 - 1])),
    ("recent", encoded([MOMENT, [1]])),
    ("recent", encoded(["yesterday", 1])),
    ("recent", encoded(["2027-03-01T09:00:00", 1])),
    ("recent", encoded(["0001-01-01T00:00:00+14:00", 1])),
    ("recent", encoded(["\x00", 1])),
    ("recent", encoded('["\\ud800", 1]')),
    ("recent", encoded([1, 1])),
    ("price", encoded(["cheap", 1])),
    ("price", encoded([1, "x"])),
    ("price", encoded([-1, 1])),
    ("price", encoded([10**30, 1])),
    ("price", encoded([1.5, 1])),
    ("price", encoded("[Infinity, 1]")),
    ("distance", encoded(["near", 1])),
    ("distance", encoded("[NaN, 1]")),
    ("distance", encoded("[-Infinity, 1]")),
    ("distance", encoded([-1.0, 1])),
    ("distance", encoded([1e300, 1])),
    ("distance", encoded([1.0, 10**30])),
    ("relevance", encoded(["ten"])),
    ("relevance", encoded([-20])),
    ("relevance", encoded([10**30])),
    ("relevance", encoded([2.5])),
    ("relevance", encoded("[Infinity]")),
    ("relevance", encoded([20, 1])),
]


@pytest.mark.parametrize(("sort", "cursor"), CRAFTED)
def test_a_crafted_cursor_is_a_bad_request_naming_the_cursor(
    db: Database, sort: str, cursor: str
) -> None:
    params = {**SORTS[sort], "cursor": cursor}

    with pytest.raises(BadRequest) as raised:
        search(db, params)

    assert raised.value.status == 400
    assert raised.value.field == "cursor"
    assert "cursor" in raised.value.reason


@pytest.mark.parametrize("sort", list(SORTS))
def test_the_cursors_a_search_gives_are_taken_back(db: Database, sort: str) -> None:
    page = search(db, {**SORTS[sort], "limit": "1"})
    assert page.next_cursor is not None

    following = find(db, **SORTS[sort], limit="1", cursor=page.next_cursor)

    assert len(following) == 1


@pytest.mark.parametrize(
    "cursor",
    [
        "!!",
        encoded([10**30, 1]),
        encoded(["2027-03-01T09:00:00+00:00", 10**30]),
        encoded("[" * 1500 + "]" * 1500),
        encoded([MOMENT, "x"]),
    ],
)
async def test_a_crafted_cursor_gets_400_on_the_api_and_the_page(
    network: Network, cursor: str
) -> None:
    coop = await network.add("alpha.test")

    api = await coop.get("/api/v1/catalogue", params={"cursor": cursor}, headers=coop.auth)
    page = await coop.get("/catalogue", params={"cursor": cursor}, headers={"Accept": "text/html"})

    assert api.status_code == 400, api.text
    assert api.json()["field"] == "cursor"
    assert "cursor" in api.json()["reason"]
    assert page.status_code == 400, page.text
    assert "this cursor is not one" in page.text


NUL_PARAMETERS = [
    {"coop": "https://beta.test/actors/coop\x00"},
    {"category": "apples\x00"},
    {"currency": "EUR\x00"},
    {"claim": "organic\x00"},
    {"q": "apples\x00"},
]


@pytest.mark.parametrize("params", NUL_PARAMETERS)
def test_a_nul_in_a_search_parameter_is_refused_naming_it(params: dict[str, str]) -> None:
    with pytest.raises(Invalid) as raised:
        catalogue.parse_query(params)

    assert raised.value.field == next(iter(params))


@pytest.mark.parametrize("params", NUL_PARAMETERS)
async def test_a_nul_in_a_search_is_a_bad_request_on_the_api_and_the_page(
    network: Network, params: dict[str, str]
) -> None:
    coop = await network.add("alpha.test")

    api = await coop.get("/api/v1/catalogue", params=params, headers=coop.auth)
    page = await coop.get("/catalogue", params=params, headers={"Accept": "text/html"})

    assert (api.status_code, page.status_code) == (400, 400), (api.text, page.text)
