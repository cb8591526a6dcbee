"""The pages members read in a browser: the profile, the catalogue and its search, offer
pages (ours and federated ones), in French or English, small and well-formed."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from node.catalogue import store
from node.catalogue.entries import remote_entry
from node.follows import actions
from node.offers.remote import from_proposal
from tests.node.web.test_media import png
from tests.support.network import Network, TestNode

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
AS2 = {"Accept": "application/activity+json"}
MAX_PAGE_BYTES = 100_000


def offer(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": {"en": "Organic apples", "fr": "Pommes bio"},
        "description": {"en": "Picked **this morning**."},
        "categories": ["apples"],
        "price": {"amount": "12.50", "currency": "EUR"},
        "unit": "kg",
        "location": {"name": "Lyon", "latitude": 45.764, "longitude": 4.8357},
        "claims": ["organic"],
    }
    data.update(changes)
    return data


async def publish(node: TestNode, data: dict[str, Any]) -> dict[str, Any]:
    response = await node.request("POST", "/api/v1/offers", json=data, headers=node.auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def browse(node: TestNode, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**HTML, **kwargs.pop("headers", {})}
    return await node.get(path, headers=headers, **kwargs)


class Structure(HTMLParser):
    """What a basic accessibility check needs from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[int] = []
        self.html_lang: str | None = None
        self.labels: set[str] = set()
        self.fields: list[tuple[str, str | None]] = []
        self.links: list[str] = []
        self.scripts = 0
        self.in_label = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.html_lang = found.get("lang")
        if len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
            self.headings.append(int(tag[1]))
        if tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))
        if tag in ("input", "select", "textarea") and found.get("type") not in ("hidden", "submit"):
            self.fields.append((tag, found.get("id")))
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_structure(body: str) -> Structure:
    parsed = Structure()
    parsed.feed(body)
    parsed.close()
    assert parsed.headings.count(1) == 1, parsed.headings
    assert parsed.headings[0] == 1
    for before, after in zip(parsed.headings, parsed.headings[1:], strict=False):
        assert after <= before + 1, f"heading h{after} after h{before}: {parsed.headings}"
    for tag, field_id in parsed.fields:
        assert field_id is not None, f"{tag} without an id"
        assert field_id in parsed.labels, f"{tag} {field_id} unlabelled"
    assert parsed.scripts == 0
    assert "#main" in parsed.links  # the skip link
    return parsed


def check_size(response: httpx.Response, css: httpx.Response) -> None:
    assert len(response.content) + len(css.content) < MAX_PAGE_BYTES


async def federated(network: Network) -> tuple[TestNode, TestNode]:
    alpha = await network.add("alpha.test", name="Alpha Market")
    beta = await network.add("beta.test", name="Beta Farm")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()
    return alpha, beta


async def test_the_profile_page_shows_the_coop(network: Network) -> None:
    coop = await network.add("alpha.test", name="Alpha Market")
    await coop.request(
        "PATCH", "/api/v1/profile", headers=coop.auth, json={"summary": "Fair <trade> food"}
    )

    response = await browse(coop, "/")
    css = await coop.get("/static/coopnode.css")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert "<h1>Alpha Market</h1>" in body
    assert "@coop@alpha.test" in body
    assert "Fair &lt;trade&gt; food" in body
    assert 'href="/catalogue"' in body
    assert 'href="/static/coopnode.css"' in body
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    check_structure(body)
    check_size(response, css)


async def test_the_catalogue_lists_local_and_federated_offers_and_searches(
    network: Network,
) -> None:
    alpha, beta = await federated(network)
    ours = await publish(alpha, offer(title={"fr": "Pain au levain"}, categories=["bread"]))
    theirs = await publish(beta, offer(title={"fr": "Miel de lavande"}, categories=["honey"]))
    await network.settle()

    response = await browse(alpha, "/catalogue")

    assert response.status_code == 200, response.text
    body = response.text
    assert "Pain au levain" in body
    assert "Miel de lavande" in body
    assert f'href="/offers/{ours["id"]}"' in body
    assert "Beta Farm" in body
    assert "(beta.test)" in body
    assert "/catalogue/offers/" in body
    assert theirs["uri"] not in body  # the card links to our page for it
    check_structure(body)
    check_size(response, await alpha.get("/static/coopnode.css"))

    narrowed = (await browse(alpha, "/catalogue", params={"q": "miel"})).text
    assert "Miel de lavande" in narrowed
    assert "Pain au levain" not in narrowed
    assert 'value="miel"' in narrowed

    by_category = (await browse(alpha, "/catalogue", params={"category": "bread"})).text
    assert "Pain au levain" in by_category
    assert "Miel de lavande" not in by_category


async def test_the_catalogue_shows_each_title_in_the_readers_language(network: Network) -> None:
    alpha, beta = await federated(network)
    await publish(alpha, offer(title={"fr": "Pommes bio", "en": "Organic apples"}))
    await publish(beta, offer(title={"fr": "Miel de lavande", "en": "Lavender honey"}))
    await publish(beta, offer(title={"fr": "Pain au levain"}))
    await network.settle()

    english = (await browse(alpha, "/catalogue", params={"lang": "en"})).text
    french = (await browse(alpha, "/catalogue", params={"lang": "fr"})).text

    assert ">Organic apples</a>" in english
    assert ">Lavender honey</a>" in english
    assert ">Pommes bio</a>" in french
    assert ">Miel de lavande</a>" in french
    # Only in French: said so, for screen readers and translation tools.
    assert 'lang="fr">Pain au levain</a>' in english
    assert '">Pain au levain</a>' in french
    assert 'lang="fr">Pain au levain' not in french


async def test_the_catalogue_pages_by_cursor(network: Network) -> None:
    coop = await network.add("alpha.test")
    for n in range(5):
        await publish(coop, offer(title={"en": f"Jar number {n}"}))
        network.clock.advance(60)

    seen: list[str] = []
    path = "/catalogue?limit=2"
    for _ in range(5):
        response = await browse(coop, path)
        assert response.status_code == 200, response.text
        shown = [t for t in (f"Jar number {n}" for n in range(5)) if t in response.text]
        seen += sorted(shown, key=response.text.index)
        parsed = check_structure(response.text)
        following = [link for link in parsed.links if "cursor=" in link]
        if not following or 'rel="next"' not in response.text:
            break
        path = following[-1].replace("&amp;", "&")
    assert seen == [f"Jar number {n}" for n in (4, 3, 2, 1, 0)]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "sold"}, "status is one of"),
        ({"min_price": "3", "currency": ""}, "a price range needs a currency"),
        ({"colour": "red"}, "unknown parameter"),
        ({"cursor": "!!"}, "this cursor is not one"),
    ],
)
async def test_a_bad_parameter_shows_the_message_with_400(
    network: Network, params: dict[str, str], message: str
) -> None:
    coop = await network.add("alpha.test")

    response = await browse(coop, "/catalogue", params=params)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
    assert 'role="alert"' in response.text
    check_structure(response.text)


async def test_an_offer_answers_html_to_browsers_and_the_same_json_to_servers(
    network: Network,
) -> None:
    coop = await network.add("alpha.test", name="Alpha Market")
    created = await publish(coop, offer())
    path = f"/offers/{created['id']}"

    page = await browse(coop, path)
    as2 = await coop.get(path, headers=AS2)
    bare = await coop.get(path)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Accept" in page.headers["vary"]
    assert "<h1>Organic apples</h1>" in page.text
    assert "<strong>this morning</strong>" in page.text
    assert "€12.50" in page.text
    check_structure(page.text)
    for response in (as2, bare):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/activity+json")
        assert response.json() == created["proposal"]
    assert as2.content == bare.content

    gone = await coop.request("DELETE", f"/api/v1/offers/{created['id']}", headers=coop.auth)
    assert gone.status_code == 204
    assert (await browse(coop, path)).status_code == 410
    assert (await coop.get(path, headers=AS2)).json()["type"] == "Tombstone"
    assert (await browse(coop, "/offers/nothing-here")).status_code == 404
    assert (await coop.get("/offers/nothing-here", headers=AS2)).json()["error"] == "not_found"


async def test_a_federated_offers_page_is_sanitised(network: Network) -> None:
    alpha, beta = await federated(network)
    created = await publish(beta, offer(title={"fr": "Miel de lavande"}))
    # As a peer might send it: HTML with a script, a handler and a heading of its own.
    document = {
        **created["proposal"],
        "id": f"{beta.base}/offers/raw",
        "content": '<h1>Big</h1><p onclick="x()">Bon <script>alert(1)</script>'
        '<a href="javascript:alert(2)">miel</a></p>',
    }
    document.pop("contentMap", None)
    now = network.clock.now()
    entry = remote_entry(from_proposal(document), document=document, now=now)
    offer_id = await alpha.node.db.write(lambda c: store.put(c, entry, now=now))

    response = await browse(alpha, f"/catalogue/offers/{offer_id}")

    assert response.status_code == 200, response.text
    body = response.text
    assert "Miel de lavande" in body
    assert "Bon" in body
    assert "<script" not in body
    assert "alert(" not in body
    assert "onclick" not in body
    assert "javascript:" not in body
    assert "<h3>Big</h3>" in body  # under the page's own headings
    assert "Beta Farm" in body
    check_structure(body)
    assert (await browse(alpha, "/catalogue/offers/999999")).status_code == 404


async def test_the_language_follows_accept_language(network: Network) -> None:
    coop = await network.add("alpha.test")

    french = await browse(
        coop, "/catalogue", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}
    )
    english = await browse(coop, "/catalogue", headers={"Accept-Language": "en-GB,en;q=0.9"})
    other = await browse(coop, "/catalogue", headers={"Accept-Language": "de-DE"})

    assert check_structure(french.text).html_lang == "fr"
    assert "Page suivante" not in french.text  # only one page
    assert "Chercher" in french.text
    assert check_structure(english.text).html_lang == "en"
    assert ">Search<" in english.text
    assert check_structure(other.text).html_lang == "en"
    assert "accept-language" in french.headers["vary"].lower()


async def test_lang_in_the_query_is_remembered_in_a_cookie(network: Network) -> None:
    coop = await network.add("alpha.test")
    english = {"Accept-Language": "en"}

    chosen = await browse(coop, "/?lang=fr", headers=english)

    assert check_structure(chosen.text).html_lang == "fr"
    cookie = chosen.headers["set-cookie"].lower()
    assert cookie.startswith("lang=fr;")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    later = await browse(coop, "/catalogue", headers=english)  # the client sends the cookie
    assert check_structure(later.text).html_lang == "fr"
    assert "set-cookie" not in later.headers
    assert 'href="/catalogue?lang=en"' in later.text
    back = await browse(coop, "/catalogue?lang=en")
    assert check_structure(back.text).html_lang == "en"
    network.http.cookies.clear()
    assert check_structure((await browse(coop, "/", headers=english)).text).html_lang == "en"


async def test_prices_and_dates_are_written_for_the_language(network: Network) -> None:
    coop = await network.add("alpha.test")
    await publish(coop, offer())
    network.http.cookies.clear()

    french = (await browse(coop, "/catalogue?lang=fr")).text
    english = (await browse(coop, "/catalogue?lang=en")).text

    assert "12,50\N{NO-BREAK SPACE}€" in french or "12,50\N{NARROW NO-BREAK SPACE}€" in french
    assert "€12.50" not in french
    assert "€12.50" in english
    assert "1 mars 2027" in french
    assert "Mar 1, 2027" in english


async def test_every_page_is_small_and_needs_no_script(network: Network) -> None:
    alpha, beta = await federated(network)
    for n in range(25):
        await publish(beta, offer(title={"fr": f"Confiture {n} " + "abricot " * 20}))
    created = await publish(alpha, offer(description={"en": "Long text. " * 300}))
    await network.settle()
    css = await alpha.get("/static/coopnode.css")

    for path in ("/", "/catalogue", "/catalogue?limit=100&status=any", f"/offers/{created['id']}"):
        response = await browse(alpha, path)
        assert response.status_code == 200, path
        check_size(response, css)
        assert check_structure(response.text).scripts == 0


async def test_an_offers_page_shows_its_photo_stored_here_with_its_description(
    network: Network,
) -> None:
    node = await network.add("alpha.test")
    uploaded = await node.request(
        "POST",
        "/api/v1/media",
        params={"description": "Three jars of honey on a shelf"},
        headers={**node.auth, "Content-Type": "image/png"},
        content=png(3, 2),
    )
    assert uploaded.status_code == 201, uploaded.text
    media = uploaded.json()
    created = await publish(node, offer(images=[{"media_id": media["id"]}]))
    page = await browse(node, f"/offers/{created['id']}")
    assert f'<img src="{media["url"]}" alt="Three jars of honey on a shelf"' in page.text
    assert (await node.get(media["url"].removeprefix("https://alpha.test"))).content == png(3, 2)


async def test_a_federated_offers_photo_is_not_fetched_from_the_peer_by_the_page(
    network: Network,
) -> None:
    home, peer = await federated(network)
    uploaded = await peer.request(
        "POST",
        "/api/v1/media",
        params={"description": "Jars"},
        headers={**peer.auth, "Content-Type": "image/png"},
        content=png(3, 2),
    )
    await publish(peer, offer(images=[{"media_id": uploaded.json()["id"]}]))
    await network.settle()
    listing = await browse(home, "/catalogue")
    [path] = re.findall(r'href="(/catalogue/offers/\d+)"', listing.text)
    page = await browse(home, path)
    assert page.status_code == 200
    assert "<img" not in page.text
    assert "See this offer on" in page.text
