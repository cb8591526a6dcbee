"""Fixtures of the browser tests: Debian's Chromium, driven by Playwright for Python,
against real ``coopnode serve`` processes on loopback.

Playwright's own browser download is never used: the browser is the system's
(``apt-get install chromium``; ``COOPNODE_CHROMIUM`` names another binary). Without it
the browser tests are skipped, except on CI (``CI=true``), where they fail. Every page
a test opens is watched for console errors and uncaught exceptions, and the tests save
screenshots of the pages they visit in ``tests/browser/screenshots/`` (git-ignored),
for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.processes import ServeProcess, start_serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PHONE = {"width": 360, "height": 740}
# What a page may weigh: HTML, stylesheet and script, photos apart.
MAX_PAGE_WEIGHT = 100_000


def chromium_path() -> str | None:
    named = os.environ.get("COOPNODE_CHROMIUM")
    if named:
        return named
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: while Playwright's synchronous API is open it holds
    # an event loop in this thread, and the suite's asyncio tests that follow need it
    # gone.
    path = chromium_path()
    if path is None:
        message = "Chromium not found (apt-get install chromium, or set COOPNODE_CHROMIUM)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watched:
    """A page, and every console error or uncaught exception it logged."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        """Save the page as ``name.png``, and check what it weighs (see :meth:`weight`)."""
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        weight = self.weight()
        with (SCREENSHOTS / "weights.txt").open("a", encoding="utf-8") as weights:
            weights.write(f"{name}\t{weight}\t{self.page.url}\n")
        assert weight < MAX_PAGE_WEIGHT, f"{name} weighs {weight} bytes"
        return path

    def weight(self) -> int:
        """Bytes the page's document, stylesheets and scripts took to load, as sent
        (before decompression), photos left out; the browser's cache counts nothing."""
        return int(
            self.page.evaluate(
                """() => performance.getEntriesByType("navigation")
                    .concat(performance.getEntriesByType("resource"))
                    .filter(e => e.initiatorType !== "img")
                    .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0)"""
            )
        )


def _watch(page: Page) -> Watched:
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # Chromium logs a page answered 4xx (a form sent back with its error) as a
        # failed load of the page itself; the tests check those statuses. A script,
        # stylesheet or image that fails to load is still an error.
        own_status = message.text.startswith("Failed to load resource") and (
            message.location.get("url") == page.url
        )
        if not own_status:
            watched.errors.append(f"console: {message.text} ({page.url})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(f"exception: {exc} ({page.url})"))
    return watched


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = _watch(context.new_page())
    try:
        yield watched
    finally:
        context.close()
    assert watched.errors == []


@pytest.fixture
def phone(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    watched = _watch(context.new_page())
    try:
        yield watched
    finally:
        context.close()
    assert watched.errors == []


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    served = start_serve(tmp_path_factory.mktemp("browser") / "node")
    try:
        served.wait_ready()
        yield served
    finally:
        served.stop()
