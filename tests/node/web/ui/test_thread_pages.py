"""Discussion threads in a browser: the thread under a proposal with each author's
origin, comments and replies from the page's forms, refusals shown beside the form,
reports that reach the admin's queue, the admin hiding, showing again, removing and
dismissing, the thread alone for the refresh script, and a peer's HTML shown safely."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx

from node.web.templates import STATIC_DIR
from tests.node.discussion.test_threads import comment
from tests.node.web.ui.test_proposal_pages import CSRF, HTML, browser_of
from tests.node.web.ui.test_shared_pages import remote_key, two_coops
from tests.support.coops import Coop, add_member, make_coop
from tests.support.network import Network


async def listed(coop: Coop, key: str) -> list[dict[str, Any]]:
    # As a member: a shared proposal's thread is shown to members only.
    headers = next(iter(coop.local.values()), None)
    response = await coop.node.request("GET", f"/api/v1/proposals/{key}/comments", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["comments"])


def block(page: str, key: str) -> str:
    """One comment as the page shows it: from its anchor to the next comment's."""
    found = re.search(rf'id="comment-{re.escape(key)}".*?(?=id="comment-|</ol>)', page, re.S)
    assert found is not None, f"comment {key} not on the page"
    return found.group(0)


def token_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


async def test_the_page_shows_each_comment_with_where_its_author_comes_from(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=1)
    created = await coop.propose("m0")
    key = created["id"]
    await network.settle()
    mine = await comment(coop, "m0", key, "Why **Saturday**?")
    inbox = f"{coop.node.base}/actors/coop/inbox"
    stranger = coop.mastodon.add_user("stranger")
    await coop.mastodon.reply(
        stranger,
        inbox,
        created["uri"],
        "<p>I am against<script>alert(1)</script>"
        '<img src=x onerror="alert(2)"><a href="javascript:alert(3)">see</a></p>',
    )
    await coop.mastodon.reply(coop.remote["r0"], inbox, created["uri"], "<p>Me too.</p>")
    await network.settle()
    _, outside, remote_member = await listed(coop, key)

    page = await coop.node.get(f"/proposals/{key}", headers=HTML)
    assert page.status_code == 200
    assert '<h2 id="discussion-heading">Discussion</h2>' in page.text
    ours = block(page.text, mine["key"])
    assert "<p>Why <strong>Saturday</strong>?</p>" in ours
    assert "m0" in ours
    assert "from outside the co-op" not in ours
    assert "from alpha.test" not in ours
    assert "<time datetime=" in ours
    theirs = block(page.text, outside["key"])
    assert "Stranger" in theirs
    assert "from outside the co-op" in theirs
    assert "from mastodon.test" in theirs
    assert "I am against" in theirs
    for hostile in ("<script", "alert(1)", "onerror", "javascript:"):
        assert hostile not in theirs, hostile
    # A member whose account is on Mastodon: their server, and no "outside" mark.
    linked = block(page.text, remote_member["key"])
    assert "from mastodon.test" in linked
    assert "from outside the co-op" not in linked
    # A visitor reads, and is asked to log in to write.
    assert 'name="text"' not in page.text
    assert "/report" not in page.text
    assert f'<a href="/login?next=/proposals/{key}">Log in to comment</a>' in page.text


async def test_a_member_comments_and_replies_from_the_page(network: Network) -> None:
    coop = await make_coop(network, local=2, remote=0)
    created = await coop.propose("m0")
    key = created["id"]
    path = f"/proposals/{key}"
    member = await browser_of(network, coop, "m1")
    page = await member.get(path)
    assert "Ask a question or give your view" in page.text
    assert "Markdown" in page.text
    csrf = token_of(page)

    forged = await member.post(f"{path}/comments", data={"csrf": "guess", "text": "Hello"})
    assert forged.status_code == 403
    sent = await member.post(f"{path}/comments", data={"csrf": csrf, "text": "Which **day**?"})
    assert sent.status_code == 303
    [first] = await listed(coop, key)
    assert sent.headers["location"] == f"{path}#comment-{first['key']}"
    answer = await member.post(
        f"{path}/comments",
        data={"csrf": csrf, "text": "Saturday, I think.", "reply_to": first["key"]},
    )
    assert answer.status_code == 303
    _, second = await listed(coop, key)
    assert second["in_reply_to"] == first["id"]

    page = await member.get(path)
    assert page.text.index(f'id="comment-{first["key"]}"') < page.text.index(
        f'id="comment-{second["key"]}"'
    )
    reply = block(page.text, second["key"])
    assert f'<a href="#comment-{first["key"]}">in reply to m1</a>' in reply
    assert "in reply to" not in block(page.text, first["key"])
    # Each comment has its Reply and Report forms, folded.
    assert f'name="reply_to" value="{first["key"]}"' in page.text
    assert f'action="/comments/{first["key"]}/report"' in page.text
    assert page.text.count("<summary>Reply</summary>") == 2

    # An empty comment: the page again, the reason beside the form, nothing stored.
    empty = await member.post(f"{path}/comments", data={"csrf": csrf, "text": "   "})
    assert empty.status_code == 422
    assert '<strong class="error" id="comment-error">the comment is empty</strong>' in empty.text
    assert 'aria-invalid="true"' in empty.text
    too_long = "x" * 5001
    refused = await member.post(f"{path}/comments", data={"csrf": csrf, "text": too_long})
    assert refused.status_code == 422
    assert "a comment is at most 5000 characters" in refused.text
    assert too_long in refused.text  # kept as typed
    # An empty reply: its own form, opened, with the reason.
    empty_reply = await member.post(
        f"{path}/comments", data={"csrf": csrf, "text": "", "reply_to": first["key"]}
    )
    assert empty_reply.status_code == 422
    assert f'<strong class="error" id="reply-{first["key"]}-error">' in empty_reply.text
    assert "<details open>" in block(empty_reply.text, first["key"])
    stray = await member.post(
        f"{path}/comments", data={"csrf": csrf, "text": "Hi", "reply_to": "nothing-here"}
    )
    assert stray.status_code == 422
    assert "the comment answered is not in this thread" in stray.text
    french = await member.post(f"{path}/comments?lang=fr", data={"csrf": csrf, "text": ""})
    assert french.status_code == 422
    assert "le commentaire est vide" in french.text
    assert len(await listed(coop, key)) == 2

    # An observer reads the thread, and writes nothing.
    await add_member(coop.node, username="obs", role="observer", joined_at="2026-01-01")
    observer = await browser_of(network, coop, "obs")
    seen = await observer.get(path)
    assert "Saturday, I think." in seen.text
    assert 'name="text"' not in seen.text
    assert "Log in to comment" not in seen.text
    observed = await observer.post(f"{path}/comments", data={"csrf": csrf, "text": "Hi"})
    assert observed.status_code == 403
    report = await observer.post(f"/comments/{first['key']}/report", data={"csrf": csrf})
    assert report.status_code == 403

    unknown = await member.post("/proposals/nope/comments", data={"csrf": csrf, "text": "Hi"})
    assert unknown.status_code == 404
    anonymous = await coop.node.request(
        "POST", f"{path}/comments", data={"text": "Hi"}, headers=HTML
    )
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")


async def test_the_page_in_french(network: Network) -> None:
    coop = await make_coop(network, local=2, remote=0)
    created = await coop.propose("m0")
    key = created["id"]
    first = await comment(coop, "m0", key, "Pourquoi ?")
    await comment(coop, "m1", key, "Parce que.", first["key"])
    member = await browser_of(network, coop, "m1")
    page = await member.get(f"/proposals/{key}?lang=fr")
    assert page.headers["content-language"] == "fr"
    for text in (
        "Discussion",
        "Posez une question ou donnez votre avis",
        "<summary>Répondre</summary>",
        "<summary>Signaler</summary>",
        "en réponse à m0",
        "Envoyer le commentaire",
    ):
        assert text in page.text, text
    anonymous = await coop.node.get(f"/proposals/{key}?lang=fr", headers=HTML)
    assert "Connectez-vous pour commenter" in anonymous.text


async def test_reports_reach_the_admin_who_hides_shows_again_removes_and_dismisses(
    network: Network,
) -> None:
    coop = await make_coop(network, local=2, remote=0)
    await add_member(coop.node, username="ana", role="admin", joined_at="2026-01-01")
    created = await coop.propose("m0")
    key = created["id"]
    path = f"/proposals/{key}"
    await network.settle()
    said = await comment(coop, "m0", key, "Buy my product")
    outsider = coop.mastodon.add_user("outsider")
    theirs = await coop.mastodon.reply(
        outsider, f"{coop.node.base}/actors/coop/inbox", created["uri"], "<p>Spam</p>"
    )
    await network.settle()
    _, outside = await listed(coop, key)
    assert outside["id"] == theirs["id"]

    member = await browser_of(network, coop, "m1")
    csrf = token_of(await member.get(path))
    reported = await member.post(
        f"/comments/{said['key']}/report",
        data={"csrf": csrf, "reason": "advertising", "back": path},
    )
    assert reported.status_code == 303
    assert reported.headers["location"] == f"{path}?comment=reported#comment-{said['key']}"
    notice = await member.get(f"{path}?comment=reported")
    assert "the comment is reported to the co-op’s admin" in notice.text
    again = await member.post(
        f"/comments/{said['key']}/report",
        data={"csrf": csrf, "reason": "advertising", "back": "https://evil.test/"},
    )
    assert again.headers["location"] == f"/proposals?comment=already-reported#comment-{said['key']}"
    too_long = await member.post(
        f"/comments/{said['key']}/report", data={"csrf": csrf, "reason": "x" * 1001, "back": path}
    )
    assert too_long.status_code == 422
    assert "at most 1000 characters" in too_long.text
    nothing = await member.post(
        "/comments/nothing-here/report", data={"csrf": csrf, "reason": "", "back": path}
    )
    assert nothing.status_code == 404
    # Mastodon's Flag: a report from another server.
    moderator = coop.mastodon.add_user("actor")
    flag = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://mastodon.test/0d4c9a1e",
        "type": "Flag",
        "actor": moderator.actor,
        "content": "Spam again",
        "object": [theirs["id"]],
    }
    assert (await coop.mastodon.post(moderator, f"{coop.node.base}/inbox", flag)).status_code == 202
    await network.settle()

    # The queue is the admin's.
    assert (await member.get("/admin/comments")).status_code == 403
    refused = await member.post(f"/admin/comments/{said['key']}/hide", data={"csrf": csrf})
    assert refused.status_code == 403
    admin = await browser_of(network, coop, "ana")
    queue = await admin.get("/admin/comments")
    assert queue.status_code == 200
    assert queue.headers["cache-control"] == "no-store"
    assert 'href="/admin/comments" aria-current="page"' in queue.text
    waiting = queue.text.split('id="latest-heading"')[0]
    assert "Reported by a member" in waiting
    assert "advertising" in waiting
    assert "Buy my product" in waiting
    assert "Reported from mastodon.test" in waiting
    assert "Spam again" in waiting
    assert "from outside the co-op" in waiting
    assert f'href="{path}#comment-{said["key"]}"' in waiting
    assert f'formaction="/admin/comments/{said["key"]}/dismiss"' in waiting
    admin_csrf = token_of(queue)

    async def decide(comment_key: str, decision: str) -> httpx.Response:
        return await admin.post(
            f"/admin/comments/{comment_key}/{decision}", data={"csrf": admin_csrf}
        )

    hidden = await decide(said["key"], "hide")
    assert hidden.status_code == 303
    assert hidden.headers["location"] == "/admin/comments?done=hidden"
    assert f'id="comment-{said["key"]}"' not in (await member.get(path)).text
    as_admin = block((await admin.get(path)).text, said["key"])
    assert '<span class="status">hidden</span>' in as_admin
    after = await admin.get("/admin/comments?done=hidden")
    assert "The comment is hidden" in after.text
    assert "Buy my product" not in after.text.split('id="latest-heading"')[0]
    assert "Show again" in after.text

    assert (await decide(said["key"], "unhide")).status_code == 303
    assert f'id="comment-{said["key"]}"' in (await member.get(path)).text

    dismissed = await decide(outside["key"], "dismiss")
    assert dismissed.headers["location"] == "/admin/comments?done=dismissed"
    assert "No report waiting." in (await admin.get("/admin/comments")).text
    assert f'id="comment-{outside["key"]}"' in (await member.get(path)).text

    assert (await decide(said["key"], "remove")).status_code == 303
    assert f'id="comment-{said["key"]}"' not in (await admin.get(path)).text
    removed_again = await decide(said["key"], "hide")
    assert removed_again.status_code == 409
    assert "this comment was removed" in removed_again.text
    assert (await decide(said["key"], "frobnicate")).status_code == 404
    forged = await admin.post(f"/admin/comments/{outside['key']}/remove", data={"csrf": "x"})
    assert forged.status_code == 403
    assert len(await listed(coop, key)) == 1


async def test_the_thread_alone_for_the_refresh_script(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0)
    created = await coop.propose("m0")
    key = created["id"]
    said = await comment(coop, "m0", key, "A question")

    page = await coop.node.get(f"/proposals/{key}", headers=HTML)
    assert f'data-live-thread="/proposals/{key}/thread"' in page.text
    assert '<script src="/static/live.js" defer></script>' in page.text
    fragment = await coop.node.get(f"/proposals/{key}/thread", headers=HTML)
    assert fragment.status_code == 200
    assert fragment.headers["cache-control"] == "no-store"
    assert fragment.text.lstrip().startswith('<h2 id="discussion-heading">')
    assert "<html" not in fragment.text
    assert "data-live-thread" not in fragment.text
    assert block(fragment.text, said["key"]) == block(page.text, said["key"])
    member = await browser_of(network, coop, "m0")
    mine = await member.get(f"/proposals/{key}/thread")
    assert 'name="text"' in mine.text
    assert token_of(mine)
    assert (await coop.node.get("/proposals/nope/thread", headers=HTML)).status_code == 404

    # Closed: nothing more to refresh.
    network.clock.advance(timedelta(days=8))
    await network.settle()
    closed = await coop.node.get(f"/proposals/{key}", headers=HTML)
    assert "data-live-thread" not in closed.text
    assert 'id="discussion-heading"' in closed.text
    assert "A question" in closed.text


async def test_a_shared_proposals_thread_at_home(network: Network) -> None:
    host, food, created = await two_coops(network)
    key = await remote_key(food)
    path = f"/proposals/shared/{key}"
    member = await browser_of(network, food, "m0")
    page = await member.get(path)
    assert f'data-live-thread="{path}/thread"' in page.text
    sent = await member.post(
        f"{path}/comments", data={"csrf": token_of(page), "text": "What does it cost us?"}
    )
    assert sent.status_code == 303
    [said] = await listed(food, key)
    assert sent.headers["location"] == f"{path}#comment-{said['key']}"
    empty = await member.post(f"{path}/comments", data={"csrf": token_of(page), "text": ""})
    assert empty.status_code == 422
    assert "the comment is empty" in empty.text
    # Not through the other kind's address.
    wrong = await member.post(
        f"/proposals/{key}/comments", data={"csrf": token_of(page), "text": "Hi"}
    )
    assert wrong.status_code == 404
    fragment = await member.get(f"{path}/thread")
    assert fragment.status_code == 200
    assert "What does it cost us?" in fragment.text
    assert (await food.node.get(f"{path}/thread", headers=HTML)).status_code == 404
    assert (await member.get(f"/proposals/{key}/thread")).status_code == 404
    await network.settle()
    on_host = await listed(host, created["id"])
    assert [c["content"] for c in on_host] == ["<p>What does it cost us?</p>"]


def test_the_refresh_script_stays_small() -> None:
    script = (STATIC_DIR / "live.js").read_bytes()
    assert len(script) < 2048
    assert b"data-live-thread" in script
