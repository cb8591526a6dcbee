"""Logging in and out in a real browser, on a desktop and on a phone, and the admin
adding a member with the form; keyboard only where a member would use it."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import Watched
from tests.support.processes import ServeProcess, admin_token

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def accounts(node: ServeProcess) -> dict[str, str]:
    """An admin and a member, with passwords, added through the API."""
    headers = {"Authorization": f"Bearer {admin_token(node)}"}
    made = {"ana": "admin", "ben": "member"}
    with httpx.Client(base_url=node.base, headers=headers) as api:
        for name, role in made.items():
            added = api.post(
                "/api/v1/members",
                json={"username": name, "password": f"{name} password 1", "role": role},
            )
            assert added.status_code == 201, added.text
    return {name: f"{name} password 1" for name in made}


def test_a_member_logs_in_with_the_keyboard_and_out_again(
    node: ServeProcess, accounts: dict[str, str], desktop: Watched
) -> None:
    page = desktop.page
    page.goto(f"{node.base}/catalogue")
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Member name").fill("ben")
    page.get_by_label("Password").fill(accounts["ben"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{node.base}/catalogue")
    page.get_by_role("link", name="My page").click()
    assert page.get_by_role("heading", level=1).inner_text() == "My page"
    assert "ben@127.0.0.1" in page.content()
    cookie = next(c for c in page.context.cookies() if c["name"] == "coopnode_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    desktop.screenshot("me-desktop")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{node.base}/")
    assert not [c for c in page.context.cookies() if c["name"] == "coopnode_session"]


def test_a_wrong_password_is_said_in_french_on_a_phone(
    node: ServeProcess, accounts: dict[str, str], phone: Watched
) -> None:
    page = phone.page
    page.goto(f"{node.base}/login?lang=fr")
    page.get_by_label("Nom de membre").fill("ben")
    page.get_by_label("Mot de passe").fill("not the password")
    page.get_by_role("button", name="Se connecter").click()
    assert page.get_by_role("alert").inner_text().strip() == "Nom inconnu ou mot de passe erroné."
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    phone.screenshot("login-error-phone-fr")


def test_the_admin_adds_a_member_and_a_member_cannot(
    node: ServeProcess, accounts: dict[str, str], desktop: Watched
) -> None:
    page = desktop.page
    page.goto(f"{node.base}/admin/members")
    page.wait_for_url("**/login?next=/admin/members")
    page.get_by_label("Member name").fill("ana")
    page.get_by_label("Password").fill(accounts["ana"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{node.base}/admin/members")
    page.get_by_label("Member name (local member)").fill("chloe")
    page.get_by_label("Display name").fill("Chloé")
    page.get_by_label("Role").select_option("observer")
    page.get_by_role("button", name="Add").click()
    assert page.get_by_role("status").inner_text() == "Added: chloe@127.0.0.1:" + str(node.port)
    assert page.get_by_role("cell", name=f"chloe@127.0.0.1:{node.port}").count() == 1
    desktop.screenshot("admin-members")

    other = page.context.browser
    assert other is not None
    member = other.new_context()
    try:
        member_page = member.new_page()
        member_page.goto(f"{node.base}/login?next=/admin/members")
        member_page.get_by_label("Member name").fill("ben")
        member_page.get_by_label("Password").fill(accounts["ben"])
        member_page.get_by_role("button", name="Log in").click()
        member_page.wait_for_load_state()
        assert member_page.get_by_role("heading", level=1).inner_text() == "Not allowed"
    finally:
        member.close()
