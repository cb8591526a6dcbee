"""A member votes from a phone in a real browser, then changes her vote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.browser.conftest import Watched
from tests.support.processes import ServeProcess, admin_token

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def proposal(node: ServeProcess) -> str:
    headers = {"Authorization": f"Bearer {admin_token(node)}"}
    with httpx.Client(base_url=node.base, headers=headers) as api:
        added = api.post(
            "/api/v1/members",
            json={"username": "dana", "password": "dana password 1", "joined_at": "2026-01-01"},
        )
        assert added.status_code == 201, added.text
        opened = api.post(
            "/api/v1/proposals",
            json={
                "title": "Adopt the 2027 delivery tariff",
                "text": "The **new** tariff, from March.",
                "options": ["For", "Against", "Abstain"],
                "rule": "majority",
                "allow_change": True,
                "closes_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
            },
        )
        assert opened.status_code == 201, opened.text
        key: str = opened.json()["id"]
    return key


def test_a_member_votes_from_a_phone_and_changes_her_vote(
    node: ServeProcess, proposal: str, phone: Watched
) -> None:
    page = phone.page
    page.goto(f"{node.base}/proposals")
    page.get_by_role("link", name="Adopt the 2027 delivery tariff").click()
    page.get_by_role("link", name="Log in to vote").click()
    page.get_by_label("Member name").fill("dana")
    page.get_by_label("Password").fill("dana password 1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{node.base}/proposals/{proposal}")
    page.get_by_label("For").check()
    page.get_by_role("button", name="Vote").click()
    assert page.get_by_role("status").inner_text() == "Your ballot is counted."
    assert page.get_by_label("For").is_checked()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    phone.screenshot("proposal-voted-phone")
    page.get_by_label("Against").check()
    page.get_by_role("button", name="Change my vote").click()
    assert "Your ballot: Against" in page.content()
