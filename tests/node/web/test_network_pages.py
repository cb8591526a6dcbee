"""The networks in the browser: a hosted network's public directory (by sector, narrowed,
as JSON for programs, with nothing loaded from elsewhere), a member's page, the admin's
page that creates networks, decides on applications and joins others' networks, and
NodeInfo naming the networks hosted here.

Co-ops join through the real flow: a Join from their own node, answered by the
network's node once the admin decides."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from node.networks import hosting, joining, reading
from node.networks.model import State
from node.web.ui import network_pages
from tests.node.members.test_members_store import add
from tests.node.web.ui.test_pages import HTML, check_structure, offer, publish
from tests.node.web.ui.test_sessions import Browser
from tests.support.network import Network, TestNode

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HOSTILE = "<script>alert(1)</script>"
JSON = {"Accept": "application/json"}


def serve_pages(test_node: TestNode) -> None:
    """The network pages on ``test_node``'s app, where the app does not serve them yet."""
    routes = test_node.app.router.routes
    paths = {getattr(route, "path", None) for route in routes}
    if "/networks/{name}" not in paths:
        routes[0:0] = network_pages.ROUTES


async def node_at(network: Network, domain: str, name: str) -> TestNode:
    found = await network.add(domain, name=name)
    serve_pages(found)
    return found


async def apply(network: Network, coop: TestNode, sector: str, region: str) -> str:
    result = await joining.join(coop.node, "bio@alpha.test", sector=sector, region=region)
    assert result.sent
    await network.settle()
    return f"{coop.base}/actors/coop"


async def hosted_with_members(network: Network) -> tuple[TestNode, dict[str, TestNode]]:
    """Alpha hosts "bio"; three co-ops applied from their nodes and were admitted."""
    alpha = await node_at(network, "alpha.test", "Alpha Market")
    await hosting.create_network(
        alpha.node,
        name="bio",
        title="Bio Network",
        summary="Organic producers.",
        charter="We trade fairly.\nWe pay on time.",
    )
    coops = {
        "beta": await node_at(network, "beta.test", "Beta Farm"),
        "gamma": await node_at(network, "gamma.test", HOSTILE),
        "delta": await node_at(network, "delta.test", "Delta Bakery"),
    }
    where = {"beta": ("food", "Alsace"), "gamma": ("crafts", "Bretagne")}
    for key, coop in coops.items():
        sector, region = where.get(key, ("food", "Bretagne"))
        actor = await apply(network, coop, sector, region)
        await hosting.approve(alpha.node, "bio", actor)
    await network.settle()
    return alpha, coops


async def browse(test_node: TestNode, path: str) -> httpx.Response:
    return await test_node.get(path, headers=HTML)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action", "srcset", "poster", "data") and value:
                self.urls.append(value)


def urls_of(body: str) -> list[str]:
    parsed = Links()
    parsed.feed(body)
    return parsed.urls


def names_in(body: str) -> list[str]:
    return re.findall(r"<h4><a href=\"[^\"]+\">([^<]+)</a></h4>", body)


async def test_the_directory_lists_the_members_by_sector_and_narrows_them(
    network: Network,
) -> None:
    alpha, _ = await hosted_with_members(network)

    page = await browse(alpha, "/networks/bio")
    assert page.status_code == 200, page.text
    check_structure(page.text)
    body = page.text
    assert "<h1>Bio Network</h1>" in body
    assert "<p>We trade fairly.</p>" in body
    assert "We pay on time." in body
    assert "@bio@alpha.test" in body
    assert "decide on each application" in body
    assert "3 members" in body
    # By sector (crafts before food), by name within a sector.
    assert body.index("<h3>crafts</h3>") < body.index("<h3>food</h3>")
    assert names_in(body) == ["&lt;script&gt;alert(1)&lt;/script&gt;", "Beta Farm", "Delta Bakery"]
    assert "Alsace" in body
    assert "Bretagne" in body
    assert "https://beta.test/actors/coop" in body

    food = await browse(alpha, "/networks/bio?sector=food")
    assert names_in(food.text) == ["Beta Farm", "Delta Bakery"]
    assert "2 members match." in food.text
    breton = await browse(alpha, "/networks/bio?region=Bretagne")
    assert names_in(breton.text) == ["&lt;script&gt;alert(1)&lt;/script&gt;", "Delta Bakery"]
    both = await browse(alpha, "/networks/bio?region=Bretagne&sector=food")
    assert names_in(both.text) == ["Delta Bakery"]
    searched = await browse(alpha, "/networks/bio?q=bakery")
    assert names_in(searched.text) == ["Delta Bakery"]
    nothing = await browse(alpha, "/networks/bio?q=nobody")
    assert names_in(nothing.text) == []
    assert "No member matches this search." in nothing.text
    french = await browse(alpha, "/networks/bio?lang=fr")
    assert "Charte" in french.text
    assert "3 membres" in french.text
    check_structure(french.text)


async def test_the_directory_escapes_hostile_names_and_loads_nothing_from_elsewhere(
    network: Network,
) -> None:
    alpha, coops = await hosted_with_members(network)
    members = {f"{coop.base}/actors/coop" for coop in coops.values()}

    for path in ("/networks/bio", "/networks/bio?sector=crafts"):
        body = (await browse(alpha, path)).text
        assert HOSTILE not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "<script" not in body
        for url in urls_of(body):
            if url.startswith(("http://", "https://", "//")):
                assert url in members, url
            else:
                assert url.startswith(("/", "#")), url
    profile = await browse(alpha, "/networks/bio/member?coop=https://gamma.test/actors/coop")
    assert profile.status_code == 200
    assert HOSTILE not in profile.text
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in profile.text


async def test_programs_read_the_directory_as_json(network: Network) -> None:
    alpha, _ = await hosted_with_members(network)

    answer = await alpha.get("/networks/bio", headers=JSON)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    document = answer.json()
    assert document["network"] == {
        "name": "bio",
        "title": "Bio Network",
        "summary": "Organic producers.",
        "actor": "https://alpha.test/actors/bio",
        "handle": "@bio@alpha.test",
        "directory": "https://alpha.test/networks/bio",
        "charter": "We trade fairly.\nWe pay on time.",
        "admission": "admin",
        "members": 3,
        "offers": 0,
    }
    assert document["total"] == 3
    assert document["page"] == 1
    assert document["next"] is None
    assert document["sectors"] == [
        {"name": "crafts", "members": 1},
        {"name": "food", "members": 2},
    ]
    assert document["regions"] == [
        {"name": "Alsace", "members": 1},
        {"name": "Bretagne", "members": 2},
    ]
    first = document["members"][0]
    assert first["actor"] == "https://gamma.test/actors/coop"
    assert first["name"] == HOSTILE  # JSON carries the name as it is
    assert set(first) == {"actor", "name", "sector", "region", "memberSince", "offers"}
    assert first["memberSince"].startswith("2027-03-01")

    beyond = (await alpha.get("/networks/bio?page=2", headers=JSON)).json()
    assert beyond["page"] == 2
    assert beyond["members"] == []
    assert beyond["total"] == 3
    odd = (await alpha.get("/networks/bio?page=x", headers=JSON)).json()
    assert odd["page"] == 1
    second = await browse(alpha, "/networks/bio?page=2&sector=food")
    assert 'href="/networks/bio?sector=food" rel="prev"' in second.text

    asked = await alpha.get("/networks/bio?format=json&sector=food", headers=HTML)
    assert asked.headers["content-type"].startswith("application/json")
    assert [m["name"] for m in asked.json()["members"]] == ["Beta Farm", "Delta Bakery"]
    assert asked.json()["filters"] == {"sector": "food", "region": "", "q": ""}


async def test_a_member_page_lists_its_relayed_offers_linked_at_their_origin(
    network: Network,
) -> None:
    alpha, coops = await hosted_with_members(network)
    beta = coops["beta"]
    published = await publish(beta, offer(title={"en": "Organic honey"}))
    await network.settle()

    path = "/networks/bio/member?coop=https://beta.test/actors/coop"
    page = await browse(alpha, path)
    assert page.status_code == 200, page.text
    check_structure(page.text)
    assert "<h1>Beta Farm</h1>" in page.text
    assert f'<a href="{published["uri"]}" rel="nofollow noopener noreferrer">' in page.text
    assert "Organic honey" in page.text
    as_json = (await alpha.get(path, headers=JSON)).json()
    assert as_json["listings"] == [{"id": published["uri"], "name": "Organic honey"}]
    directory = (await alpha.get("/networks/bio?format=json")).json()
    assert directory["network"]["offers"] == 1

    stranger = await browse(alpha, "/networks/bio/member?coop=https://nobody.test/actors/coop")
    assert stranger.status_code == 404
    assert (await browse(alpha, "/networks/bio/member")).status_code == 404


async def test_a_stranger_gets_404_for_a_network_not_hosted_here(network: Network) -> None:
    alpha = await node_at(network, "alpha.test", "Alpha Market")

    page = await browse(alpha, "/networks/nope")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    answer = await alpha.get("/networks/nope", headers=JSON)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
    # The co-op's own actor is no network.
    assert (await browse(alpha, "/networks/coop")).status_code == 404


async def test_the_admin_pages_refuse_everyone_but_admins(network: Network) -> None:
    alpha = await node_at(network, "alpha.test", "Alpha Market")
    await hosting.create_network(alpha.node, name="bio")
    await add(alpha, username="ben", password="another good one")
    anonymous = Browser(network, alpha)
    assert (await anonymous.http.get("/admin/networks")).status_code == 303
    member = Browser(network, alpha)
    assert (await member.login("ben", "another good one")).status_code == 303
    refused = await member.http.get("/admin/networks")
    assert refused.status_code == 403
    token = await member.form_token("/me")
    posts = (
        ("/admin/networks", {"name": "other"}),
        ("/admin/networks/join", {"target": "bio@alpha.test"}),
        ("/admin/networks/leave", {"network": "https://alpha.test/actors/bio"}),
        ("/admin/networks/bio/members", {"actor": "https://x.test/a", "decision": "approve"}),
    )
    for path, data in posts:
        answer = await member.http.post(path, data={"csrf": token, **data})
        assert answer.status_code == 403, path
    assert await reading.hosted_names(alpha.node) == ["bio"]
    assert await reading.memberships(alpha.node) == []


async def admin_browser(network: Network, test_node: TestNode) -> tuple[Browser, str]:
    await add(test_node, username="ana", password="correct horse battery", role="admin")
    browser = Browser(network, test_node)
    logged = await browser.login("ana", "correct horse battery", "/admin/networks")
    assert logged.status_code == 303, logged.text
    return browser, await browser.form_token("/admin/networks")


def done(response: httpx.Response, notice: str) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"/admin/networks?done={notice}"), location
    return location


async def test_admins_create_a_network_decide_on_applications_and_join_from_the_page(
    network: Network,
) -> None:
    alpha = await node_at(network, "alpha.test", "Alpha Market")
    beta = await node_at(network, "beta.test", "Beta Farm")
    gamma = await node_at(network, "gamma.test", HOSTILE)
    admin, token = await admin_browser(network, alpha)
    beta_admin, beta_token = await admin_browser(network, beta)

    empty = await admin.http.get("/admin/networks")
    assert empty.headers["cache-control"] == "no-store"
    check_structure(empty.text)
    assert 'href="/admin/networks" aria-current="page"' in empty.text
    bad = await admin.http.post("/admin/networks", data={"csrf": token, "name": "Not A Name"})
    assert bad.status_code == 400
    assert 'id="create-name"' in bad.text
    assert 'aria-invalid="true"' in bad.text
    created = await admin.http.post(
        "/admin/networks",
        data={
            "csrf": token,
            "name": "bio",
            "title": "Bio Network",
            "charter": "Fair trade.\nOn time.",
            "admission": "admin",
        },
    )
    await admin.http.get(done(created, "created"))
    found = await reading.find_network(alpha.node, "bio")
    assert found is not None
    assert found.charter == "Fair trade.\nOn time."
    taken = await admin.http.post("/admin/networks", data={"csrf": token, "name": "bio"})
    assert taken.status_code == 400

    # Beta applies from its own admin page; gamma through the use case.
    applied = await beta_admin.http.post(
        "/admin/networks/join",
        data={
            "csrf": beta_token,
            "target": "@bio@alpha.test",
            "sector": "food",
            "region": "Alsace",
        },
    )
    done(applied, "joined")
    await joining.join(gamma.node, "bio@alpha.test", sector="crafts")
    await network.settle()
    waiting = await beta_admin.http.get("/admin/networks")
    assert "waiting for an answer" in waiting.text
    again = await beta_admin.http.post(
        "/admin/networks/join", data={"csrf": beta_token, "target": "bio@alpha.test"}
    )
    assert again.status_code == 400

    page = await admin.http.get("/admin/networks")
    check_structure(page.text)
    assert "Applications waiting" in page.text
    assert "Beta Farm" in page.text
    assert HOSTILE not in page.text
    assert "&lt;script&gt;" in page.text

    members_path = "/admin/networks/bio/members"
    approved = await admin.http.post(
        members_path,
        data={"csrf": token, "actor": "https://beta.test/actors/coop", "decision": "approve"},
    )
    done(approved, "approved")
    refused = await admin.http.post(
        members_path,
        data={
            "csrf": token,
            "actor": "https://gamma.test/actors/coop",
            "decision": "refuse",
            "reason": "Not organic yet.",
        },
    )
    done(refused, "refused")
    await network.settle()

    beta_side, _ = await reading.membership(beta.node, "https://alpha.test/actors/bio")
    assert beta_side.state is State.MEMBER
    gamma_side, _ = await reading.membership(gamma.node, "https://alpha.test/actors/bio")
    assert gamma_side.state is State.REFUSED
    assert gamma_side.reason == "Not organic yet."
    decided = await admin.http.get("/admin/networks")
    assert "Not organic yet." in decided.text
    twice = await admin.http.post(
        members_path,
        data={"csrf": token, "actor": "https://gamma.test/actors/coop", "decision": "approve"},
    )
    assert twice.status_code == 400

    # Beta's page shows its membership and the network's roster.
    belongs = await beta_admin.http.get("/admin/networks")
    check_structure(belongs.text)
    assert "The members of Bio Network" in belongs.text
    assert ">member<" in belongs.text

    # A removal needs a reason, and is told to the co-op.
    no_reason = await admin.http.post(
        members_path,
        data={"csrf": token, "actor": "https://beta.test/actors/coop", "decision": "remove"},
    )
    assert no_reason.status_code == 400
    removed = await admin.http.post(
        members_path,
        data={
            "csrf": token,
            "actor": "https://beta.test/actors/coop",
            "decision": "remove",
            "reason": "Unpaid dues.",
        },
    )
    done(removed, "removed")
    await network.settle()
    beta_side, _ = await reading.membership(beta.node, "https://alpha.test/actors/bio")
    assert beta_side.state is State.REMOVED
    assert beta_side.reason == "Unpaid dues."
    shown = await beta_admin.http.get("/admin/networks")
    assert "Unpaid dues." in shown.text

    # A form without its token changes nothing.
    forged = await admin.http.post(
        members_path, data={"actor": "https://gamma.test/actors/coop", "decision": "approve"}
    )
    assert forged.status_code == 403


async def test_a_coop_leaves_a_network_from_its_admin_page(network: Network) -> None:
    alpha, coops = await hosted_with_members(network)
    beta = coops["beta"]
    beta_admin, token = await admin_browser(network, beta)

    left = await beta_admin.http.post(
        "/admin/networks/leave", data={"csrf": token, "network": "https://alpha.test/actors/bio"}
    )
    done(left, "left")
    await network.settle()
    beta_side, _ = await reading.membership(beta.node, "https://alpha.test/actors/bio")
    assert beta_side.state is State.LEFT
    directory = (await alpha.get("/networks/bio", headers=JSON)).json()
    assert [m["name"] for m in directory["members"]] == [HOSTILE, "Delta Bakery"]
    unknown = await beta_admin.http.post(
        "/admin/networks/leave", data={"csrf": token, "network": "https://alpha.test/actors/bio"}
    )
    assert unknown.status_code == 400


async def test_nodeinfo_names_the_networks_hosted_here(network: Network) -> None:
    alpha, _ = await hosted_with_members(network)

    document = (await alpha.get("/nodeinfo/2.1")).json()

    assert document["metadata"]["networks"] == [
        {
            "name": "bio",
            "actor": "https://alpha.test/actors/bio",
            "directory": "https://alpha.test/networks/bio",
            "members": 3,
        }
    ]
    assert document["usage"]["users"]["total"] == 0
