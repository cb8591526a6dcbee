"""The network of co-ops, end to end, in Chromium, on the demo's real processes: the
gîtes co-op's admin sees its application to *Plateformes en communs* waiting (on a
phone, in French); the marketplace's admin, who hosts the network, approves it (on a
desktop, in English); the gîtes co-op is then a member, its catalogue holds the
marketplace's honey though it follows nobody, and the network's directory lists it.
Then the food network's admin puts a proposal to every member co-op of the network from
the proposal form, the gîtes admin accepts the invitation, and a gîtes member votes on
it from the proposal page; the food network, which counts, has the ballot."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import Watched
from tests.browser.test_journeys import fits, log_in, status_of
from tests.support.demo import DemoInfo, DemoNodeInfo, start_demo

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

NETWORK = "Plateformes en communs"
GITES = "Gîtes en commun"
PROPOSAL = "Une charte des prix justes pour le réseau"
# The demo prints the co-op that only applies to the network apart from the three others.
_NEWCOMER = re.compile(r"^\s*newcomer\s+(\S+)\s+(http://\S+/)\s+@(\S+)\s+(.+?)\s*$", re.M)
# What travels between the processes (an application's answer, a roster, the offers
# read back from a new member's outbox, an invitation) goes through their queues:
# seconds, more on a busy machine.
TRAVEL = 60


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoInfo]:
    process = start_demo(None)
    try:
        info = process.wait_ready(timeout=120)
        for handle, base, address, name in _NEWCOMER.findall(process.read_output()):
            info.nodes[handle] = DemoNodeInfo(handle, base, address, name)
        yield info
    finally:
        code = process.stop()
        output = process.read_output()
        assert code == 0, output
        assert "Traceback" not in output, output


def reload_until(watched: Watched, shown: Callable[[], bool], what: str) -> None:
    """Reload the page until ``shown()``, for at most :data:`TRAVEL` seconds."""
    deadline = time.monotonic() + TRAVEL
    while not shown():
        assert time.monotonic() < deadline, f"{what}:\n{watched.page.locator('main').inner_text()}"
        watched.page.wait_for_timeout(500)
        watched.page.reload()


def test_the_host_admits_a_waiting_co_op_which_then_sees_the_members_offers(
    demo: DemoInfo, desktop: Watched, phone: Watched
) -> None:
    marche, gites = demo.nodes["marche"], demo.nodes["gites"]

    # The gîtes co-op's admin, on her phone, sees its application waiting.
    page = phone.page
    admin = demo.login("gites")
    log_in(phone, gites, admin.username, admin.password, "fr")
    page.goto(f"{gites.base}admin/networks")
    mine = page.get_by_role(
        "table", name="Réseaux auxquels cette coopérative appartient ou a posé sa candidature"
    ).locator("tr", has_text=NETWORK)
    reload_until(phone, lambda: mine.count() == 1, "the application is not listed")
    assert "en attente de réponse" in mine.inner_text()
    fits(phone)
    phone.screenshot("network-application-waiting-phone")

    # The marketplace's admin approves it.
    host = demo.login("marche")
    log_in(desktop, marche, host.username, host.password, "en")
    seller = desktop.page
    seller.goto(f"{marche.base}admin/networks")
    waiting = seller.get_by_role("table", name="Applications waiting").locator("tr", has_text=GITES)
    reload_until(desktop, lambda: waiting.count() == 1, "the application never reached the host")
    assert "Ardèche" in waiting.inner_text()
    desktop.screenshot("network-applications-desktop")
    waiting.get_by_role("button", name="Approve").click()
    seller.wait_for_url("**/admin/networks?done=approved*")
    assert "is admitted" in status_of(seller)
    members = seller.get_by_role("table", name="Members")
    assert members.locator("tr", has_text=GITES).count() == 1
    desktop.screenshot("network-admitted-desktop")

    # The gîtes co-op is a member, with the network's roster.
    reload_until(phone, lambda: "membre" in mine.inner_text(), "the answer never came")
    roster = page.get_by_role("region", name=f"Les membres de {NETWORK}")
    reload_until(
        phone,
        lambda: roster.get_by_role("link", name="Marché équitable").count() == 1,
        "the roster lists the host",
    )
    phone.screenshot("network-member-phone")

    # Its catalogue holds the marketplace's honey, relayed by the network: the gîtes
    # co-op follows nobody.
    page.goto(f"{gites.base}catalogue?lang=fr")
    page.get_by_label("Mots").fill("miel")
    page.get_by_role("button", name="Chercher").click()
    page.wait_for_url("**/catalogue?*q=miel*")
    honey = page.get_by_role("link", name="Miel de lavande, pot de 500 g")
    reload_until(phone, lambda: honey.count() == 1, "the members' offers never came")
    fits(phone)
    phone.screenshot("network-catalogue-miel-phone")
    page.goto(f"{gites.base}admin/federation")
    assert "Marché équitable" not in page.locator("main").inner_text()

    # The network's public directory lists it.
    seller.goto(f"{marche.base}networks/plateformes-en-communs")
    assert seller.get_by_role("heading", level=1).inner_text() == NETWORK
    assert seller.get_by_role("link", name=GITES).is_visible()
    desktop.screenshot("network-directory-desktop")


def test_a_proposal_put_to_the_network_reaches_the_new_member_whose_member_votes(
    demo: DemoInfo, desktop: Watched, phone: Watched
) -> None:
    food, gites = demo.nodes["food"], demo.nodes["gites"]

    # The food network's admin puts a proposal to every member co-op of the network.
    page = desktop.page
    admin = demo.login("food")
    log_in(desktop, food, admin.username, admin.password, "en")
    page.goto(f"{food.base}admin/proposals")
    put_to = page.get_by_role("group", name="Put to a network")
    choice = put_to.get_by_label(f"Every member co-op of {NETWORK}")
    page.get_by_label("Title").fill(PROPOSAL)
    page.get_by_label("Text (Markdown)").fill("Des prix **justes**, publiés, pour tous.")
    page.get_by_label("Options, one per line").fill("Pour\nContre\nAbstention")
    closes = datetime.now(UTC) + timedelta(days=3)
    page.get_by_label("Closes at (UTC)").fill(closes.strftime("%Y-%m-%dT%H:%M"))
    choice.check()
    desktop.screenshot("network-proposal-form-desktop")
    page.get_by_role("button", name="Open the proposal").click()
    page.wait_for_url(f"{food.base}proposals/*")
    assert page.get_by_role("heading", level=1).inner_text() == PROPOSAL
    desktop.screenshot("network-proposal-desktop")

    # The gîtes co-op's admin, on her phone, accepts the invitation.
    gites_admin = demo.login("gites")
    log_in(phone, gites, gites_admin.username, gites_admin.password, "fr")
    answering = phone.page
    answering.goto(f"{gites.base}admin/proposals")
    invitation = answering.locator("li.card", has_text=PROPOSAL)
    reload_until(
        phone,
        lambda: invitation.get_by_role("button", name="Participer").count() == 1,
        "the invitation never came",
    )
    fits(phone)
    phone.screenshot("network-invitation-phone")
    invitation.get_by_role("button", name="Participer").click()
    answering.wait_for_url("**/admin/proposals?answered=accept")
    assert status_of(answering).startswith("La coopérative participe")

    # A gîtes member votes on it from the proposal page.
    karim = next(x for x in demo.logins if x.handle == "gites" and x.username == "karim")
    log_in(desktop, gites, karim.username, karim.password, "en")
    page.goto(f"{gites.base}proposals")
    link = page.get_by_role("link", name=PROPOSAL)
    reload_until(desktop, lambda: link.count() == 1, "the members never saw it")
    link.click()
    page.wait_for_url("**/proposals/shared/*")
    pour = page.get_by_label("Pour", exact=True)
    reload_until(desktop, lambda: pour.count() == 1, "the vote never opened")
    pour.check()
    page.get_by_role("button", name="Vote", exact=True).click()
    assert "Your ballot is signed and sent to" in status_of(page)
    assert "Your ballot: Pour" in page.locator("main").inner_text()
    desktop.screenshot("network-proposal-voted-desktop")

    # The food network, which counts, has the ballot.
    log_in(phone, food, admin.username, admin.password, "en")
    phone.page.goto(f"{food.base}admin/proposals")
    counted = phone.page.locator("li.card", has_text=PROPOSAL)
    reload_until(phone, lambda: "Ballots: 1" in counted.inner_text(), "the ballot never came")
