"""A form whose text no column can hold (a NUL, an unpaired surrogate) is refused with
400 and the field named, never a 500 from the database further on."""

from __future__ import annotations

import pytest

from tests.node.members.test_members_store import add
from tests.node.web.ui.test_sessions import Browser
from tests.support.network import Network, TestNode


@pytest.fixture
async def alpha(network: Network) -> TestNode:
    node = await network.add("alpha.test")
    await add(node, username="ana", password="correct horse battery", role="admin")
    await add(node, username="ben", password="another good one")
    return node


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", "ben\x00"), ("password", "x\x00y"), ("next", "/me\x00")],
)
async def test_a_nul_in_the_login_form_is_refused_with_the_field_named(
    network: Network, alpha: TestNode, field: str, value: str
) -> None:
    browser = Browser(network, alpha)
    token = await browser.form_token("/login")
    data = {"csrf": token, "username": "ben", "password": "another good one", "next": "/me"}
    response = await browser.http.post("/login", data={**data, field: value})
    assert response.status_code == 400
    assert "cannot be stored" in response.text
    # The same form without it logs in: the refusal counted no failed attempt.
    assert (await browser.login("ben", "another good one")).status_code == 303


async def test_a_nul_in_an_admin_form_is_refused(network: Network, alpha: TestNode) -> None:
    browser = Browser(network, alpha)
    assert (await browser.login("ana", "correct horse battery")).status_code == 303
    token = await browser.form_token("/admin/members")
    response = await browser.http.post(
        "/admin/members", data={"csrf": token, "username": "eve\x00", "role": "member"}
    )
    assert response.status_code == 400
