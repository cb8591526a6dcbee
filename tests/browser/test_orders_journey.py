"""An order between two co-ops, end to end, in Chromium, on the demo's real processes:
a member of the food network orders six jars of honey from the marketplace's offer page
(on a desktop, in English), the marketplace's admin accepts the order on the orders
received (on a phone, in French), the member sees it accepted with the admin's note and
the total, and once the marketplace announces its stock, the food network's catalogue
shows how many jars are left."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.browser.conftest import Watched
from tests.browser.test_journeys import fits, log_in, status_of
from tests.support.demo import DemoInfo, start_demo

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

HONEY = "Lavender honey, 500 g jar"
# A minute between two stock announcements of an offer, the orders' round every ten
# seconds, and some slack for a busy machine.
ANNOUNCE_WAIT = 90


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoInfo]:
    process = start_demo(None)
    try:
        yield process.wait_ready(timeout=120)
    finally:
        code = process.stop()
        output = process.read_output()
        assert code == 0, output
        assert "Traceback" not in output, output


def wait_for(watched: Watched, text: str, seconds: float = 30) -> None:
    """Reload the page until it says ``text``: the other co-op's answer travels between
    processes, through their queues."""
    deadline = time.monotonic() + seconds
    while text not in watched.page.content():
        assert time.monotonic() < deadline, watched.page.content()
        watched.page.wait_for_timeout(500)
        watched.page.reload()


def test_a_member_orders_honey_and_the_marketplace_accepts(
    demo: DemoInfo, desktop: Watched, phone: Watched
) -> None:
    food, marche = demo.nodes["food"], demo.nodes["marche"]
    paul = next(x for x in demo.logins if x.handle == "food" and x.username == "paul")

    # The member finds the honey in the federated catalogue and orders six jars.
    page = desktop.page
    log_in(desktop, food, paul.username, paul.password, "en")
    page.get_by_label("Words").fill("miel")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=HONEY).click()
    offer_url = page.url
    page.get_by_role("link", name="Order this offer").click()
    assert page.get_by_role("heading", level=1).inner_text() == f"Order: {HONEY}"
    hint = re.search(r"([\d,]+) left\.", page.locator("#quantity-hint").inner_text())
    assert hint is not None
    left_before = int(hint.group(1).replace(",", ""))
    page.get_by_label("Quantity (in piece)").fill("6")
    page.get_by_label("Delivery").select_option("pickup")
    page.get_by_label("Payment").select_option(label="bank transfer")
    page.get_by_label("Note to the seller (optional)").fill("For Saturday, please")
    desktop.screenshot("order-form-desktop")
    with page.expect_navigation():
        page.get_by_role("button", name="Send the order").click()
    assert page.url.endswith("?placed=1"), page.locator("main").inner_text()
    assert status_of(page) == "Your order is sent to the seller."
    assert page.locator("dd.state").inner_text() == "waiting for the seller"

    # The marketplace's admin, on her phone, accepts it with a note.
    admin = demo.login("marche")
    log_in(phone, marche, admin.username, admin.password, "fr")
    seller = phone.page
    seller.goto(f"{marche.base}me")
    seller.get_by_role("link", name="Commandes reçues").first.click()
    wait_for(phone, "For Saturday, please")
    card = seller.locator("li.card", has_text="For Saturday, please")
    assert card.locator("dd.state").inner_text() == "en attente de votre réponse"
    card.get_by_label("Mot à l’acheteur").fill("Samedi 10h, à la boutique")
    fits(phone)
    phone.screenshot("orders-received-phone")
    card.get_by_role("button", name="Accepter").click()
    seller.wait_for_url("**/me/orders/received?done=accept")
    assert status_of(seller) == "Votre réponse est envoyée."
    assert card.locator("dd.state").inner_text() == "acceptée : à honorer"
    fits(phone)

    # The member sees it accepted, with the note and the total.
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="My orders").click()
    wait_for(desktop, "Samedi 10h, à la boutique")
    order = page.locator("li.card", has_text=HONEY)
    assert order.locator("dd.state").inner_text() == "accepted"
    assert order.locator("dd.answer").inner_text() == "Samedi 10h, à la boutique"
    assert "€57.00" in order.inner_text()
    desktop.screenshot("my-orders-desktop")

    # The marketplace tells its followers how many jars are left: at most once a
    # minute per offer (node.orders.worker), counted from the demo's publication.
    # The demo's own orders may have taken some before: what the catalogue said then
    # was the last announcement, so the new figure is six less, or fewer.
    page.goto(offer_url)
    available = page.locator("dt", has_text="Available quantity").locator("+ dd")
    deadline = time.monotonic() + ANNOUNCE_WAIT
    while available.inner_text() == f"{left_before} piece":
        assert time.monotonic() < deadline, "the stock was never announced"
        page.wait_for_timeout(1000)
        page.reload()
    left_after = int(available.inner_text().removesuffix(" piece").replace(",", ""))
    assert left_after <= left_before - 6
    # As the marketplace counts it: its offer's own document says the same.
    origin = marche.base.split("://", 1)[1].rstrip("/")
    offer_uri = page.get_by_role("link", name=f"See this offer on {origin}")
    document = httpx.get(
        str(offer_uri.get_attribute("href")), headers={"Accept": "application/activity+json"}
    ).json()
    assert document["publishes"]["availableQuantity"]["hasNumericalValue"] == str(left_after)
    desktop.screenshot("offer-stock-after-order-desktop")
