"""A member's own offers in a browser: published with a photo through the form (checked
as an API upload is), listed, changed and withdrawn by their author or an admin only;
the same authorship rule in the JSON API; refusals that store nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from node.storage.tables import offers
from tests.node.members.test_members_store import add, token_for
from tests.node.web.test_media import jpeg, png, stored_files, stored_rows
from tests.node.web.ui.test_pages import check_structure
from tests.node.web.ui.test_sessions import Browser
from tests.support.network import Network, TestNode

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
AS2 = {"Accept": "application/activity+json"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PUBLISHED = re.compile(r"^/me/offers\?published=([0-9a-f]{32})$")
LIMIT = 4096  # the node's photo limit, in bytes


@pytest.fixture
async def coop(network: Network) -> TestNode:
    node = await network.add("alpha.test", media_max_bytes=LIMIT)
    await add(node, username="ana", password="correct horse battery", role="admin")
    await add(node, username="ben", password="another good one")
    await add(node, username="dora", password="yet another one")
    await add(node, username="cleo", password="a third password", role="observer")
    return node


PASSWORDS = {
    "ana": "correct horse battery",
    "ben": "another good one",
    "dora": "yet another one",
    "cleo": "a third password",
}


async def browser(network: Network, coop: TestNode, username: str) -> Browser:
    opened = Browser(network, coop)
    response = await opened.login(username, PASSWORDS[username])
    assert response.status_code == 303, response.text
    return opened


def fields(**changes: str) -> dict[str, str]:
    values = {
        "title_fr": "Miel de lavande",
        "title_en": "",
        "description_fr": "Récolté **en juillet**.",
        "description_en": "",
        "categories": "honey",
        "unit": "piece",
        "price_amount": "8,50",
        "currency": "EUR",
        "place": "Die",
        "end_date": "",
        "photo_description": "",
    }
    values.update(changes)
    return values


async def send(
    opened: Browser,
    path: str,
    data: dict[str, str],
    *,
    photo: tuple[str, bytes, str] | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The offer form sent as a browser sends it: multipart, with its token."""
    if token is None:
        token = await opened.form_token("/offers/new")
    files = {"photo": photo if photo is not None else ("", b"", "application/octet-stream")}
    return await opened.http.post(
        path, data={"csrf": token, **data}, files=files, headers=headers or {}
    )


async def offer_rows(coop: TestNode) -> list[Any]:
    query = select(offers.c.uri, offers.c.author_id, offers.c.status, offers.c.title).where(
        offers.c.local == 1
    )
    return list(await coop.node.db.read(lambda conn: conn.execute(query).all()))


async def offers_stored(coop: TestNode) -> int:
    query = select(func.count()).select_from(offers)
    return int(await coop.node.db.read(lambda conn: conn.execute(query).scalar_one()))


async def assert_nothing_stored(coop: TestNode) -> None:
    assert await offers_stored(coop) == 0
    assert await stored_rows(coop) == 0
    assert stored_files(coop) == []


async def member_id(coop: TestNode, username: str) -> int:
    response = await coop.request("GET", "/api/v1/members", headers=coop.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return int(next(m["id"] for m in items if m["handle"] == f"{username}@alpha.test"))


async def published_key(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    found = PUBLISHED.match(response.headers["location"])
    assert found is not None, response.headers["location"]
    return found.group(1)


# --- publishing --------------------------------------------------------------------------


async def test_a_member_publishes_an_offer_with_a_photo_through_the_form(
    network: Network, coop: TestNode
) -> None:
    ben = await browser(network, coop, "ben")
    form = await ben.http.get("/offers/new")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text
    assert 'type="file"' in form.text
    assert 'accept="image/*"' in form.text
    check_structure(form.text)
    image = jpeg(5, 4)

    response = await send(
        ben,
        "/offers/new",
        fields(title_en="Lavender honey", photo_description="Three jars of honey on a shelf"),
        photo=("honey.jpg", image, "image/jpeg"),
    )
    key = await published_key(response)

    listed = await ben.http.get(response.headers["location"])
    assert listed.status_code == 200
    check_structure(listed.text)
    assert "Lavender honey" in listed.text  # the page's language first
    assert f'href="/offers/{key}"' in listed.text
    assert f'href="/offers/{key}/edit"' in listed.text
    assert f'action="/offers/{key}/withdraw"' in listed.text
    assert 'href="/offers/new"' in listed.text
    assert "€8.50 per piece" in listed.text

    [row] = await offer_rows(coop)
    assert row.author_id == await member_id(coop, "ben")
    proposal = (await coop.get(f"/offers/{key}", headers=AS2)).json()
    [attachment] = proposal["attachment"]
    assert attachment["type"] == "Image"
    assert attachment["mediaType"] == "image/jpeg"
    assert attachment["name"] == "Three jars of honey on a shelf"
    assert re.fullmatch(r"https://alpha\.test/media/[A-Za-z0-9_-]{22}\.jpg", attachment["url"])
    served = await network.http.get(attachment["url"])
    assert served.status_code == 200
    assert served.content == image
    assert served.headers["content-type"] == "image/jpeg"
    assert await stored_rows(coop) == 1
    # The offer's own page opens for a browser.
    assert (await ben.http.get(f"/offers/{key}", headers=HTML)).status_code == 200


async def test_an_offer_without_a_photo_and_a_png_one_are_both_listed_newest_first(
    network: Network, coop: TestNode
) -> None:
    ben = await browser(network, coop, "ben")
    first = await published_key(await send(ben, "/offers/new", fields(title_fr="Pain")))
    network.clock.advance(seconds=60)
    second = await published_key(
        await send(
            ben,
            "/offers/new",
            fields(title_fr="Pommes", categories="Pommes", photo_description="Apples"),
            photo=("apples.png", png(3, 2), "image/png"),
        )
    )
    listed = (await ben.http.get("/me/offers")).text
    assert listed.index(f"/offers/{second}") < listed.index(f"/offers/{first}")
    proposal = (await ben.http.get(f"/offers/{first}", headers=AS2)).json()
    assert "attachment" not in proposal


async def test_a_file_that_is_not_an_image_is_refused_and_nothing_is_stored(
    network: Network, coop: TestNode
) -> None:
    ben = await browser(network, coop, "ben")
    response = await send(
        ben,
        "/offers/new",
        fields(photo_description="A photo"),
        photo=("honey.png", b"Just some text, not a picture.\n", "image/png"),
    )
    assert response.status_code == 400
    assert "not a JPEG, PNG, WebP or GIF image" in response.text
    assert 'id="photo-error"' in response.text
    assert 'value="Miel de lavande"' in response.text
    assert "choose it again" in response.text
    await assert_nothing_stored(coop)


async def test_a_photo_over_the_limit_is_refused_and_nothing_is_stored(
    network: Network, coop: TestNode
) -> None:
    ben = await browser(network, coop, "ben")
    # Over the photo limit, within the form's: the form again, the reason by the photo.
    over = png(3, 2) + b"\x00" * LIMIT
    response = await send(
        ben, "/offers/new", fields(photo_description="Big"), photo=("big.png", over, "image/png")
    )
    assert response.status_code == 400
    assert "too large" in response.text
    assert 'id="photo-error"' in response.text
    await assert_nothing_stored(coop)
    # Far over the form's own limit: refused from its length, before it is read.
    huge = png(3, 2) + b"\x00" * (LIMIT + 70_000)
    response = await send(
        ben, "/offers/new", fields(photo_description="Huge"), photo=("huge.png", huge, "image/png")
    )
    assert response.status_code == 413
    await assert_nothing_stored(coop)


async def test_a_photo_without_its_description_is_refused(network: Network, coop: TestNode) -> None:
    ben = await browser(network, coop, "ben")
    response = await send(ben, "/offers/new", fields(), photo=("a.png", png(), "image/png"))
    assert response.status_code == 400
    assert 'aria-describedby="photo_description-error' in response.text
    assert "Describe the photo" in response.text
    await assert_nothing_stored(coop)


async def test_a_missing_title_shows_the_form_again_with_its_values(
    network: Network, coop: TestNode
) -> None:
    ben = await browser(network, coop, "ben")
    response = await send(ben, "/offers/new", fields(title_fr="", title_en=""))
    assert response.status_code == 400
    body = response.text
    check_structure(body)
    assert "Give a title, in French or in English." in body
    assert re.search(
        r'id="title_fr"[^>]*aria-invalid="true" aria-describedby="title_fr-error"', body
    )
    assert 'id="title_fr-error"' in body
    assert "Récolté **en juillet**." in body
    assert 'value="Die"' in body
    # An unknown category: the message by the categories field.
    response = await send(ben, "/offers/new", fields(categories="nothing-like-it"))
    assert response.status_code == 400
    assert 'id="categories-error"' in response.text
    assert "unknown category" in response.text
    await assert_nothing_stored(coop)


async def test_the_form_in_french(network: Network, coop: TestNode) -> None:
    ben = await browser(network, coop, "ben")
    page = await ben.http.get("/offers/new?lang=fr")
    assert page.status_code == 200
    assert "Publier une offre" in page.text
    assert "Titre en français" in page.text


# --- who may do what ---------------------------------------------------------------------


async def test_only_the_author_or_an_admin_changes_an_offer(
    network: Network, coop: TestNode
) -> None:
    ben = await browser(network, coop, "ben")
    key = await published_key(await send(ben, "/offers/new", fields()))
    dora = await browser(network, coop, "dora")
    token = await dora.form_token("/me")

    assert (await dora.http.get(f"/offers/{key}/edit")).status_code == 403
    edit = await send(dora, f"/offers/{key}/edit", fields(title_fr="Volé"), token=token)
    withdraw = await dora.http.post(f"/offers/{key}/withdraw", data={"csrf": token})
    assert edit.status_code == 403
    assert "only its author or an admin may change this offer" in edit.text
    assert withdraw.status_code == 403
    [row] = await offer_rows(coop)
    assert (row.title, row.status) == ("Miel de lavande", "active")
    assert f"/offers/{key}" not in (await dora.http.get("/me/offers")).text

    # The author changes it: the form comes prefilled.
    form = await ben.http.get(f"/offers/{key}/edit")
    assert form.status_code == 200
    assert 'value="Miel de lavande"' in form.text
    assert 'value="Honey"' in form.text  # the categories by their names
    check_structure(form.text)
    changed = await send(
        ben,
        f"/offers/{key}/edit",
        fields(title_fr="Miel de lavande fine", price_amount="9"),
        token=CSRF.search(form.text).group(1),  # type: ignore[union-attr]
    )
    assert changed.status_code == 303, changed.text
    assert changed.headers["location"] == f"/me/offers?updated={key}"
    proposal = (await coop.get(f"/offers/{key}", headers=AS2)).json()
    assert proposal["nameMap"]["fr"] == "Miel de lavande fine"

    # The admin sees every offer of the co-op and may change any.
    ana = await browser(network, coop, "ana")
    assert f"/offers/{key}/edit" in (await ana.http.get("/me/offers")).text
    admin_token = await ana.form_token("/me")
    changed = await send(
        ana,
        f"/offers/{key}/edit",
        fields(title_fr="Miel de lavande (admin)"),
        token=admin_token,
    )
    assert changed.status_code == 303, changed.text
    [row] = await offer_rows(coop)
    assert row.title == "Miel de lavande (admin)"
    assert row.author_id == await member_id(coop, "ben")  # still ben's


async def test_the_author_replaces_the_photo_and_withdraws_the_offer(
    network: Network, coop: TestNode
) -> None:
    ben = await browser(network, coop, "ben")
    key = await published_key(
        await send(
            ben,
            "/offers/new",
            fields(photo_description="Jars"),
            photo=("a.png", png(3, 2), "image/png"),
        )
    )
    token = await ben.form_token("/me")
    # Kept as it is while the text changes, then replaced.
    kept = await send(
        ben, f"/offers/{key}/edit", fields(place="Crest", photo_description="Jars"), token=token
    )
    assert kept.status_code == 303, kept.text
    first = (await coop.get(f"/offers/{key}", headers=AS2)).json()["attachment"][0]
    replaced = await send(
        ben,
        f"/offers/{key}/edit",
        fields(photo_description="A hive"),
        token=token,
        photo=("b.jpg", jpeg(), "image/jpeg"),
    )
    assert replaced.status_code == 303, replaced.text
    second = (await coop.get(f"/offers/{key}", headers=AS2)).json()["attachment"][0]
    assert second["url"] != first["url"]
    assert (second["mediaType"], second["name"]) == ("image/jpeg", "A hive")
    # The photo taken down is gone from the node, not only from the offer.
    assert (await coop.get(first["url"].removeprefix(coop.base))).status_code == 404

    removed = await send(
        ben,
        f"/offers/{key}/edit",
        fields(photo_description="A hive", remove_photo="1"),
        token=token,
    )
    assert removed.status_code == 303, removed.text
    assert "attachment" not in (await coop.get(f"/offers/{key}", headers=AS2)).json()
    assert (await coop.get(second["url"].removeprefix(coop.base))).status_code == 404

    withdrawn = await ben.http.post(f"/offers/{key}/withdraw", data={"csrf": token})
    assert withdrawn.status_code == 303
    assert withdrawn.headers["location"] == f"/me/offers?withdrawn={key}"
    assert (await coop.get(f"/offers/{key}", headers=AS2)).json()["type"] == "Tombstone"
    listed = (await ben.http.get("/me/offers")).text
    assert f'action="/offers/{key}/withdraw"' not in listed
    assert (await ben.http.get(f"/offers/{key}/edit")).status_code == 409


async def test_observers_and_visitors_may_not_publish(network: Network, coop: TestNode) -> None:
    anonymous = Browser(network, coop)
    page = await anonymous.http.get("/offers/new")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/offers/new"
    assert (await anonymous.http.get("/me/offers")).headers["location"].startswith("/login")
    posted = await anonymous.http.post("/offers/new", data={"csrf": "x", **fields()})
    assert posted.status_code == 303

    cleo = await browser(network, coop, "cleo")
    assert (await cleo.http.get("/offers/new")).status_code == 403
    token = await cleo.form_token("/me")
    refused = await send(cleo, "/offers/new", fields(), token=token)
    assert refused.status_code == 403
    await assert_nothing_stored(coop)


async def test_forms_without_their_token_or_from_elsewhere_store_nothing(
    network: Network, coop: TestNode
) -> None:
    ben = await browser(network, coop, "ben")
    token = await ben.form_token("/offers/new")
    photo = ("a.png", png(), "image/png")
    good = fields(photo_description="Jars")
    no_token = await send(ben, "/offers/new", good, token="", photo=photo)
    wrong = await send(ben, "/offers/new", good, token="x" * 43, photo=photo)
    cross_site = await send(
        ben, "/offers/new", good, token=token, photo=photo, headers={"Sec-Fetch-Site": "cross-site"}
    )
    other_origin = await send(
        ben, "/offers/new", good, token=token, photo=photo, headers={"Origin": "https://evil.test"}
    )
    statuses = [r.status_code for r in (no_token, wrong, cross_site, other_origin)]
    assert statuses == [403] * 4
    await assert_nothing_stored(coop)

    # The same for changing and withdrawing an offer.
    key = await published_key(await send(ben, "/offers/new", fields(), token=token))
    edit = await send(ben, f"/offers/{key}/edit", fields(title_fr="Autre"), token="")
    withdraw = await ben.http.post(
        f"/offers/{key}/withdraw", data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert (edit.status_code, withdraw.status_code) == (403, 403)
    [row] = await offer_rows(coop)
    assert (row.title, row.status) == ("Miel de lavande", "active")


# --- the same rule in the JSON API -------------------------------------------------------


def api_offer(**changes: Any) -> dict[str, Any]:
    return {
        "title": {"en": "Organic apples"},
        "categories": ["apples"],
        "price": {"amount": "3.50", "currency": "EUR"},
        "unit": "kg",
        **changes,
    }


async def test_the_api_lets_only_the_author_or_an_admin_change_an_offer(
    network: Network, coop: TestNode
) -> None:
    ben_id = await member_id(coop, "ben")
    ben = await token_for(coop, ben_id)
    dora = await token_for(coop, await member_id(coop, "dora"))
    created = await coop.request("POST", "/api/v1/offers", json=api_offer(), headers=ben)
    assert created.status_code == 201, created.text
    key = created.json()["id"]
    by_admin = await coop.request("POST", "/api/v1/offers", json=api_offer(), headers=coop.auth)
    assert by_admin.status_code == 201
    authors = {row.uri.rsplit("/", 1)[-1]: row.author_id for row in await offer_rows(coop)}
    assert authors == {key: ben_id, by_admin.json()["id"]: None}
    before = (await coop.get(f"/offers/{key}", headers=AS2)).json()

    patch = await coop.request(
        "PATCH", f"/api/v1/offers/{key}", json={"price": {"amount": "0.01"}}, headers=dora
    )
    delete = await coop.request("DELETE", f"/api/v1/offers/{key}", headers=dora)
    assert (patch.status_code, delete.status_code) == (403, 403)
    assert patch.json()["reason"] == "only its author or an admin may change this offer"
    assert (await coop.get(f"/offers/{key}", headers=AS2)).json() == before
    # Nor may a member change the offers no member wrote.
    other = await coop.request(
        "PATCH", f"/api/v1/offers/{by_admin.json()['id']}", json={"unit": "g"}, headers=ben
    )
    assert other.status_code == 403

    mine = await coop.request(
        "PATCH", f"/api/v1/offers/{key}", json={"price": {"amount": "3.20"}}, headers=ben
    )
    assert mine.status_code == 200, mine.text
    admin = await coop.request(
        "PATCH", f"/api/v1/offers/{key}", json={"unit": "piece"}, headers=coop.auth
    )
    assert admin.status_code == 200, admin.text
    assert admin.json()["offer"]["price"]["amount"] == "3.20"
    gone = await coop.request("DELETE", f"/api/v1/offers/{key}", headers=coop.auth)
    assert gone.status_code == 204
    missing = await coop.request("DELETE", "/api/v1/offers/nothing-here", headers=dora)
    assert missing.status_code == 404


async def test_the_offer_stays_json_for_servers(network: Network, coop: TestNode) -> None:
    ben = await browser(network, coop, "ben")
    key = await published_key(await send(ben, "/offers/new", fields()))
    document = json.loads((await coop.get(f"/offers/{key}")).text)
    assert document["type"] == "Proposal"
