"""The co-op's public profile in a real browser, on a desktop and on a phone."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Watched
from tests.support.processes import ServeProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_the_profile_reads_on_a_desktop_without_console_errors(
    node: ServeProcess, desktop: Watched
) -> None:
    page = desktop.page
    response = page.goto(f"{node.base}/actors/coop")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert page.locator("h1").count() == 1
    assert "@coop@127.0.0.1" in page.content()
    desktop.screenshot("profile-desktop")


def test_the_profile_fits_a_phone_screen(node: ServeProcess, phone: Watched) -> None:
    page = phone.page
    page.goto(f"{node.base}/actors/coop")
    # Nothing wider than the 360-pixel screen: no sideways scrolling.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360
    phone.screenshot("profile-phone")
