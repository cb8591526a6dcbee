"""Logging in from a browser: HTTP-only session cookies, a token on every form, the
login limited, roles enforced on every page, and sessions that end when they should."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from node.storage.tables import web_sessions
from tests.node.members.test_members_store import add
from tests.support.network import Network, TestNode

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """A client with its own cookie jar, as one browser is."""

    def __init__(self, network: Network, node: TestNode) -> None:
        self.node = node
        self.http = httpx.AsyncClient(
            transport=network.router, base_url=node.base, follow_redirects=False
        )

    async def form_token(self, path: str) -> str:
        page = await self.http.get(path)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found is not None, page.text
        return found.group(1)

    async def login(self, username: str, password: str, next_path: str = "/me") -> httpx.Response:
        token = await self.form_token("/login")
        return await self.http.post(
            "/login",
            data={"csrf": token, "username": username, "password": password, "next": next_path},
        )


@pytest.fixture
async def coop(network: Network) -> TestNode:
    node = await network.add("alpha.test")
    await add(node, username="ana", password="correct horse battery", role="admin")
    await add(node, username="ben", password="another good one")
    await add(node, username="cleo", password="a third password", role="observer")
    return node


async def sessions_stored(node: TestNode) -> int:
    query = select(func.count()).select_from(web_sessions)
    return int(await node.node.db.read(lambda conn: conn.execute(query).scalar_one()))


async def test_a_member_logs_in_with_a_secure_http_only_cookie_and_out_again(
    network: Network, coop: TestNode
) -> None:
    browser = Browser(network, coop)
    anonymous = await browser.http.get("/me")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/me"

    response = await browser.login("ben", "another good one")
    assert response.status_code == 303
    assert response.headers["location"] == "/me"
    cookie = next(h for h in response.headers.get_list("set-cookie") if "coopnode_session=" in h)
    # The node is https: the __Host- prefix, Secure, HttpOnly, SameSite=Lax, path /.
    assert cookie.startswith("__Host-coopnode_session=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute.lower() in cookie.lower()
    assert "Domain" not in cookie
    page = await browser.http.get("/me")
    assert page.status_code == 200
    assert "ben@alpha.test" in page.text
    assert page.headers["cache-control"] == "no-store"
    # Public pages know the member too: their menu leads to her page, not to the login.
    catalogue = (await browser.http.get("/catalogue")).text
    assert 'href="/me"' in catalogue
    assert "/login?next=" not in catalogue
    assert "/login?next=/catalogue" in (await network.http.get(coop.base + "/catalogue")).text

    # Logging out needs the page's token; then the cookie opens nothing.
    stolen = browser.http.cookies.get("__Host-coopnode_session")
    refused = await browser.http.post("/logout", data={"csrf": "guessed"})
    assert refused.status_code == 403
    token = CSRF.search(page.text)
    assert token is not None
    out = await browser.http.post("/logout", data={"csrf": token.group(1)})
    assert out.status_code == 303
    assert await sessions_stored(coop) == 0
    replay = await network.http.get(
        coop.base + "/me", headers={"Cookie": f"__Host-coopnode_session={stolen}"}
    )
    assert replay.status_code == 303


async def test_forms_from_elsewhere_or_without_their_token_change_nothing(
    network: Network, coop: TestNode
) -> None:
    browser = Browser(network, coop)
    token = await browser.form_token("/login")
    good = {"csrf": token, "username": "ben", "password": "another good one", "next": "/me"}

    no_token = await browser.http.post("/login", data={**good, "csrf": ""})
    other_token = await browser.http.post("/login", data={**good, "csrf": "x" * 43})
    cross_site = await browser.http.post(
        "/login", data=good, headers={"Sec-Fetch-Site": "cross-site"}
    )
    other_origin = await browser.http.post(
        "/login", data=good, headers={"Origin": "https://evil.test"}
    )
    json_body = await browser.http.post("/login", json=good)
    huge = await browser.http.post("/login", data={**good, "padding": "x" * 70_000})

    async def endless() -> AsyncIterator[bytes]:  # chunked: no length given
        yield b"csrf=" + token.encode()

    unmeasured = await browser.http.post(
        "/login",
        content=endless(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert [r.status_code for r in (no_token, other_token, cross_site, other_origin)] == [403] * 4
    assert "did not come from this site" in no_token.text
    assert json_body.status_code == 422
    assert huge.status_code == 413
    assert unmeasured.status_code == 413
    assert await sessions_stored(coop) == 0
    # Without a form cookie (a page from another site posting here), no token matches.
    fresh = httpx.AsyncClient(transport=network.router, base_url=coop.base)
    forged = await fresh.post("/login", data=good)
    assert forged.status_code == 403
    assert await sessions_stored(coop) == 0


async def test_wrong_passwords_are_limited_and_say_nothing_of_the_name(
    network: Network, coop: TestNode
) -> None:
    browser = Browser(network, coop)
    unknown = await browser.login("nobody", "whatever")
    wrong = [await browser.login("ben", f"guess {n}") for n in range(5)]
    limited = await browser.login("ben", "another good one")

    assert unknown.status_code == 400
    assert "Unknown name or wrong password" in unknown.text
    assert [r.status_code for r in wrong] == [400] * 5
    assert limited.status_code == 429
    assert "Too many failed attempts" in limited.text
    assert await sessions_stored(coop) == 0
    network.clock.advance(15 * 60)
    assert (await browser.login("ben", "another good one")).status_code == 303


@pytest.mark.parametrize(
    "next_path",
    ["//evil.test/", "https://evil.test/", "/\\evil.test", "javascript:alert(1)", "me"],
)
async def test_after_login_the_member_stays_on_this_node(
    network: Network, coop: TestNode, next_path: str
) -> None:
    response = await Browser(network, coop).login("ben", "another good one", next_path)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_roles_are_enforced_on_every_admin_page_and_form(
    network: Network, coop: TestNode
) -> None:
    member, observer, admin = (Browser(network, coop) for _ in range(3))
    await member.login("ben", "another good one")
    await observer.login("cleo", "a third password")
    await admin.login("ana", "correct horse battery")

    assert (await member.http.get("/admin/members")).status_code == 403
    assert (await observer.http.get("/admin/members")).status_code == 403
    token = CSRF.search((await member.http.get("/me")).text)
    assert token is not None
    sneaked = await member.http.post(
        "/admin/members", data={"csrf": token.group(1), "username": "mallory"}
    )
    assert sneaked.status_code == 403

    page = await admin.http.get("/admin/members")
    assert page.status_code == 200
    assert "ben@alpha.test" in page.text
    admin_token = await admin.form_token("/admin/members")
    added = await admin.http.post(
        "/admin/members",
        data={"csrf": admin_token, "username": "dora", "name": "Dora", "password": "pw dora 1"},
    )
    assert added.status_code == 303
    assert added.headers["location"] == "/admin/members?added=dora@alpha.test"
    invalid = await admin.http.post(
        "/admin/members", data={"csrf": admin_token, "username": "Not A Name!"}
    )
    assert invalid.status_code == 400
    assert 'aria-invalid="true"' in invalid.text
    listed = (await admin.http.get("/admin/members")).text
    assert "dora@alpha.test" in listed
    assert "mallory" not in listed


async def test_an_ended_membership_ends_its_sessions(network: Network, coop: TestNode) -> None:
    browser = Browser(network, coop)
    await browser.login("ben", "another good one")
    assert (await browser.http.get("/me")).status_code == 200
    members: list[dict[str, Any]] = (
        await coop.request("GET", "/api/v1/members", headers=coop.auth)
    ).json()["items"]
    ben = next(m for m in members if m["handle"] == "ben@alpha.test")
    removed = await coop.request("DELETE", f"/api/v1/members/{ben['id']}", headers=coop.auth)
    assert removed.status_code == 200, removed.text

    assert (await browser.http.get("/me")).status_code == 303
    assert await sessions_stored(coop) == 0
