"""The member's and the admin's journeys, end to end, in Chromium, across the three co-ops
of ``coopnode demo`` (and a fourth co-op that starts apart, for the admin to follow).

The member journey runs twice, on a desktop in English and on a 360-pixel phone in
French: log in, search the federated catalogue for "miel", open the marketplace's
honey, publish an offer with a photo, vote on the proposal the tourism co-op shares,
change the vote, and see the counts move without reloading. The admin journey runs on
the food network: add a member, link a fediverse account, follow a new co-op by its
handle and watch its offers come in, approve that co-op's follow, block a domain, open
a shared proposal from the form that lists the co-ops followed, and see the peer that
fails delivery and why. Last, after the votes close, the outcome with its chart per
college and the node's recount of it.

Every page is watched for console errors, and the main pages are saved as screenshots.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser.conftest import PHONE, Watched
from tests.node.web.test_media import png
from tests.support.demo import DemoInfo, DemoNodeInfo, start_demo
from tests.support.processes import ServeProcess, admin_token, run_coopnode, start_serve

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Long enough for the journeys that vote; the last test waits for the close.
CLOSES_IN_MINUTES = 2.5
SHARED_TITLE = "Guide commun « Goûter le territoire » / A joint 'Taste the region' guide"


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoInfo]:
    process = start_demo(None, "--closes-in", str(CLOSES_IN_MINUTES))
    try:
        yield process.wait_ready(timeout=120)
    finally:
        # SIGTERM here (a service manager's stop); tests/node/demo/test_demo.py sends Ctrl-C.
        code = process.stop(signal.SIGTERM)
        output = process.read_output()
        assert code == 0, output
        assert "Traceback" not in output, output
        assert "The demo stopped." in output


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A fourth co-op, started apart with ``coopnode serve``: three offers and a member."""
    served = start_serve(tmp_path_factory.mktemp("newcomer") / "node")
    try:
        served.wait_ready()
        headers = {"Authorization": f"Bearer {admin_token(served)}"}
        with httpx.Client(base_url=served.base, headers=headers, timeout=10) as api:
            for fr, en in (
                ("Confiture d'abricots", "Apricot jam"),
                ("Sirop de sureau", "Elderflower syrup"),
                ("Pain au levain", "Sourdough bread"),
            ):
                made = api.post(
                    "/api/v1/offers",
                    json={
                        "title": {"fr": fr, "en": en},
                        "categories": ["honey"],
                        "unit": "piece",
                        "price": {"amount": "4.20", "currency": "EUR"},
                    },
                )
                assert made.status_code == 201, made.text
            member = api.post(
                "/api/v1/members",
                json={"username": "zoe", "password": "zoe password 1", "joined_at": "2026-01-01"},
            )
            assert member.status_code == 201, member.text
        yield served
    finally:
        served.stop()


def _domain(base: str) -> str:
    return base.split("://", 1)[1].rstrip("/")


def log_in(watched: Watched, node: DemoNodeInfo, username: str, password: str, lang: str) -> None:
    page = watched.page
    page.goto(f"{node.base}catalogue?lang={lang}")
    menu = page.get_by_role("navigation", name="Menu principal" if lang == "fr" else "Main menu")
    menu.get_by_role("link", name="Se connecter" if lang == "fr" else "Log in").click()
    page.get_by_label("Nom de membre" if lang == "fr" else "Member name").fill(username)
    page.get_by_label("Mot de passe" if lang == "fr" else "Password").fill(password)
    page.get_by_label("Mot de passe" if lang == "fr" else "Password").press("Enter")
    page.wait_for_url(f"{node.base}catalogue")


def status_of(page: Page) -> str:
    """The page's notice; failing with the page's error message if it has one instead."""
    errors = page.locator("[role=alert]").all_inner_texts()
    assert errors == [], errors
    return page.get_by_role("status").inner_text()


def fits(watched: Watched) -> None:
    """Nothing wider than the screen, on a phone."""
    width = watched.page.viewport_size
    if width is not None and width["width"] == PHONE["width"]:
        assert watched.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def member_journey(watched: Watched, demo: DemoInfo, username: str, lang: str, name: str) -> None:
    food, marche = demo.nodes["food"], demo.nodes["marche"]
    who = next(x for x in demo.logins if x.handle == "food" and x.username == username)
    page = watched.page
    fr = lang == "fr"
    log_in(watched, food, who.username, who.password, lang)

    # The federated catalogue: the marketplace's honey, found from the food network.
    page.get_by_label("Mots" if fr else "Words").fill("miel")
    page.get_by_role("button", name="Chercher" if fr else "Search").click()
    page.wait_for_url("**/catalogue?*q=miel*")
    fits(watched)
    watched.screenshot(f"catalogue-miel-{name}")
    title = "Miel de lavande, pot de 500 g" if fr else "Lavender honey, 500 g jar"
    page.get_by_role("link", name=title).click()
    assert page.get_by_role("heading", level=1).inner_text() == title
    origin = _domain(marche.base)
    assert page.get_by_role(
        "link", name=f"{'Voir cette offre sur' if fr else 'See this offer on'} {origin}"
    ).is_visible()
    fits(watched)
    watched.screenshot(f"offer-federated-{name}")

    # Her own offer, with a photo.
    page.goto(f"{food.base}me")
    page.get_by_role("link", name="Publier une offre" if fr else "Publish an offer").first.click()
    offer_title = f"Apricot jam from {username}"
    page.get_by_label("Titre en anglais" if fr else "Title in English").fill(offer_title)
    page.get_by_label("Catégories" if fr else "Categories").fill("honey")
    page.get_by_label("Prix par unité" if fr else "Price per unit").fill("6.50")
    page.locator("#photo").set_input_files(
        {"name": "jam.png", "mimeType": "image/png", "buffer": png(4, 3)}
    )
    page.locator("#photo_description").fill("Three jars of apricot jam")
    fits(watched)
    watched.screenshot(f"offer-form-{name}")
    page.get_by_role("button", name="Publier" if fr else "Publish", exact=True).click()
    page.wait_for_url("**/me/offers?published=*")
    assert page.get_by_role("status").is_visible()
    page.get_by_role("link", name="La voir" if fr else "See it", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == offer_title
    photo = page.get_by_role("img", name="Three jars of apricot jam")
    # Waits for the picture to be laid out and decoded: on a busy machine it may not be
    # yet when the heading is.
    photo.wait_for(state="visible")
    assert photo.evaluate("img => img.decode().then(() => img.naturalWidth)") == 4
    fits(watched)
    watched.screenshot(f"offer-own-{name}")

    # The shared proposal: vote, change the vote, and see the counts move.
    page.goto(f"{food.base}proposals")
    page.get_by_role("link", name=SHARED_TITLE).click()
    page.wait_for_url("**/proposals/shared/*")
    page.get_by_label("Pour / For").check()
    page.get_by_role("button", name="Voter" if fr else "Vote", exact=True).click()
    assert page.get_by_role("status").is_visible()
    voters_before = int(page.locator("[data-voters]").inner_text().replace("\u202f", ""))
    page.get_by_label("Contre / Against").check()
    page.get_by_role("button", name="Changer mon vote" if fr else "Change my vote").click()
    assert ("Votre bulletin : Contre / Against" if fr else "Your ballot: Contre / Against") in (
        page.content()
    )
    fits(watched)
    watched.screenshot(f"proposal-shared-{name}")
    # The tourism co-op counts the ballot and sends its counts to the food network; the
    # page's script reads them there, without a reload.
    url = page.url
    shown = "Number(document.querySelector('[data-voters]').textContent.replace(/\\D/g, ''))"
    page.wait_for_function(f"{shown} > {voters_before}", timeout=90_000)
    assert page.url == url
    my_page = page.goto(f"{food.base}me")
    assert my_page is not None
    assert my_page.ok
    assert page.get_by_text("Contre / Against").first.is_visible()


def test_a_member_journey_on_a_desktop(demo: DemoInfo, desktop: Watched) -> None:
    member_journey(desktop, demo, "paul", "en", "desktop")


def test_the_member_journey_on_a_phone_in_french(demo: DemoInfo, phone: Watched) -> None:
    member_journey(phone, demo, "sofia", "fr", "phone")


def test_the_admin_journey(demo: DemoInfo, newcomer: ServeProcess, desktop: Watched) -> None:
    food = demo.nodes["food"]
    admin = demo.login("food")
    page = desktop.page
    log_in(desktop, food, admin.username, admin.password, "en")
    newcomer_domain = f"127.0.0.1:{newcomer.port}"

    # A member, then a fediverse account linked as a member.
    page.goto(f"{food.base}admin/members")
    page.get_by_label("Member name (local member)").fill("lea")
    page.get_by_label("Display name").fill("Léa Petit")
    page.get_by_label("Password").fill("lea password 1")
    page.get_by_label("College").select_option("guests")
    page.get_by_role("button", name="Add").click()
    assert "Added: lea@" in status_of(page)
    page.get_by_label("Or a fediverse account to link (user@server)").fill(f"zoe@{newcomer_domain}")
    page.get_by_label("College").select_option("partners")
    page.get_by_role("button", name="Add").click()
    assert f"Added: zoe@{newcomer_domain}" in status_of(page)
    desktop.screenshot("admin-members")

    # Follow the newcomer by its handle, and watch its offers come in.
    page.goto(f"{food.base}admin/federation")
    page.get_by_label("Follow a co-op", exact=False).fill(f"coop@{newcomer_domain}")
    page.get_by_role("button", name="Follow", exact=True).click()
    assert page.get_by_role("status").is_visible()
    deadline = time.monotonic() + 30
    while "3 offers imported" not in page.content():
        assert time.monotonic() < deadline, page.content()
        page.wait_for_timeout(500)
        page.reload()
    desktop.screenshot("admin-federation-following")

    # The newcomer follows the food network, which approves its followers.
    followed = run_coopnode(
        "follow", f"food@{_domain(food.base)}", "--data-dir", str(newcomer.data_dir)
    )
    assert followed.returncode == 0, followed.stderr
    newcomer_actor = f"http://{newcomer_domain}/actors/coop"
    approve = page.locator(
        "form", has=page.locator(f"input[value='{newcomer_actor}']")
    ).get_by_role("button", name="Approve")
    deadline = time.monotonic() + 30
    while not approve.count():
        assert time.monotonic() < deadline, page.content()
        page.wait_for_timeout(500)
        page.reload()
    desktop.screenshot("admin-federation-pending")
    approve.click()
    assert page.get_by_role("status").is_visible()
    assert not approve.count()

    # The newcomer goes offline: what the food network sends it from now on fails.
    newcomer.stop()

    # Block a domain.
    page.get_by_label("Domain").fill("spam.example")
    page.get_by_label("Reason (for the record)").fill("Unsolicited adverts")
    page.get_by_label("Decision").select_option("block")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("cell", name="spam.example").is_visible()
    assert page.get_by_role("cell", name="Unsolicited adverts").is_visible()

    # Open a shared proposal: the form lists the co-ops followed.
    page.goto(f"{food.base}admin/proposals")
    shared_with = page.get_by_role("group", name="Co-ops that vote too")
    for coop in ("Marché équitable", "Escapades coopératives du Vercors"):
        assert shared_with.get_by_text(coop).is_visible()
    assert shared_with.get_by_text(f"coop@{newcomer_domain}").is_visible()
    page.get_by_label("Title").fill("Pool our deliveries to Lyon")
    page.get_by_label("Text (Markdown)").fill("One van, **three** co-ops.")
    page.get_by_label("Options, one per line").fill("For\nAgainst\nAbstain")
    closes = datetime.now(UTC) + timedelta(days=3)
    page.get_by_label("Closes at (UTC)").fill(closes.strftime("%Y-%m-%dT%H:%M"))
    shared_with.get_by_label("Marché équitable", exact=False).check()
    desktop.screenshot("admin-proposals-form")
    page.get_by_role("button", name="Open the proposal").click()
    page.wait_for_url(f"{food.base}proposals/*")
    assert page.get_by_role("heading", level=1).inner_text() == "Pool our deliveries to Lyon"

    # The marketplace receives it.
    marche = demo.nodes["marche"]
    with httpx.Client(timeout=10) as http:
        member = demo.login("marche", "member")
        token = http.post(
            f"{marche.base}api/v1/login",
            json={"username": member.username, "password": member.password},
        ).json()["token"]
        deadline = time.monotonic() + 30
        while True:
            shared = http.get(
                f"{marche.base}api/v1/proposals", headers={"Authorization": f"Bearer {token}"}
            ).json()["shared"]
            if any(p["title"] == "Pool our deliveries to Lyon" for p in shared):
                break
            assert time.monotonic() < deadline, shared
            time.sleep(0.5)

    # The offline newcomer shows as failing, with the reason.
    page.goto(f"{food.base}admin/federation")
    deadline = time.monotonic() + 30
    health = page.locator("table", has=page.locator("caption", has_text="Other servers"))
    row = health.locator("tr", has_text=newcomer_domain)

    def failing() -> bool:
        return bool(row.count()) and "failing" in row.inner_text()

    while not failing():
        assert time.monotonic() < deadline, page.content()
        page.wait_for_timeout(1000)
        page.reload()
    assert row.locator("td").nth(5).inner_text().strip() != ""  # why it fails
    desktop.screenshot("admin-federation-health")
    page.goto(f"{food.base}admin/queues")
    assert newcomer_domain in page.content()
    desktop.screenshot("admin-queues")


def test_after_the_close_the_outcome_has_a_chart_per_college_and_a_recount(
    demo: DemoInfo, desktop: Watched
) -> None:
    assert demo.closes_at is not None
    food = demo.nodes["food"]
    paul = next(x for x in demo.logins if x.username == "paul")
    log_in(desktop, food, paul.username, paul.password, "en")
    page = desktop.page
    page.goto(f"{food.base}proposals")
    page.get_by_role("link", name=SHARED_TITLE).click()
    # The link's navigation ends first: a page asked again while it is under way
    # interrupts it, and the address read before it ends is the list's.
    page.wait_for_url("**/proposals/shared/*")
    shared_page = page.url
    wait = (demo.closes_at - datetime.now(UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait)
    deadline = time.monotonic() + 60
    while not page.get_by_role("heading", name="Outcome").count():
        assert time.monotonic() < deadline, page.content()
        page.wait_for_timeout(1000)
        page.goto(shared_page)
    chart = page.get_by_role("img", name=f"{SHARED_TITLE}: colleges")
    assert chart.is_visible()
    for college in ("workers", "guests", "partners"):
        assert college in chart.inner_html()
    assert page.get_by_role("heading", name="By college").is_visible()
    desktop.screenshot("proposal-outcome")
    page.get_by_role("link", name="See this node’s recount of the published ballots").click()
    assert page.get_by_role("status").inner_text() == (
        "Verified: the published result is the recount’s."
    )
    desktop.screenshot("proposal-recount")
    assert Path(__file__).parent.joinpath("screenshots", "proposal-recount.png").exists()
