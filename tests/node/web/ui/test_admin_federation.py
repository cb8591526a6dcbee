"""The admin's federation and queues pages: following a co-op from a form and watching
its offers come in, approving a follower, blocking a domain, seeing which peers fail
and what the queues hold; for admins only, forms with their token only."""

from __future__ import annotations

import re

import httpx
import pytest

from node.follows import actions
from node.follows import store as follows
from node.offers import backfill_store
from node.services import domains
from tests.node.members.test_members_store import add
from tests.node.web.ui.test_pages import check_structure, offer, publish
from tests.node.web.ui.test_sessions import Browser
from tests.support.coops import deliver_as_coop
from tests.support.network import Network, TestNode

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PAGES = ("/admin/federation", "/admin/queues")
POSTS = (
    ("/admin/federation/follow", {"target": "coop@beta.test"}),
    ("/admin/federation/unfollow", {"followed": "https://beta.test/actors/coop"}),
    (
        "/admin/federation/followers",
        {"follower": "https://beta.test/actors/coop", "decision": "approve"},
    ),
    ("/admin/federation/domains", {"host": "beta.test", "action": "block", "reason": "x"}),
)


async def admin_of(network: Network, node: TestNode) -> tuple[Browser, str]:
    """A browser logged in as an admin of ``node``, and its form token."""
    await add(node, username="ana", password="correct horse battery", role="admin")
    browser = Browser(network, node)
    logged = await browser.login("ana", "correct horse battery", "/admin/federation")
    assert logged.status_code == 303, logged.text
    return browser, await browser.form_token("/admin/federation")


def notice_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/admin/federation?done=")
    return location


async def test_the_admin_follows_a_coop_by_handle_and_sees_its_offers_imported(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test", name="Alpha Market")
    beta = await network.add("beta.test", name="Beta Farm")
    for n in range(3):
        await publish(beta, offer(title={"fr": f"Miel {n}"}))
    browser, token = await admin_of(network, alpha)

    empty = await browser.http.get("/admin/federation")
    assert empty.status_code == 200
    assert empty.headers["cache-control"] == "no-store"
    check_structure(empty.text)
    assert "http-equiv" not in empty.text

    sent = await browser.http.post(
        "/admin/federation/follow", data={"csrf": token, "target": "coop@beta.test"}
    )
    page = await browser.http.get(notice_of(sent))
    assert 'role="status"' in page.text
    assert "https://beta.test/actors/coop" in page.text
    assert "waiting for an answer" in page.text
    await network.settle()
    named = (await browser.http.get("/admin/federation")).text
    assert '<a href="https://beta.test/actors/coop">Beta Farm (coop@beta.test)</a>' in named

    page = await browser.http.get("/admin/federation")
    assert page.status_code == 200
    check_structure(page.text)
    assert "accepted" in page.text
    assert "1 page read, 3 offers imported" in page.text
    assert "Done" in page.text
    assert "http-equiv" not in page.text
    health = page.text.split("Peer health", 1)[1]
    assert "<td>beta.test</td>" in health
    assert "working" in health
    coop_id = alpha.node.peers.coop_id
    walk = await alpha.node.db.read(
        lambda c: backfill_store.progress(c, actor_id=coop_id, followed=f"{beta.base}/actors/coop")
    )
    assert walk is not None
    assert walk["state"] == backfill_store.DONE
    assert walk["imported"] == 3

    # While an import runs, the page reloads itself to show its progress.
    now = network.clock.now()
    await alpha.node.db.write(
        lambda c: backfill_store.start(
            c,
            actor_id=coop_id,
            followed=f"{beta.base}/actors/coop",
            collection=f"{beta.base}/actors/coop/offers",
            now=now,
        )
    )
    running = await browser.http.get("/admin/federation")
    assert '<meta http-equiv="refresh" content="5">' in running.text
    assert "Importing" in running.text
    french = await browser.http.get("/admin/federation?lang=fr")
    assert "Import en cours" in french.text
    check_structure(french.text)

    again = await browser.http.post(
        "/admin/federation/follow", data={"csrf": token, "target": "coop@beta.test"}
    )
    assert again.status_code == 400
    assert "already follows" in again.text

    gone = await browser.http.post(
        "/admin/federation/unfollow",
        data={"csrf": token, "followed": f"{beta.base}/actors/coop"},
    )
    assert "done=unfollowed" in notice_of(gone)
    await network.settle()
    state = await alpha.node.db.read(
        lambda c: follows.following_state(c, actor_id=coop_id, followed=f"{beta.base}/actors/coop")
    )
    assert state is None
    beta_id = beta.node.peers.coop_id
    left = await beta.node.db.read(
        lambda c: follows.get_follower(c, actor_id=beta_id, follower=f"{alpha.base}/actors/coop")
    )
    assert left is None  # beta received the Undo


async def test_a_pending_follower_is_approved_from_the_page(network: Network) -> None:
    alpha = await network.add("alpha.test", follow_policy="approve")
    beta = await network.add("beta.test")
    gamma = await network.add("gamma.test")
    browser, token = await admin_of(network, alpha)
    await actions.follow(beta.node, "coop@alpha.test")
    await actions.follow(gamma.node, "coop@alpha.test")
    await network.settle()

    page = await browser.http.get("/admin/federation")
    assert "Waiting for approval" in page.text
    assert "https://beta.test/actors/coop" in page.text
    assert 'value="approve"' in page.text
    check_structure(page.text)

    approved = await browser.http.post(
        "/admin/federation/followers",
        data={"csrf": token, "follower": f"{beta.base}/actors/coop", "decision": "approve"},
    )
    assert "done=approved" in notice_of(approved)
    refused = await browser.http.post(
        "/admin/federation/followers",
        data={"csrf": token, "follower": f"{gamma.base}/actors/coop", "decision": "refuse"},
    )
    assert "done=refused" in notice_of(refused)
    await network.settle()

    alpha_id = alpha.node.peers.coop_id
    found = await alpha.node.db.read(
        lambda c: follows.list_followers(c, actor_id=alpha_id, state=None)
    )
    assert [(f.follower, f.state) for f in found] == [(f"{beta.base}/actors/coop", "accepted")]
    for other, wanted in ((beta, follows.ACCEPTED), (gamma, follows.REJECTED)):
        other_id = other.node.peers.coop_id
        state = await other.node.db.read(
            lambda c, i=other_id: follows.following_state(
                c, actor_id=i, followed=f"{alpha.base}/actors/coop"
            )
        )
        assert state == wanted  # the other side received the Accept, or the Reject
    page = await browser.http.get("/admin/federation")
    assert "Accepted followers" in page.text
    assert "Waiting for approval" not in page.text

    twice = await browser.http.post(
        "/admin/federation/followers",
        data={"csrf": token, "follower": f"{beta.base}/actors/coop", "decision": "approve"},
    )
    assert twice.status_code == 400
    assert "already an accepted follower" in twice.text


async def test_blocking_a_domain_from_the_form_cuts_it_off(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    browser, token = await admin_of(network, alpha)
    await actions.follow(beta.node, "coop@alpha.test")
    await actions.follow(alpha.node, "coop@beta.test")
    await network.settle()
    alpha_id = alpha.node.peers.coop_id
    assert await alpha.node.db.read(lambda c: follows.count_followers(c, actor_id=alpha_id)) == 1

    blocked = await browser.http.post(
        "/admin/federation/domains",
        data={"csrf": token, "host": "Beta.Test", "action": "block", "reason": "sends spam"},
    )
    page = await browser.http.get(notice_of(blocked))
    check_structure(page.text)
    assert "beta.test is blocked" in page.text
    assert "sends spam" in page.text
    assert "federates openly" in page.text

    assert await alpha.node.db.read(lambda c: follows.count_followers(c, actor_id=alpha_id)) == 0
    assert await alpha.node.db.read(lambda c: follows.count_following(c, actor_id=alpha_id)) == 0
    assert alpha.node.peers.policy.refusal("beta.test") is not None
    refused = await deliver_as_coop(
        network,
        beta,
        {"type": "Note", "id": f"{beta.base}/notes/1", "content": "hello"},
        f"{beta.base}/activities/1",
        f"{alpha.base}/inbox",
    )
    assert refused.status_code == 403
    follow_back = await browser.http.post(
        "/admin/federation/follow", data={"csrf": token, "target": "coop@beta.test"}
    )
    assert follow_back.status_code == 400
    assert "blocked" in follow_back.text

    cleared = await browser.http.post(
        "/admin/federation/domains", data={"csrf": token, "host": "beta.test", "action": "clear"}
    )
    assert "done=cleared" in notice_of(cleared)
    assert alpha.node.peers.policy.refusal("beta.test") is None
    allowed = await browser.http.post(
        "/admin/federation/domains",
        data={"csrf": token, "host": "gamma.test", "action": "allow", "reason": "partner"},
    )
    assert "done=allowed" in notice_of(allowed)
    assert alpha.node.peers.policy.allows("gamma.test")
    listed = await alpha.node.db.read(domains.list_domains)
    assert {r["host"]: r["policy"] for r in listed if r["policy"]} == {"gamma.test": "allowed"}


async def test_the_allow_list_mode_is_said(network: Network) -> None:
    alpha = await network.add("alpha.test", federation="allowlist")
    browser, _ = await admin_of(network, alpha)

    page = await browser.http.get("/admin/federation")

    assert "only with the domains of its allow-list" in page.text


async def test_a_failing_peer_shows_on_peer_health_and_the_queues(network: Network) -> None:
    alpha = await network.add("alpha.test")
    beta = await network.add("beta.test")
    browser, _ = await admin_of(network, alpha)
    await actions.follow(beta.node, "coop@alpha.test")
    await network.settle()
    del network.router.apps["beta.test"]  # beta goes away: deliveries to it fail
    await publish(alpha, offer())
    await network.settle()

    page = await browser.http.get("/admin/federation")
    assert page.status_code == 200
    check_structure(page.text)
    health = page.text.split("Peer health", 1)[1]
    row = health.split("<td>beta.test</td>", 1)[1].split("</tr>", 1)[0]
    assert "failing" in row
    assert "no test node answers for beta.test" in row
    assert "<td>1</td>" in row  # one delivery waiting

    # Another peer, failing for more than a day: unavailable, and listed first.
    now = network.clock.now()
    await alpha.node.db.write(
        lambda c: domains.record_failure(
            c, "gamma.test", "connection refused", now=now - domains.UNAVAILABLE_AFTER
        )
    )
    await alpha.node.db.write(
        lambda c: domains.record_failure(c, "gamma.test", "connection refused", now=now)
    )
    health = (await browser.http.get("/admin/federation")).text.split("Peer health", 1)[1]
    assert health.index("gamma.test") < health.index("beta.test")
    assert "unavailable" in health

    queues = await browser.http.get("/admin/queues")
    assert queues.status_code == 200
    assert queues.headers["cache-control"] == "no-store"
    check_structure(queues.text)
    assert '<th scope="row">waiting</th><td>1</td>' in queues.text
    assert "https://beta.test/inbox" in queues.text
    assert "no test node answers for beta.test" in queues.text
    assert '<th scope="row">handled</th>' in queues.text
    french = await browser.http.get("/admin/queues?lang=fr")
    assert check_structure(french.text).html_lang == "fr"
    assert "Files d’attente" in french.text


async def test_members_and_observers_are_refused_and_visitors_sent_to_log_in(
    network: Network,
) -> None:
    alpha = await network.add("alpha.test")
    await add(alpha, username="ben", password="another good one")
    await add(alpha, username="cleo", password="a third password", role="observer")
    anonymous = Browser(network, alpha)
    for path in PAGES:
        response = await anonymous.http.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"
    for username, password in (("ben", "another good one"), ("cleo", "a third password")):
        browser = Browser(network, alpha)
        await browser.login(username, password)
        token = await browser.form_token("/me")
        for path in PAGES:
            assert (await browser.http.get(path)).status_code == 403, path
        for path, data in POSTS:
            response = await browser.http.post(path, data={"csrf": token, **data})
            assert response.status_code == 403, path
            assert response.headers["content-type"].startswith("text/html")
    listed = await alpha.node.db.read(domains.list_domains)
    assert listed == []


@pytest.mark.parametrize(("path", "data"), POSTS)
async def test_a_form_without_its_token_changes_nothing(
    network: Network, path: str, data: dict[str, str]
) -> None:
    alpha = await network.add("alpha.test")
    await network.add("beta.test")
    browser, _ = await admin_of(network, alpha)

    refused = await browser.http.post(path, data=data)
    forged = await browser.http.post(path, data={"csrf": "x" * 43, **data})
    not_a_form = await browser.http.post(path, json=data)

    assert refused.status_code == forged.status_code == 403
    # Answered with a page, as every refusal of a browser's request is.
    assert not_a_form.status_code == 422
    assert not_a_form.headers["content-type"].startswith("text/html")
    alpha_id = alpha.node.peers.coop_id
    assert await alpha.node.db.read(domains.list_domains) == []
    assert (
        await alpha.node.db.read(lambda c: follows.list_following(c, actor_id=alpha_id, state=None))
        == []
    )
    assert network.router.log.count(("GET", "https://beta.test/.well-known/webfinger")) == 0


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/admin/federation/follow", {"target": ""}, "give the co-op"),
        ("/admin/federation/follow", {"target": "nobody@nowhere.test"}, "nowhere.test"),
        ("/admin/federation/follow", {"target": "not a handle"}, "not a handle"),
        ("/admin/federation/follow", {"target": "coop@alpha.test"}, "cannot follow itself"),
        ("/admin/federation/domains", {"host": "", "action": "block"}, "give a domain"),
        ("/admin/federation/domains", {"host": "a b", "action": "block"}, "give a domain"),
        ("/admin/federation/domains", {"host": "x.test", "action": "burn"}, "choose to block"),
        ("/admin/federation/domains", {"host": "alpha.test", "action": "block"}, "its own"),
        ("/admin/federation/unfollow", {"followed": "https://x.test/a"}, "does not follow"),
        ("/admin/federation/followers", {"follower": "https://x.test/a"}, "approve or refuse"),
    ],
)
async def test_an_invalid_entry_shows_the_page_again_with_400(
    network: Network, path: str, data: dict[str, str], message: str
) -> None:
    alpha = await network.add("alpha.test")
    browser, token = await admin_of(network, alpha)

    response = await browser.http.post(path, data={"csrf": token, **data})

    assert response.status_code == 400, response.text
    assert message in response.text
    assert 'role="alert"' in response.text
    assert 'aria-invalid="true"' in response.text or "federation-error" in response.text
    check_structure(response.text)
    alpha_id = alpha.node.peers.coop_id
    assert await alpha.node.db.read(domains.list_domains) == []
    assert (
        await alpha.node.db.read(lambda c: follows.list_following(c, actor_id=alpha_id, state=None))
        == []
    )
    # An address in the form is not fetched unless the co-op follows it.
    assert not any("x.test" in url for _, url in network.router.log)
