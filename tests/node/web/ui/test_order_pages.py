"""Orders in the browser, between two real nodes (both engines): a member of the food
network orders honey from the marketplace's offer page, the marketplace's admin accepts
it on the orders received, each side's pages say so; refusals are shown next to their
field with what was typed kept; forms need the session's token, and nobody sees or
answers an order that is not theirs."""

from __future__ import annotations

import re

import httpx
import pytest

from node.follows import actions
from node.offers import store as offers_store
from tests.node.members.test_members_store import add
from tests.node.web.ui.test_pages import check_structure
from tests.node.web.ui.test_sessions import Browser
from tests.support.network import Network, TestNode
from tests.support.trade import honey, publish

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PLACED = re.compile(r"^/me/orders/([A-Za-z0-9_-]+)\?placed=1$")
PASSWORDS = {
    "claire": "marche admin password",
    "amina": "marche member password",
    "paula": "food member password",
    "hugo": "another food member",
}


async def catalogue_id(node: TestNode, uri: str) -> int:
    shown = await node.node.db.read(lambda conn: offers_store.shown_by_uri(conn, uri))
    assert shown is not None
    return shown.id


async def browser(network: Network, node: TestNode, username: str) -> Browser:
    opened = Browser(network, node)
    response = await opened.login(username, PASSWORDS[username])
    assert response.status_code == 303, response.text
    opened.http.headers.update(HTML)
    return opened


async def token_of(opened: Browser, path: str) -> str:
    page = await opened.http.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


async def market_and_food(network: Network) -> tuple[TestNode, TestNode, int]:
    """The marketplace with its honey, the food network following it; the honey's
    page in the food network's catalogue."""
    market = await network.add("market.test", name="Marché équitable")
    food = await network.add("food.test", name="Food network")
    await add(market, username="claire", password=PASSWORDS["claire"], role="admin")
    await add(market, username="amina", password=PASSWORDS["amina"])
    await add(food, username="paula", password=PASSWORDS["paula"])
    await add(food, username="hugo", password=PASSWORDS["hugo"])
    await actions.follow(food.node, "coop@market.test")
    await network.settle()
    offer = await publish(market, honey())
    await network.settle()
    return market, food, await catalogue_id(food, offer["uri"])


def order_fields(token: str, **changes: str) -> dict[str, str]:
    return {
        "csrf": token,
        "quantity": "6",
        "delivery": "pickup",
        "payment": "cash",
        "note": "Pour samedi",
        **changes,
    }


def text_of(response: httpx.Response) -> str:
    return " ".join("".join(check_structure(response.text).text).split())


async def test_a_member_orders_the_admin_accepts_and_both_pages_say_so(
    network: Network,
) -> None:
    market, food, offer_id = await market_and_food(network)
    offer_page = f"/catalogue/offers/{offer_id}"

    # A visitor is asked to log in; a member is led to the order form.
    visitor = await food.get(offer_page, headers=HTML)
    assert visitor.status_code == 200
    assert "Log in to order" in visitor.text
    assert f'href="/login?next={offer_page}/order"' in visitor.text
    assert f'href="{offer_page}/order"' not in visitor.text
    paula = await browser(network, food, "paula")
    member_view = await paula.http.get(offer_page)
    assert f'href="{offer_page}/order"' in member_view.text
    assert 'href="/me/orders"' in member_view.text  # the menu

    form = await paula.http.get(f"{offer_page}/order")
    assert form.status_code == 200
    assert form.headers["cache-control"] == "no-store"
    shown = text_of(form)
    assert "Order: Lavender honey" in shown
    assert "At least 2. 40 left." in shown
    assert "Quantity (in piece)" in shown
    assert '<option value="postal_shipping">postal shipping</option>' in form.text
    assert '<option value="bank_transfer">bank transfer</option>' in form.text
    token = CSRF.search(form.text)
    assert token is not None

    placed = await paula.http.post(f"{offer_page}/order", data=order_fields(token.group(1)))
    assert placed.status_code == 303, placed.text
    found = PLACED.match(placed.headers["location"])
    assert found is not None, placed.headers["location"]
    key = found.group(1)
    mine = await paula.http.get(placed.headers["location"])
    assert "Your order is sent to the seller." in mine.text
    assert "waiting for the seller" in text_of(mine)
    assert "€51.00" in mine.text
    await network.settle()

    # The marketplace's admin answers on the orders received.
    claire = await browser(network, market, "claire")
    me = await claire.http.get("/me")
    assert 'href="/me/orders/received"' in me.text
    received = await claire.http.get("/me/orders/received")
    assert received.status_code == 200
    listed = text_of(received)
    assert "waiting for your answer" in listed
    assert "6 × piece" in listed
    assert "Pour samedi" in listed
    assert "From https://food.test/actors/paula" in listed
    seller_key = re.search(r'action="/me/orders/([A-Za-z0-9_-]+)/accept"', received.text)
    assert seller_key is not None
    assert f'action="/me/orders/{seller_key.group(1)}/reject"' in received.text
    accepted = await claire.http.post(
        f"/me/orders/{seller_key.group(1)}/accept",
        data={
            "csrf": await token_of(claire, "/me"),
            "note": "Samedi 10h",
            "back": "received",
        },
    )
    assert accepted.status_code == 303, accepted.text
    assert accepted.headers["location"] == "/me/orders/received?done=accept"
    after = await claire.http.get(accepted.headers["location"])
    assert "Your answer is sent." in after.text
    assert "accepted: to fulfil" in text_of(after)
    assert "Mark as fulfilled" in after.text
    await network.settle()

    # The member sees the answer, in English and in French.
    orders = await paula.http.get("/me/orders")
    listed = text_of(orders)
    assert "Lavender honey" in listed
    assert f'href="{offer_page}"' in orders.text
    assert "accepted" in listed
    assert "Samedi 10h" in listed
    assert "€51.00" in listed
    in_french = text_of(await paula.http.get("/me/orders?lang=fr"))
    assert "Mes commandes" in in_french
    assert "acceptée" in in_french
    assert "51,00 €" in in_french
    assert "retrait sur place" in in_french
    one = await paula.http.get(f"/me/orders/{key}?lang=en")
    assert "Cancel my order" in one.text

    # She cancels: the seller's node hears it, and the button goes.
    cancelled = await paula.http.post(
        f"/me/orders/{key}/cancel", data={"csrf": await token_of(paula, f"/me/orders/{key}")}
    )
    assert cancelled.status_code == 303, cancelled.text
    page = await paula.http.get(f"/me/orders/{key}")
    assert "cancelled" in text_of(page)
    assert "Cancel my order" not in page.text
    await network.settle()
    assert "cancelled" in text_of(await claire.http.get(f"/me/orders/{seller_key.group(1)}"))


async def test_refusals_are_shown_next_to_their_field_with_what_was_typed(
    network: Network,
) -> None:
    market, food, offer_id = await market_and_food(network)
    paula = await browser(network, food, "paula")
    path = f"/catalogue/offers/{offer_id}/order"
    token = await token_of(paula, path)

    under = await paula.http.post(path, data=order_fields(token, quantity="1", note="Merci"))
    assert under.status_code == 400
    assert 'role="alert"' in under.text
    assert (
        '<span class="error" id="quantity-error">under the minimum quantity of this offer</span>'
        in under.text
    )
    assert 'value="1"' in under.text
    assert ">Merci</textarea>" in under.text
    assert 'aria-invalid="true" aria-describedby="quantity-error quantity-hint"' in under.text
    check_structure(under.text)

    # In French, with a decimal comma: the reason is translated.
    half = await paula.http.post(
        path + "?lang=fr", data=order_fields(token, quantity="2,5", delivery="postal_shipping")
    )
    assert half.status_code == 400
    assert "commandez un nombre entier d’unités" in half.text
    assert 'value="2,5"' in half.text
    assert '<option value="postal_shipping" selected>envoi postal</option>' in half.text

    unknown = await paula.http.post(path + "?lang=en", data=order_fields(token, delivery="drone"))
    assert unknown.status_code == 400
    assert 'id="delivery-error">this offer has no such delivery option<' in unknown.text
    too_many = await paula.http.post(path, data=order_fields(token, quantity="41"))
    assert too_many.status_code == 400
    assert "out of stock" in too_many.text
    mine = await paula.http.get("/me/orders")
    assert "You have not ordered anything yet." in mine.text

    # The seller rejects an order, saying why: the member reads it.
    placed = await paula.http.post(path, data=order_fields(token))
    assert placed.status_code == 303
    await network.settle()
    claire = await browser(network, market, "claire")
    received = await claire.http.get("/me/orders/received")
    seller_key = re.search(r'action="/me/orders/([A-Za-z0-9_-]+)/reject"', received.text)
    assert seller_key is not None
    rejected = await claire.http.post(
        f"/me/orders/{seller_key.group(1)}/reject",
        data={"csrf": await token_of(claire, "/me"), "note": "Plus de pots"},
    )
    assert rejected.status_code == 303
    assert rejected.headers["location"] == f"/me/orders/{seller_key.group(1)}?done=reject"
    # Answering twice is refused: the order is no longer waiting.
    again = await claire.http.post(
        f"/me/orders/{seller_key.group(1)}/accept",
        data={"csrf": await token_of(claire, "/me")},
    )
    assert again.status_code == 409
    assert "it cannot be accepted now" in again.text
    await network.settle()
    listed = text_of(await paula.http.get("/me/orders"))
    assert "rejected" in listed
    assert "Plus de pots" in listed


async def test_forms_need_the_token_and_orders_stay_with_their_people(
    network: Network,
) -> None:
    market, food, offer_id = await market_and_food(network)
    paula = await browser(network, food, "paula")
    path = f"/catalogue/offers/{offer_id}/order"
    token = await token_of(paula, path)

    # No token, another's token, another site: nothing is ordered.
    forged = await paula.http.post(path, data=order_fields("not the token"))
    assert forged.status_code == 403
    missing = await paula.http.post(path, data={"quantity": "6"})
    assert missing.status_code == 403
    cross = await paula.http.post(
        path, data=order_fields(token), headers={"Origin": "https://evil.test"}
    )
    assert cross.status_code == 403
    assert "You have not ordered anything yet." in (await paula.http.get("/me/orders")).text

    # A visitor is sent to log in, an unknown offer and the co-op's own are not orderable.
    visitor = await food.get(path, headers=HTML)
    assert visitor.status_code == 303
    assert visitor.headers["location"] == f"/login?next={path}"
    assert (await paula.http.get("/catalogue/offers/999999/order")).status_code == 404
    own = await publish(food, honey(title={"en": "Our own jam"}))
    own_id = await catalogue_id(food, own["uri"])
    assert (await paula.http.get(f"/catalogue/offers/{own_id}/order")).status_code == 404
    own_page = await paula.http.get(own["uri"].removeprefix(food.base), headers=HTML)
    assert own_page.status_code == 200
    assert "Order this offer" not in own_page.text

    placed = await paula.http.post(path, data=order_fields(token))
    found = PLACED.match(placed.headers["location"])
    assert found is not None
    key = found.group(1)
    await network.settle()

    # Another member of the food network neither sees nor cancels it.
    hugo = await browser(network, food, "hugo")
    assert (await hugo.http.get(f"/me/orders/{key}")).status_code == 404
    hugo_token = await token_of(hugo, "/me")
    assert "Lavender honey" not in (await hugo.http.get("/me/orders")).text
    cancel = await hugo.http.post(f"/me/orders/{key}/cancel", data={"csrf": hugo_token})
    assert cancel.status_code == 404
    # Paula may not accept her own order as if she were the seller.
    accept = await paula.http.post(
        f"/me/orders/{key}/accept", data={"csrf": await token_of(paula, "/me")}
    )
    assert accept.status_code == 404
    assert "waiting for the seller" in text_of(await paula.http.get(f"/me/orders/{key}"))

    # A member of the marketplace who did not publish the honey sees no order received,
    # and cannot answer it.
    claire = await browser(network, market, "claire")
    received = await claire.http.get("/me/orders/received")
    seller_key = re.search(r'action="/me/orders/([A-Za-z0-9_-]+)/accept"', received.text)
    assert seller_key is not None
    amina = await browser(network, market, "amina")
    theirs = await amina.http.get("/me/orders/received")
    assert "No order received yet." in theirs.text
    assert (await amina.http.get(f"/me/orders/{seller_key.group(1)}")).status_code == 404
    answer = await amina.http.post(
        f"/me/orders/{seller_key.group(1)}/accept",
        data={"csrf": await token_of(amina, "/me")},
    )
    assert answer.status_code == 404
    # The admin's form without its token does nothing either.
    stale = await claire.http.post(
        f"/me/orders/{seller_key.group(1)}/accept", data={"csrf": "stale"}
    )
    assert stale.status_code == 403
    assert "waiting for your answer" in text_of(await claire.http.get("/me/orders/received"))


@pytest.mark.parametrize("path", ["/me/orders", "/me/orders/received", "/me/orders/nothing"])
async def test_order_pages_are_for_members_only(network: Network, path: str) -> None:
    food = await network.add("food.test")
    await add(food, username="cleo", password="an observer password", role="observer")
    visitor = await food.get(path, headers=HTML)
    assert visitor.status_code == 303
    assert visitor.headers["location"].startswith("/login?next=")
    cleo = Browser(network, food)
    assert (await cleo.login("cleo", "an observer password")).status_code == 303
    assert (await cleo.http.get(path)).status_code == 403
