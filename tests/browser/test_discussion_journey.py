"""Hearing of a vote by email and talking before it, end to end, in Chromium, against two
real ``coopnode serve`` processes and a real SMTP server (aiosmtpd on a loopback port):

a member of the food network gives her address on her phone, in French, and confirms it
from the link she is sent; her co-op opens a proposal shared with the marketplace; the
opening email reaches her in French with a link straight to the vote; she asks a
question under it; a member of the marketplace, on his own node, sees it there and
answers; her page shows both, his marked as from a co-op taking part. After the close
(the food network's node restarted an hour later by its clock) the outcome email
arrives."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Watched
from tests.browser.test_journeys import fits
from tests.support.processes import ServeProcess, admin_token, free_port, run_coopnode, start_serve
from tests.support.smtp import MailServer, Received

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

TITLE = "Ouvrir un second point de retrait"
VERIFY_LINK = re.compile(r"(http://\S+/mail/verify/\S+)")
PROPOSAL_LINK = re.compile(r"(http://\S+/proposals/[\w-]+)")


@dataclass
class Nodes:
    root: Path
    smtp: MailServer
    food: ServeProcess
    market: ServeProcess
    food_token: str
    market_token: str
    env: dict[str, str]

    def restart_food(self, env: dict[str, str]) -> None:
        self.food.stop()
        self.food = start_serve(self.food.data_dir, self.food.port, env={**self.env, **env})
        self.food.wait_ready(timeout=60)


def api(base: str, token: str, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method, base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
    )
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def member(node: ServeProcess, token: str, username: str, name: str) -> str:
    password = f"{username}-password-2027"
    api(
        node.base,
        token,
        "POST",
        "/api/v1/members",
        json={
            "username": username,
            "name": name,
            "role": "member",
            "joined_at": "2026-01-01",
            "password": password,
        },
    )
    return password


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    smtp = MailServer()
    smtp.start()
    root = tmp_path_factory.mktemp("discussion")
    food_port, market_port = free_port(), free_port()
    env = {
        "COOPNODE_SMTP_HOST": "127.0.0.1",
        "COOPNODE_SMTP_PORT": str(smtp.port),
        "COOPNODE_SMTP_SECURITY": "none",
    }
    food = start_serve(root / "food", food_port, "--name", "Réseau alimentaire", env=env)
    market = start_serve(
        root / "market",
        market_port,
        "--name",
        "Marché équitable",
        env={**env, "COOPNODE_ACCEPT_SHARED_FROM": f"http://127.0.0.1:{food_port}/actors/coop"},
    )
    made = Nodes(root, smtp, food, market, "", "", env)
    try:
        food.wait_ready(timeout=60)
        market.wait_ready(timeout=60)
        made.food_token, made.market_token = admin_token(food), admin_token(market)
        # The marketplace follows the food network: it takes part in its shared votes.
        followed = run_coopnode(
            "follow",
            f"coop@127.0.0.1:{food_port}",
            "--data-dir",
            str(root / "market"),
            env=env,
        )
        assert followed.returncode == 0, followed.stdout + followed.stderr
        yield made
    finally:
        made.food.stop()
        made.market.stop()
        smtp.stop()


def wait_for_mail(smtp: MailServer, address: str, subject: str, seconds: float = 60) -> Received:
    deadline = time.monotonic() + seconds
    while True:
        found = [m for m in smtp.to(address) if m.subject.startswith(subject)]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, [m.subject for m in smtp.to(address)]
        time.sleep(0.2)


def wait_for_text(watched: Watched, text: str, seconds: float = 60) -> None:
    """Reload until the page says ``text``: it travels between processes."""
    deadline = time.monotonic() + seconds
    while text not in watched.page.content():
        assert time.monotonic() < deadline, watched.page.locator("main").inner_text()
        watched.page.wait_for_timeout(500)
        watched.page.reload()


def log_in(watched: Watched, base: str, username: str, password: str, lang: str) -> None:
    page = watched.page
    page.goto(f"{base}/login?lang={lang}")
    page.get_by_label("Nom de membre" if lang == "fr" else "Member name").fill(username)
    page.get_by_label("Mot de passe" if lang == "fr" else "Password").fill(password)
    with page.expect_navigation():
        page.get_by_label("Mot de passe" if lang == "fr" else "Password").press("Enter")


def test_a_member_hears_of_the_vote_by_email_and_the_thread_crosses_nodes(
    nodes: Nodes, phone: Watched, desktop: Watched
) -> None:
    food, market, smtp = nodes.food, nodes.market, nodes.smtp
    ana_password = member(food, nodes.food_token, "ana", "Ana Lefèvre")
    ben_password = member(market, nodes.market_token, "ben", "Ben Moreau")

    # Ana gives her address on her phone, in French, and confirms it from its link.
    log_in(phone, food.base, "ana", ana_password, "fr")
    page = phone.page
    page.goto(f"{food.base}/me/notifications")
    page.get_by_label("Adresse e-mail").fill("ana@mail.test")
    page.get_by_label("Langue des e-mails").select_option("fr")
    with page.expect_navigation():
        page.get_by_role("button", name="Enregistrer").click()
    assert "saved=1" in page.url
    fits(phone)
    confirmation = wait_for_mail(smtp, "ana@mail.test", "Confirmez votre adresse e-mail")
    link = VERIFY_LINK.search(confirmation.text)
    assert link is not None, confirmation.text
    page.goto(link.group(1))
    with page.expect_navigation():
        page.get_by_role("button", name="Confirmer mon adresse").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Votre adresse est confirmée"

    # Her co-op opens a proposal shared with the marketplace.
    closes = datetime.now(UTC) + timedelta(minutes=10)
    created = api(
        food.base,
        nodes.food_token,
        "POST",
        "/api/v1/proposals",
        json={
            "title": TITLE,
            "text": "Le samedi matin, place du marché.",
            "options": ["Pour", "Contre"],
            "rule": "majority",
            "quorum": "0%",
            "closes_at": closes.isoformat(),
            "electorate": [f"coop@127.0.0.1:{market.port}"],
        },
    )

    # The opening email, in French, leads straight to the vote.
    opening = wait_for_mail(smtp, "ana@mail.test", f"{TITLE} : votez jusqu’au")
    assert "Une proposition est ouverte au vote" in opening.text
    assert opening.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    to_vote = PROPOSAL_LINK.search(opening.text)
    assert to_vote is not None, opening.text
    assert to_vote.group(1) == f"{food.base}/proposals/{created['id']}"
    page.goto(to_vote.group(1))
    assert page.get_by_role("heading", level=1).inner_text() == TITLE

    # She asks a question under it.
    page.get_by_label("Posez une question ou donnez votre avis").fill(
        "Qui tiendra le point de retrait ?"
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer le commentaire").click()
    assert "Qui tiendra le point de retrait ?" in page.locator("#discussion").inner_text()
    fits(phone)
    phone.screenshot("thread-question-phone")

    # Ben, on the marketplace's node, sees it under the shared proposal and answers.
    ben = httpx.post(
        f"{market.base}/api/v1/login",
        json={"username": "ben", "password": ben_password},
        timeout=30,
    ).json()["token"]
    deadline = time.monotonic() + 60
    shared: list[Any] = []
    while not shared:
        assert time.monotonic() < deadline, "the shared proposal never reached the marketplace"
        shared = api(market.base, ben, "GET", "/api/v1/proposals")["shared"]
        time.sleep(0.5)
    log_in(desktop, market.base, "ben", ben_password, "en")
    desk = desktop.page
    desk.goto(f"{market.base}/proposals/shared/{shared[0]['id']}?lang=en")
    wait_for_text(desktop, "Qui tiendra le point de retrait ?")
    question = desk.locator("li.card", has_text="Qui tiendra le point de retrait ?")
    question.get_by_text("Reply", exact=True).click()
    question.get_by_label("Your reply to Ana Lefèvre").fill("Notre équipe, le samedi.")
    with desk.expect_navigation():
        question.get_by_role("button", name="Send the reply").click()
    assert "Notre équipe, le samedi." in desk.locator("#discussion").inner_text()
    desktop.screenshot("thread-reply-desktop")

    # Ana's page shows both, Ben's answer marked as from a co-op taking part.
    wait_for_text(phone, "Notre équipe, le samedi.")
    answer = page.locator("li.card", has_text="Notre équipe, le samedi.")
    assert "Ben Moreau" in answer.inner_text()
    assert "d’une coopérative qui prend part au vote" in answer.inner_text()
    assert "en réponse à Ana Lefèvre" in answer.inner_text()
    texts = page.locator("#discussion li.card").all_inner_texts()
    assert [("Qui tiendra" in t, "Notre équipe" in t) for t in texts] == [
        (True, False),
        (False, True),
    ]
    fits(phone)
    phone.screenshot("thread-both-phone")

    # An hour later by its clock the vote has closed: the outcome email arrives.
    nodes.restart_food({"COOPNODE_CLOCK_OFFSET": "3600"})
    outcome = wait_for_mail(smtp, "ana@mail.test", f"Résultat : {TITLE}", seconds=90)
    assert TITLE in outcome.text
    assert f"{food.base}/proposals/{created['id']}" in outcome.text
