"""No page of the node can be shown inside another site's frame (clickjacking): every
HTML answer forbids it, whatever the route, the visitor or the status."""

from __future__ import annotations

import re

import httpx
from starlette.routing import Route

from node.web.framing import framing_headers
from tests.node.web.ui.test_pages import offer, publish
from tests.node.web.ui.test_proposal_pages import browser_of
from tests.support.coops import add_member, make_coop
from tests.support.network import Network

_PARAMETER = re.compile(r"\{(\w+)(:\w+)?\}")


def fill(path: str, values: dict[str, str]) -> str:
    """A route's path with its parameters filled in."""
    return _PARAMETER.sub(lambda m: values[m.group(1)], path)


def forbids_framing(response: httpx.Response) -> bool:
    policies = response.headers.get_list("content-security-policy")
    return response.headers.get("x-frame-options") == "DENY" and any(
        "frame-ancestors 'none'" in policy for policy in policies
    )


async def test_every_html_page_forbids_being_framed(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    await add_member(coop.node, username="ana", role="admin", joined_at="2026-01-01")
    published = await publish(coop.node, offer())
    offer_key = published["id"].rsplit("/", 1)[-1]
    proposal_key = (await coop.propose("m0"))["id"]
    values = {
        "username": "coop",
        "offer_id": "1",
        "slug": "apples",
        "name": "coop",
        "member_id": "1",
        "nonce": "n" * 43,
        "decision": "accept",
        "token": "1.proposal_opened." + "t" * 22,
    }
    admin = await browser_of(network, coop, "ana")
    member = await browser_of(network, coop, "m0")
    anonymous = httpx.AsyncClient(
        transport=network.router, base_url=coop.node.base, headers=admin.headers
    )

    paths = []
    for route in coop.node.app.routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()):
            continue
        key = proposal_key if route.path.startswith("/proposals") else offer_key
        paths.append(fill(route.path, {**values, "key": key}))
    pages: dict[str, list[int]] = {}
    for path in [*paths, "/no/such/page"]:
        for browser in (admin, member, anonymous):
            response = await browser.get(path)
            if response.headers.get("content-type", "").startswith("text/html"):
                assert forbids_framing(response), (path, response.headers)
                pages.setdefault(path, []).append(response.status_code)

    # The walk reached the pages that matter, as members and strangers see them.
    assert {
        "/",
        "/catalogue",
        "/login",
        f"/offers/{offer_key}",
        f"/proposals/{proposal_key}",
        "/admin/members",
        "/admin/federation",
        "/admin/proposals",
        "/@coop",
    } <= set(pages)
    assert 403 in pages["/admin/members"]  # a refusal is a page too


def test_a_policy_already_sent_keeps_its_directives_and_gains_frame_ancestors() -> None:
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-security-policy", b"default-src 'self';"),
        (b"x-frame-options", b"SAMEORIGIN"),
    ]

    merged = dict(framing_headers(headers))

    assert merged[b"content-security-policy"] == b"default-src 'self'; frame-ancestors 'none'"
    assert merged[b"x-frame-options"] == b"DENY"


def test_json_and_images_are_left_alone() -> None:
    for kind in (b"application/activity+json", b"image/png"):
        headers = [(b"content-type", kind), (b"content-security-policy", b"sandbox")]
        assert framing_headers(headers) == headers
