"""A NUL in a URL, or an id beyond any row, is a client's mistake on both engines:
a 4xx that says why, never a 500 from deep in a query."""

from __future__ import annotations

import pytest

from tests.node.web.ui.test_pages import offer, publish
from tests.support.network import Network

HTML = {"Accept": "text/html"}
AS2 = {"Accept": "application/activity+json"}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/actors/co%00op", AS2),
        ("/@co%00op", HTML),
        ("/offers/%00", AS2),
        ("/offers/%00", HTML),
        ("/offers/%00/note", AS2),
        ("/proposals/%00", HTML),
        ("/proposals/%00/outcome", AS2),
        ("/actors/coop/offers?page=true&before=%00", AS2),
        ("/.well-known/webfinger?resource=acct:co%00op@alpha.test", {}),
        ("/catalogue?coop=%00", HTML),
    ],
)
async def test_a_nul_in_the_url_is_a_bad_request(
    network: Network, path: str, headers: dict[str, str]
) -> None:
    coop = await network.add("alpha.test")

    response = await coop.get(path, headers=headers)

    assert response.status_code == 400, response.text
    assert "NUL" in response.text


@pytest.mark.parametrize(
    "number",
    # Past SQL's 64-bit integers, and past PostgreSQL's int4 row ids but within 64 bits.
    ["99999999999999999999999999", "2147483648", "999999999999999999"],
)
async def test_a_catalogue_offer_beyond_any_row_is_not_found(network: Network, number: str) -> None:
    coop = await network.add("alpha.test")

    response = await coop.get(f"/catalogue/offers/{number}", headers=HTML)

    assert response.status_code == 404


@pytest.mark.parametrize("before", ["2147483648", "999999999999999999"])
async def test_an_offers_cursor_past_any_row_id_lists_from_the_newest(
    network: Network, before: str
) -> None:
    coop = await network.add("alpha.test")
    await publish(coop, offer())

    response = await coop.get(f"/actors/coop/offers?before={before}", headers=AS2)

    assert response.status_code == 200, response.text
    assert len(response.json()["orderedItems"]) == 1


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/members/²", 422),
        ("/api/v1/members/99999999999999999999999999", 422),
        ("/actors/coop/followers?page=²", 400),
        ("/actors/coop/followers?page=99999999999999999999999999", 400),
        ("/actors/coop/offers?before=²", 400),
        ("/actors/coop/offers?before=99999999999999999999999999", 400),
    ],
)
async def test_a_number_no_row_can_have_is_a_bad_request(
    network: Network, path: str, status: int
) -> None:
    """ "²" is a digit to str.isdigit, not to int; a number past 2**63 no SQL compares."""
    coop = await network.add("alpha.test")

    response = await coop.get(path, headers={**AS2, **coop.auth})

    assert response.status_code == status, response.text
